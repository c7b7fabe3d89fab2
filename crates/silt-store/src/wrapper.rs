//! One delegating base for stores that wrap another: a wrapper implements
//! [`StoreWrapper`] — its `inner` store and only the methods it changes —
//! and is an [`ObjectStore`] by the blanket impl below, every other method
//! going to the inner store as it is. A method added to [`ObjectStore`] is
//! added here once, not to every wrapper. One exception: `put_file_hashed`
//! defaults to this wrapper's own `put_file` with the file hashed beside
//! it, so a wrapper that changes `put_file` is never bypassed; a wrapper
//! that leaves uploads alone forwards it, keeping the inner store's hash
//! of what it sent.

use tokio::io::AsyncWrite;

use super::{
    GetOutcome, Leftover, ListPage, ObjectKey, ObjectMeta, ObjectStore, PutMode, StoreError, Sweep,
    UploadDigest, Version,
};

/// A store that wraps `inner`; each method defaults to the inner store's.
#[async_trait::async_trait]
#[allow(missing_docs)] // Each method is [`ObjectStore`]'s of its name.
pub trait StoreWrapper: std::fmt::Display + Send + Sync + 'static {
    /// The wrapped store's type.
    type Inner: ObjectStore + ?Sized;

    /// The wrapped store.
    fn inner(&self) -> &Self::Inner;

    async fn get(
        &self,
        key: &ObjectKey,
        if_none_match: Option<&Version>,
    ) -> Result<GetOutcome, StoreError> {
        self.inner().get(key, if_none_match).await
    }

    async fn head(&self, key: &ObjectKey) -> Result<ObjectMeta, StoreError> {
        self.inner().head(key).await
    }

    async fn put(
        &self,
        key: &ObjectKey,
        data: Vec<u8>,
        mode: PutMode,
    ) -> Result<Version, StoreError> {
        self.inner().put(key, data, mode).await
    }

    async fn delete(&self, key: &ObjectKey, if_match: Option<&Version>) -> Result<(), StoreError> {
        self.inner().delete(key, if_match).await
    }

    async fn list(
        &self,
        prefix: &str,
        start_after: Option<&ObjectKey>,
        limit: u32,
    ) -> Result<ListPage, StoreError> {
        self.inner().list(prefix, start_after, limit).await
    }

    async fn get_into(
        &self,
        key: &ObjectKey,
        sink: &mut (dyn AsyncWrite + Unpin + Send),
    ) -> Result<ObjectMeta, StoreError> {
        self.inner().get_into(key, sink).await
    }

    async fn put_file(
        &self,
        key: &ObjectKey,
        file: std::fs::File,
        mode: PutMode,
    ) -> Result<Version, StoreError> {
        self.inner().put_file(key, file, mode).await
    }

    async fn put_file_hashed(
        &self,
        key: &ObjectKey,
        file: std::fs::File,
        mode: PutMode,
    ) -> Result<(Version, UploadDigest), StoreError> {
        crate::digest::put_hashing_beside(key, file, |file| {
            StoreWrapper::put_file(self, key, file, mode)
        })
        .await
    }

    async fn leftovers(&self, prefix: &str, sweep: Sweep) -> Result<Vec<Leftover>, StoreError> {
        self.inner().leftovers(prefix, sweep).await
    }
    fn credentials_failure(&self) -> Option<StoreError> {
        self.inner().credentials_failure()
    }
}

#[async_trait::async_trait]
impl<W: StoreWrapper> ObjectStore for W {
    async fn get(
        &self,
        key: &ObjectKey,
        if_none_match: Option<&Version>,
    ) -> Result<GetOutcome, StoreError> {
        StoreWrapper::get(self, key, if_none_match).await
    }

    async fn head(&self, key: &ObjectKey) -> Result<ObjectMeta, StoreError> {
        StoreWrapper::head(self, key).await
    }

    async fn put(
        &self,
        key: &ObjectKey,
        data: Vec<u8>,
        mode: PutMode,
    ) -> Result<Version, StoreError> {
        StoreWrapper::put(self, key, data, mode).await
    }

    async fn delete(&self, key: &ObjectKey, if_match: Option<&Version>) -> Result<(), StoreError> {
        StoreWrapper::delete(self, key, if_match).await
    }

    async fn list(
        &self,
        prefix: &str,
        start_after: Option<&ObjectKey>,
        limit: u32,
    ) -> Result<ListPage, StoreError> {
        StoreWrapper::list(self, prefix, start_after, limit).await
    }

    async fn get_into(
        &self,
        key: &ObjectKey,
        sink: &mut (dyn AsyncWrite + Unpin + Send),
    ) -> Result<ObjectMeta, StoreError> {
        StoreWrapper::get_into(self, key, sink).await
    }

    async fn put_file(
        &self,
        key: &ObjectKey,
        file: std::fs::File,
        mode: PutMode,
    ) -> Result<Version, StoreError> {
        StoreWrapper::put_file(self, key, file, mode).await
    }

    async fn put_file_hashed(
        &self,
        key: &ObjectKey,
        file: std::fs::File,
        mode: PutMode,
    ) -> Result<(Version, UploadDigest), StoreError> {
        StoreWrapper::put_file_hashed(self, key, file, mode).await
    }

    async fn leftovers(&self, prefix: &str, sweep: Sweep) -> Result<Vec<Leftover>, StoreError> {
        StoreWrapper::leftovers(self, prefix, sweep).await
    }
    fn credentials_failure(&self) -> Option<StoreError> {
        StoreWrapper::credentials_failure(self)
    }
}
