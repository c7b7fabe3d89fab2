//! Download files a killed silt left behind. A download streams into
//! `.<name>.silt-tmp.<pid>.<n>` beside its target and is renamed over it only
//! when complete and verified, so a kill never leaves a partial file under
//! a real name; it can leave the temporary one. Push ignores those; this
//! removes the ones whose process is gone, so an interrupted hydration that
//! is resumed leaves nothing behind.

use std::path::Path;

use crate::beneath::{Beneath, EntryKind, temp_owner_pid};

/// Removes, under `relative` in the local copy `local`, the temporary
/// download files of processes that no longer run. Returns how many were
/// removed. A file whose process may still run (or whose pid this platform
/// cannot check) is kept. Links are neither followed nor removed: the walk
/// stays in real directories beneath the local copy.
///
/// # Errors
/// When a directory cannot be read or a file removed.
pub fn remove_stale_downloads(local: &Beneath, relative: &Path) -> std::io::Result<u64> {
    let dir = match local.dir(relative) {
        Ok(dir) => dir,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(err) => return Err(err),
    };
    let mut removed = 0;
    for (name, kind) in dir.entries()? {
        match kind {
            EntryKind::Dir => removed += remove_stale_downloads(local, &relative.join(&name))?,
            EntryKind::File
                if temp_owner_pid(&name.to_string_lossy()).is_some_and(|pid| !running(pid)) =>
            {
                dir.remove_file(&name)?;
                removed += 1;
            }
            _ => {}
        }
    }
    Ok(removed)
}

/// Removes the staged copies (`<pid>-<nanos>` in `staging`, relative to
/// the local copy) of `silt data` commands that were killed: a live one
/// removes its own when done. Returns how many were removed.
///
/// # Errors
/// When the directory cannot be read or a file removed.
pub fn remove_stale_staging(local: &Beneath, staging: &Path) -> std::io::Result<u64> {
    let dir = match local.dir(staging) {
        Ok(dir) => dir,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(err) => return Err(err),
    };
    let mut removed = 0;
    for (name, kind) in dir.entries()? {
        let owner = name
            .to_str()
            .and_then(|name| name.split_once('-'))
            .and_then(|(pid, nanos)| nanos.bytes().all(|b| b.is_ascii_digit()).then_some(pid))
            .and_then(|pid| pid.parse::<u32>().ok());
        if kind == EntryKind::File && owner.is_some_and(|pid| !running(pid)) {
            dir.remove_file(&name)?;
            removed += 1;
        }
    }
    Ok(removed)
}

/// True when process `pid` may still run.
pub(super) fn running(pid: u32) -> bool {
    if pid == std::process::id() {
        return true;
    }
    if cfg!(target_os = "linux") {
        Path::new("/proc").join(pid.to_string()).exists()
    } else {
        // No cheap, dependency-free check here: keep the file.
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg(target_os = "linux")]
    fn removes_leftovers_of_dead_processes_only() {
        let dir = tempfile::tempdir().unwrap();
        let nested = dir.path().join("data/t/m");
        std::fs::create_dir_all(&nested).unwrap();
        // A pid above Linux's maximum (2^22) never runs.
        let dead = nested.join(".f.bin.silt-tmp.4194305.0");
        let ours = nested.join(format!(".g.bin.silt-tmp.{}.3", std::process::id()));
        let data = nested.join("f.bin");
        for path in [&dead, &ours, &data] {
            std::fs::write(path, b"x").unwrap();
        }
        let local = Beneath::open(dir.path()).unwrap();
        assert_eq!(
            remove_stale_downloads(&local, Path::new("data")).unwrap(),
            1
        );
        assert!(!dead.exists());
        assert!(ours.exists() && data.exists());
        assert_eq!(
            remove_stale_downloads(&local, Path::new("missing")).unwrap(),
            0
        );
        // A model directory planted as a link elsewhere is not walked.
        let elsewhere = tempfile::tempdir().unwrap();
        let victim = elsewhere.path().join(".f.bin.silt-tmp.4194305.0");
        std::fs::write(&victim, b"x").unwrap();
        std::os::unix::fs::symlink(elsewhere.path(), dir.path().join("data/t/link")).unwrap();
        assert!(remove_stale_downloads(&local, Path::new("data/t/link")).is_err());
        assert_eq!(
            remove_stale_downloads(&local, Path::new("data")).unwrap(),
            0
        );
        assert!(victim.exists());
    }

    #[test]
    #[cfg(target_os = "linux")]
    fn removes_staged_copies_of_dead_processes_only() {
        let dir = tempfile::tempdir().unwrap();
        let staging = dir.path().join(".silt/staging");
        std::fs::create_dir_all(&staging).unwrap();
        let dead = staging.join("4194305-1767225600000000000");
        let ours = staging.join(format!("{}-1", std::process::id()));
        let other = staging.join("contract-readback");
        for path in [&dead, &ours, &other] {
            std::fs::write(path, b"x").unwrap();
        }
        let local = Beneath::open(dir.path()).unwrap();
        assert_eq!(
            remove_stale_staging(&local, Path::new(".silt/staging")).unwrap(),
            1
        );
        assert!(!dead.exists() && ours.exists() && other.exists());
    }
}
