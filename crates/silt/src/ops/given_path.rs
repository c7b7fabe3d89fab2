//! Paths the user names on the command line (`data put`'s file, `data
//! get -o`), which may lead into the working copy: the extension's
//! `/cache`, where a guest can plant links. Outside it, a path is followed
//! as the user's shell would; inside it, no link is followed, so a link an
//! extension planted cannot make the host read a file of the user's (and
//! commit it, for the extension to read back) or write one elsewhere.

use std::collections::VecDeque;
use std::ffi::OsString;
use std::io;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Component, Path, PathBuf};

/// Links followed while locating a path before giving up, as the kernel's
/// `ELOOP` limit (`MAXSYMLINKS`).
const MAX_LINKS: usize = 40;

/// Where a path the user named leads.
#[derive(Debug, PartialEq, Eq)]
pub enum GivenPath {
    /// Outside the working copy: the path as the user gave it, or, when it
    /// passed through the working copy and left it again by `..`, the
    /// directories it reached with no link left (opening the path as given
    /// would walk the working copy again, where a guest may have planted a
    /// link meanwhile); to be opened as usual.
    Outside(PathBuf),
    /// Into the working copy: the rest of the path, relative to it, to be
    /// opened beneath it without following a link ([`crate::beneath`]).
    InWorkingCopy(PathBuf),
}

/// One step of a path being walked.
enum Step {
    Root,
    Current,
    Parent,
    Name(OsString),
}

/// Locates `path` (a relative one from `cwd`) against `working_copy`,
/// which must exist. Links are resolved one at a time while the directory
/// reached lies outside the working copy: a user's link into it is taken.
/// Inside it, only real directories are walked (and `..`, which may lead
/// out again); the first link or missing name ends the walk, and the rest
/// is left for the beneath-open, which refuses a link. The working copy is
/// recognised by its device and inode, not by how the path spells it (a
/// case-insensitive file system has several spellings).
///
/// A bind mount of a directory *below* the working copy, named by its
/// mount point, is not recognised (it never passes through the working
/// copy's own directory).
///
/// # Errors
/// An empty path, a working copy that cannot be read, a link that cannot
/// be read, or more than [`MAX_LINKS`] links on the way.
pub fn locate(path: &Path, cwd: &Path, working_copy: &Path) -> io::Result<GivenPath> {
    if path.as_os_str().is_empty() {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "an empty path"));
    }
    let root = std::fs::metadata(working_copy)?;
    let is_root = |dir: &Path| {
        std::fs::metadata(dir)
            .is_ok_and(|meta| meta.dev() == root.dev() && meta.ino() == root.ino())
    };
    let mut pending = steps(&cwd.join(path));
    // Every directory `at` names was reached without a link left
    // unresolved, so `..` is its parent.
    let mut at = PathBuf::from("/");
    // Inside the working copy: the real directories walked beneath it.
    let mut inside: Option<Vec<OsString>> = None;
    let mut was_inside = false;
    // What to open when the path ends outside: as given, unless it went
    // through the working copy.
    let outside = |at: PathBuf, rest: &mut VecDeque<Step>, was_inside: bool| {
        GivenPath::Outside(if was_inside {
            at.iter()
                .map(OsString::from)
                .chain(rest.drain(..).map(step_name))
                .collect()
        } else {
            path.to_owned()
        })
    };
    let mut links = 0;
    while let Some(step) = pending.pop_front() {
        if let Some(below) = inside.as_mut() {
            match step {
                Step::Root => {
                    inside = None;
                    at = PathBuf::from("/");
                }
                Step::Current => {}
                Step::Parent => {
                    at.pop();
                    if below.pop().is_none() {
                        inside = None;
                    }
                }
                Step::Name(name) => {
                    let next = at.join(&name);
                    let real = std::fs::symlink_metadata(&next)
                        .is_ok_and(|meta| !meta.file_type().is_symlink());
                    if !real {
                        // A link (or nothing): left to the beneath-open.
                        below.push(name);
                        below.extend(pending.drain(..).map(step_name));
                        break;
                    }
                    below.push(name);
                    at = next;
                }
            }
            continue;
        }
        match step {
            Step::Root => at = PathBuf::from("/"),
            Step::Current => {}
            Step::Parent => {
                at.pop();
            }
            Step::Name(name) => {
                let next = at.join(&name);
                match std::fs::symlink_metadata(&next) {
                    Ok(meta) if meta.file_type().is_symlink() => {
                        links += 1;
                        if links > MAX_LINKS {
                            return Err(io::Error::other(format!(
                                "more than {MAX_LINKS} links on the way"
                            )));
                        }
                        let target = std::fs::read_link(&next)?;
                        if !target.is_absolute() && next.starts_with("/proc") {
                            // A pipe or socket behind `/dev/stdin` and its
                            // kind (`pipe:[…]`): no file, in the working
                            // copy or anywhere; opened as it is.
                            pending.push_front(Step::Name(name));
                            return Ok(outside(at, &mut pending, was_inside));
                        }
                        for step in steps(&target).into_iter().rev() {
                            pending.push_front(step);
                        }
                    }
                    Ok(_) => at = next,
                    // Missing (or unreadable): the open says so.
                    Err(_) => {
                        pending.push_front(Step::Name(name));
                        return Ok(outside(at, &mut pending, was_inside));
                    }
                }
            }
        }
        if is_root(&at) {
            inside = Some(Vec::new());
            was_inside = true;
        }
    }
    Ok(match inside {
        Some(below) => GivenPath::InWorkingCopy(below.into_iter().collect()),
        None => outside(at, &mut pending, was_inside),
    })
}

