//! Files beneath a root directory, reached without following any symbolic
//! link: the only way the host touches the working copy and its own state.
//!
//! The working copy is the extension's `/cache`: a guest (or a worker that
//! escaped its wasm sandbox) can write anything there, links included.
//! Every path here is checked to be relative and to go down only, then
//! resolved by the kernel without following a link at any component:
//!
//! - Linux: `openat2(2)` with `RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS |
//!   RESOLVE_NO_MAGICLINKS` (Linux 5.6);
//! - macOS: `openat(2)` with `O_NOFOLLOW_ANY` (macOS 11);
//! - other Unix: one `openat` per component, each with `O_NOFOLLOW`,
//!   relative to the one before ([`open_by_components`], tested on Linux).
//!
//! Each component must be a real directory or file beneath the root,
//! checked as the path is walked, so no link — pointing out of the root or
//! to another place inside it — can redirect a host read, write or delete,
//! and no check-then-use race exists.
//!
//! Why not cap-std's `Dir`: it keeps paths beneath the root but follows
//! links that stay inside, so a planted `data/t/m/x -> ../../../.silt/…`
//! could still alias one host path onto another.

use std::ffi::OsString;
use std::fs::File;
use std::io::{self, Write as _};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStringExt as _;
use std::path::{Component, Path, PathBuf};

use rustix::fs::{AtFlags, Mode, OFlags, RawMode};

use silt_process::temp_name;

/// Mode of the files and directories the host creates (before the umask;
/// `mode_t` is 16 bits on macOS).
const FILE_MODE: RawMode = 0o644;
const DIR_MODE: RawMode = 0o755;

/// A directory whose contents the host opens only beneath it, never through
/// a symbolic link.
#[derive(Debug)]
pub struct Beneath {
    fd: OwnedFd,
    path: PathBuf,
}

/// What a directory entry is (links are never followed to find out).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    /// A regular file.
    File,
    /// A directory.
    Dir,
    /// A symbolic link, socket, device or anything else.
    Other,
}

impl Beneath {
    /// Opens the existing directory `path`. The path itself is the host's
    /// choice (configuration, project location) and is resolved normally;
    /// what lies beneath it is not.
    ///
    /// # Errors
    /// When `path` is not a directory or cannot be opened.
    pub fn open(path: &Path) -> io::Result<Self> {
        let fd = rustix::fs::open(
            path,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|errno| annotate(errno.into(), path))?;
        Ok(Self {
            fd,
            path: path.to_owned(),
        })
    }

    /// Creates `path` (and its parents) if needed, then opens it.
    ///
    /// # Errors
    /// When the directory cannot be created or opened.
    pub fn create(path: &Path) -> io::Result<Self> {
        std::fs::create_dir_all(path).map_err(|err| annotate(err, path))?;
        Self::open(path)
    }

    /// The root's path (for messages and for handing to other programs).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The absolute path of `relative` beneath the root (for messages).
    pub fn join(&self, relative: impl AsRef<Path>) -> PathBuf {
        self.path.join(relative)
    }

    /// Opens the existing directory `relative` beneath the root.
    ///
    /// # Errors
    /// When it is missing, not a directory, or reached through a link.
    pub fn dir(&self, relative: impl AsRef<Path>) -> io::Result<Self> {
        let relative = relative.as_ref();
        let fd = self.openat(relative, OFlags::RDONLY | OFlags::DIRECTORY, 0)?;
        Ok(Self {
            fd,
            path: self.join(relative),
        })
    }

