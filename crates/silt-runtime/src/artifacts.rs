//! The on-disk cache of compiled components.
//!
//! One file per (wasmtime version, engine compatibility hash, component
//! sha256), named by the sha256 of those three: `<key>.cwasm`. Entries are
//! written to a unique temporary file and renamed into place, never modified
//! afterwards, so two processes filling the same entry both succeed and a
//! reader (which mmaps the file) never sees a partial one. Any failure to
//! load an entry is a miss. A size cap evicts the least recently used
//! entries; a hit refreshes the entry's modification time.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use serde::Serialize;
use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

use super::inspect::hex;

const EXTENSION: &str = "cwasm";
/// The suffix of an out-of-process bundle's manifest, beside its artifact.
const BUNDLE_MANIFEST_SUFFIX: &str = "bundle.json";

/// The bundle manifest of the artifact at `artifact` whose text is
/// `variant` (a digest of it). Processes with other engine settings share
/// the artifact but not the manifest: each writes its own, so none renames
/// another's away while a worker is about to attach it (the sandbox
/// cannot mount a file that was unlinked).
pub fn bundle_manifest_path(artifact: &Path, variant: &str) -> PathBuf {
    artifact.with_extension(format!("{variant}.{BUNDLE_MANIFEST_SUFFIX}"))
}

