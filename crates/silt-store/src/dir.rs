//! The local-directory backend: the embedded default (`.silt/store`) and
//! shared directories.
//!
//! Every path goes through a `cap_std::fs::Dir` for the store's root, so no
//! key can resolve outside it. Layout: each key segment is a directory,
//! percent-encoded so that `%` and `~` never appear in it; an object's file
//! is its last segment plus `~o`. Suffixed names (`~o` objects, `~t.*`
//! temporaries, `~l` locks) therefore never collide with directories or
//! with one another, so `a` and `a/b` can both be objects.
//!
//! Correctness with several processes racing:
//! - Readers take no lock: writers replace files by rename, so a reader sees
//!   the old object or the new one, never a partial one.
//! - Every write or delete holds a per-key `flock` on a lock file for the
//!   check-and-replace (compare-and-swap, exclusive create). The lock file is
//!   removed when the operation ends; a waiter that then wakes on the removed
//!   file sees that the path no longer names its inode and starts over.
//! - Data is fsync'd before the rename and the directory after it, so a
//!   committed write survives a crash (when `durable`).
//!
//! - A writer killed mid-write leaves its `~t.` temporary behind. Every
//!   temporary exists only while its writer holds the key's lock, so one
//!   whose lock is free is dead: [`ObjectStore::leftovers`] reports and
//!   removes exactly those (taking the lock without waiting, so a writer
//!   that is stopped, not dead, is left alone), and lock files a killed
//!   writer left.
//!
//! Versions are `<inode>.<mtime ns>.<size>` of the object file: every write
//! creates a new file, so a version names exactly one write (no ABA, unlike a
//! content hash), and listing needs only `stat`, never a read.

use std::io::{Read, Write};
use std::os::unix::fs::MetadataExt as _;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use cap_std::fs::{Dir, MetadataExt, OpenOptions};
use tokio::io::{AsyncWrite, AsyncWriteExt};

use super::{
    GetOutcome, Leftover, ListPage, MAX_LIST_PAGE, ObjectKey, ObjectMeta, ObjectStore, PutMode,
    StoreError, Sweep, UploadDigest, Version, mode_allows,
};
use crate::digest::HashingReader;

const OBJECT_SUFFIX: &str = "~o";
const LOCK_SUFFIX: &str = "~l";
const TEMP_MARK: &str = "~t.";

/// An object store in a local or shared directory.
#[derive(Clone)]
pub struct DirStore {
    root: Arc<Dir>,
    root_path: std::path::PathBuf,
    durable: bool,
}

impl std::fmt::Display for DirStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "directory store {}", self.root_path.display())
    }
}

impl DirStore {
    /// Opens (creating if needed) a store rooted at `path`. With `durable`,
    /// writes are fsync'd before they are acknowledged.
    ///
    /// # Errors
    /// [`StoreError::Backend`] when the directory cannot be created or opened.
    pub fn open(path: &Path, durable: bool) -> Result<Self, StoreError> {
        let display = path.display().to_string();
        let backend = |detail: String| StoreError::Backend {
            store: format!("directory store {display}"),
            retryable: false,
            detail,
        };
        std::fs::create_dir_all(path)
            .map_err(|err| backend(format!("cannot create the directory: {err}")))?;
        let root = Dir::open_ambient_dir(path, cap_std::ambient_authority())
            .map_err(|err| backend(format!("cannot open the directory: {err}")))?;
        Ok(Self {
            root: Arc::new(root),
            root_path: path.to_owned(),
            durable,
        })
    }

    fn backend(&self, action: &str, key: &str, err: std::io::Error) -> StoreError {
        StoreError::Backend {
            store: self.to_string(),
            retryable: false,
            detail: format!("cannot {action} `{key}`: {err}"),
        }
    }

