//! Where the resident's socket lives, and the checks that make it the
//! user's own.
//!
//! `$XDG_RUNTIME_DIR/silt/` (the user's runtime directory, 0700 by its
//! own rules), else `/tmp/silt-<uid>/`. `/tmp` is shared: anyone can create
//! `/tmp/silt-<uid>` first, so the directory is accepted only if it is
//! itself a directory, not a link (`lstat`: its parents' links are
//! followed, as in any path), owned by this user, and open to no one else.
//! Then nobody but this user (and root) can put a socket in it. The check
//! and the connection look the path up twice, so the lock that holds is
//! the second: the peer's uid at connection ([`crate::peer`]), taken from
//! the kernel before anything is sent.

use std::os::unix::fs::{DirBuilderExt as _, MetadataExt as _};
use std::path::{Path, PathBuf};

use crate::error::WireError;
use crate::peer::own_uid;

/// The directory: `SILT_RESIDENT_DIR` when set to an absolute path (tests,
/// benchmarks, or a user whose `/tmp/silt-<uid>` someone else took), else
/// `$XDG_RUNTIME_DIR/silt` when that is absolute, else `/tmp/silt-<uid>`.
pub fn default_dir() -> PathBuf {
    let absolute = |name: &str| {
        std::env::var_os(name)
            .map(PathBuf::from)
            .filter(|dir| dir.is_absolute())
    };
    if let Some(dir) = absolute("SILT_RESIDENT_DIR") {
        return dir;
    }
    match absolute("XDG_RUNTIME_DIR") {
        Some(runtime) => runtime.join("silt"),
        None => PathBuf::from(format!("/tmp/silt-{}", own_uid())),
    }
}

/// Creates `dir` (mode 0700) if it is missing, then [`check`]s it.
///
/// # Errors
/// As [`check`], or when it cannot be created.
pub fn ensure(dir: &Path) -> Result<(), WireError> {
    match std::fs::DirBuilder::new().mode(0o700).create(dir) {
        Ok(()) => {}
        Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(err) => return Err(err.into()),
    }
    check(dir)
}

/// Checks, without following a link, that `dir` is a directory of this
/// user's that no one else may enter.
///
/// # Errors
/// [`WireError::Unsafe`] saying which check failed; the socket's error
/// when `dir` cannot be looked at (missing: no resident).
pub fn check(dir: &Path) -> Result<(), WireError> {
    let meta = std::fs::symlink_metadata(dir)?;
    let unsafe_because = |why: &str| {
        Err(WireError::Unsafe(format!(
            "{} {why}: the resident is not used (set SILT_RESIDENT_DIR to a directory of your own, mode 0700)",
            dir.display()
        )))
    };
    if meta.file_type().is_symlink() {
        return unsafe_because("is a symbolic link");
    }
    if !meta.is_dir() {
        return unsafe_because("is not a directory");
    }
    if meta.uid() != own_uid() {
        return unsafe_because(&format!("belongs to uid {}, not to this user", meta.uid()));
    }
    if meta.mode() & 0o077 != 0 {
        return unsafe_because(&format!(
            "has mode {:o}: others may enter it (it must be 0700)",
            meta.mode() & 0o777
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;

    use super::*;

    #[test]
    fn a_fresh_directory_is_made_private_and_passes() {
        let parent = tempfile::tempdir().unwrap();
        let dir = parent.path().join("silt");
        ensure(&dir).unwrap();
        let mode = std::fs::metadata(&dir).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "mode {mode:o}");
        ensure(&dir).unwrap();
    }

    #[test]
    fn a_link_a_file_or_an_open_directory_is_refused() {
        let parent = tempfile::tempdir().unwrap();
        let real = parent.path().join("real");
        ensure(&real).unwrap();
        let link = parent.path().join("link");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        assert!(
            matches!(check(&link), Err(WireError::Unsafe(why)) if why.contains("symbolic link"))
        );
        let file = parent.path().join("file");
        std::fs::write(&file, b"").unwrap();
        assert!(
            matches!(check(&file), Err(WireError::Unsafe(why)) if why.contains("not a directory"))
        );
        std::fs::set_permissions(&real, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert!(matches!(check(&real), Err(WireError::Unsafe(why)) if why.contains("0700")));
        assert!(matches!(ensure(&real), Err(WireError::Unsafe(_))));
    }

    #[test]
    fn another_users_directory_is_refused() {
        if own_uid() != 0 {
            // Only root can give a directory away; the check is the same.
            return;
        }
        let parent = tempfile::tempdir().unwrap();
        let dir = parent.path().join("theirs");
        ensure(&dir).unwrap();
        std::os::unix::fs::chown(&dir, Some(65534), None).unwrap();
        assert!(matches!(check(&dir), Err(WireError::Unsafe(why)) if why.contains("uid 65534")));
    }

    #[test]
    fn a_missing_directory_is_an_io_error() {
        let parent = tempfile::tempdir().unwrap();
        assert!(matches!(
            check(&parent.path().join("none")),
            Err(WireError::Io(_))
        ));
    }
}
