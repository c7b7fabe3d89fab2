//! The host's own files inside the working copy (`.silt-host/`: locks,
//! background hydration state and log), opened so that nothing the
//! extension planted there can redirect them.
//!
//! The local copy is the extension's cache directory: a guest (or an
//! escaped worker) can write anything in it, symlinks included. Every path
//! here is resolved with cap-std inside the local copy, so a symlink that
//! points out of it (`../../.bashrc`, `/etc/...`) is refused instead of
//! followed; one that points elsewhere inside only reaches files the
//! extension could write anyway.

use std::fs::File;
use std::io;
use std::path::Path;

use cap_std::ambient_authority;
use cap_std::fs::{Dir, OpenOptions};

/// Opens `relative` (under the local copy `local_dir`) with `options`,
/// creating its parent directories first.
///
/// # Errors
/// When the path would leave the local copy, or cannot be opened.
pub fn open(local_dir: &Path, relative: &Path, options: &OpenOptions) -> io::Result<File> {
    let dir = local(local_dir)?;
    if let Some(parent) = relative.parent().filter(|p| !p.as_os_str().is_empty()) {
        dir.create_dir_all(parent)?;
    }
    Ok(dir.open_with(relative, options)?.into_std())
}

/// Writes `data` to `relative` atomically: a temporary file, then a rename.
///
/// # Errors
/// When the path would leave the local copy, or cannot be written.
pub fn write_atomic(local_dir: &Path, relative: &Path, data: &[u8]) -> io::Result<()> {
    use std::io::Write as _;
    let dir = local(local_dir)?;
    if let Some(parent) = relative.parent().filter(|p| !p.as_os_str().is_empty()) {
        dir.create_dir_all(parent)?;
    }
    let mut temp = relative.as_os_str().to_owned();
    temp.push(format!(".tmp.{}", std::process::id()));
    let temp = Path::new(&temp);
    let mut options = OpenOptions::new();
    options.write(true).create(true).truncate(true);
    let mut file = dir.open_with(temp, &options)?;
    file.write_all(data)?;
    drop(file);
    dir.rename(temp, &dir, relative)
}

fn local(local_dir: &Path) -> io::Result<Dir> {
    std::fs::create_dir_all(local_dir)?;
    Dir::open_ambient_dir(local_dir, ambient_authority())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_symlink_out_of_the_local_copy_is_refused_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let local = dir.path().join("local");
        let outside = dir.path().join("victim.txt");
        std::fs::write(&outside, b"precious").unwrap();
        std::fs::create_dir_all(local.join(".silt-host")).unwrap();
        // What a guest can plant: relative and absolute links out.
        std::os::unix::fs::symlink("../../victim.txt", local.join(".silt-host/log")).unwrap();
        std::os::unix::fs::symlink(&outside, local.join(".silt-host/state.json")).unwrap();
        let mut append = OpenOptions::new();
        append.create(true).append(true);
        assert!(open(&local, Path::new(".silt-host/log"), &append).is_err());
        assert!(write_atomic(&local, Path::new(".silt-host/state.json"), b"x").is_ok());
        // The rename replaced the link itself; the victim is untouched.
        assert_eq!(std::fs::read(&outside).unwrap(), b"precious");
        // A planted directory link out is refused too.
        std::fs::remove_dir_all(local.join(".silt-host")).unwrap();
        std::os::unix::fs::symlink(dir.path(), local.join(".silt-host")).unwrap();
        assert!(open(&local, Path::new(".silt-host/log"), &append).is_err());
        assert!(!dir.path().join("log").exists());
    }
}
