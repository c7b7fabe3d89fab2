//! Files of the extension's cache, by path relative to it: whole-file
//! reads and atomic writes (through a directory of temporaries a killed
//! call's leftovers are swept from), `stat`, and hashing a file that must
//! not change while it is read. The bottom of the SDK's local I/O: it names
//! nothing of sidecars, partitions or the store.
//!
//! Errors name the file and keep the I/O failure's kind: a missing file is
//! `not-found`, a file changed while read is `invalid-input` (the user's
//! edit raced the command), anything else the disk refused (full,
//! read-only, permission) is a `backend` failure of the cache, never the
//! caller's input.

use std::io::{Read, Write};

use sha2::{Digest, Sha256};

use crate::layout;
use crate::silt::datastore::types::{BackendFailure, Error};

/// The error for a cache file that could not be read or written, by the
/// kind of the failure (see the module's doc).
pub(crate) fn io_error(path: &str, err: std::io::Error) -> Error {
    use std::io::ErrorKind;
    match err.kind() {
        ErrorKind::NotFound => Error::NotFound(format!("cache file {path}: {err}")),
        kind => Error::Backend(BackendFailure {
            retryable: matches!(
                kind,
                ErrorKind::Interrupted | ErrorKind::TimedOut | ErrorKind::WouldBlock
            ),
            detail: format!("the local cache could not read or write {path}: {err}"),
        }),
    }
}

/// [`sweep_temporaries`] once per instance: a summary is flushed many times
/// in one call, and one sweep a call is enough (an instance serves one).
pub(crate) fn sweep_temporaries_once() {
    static SWEPT: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    if !SWEPT.swap(true, std::sync::atomic::Ordering::Relaxed) {
        sweep_temporaries();
    }
}

/// Where [`write_atomic`] writes before its rename, relative to the cache.
/// The cache's directory of temporary files (swept of old ones by
/// [`sweep_temporaries`]), relative to the cache.
pub const TEMP_DIR: &str = ".silt/tmp";

/// A temporary file older than this was left by a call that was killed (a
/// write takes milliseconds).
const TEMP_MAX_AGE: std::time::Duration = std::time::Duration::from_secs(600);

/// Removes the temporary files of [`write_atomic`] that killed calls left
/// (older than ten minutes). Best effort; returns how many went.
///
/// ```no_run,standalone_crate
/// let removed = silt_extension::cache_file::sweep_temporaries();
/// println!("{removed} leftovers of killed calls removed");
/// ```
pub fn sweep_temporaries() -> usize {
    let Ok(entries) = std::fs::read_dir(layout::in_cache(TEMP_DIR)) else {
        return 0;
    };
    let now = std::time::SystemTime::now();
    let mut removed = 0;
    for entry in entries.flatten() {
        let old = entry
            .metadata()
            .and_then(|meta| meta.modified())
            .ok()
            .and_then(|modified| now.duration_since(modified).ok())
            .is_some_and(|age| age > TEMP_MAX_AGE);
        if old && std::fs::remove_file(entry.path()).is_ok() {
            removed += 1;
        }
    }
    removed
}

/// Writes a cache file atomically: the file is the old one or the new one, never partial.
///
/// `path` is relative to the cache; missing directories are created.
///
/// # Errors
/// A `backend` failure naming `path` when the cache cannot be written
/// (see the module's doc).
///
/// ```no_run,standalone_crate
/// use silt_extension::cache_file;
/// # fn main() -> Result<(), silt_extension::silt::datastore::types::Error> {
/// // An index kind's own local state, next to silt's sidecars.
/// let state = serde_json::json!({ "version": "1767225600000-9f2c4e1a7b3d5c60" });
/// cache_file::write_atomic(".silt/my-index/state.json", state.to_string().as_bytes())?;
/// # Ok(()) }
/// ```
pub fn write_atomic(path: &str, bytes: &[u8]) -> Result<(), Error> {
    write_replacing(path, bytes, true)
}

