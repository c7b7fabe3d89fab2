//! A request-counting store: requests and bytes by operation, for tests
//! ("this command fetched only metadata") and benchmarks.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;
use tokio::io::AsyncWrite;

use super::{
    GetOutcome, Leftover, ListPage, ObjectKey, ObjectMeta, ObjectStore, PutMode, StoreError, Sweep,
    UploadDigest, Version,
};

/// Counters of one operation.
#[derive(Debug, Default)]
pub struct OperationCounts {
    /// Requests made (failed ones included).
    pub requests: AtomicU64,
    /// Payload bytes moved (read for get, written for put).
    pub bytes: AtomicU64,
}

/// Counters of every operation.
#[derive(Debug, Default)]
pub struct RequestCounts {
    /// `get`
    pub get: OperationCounts,
    /// `head`
    pub head: OperationCounts,
    /// `put`
    pub put: OperationCounts,
    /// `delete`
    pub delete: OperationCounts,
    /// `list`
    pub list: OperationCounts,
}

/// A point-in-time copy of [`RequestCounts`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct CountsSnapshot {
    /// get requests
    pub get: u64,
    /// bytes read by get
    pub get_bytes: u64,
    /// head requests
    pub head: u64,
    /// put requests
    pub put: u64,
    /// bytes written by put
    pub put_bytes: u64,
    /// delete requests
    pub delete: u64,
    /// list requests
    pub list: u64,
}

impl CountsSnapshot {
    /// Requests of every kind.
    pub fn requests(&self) -> u64 {
        self.get + self.head + self.put + self.delete + self.list
    }
}

impl RequestCounts {
    /// The counts now.
    pub fn snapshot(&self) -> CountsSnapshot {
        let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
        CountsSnapshot {
            get: load(&self.get.requests),
            get_bytes: load(&self.get.bytes),
            head: load(&self.head.requests),
            put: load(&self.put.requests),
            put_bytes: load(&self.put.bytes),
            delete: load(&self.delete.requests),
            list: load(&self.list.requests),
        }
    }
}

/// Wraps a store and counts what passes through.
pub struct Counting<S> {
    inner: S,
    counts: Arc<RequestCounts>,
}

impl<S: ObjectStore> Counting<S> {
    /// Wraps `inner`.
    pub fn new(inner: S) -> Self {
        Self {
            inner,
            counts: Arc::default(),
        }
    }

    /// The live counters (shareable while the store is in use).
    pub fn counts(&self) -> Arc<RequestCounts> {
        self.counts.clone()
    }
}

impl<S: ObjectStore> std::fmt::Display for Counting<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.inner.fmt(f)
    }
}

fn bump(counts: &OperationCounts, bytes: u64) {
    counts.requests.fetch_add(1, Ordering::Relaxed);
    counts.bytes.fetch_add(bytes, Ordering::Relaxed);
}

#[async_trait::async_trait]
impl<S: ObjectStore> super::StoreWrapper for Counting<S> {
    type Inner = S;

    fn inner(&self) -> &S {
        &self.inner
    }

    async fn get(
        &self,
        key: &ObjectKey,
        if_none_match: Option<&Version>,
    ) -> Result<GetOutcome, StoreError> {
        let result = self.inner.get(key, if_none_match).await;
        let bytes = match &result {
            Ok(GetOutcome::Found(_, data)) => data.len() as u64,
            _ => 0,
        };
        bump(&self.counts.get, bytes);
        result
    }

    async fn head(&self, key: &ObjectKey) -> Result<ObjectMeta, StoreError> {
        bump(&self.counts.head, 0);
        self.inner.head(key).await
    }

    async fn put(
        &self,
        key: &ObjectKey,
        data: Vec<u8>,
        mode: PutMode,
    ) -> Result<Version, StoreError> {
        bump(&self.counts.put, data.len() as u64);
        self.inner.put(key, data, mode).await
    }

    async fn delete(&self, key: &ObjectKey, if_match: Option<&Version>) -> Result<(), StoreError> {
        bump(&self.counts.delete, 0);
        self.inner.delete(key, if_match).await
    }

    async fn list(
        &self,
        prefix: &str,
        start_after: Option<&ObjectKey>,
        limit: u32,
    ) -> Result<ListPage, StoreError> {
        bump(&self.counts.list, 0);
        self.inner.list(prefix, start_after, limit).await
    }

    async fn get_into(
        &self,
        key: &ObjectKey,
        sink: &mut (dyn AsyncWrite + Unpin + Send),
    ) -> Result<ObjectMeta, StoreError> {
        let result = self.inner.get_into(key, sink).await;
        bump(
            &self.counts.get,
            result.as_ref().map_or(0, |meta| meta.size),
        );
        result
    }

    async fn put_file(
        &self,
        key: &ObjectKey,
        file: std::fs::File,
        mode: PutMode,
    ) -> Result<Version, StoreError> {
        bump(&self.counts.put, file.metadata().map_or(0, |m| m.len()));
        self.inner.put_file(key, file, mode).await
    }

    async fn put_file_hashed(
        &self,
        key: &ObjectKey,
        file: std::fs::File,
        mode: PutMode,
    ) -> Result<(Version, UploadDigest), StoreError> {
        bump(&self.counts.put, file.metadata().map_or(0, |m| m.len()));
        self.inner.put_file_hashed(key, file, mode).await
    }

    async fn leftovers(&self, prefix: &str, sweep: Sweep) -> Result<Vec<Leftover>, StoreError> {
        // Local files of the backend, not requests: not counted.
        self.inner.leftovers(prefix, sweep).await
    }
}
