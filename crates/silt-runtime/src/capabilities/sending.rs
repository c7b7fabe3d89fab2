//! A `put` whose bytes the host has hashed already: `upload-hashed` of
//! its staged copy answers the sha256 the host took while staging it,
//! instead of hashing the file again, as long as the file is still the
//! one the host wrote.
//!
//! The operation copies the file given into the cache, hashing it, and
//! keeps the file's identity and shape from the end of that write through
//! its own renames; if they held, it names the staged path a sending
//! ([`Sendings::expect`]) for as long as `put-file` runs. An
//! `upload-hashed` item naming that path uploads what is there like any
//! other; if the file it opened is that same file (device and inode) with
//! the same shape (size, modification and change times) before and after
//! the send, the answer is the staging hash. Otherwise (the extension rewrote or replaced it) the file is
//! hashed as it is sent, as for any other path. The staged copy is a
//! snapshot only the extension can write; a rewrite of the same size
//! within one tick of a coarse clock would keep its shape, and is what a
//! hostile extension could do more simply by uploading other bytes than it
//! records: readers check every byte against the index's sha256.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// What changes when a file is written or replaced: its device and inode,
/// its size, its modification time (which a writer may set back) and its
/// change time (which it cannot).
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
pub struct FileShape {
    identity: (u64, u64),
    size: u64,
    modified: (i64, i64),
    changed: (i64, i64),
}

impl FileShape {
    /// The file's size.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// `file`'s shape now.
    ///
    /// # Errors
    /// When its metadata cannot be read.
    pub fn of(file: &std::fs::File) -> std::io::Result<Self> {
        use std::os::unix::fs::MetadataExt as _;
        let meta = file.metadata()?;
        Ok(Self {
            identity: (meta.dev(), meta.ino()),
            size: meta.len(),
            modified: (meta.mtime(), meta.mtime_nsec()),
            changed: (meta.ctime(), meta.ctime_nsec()),
        })
    }
}

/// A staged file as the host wrote it: its shape (its size among it), and
/// the sha256 of the bytes it wrote there.
#[derive(Debug, Clone)]
pub struct StagedFile {
    /// Its shape as the host left it (after its own renames).
    pub shape: FileShape,
    /// Lowercase hex sha256 of the bytes the host wrote.
    pub sha256: String,
}

/// The sendings an operation names, by cache path: shared by the
/// operation and its `object-store` import.
#[derive(Default)]
pub struct Sendings {
    slots: Mutex<HashMap<String, StagedFile>>,
}

impl Sendings {
    /// Names `cache_path` a sending of `staged` until the answer is dropped.
    pub fn expect(self: &Arc<Self>, cache_path: &str, staged: StagedFile) -> Sending {
        let earlier = self.lock().insert(cache_path.to_owned(), staged);
        // The earlier one's guard would forget this one when dropped.
        debug_assert!(earlier.is_none(), "{cache_path} named a sending twice");
        Sending {
            sendings: self.clone(),
            cache_path: cache_path.to_owned(),
        }
    }