/// Every bundle manifest of the artifact at `artifact`.
pub fn bundle_manifests(artifact: &Path) -> Vec<PathBuf> {
    let (Some(dir), Some(stem)) = (
        artifact.parent(),
        artifact.file_stem().and_then(|stem| stem.to_str()),
    ) else {
        return Vec::new();
    };
    let prefix = format!("{stem}.");
    let suffix = format!(".{BUNDLE_MANIFEST_SUFFIX}");
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|entry| entry.path())
                .filter(|path| {
                    path.file_name()
                        .and_then(|name| name.to_str())
                        .is_some_and(|name| name.starts_with(&prefix) && name.ends_with(&suffix))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Temporary files older than this are debris of killed processes.
const STALE_TEMP_AGE: Duration = Duration::from_secs(3600);

/// The artifact cache in one directory.
#[derive(Debug, Clone)]
pub struct ArtifactCache {
    dir: PathBuf,
    max_bytes: u64,
}

/// One cached artifact.
#[derive(Debug, Clone, Serialize)]
pub struct CacheEntry {
    /// The file.
    pub path: PathBuf,
    /// Its size in bytes.
    pub size: u64,
    /// When it was last used (or written).
    #[serde(serialize_with = "serialize_time")]
    pub last_used: SystemTime,
}

fn serialize_time<S: serde::Serializer>(time: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
    let secs = time
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    s.serialize_u64(secs)
}

/// What a prune removed.
#[derive(Debug, Clone, Default, Serialize)]
pub struct PruneReport {
    /// Artifacts removed.
    pub removed: u64,
    /// Bytes freed.
    pub freed_bytes: u64,
    /// Artifacts kept.
    pub kept: u64,
    /// Bytes kept.
    pub kept_bytes: u64,
}

impl ArtifactCache {
    /// A cache in `dir` (created on first write) capped at `max_bytes`.
    pub fn new(dir: impl Into<PathBuf>, max_bytes: u64) -> Self {
        Self {
            dir: dir.into(),
            max_bytes,
        }
    }

    /// The cache directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The size cap in bytes.
    pub fn max_bytes(&self) -> u64 {
        self.max_bytes
    }

    /// The cache key of a component under an engine.
    pub fn key(compat_hash: &str, component_sha256: &str) -> String {
        let mut digest = Sha256::new();
        digest.update(super::engine::WASMTIME_VERSION.as_bytes());
        digest.update(b"\0");
        digest.update(compat_hash.as_bytes());
        digest.update(b"\0");
        digest.update(component_sha256.as_bytes());
        hex(&digest.finalize())
    }

    /// Where the artifact for `key` lives.
    pub fn path(&self, key: &str) -> PathBuf {
        self.dir.join(format!("{key}.{EXTENSION}"))
    }

    /// Loads the artifact for `key`, or `None` on any failure (absent,
    /// truncated, corrupt, compiled by another engine): a miss, never an error.
    pub fn load(&self, engine: &Engine, key: &str) -> Option<Component> {
        let path = self.path(key);
        if !path.is_file() {
            return None;
        }
        // SAFETY: the file was written by `store` below from
        // `Component::serialize` of an engine with the same compatibility
        // hash (it is in the key), and entries are replaced only by rename,
        // never modified in place, so the mapped bytes cannot change under
        // us. wasmtime still checks the header and engine compatibility and
        // refuses anything else with an error, which we treat as a miss.
        match unsafe { Component::deserialize_file(engine, &path) } {
            Ok(component) => {
                touch(&path);
                Some(component)
            }
            Err(err) => {
                tracing::warn!(
                    "ignoring unusable cached artifact {} ({err:#}); it will be recompiled",
                    path.display()
                );
                None
            }
        }
    }

    /// Writes `bytes` as the artifact for `key` (temp file + rename), then
    /// evicts least recently used entries past the cap.
    ///
    /// # Errors
    /// When the directory or file cannot be written; callers treat this as
    /// "not cached" and carry on with the compiled component.
    pub fn store(&self, key: &str, bytes: &[u8]) -> std::io::Result<PathBuf> {
        std::fs::create_dir_all(&self.dir)?;
        let path = self.path(key);
        let temp = self.dir.join(temp_name(key));
        let result = (|| {
            write_readable(&temp, bytes)?;
            std::fs::rename(&temp, &path)
        })();
        if result.is_err() {
            let _ = std::fs::remove_file(&temp);
        }
        result?;
        if let Err(err) = self.evict_to(self.max_bytes, Some(&path)) {
            tracing::warn!("artifact cache eviction failed: {err}");
        }
        Ok(path)
    }

    /// Every artifact, most recently used first.
    ///
    /// # Errors
    /// When the directory exists but cannot be read.
    pub fn entries(&self) -> std::io::Result<Vec<CacheEntry>> {
        let read_dir = match std::fs::read_dir(&self.dir) {
            Ok(read_dir) => read_dir,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(err) => return Err(err),
        };
        let mut entries = Vec::new();
        for item in read_dir {
            let item = item?;
            let path = item.path();
            if path.extension().and_then(|e| e.to_str()) != Some(EXTENSION) {
                continue;
            }
            // An entry evicted by another process between listing and stat is just gone.
            let Ok(meta) = item.metadata() else { continue };
            entries.push(CacheEntry {
                path,
                size: meta.len(),
                last_used: meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
            });
        }
        entries.sort_by(|a, b| {
            b.last_used
                .cmp(&a.last_used)
                .then_with(|| a.path.cmp(&b.path))
        });
        Ok(entries)
    }

    /// Removes least recently used artifacts until at most `max_bytes`
    /// remain, never removing `keep`; also removes stale temporary files.
    ///
    /// Removing a file another process has mapped is safe: the mapping keeps
    /// the data alive until it is dropped.
    ///
    /// # Errors
    /// When the directory cannot be read.
    pub fn evict_to(&self, max_bytes: u64, keep: Option<&Path>) -> std::io::Result<PruneReport> {
        self.remove_stale_temps();
        let entries = self.entries()?;
        let mut report = PruneReport::default();
        let mut total: u64 = entries.iter().map(|e| e.size).sum();
        // Oldest last in `entries`; walk from the end.
        for entry in entries.iter().rev() {
            if total > max_bytes && Some(entry.path.as_path()) != keep {
                match std::fs::remove_file(&entry.path) {
                    Ok(()) => {
                        // An out-of-process bundle is the artifact plus its
                        // manifest: it goes with the artifact.
                        for manifest in bundle_manifests(&entry.path) {
                            let _ = std::fs::remove_file(manifest);
                        }
                        total -= entry.size;
                        report.removed += 1;
                        report.freed_bytes += entry.size;
                        continue;
                    }
                    Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                        total -= entry.size;
                        continue;
                    }
                    Err(err) => tracing::warn!("cannot evict {}: {err}", entry.path.display()),
                }
            }
            report.kept += 1;
            report.kept_bytes += entry.size;
        }
        Ok(report)
    }

    fn remove_stale_temps(&self) {
        let Ok(read_dir) = std::fs::read_dir(&self.dir) else {
            return;
        };
        for item in read_dir.flatten() {
            let name = item.file_name();
            if !name.to_string_lossy().contains(".tmp.") {
                continue;
            }
            let stale = item
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|modified| modified.elapsed().ok())
                .is_some_and(|age| age > STALE_TEMP_AGE);
            if stale {
                let _ = std::fs::remove_file(item.path());
            }
        }
    }
}

