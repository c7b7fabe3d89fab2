//! A store whose answers are slow where a test says: bulk transfers (a
//! download or upload the guest asks for takes long in the host, which
//! must not count against the guest's deadline nor make a lease renewed
//! meanwhile look stale), every request (a store loaded by other work), or
//! lock writes (a renewal round that takes most of its interval).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use silt::store::{
    GetOutcome, ListPage, MemoryStore, ObjectKey, ObjectMeta, ObjectStore, PutMode, StoreError,
    Version,
};

/// Which requests are slow, and by how much.
pub enum Slow {
    /// `get_into` and `put_file` (bulk downloads and uploads) sleep this
    /// long first; everything else is fast.
    Transfers(Duration),
    /// Every request sleeps this long first: what is done one request
    /// after another adds up.
    Requests(Duration),
    /// Writes of lock objects (`_locks/…`) sleep for the milliseconds the
    /// counter holds (0 at first: a test switches it on once its leases
    /// are held); everything else is fast.
    LockWrites(Arc<AtomicU64>),
}

/// A [`MemoryStore`] slowed down by a [`Slow`] rule.
pub struct SlowStore(pub MemoryStore, pub Slow);

/// What a request does, as far as [`Slow`] tells them apart.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Request {
    Small,
    Write,
    Transfer,
}

impl SlowStore {
    async fn delay(&self, request: Request, key: &str) {
        let delay = match &self.1 {
            Slow::Transfers(delay) if request == Request::Transfer => *delay,
            Slow::Requests(delay) => *delay,
            Slow::LockWrites(ms) if request == Request::Write && key.starts_with("_locks/") => {
                Duration::from_millis(ms.load(Ordering::Relaxed))
            }
            _ => Duration::ZERO,
        };
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
    }
}

impl std::fmt::Display for SlowStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("slow store")
    }
}

#[async_trait::async_trait]
impl ObjectStore for SlowStore {
    async fn get(
        &self,
        key: &ObjectKey,
        if_none_match: Option<&Version>,
    ) -> Result<GetOutcome, StoreError> {
        self.delay(Request::Small, key.as_str()).await;
        self.0.get(key, if_none_match).await
    }
    async fn head(&self, key: &ObjectKey) -> Result<ObjectMeta, StoreError> {
        self.delay(Request::Small, key.as_str()).await;
        self.0.head(key).await
    }
    async fn put(
        &self,
        key: &ObjectKey,
        data: Vec<u8>,
        mode: PutMode,
    ) -> Result<Version, StoreError> {
        self.delay(Request::Write, key.as_str()).await;
        self.0.put(key, data, mode).await
    }
    async fn delete(&self, key: &ObjectKey, if_match: Option<&Version>) -> Result<(), StoreError> {
        self.delay(Request::Write, key.as_str()).await;
        self.0.delete(key, if_match).await
    }
    async fn list(
        &self,
        prefix: &str,
        start_after: Option<&ObjectKey>,
        limit: u32,
    ) -> Result<ListPage, StoreError> {
        self.delay(Request::Small, prefix).await;
        self.0.list(prefix, start_after, limit).await
    }
    async fn get_into(
        &self,
        key: &ObjectKey,
        sink: &mut (dyn tokio::io::AsyncWrite + Unpin + Send),
    ) -> Result<ObjectMeta, StoreError> {
        self.delay(Request::Transfer, key.as_str()).await;
        self.0.get_into(key, sink).await
    }
    async fn put_file(
        &self,
        key: &ObjectKey,
        file: std::fs::File,
        mode: PutMode,
    ) -> Result<Version, StoreError> {
        self.delay(Request::Transfer, key.as_str()).await;
        self.0.put_file(key, file, mode).await
    }
}
