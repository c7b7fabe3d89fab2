//! A `put` whose bytes the host reads itself, named to the extension by
//! the cache path the operation hands `models.put-file`:
//!
//! - **A staged copy.** `upload-hashed` of the staged copy answers the
//!   sha256 the host took while staging it, instead of hashing the file
//!   again, as long as the file is still the one the host wrote. The
//!   operation copies the file given into the cache, hashing it, and keeps
//!   the file's identity and shape from the end of that write through its
//!   own renames; if they held, it names the staged path a sending
//!   ([`Sendings::expect`]) for as long as `put-file` runs. An
//!   `upload-hashed` item naming that path uploads what is there like any
//!   other; if the file it opened is that same file (device and inode)
//!   with the same shape (size, modification and change times) before and
//!   after the send, the answer is the staging hash. Otherwise (the
//!   extension rewrote or replaced it) the file is hashed as it is sent, as
//!   for any other path. The staged copy is a snapshot only the extension
//!   can write; a rewrite of the same size within one tick of a coarse
//!   clock would keep its shape, and is what a hostile extension could do
//!   more simply by uploading other bytes than it records: readers check
//!   every byte against the index's sha256.
//! - **The file given (0.7.4).** For an extension built for 0.7.4 the
//!   operation copies nothing: it opens the user's file ([`GivenFile`]) and,
//!   for as long as each `put-file` attempt runs, names a path under
//!   [`SEND_DIR`] that holds no file ([`Sendings::expect_given`]).
//!   `upload-hashed` of that path sends the file the host opened, hashed as
//!   it is sent where the store allows, refused if its shape moved from
//!   when the operation opened it; the operation then reads the digest of
//!   what was sent ([`GivenFile::sent`]) to check the commit against, or
//!   hashes the file itself if nothing sent it ([`GivenFile::hash_unsent`]).
//!   The extension never learns where the file is, and nothing it writes
//!   in its cache is read instead.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
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

/// Where the operation names the sendings of a file given (0.7.4), in the
/// cache path it hands `put-file`: no file is ever there.
pub const SEND_DIR: &str = ".silt/send";

/// What a cache path names a sending of.
#[derive(Clone)]
pub(super) enum Named {
    /// A staged copy in the cache, as the host wrote it.
    Staged(StagedFile),
    /// The file the user gave, open in the host.
    Given(Arc<GivenFile>),
}

/// The file a `put` was given, opened by the operation, and the digest of
/// what its sends took from it.
pub struct GivenFile {
    /// Where the user keeps it, for errors.
    shown: String,
    /// Held across a send: the sends of one file take turns, each from its
    /// start (a clone shares the file's offset).
    file: tokio::sync::Mutex<std::fs::File>,
    /// Its shape when the operation opened it.
    shape: FileShape,
    sent: Mutex<Option<SentDigest>>,
    /// A send found it changed.
    seen_changed: AtomicBool,
}

/// The sha256 (lowercase hex) and size of what a send read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentDigest {
    /// Lowercase hex sha256.
    pub sha256: String,
    /// Bytes read.
    pub size: u64,
}

impl GivenFile {
    /// `file`, opened from `shown` (a path, for errors).
    ///
    /// # Errors
    /// When its metadata cannot be read.
    pub fn new(file: std::fs::File, shown: String) -> std::io::Result<Arc<Self>> {
        Ok(Arc::new(Self {
            shown,
            shape: FileShape::of(&file)?,
            file: tokio::sync::Mutex::new(file),
            sent: Mutex::new(None),
            seen_changed: AtomicBool::new(false),
        }))
    }

    /// The digest of the last send of the whole file whose shape had not
    /// moved since it was given: `None` when no such send was made.
    pub fn sent(&self) -> Option<SentDigest> {
        self.sent
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// The file's digest, read by the host in a pass of its own (for a
    /// commit nothing sent): refused, as a send is, when its shape moved
    /// from when it was given to the end of the pass.
    ///
    /// # Errors
    /// When it cannot be read, or it changed ([`GivenFile::changed`]).
    pub async fn hash_unsent(&self) -> std::io::Result<SentDigest> {
        let file = self.file.lock().await;
        let unmoved = |file: &std::fs::File| {
            FileShape::of(file).and_then(|shape| {
                if shape == self.shape {
                    Ok(())
                } else {
                    Err(std::io::Error::other(self.changed()))
                }
            })
        };
        unmoved(&file)?;
        let reader = file.try_clone()?;
        let size = self.shape.size();
        let (sha256, read) = tokio::task::spawn_blocking(move || {
            crate::store::sha256_at_offsets(&reader, size, &AtomicBool::new(false))
        })
        .await
        .map_err(std::io::Error::other)??;
        unmoved(&file)?;
        if read != size {
            return Err(std::io::Error::other(self.changed()));
        }
        Ok(SentDigest {
            sha256: crate::hex(&sha256),
            size,
        })
    }

    /// True when a send found the file changed (and was refused).
    pub fn seen_changed(&self) -> bool {
        self.seen_changed.load(Ordering::Relaxed)
    }

    /// Notes that a send found the file changed.
    pub(super) fn saw_change(&self) {
        self.seen_changed.store(true, Ordering::Relaxed);
    }

    /// What is wrong with a file given that changed while it was put.
    pub fn changed(&self) -> String {
        format!(
            "{} changed while it was put: put it again once it is written",
            self.shown
        )
    }

    pub(super) async fn take_turn(
        &self,
    ) -> (tokio::sync::MutexGuard<'_, std::fs::File>, FileShape) {
        (self.file.lock().await, self.shape)
    }

    /// Records what a send of the whole file, its shape unmoved, read.
    pub(super) fn record(&self, sent: SentDigest) {
        *self
            .sent
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(sent);
    }
}

/// The sendings an operation names, by cache path: shared by the
/// operation and its `object-store` import.
#[derive(Default)]
pub struct Sendings {
    slots: Mutex<HashMap<String, Named>>,
}

impl Sendings {
    /// Names `cache_path` a sending of `staged` until the answer is dropped.
    pub fn expect(self: &Arc<Self>, cache_path: &str, staged: StagedFile) -> Sending {
        self.name(cache_path, Named::Staged(staged))
    }