/// Marks an entry as recently used. Only metadata changes; contents never do.
fn touch(path: &Path) {
    if let Ok(file) = std::fs::File::open(path) {
        let _ = file.set_modified(SystemTime::now());
    }
}

/// A name no other writer (thread or process) can pick at the same time.
fn temp_name(key: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!(
        "{key}.tmp.{}.{}.{nanos}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// Mode of the files a worker reads (artifacts, bundle manifests): readable
/// by all, whatever the umask. A worker of a root silt runs as another uid
/// (`sandbox.worker_uid`), and these hold nothing secret (compiled code of
/// an extension, and what it was built with).
const WORKER_READABLE: u32 = 0o644;

/// Writes `bytes` to a new file at `path`, readable by a worker.
///
/// # Errors
/// When the file cannot be written.
pub fn write_readable(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    let mut file = std::fs::File::create(path)?;
    make_worker_readable(&file)?;
    file.write_all(bytes)
}

/// Makes `file` readable by a worker (see [`WORKER_READABLE`]), when it is
/// not already: an artifact written under a stricter umask.
///
/// # Errors
/// When its mode cannot be read or changed.
pub fn make_worker_readable(file: &std::fs::File) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    let mode = file.metadata()?.permissions().mode();
    if mode & WORKER_READABLE != WORKER_READABLE {
        file.set_permissions(std::fs::Permissions::from_mode(WORKER_READABLE))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_depend_on_engine_and_component() {
        let a = ArtifactCache::key("engine-a", "sha-1");
        assert_eq!(a, ArtifactCache::key("engine-a", "sha-1"));
        assert_ne!(a, ArtifactCache::key("engine-b", "sha-1"));
        assert_ne!(a, ArtifactCache::key("engine-a", "sha-2"));
    }

    #[test]
    fn eviction_removes_least_recently_used_first() {
        let dir = tempfile::tempdir().unwrap();
        let cache = ArtifactCache::new(dir.path(), u64::MAX);
        let now = SystemTime::now();
        for (i, key) in ["old", "mid", "new"].iter().enumerate() {
            let path = cache.store(key, &[0u8; 100]).unwrap();
            let file = std::fs::File::open(&path).unwrap();
            file.set_modified(now - Duration::from_secs(100 - i as u64 * 10))
                .unwrap();
        }
        // Two engine settings' manifests of the oldest artifact, and one of
        // another artifact whose key starts alike.
        let manifests = [
            bundle_manifest_path(&cache.path("old"), "aaaa"),
            bundle_manifest_path(&cache.path("old"), "bbbb"),
        ];
        let neighbour = bundle_manifest_path(&cache.path("older"), "aaaa");
        for manifest in manifests.iter().chain([&neighbour]) {
            std::fs::write(manifest, b"{}").unwrap();
        }
        assert_eq!(bundle_manifests(&cache.path("old")).len(), 2);
        let report = cache.evict_to(250, None).unwrap();
        assert_eq!(report.removed, 1);
        assert!(!cache.path("old").exists());
        assert!(
            manifests.iter().all(|manifest| !manifest.exists()),
            "its manifests go with it"
        );
        assert!(neighbour.exists());
        assert!(cache.path("mid").exists() && cache.path("new").exists());
        // The entry being written is never evicted, even if it alone is over the cap.
        let report = cache.evict_to(0, Some(&cache.path("new"))).unwrap();
        assert_eq!((report.removed, report.kept), (1, 1));
        assert!(cache.path("new").exists());
    }

    #[test]
    fn concurrent_stores_of_one_entry_all_succeed() {
        let dir = tempfile::tempdir().unwrap();
        let cache = ArtifactCache::new(dir.path(), u64::MAX);
        std::thread::scope(|scope| {
            for i in 0..8u8 {
                let cache = &cache;
                scope.spawn(move || cache.store("same", &[i; 4096]).unwrap());
            }
        });
        let entries = cache.entries().unwrap();
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0].size, 4096);
        let leftovers = std::fs::read_dir(dir.path()).unwrap().count();
        assert_eq!(leftovers, 1, "temporary files were left behind");
    }
}