    /// Runs blocking filesystem work off the async threads.
    async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce(&DirStore) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let store = self.clone();
        tokio::task::spawn_blocking(move || work(&store))
            .await
            .map_err(|err| StoreError::Backend {
                store: self.to_string(),
                retryable: false,
                detail: format!("filesystem task failed: {err}"),
            })?
    }

    /// Writes `data` under `key` according to `mode`, holding the key's lock.
    fn put_locked(
        &self,
        key: &ObjectKey,
        mode: &PutMode,
        write: impl FnOnce(&mut std::fs::File) -> std::io::Result<()>,
    ) -> Result<Version, StoreError> {
        let paths = Paths::of(key);
        let _lock = self.lock(&paths, key)?;
        let current = match self.root.metadata(&paths.object) {
            Ok(meta) => Some(version_of(&meta)),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => None,
            Err(err) => return Err(self.backend("stat", key.as_str(), err)),
        };
        mode_allows(mode, current.as_ref(), key)?;
        let temp = paths.temp();
        let result = (|| {
            let mut options = OpenOptions::new();
            options.write(true).create_new(true);
            let mut file = self.root.open_with(&temp, &options)?.into_std();
            write(&mut file)?;
            if self.durable {
                file.sync_all()?;
            }
            let version = version_of(&cap_std::fs::Metadata::from_file(&file)?);
            self.root.rename(&temp, &self.root, &paths.object)?;
            if self.durable {
                self.sync_dir(&paths.parent)?;
            }
            Ok(version)
        })();
        result.map_err(|err: std::io::Error| {
            let _ = self.root.remove_file(&temp);
            self.backend("write", key.as_str(), err)
        })
    }

    fn delete_locked(&self, key: &ObjectKey, if_match: Option<&Version>) -> Result<(), StoreError> {
        let paths = Paths::of(key);
        let _lock = self.lock(&paths, key)?;
        match self.root.metadata(&paths.object) {
            Ok(meta) => {
                if if_match.is_some_and(|expected| *expected != version_of(&meta)) {
                    return Err(StoreError::PreconditionFailed {
                        key: key.to_string(),
                    });
                }
            }
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                return match if_match {
                    Some(_) => Err(StoreError::PreconditionFailed {
                        key: key.to_string(),
                    }),
                    None => Ok(()),
                };
            }
            Err(err) => return Err(self.backend("stat", key.as_str(), err)),
        }
        self.root
            .remove_file(&paths.object)
            .map_err(|err| self.backend("delete", key.as_str(), err))?;
        if self.durable {
            self.sync_dir(&paths.parent)
                .map_err(|err| self.backend("sync", key.as_str(), err))?;
        }
        Ok(())
    }

    /// Takes the key's write lock (see the module docs).
    fn lock(&self, paths: &Paths, key: &ObjectKey) -> Result<KeyLock, StoreError> {
        if !paths.parent.is_empty() {
            self.root
                .create_dir_all(&paths.parent)
                .map_err(|err| self.backend("create directories for", key.as_str(), err))?;
        }
        self.lock_file(&paths.lock, key.as_str(), true)?
            .ok_or_else(|| {
                self.backend("lock", key.as_str(), std::io::ErrorKind::WouldBlock.into())
            })
    }

    /// Locks the lock file at `path` (for the key named `key` in errors);
    /// without `wait`, `None` when someone holds it.
    fn lock_file(&self, path: &str, key: &str, wait: bool) -> Result<Option<KeyLock>, StoreError> {
        loop {
            let mut options = OpenOptions::new();
            options.read(true).write(true).create(true);
            let file = self
                .root
                .open_with(path, &options)
                .map_err(|err| self.backend("open the lock of", key, err))?
                .into_std();
            if wait {
                file.lock().map_err(|err| self.backend("lock", key, err))?;
            } else {
                match file.try_lock() {
                    Ok(()) => {}
                    Err(std::fs::TryLockError::WouldBlock) => return Ok(None),
                    Err(std::fs::TryLockError::Error(err)) => {
                        return Err(self.backend("lock", key, err));
                    }
                }
            }
            let held = file
                .metadata()
                .map_err(|err| self.backend("stat the lock of", key, err))?;
            // The previous holder may have removed the file we locked; only a
            // lock on the file the path names now counts.
            match self.root.metadata(path) {
                Ok(current) if current.ino() == held.ino() && current.dev() == held.dev() => {
                    return Ok(Some(KeyLock {
                        root: self.root.clone(),
                        path: path.to_owned(),
                        _file: file,
                    }));
                }
                Ok(_) => continue,
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => continue,
                Err(err) => return Err(self.backend("stat the lock of", key, err)),
            }
        }
    }

    fn sync_dir(&self, dir: &str) -> std::io::Result<()> {
        // cap-std opens directories `O_PATH`, which cannot be fsync'd, so
        // the directory is opened by path for this one call. It only flushes
        // metadata; no data is read or written through that handle.
        std::fs::File::open(self.root_path.join(dir))?.sync_all()
    }

    /// Opens an object for reading, with metadata from the same open file
    /// (so they agree even if a writer replaces the object meanwhile).
    fn open_object(&self, key: &ObjectKey) -> Result<(cap_std::fs::File, ObjectMeta), StoreError> {
        let file = match self.root.open(Paths::of(key).object) {
            Ok(file) => file,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                return Err(StoreError::NotFound {
                    key: key.to_string(),
                });
            }
            Err(err) => return Err(self.backend("open", key.as_str(), err)),
        };
        let meta = file
            .metadata()
            .map_err(|err| self.backend("stat", key.as_str(), err))?;
        let meta = self.meta(key, &meta);
        Ok((file, meta))
    }

    fn meta(&self, key: &ObjectKey, meta: &cap_std::fs::Metadata) -> ObjectMeta {
        ObjectMeta {
            key: key.clone(),
            size: meta.len(),
            version: version_of(meta),
            last_modified_ms: self.meta_ms(meta),
        }
    }

    /// Every key below the directory `dir` (encoded path), decoded.
    fn walk(&self, dir: &str, prefix_of_keys: &str, out: &mut Vec<String>) -> std::io::Result<()> {
        let entries = match if dir.is_empty() {
            self.root.entries()
        } else {
            self.root.read_dir(dir)
        } {
            Ok(entries) => entries,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(err) => return Err(err),
        };
        for entry in entries {
            let entry = entry?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            let file_type = entry.file_type()?;
            if file_type.is_dir() && !name.contains('~') {
                let child = if dir.is_empty() {
                    name.to_owned()
                } else {
                    format!("{dir}/{name}")
                };
                self.walk(&child, &format!("{prefix_of_keys}{}/", decode(name)), out)?;
            } else if file_type.is_file()
                && let Some(stem) = name.strip_suffix(OBJECT_SUFFIX)
                && !stem.contains('~')
            {
                out.push(format!("{prefix_of_keys}{}", decode(stem)));
            }
        }
        Ok(())
    }
}