/// [`write_atomic`] without waiting for the disk: for state that only saves
/// work, where losing the newest copy in a power failure costs a
/// recomputation and nothing else (an old copy, or none, is still correct).
/// A sync waits for every dirty file of the file system on some (ext4's
/// ordered mode): tens of milliseconds after a large pull.
///
/// # Errors
/// As [`write_atomic`].
///
/// ```no_run,standalone_crate
/// use silt_extension::cache_file;
/// # fn main() -> Result<(), silt_extension::silt::datastore::types::Error> {
/// cache_file::write_atomic_unsynced(".silt/my-index/hint.json", b"{}")?;
/// # Ok(()) }
/// ```
pub fn write_atomic_unsynced(path: &str, bytes: &[u8]) -> Result<(), Error> {
    write_replacing(path, bytes, false)
}

fn write_replacing(path: &str, bytes: &[u8], sync: bool) -> Result<(), Error> {
    let full = layout::in_cache(path);
    // In one directory of their own, where what a killed call left is
    // found without walking the cache (see [`sweep_temporaries`]).
    let temps = layout::in_cache(TEMP_DIR);
    let temp_name = format!("{TEMP_DIR}/{}", &crate::clock::random_hex()[..16]);
    let temp = layout::in_cache(&temp_name);
    // Directories are made only when missing: each `create_dir_all` of an
    // existing one is three host calls (`mkdir`, then a `stat` of two), and
    // a pull saves a sidecar for every model it touches.
    let result =
        with_parent_made(&temps, || write_whole_file(&temp_name, bytes, sync)).and_then(|()| {
            // `in_cache` paths always have a directory: the cache's at least.
            let dir = full
                .rsplit_once('/')
                .map_or(layout::CACHE_ROOT, |(dir, _)| dir);
            with_parent_made(dir, || std::fs::rename(&temp, &full))
        });
    if let Err(err) = result {
        let _ = std::fs::remove_file(&temp);
        return Err(io_error(path, err));
    }
    Ok(())
}

/// The whole content of the cache file `path` (relative to the cache), as
/// `std::fs::read` answers it, in fewer host calls ([`crate::wasi_file`]).
pub fn read_file(path: &str) -> std::io::Result<Vec<u8>> {
    crate::wasi_file::read(path).unwrap_or_else(|| std::fs::read(layout::in_cache(path)))
}

/// Creates (or truncates) the cache file `path` (relative to the cache)
/// holding `bytes`, synced to the disk when `sync`.
fn write_whole_file(path: &str, bytes: &[u8], sync: bool) -> std::io::Result<()> {
    crate::wasi_file::write(path, bytes, sync).unwrap_or_else(|| {
        let mut file = std::fs::File::create(layout::in_cache(path))?;
        file.write_all(bytes)?;
        if sync { file.sync_all() } else { Ok(()) }
    })
}

/// `step`, and once more after creating `dir` (and its parents) when it
/// failed for want of them.
fn with_parent_made<T>(
    dir: &str,
    mut step: impl FnMut() -> std::io::Result<T>,
) -> std::io::Result<T> {
    match step() {
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            std::fs::create_dir_all(dir)?;
            step()
        }
        done => done,
    }
}

/// Size and modification time of a cache file, if it is a file.
///
/// The modification time is in nanoseconds since the epoch.
///
/// ```no_run,standalone_crate
/// use silt_extension::layout;
/// use silt_extension::cache_file;
/// use silt_extension::local::Sidecar;
/// use silt_extension::silt::datastore::types::ModelRef;
///
/// /// True when the file is as it was stamped, without hashing it.
/// fn untouched(sidecar: &Sidecar, model: &ModelRef, name: &str) -> bool {
///     let stamp = sidecar.local.get(name);
///     let on_disk = cache_file::stat(&layout::working_path(model, name));
///     matches!((stamp, on_disk), (Some(s), Some((size, mtime_ns))) if s.size == size && s.mtime_ns == mtime_ns)
/// }
/// ```
pub fn stat(path: &str) -> Option<(u64, u64)> {
    match crate::wasi_stat::stat(path) {
        crate::wasi_stat::Stat::File { size, mtime_ns } => return Some((size, mtime_ns)),
        crate::wasi_stat::Stat::NotAFile => return None,
        crate::wasi_stat::Stat::Unavailable => {}
    }
    let meta = std::fs::metadata(layout::in_cache(path)).ok()?;
    if !meta.is_file() {
        return None;
    }
    let mtime_ns = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos() as u64);
    Some((meta.len(), mtime_ns))
}