    /// Names `cache_path` (under [`SEND_DIR`]) a sending of `given`, the
    /// file a `put` was given, until the answer is dropped.
    pub fn expect_given(self: &Arc<Self>, cache_path: &str, given: Arc<GivenFile>) -> Sending {
        self.name(cache_path, Named::Given(given))
    }

    fn name(self: &Arc<Self>, cache_path: &str, named: Named) -> Sending {
        let earlier = self.lock().insert(cache_path.to_owned(), named);
        // The earlier one's guard would forget this one when dropped.
        debug_assert!(earlier.is_none(), "{cache_path} named a sending twice");
        Sending {
            sendings: self.clone(),
            cache_path: cache_path.to_owned(),
        }
    }

    /// What `cache_path` names a sending of, if anything.
    pub(super) fn named(&self, cache_path: &str) -> Option<Named> {
        self.lock().get(cache_path).cloned()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Named>> {
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

    /// The bytes of a file given, kept outside the cache.
    const GIVEN: &[u8] = b"the bytes of the file the user gave";
    /// Where the operation names a sending of a file given.
    const SENT: &str = ".silt/send/1-2";

    impl Setup {
        /// A file outside the cache holding `GIVEN`, given; planted in the
        /// cache at `SENT`, other bytes (what a hostile extension could
        /// put there).
        fn given(&self) -> (Arc<GivenFile>, tempfile::NamedTempFile) {
            std::fs::create_dir_all(self.cache.path().join(SEND_DIR)).unwrap();
            std::fs::write(self.cache.path().join(SENT), WRITTEN).unwrap();
            let mut outside = tempfile::NamedTempFile::new().unwrap();
            std::io::Write::write_all(&mut outside, GIVEN).unwrap();
            let file = std::fs::File::open(outside.path()).unwrap();
            let shown = "/home/user/weights.bin".to_owned();
            (GivenFile::new(file, shown).unwrap(), outside)
        }

        async fn upload_sent(&self) -> Result<Uploaded, StoreError> {
            let item = UploadItem {
                cache_path: SENT.to_owned(),
                key: "m/f".to_owned(),
                mode: PutMode::Overwrite,
            };
            self.local.upload_hashed(vec![item]).await.pop().unwrap()
        }
    }

    #[tokio::test]
    async fn a_file_given_is_sent_from_where_it_is_never_from_the_cache() {
        let setup = setup();
        let (given, _outside) = setup.given();
        let sending = setup.sendings.expect_given(SENT, given.clone());
        assert_eq!(given.sent(), None, "nothing sent yet");
        for _ in 0..2 {
            // Each send reads it from its start, whatever position the
            // last one left.
            let uploaded = setup.upload_sent().await.unwrap();
            assert_eq!(uploaded.sha256, crate::sha256_hex(GIVEN));
            assert_eq!(uploaded.size, GIVEN.len() as u64);
            assert_eq!(setup.stored().await, GIVEN);
        }
        let sent = given.sent().expect("recorded");
        assert_eq!(sent.sha256, crate::sha256_hex(GIVEN));
        assert_eq!(sent.size, GIVEN.len() as u64);
        assert!(!given.seen_changed());
        drop(sending);
        let uploaded = setup.upload_sent().await.unwrap();
        assert_eq!(
            setup.stored().await,
            WRITTEN,
            "a sending no longer named reads the cache"
        );
        assert_eq!(uploaded.sha256, crate::sha256_hex(WRITTEN));
        // The file itself, hashed by the host, unchanged since given.
        assert_eq!(given.hash_unsent().await.unwrap(), sent);
    }

    #[tokio::test]
    async fn a_file_given_that_was_written_after_it_was_given_is_refused() {
        for grown in [false, true] {
            let setup = setup();
            let (given, outside) = setup.given();
            let _sending = setup.sendings.expect_given(SENT, given.clone());
            std::thread::sleep(std::time::Duration::from_millis(20));
            if grown {
                let mut file = std::fs::File::options()
                    .append(true)
                    .open(outside.path())
                    .unwrap();
                std::io::Write::write_all(&mut file, b" and more").unwrap();
            } else {
                std::fs::write(outside.path(), b"THE BYTES OF THE FILE THE USER GAVE").unwrap();
            }
            match setup.upload_sent().await {
                Err(StoreError::InvalidPath(why)) => {
                    assert!(why.contains("changed while it was sent"), "{why}");
                    // The guest is not told where the file is.
                    assert!(!why.contains("weights.bin"), "{why}");
                }
                other => panic!("grown {grown}: {other:?}"),
            }
            assert_eq!(given.sent(), None, "nothing recorded");
            assert!(given.seen_changed());
            let refused = given.hash_unsent().await.unwrap_err();
            assert!(
                refused
                    .to_string()
                    .contains("/home/user/weights.bin changed while it was put"),
                "{refused}"
            );
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