impl DirStore {
    /// The leftovers below the directory `dir` (encoded path) last written
    /// before `before_ms`; see [`ObjectStore::leftovers`] and the module
    /// docs. With `remove`, deletes them.
    fn leftovers_below(
        &self,
        dir: &str,
        before_ms: u64,
        remove: bool,
        out: &mut Vec<Leftover>,
    ) -> Result<(), StoreError> {
        let listed = match if dir.is_empty() {
            self.root.entries()
        } else {
            self.root.read_dir(dir)
        } {
            Ok(entries) => entries,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(err) => return Err(self.backend("list", dir, err)),
        };
        // Names first: entries are removed below.
        let mut entries = Vec::new();
        for entry in listed {
            let entry = entry.map_err(|err| self.backend("list", dir, err))?;
            let file_type = entry
                .file_type()
                .map_err(|err| self.backend("list", dir, err))?;
            if let Some(name) = entry.file_name().to_str() {
                entries.push((name.to_owned(), file_type));
            }
        }
        let join = |name: &str| {
            if dir.is_empty() {
                name.to_owned()
            } else {
                format!("{dir}/{name}")
            }
        };
        for (name, file_type) in entries {
            let path = join(&name);
            if file_type.is_dir() {
                if !name.contains('~') {
                    self.leftovers_below(&path, before_ms, remove, out)?;
                }
                continue;
            }
            if !file_type.is_file() {
                continue;
            }
            if let Some((stem, _)) = name.split_once(TEMP_MARK) {
                // Its writer held this lock while the temporary existed.
                let lock = join(&format!("{stem}{LOCK_SUFFIX}"));
                let Some(_dead_writer) = self.dead_writers_lock(&lock, &path, remove)? else {
                    continue;
                };
                let meta = match self.root.metadata(&path) {
                    Ok(meta) => meta,
                    // Renamed into place or removed by its writer just before.
                    Err(err) if err.kind() == std::io::ErrorKind::NotFound => continue,
                    Err(err) => return Err(self.backend("stat", &path, err)),
                };
                let leftover = Leftover {
                    path,
                    size: meta.len(),
                    modified_ms: self.meta_ms(&meta),
                    kind: crate::LeftoverKind::TemporaryFile,
                };
                if leftover.modified_ms > before_ms {
                    continue;
                }
                if remove {
                    match self.root.remove_file(&leftover.path) {
                        Ok(()) => {}
                        Err(err) if err.kind() == std::io::ErrorKind::NotFound => continue,
                        Err(err) => return Err(self.backend("remove", &leftover.path, err)),
                    }
                }
                out.push(leftover);
            } else if remove && name.ends_with(LOCK_SUFFIX) {
                // A lock file a killed writer left: taking it and letting it
                // go removes it (a held one is left alone).
                drop(self.lock_file(&path, &path, false)?);
            }
        }
        Ok(())
    }

