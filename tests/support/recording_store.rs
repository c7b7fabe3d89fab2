//! A store that records the key of every read (to check what a command
//! fetched, not only how much) and can fail the next bulk downloads (to
//! inject a hydration failure).

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};

use silt::store::{
    GetOutcome, ListPage, ObjectKey, ObjectMeta, ObjectStore, PutMode, StoreError, Version,
};

/// Records reads of `inner`; fails the next `failing_downloads` downloads.
pub struct Recording {
    inner: Arc<dyn ObjectStore>,
    reads: Mutex<Vec<String>>,
    failing_downloads: AtomicU32,
}

impl Recording {
    /// Wraps `inner`.
    pub fn new(inner: Arc<dyn ObjectStore>) -> Self {
        Self {
            inner,
            reads: Mutex::new(Vec::new()),
            failing_downloads: AtomicU32::new(0),
        }
    }

    /// The keys read so far (GET, HEAD, download; `list:<prefix>` for a
    /// listing), and forgets them.
    pub fn take_reads(&self) -> Vec<String> {
        std::mem::take(&mut self.reads.lock().unwrap())
    }

    /// Makes the next `count` downloads fail (not retryable).
    pub fn fail_next_downloads(&self, count: u32) {
        self.failing_downloads.store(count, Ordering::SeqCst);
    }

    fn record(&self, key: String) {
        self.reads.lock().unwrap().push(key);
    }
}

impl std::fmt::Display for Recording {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "recording({})", self.inner)
    }
}

#[async_trait::async_trait]
impl silt::store::StoreWrapper for Recording {
    type Inner = dyn ObjectStore;

    fn inner(&self) -> &dyn ObjectStore {
        &*self.inner
    }

    async fn get(
        &self,
        key: &ObjectKey,
        if_none_match: Option<&Version>,
    ) -> Result<GetOutcome, StoreError> {
        self.record(key.as_str().to_owned());
        self.inner.get(key, if_none_match).await
    }
    async fn head(&self, key: &ObjectKey) -> Result<ObjectMeta, StoreError> {
        self.record(key.as_str().to_owned());
        self.inner.head(key).await
    }
    async fn list(
        &self,
        prefix: &str,
        start_after: Option<&ObjectKey>,
        limit: u32,
    ) -> Result<ListPage, StoreError> {
        self.record(format!("list:{prefix}"));
        self.inner.list(prefix, start_after, limit).await
    }
    async fn get_into(
        &self,
        key: &ObjectKey,
        sink: &mut (dyn tokio::io::AsyncWrite + Unpin + Send),
    ) -> Result<ObjectMeta, StoreError> {
        self.record(key.as_str().to_owned());
        let fail = self
            .failing_downloads
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        if fail {
            return Err(StoreError::Backend {
                store: self.to_string(),
                retryable: false,
                detail: "injected download failure".to_owned(),
            });
        }
        self.inner.get_into(key, sink).await
    }
    async fn put_file(
        &self,
        key: &ObjectKey,
        file: std::fs::File,
        mode: PutMode,
    ) -> Result<Version, StoreError> {
        self.inner.put_file(key, file, mode).await
    }

    async fn put_file_hashed(
        &self,
        key: &ObjectKey,
        file: std::fs::File,
        mode: PutMode,
    ) -> Result<(Version, silt::store::UploadDigest), StoreError> {
        self.inner.put_file_hashed(key, file, mode).await
    }
}
