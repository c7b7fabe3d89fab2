//! Scoping a store to a key prefix (a datastore root's prefix and
//! namespace): every key gets the prefix, listings lose it again.

use tokio::io::AsyncWrite;

use super::{
    GetOutcome, Leftover, ListPage, ObjectKey, ObjectMeta, ObjectStore, PutMode, StoreError, Sweep,
    UploadDigest, Version,
};

/// A store whose keys live under `prefix/` of the inner store.
pub struct Prefixed<S> {
    inner: S,
    prefix: String,
}

impl<S: ObjectStore> Prefixed<S> {
    /// Scopes `inner` to `prefix`, itself a valid key (e.g. `team/ns`).
    ///
    /// # Errors
    /// [`StoreError::InvalidKey`] when the prefix is not a valid key.
    pub fn new(inner: S, prefix: &str) -> Result<Self, StoreError> {
        let prefix = prefix.trim_end_matches('/');
        ObjectKey::new(prefix)?;
        Ok(Self {
            inner,
            prefix: format!("{prefix}/"),
        })
    }

    /// `key` under the prefix. A key that is valid alone can be too long
    /// with the prefix: refused as an invalid key, never a panic.
    fn full(&self, key: &ObjectKey) -> Result<ObjectKey, StoreError> {
        Ok(ObjectKey::new(&format!("{}{key}", self.prefix))?)
    }

    fn strip(&self, mut meta: ObjectMeta) -> ObjectMeta {
        meta.key = self.strip_key(meta.key);
        meta
    }

    fn strip_key(&self, key: ObjectKey) -> ObjectKey {
        key.as_str()
            .strip_prefix(&self.prefix)
            .and_then(|relative| ObjectKey::new(relative).ok())
            .unwrap_or(key)
    }
}

impl<S: ObjectStore> std::fmt::Display for Prefixed<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} under {}", self.inner, self.prefix)
    }
}

#[async_trait::async_trait]
impl<S: ObjectStore> super::StoreWrapper for Prefixed<S> {
    type Inner = S;

    fn inner(&self) -> &S {
        &self.inner
    }

    async fn get(
        &self,
        key: &ObjectKey,
        if_none_match: Option<&Version>,
    ) -> Result<GetOutcome, StoreError> {
        match self.inner.get(&self.full(key)?, if_none_match).await? {
            GetOutcome::Found(meta, data) => Ok(GetOutcome::Found(self.strip(meta), data)),
            GetOutcome::NotModified => Ok(GetOutcome::NotModified),
        }
    }

    async fn head(&self, key: &ObjectKey) -> Result<ObjectMeta, StoreError> {
        self.inner
            .head(&self.full(key)?)
            .await
            .map(|meta| self.strip(meta))
    }

    async fn put(
        &self,
        key: &ObjectKey,
        data: Vec<u8>,
        mode: PutMode,
    ) -> Result<Version, StoreError> {
        self.inner.put(&self.full(key)?, data, mode).await
    }

    async fn delete(&self, key: &ObjectKey, if_match: Option<&Version>) -> Result<(), StoreError> {
        self.inner.delete(&self.full(key)?, if_match).await
    }

    async fn list(
        &self,
        prefix: &str,
        start_after: Option<&ObjectKey>,
        limit: u32,
    ) -> Result<ListPage, StoreError> {
        let start_after = start_after.map(|key| self.full(key)).transpose()?;
        let page = self
            .inner
            .list(
                &format!("{}{prefix}", self.prefix),
                start_after.as_ref(),
                limit,
            )
            .await?;
        Ok(ListPage {
            items: page
                .items
                .into_iter()
                .map(|meta| self.strip(meta))
                .collect(),
            next_start_after: page.next_start_after.map(|key| self.strip_key(key)),
        })
    }

    async fn get_into(
        &self,
        key: &ObjectKey,
        sink: &mut (dyn AsyncWrite + Unpin + Send),
    ) -> Result<ObjectMeta, StoreError> {
        let meta = self.inner.get_into(&self.full(key)?, sink).await?;
        Ok(self.strip(meta))
    }

    async fn put_file(
        &self,
        key: &ObjectKey,
        file: std::fs::File,
        mode: PutMode,
    ) -> Result<Version, StoreError> {
        self.inner.put_file(&self.full(key)?, file, mode).await
    }

    async fn put_file_hashed(
        &self,
        key: &ObjectKey,
        file: std::fs::File,
        mode: PutMode,
    ) -> Result<(Version, UploadDigest), StoreError> {
        self.inner
            .put_file_hashed(&self.full(key)?, file, mode)
            .await
    }

    async fn leftovers(&self, prefix: &str, sweep: Sweep) -> Result<Vec<Leftover>, StoreError> {
        self.inner
            .leftovers(&format!("{}{prefix}", self.prefix), sweep)
            .await
    }
}