    /// Proof that the writer of a temporary is dead: its key's lock, free.
    /// Removing, the lock is taken (without waiting) and held while the
    /// caller deletes. Looking, nothing is created or changed: the lock
    /// file is opened read-only (flock works on it), and a missing one
    /// means its writer is gone (a live writer creates it before its
    /// temporary and removes it only after the rename).
    fn dead_writers_lock(
        &self,
        lock: &str,
        temp: &str,
        remove: bool,
    ) -> Result<Option<DeadWriter>, StoreError> {
        if remove {
            return Ok(self.lock_file(lock, temp, false)?.map(|held| DeadWriter {
                _held: Some(held),
                _looked: None,
            }));
        }
        let file = match self.root.open(lock) {
            Ok(file) => file.into_std(),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Some(DeadWriter {
                    _held: None,
                    _looked: None,
                }));
            }
            Err(err) => return Err(self.backend("open the lock of", temp, err)),
        };
        match file.try_lock_shared() {
            Ok(()) => Ok(Some(DeadWriter {
                _held: None,
                _looked: Some(file),
            })),
            Err(std::fs::TryLockError::WouldBlock) => Ok(None),
            Err(std::fs::TryLockError::Error(err)) => Err(self.backend("lock", temp, err)),
        }
    }

    fn meta_ms(&self, meta: &cap_std::fs::Metadata) -> u64 {
        (meta.mtime().max(0) as u64) * 1000 + (meta.mtime_nsec().max(0) as u64) / 1_000_000
    }
}

/// What [`DirStore::dead_writers_lock`] found, kept while the caller
/// acts: the key's lock taken (removing), or the lock file locked shared
/// for a look (nothing changed), or neither (no lock file: nobody has
/// written the key since its writer died).
struct DeadWriter {
    _held: Option<KeyLock>,
    _looked: Option<std::fs::File>,
}

/// Holds a key's flock; removes the lock file, then unlocks, when dropped.
struct KeyLock {
    root: Arc<Dir>,
    path: String,
    _file: std::fs::File,
}

impl Drop for KeyLock {
    fn drop(&mut self) {
        // Remove while still holding the lock: waiters then find the path
        // gone or renewed and retry, so two holders can never overlap.
        let _ = self.root.remove_file(&self.path);
    }
}

/// Encoded paths of one key, relative to the store's root.
struct Paths {
    parent: String,
    object: String,
    lock: String,
    stem: String,
}

impl Paths {
    fn of(key: &ObjectKey) -> Self {
        let segments: Vec<String> = key.as_str().split('/').map(encode).collect();
        let (last, dirs) = segments.split_last().expect("keys have a segment");
        let parent = dirs.join("/");
        let stem = if parent.is_empty() {
            last.clone()
        } else {
            format!("{parent}/{last}")
        };
        Self {
            object: format!("{stem}{OBJECT_SUFFIX}"),
            lock: format!("{stem}{LOCK_SUFFIX}"),
            parent,
            stem,
        }
    }

    /// A temporary name no other writer takes: `<stem>~t.<pid>.<n>`, where
    /// `n` counts from a random start. A pid alone repeats — a process that
    /// is always pid 1 in its container, or one on another machine sharing
    /// the directory — and a killed writer's leftover under the name the
    /// next one picks would fail that one's writes to the key until a gc.
    fn temp(&self) -> String {
        static COUNTER: OnceLock<AtomicU64> = OnceLock::new();
        // Halved so the counter never wraps into a repeat.
        let counter = COUNTER.get_or_init(|| AtomicU64::new(silt_process::nonce() >> 1));
        format!(
            "{}{TEMP_MARK}{}.{}",
            self.stem,
            std::process::id(),
            counter.fetch_add(1, Ordering::Relaxed)
        )
    }
}

