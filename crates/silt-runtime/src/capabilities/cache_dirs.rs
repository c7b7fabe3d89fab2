//! The cache directory, and the directories beneath it that one transfer
//! has opened so far, so that its files land in a directory opened once.
//!
//! Why: a model's files share a directory, and opening it again for every
//! file (`openat2`, resolved beneath the cache without links) and closing it
//! afterwards was half of what creating each download's file cost. A
//! transfer now opens each directory once and creates every file in it by
//! its bare name.
//!
//! Why it is safe to hold them: a directory is opened beneath the cache
//! without following any link, exactly as before, and the descriptor keeps
//! naming that directory whatever happens to paths afterwards; a link
//! planted at its path later is never followed.
//!
//! Why each use checks the path still names it (one `stat`, nothing
//! opened): the guest, or the user, may move a directory while a transfer
//! runs, and make another at its path. Files created through the old
//! descriptor would land in the moved directory, reported as landed at a
//! path where they are not. So a directory no longer at its path is let go
//! and the path opened again; only a file already being created when it
//! moves can land there, as before this cache existed.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use crate::beneath::{Beneath, Identity};

/// The most directories one transfer keeps open; past it the ones kept are
/// let go (those still in use close when their files are done).
const MAX_OPEN: usize = 64;

/// A directory held open, and what it was when opened.
#[derive(Clone)]
struct Held {
    dir: Arc<Beneath>,
    identity: Identity,
}

/// The cache directory and the directories opened beneath it.
pub(super) struct CacheDirs {
    root: Arc<Beneath>,
    open: Mutex<HashMap<PathBuf, Held>>,
}

impl CacheDirs {
    /// None opened yet beneath `root`.
    pub(super) fn new(root: Arc<Beneath>) -> Self {
        Self {
            root,
            open: Mutex::new(HashMap::new()),
        }
    }

    /// The cache directory itself.
    pub(super) fn root(&self) -> &Arc<Beneath> {
        &self.root
    }

