//! `object-store.deliver` (0.7.3): a `models.get-file` whose bytes go
//! where the user asked, never into the extension's cache directory.
//!
//! The operation names a delivery ([`Deliveries::expect`]: a cache path
//! under [`DELIVERY_DIR`], and the directory and file name the bytes are
//! for), hands that path to `get-file`, and takes what landed
//! ([`Delivery::take`]): a temporary file beside the destination with the
//! sha256 and size the host hashed while writing it. The operation checks
//! those against the version `get-file` answers before the file is renamed
//! into place. The guest names only the object: it never learns the
//! destination, and the file is not in a directory it can reach (unless
//! the user asked for one inside the working copy), so nothing it does
//! afterwards can change what was checked. An extension
//! built before 0.7.3 writes the cache path instead, and the operation
//! copies from there as it always did.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::landing::TempFile;
use crate::beneath::Beneath;
use crate::store;

/// Where the host names deliveries, relative to the cache directory.
pub const DELIVERY_DIR: &str = ".silt/deliver";

/// The deliveries an operation is waiting for, by cache path: shared by the
/// operation (which names them) and its `object-store` import (which
/// makes them).
#[derive(Default)]
pub struct Deliveries {
    slots: Mutex<HashMap<String, Slot>>,
}

enum Slot {
    /// Named, not yet made (or a failed attempt, which may be retried).
    Waiting(Destination),
    /// A `deliver` call is writing it.
    Landing,
    /// Made: waiting for the operation to take it.
    Landed(Delivered),
}

/// Where a delivery's bytes go: a file name in a directory.
#[derive(Clone)]
pub(super) struct Destination {
    pub dir: Arc<Beneath>,
    pub name: String,
}

/// A delivered object: a complete temporary file beside its destination,
/// removed when dropped unless [`Delivered::rename_into_place`] ran.
pub struct Delivered {
    /// The object, as the store answered it.
    pub meta: store::ObjectMeta,
    /// Lowercase hex sha256 of the bytes written, hashed as they landed.
    pub sha256: String,
    /// Bytes written.
    pub size: u64,
    temp: TempFile,
    name: String,
}

impl Delivered {
    pub(super) fn new(
        meta: store::ObjectMeta,
        sha256: String,
        size: u64,
        temp: TempFile,
        name: String,
    ) -> Self {
        Self {
            meta,
            sha256,
            size,
            temp,
            name,
        }
    }

    /// Syncs the file to disk and renames it over its destination, so the
    /// destination is the old file or the complete new one, even after a
    /// crash.
    ///
    /// # Errors
    /// When the sync or the rename fails (the temporary file is removed).
    pub fn rename_into_place(self) -> std::io::Result<()> {
        self.temp.file().sync_all()?;
        self.temp.rename_to(&self.name)
    }
}

impl Deliveries {
    /// Names a delivery: `cache_path` (under [`DELIVERY_DIR`]) is to land
    /// as `name` (one path component) in `dir`. It lasts as long as the
    /// answer.
    pub fn expect(self: &Arc<Self>, cache_path: &str, dir: Arc<Beneath>, name: String) -> Delivery {
        self.lock().insert(
            cache_path.to_owned(),
            Slot::Waiting(Destination { dir, name }),
        );
        Delivery {
            deliveries: self.clone(),
            cache_path: cache_path.to_owned(),
        }
    }

    /// Where `cache_path` is to land, if it names a delivery waiting to be
    /// made; it is then being made until [`Self::landed`] or
    /// [`Self::failed`].
    pub(super) fn start(&self, cache_path: &str) -> Option<Destination> {
        let mut slots = self.lock();
        let slot = slots.get_mut(cache_path)?;
        match std::mem::replace(slot, Slot::Landing) {
            Slot::Waiting(destination) => Some(destination),
            other => {
                *slot = other;
                None
            }
        }
    }

    /// The delivery of `cache_path` is made. A delivery its operation no
    /// longer waits for is dropped (its file removed).
    pub(super) fn landed(&self, cache_path: &str, delivered: Delivered) {
        if let Some(slot) = self.lock().get_mut(cache_path) {
            *slot = Slot::Landed(delivered);
        }
    }