    /// Creates the directory `relative` and its parents beneath the root
    /// where missing (never through a link), then opens it.
    ///
    /// # Errors
    /// When a component is a link or not a directory, or cannot be created.
    pub fn create_dir_all(&self, relative: impl AsRef<Path>) -> io::Result<Self> {
        // Most often every directory is there already: one open (which
        // refuses a link anywhere, as each step below does) settles it.
        // Any failure takes the walk below, whose errors name the component
        // at fault (a link in the middle included, on every platform).
        if let Ok(dir) = self.dir(relative.as_ref()) {
            return Ok(dir);
        }
        // Else one component at a time, each made and opened relative to its
        // parent's descriptor: `mkdirat` never follows a link at the name it
        // makes, and no path is walked twice, so nothing swapped in between
        // two steps can redirect the next one.
        let mut current = self.dir(".")?;
        for component in checked(relative.as_ref())?.components() {
            let Component::Normal(name) = component else {
                continue;
            };
            match rustix::fs::mkdirat(&current.fd, name, Mode::from_raw_mode(DIR_MODE)) {
                // Present already: `dir` checks it is a real directory.
                Ok(()) | Err(rustix::io::Errno::EXIST) => {}
                Err(errno) => return Err(current.annotate(errno.into(), Path::new(name))),
            }
            current = current.dir(name)?;
        }
        Ok(current)
    }

    /// Opens the file `relative` for reading.
    ///
    /// # Errors
    /// When it is missing, not a regular file, or reached through a link.
    pub fn open_read(&self, relative: impl AsRef<Path>) -> io::Result<File> {
        self.open_file(relative.as_ref(), OFlags::RDONLY, 0)
    }

    /// Creates the file `relative`, which must not exist, for writing (its
    /// parent directories are created first).
    ///
    /// # Errors
    /// When it exists, or its directory cannot be reached without a link.
    pub fn create_new(&self, relative: impl AsRef<Path>) -> io::Result<File> {
        Ok(self.create_new_in_dir(relative)?.1)
    }

    /// [`Self::create_new`], answering the file's directory too, held open:
    /// a rename or removal beside the file ([`Self::rename`] and
    /// [`Self::remove_file`] of that directory, with bare names) then
    /// reaches the same directory without resolving its path again, one
    /// open fewer each, and nothing swapped in on the way meanwhile can
    /// redirect it.
    ///
    /// # Errors
    /// As [`Self::create_new`].
    pub fn create_new_in_dir(&self, relative: impl AsRef<Path>) -> io::Result<(Self, File)> {
        self.create_new_in_dir_with_mode(relative, FILE_MODE)
    }

    /// [`Self::create_new_in_dir`] with the file's permission bits `mode`
    /// (before the process's umask), e.g. `0o666` for a file the user
    /// asked for, as `cp` would create it.
    ///
    /// # Errors
    /// As [`Self::create_new`].
    pub fn create_new_in_dir_with_mode(
        &self,
        relative: impl AsRef<Path>,
        mode: RawMode,
    ) -> io::Result<(Self, File)> {
        let relative = checked(relative.as_ref())?;
        let name = self.name_of(relative)?;
        let dir = match relative.parent().filter(|p| !p.as_os_str().is_empty()) {
            Some(parent) => self.create_dir_all(parent)?,
            None => Self {
                fd: self.fd.try_clone()?,
                path: self.path.clone(),
            },
        };
        // O_EXCL: nothing that exists there (a FIFO, a link) is opened.
        let flags = OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL;
        let file = File::from(dir.openat(name, flags, mode)?);
        Ok((dir, file))
    }

    /// Opens (creating it if missing) the file `relative` for reading and
    /// writing without truncating it; parents are created first.
    ///
    /// # Errors
    /// When it cannot be reached without a link, or opened.
    pub fn open_or_create(&self, relative: impl AsRef<Path>) -> io::Result<File> {
        let relative = relative.as_ref();
        self.create_parent(relative)?;
        self.open_file(relative, OFlags::RDWR | OFlags::CREATE, FILE_MODE)
    }

    /// Opens (creating it if missing) the file `relative` for appending;
    /// parents are created first.
    ///
    /// # Errors
    /// When it cannot be reached without a link, or opened.
    pub fn open_append(&self, relative: impl AsRef<Path>) -> io::Result<File> {
        let relative = relative.as_ref();
        self.create_parent(relative)?;
        self.open_file(
            relative,
            OFlags::WRONLY | OFlags::CREATE | OFlags::APPEND,
            FILE_MODE,
        )
    }