/// sha256 (hex) and size of a cache file.
///
/// # Errors
/// `not-found` or a `backend` failure naming `path` when it cannot be
/// read (see the module's doc).
///
/// ```no_run,standalone_crate
/// use silt_extension::layout;
/// use silt_extension::cache_file;
/// use silt_extension::local::Sidecar;
/// use silt_extension::silt::datastore::types::{Error, ModelRef};
///
/// /// True when the working file still holds the content it was stamped with.
/// fn unmodified(sidecar: &Sidecar, model: &ModelRef, name: &str) -> Result<bool, Error> {
///     let Some(stamp) = sidecar.local.get(name) else { return Ok(false) };
///     let (sha256, _size) = cache_file::hash_file(&layout::working_path(model, name))?;
///     Ok(sha256 == stamp.sha256)
/// }
/// ```
pub fn hash_file(path: &str) -> Result<(String, u64), Error> {
    let mut file =
        std::fs::File::open(layout::in_cache(path)).map_err(|err| io_error(path, err))?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 256 * 1024];
    let mut size = 0u64;
    loop {
        let read = file.read(&mut buffer).map_err(|err| io_error(path, err))?;
        if read == 0 {
            break;
        }
        hasher.update(&buffer[..read]);
        size += read as u64;
    }
    Ok((hex(&hasher.finalize()), size))
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Hashes a cache file and returns (sha256, size, mtime), refusing a file
/// that changed while it was read (its hash would describe neither version).
///
/// # Errors
/// As [`hash_file`]; `invalid-input` when the file changed while it was
/// read.
///
/// ```no_run,standalone_crate
/// use silt_extension::change::{Base, Change};
/// use silt_extension::{cache_file, clock, layout};
/// use silt_extension::silt::datastore::types::{Error, ModelRef};
///
/// fn put_change(model: &ModelRef, name: &str) -> Result<(Change, u64), Error> {
///     let (sha256, size, mtime_ns) = cache_file::hash_stable(&layout::working_path(model, name))?;
///     let change = Change::Put { name: name.to_owned(), version: clock::version_token(), size, sha256, base: Base::Any };
///     // Upload it, then `cache_file::check_unchanged(path, size, mtime_ns)` before committing.
///     Ok((change, mtime_ns))
/// }
/// ```
pub fn hash_stable(path: &str) -> Result<(String, u64, u64), Error> {
    let before = stat(path);
    let (sha256, size) = hash_file(path)?;
    match (before, stat(path)) {
        (Some((size_before, mtime_ns)), Some(after))
            if after == (size_before, mtime_ns) && size == size_before =>
        {
            Ok((sha256, size, mtime_ns))
        }
        _ => Err(changed_while_reading(path)),
    }
}

/// Errors when `path` no longer has the `size` and `mtime_ns` it had when
/// it was hashed: what was uploaded since may not be what was hashed.
///
/// # Errors
/// `invalid-input` saying to run the command again once the file is written.
///
/// ```no_run,standalone_crate
/// use silt_extension::silt::datastore::object_store::{self, PutMode, UploadItem};
/// use silt_extension::silt::datastore::types::Error;
/// use silt_extension::{cache_file, store};
///
/// /// Uploads a cache file to `key`; the checksum it is committed under must be its own.
/// fn upload_hashed(path: &str, key: &str) -> Result<(String, u64), Error> {
///     let (sha256, size, mtime_ns) = cache_file::hash_stable(path)?;
///     let item = UploadItem { cache_path: path.to_owned(), key: key.to_owned(), mode: PutMode::Create };
///     for result in object_store::upload(&[item]) {
///         result.map_err(|err| store::error(key, err))?;
///     }
///     cache_file::check_unchanged(path, size, mtime_ns)?;
///     Ok((sha256, size))
/// }
/// ```
pub fn check_unchanged(path: &str, size: u64, mtime_ns: u64) -> Result<(), Error> {
    if stat(path) == Some((size, mtime_ns)) {
        Ok(())
    } else {
        Err(changed_while_reading(path))
    }
}

/// The error for a working-copy file written to while silt read it.
pub(crate) fn changed_while_reading(path: &str) -> Error {
    Error::InvalidInput(format!(
        "{path} changed while silt was reading it; nothing was committed — run the command again once it is written"
    ))
}