    /// The attempt to make `cache_path` failed: it may be tried again.
    pub(super) fn failed(&self, cache_path: &str, destination: Destination) {
        if let Some(slot) = self.lock().get_mut(cache_path) {
            *slot = Slot::Waiting(destination);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Slot>> {
        // A panic while holding it left no half-made change.
        self.slots
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// A delivery an operation is waiting for; forgotten when dropped (a
/// file delivered and not taken is removed).
pub struct Delivery {
    deliveries: Arc<Deliveries>,
    cache_path: String,
}

impl Delivery {
    /// The cache path to hand `get-file`.
    pub fn cache_path(&self) -> &str {
        &self.cache_path
    }

    /// What was delivered, once; `None` when nothing was (the extension
    /// wrote the cache path instead, or its `deliver` failed).
    pub fn take(&self) -> Option<Delivered> {
        let mut slots = self.deliveries.lock();
        match slots.remove(&self.cache_path) {
            Some(Slot::Landed(delivered)) => Some(delivered),
            Some(other) => {
                slots.insert(self.cache_path.clone(), other);
                None
            }
            None => None,
        }
    }
}

impl Drop for Delivery {
    fn drop(&mut self) {
        let slot = self.deliveries.lock().remove(&self.cache_path);
        // Dropped outside the lock: removing a file is I/O.
        drop(slot);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bindings::silt::datastore::object_store::{DownloadItem, StoreError};
    use crate::capabilities::{Grants, LocalStore};
    use crate::store::{MemoryStore, ObjectKey, ObjectStore, PutMode};

    const CONTENTS: &[u8] = b"the delivered contents";

    /// A store holding `m/f`, a cache directory, a destination directory
    /// and the import on them.
    struct Setup {
        cache: tempfile::TempDir,
        out: tempfile::TempDir,
        deliveries: Arc<Deliveries>,
        local: LocalStore,
    }

    async fn setup() -> Setup {
        let store = Arc::new(MemoryStore::new());
        store
            .put(
                &ObjectKey::new("m/f").unwrap(),
                CONTENTS.to_vec(),
                PutMode::Create,
            )
            .await
            .unwrap();
        let cache = tempfile::tempdir().unwrap();
        let out = tempfile::tempdir().unwrap();
        let deliveries = Arc::new(Deliveries::default());
        let grants = Grants {
            store: Some(store),
            cache_dir: Some(cache.path().to_owned()),
            deliveries: deliveries.clone(),
            ..Grants::default()
        };
        let local = LocalStore::new(&grants).unwrap();
        Setup {
            cache,
            out,
            deliveries,
            local,
        }
    }

    impl Setup {
        fn expect(&self, cache_path: &str) -> Delivery {
            let dir = Arc::new(Beneath::open(self.out.path()).unwrap());
            self.deliveries
                .expect(cache_path, dir, "result.bin".to_owned())
        }
    }

    fn item(cache_path: &str, sha256: &str) -> DownloadItem {
        DownloadItem {
            key: "m/f".to_owned(),
            cache_path: cache_path.to_owned(),
            expected_version: None,
            sha256: Some(sha256.to_owned()),
        }
    }

    /// Every file beneath `dir`, relative, sorted.
    fn files(dir: &std::path::Path) -> Vec<String> {
        fn walk(root: &std::path::Path, dir: &std::path::Path, found: &mut Vec<String>) {
            for entry in std::fs::read_dir(dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    walk(root, &path, found);
                } else {
                    found.push(path.strip_prefix(root).unwrap().display().to_string());
                }
            }
        }
        let mut found = Vec::new();
        walk(dir, dir, &mut found);
        found.sort();
        found
    }

    #[tokio::test]
    async fn a_named_delivery_lands_beside_its_destination_and_never_in_the_cache() {
        let setup = setup().await;
        let path = ".silt/deliver/1-2";
        let delivery = setup.expect(path);
        let sha256 = crate::sha256_hex(CONTENTS);
        let meta = setup.local.deliver(item(path, &sha256)).await.unwrap();
        assert_eq!(meta.size, CONTENTS.len() as u64);
        assert_eq!(files(setup.cache.path()), Vec::<String>::new());
        // A temporary name beside the destination, not the destination.
        let landed = files(setup.out.path());
        assert_eq!(landed.len(), 1, "{landed:?}");
        assert!(landed[0].contains(".silt-tmp."), "{landed:?}");

        let delivered = delivery.take().expect("delivered");
        assert!(delivery.take().is_none(), "taken once");
        assert_eq!(delivered.sha256, sha256);
        assert_eq!(delivered.size, CONTENTS.len() as u64);
        delivered.rename_into_place().unwrap();
        assert_eq!(files(setup.out.path()), ["result.bin"]);
        assert_eq!(
            std::fs::read(setup.out.path().join("result.bin")).unwrap(),
            CONTENTS
        );
    }

    #[tokio::test]
    async fn only_a_delivery_the_host_waits_for_is_made_and_only_once() {
        let setup = setup().await;
        let sha256 = crate::sha256_hex(CONTENTS);
        // A path the host never named.
        let err = setup
            .local
            .deliver(item(".silt/deliver/planted", &sha256))
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::InvalidPath(_)), "{err:?}");
        assert_eq!(files(setup.out.path()), Vec::<String>::new());

        let path = ".silt/deliver/1-2";
        let delivery = setup.expect(path);
        setup.local.deliver(item(path, &sha256)).await.unwrap();
        let again = setup.local.deliver(item(path, &sha256)).await.unwrap_err();
        assert!(matches!(again, StoreError::InvalidPath(_)), "{again:?}");
        assert_eq!(files(setup.out.path()).len(), 1);
        // Not taken: the operation gave up, and the file goes with it.
        drop(delivery);
        assert_eq!(files(setup.out.path()), Vec::<String>::new());
        // Nor can it be made after.
        let late = setup.local.deliver(item(path, &sha256)).await.unwrap_err();
        assert!(matches!(late, StoreError::InvalidPath(_)), "{late:?}");
    }

    #[tokio::test]
    async fn a_delivery_that_fails_its_checksum_leaves_nothing_and_may_be_tried_again() {
        let setup = setup().await;
        let path = ".silt/deliver/1-2";
        let delivery = setup.expect(path);
        let wrong = crate::sha256_hex(b"other contents");
        let err = setup.local.deliver(item(path, &wrong)).await.unwrap_err();
        assert!(matches!(err, StoreError::ChecksumMismatch(_)), "{err:?}");
        assert_eq!(files(setup.out.path()), Vec::<String>::new());
        assert!(delivery.take().is_none());

        let sha256 = crate::sha256_hex(CONTENTS);
        setup.local.deliver(item(path, &sha256)).await.unwrap();
        assert_eq!(delivery.take().expect("delivered").sha256, sha256);
    }
}
