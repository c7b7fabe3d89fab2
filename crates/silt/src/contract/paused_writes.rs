//! A clone's store that can hold one of its writes mid-flight, as a writer
//! stopped between two steps of a commit (a long GC pause, `SIGSTOP`, a
//! laptop lid closed) would hold it: the suite's check of fencing by
//! generation lets another clone take the model over while the write waits,
//! then lets it go.
//!
//! Every other request passes straight through; reads are never held, so
//! what the paused writer looked at before the write stays what it saw.

use std::fmt::{self, Display};
use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;

use crate::store::{ObjectKey, ObjectStore, PutMode, StoreError, Version};

/// The store of the clone whose writes can be held.
pub(super) struct PausedWrites {
    inner: Arc<dyn ObjectStore>,
    trap: Mutex<Option<Trap>>,
}

/// Holds the `nth` write counted from when it was armed.
struct Trap {
    nth: u32,
    seen: u32,
    held: oneshot::Sender<Held>,
}

/// A write being held. Dropping it lets the write go on.
pub(super) struct Held {
    /// What kind of write it is (never the key: the extension chose it).
    pub kind: &'static str,
    resume: oneshot::Sender<()>,
}

impl Held {
    /// Lets the held write go on to the store.
    pub(super) fn resume(self) {
        let _ = self.resume.send(());
    }
}

impl PausedWrites {
    /// Wraps the datastore's store; nothing is held until [`Self::arm`].
    pub(super) fn new(inner: Arc<dyn ObjectStore>) -> Self {
        Self {
            inner,
            trap: Mutex::new(None),
        }
    }

    /// Holds the `nth` write (1-based) from now on; the receiver hears of
    /// it when it is reached.
    pub(super) fn arm(&self, nth: u32) -> oneshot::Receiver<Held> {
        let (held, reached) = oneshot::channel();
        *self.trap.lock().expect("trap lock") = Some(Trap { nth, seen: 0, held });
        reached
    }

    /// Holds nothing more.
    pub(super) fn disarm(&self) {
        *self.trap.lock().expect("trap lock") = None;
    }

    /// Counts one write and waits while it is the one to hold.
    async fn before_write(&self, kind: &'static str) {
        let sprung = {
            let mut trap = self.trap.lock().expect("trap lock");
            match trap.as_mut() {
                Some(armed) => {
                    armed.seen += 1;
                    if armed.seen == armed.nth {
                        trap.take()
                    } else {
                        None
                    }
                }
                None => None,
            }
        };
        if let Some(trap) = sprung {
            let (resume, resumed) = oneshot::channel();
            if trap.held.send(Held { kind, resume }).is_ok() {
                // A dropped `Held` resumes the write too.
                let _ = resumed.await;
            }
        }
    }
}

/// What a put is, in the contract's words.
fn put_kind(mode: &PutMode, upload: bool) -> &'static str {
    match (mode, upload) {
        (PutMode::Update(_), _) => "a compare-and-swap",
        (PutMode::Create, false) => "a create-if-absent",
        (PutMode::Create, true) => "an upload (create-if-absent)",
        (PutMode::Overwrite, false) => "an unconditional put",
        (PutMode::Overwrite, true) => "an upload",
    }
}

impl Display for PausedWrites {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (writes may be held)", self.inner)
    }
}

#[async_trait::async_trait]
impl crate::store::StoreWrapper for PausedWrites {
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
        self.before_write(put_kind(&mode, false)).await;
        self.inner.put(key, data, mode).await
    }

    async fn delete(&self, key: &ObjectKey, if_match: Option<&Version>) -> Result<(), StoreError> {
        self.before_write(match if_match {
            Some(_) => "a conditional delete",
            None => "a delete",
        })
        .await;
        self.inner.delete(key, if_match).await
    }

    async fn put_file(
        &self,
        key: &ObjectKey,
        file: std::fs::File,
        mode: PutMode,
    ) -> Result<Version, StoreError> {
        self.before_write(put_kind(&mode, true)).await;
        self.inner.put_file(key, file, mode).await
    }

    async fn put_file_hashed(
        &self,
        key: &ObjectKey,
        file: std::fs::File,
        mode: PutMode,
    ) -> Result<(Version, crate::store::UploadDigest), StoreError> {
        self.before_write(put_kind(&mode, true)).await;
        self.inner.put_file_hashed(key, file, mode).await
    }
}
