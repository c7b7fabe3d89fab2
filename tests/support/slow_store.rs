//! A store whose bulk transfers are slow: a download or upload the guest
//! asks for takes long in the host. That time must not count against the
//! guest's deadline, nor make a lease renewed meanwhile look stale.

use std::time::Duration;

use silt::store::{
    GetOutcome, ListPage, MemoryStore, ObjectKey, ObjectMeta, ObjectStore, PutMode, StoreError,
    Version,
};

/// `get_into` and `put_file` (bulk downloads and uploads) sleep `.1`
/// first; everything else is fast.
pub struct SlowTransfers(pub MemoryStore, pub Duration);

impl std::fmt::Display for SlowTransfers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("slow store")
    }
}

#[async_trait::async_trait]
impl ObjectStore for SlowTransfers {
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
        mode: PutMode,
    ) -> Result<Version, StoreError> {
        self.0.put(key, data, mode).await
    }
    async fn delete(&self, key: &ObjectKey, if_match: Option<&Version>) -> Result<(), StoreError> {
        self.0.delete(key, if_match).await
    }
    async fn list(
        &self,
        prefix: &str,
        start_after: Option<&ObjectKey>,
        limit: u32,
    ) -> Result<ListPage, StoreError> {
        self.0.list(prefix, start_after, limit).await
    }
    async fn get_into(
        &self,
        key: &ObjectKey,
        sink: &mut (dyn tokio::io::AsyncWrite + Unpin + Send),
    ) -> Result<ObjectMeta, StoreError> {
        tokio::time::sleep(self.1).await;
        self.0.get_into(key, sink).await
    }
    async fn put_file(
        &self,
        key: &ObjectKey,
        file: std::fs::File,
        mode: PutMode,
    ) -> Result<Version, StoreError> {
        tokio::time::sleep(self.1).await;
        self.0.put_file(key, file, mode).await
    }
}

/// Every request sleeps `.1` first, as on a store loaded by other work:
/// what is done one request after another adds up.
pub struct SlowRequests(pub MemoryStore, pub Duration);

impl std::fmt::Display for SlowRequests {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("slow store")
    }
}

#[async_trait::async_trait]
impl ObjectStore for SlowRequests {
    async fn get(
        &self,
        key: &ObjectKey,
        if_none_match: Option<&Version>,
    ) -> Result<GetOutcome, StoreError> {
        tokio::time::sleep(self.1).await;
        self.0.get(key, if_none_match).await
    }
    async fn head(&self, key: &ObjectKey) -> Result<ObjectMeta, StoreError> {
        tokio::time::sleep(self.1).await;
        self.0.head(key).await
    }
    async fn put(
        &self,
        key: &ObjectKey,
        data: Vec<u8>,
        mode: PutMode,
    ) -> Result<Version, StoreError> {
        tokio::time::sleep(self.1).await;
        self.0.put(key, data, mode).await
    }
    async fn delete(&self, key: &ObjectKey, if_match: Option<&Version>) -> Result<(), StoreError> {
        tokio::time::sleep(self.1).await;
        self.0.delete(key, if_match).await
    }
    async fn list(
        &self,
        prefix: &str,
        start_after: Option<&ObjectKey>,
        limit: u32,
    ) -> Result<ListPage, StoreError> {
        tokio::time::sleep(self.1).await;
        self.0.list(prefix, start_after, limit).await
    }
    async fn get_into(
        &self,
        key: &ObjectKey,
        sink: &mut (dyn tokio::io::AsyncWrite + Unpin + Send),
    ) -> Result<ObjectMeta, StoreError> {
        tokio::time::sleep(self.1).await;
        self.0.get_into(key, sink).await
    }
    async fn put_file(
        &self,
        key: &ObjectKey,
        file: std::fs::File,
        mode: PutMode,
    ) -> Result<Version, StoreError> {
        tokio::time::sleep(self.1).await;
        self.0.put_file(key, file, mode).await
    }
}

/// Writes of lock objects (`_locks/…`) sleep for the delay `.1` holds, in
/// milliseconds (0 at first: a test switches it on once its leases are
/// held); everything else is fast. What a renewal round costs on a store
/// that answers lease writes slowly.
pub struct SlowLockWrites(
    pub MemoryStore,
    pub std::sync::Arc<std::sync::atomic::AtomicU64>,
);

impl std::fmt::Display for SlowLockWrites {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("store slow to write locks")
    }
}

#[async_trait::async_trait]
impl ObjectStore for SlowLockWrites {
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
        mode: PutMode,
    ) -> Result<Version, StoreError> {
        let delay = self.1.load(std::sync::atomic::Ordering::Relaxed);
        if delay > 0 && key.as_str().starts_with("_locks/") {
            tokio::time::sleep(Duration::from_millis(delay)).await;
        }
        self.0.put(key, data, mode).await
    }
    async fn delete(&self, key: &ObjectKey, if_match: Option<&Version>) -> Result<(), StoreError> {
        self.0.delete(key, if_match).await
    }
    async fn list(
        &self,
        prefix: &str,
        start_after: Option<&ObjectKey>,
        limit: u32,
    ) -> Result<ListPage, StoreError> {
        self.0.list(prefix, start_after, limit).await
    }
    async fn get_into(
        &self,
        key: &ObjectKey,
        sink: &mut (dyn tokio::io::AsyncWrite + Unpin + Send),
    ) -> Result<ObjectMeta, StoreError> {
        self.0.get_into(key, sink).await
    }
    async fn put_file(
        &self,
        key: &ObjectKey,
        file: std::fs::File,
        mode: PutMode,
    ) -> Result<Version, StoreError> {
        self.0.put_file(key, file, mode).await
    }
}