    /// An unnamed file in this directory (`O_TMPFILE`), for the host's own
    /// scratch data: it has no name anyone could open, and disappears when
    /// closed.
    ///
    /// # Errors
    /// When the file system cannot make one.
    pub fn anonymous_file(&self) -> io::Result<File> {
        #[cfg(target_os = "linux")]
        {
            Ok(File::from(self.openat(
                Path::new("."),
                OFlags::RDWR | OFlags::TMPFILE,
                0o600,
            )?))
        }
        // No O_TMPFILE: a fresh name, created exclusively and removed at
        // once, so it is unnamed for as long as anyone could use it.
        #[cfg(not(target_os = "linux"))]
        {
            let name = self.temp_beside(Path::new("anonymous"))?;
            let file = self.openat(&name, OFlags::RDWR | OFlags::CREATE | OFlags::EXCL, 0o600)?;
            rustix::fs::unlinkat(&self.fd, &name, AtFlags::empty())
                .map_err(|errno| self.annotate(errno.into(), &name))?;
            Ok(File::from(file))
        }
    }

    /// Reads the whole file `relative`, refusing one larger than `limit`
    /// bytes (a guest can make a sparse file of any size).
    ///
    /// # Errors
    /// As [`Self::open_read`], when it is larger than `limit`, or when
    /// reading fails.
    pub fn read(&self, relative: impl AsRef<Path>, limit: u64) -> io::Result<Vec<u8>> {
        let relative = relative.as_ref();
        let file = self.open_read(relative)?;
        let size = file.metadata()?.len();
        if size > limit {
            return Err(self.annotate(
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("{size} bytes, more than the {limit} expected"),
                ),
                relative,
            ));
        }
        let mut bytes = Vec::new();
        io::Read::read_to_end(&mut io::Read::take(file, limit), &mut bytes)?;
        Ok(bytes)
    }

    /// Writes `data` to `relative` atomically and durably: a new temporary
    /// file beside it, synced, then renamed over it (a link there is
    /// replaced, never followed).
    ///
    /// # Errors
    /// When the directory cannot be reached without a link, or writing fails.
    pub fn write_atomic(&self, relative: impl AsRef<Path>, data: &[u8]) -> io::Result<()> {
        let relative = relative.as_ref();
        let temp = self.temp_beside(relative)?;
        let result = self.create_new(&temp).and_then(|mut file| {
            file.write_all(data)?;
            file.sync_all()
        });
        let result = result.and_then(|()| self.rename(&temp, relative));
        if result.is_err() {
            let _ = self.remove_file(&temp);
        }
        result
    }

    /// A fresh name in `relative`'s directory for a temporary file, unique
    /// among every process sharing the directory ([`temp_name`]), in the
    /// shape [`silt_process::temp_owner`] recognises.
    ///
    /// # Errors
    /// When `relative` has no file name.
    pub fn temp_beside(&self, relative: &Path) -> io::Result<PathBuf> {
        let name = relative.file_name().ok_or_else(|| {
            self.annotate(
                io::Error::new(io::ErrorKind::InvalidInput, "not a file path"),
                relative,
            )
        })?;
        Ok(relative.with_file_name(temp_name(name)))
    }

    /// Renames `from` to `to`, both beneath the root. A link at either end
    /// is renamed or replaced itself, never followed; the directories on
    /// the way must be real.
    ///
    /// # Errors
    /// When a directory on the way is a link, or the rename fails.
    pub fn rename(&self, from: impl AsRef<Path>, to: impl AsRef<Path>) -> io::Result<()> {
        let (from, to) = (from.as_ref(), to.as_ref());
        let (from_dir, from_name) = self.parent_of(from)?;
        let to_name = self.name_of(checked(to)?)?;
        // A rename within one directory (a download's temporary file) opens
        // it once.
        let other_dir = if from.parent() == to.parent() {
            None
        } else {
            Some(self.parent_of(to)?.0)
        };
        let from_dir = from_dir.as_ref().unwrap_or(self);
        let to_dir = match &other_dir {
            Some(other) => other.as_ref().unwrap_or(self),
            None => from_dir,
        };
        rustix::fs::renameat(&from_dir.fd, from_name, &to_dir.fd, to_name)
            .map_err(|errno| self.annotate(errno.into(), to))
    }

    /// Removes the file (or link) `relative`; a link is removed, never
    /// followed.
    ///
    /// # Errors
    /// When a directory on the way is a link, or the removal fails.
    pub fn remove_file(&self, relative: impl AsRef<Path>) -> io::Result<()> {
        let relative = relative.as_ref();
        let (dir, name) = self.parent_of(relative)?;
        let dir = dir.as_ref().unwrap_or(self);
        rustix::fs::unlinkat(&dir.fd, name, AtFlags::empty())
            .map_err(|errno| self.annotate(errno.into(), relative))
    }

    /// What `relative` is, without following a link at its end; `None`
    /// when it does not exist.
    ///
    /// # Errors
    /// When a directory on the way is a link, or it cannot be examined.
    pub fn kind(&self, relative: impl AsRef<Path>) -> io::Result<Option<EntryKind>> {
        let relative = relative.as_ref();
        let (dir, name) = self.parent_of(relative)?;
        let dir = dir.as_ref().unwrap_or(self);
        match rustix::fs::statat(&dir.fd, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(stat) => Ok(Some(kind_of(rustix::fs::FileType::from_raw_mode(
                stat.st_mode,
            )))),
            Err(rustix::io::Errno::NOENT) => Ok(None),
            Err(errno) => Err(self.annotate(errno.into(), relative)),
        }
    }

    /// The entries of this directory (not `.` and `..`), links not followed.
    ///
    /// # Errors
    /// When the directory cannot be read.
    pub fn entries(&self) -> io::Result<Vec<(OsString, EntryKind)>> {
        let mut entries = Vec::new();
        for entry in rustix::fs::Dir::read_from(&self.fd)? {
            let entry = entry?;
            let name = entry.file_name().to_bytes();
            if name == b"." || name == b".." {
                continue;
            }
            let kind = match entry.file_type() {
                // Some file systems do not say in the listing: ask, without
                // following a link.
                rustix::fs::FileType::Unknown => {
                    rustix::fs::statat(&self.fd, entry.file_name(), AtFlags::SYMLINK_NOFOLLOW)
                        .map_or(EntryKind::Other, |stat| {
                            kind_of(rustix::fs::FileType::from_raw_mode(stat.st_mode))
                        })
                }
                known => kind_of(known),
            };
            entries.push((OsString::from_vec(name.to_vec()), kind));
        }
        Ok(entries)
    }

    /// Opens a regular file: never blocks on a FIFO or device planted there
    /// (`O_NONBLOCK`, which regular files ignore), and refuses anything
    /// but a regular file.
    fn open_file(&self, relative: &Path, flags: OFlags, mode: RawMode) -> io::Result<File> {
        let file = File::from(self.openat(relative, flags | OFlags::NONBLOCK, mode)?);
        if !file.metadata()?.is_file() {
            return Err(self.annotate(
                io::Error::new(io::ErrorKind::InvalidInput, "not a regular file"),
                relative,
            ));
        }
        Ok(file)
    }

    /// The directory holding `relative` (opened; `None` for this one, a
    /// bare name) and its last component.
    fn parent_of<'a>(&self, relative: &'a Path) -> io::Result<(Option<Self>, &'a Path)> {
        let relative = checked(relative)?;
        let name = self.name_of(relative)?;
        let parent = relative.parent().unwrap_or(Path::new(""));
        let dir = if parent.as_os_str().is_empty() {
            None
        } else {
            Some(self.dir(parent)?)
        };
        Ok((dir, name))
    }

    /// The last component of `relative`.
    fn name_of<'a>(&self, relative: &'a Path) -> io::Result<&'a Path> {
        relative
            .file_name()
            .map(Path::new)
            .ok_or_else(|| self.annotate(io::ErrorKind::InvalidInput.into(), relative))
    }

    fn create_parent(&self, relative: &Path) -> io::Result<()> {
        if let Some(parent) = relative.parent().filter(|p| !p.as_os_str().is_empty()) {
            self.create_dir_all(parent)?;
        }
        Ok(())
    }

    /// Opens `relative` beneath the root without following any link (see
    /// [`open_beneath`]).
    fn openat(&self, relative: &Path, flags: OFlags, mode: RawMode) -> io::Result<OwnedFd> {
        let relative = checked(relative)?;
        open_beneath(
            self.fd.as_fd(),
            relative,
            flags | OFlags::CLOEXEC | OFlags::NOFOLLOW,
            Mode::from_raw_mode(mode),
        )
        .map_err(|errno| {
            // A link at the end of a path opened as a directory fails with
            // ENOTDIR, not ELOOP: say it was a link when it was one.
            if errno == rustix::io::Errno::NOTDIR && self.is_link(relative) {
                return self.annotate(rustix::io::Errno::LOOP.into(), relative);
            }
            self.annotate(errno.into(), relative)
        })
    }

    /// True when `relative`'s last component is a symbolic link (for error
    /// reports only: nothing is opened through it).
    fn is_link(&self, relative: &Path) -> bool {
        rustix::fs::statat(&self.fd, relative, AtFlags::SYMLINK_NOFOLLOW).is_ok_and(|stat| {
            rustix::fs::FileType::from_raw_mode(stat.st_mode) == rustix::fs::FileType::Symlink
        })
    }

    /// Names the path in an error, and says what a refused link means.
    fn annotate(&self, err: io::Error, relative: &Path) -> io::Error {
        annotate(err, &self.join(relative))
    }
}

