//! Paths the user names on the command line (`data put`'s file, `data
//! get -o`), which may lead into the working copy: the extension's
//! `/cache`, where a guest can plant links. Outside it, a path is followed
//! as the user's shell would; from the first directory inside it on,
//! nothing is followed, so a link an extension planted cannot make the
//! host read (and commit, for the extension to read back) or write a file
//! of the user's elsewhere.

use std::collections::VecDeque;
use std::ffi::OsString;
use std::io;
use std::path::{Component, Path, PathBuf};

/// Links followed while locating a path before giving up, as the kernel's
/// `ELOOP` limit (`MAXSYMLINKS`).
const MAX_LINKS: usize = 40;

/// Where a path the user named leads.
#[derive(Debug, PartialEq, Eq)]
pub enum GivenPath {
    /// Outside the working copy: the path with every link resolved (what
    /// lies there is the user's, not a guest's).
    Outside(PathBuf),
    /// Into the working copy: the rest of the path, relative to it, to be
    /// opened beneath it without following a link ([`crate::beneath`]).
    InWorkingCopy(PathBuf),
}

/// Locates `path` (relative paths from the current directory) against
/// `working_copy`. Links are resolved one at a time, and only while the
/// directory reached so far lies outside the working copy: a user's link
/// into it is taken, a link inside it is left for the beneath-open to
/// refuse. A component that does not exist ends the resolution there (the
/// open that follows says it is missing).
///
/// # Errors
/// When the current directory is unknown, a link cannot be read, or more
/// than [`MAX_LINKS`] links are met.
pub fn locate(path: &Path, working_copy: &Path) -> io::Result<GivenPath> {
    let Ok(root) = working_copy.canonicalize() else {
        // No working copy yet: nothing a guest wrote can be on the way.
        return Ok(GivenPath::Outside(path.to_owned()));
    };
    let absolute = if path.is_absolute() {
        path.to_owned()
    } else {
        std::env::current_dir()?.join(path)
    };
    let mut pending: VecDeque<OsString> = names(&absolute);
    // Every directory `at` names has been reached without a link left
    // unresolved, so `..` is its parent and `starts_with` is where it is.
    let mut at = PathBuf::from("/");
    let mut links = 0;
    while let Some(name) = pending.pop_front() {
        if at.starts_with(&root) {
            pending.push_front(name);
            return Ok(GivenPath::InWorkingCopy(beneath(&at, &root, pending)));
        }
        match name.to_str() {
            Some("/") => at = PathBuf::from("/"),
            Some(".") => {}
            Some("..") => {
                at.pop();
            }
            _ => {
                let next = at.join(&name);
                match std::fs::symlink_metadata(&next) {
                    Ok(meta) if meta.file_type().is_symlink() => {
                        links += 1;
                        if links > MAX_LINKS {
                            return Err(io::Error::other(format!(
                                "{}: more than {MAX_LINKS} links on the way",
                                path.display()
                            )));
                        }
                        let target = std::fs::read_link(&next)?;
                        for component in names(&target).into_iter().rev() {
                            pending.push_front(component);
                        }
                    }
                    Ok(_) => at = next,
                    // Missing (or unreadable): the open says so; what
                    // follows is taken as written.
                    Err(_) => {
                        at = next;
                        at.extend(pending.drain(..));
                    }
                }
            }
        }
    }
    if at.starts_with(&root) {
        return Ok(GivenPath::InWorkingCopy(beneath(&at, &root, pending)));
    }
    Ok(GivenPath::Outside(at))
}

/// `path`'s components as names, `/` for the root and `.`/`..` as such.
fn names(path: &Path) -> VecDeque<OsString> {
    path.components()
        .filter_map(|component| match component {
            Component::RootDir => Some(OsString::from("/")),
            Component::CurDir => Some(OsString::from(".")),
            Component::ParentDir => Some(OsString::from("..")),
            Component::Normal(name) => Some(name.to_owned()),
            Component::Prefix(_) => None,
        })
        .collect()
}

/// The rest of a path that reached `at`, inside `root`, relative to `root`.
fn beneath(at: &Path, root: &Path, rest: VecDeque<OsString>) -> PathBuf {
    let mut relative = at.strip_prefix(root).unwrap_or(at).to_owned();
    relative.extend(rest);
    relative
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    struct Layout {
        _dir: tempfile::TempDir,
        /// Canonical, so expected outside paths compare equal.
        top: PathBuf,
        working_copy: PathBuf,
    }

    fn layout() -> Layout {
        let dir = tempfile::tempdir().unwrap();
        let top = dir.path().canonicalize().unwrap();
        let working_copy = top.join("project/.silt/local");
        std::fs::create_dir_all(working_copy.join("data/t/m")).unwrap();
        std::fs::create_dir_all(top.join("home")).unwrap();
        std::fs::write(top.join("home/secret"), "s").unwrap();
        std::fs::write(working_copy.join("data/t/m/file"), "f").unwrap();
        Layout {
            _dir: dir,
            top,
            working_copy,
        }
    }

    #[test]
    fn a_path_outside_is_resolved_through_the_users_links() {
        let l = layout();
        symlink(l.top.join("home"), l.top.join("h")).unwrap();
        assert_eq!(
            locate(&l.top.join("h/secret"), &l.working_copy).unwrap(),
            GivenPath::Outside(l.top.join("home/secret"))
        );
        assert_eq!(
            locate(&l.top.join("home/../home/./missing/x"), &l.working_copy).unwrap(),
            GivenPath::Outside(l.top.join("home/missing/x"))
        );
    }

    #[test]
    fn a_path_into_the_working_copy_is_left_relative_to_it() {
        let l = layout();
        assert_eq!(
            locate(&l.working_copy.join("data/t/m/file"), &l.working_copy).unwrap(),
            GivenPath::InWorkingCopy(PathBuf::from("data/t/m/file"))
        );
        // The user's own link into it is taken; what follows is not resolved.
        symlink(&l.working_copy, l.top.join("wc")).unwrap();
        assert_eq!(
            locate(&l.top.join("wc/data/t/m/file"), &l.working_copy).unwrap(),
            GivenPath::InWorkingCopy(PathBuf::from("data/t/m/file"))
        );
    }

    #[test]
    fn a_link_planted_in_the_working_copy_is_not_followed() {
        let l = layout();
        let planted = l.working_copy.join("data/t/m/key");
        symlink(l.top.join("home/secret"), &planted).unwrap();
        assert_eq!(
            locate(&planted, &l.working_copy).unwrap(),
            GivenPath::InWorkingCopy(PathBuf::from("data/t/m/key"))
        );
        // Nor a planted directory link, reached through a user's link.
        symlink(l.top.join("home"), l.working_copy.join("data/t/d")).unwrap();
        symlink(l.working_copy.join("data/t/d/secret"), l.top.join("mine")).unwrap();
        assert_eq!(
            locate(&l.top.join("mine"), &l.working_copy).unwrap(),
            GivenPath::InWorkingCopy(PathBuf::from("data/t/d/secret"))
        );
    }

    #[test]
    fn a_link_cycle_is_an_error() {
        let l = layout();
        symlink(l.top.join("b"), l.top.join("a")).unwrap();
        symlink(l.top.join("a"), l.top.join("b")).unwrap();
        assert!(locate(&l.top.join("a/x"), &l.working_copy).is_err());
    }

    #[test]
    fn without_a_working_copy_the_path_is_taken_as_given() {
        let l = layout();
        let path = l.top.join("home/secret");
        assert_eq!(
            locate(&path, &l.top.join("none")).unwrap(),
            GivenPath::Outside(path)
        );
    }
}