    /// Creates the new file `relative` for writing (its directories first,
    /// where missing): its directory, held open, and the file. Blocking.
    ///
    /// # Errors
    /// When the file exists, or its directory cannot be reached without a
    /// link or made.
    pub(super) fn create_new(
        &self,
        relative: &Path,
    ) -> std::io::Result<(Arc<Beneath>, std::fs::File)> {
        let name = relative.file_name().map(Path::new).ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("{}: not a file path", relative.display()),
            )
        })?;
        let parent = relative.parent().unwrap_or(Path::new(""));
        let dir = self.dir(parent)?;
        match dir.create_new(name) {
            // Removed since it was checked: make it again, once.
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                self.forget(parent, &dir);
                let dir = self.dir(parent)?;
                let file = dir.create_new(name)?;
                Ok((dir, file))
            }
            Ok(file) => Ok((dir, file)),
            Err(err) => Err(err),
        }
    }

    /// The directory `relative` (the cache itself when empty): the one
    /// held, while its path still names it; else opened (and made where
    /// missing) now.
    fn dir(&self, relative: &Path) -> std::io::Result<Arc<Beneath>> {
        if relative.as_os_str().is_empty() {
            return Ok(self.root.clone());
        }
        let held = self.lock().get(relative).cloned();
        if let Some(held) = held {
            if self.root.identity_at(relative)? == Some(held.identity) {
                return Ok(held.dir);
            }
            self.forget(relative, &held.dir);
        }
        // Opened outside the lock: another landing thread may open it too,
        // and the later one is kept (each file keeps the directory it was
        // created in, so either is safe).
        let dir = Arc::new(self.root.create_dir_all(relative)?);
        let identity = dir.identity()?;
        let mut open = self.lock();
        if open.len() >= MAX_OPEN {
            open.clear();
        }
        open.insert(
            relative.to_owned(),
            Held {
                dir: dir.clone(),
                identity,
            },
        );
        Ok(dir)
    }

    /// Lets go of `dir` at `relative`, unless another thread has already
    /// put a fresher one there.
    fn forget(&self, relative: &Path, dir: &Arc<Beneath>) {
        let mut open = self.lock();
        if open
            .get(relative)
            .is_some_and(|held| Arc::ptr_eq(&held.dir, dir))
        {
            open.remove(relative);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<PathBuf, Held>> {
        self.open.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dirs_in(dir: &tempfile::TempDir) -> CacheDirs {
        CacheDirs::new(Arc::new(Beneath::open(dir.path()).unwrap()))
    }

    #[test]
    fn files_of_one_directory_share_its_descriptor() {
        let cache = tempfile::tempdir().unwrap();
        let dirs = dirs_in(&cache);
        let (first, _) = dirs.create_new(Path::new("m/run/a")).unwrap();
        let (second, _) = dirs.create_new(Path::new("m/run/b")).unwrap();
        assert!(Arc::ptr_eq(&first, &second));
        assert!(cache.path().join("m/run/a").is_file());
        assert!(cache.path().join("m/run/b").is_file());
        let (top, _) = dirs.create_new(Path::new("c")).unwrap();
        assert!(Arc::ptr_eq(&top, dirs.root()));
    }

    #[test]
    fn a_directory_moved_away_is_let_go_and_its_path_opened_again() {
        let cache = tempfile::tempdir().unwrap();
        let dirs = dirs_in(&cache);
        let (first, _) = dirs.create_new(Path::new("m/run/a")).unwrap();
        // Moved, and another made at its path: the next file lands at its
        // path, not in the moved directory.
        std::fs::rename(cache.path().join("m/run"), cache.path().join("m/moved")).unwrap();
        std::fs::create_dir(cache.path().join("m/run")).unwrap();
        let (second, _) = dirs.create_new(Path::new("m/run/b")).unwrap();
        assert!(!Arc::ptr_eq(&first, &second));
        assert!(cache.path().join("m/run/b").is_file());
        assert!(!cache.path().join("m/moved/b").exists());
        // Moved with nothing in its place: made again.
        std::fs::rename(cache.path().join("m/run"), cache.path().join("m/moved2")).unwrap();
        dirs.create_new(Path::new("m/run/c")).unwrap();
        assert!(cache.path().join("m/run/c").is_file());
    }

    #[test]
    fn a_link_planted_at_an_open_directorys_path_is_not_followed() {
        let cache = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let dirs = dirs_in(&cache);
        dirs.create_new(Path::new("m/run/a")).unwrap();
        // Moved away, a link to outside the cache planted in its place.
        std::fs::rename(cache.path().join("m/run"), cache.path().join("m/moved")).unwrap();
        std::os::unix::fs::symlink(outside.path(), cache.path().join("m/run")).unwrap();
        assert!(dirs.create_new(Path::new("m/run/b")).is_err());
        assert_eq!(std::fs::read_dir(outside.path()).unwrap().count(), 0);
        assert!(!cache.path().join("m/moved/b").exists());
    }

    #[test]
    fn a_directory_removed_meanwhile_is_made_again_and_never_through_a_link() {
        let cache = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let dirs = dirs_in(&cache);
        dirs.create_new(Path::new("m/run/a")).unwrap();
        std::fs::remove_dir_all(cache.path().join("m/run")).unwrap();
        dirs.create_new(Path::new("m/run/b")).unwrap();
        assert!(cache.path().join("m/run/b").is_file());
        // Removed again, a link in its place this time: refused.
        std::fs::remove_dir_all(cache.path().join("m/run")).unwrap();
        std::os::unix::fs::symlink(outside.path(), cache.path().join("m/run")).unwrap();
        assert!(dirs.create_new(Path::new("m/run/c")).is_err());
        assert_eq!(std::fs::read_dir(outside.path()).unwrap().count(), 0);
    }

    #[test]
    fn past_the_bound_directories_are_let_go_and_opened_again() {
        let cache = tempfile::tempdir().unwrap();
        let dirs = dirs_in(&cache);
        for n in 0..=MAX_OPEN {
            dirs.create_new(&PathBuf::from(format!("d{n}/f"))).unwrap();
        }
        assert!(dirs.lock().len() <= MAX_OPEN);
        dirs.create_new(Path::new("d0/g")).unwrap();
        assert!(cache.path().join("d0/g").is_file());
    }
}