fn kind_of(file_type: rustix::fs::FileType) -> EntryKind {
    match file_type {
        rustix::fs::FileType::RegularFile => EntryKind::File,
        rustix::fs::FileType::Directory => EntryKind::Dir,
        _ => EntryKind::Other,
    }
}

/// Opens `relative` beneath `root`, following no link at any component
/// (`flags` hold `O_NOFOLLOW` for the last one; [`checked`] let no `..` or
/// absolute path through):
/// - Linux: `openat2` with `RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS |
///   RESOLVE_NO_MAGICLINKS`;
/// - macOS: one `openat` with `O_NOFOLLOW_ANY` (`ELOOP` on a link anywhere);
/// - elsewhere: [`open_by_components`].
fn open_beneath(
    root: std::os::fd::BorrowedFd<'_>,
    relative: &Path,
    flags: OFlags,
    mode: Mode,
) -> rustix::io::Result<OwnedFd> {
    #[cfg(target_os = "linux")]
    {
        use rustix::fs::ResolveFlags;
        let resolve =
            ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS;
        rustix::fs::openat2(root, relative, flags, mode, resolve)
    }
    #[cfg(target_vendor = "apple")]
    {
        rustix::fs::openat(root, relative, flags | OFlags::NOFOLLOW_ANY, mode)
    }
    #[cfg(not(any(target_os = "linux", target_vendor = "apple")))]
    {
        open_by_components(root, relative, flags, mode)
    }
}