/// The deepest directory `prefix` names (up to its last `/`): as keys
/// (with the `/`) and as the encoded path below the root.
fn deepest_dir(prefix: &str) -> (String, String) {
    match prefix.rfind('/') {
        Some(at) => {
            let encoded: Vec<String> = prefix[..at].split('/').map(encode).collect();
            (prefix[..=at].to_owned(), encoded.join("/"))
        }
        None => (String::new(), String::new()),
    }
}

fn encode(segment: &str) -> String {
    segment.replace('%', "%25").replace('~', "%7E")
}

fn decode(segment: &str) -> String {
    segment.replace("%7E", "~").replace("%25", "%")
}

fn version_of(meta: &cap_std::fs::Metadata) -> Version {
    let nanos = (meta.mtime() as i128) * 1_000_000_000 + meta.mtime_nsec() as i128;
    Version(format!("{:x}.{:x}.{:x}", meta.ino(), nanos, meta.size()))
}

#[async_trait::async_trait]
impl ObjectStore for DirStore {
    async fn get(
        &self,
        key: &ObjectKey,
        if_none_match: Option<&Version>,
    ) -> Result<GetOutcome, StoreError> {
        let key = key.clone();
        let if_none_match = if_none_match.cloned();
        self.blocking(move |store| {
            let (mut file, meta) = store.open_object(&key)?;
            if if_none_match.as_ref() == Some(&meta.version) {
                return Ok(GetOutcome::NotModified);
            }
            if meta.size > super::MAX_WHOLE_GET {
                return Err(super::too_large_to_get(&key, meta.size));
            }
            let mut data = Vec::with_capacity(meta.size as usize);
            file.read_to_end(&mut data)
                .map_err(|err| store.backend("read", key.as_str(), err))?;
            Ok(GetOutcome::Found(meta, data))
        })
        .await
    }

