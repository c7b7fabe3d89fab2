//! What a component file was found to be when it was last validated, keyed
//! by the file's identity on disk — so a fresh process whose component has
//! not changed skips reading, hashing and parsing it (614 KiB: ~1.8 ms of a
//! ~12 ms `silt data list`) and goes straight to its cached artifact.
//!
//! The identity is the one `git` and `cargo` trust for the same job: device,
//! inode, size, modification time and status-change time (`ctime`, which no
//! process can set: every write, rename or `touch` moves it to now). A
//! file is remembered only once its `ctime` is [`SETTLED`] in the past, so a
//! write landing within the same clock tick as the one remembered cannot
//! leave the identity unchanged (the "racy git" case).
//!
//! A memo also names the validator: this host's version and its own
//! executable's identity, so a rebuilt or upgraded `silt` (whose rules for
//! what is valid may differ) validates again. A memo is as trusted as the
//! artifact cache it lives in (whoever can write there can already replace
//! compiled code); a missing, unreadable or mismatching memo is a miss, and
//! the load validates the file again.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::inspect::hex;
use super::metadata::Metadata;

/// How long a file must have been left alone before it is remembered.
const SETTLED: Duration = Duration::from_secs(2);

/// The subdirectory of the artifact cache that holds the memos.
const DIR: &str = "fingerprints";

/// A file's identity on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Identity {
    dev: u64,
    ino: u64,
    size: u64,
    mtime_ns: i128,
    ctime_ns: i128,
}

impl Identity {
    /// The identity of the file at `path` (following no link: the catalog's
    /// component is a regular file), or `None` when it cannot be read.
    pub(crate) fn of(path: &Path) -> Option<Self> {
        let meta = std::fs::symlink_metadata(path).ok()?;
        meta.is_file().then(|| Self {
            dev: meta.dev(),
            ino: meta.ino(),
            size: meta.size(),
            mtime_ns: i128::from(meta.mtime()) * 1_000_000_000 + i128::from(meta.mtime_nsec()),
            ctime_ns: i128::from(meta.ctime()) * 1_000_000_000 + i128::from(meta.ctime_nsec()),
        })
    }

    /// True when the file has been left alone long enough to be remembered.
    fn settled(&self, now: SystemTime) -> bool {
        let now_ns = now
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as i128);
        now_ns - self.ctime_ns >= SETTLED.as_nanos() as i128
    }
}

/// What validating the file found.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Validated {
    /// The file's sha256.
    pub sha256: String,
    /// Its validated metadata.
    pub metadata: Metadata,
}

#[derive(Serialize, Deserialize)]
struct Memo {
    validator: String,
    identity: Identity,
    validated: Validated,
}

/// Who validated: this crate's version and the running executable's
/// identity (empty when it cannot be told: then nothing is remembered).
fn validator() -> String {
    std::env::current_exe()
        .ok()
        .and_then(|exe| Identity::of(&exe))
        .map_or_else(String::new, |exe| {
            format!(
                "{} {}:{}:{}:{}",
                env!("CARGO_PKG_VERSION"),
                exe.dev,
                exe.ino,
                exe.size,
                exe.ctime_ns
            )
        })
}

/// Where the memo of the component at `path` lives under `cache_dir`.
fn memo_path(cache_dir: &Path, path: &Path) -> PathBuf {
    let digest = Sha256::digest(path.as_os_str().as_encoded_bytes());
    cache_dir.join(DIR).join(format!("{}.json", hex(&digest)))
}

/// What the file at `path` was validated as, when its identity is still
/// `identity`.
pub(crate) fn recall(cache_dir: &Path, path: &Path, identity: Identity) -> Option<Validated> {
    let bytes = std::fs::read(memo_path(cache_dir, path)).ok()?;
    let memo: Memo = serde_json::from_slice(&bytes).ok()?;
    (memo.identity == identity && !memo.validator.is_empty() && memo.validator == validator())
        .then_some(memo.validated)
}