/// One `openat` per component, each directory opened with `O_DIRECTORY |
/// O_NOFOLLOW` relative to the one before and the last with `flags` (which
/// hold `O_NOFOLLOW`). A link at any component fails with `ELOOP` (or
/// `ENOTDIR`), and [`checked`] let no `..` or absolute path through, so
/// nothing outside `root` or through a link is reached. Used where
/// `openat2` does not exist; compiled and tested on Linux too.
#[cfg_attr(any(target_os = "linux", target_vendor = "apple"), allow(dead_code))]
fn open_by_components(
    root: std::os::fd::BorrowedFd<'_>,
    relative: &Path,
    flags: OFlags,
    mode: Mode,
) -> rustix::io::Result<OwnedFd> {
    let names: Vec<&std::ffi::OsStr> = relative
        .components()
        .filter_map(|component| match component {
            Component::Normal(name) => Some(name),
            _ => None,
        })
        .collect();
    let Some((last, parents)) = names.split_last() else {
        // Only `.` components: the root itself.
        return rustix::fs::openat(root, ".", flags, mode);
    };
    let walk = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let mut dir: Option<OwnedFd> = None;
    for name in parents {
        let at = dir.as_ref().map_or(root, |fd| fd.as_fd());
        dir = Some(rustix::fs::openat(at, *name, walk, Mode::empty())?);
    }
    let at = dir.as_ref().map_or(root, |fd| fd.as_fd());
    rustix::fs::openat(at, *last, flags, mode)
}

