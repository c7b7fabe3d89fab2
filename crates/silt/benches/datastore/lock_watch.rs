//! A store wrapper that sees locks from the store's side: when a lock
//! object is created and when it is deleted. The holds it records are what
//! other writers would wait for, whatever the extension's protocol.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use silt::store::{ObjectKey, ObjectStore, PutMode, StoreError, Version};

/// One hold of one lock object, from its creation to its deletion.
#[derive(Debug, Clone)]
pub struct Hold {
    /// The lock object's key.
    pub key: String,
    /// Created → deleted.
    pub held: Duration,
}

/// The wrapper.
pub struct LockWatch {
    inner: Arc<dyn ObjectStore>,
    open: Mutex<Vec<(String, Instant)>>,
    holds: Mutex<Vec<Hold>>,
}

impl LockWatch {
    /// Watches `inner`.
    pub fn new(inner: Arc<dyn ObjectStore>) -> Self {
        Self {
            inner,
            open: Mutex::new(Vec::new()),
            holds: Mutex::new(Vec::new()),
        }
    }

    /// Takes the holds completed so far.
    pub fn take(&self) -> Vec<Hold> {
        std::mem::take(&mut self.holds.lock().unwrap())
    }
}

fn is_lock(key: &ObjectKey) -> bool {
    key.as_str().starts_with("_locks/")
}

impl std::fmt::Display for LockWatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.inner.fmt(f)
    }
}

#[async_trait::async_trait]
impl silt::store::StoreWrapper for LockWatch {
    type Inner = dyn ObjectStore;

    fn inner(&self) -> &dyn ObjectStore {
        &*self.inner
    }

    async fn put(
        &self,
        key: &ObjectKey,
        data: Vec<u8>,
        mode: PutMode,
    ) -> Result<Version, StoreError> {
        let created = matches!(mode, PutMode::Create);
        let result = self.inner.put(key, data, mode).await;
        if created && result.is_ok() && is_lock(key) {
            self.open
                .lock()
                .unwrap()
                .push((key.as_str().to_owned(), Instant::now()));
        }
        result
    }

    async fn delete(&self, key: &ObjectKey, if_match: Option<&Version>) -> Result<(), StoreError> {
        let result = self.inner.delete(key, if_match).await;
        if result.is_ok() && is_lock(key) {
            let mut open = self.open.lock().unwrap();
            if let Some(at) = open.iter().position(|(k, _)| k == key.as_str()) {
                let (key, since) = open.remove(at);
                self.holds.lock().unwrap().push(Hold {
                    key,
                    held: since.elapsed(),
                });
            }
        }
        result
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