/// Remembers that the file at `path`, with `identity` (taken before it was
/// read), validated as `validated` — unless it changed too recently to be
/// told apart from a write to come, or changed while it was being read.
/// Best effort: a memo that cannot be written is only a later miss.
pub(crate) fn remember(cache_dir: &Path, path: &Path, identity: Identity, validated: &Validated) {
    if !identity.settled(SystemTime::now()) || Identity::of(path) != Some(identity) {
        return;
    }
    let validator = validator();
    if validator.is_empty() {
        return;
    }
    let memo = Memo {
        validator,
        identity,
        validated: validated.clone(),
    };
    let target = memo_path(cache_dir, path);
    let Some(dir) = target.parent() else {
        return;
    };
    // Unique to this write: loads in one process (or in two PID
    // namespaces) may remember at once.
    static WRITES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let nth = WRITES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let temp = dir.join(format!(".{}.{nth}.{nanos}.tmp", std::process::id()));
    let written = std::fs::create_dir_all(dir)
        .and_then(|()| std::fs::write(&temp, serde_json::to_vec(&memo).expect("a memo serializes")))
        .and_then(|()| std::fs::rename(&temp, &target));
    if let Err(err) = written {
        let _ = std::fs::remove_file(&temp);
        tracing::debug!("cannot remember {}: {err}", path.display());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn validated() -> Validated {
        Validated {
            sha256: "ab".repeat(32),
            metadata: Metadata::parse(
                b"name = \"m\"\nversion = \"0.1.0\"\napi = \"silt:datastore@0.7.2\"\n",
            )
            .unwrap(),
        }
    }

    /// Makes `path`'s identity look settled by remembering with a clock
    /// moved forward: the same check, without sleeping two seconds.
    fn remember_later(cache: &Path, path: &Path, identity: Identity) {
        assert!(identity.settled(SystemTime::now() + SETTLED));
        let memo = Memo {
            validator: validator(),
            identity,
            validated: validated(),
        };
        let target = memo_path(cache, path);
        std::fs::create_dir_all(target.parent().unwrap()).unwrap();
        std::fs::write(target, serde_json::to_vec(&memo).unwrap()).unwrap();
    }

    #[test]
    fn a_file_just_written_is_not_remembered() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("component.wasm");
        std::fs::write(&file, b"one").unwrap();
        let identity = Identity::of(&file).unwrap();
        remember(dir.path(), &file, identity, &validated());
        assert!(recall(dir.path(), &file, identity).is_none());
    }

    #[test]
    fn any_change_to_the_file_is_a_miss() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("component.wasm");
        std::fs::write(&file, b"one").unwrap();
        let identity = Identity::of(&file).unwrap();
        remember_later(dir.path(), &file, identity);
        assert_eq!(
            recall(dir.path(), &file, identity).unwrap().sha256,
            validated().sha256
        );
        // Same size, rewritten in place: the ctime moves.
        std::thread::sleep(Duration::from_millis(20));
        std::fs::write(&file, b"two").unwrap();
        let rewritten = Identity::of(&file).unwrap();
        assert_ne!(rewritten, identity);
        assert!(recall(dir.path(), &file, rewritten).is_none());
        // Replaced by rename: another inode.
        let other = dir.path().join("other.wasm");
        std::fs::write(&other, b"one").unwrap();
        std::fs::rename(&other, &file).unwrap();
        assert!(recall(dir.path(), &file, Identity::of(&file).unwrap()).is_none());
    }

    #[test]
    fn another_validator_is_a_miss() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("component.wasm");
        std::fs::write(&file, b"one").unwrap();
        let identity = Identity::of(&file).unwrap();
        let memo = Memo {
            validator: "0.0.1 1:2:3:4".to_owned(),
            identity,
            validated: validated(),
        };
        let target = memo_path(dir.path(), &file);
        std::fs::create_dir_all(target.parent().unwrap()).unwrap();
        std::fs::write(&target, serde_json::to_vec(&memo).unwrap()).unwrap();
        assert!(recall(dir.path(), &file, identity).is_none());
    }

    #[test]
    fn a_corrupt_memo_is_a_miss() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("component.wasm");
        std::fs::write(&file, b"one").unwrap();
        let identity = Identity::of(&file).unwrap();
        let target = memo_path(dir.path(), &file);
        std::fs::create_dir_all(target.parent().unwrap()).unwrap();
        std::fs::write(&target, b"{not json").unwrap();
        assert!(recall(dir.path(), &file, identity).is_none());
    }
}