    /// What the host staged at `cache_path`, if it names a sending.
    pub(super) fn staged(&self, cache_path: &str) -> Option<StagedFile> {
        self.lock().get(cache_path).cloned()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, StagedFile>> {
        // A panic while holding it left no half-made change.
        self.slots
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// A sending an operation named; forgotten when dropped.
#[must_use = "a sending is forgotten as soon as this is dropped"]
pub struct Sending {
    sendings: Arc<Sendings>,
    cache_path: String,
}

impl Drop for Sending {
    fn drop(&mut self) {
        self.sendings.lock().remove(&self.cache_path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bindings::silt::datastore::object_store::{
        PutMode, StoreError, UploadItem, Uploaded,
    };
    use crate::capabilities::{Grants, LocalStore};
    use crate::store::{MemoryStore, ObjectKey, ObjectStore};

    const WRITTEN: &[u8] = b"the bytes the host staged";
    const STAGED: &str = ".silt/staging/1-2";

    /// A store, a cache holding a staged file, and the import on them.
    struct Setup {
        store: Arc<MemoryStore>,
        cache: tempfile::TempDir,
        sendings: Arc<Sendings>,
        local: LocalStore,
    }

    fn setup() -> Setup {
        let store = Arc::new(MemoryStore::new());
        let cache = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(cache.path().join(".silt/staging")).unwrap();
        std::fs::write(cache.path().join(STAGED), WRITTEN).unwrap();
        let sendings = Arc::new(Sendings::default());
        let grants = Grants {
            store: Some(store.clone()),
            cache_dir: Some(cache.path().to_owned()),
            sendings: sendings.clone(),
            ..Grants::default()
        };
        let local = LocalStore::new(&grants).unwrap();
        Setup {
            store,
            cache,
            sendings,
            local,
        }
    }

    impl Setup {
        /// Names the staged file a sending, as written, hashed as `sha256`.
        fn expect(&self, sha256: &str) -> Sending {
            let file = std::fs::File::open(self.cache.path().join(STAGED)).unwrap();
            let staged = StagedFile {
                shape: FileShape::of(&file).unwrap(),
                sha256: sha256.to_owned(),
            };
            self.sendings.expect(STAGED, staged)
        }

        async fn upload(&self) -> Result<Uploaded, StoreError> {
            let item = UploadItem {
                cache_path: STAGED.to_owned(),
                key: "m/f".to_owned(),
                mode: PutMode::Create,
            };
            self.local.upload_hashed(vec![item]).await.pop().unwrap()
        }

        async fn stored(&self) -> Vec<u8> {
            let key = ObjectKey::new("m/f").unwrap();
            match self.store.get(&key, None).await.unwrap() {
                crate::store::GetOutcome::Found(_, data) => data.to_vec(),
                crate::store::GetOutcome::NotModified => unreachable!(),
            }
        }
    }

    /// A hash no bytes have: what the answer carries when the upload did
    /// not hash the file itself.
    const TAKEN_WHEN_STAGED: &str =
        "5a6ed1c0c4bb7a2e0a0ee2d3d1f1a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7";

    #[tokio::test]
    async fn a_staged_file_as_written_is_sent_and_answered_with_the_hash_taken_when_staged() {
        let setup = setup();
        let _sending = setup.expect(TAKEN_WHEN_STAGED);
        let uploaded = setup.upload().await.unwrap();
        assert_eq!(uploaded.sha256, TAKEN_WHEN_STAGED, "not hashed again");
        assert_eq!(uploaded.size, WRITTEN.len() as u64);
        assert_eq!(setup.stored().await, WRITTEN);
    }

    #[tokio::test]
    async fn a_staged_file_the_extension_rewrote_or_replaced_is_hashed_as_it_is_sent() {
        let rewritten = b"THE BYTES THE HOST STAGED";
        for replace in [false, true] {
            let setup = setup();
            let _sending = setup.expect(TAKEN_WHEN_STAGED);
            let path = setup.cache.path().join(STAGED);
            if replace {
                // Another file of the same size and times in its place.
                let other = setup.cache.path().join("other");
                std::fs::write(&other, rewritten).unwrap();
                let times = std::fs::File::open(&path).unwrap().metadata().unwrap();
                std::fs::File::options()
                    .write(true)
                    .open(&other)
                    .unwrap()
                    .set_modified(times.modified().unwrap())
                    .unwrap();
                std::fs::rename(&other, &path).unwrap();
            } else {
                // The same size, rewritten: its change time tells.
                std::thread::sleep(std::time::Duration::from_millis(20));
                std::fs::write(&path, rewritten).unwrap();
            }
            let uploaded = setup.upload().await.unwrap();
            assert_eq!(
                uploaded.sha256,
                crate::sha256_hex(rewritten),
                "replaced: {replace}"
            );
            assert_eq!(setup.stored().await, rewritten);
        }
    }

    #[tokio::test]
    async fn a_sending_no_longer_named_is_hashed_as_it_is_sent() {
        let setup = setup();
        drop(setup.expect(TAKEN_WHEN_STAGED));
        let uploaded = setup.upload().await.unwrap();
        assert_eq!(uploaded.sha256, crate::sha256_hex(WRITTEN));
    }
}
