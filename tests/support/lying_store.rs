//! A store that accepts conditional writes and ignores the conditions, as
//! some S3-compatible servers do: what `silt datastore doctor` must catch.

use silt::store::{
    GetOutcome, ListPage, MemoryStore, ObjectKey, ObjectMeta, ObjectStore, PutMode, StoreError,
    Version,
};

/// Every put is an overwrite and every delete unconditional.
#[derive(Default)]
pub struct IgnoresConditions(pub MemoryStore);

impl std::fmt::Display for IgnoresConditions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("lying store")
    }
}

#[async_trait::async_trait]
impl ObjectStore for IgnoresConditions {
    async fn get(
        &self,
        key: &ObjectKey,
        if_none_match: Option<&Version>,
    ) -> Result<GetOutcome, StoreError> {
        self.0.get(key, if_none_match).await
    }
    async fn head(&self, key: &ObjectKey) -> Result<ObjectMeta, StoreError> {
        self.0.head(key).await
    }
    async fn put(
        &self,
        key: &ObjectKey,
        data: Vec<u8>,
        _mode: PutMode,
    ) -> Result<Version, StoreError> {
        self.0.put(key, data, PutMode::Overwrite).await
    }
    async fn delete(&self, key: &ObjectKey, _if_match: Option<&Version>) -> Result<(), StoreError> {
        self.0.delete(key, None).await
    }
    async fn list(
        &self,
        prefix: &str,
        start_after: Option<&ObjectKey>,
        limit: u32,
    ) -> Result<ListPage, StoreError> {
        self.0.list(prefix, start_after, limit).await
    }
}