/// `path` as steps.
fn steps(path: &Path) -> VecDeque<Step> {
    path.components()
        .filter_map(|component| match component {
            Component::RootDir => Some(Step::Root),
            Component::CurDir => Some(Step::Current),
            Component::ParentDir => Some(Step::Parent),
            Component::Normal(name) => Some(Step::Name(name.to_owned())),
            Component::Prefix(_) => None,
        })
        .collect()
}

/// A step left for the beneath-open, as a path component (which refuses
/// `..` and `/`).
fn step_name(step: Step) -> OsString {
    match step {
        Step::Root => OsString::from("/"),
        Step::Current => OsString::from("."),
        Step::Parent => OsString::from(".."),
        Step::Name(name) => name,
    }
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

    impl Layout {
        fn locate(&self, path: impl AsRef<Path>) -> GivenPath {
            locate(path.as_ref(), &self.top, &self.working_copy).unwrap()
        }
    }

    fn inside(relative: &str) -> GivenPath {
        GivenPath::InWorkingCopy(PathBuf::from(relative))
    }

    #[test]
    fn a_path_outside_is_given_as_it_is() {
        let l = layout();
        symlink(l.top.join("home"), l.top.join("h")).unwrap();
        for path in ["h/secret", "home/../home/./secret", "home/missing/x"] {
            assert_eq!(l.locate(path), GivenPath::Outside(PathBuf::from(path)));
        }
    }

    #[test]
    fn a_path_into_the_working_copy_is_left_relative_to_it() {
        let l = layout();
        assert_eq!(
            l.locate(l.working_copy.join("data/t/m/file")),
            inside("data/t/m/file")
        );
        // Relative to the current directory, and through the user's own
        // link into it.
        assert_eq!(
            l.locate("project/.silt/local/data/t/m/file"),
            inside("data/t/m/file")
        );
        symlink(&l.working_copy, l.top.join("wc")).unwrap();
        assert_eq!(l.locate("wc/data/t/m/file"), inside("data/t/m/file"));
        // In and out again by `..` through real directories only.
        assert_eq!(
            l.locate("wc/data/t/m/../../../../../../home/secret"),
            GivenPath::Outside(l.top.join("home/secret"))
        );
        assert_eq!(l.locate("wc/data/t/m/../m/file"), inside("data/t/m/file"));
    }

    #[test]
    fn a_link_planted_in_the_working_copy_is_not_followed() {
        let l = layout();
        let planted = l.working_copy.join("data/t/m/key");
        symlink(l.top.join("home/secret"), &planted).unwrap();
        assert_eq!(l.locate(&planted), inside("data/t/m/key"));
        // A planted directory link, reached through a user's link, and
        // with `..` after it.
        symlink(l.top.join("home"), l.working_copy.join("data/t/d")).unwrap();
        symlink(l.working_copy.join("data/t/d/secret"), l.top.join("mine")).unwrap();
        assert_eq!(l.locate("mine"), inside("data/t/d/secret"));
        assert_eq!(
            l.locate(l.working_copy.join("data/t/d/../d/secret")),
            inside("data/t/d/../d/secret")
        );
    }

    #[test]
    fn the_working_copy_is_known_by_its_inode_not_its_spelling() {
        let l = layout();
        // A second spelling of the same directory, as a case-insensitive
        // file system gives: a bind mount needs root, a hard link to a
        // directory is refused, so a link to its parent stands in for it.
        symlink(l.top.join("project/.silt"), l.top.join("other")).unwrap();
        let planted = l.working_copy.join("data/t/m/key");
        symlink(l.top.join("home/secret"), &planted).unwrap();
        assert_eq!(l.locate("other/local/data/t/m/key"), inside("data/t/m/key"));
    }

    #[test]
    fn a_link_cycle_and_an_empty_path_are_errors() {
        let l = layout();
        symlink(l.top.join("b"), l.top.join("a")).unwrap();
        symlink(l.top.join("a"), l.top.join("b")).unwrap();
        assert!(locate(Path::new("a/x"), &l.top, &l.working_copy).is_err());
        assert!(locate(Path::new(""), &l.top, &l.working_copy).is_err());
    }

    #[test]
    fn standard_input_by_name_is_given_as_it_is() {
        let l = layout();
        assert_eq!(
            l.locate("/dev/stdin"),
            GivenPath::Outside(PathBuf::from("/dev/stdin"))
        );
    }
}