/// Refuses absolute paths and `..`: every path here is relative and goes
/// down only (the kernel would refuse an escape too; this says so first).
fn checked(relative: &Path) -> io::Result<&Path> {
    let fine = relative
        .components()
        .all(|c| matches!(c, Component::Normal(_) | Component::CurDir));
    if fine && !relative.as_os_str().is_empty() {
        Ok(relative)
    } else {
        Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "{}: not a relative path going down only",
                relative.display()
            ),
        ))
    }
}

/// A path the host refused because a symbolic link was in the way (or it
/// would have left the root). Carried inside the `io::Error` so callers can
/// tell it from an ordinary I/O failure (exit code 65).
#[derive(Debug, thiserror::Error)]
#[error(
    "{}: a symbolic link is in the way, and silt never follows links in the working copy or its own state \
     (an extension may have planted it); remove the link and try again",
    path.display()
)]
pub struct LinkRefused {
    /// The path as the host tried to reach it.
    pub path: PathBuf,
}

impl LinkRefused {
    /// The refusal inside `err`, if that is what it is.
    pub fn in_io(err: &io::Error) -> Option<&Self> {
        err.get_ref()?.downcast_ref()
    }
}

/// Adds the path to an I/O error; a refused link (`ELOOP`, or `EXDEV` from
/// an escape) becomes a [`LinkRefused`].
fn annotate(err: io::Error, path: &Path) -> io::Error {
    let loop_or_escape = matches!(
        err.raw_os_error(),
        Some(code) if code == rustix::io::Errno::LOOP.raw_os_error()
            || code == rustix::io::Errno::XDEV.raw_os_error()
    );
    if loop_or_escape {
        io::Error::new(
            err.kind(),
            LinkRefused {
                path: path.to_owned(),
            },
        )
    } else {
        io::Error::new(err.kind(), format!("{}: {err}", path.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn fixture() -> (tempfile::TempDir, Beneath, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        let outside = dir.path().join("outside");
        std::fs::create_dir_all(&outside).unwrap();
        std::fs::write(outside.join("secret"), b"precious").unwrap();
        let beneath = Beneath::create(&root).unwrap();
        (dir, beneath, outside)
    }

    /// The walk macOS uses, run here: what it opens and what it refuses.
    fn walk(beneath: &Beneath, relative: &str, flags: OFlags) -> rustix::io::Result<OwnedFd> {
        let flags = flags | OFlags::CLOEXEC | OFlags::NOFOLLOW;
        open_by_components(
            beneath.fd.as_fd(),
            Path::new(relative),
            flags,
            Mode::empty(),
        )
    }

    #[test]
    fn the_component_walk_opens_real_paths_and_refuses_a_link_at_any_depth() {
        let (_dir, beneath, outside) = fixture();
        beneath.write_atomic("a/b/file", b"mine").unwrap();
        let read = |fd: OwnedFd| {
            std::fs::read_to_string(format!("/proc/self/fd/{}", {
                use std::os::fd::AsRawFd as _;
                fd.as_raw_fd()
            }))
        };
        // Plain paths, with `.` components, and the root itself.
        assert_eq!(
            read(walk(&beneath, "a/b/file", OFlags::RDONLY).unwrap()).unwrap(),
            "mine"
        );
        assert_eq!(
            read(walk(&beneath, "./a/./b/file", OFlags::RDONLY).unwrap()).unwrap(),
            "mine"
        );
        walk(&beneath, ".", OFlags::RDONLY | OFlags::DIRECTORY).unwrap();
        // A link as the last component, a middle one and the first one;
        // pointing out of the root or to a real place inside.
        let root = beneath.path().to_owned();
        symlink(outside.join("secret"), root.join("a/b/out")).unwrap();
        symlink(root.join("a/b/file"), root.join("a/b/within")).unwrap();
        symlink(&outside, root.join("a/dir-out")).unwrap();
        symlink(root.join("a/b"), root.join("a/dir-within")).unwrap();
        symlink(&outside, root.join("top")).unwrap();
        for path in ["a/b/out", "a/b/within"] {
            let err = walk(&beneath, path, OFlags::RDONLY).unwrap_err();
            assert_eq!(err, rustix::io::Errno::LOOP, "{path}");
        }
        for path in ["a/dir-out/secret", "a/dir-within/file", "top/secret"] {
            let err = walk(&beneath, path, OFlags::RDONLY).unwrap_err();
            assert!(
                err == rustix::io::Errno::LOOP || err == rustix::io::Errno::NOTDIR,
                "{path}: {err}"
            );
        }
        // A create through a linked directory is refused as well, and
        // nothing appears outside.
        let create = OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL;
        assert!(walk(&beneath, "a/dir-out/planted", create).is_err());
        assert!(!outside.join("planted").exists());
        assert_eq!(std::fs::read(outside.join("secret")).unwrap(), b"precious");
    }

    #[test]
    fn links_out_and_links_within_are_both_refused() {
        let (_dir, root, outside) = fixture();
        std::fs::create_dir_all(root.join("data/t")).unwrap();
        std::fs::write(root.join("data/t/real"), b"inside").unwrap();
        symlink(&outside, root.join("data/t/abs")).unwrap();
        symlink("../../../outside/secret", root.join("data/t/rel")).unwrap();
        symlink("real", root.join("data/t/within")).unwrap();
        symlink("../..", root.join("data/up")).unwrap();
        assert_eq!(root.read("data/t/real", 64).unwrap(), b"inside");
        for path in [
            "data/t/rel",
            "data/t/within",
            "data/t/abs/secret",
            "data/up/outside/secret",
        ] {
            let err = root.read(path, 64).unwrap_err();
            assert!(LinkRefused::in_io(&err).is_some(), "{path}: {err}");
        }
        assert!(root.create_new("data/t/abs/new").is_err());
        assert!(root.create_dir_all("data/t/abs/deeper").is_err());
        assert!(root.dir("data/t/abs").is_err());
        assert!(root.read("../outside/secret", 64).is_err());
        assert!(root.read("/etc/passwd", 64).is_err());
        assert!(!outside.join("new").exists() && !outside.join("deeper").exists());
    }

    #[test]
    fn directories_and_renames_refuse_a_link_to_a_directory_that_exists() {
        let (_dir, root, outside) = fixture();
        std::fs::create_dir_all(outside.join("existing")).unwrap();
        std::fs::create_dir_all(root.join("data/t")).unwrap();
        symlink(&outside, root.join("data/t/abs")).unwrap();
        // Every directory is there (through the link): still refused.
        let err = root.create_dir_all("data/t/abs/existing").unwrap_err();
        assert!(LinkRefused::in_io(&err).is_some(), "{err}");
        assert!(root.create_new("data/t/abs/existing/new").is_err());
        std::fs::write(outside.join("moved"), b"theirs").unwrap();
        assert!(
            root.rename("data/t/abs/moved", "data/t/abs/renamed")
                .is_err()
        );
        assert!(outside.join("moved").exists() && !outside.join("renamed").exists());
        // Within one directory and across two, real paths rename.
        root.write_atomic("data/t/a", b"mine").unwrap();
        root.rename("data/t/a", "data/t/b").unwrap();
        root.create_dir_all("data/u").unwrap();
        root.rename("data/t/b", "data/u/c").unwrap();
        assert_eq!(root.read("data/u/c", 64).unwrap(), b"mine");
    }

    #[test]
    fn writes_replace_a_planted_link_instead_of_following_it() {
        let (_dir, root, outside) = fixture();
        symlink(outside.join("secret"), root.join("state.json")).unwrap();
        root.write_atomic("state.json", b"mine").unwrap();
        assert_eq!(std::fs::read(outside.join("secret")).unwrap(), b"precious");
        assert_eq!(root.read("state.json", 64).unwrap(), b"mine");
        // Removing a link removes the link, not its target.
        symlink(outside.join("secret"), root.join("gone")).unwrap();
        assert_eq!(root.kind("gone").unwrap(), Some(EntryKind::Other));
        root.remove_file("gone").unwrap();
        assert_eq!(root.kind("gone").unwrap(), None);
        assert!(outside.join("secret").exists());
        // Appending and opening for locks refuse a link at the end.
        symlink(outside.join("secret"), root.join("log")).unwrap();
        assert!(root.open_append("log").is_err());
        assert!(root.open_or_create("log").is_err());
        assert_eq!(std::fs::read(outside.join("secret")).unwrap(), b"precious");
    }

    #[test]
    fn a_file_created_with_its_directory_is_renamed_there_even_if_the_path_was_swapped() {
        let (_dir, root, outside) = fixture();
        let (dir, mut file) = root.create_new_in_dir("data/m/.f.tmp").unwrap();
        file.write_all(b"mine").unwrap();
        // The directory is moved away and a link to outside planted at its
        // path: the rename happens in the directory the file is in.
        root.rename("data/m", "data/moved").unwrap();
        symlink(&outside, root.join("data/m")).unwrap();
        dir.rename(".f.tmp", "f").unwrap();
        assert_eq!(root.read("data/moved/f", 64).unwrap(), b"mine");
        assert!(!outside.join("f").exists() && !outside.join(".f.tmp").exists());
        // A name taken (a link planted there) is not opened; a bare name
        // creates in the root itself.
        symlink(outside.join("secret"), root.join("taken")).unwrap();
        assert!(root.create_new_in_dir("taken").is_err());
        assert_eq!(std::fs::read(outside.join("secret")).unwrap(), b"precious");
        let (top, _file) = root.create_new_in_dir(".g.tmp").unwrap();
        top.rename(".g.tmp", "g").unwrap();
        top.remove_file("g").unwrap();
        assert_eq!(root.kind("g").unwrap(), None);
        // A link in the way of the directories is refused, as ever.
        assert!(root.create_new_in_dir("data/m/x").is_err());
    }

    #[test]
    fn fifos_and_oversized_files_are_refused_without_blocking() {
        let (_dir, root, _outside) = fixture();
        rustix::fs::mknodat(
            &root.fd,
            "pipe",
            rustix::fs::FileType::Fifo,
            Mode::from_raw_mode(0o644),
            0,
        )
        .unwrap();
        // Each would block forever on a FIFO with no writer (or reader).
        assert!(root.open_read("pipe").is_err());
        assert!(root.open_append("pipe").is_err());
        assert!(root.open_or_create("pipe").is_err());
        std::fs::write(root.join("big"), vec![7u8; 100]).unwrap();
        assert!(root.read("big", 99).is_err());
        assert_eq!(root.read("big", 100).unwrap().len(), 100);
    }

    #[test]
    fn temporary_names_are_beside_their_target() {
        let (_dir, root, _outside) = fixture();
        let temp = root.temp_beside(Path::new("data/t/m/weights.bin")).unwrap();
        assert_eq!(temp.parent().unwrap(), Path::new("data/t/m"));
        let name = temp.file_name().unwrap().to_str().unwrap();
        assert_eq!(
            silt_process::temp_owner(name),
            Some(silt_process::TempOwner::ThisProcess)
        );
        assert!(root.temp_beside(Path::new("")).is_err());
    }

    #[test]
    fn entries_report_links_as_other() {
        let (_dir, root, outside) = fixture();
        root.create_dir_all("d").unwrap();
        std::fs::write(root.join("f"), b"x").unwrap();
        symlink(&outside, root.join("l")).unwrap();
        let mut entries = root.entries().unwrap();
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(
            entries,
            vec![
                ("d".into(), EntryKind::Dir),
                ("f".into(), EntryKind::File),
                ("l".into(), EntryKind::Other)
            ]
        );
    }
}
