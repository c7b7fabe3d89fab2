//! Download files a killed silt left behind. A download streams into
//! `.<name>.silt-tmp.<pid>.<n>` beside its target and is renamed over it only
//! when complete and verified, so a kill never leaves a partial file under
//! a real name; it can leave the temporary one. Push ignores those; this
//! removes the ones whose process is gone, so an interrupted hydration that
//! is resumed leaves nothing behind.

use std::path::Path;

use crate::capabilities::transfer::temp_owner_pid;

/// Removes, under `dir`, the temporary download files of processes that no
/// longer run. Returns how many were removed. A file whose process may
/// still run (or whose pid this platform cannot check) is kept.
///
/// # Errors
/// When a directory cannot be read or a file removed.
pub fn remove_stale_downloads(dir: &Path) -> std::io::Result<u64> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(err) => return Err(err),
    };
    let mut removed = 0;
    for entry in entries {
        let entry = entry?;
        let file_type = entry.file_type()?;
        if file_type.is_dir() {
            removed += remove_stale_downloads(&entry.path())?;
        } else if temp_owner_pid(&entry.file_name().to_string_lossy())
            .is_some_and(|pid| !running(pid))
        {
            std::fs::remove_file(entry.path())?;
            removed += 1;
        }
    }
    Ok(removed)
}

/// True when process `pid` may still run.
fn running(pid: u32) -> bool {
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
        assert_eq!(remove_stale_downloads(dir.path()).unwrap(), 1);
        assert!(!dead.exists());
        assert!(ours.exists() && data.exists());
        assert_eq!(
            remove_stale_downloads(&dir.path().join("missing")).unwrap(),
            0
        );
    }
}