    async fn head(&self, key: &ObjectKey) -> Result<ObjectMeta, StoreError> {
        let key = key.clone();
        self.blocking(
            move |store| match store.root.metadata(Paths::of(&key).object) {
                Ok(meta) => Ok(store.meta(&key, &meta)),
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                    Err(StoreError::NotFound {
                        key: key.to_string(),
                    })
                }
                Err(err) => Err(store.backend("stat", key.as_str(), err)),
            },
        )
        .await
    }

    async fn put(
        &self,
        key: &ObjectKey,
        data: Vec<u8>,
        mode: PutMode,
    ) -> Result<Version, StoreError> {
        let key = key.clone();
        self.blocking(move |store| store.put_locked(&key, &mode, |file| file.write_all(&data)))
            .await
    }

    async fn delete(&self, key: &ObjectKey, if_match: Option<&Version>) -> Result<(), StoreError> {
        let key = key.clone();
        let if_match = if_match.cloned();
        self.blocking(move |store| store.delete_locked(&key, if_match.as_ref()))
            .await
    }

    async fn list(
        &self,
        prefix: &str,
        start_after: Option<&ObjectKey>,
        limit: u32,
    ) -> Result<ListPage, StoreError> {
        let prefix = prefix.to_owned();
        let start_after = start_after.cloned();
        let limit = limit.clamp(1, MAX_LIST_PAGE) as usize;
        self.blocking(move |store| {
            // Walk only the deepest directory the prefix names.
            let (dir_keys, dir_path) = deepest_dir(&prefix);
            let mut keys = Vec::new();
            store
                .walk(&dir_path, &dir_keys, &mut keys)
                .map_err(|err| store.backend("list", &prefix, err))?;
            keys.retain(|k| {
                k.starts_with(&prefix)
                    && start_after
                        .as_ref()
                        .is_none_or(|after| k.as_str() > after.as_str())
            });
            keys.sort_unstable();
            let more = keys.len() > limit;
            keys.truncate(limit);
            let mut items = Vec::with_capacity(keys.len());
            for key in keys {
                let Ok(key) = ObjectKey::new(&key) else {
                    continue;
                };
                match store.root.metadata(Paths::of(&key).object) {
                    Ok(meta) => items.push(store.meta(&key, &meta)),
                    // Deleted since the walk: not part of this listing.
                    Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
                    Err(err) => return Err(store.backend("stat", key.as_str(), err)),
                }
            }
            let next_start_after = if more {
                items.last().map(|meta| meta.key.clone())
            } else {
                None
            };
            Ok(ListPage {
                items,
                next_start_after,
            })
        })
        .await
    }

    async fn get_into(
        &self,
        key: &ObjectKey,
        sink: &mut (dyn AsyncWrite + Unpin + Send),
    ) -> Result<ObjectMeta, StoreError> {
        let opened = key.clone();
        let (file, meta) = self
            .blocking(move |store| {
                let (file, meta) = store.open_object(&opened)?;
                Ok((file.into_std(), meta))
            })
            .await?;
        // 1 MiB reads: each read of a tokio file is a blocking-pool task, so
        // tokio's default 8 KiB would be ~128k tasks per GiB.
        let mut file =
            tokio::io::BufReader::with_capacity(1 << 20, tokio::fs::File::from_std(file));
        tokio::io::copy_buf(&mut file, sink)
            .await
            .map_err(|err| self.backend("read", key.as_str(), err))?;
        sink.flush()
            .await
            .map_err(|err| super::local_io(key, &err))?;
        Ok(meta)
    }

    async fn put_file(
        &self,
        key: &ObjectKey,
        file: std::fs::File,
        mode: PutMode,
    ) -> Result<Version, StoreError> {
        let key = key.clone();
        self.blocking(move |store| {
            let mut source = file;
            store.put_locked(&key, &mode, |target| {
                use std::io::Seek;
                source.seek(std::io::SeekFrom::Start(0))?;
                std::io::copy(&mut source, target).map(|_| ())
            })
        })
        .await
    }

    /// Hashes the bytes as it copies them into the object.
    async fn put_file_hashed(
        &self,
        key: &ObjectKey,
        file: std::fs::File,
        mode: PutMode,
    ) -> Result<(Version, UploadDigest), StoreError> {
        let key = key.clone();
        self.blocking(move |store| {
            let mut sent = None;
            let version = store.put_locked(&key, &mode, |target| {
                use std::io::Seek;
                let mut file = file;
                file.seek(std::io::SeekFrom::Start(0))?;
                // 1 MiB reads: a hashing reader is copied through a buffer
                // (no in-kernel copy), std's own 8 KiB one unless given one.
                let mut hashing =
                    std::io::BufReader::with_capacity(1 << 20, HashingReader::new(file));
                std::io::copy(&mut hashing, target)?;
                sent = Some(hashing.into_inner().finish());
                Ok(())
            })?;
            let (sha256, len) = sent.expect("the object was written");
            Ok((version, UploadDigest::OfSent { sha256, len }))
        })
        .await
    }

    async fn leftovers(&self, prefix: &str, sweep: Sweep) -> Result<Vec<Leftover>, StoreError> {
        let (_, dir) = deepest_dir(prefix);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        let before_ms = now.saturating_sub(sweep.older_than).as_millis() as u64;
        self.blocking(move |store| {
            let mut found = Vec::new();
            store.leftovers_below(&dir, before_ms, sweep.remove, &mut found)?;
            Ok(found)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn encoding_keeps_suffixes_unambiguous() {
        assert_eq!(encode("a~o"), "a%7Eo");
        assert_eq!(decode(&encode("100%~x")), "100%~x");
        let paths = Paths::of(&ObjectKey::new("x~o/y").unwrap());
        assert_eq!(paths.object, "x%7Eo/y~o");
    }

    const LOOK: Sweep = Sweep {
        older_than: Duration::ZERO,
        remove: false,
    };
    const SWEEP_ALL: Sweep = Sweep {
        older_than: Duration::ZERO,
        remove: true,
    };

    /// A killed writer that had this process's pid (pid 1 in a container,
    /// a process on another machine) left temporaries under the names a
    /// counter from zero would take: writes to the key still go through.
    #[tokio::test]
    async fn a_predecessor_with_this_pid_does_not_block_writes() {
        let dir = tempfile::tempdir().unwrap();
        let store = DirStore::open(dir.path(), false).unwrap();
        let key = ObjectKey::new("m/index").unwrap();
        store
            .put(&key, b"v1".to_vec(), PutMode::Overwrite)
            .await
            .unwrap();
        let pid = std::process::id();
        for n in 0..256 {
            std::fs::write(dir.path().join(format!("m/index~t.{pid}.{n}")), b"x").unwrap();
        }
        for round in 0..8 {
            let data = format!("v{round}").into_bytes();
            store.put(&key, data, PutMode::Overwrite).await.unwrap();
        }
        assert_eq!(
            store.leftovers("m/", LOOK).await.unwrap().len(),
            256,
            "the leftovers are still found"
        );
    }

    /// A killed writer's temporary (its lock free) is found and removed; a
    /// live writer's (its lock held) is neither reported nor touched.
    #[tokio::test]
    async fn leftovers_are_the_temporaries_of_dead_writers_only() {
        let dir = tempfile::tempdir().unwrap();
        let store = DirStore::open(dir.path(), false).unwrap();
        let dead = ObjectKey::new("m/dead").unwrap();
        let live = ObjectKey::new("m/live").unwrap();
        store
            .put(&dead, b"1".to_vec(), PutMode::Create)
            .await
            .unwrap();
        std::fs::write(dir.path().join("m/dead~t.4242.0"), vec![0u8; 300]).unwrap();
        std::fs::write(dir.path().join("m/dead~l"), b"").unwrap();
        let held = store.lock(&Paths::of(&live), &live).unwrap();
        std::fs::write(dir.path().join("m/live~t.4343.0"), b"in flight").unwrap();

        // A dead writer whose lock file is gone too.
        std::fs::write(dir.path().join("m/gone~t.4444.1"), vec![0u8; 7]).unwrap();

        let mut found = store.leftovers("", LOOK).await.unwrap();
        found.sort_by(|a, b| a.path.cmp(&b.path));
        let paths: Vec<&str> = found.iter().map(|l| l.path.as_str()).collect();
        assert_eq!(paths, ["m/dead~t.4242.0", "m/gone~t.4444.1"]);
        assert_eq!(found[0].size, 300);
        assert!(
            dir.path().join("m/dead~t.4242.0").exists(),
            "a look removed it"
        );
        assert!(
            !dir.path().join("m/gone~l").exists(),
            "a look created a lock file"
        );

        // Younger than the floor: kept.
        let hour = Sweep {
            older_than: Duration::from_secs(3600),
            remove: true,
        };
        assert!(store.leftovers("m/", hour).await.unwrap().is_empty());
        assert!(dir.path().join("m/dead~t.4242.0").exists());

        std::thread::sleep(Duration::from_millis(5));
        let mut removed = store.leftovers("m/", SWEEP_ALL).await.unwrap();
        removed.sort_by(|a, b| a.path.cmp(&b.path));
        assert_eq!(removed, found);
        assert!(!dir.path().join("m/dead~t.4242.0").exists());
        assert!(
            !dir.path().join("m/dead~l").exists(),
            "a dead writer's lock file stays"
        );
        assert!(dir.path().join("m/live~t.4343.0").exists());
        assert!(store.leftovers("", SWEEP_ALL).await.unwrap().is_empty());
        // The object itself is untouched, and the live writer can finish.
        assert!(matches!(
            store.get(&dead, None).await.unwrap(),
            GetOutcome::Found(_, data) if data == b"1"
        ));
        drop(held);
        std::fs::remove_file(dir.path().join("m/live~t.4343.0")).unwrap();
    }

    #[tokio::test]
    async fn a_key_and_its_children_coexist() {
        let dir = tempfile::tempdir().unwrap();
        let store = DirStore::open(dir.path(), false).unwrap();
        let a = ObjectKey::new("a").unwrap();
        let ab = ObjectKey::new("a/b").unwrap();
        store.put(&a, b"1".to_vec(), PutMode::Create).await.unwrap();
        store
            .put(&ab, b"2".to_vec(), PutMode::Create)
            .await
            .unwrap();
        let page = store.list("a", None, 10).await.unwrap();
        let keys: Vec<&str> = page.items.iter().map(|m| m.key.as_str()).collect();
        assert_eq!(keys, ["a", "a/b"]);
        // No lock or temporary files are left behind.
        let mut names: Vec<String> = std::fs::read_dir(dir.path().join("a"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, ["b~o"]);
    }
}
