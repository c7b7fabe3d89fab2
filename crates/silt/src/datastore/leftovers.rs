//! Download files a killed silt left behind. A download streams into a
//! temporary name beside its target ([`crate::process::temp_name`]: the
//! place its pids mean something, its pid and a nonce) and is renamed over it only
//! when complete and verified, so a kill never leaves a partial file under
//! a real name; it can leave the temporary one. Push ignores those; this
//! removes the ones whose process is gone, so an interrupted hydration that
//! is resumed leaves nothing behind. The same goes for the staged copies of
//! `silt data` commands and for the file `silt data get -o PATH` writes
//! beside `PATH`.

use std::collections::HashSet;
use std::ffi::OsStr;
use std::path::Path;
use std::time::Duration;

use crate::beneath::{Beneath, EntryKind};
use crate::process::{TEMP_MARKER, TempOwner, is_temp_name_for, temp_owner};

/// Removes, under `relative` in the local copy `local`, the temporary
/// download files of processes that no longer run. Returns how many were
/// removed. A file of a process in `gone` (known dead: its marker was
/// abandoned, see [`super::transfer_marker`]) is removed whatever its age.
/// Otherwise a file whose process may still run is kept; a predecessor's
/// that had this process's pid is gone; one whose process cannot be
/// checked from here (another pid namespace's or machine's) is taken as
/// abandoned once nothing has written it for [`ABANDONED_AFTER`]. Links
/// are neither followed nor removed: the walk stays in real directories
/// beneath the local copy.
///
/// # Errors
/// The first directory that could not be read or file removed; the walk
/// goes on past it, removing what it can.
pub fn remove_stale_downloads(
    local: &Beneath,
    relative: &Path,
    gone: &HashSet<String>,
) -> std::io::Result<u64> {
    let dir = match local.dir(relative) {
        Ok(dir) => dir,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(err) => return Err(err),
    };
    let mut sweep = Sweep::default();
    for (name, kind) in dir.entries()? {
        match kind {
            EntryKind::Dir => {
                sweep.add(remove_stale_downloads(local, &relative.join(&name), gone));
            }
            EntryKind::File if is_stale_download(&dir, &name, gone) => sweep.remove(&dir, &name),
            _ => {}
        }
    }
    sweep.end()
}

/// What a sweep removed, and the first error it went on past.
#[derive(Default)]
struct Sweep {
    removed: u64,
    first_error: Option<std::io::Error>,
}

impl Sweep {
    /// Removes `name` in `dir`; one removed meanwhile (another cleaner got
    /// there first) counts as gone.
    fn remove(&mut self, dir: &Beneath, name: &OsStr) {
        match dir.remove_file(name) {
            Ok(()) => self.removed += 1,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
            Err(err) => self.add(Err(err)),
        }
    }

    /// Adds what a nested sweep removed, or its error.
    fn add(&mut self, nested: std::io::Result<u64>) {
        match nested {
            Ok(count) => self.removed += count,
            Err(err) => {
                self.first_error.get_or_insert(err);
            }
        }
    }

    fn end(self) -> std::io::Result<u64> {
        self.first_error.map_or(Ok(self.removed), Err)
    }
}

/// True when `name` in `dir` is a temporary download file whose writer is
/// gone: in `gone` (known dead), or as [`is_gone`] judges its owner.
fn is_stale_download(dir: &Beneath, name: &OsStr, gone: &HashSet<String>) -> bool {
    let text = name.to_string_lossy();
    temp_owner(&text).is_some_and(|owner| {
        writer_of(&text).is_some_and(|writer| gone.contains(writer))
            || is_gone(owner, || untouched_for(dir, name))
    })
}

/// The process that wrote temporary file `file_name`
/// (`<where>.<pid>.<nonce>`), when the name has that shape (not the older
/// one, which says less).
pub(super) fn writer_of(file_name: &str) -> Option<&str> {
    let (_, mark) = file_name.rsplit_once(TEMP_MARKER)?;
    let (writer, counter) = mark.rsplit_once('.')?;
    let fields: Vec<&str> = writer.split('.').collect();
    let numeric = |field: &str| !field.is_empty() && field.bytes().all(|b| b.is_ascii_digit());
    (fields.len() == 3 && fields.iter().all(|f| numeric(f)) && numeric(counter)).then_some(writer)
}

/// How long a temporary file whose writer cannot be checked from here
/// stays untouched before it is taken as abandoned: a live download
/// writes as its bytes arrive, and a stalled one is given up within its
/// store operation's budget (seconds).
pub const ABANDONED_AFTER: Duration = Duration::from_secs(3600);

/// True when the writer of a temporary file no longer runs (`untouched`:
/// how long since it was written).
pub(super) fn is_gone(owner: TempOwner, untouched: impl FnOnce() -> Duration) -> bool {
    match owner {
        TempOwner::Predecessor => true,
        TempOwner::Process(pid) => !running(pid),
        TempOwner::ThisProcess => false,
        TempOwner::Elsewhere => untouched() >= ABANDONED_AFTER,
    }
}

/// How long since `name` in `dir` was written (zero when unknown).
pub(super) fn untouched_for(dir: &Beneath, name: &OsStr) -> Duration {
    dir.open_read(name)
        .map_or(Duration::ZERO, |file| untouched_since(&file))
}

/// How long since the open `file` was written (zero when unknown).
pub(super) fn untouched_since(file: &std::fs::File) -> Duration {
    file.metadata()
        .and_then(|meta| meta.modified())
        .ok()
        .and_then(|modified| modified.elapsed().ok())
        .unwrap_or(Duration::ZERO)
}

/// Removes the staged copies (`<pid>-<nanos>` in `staging`, relative to
/// the local copy) of `silt data` commands that were killed, and the
/// temporary files of downloads into them that a kill interrupted: a live
/// command removes its own when done. Returns how many were removed.
///
/// # Errors
/// When the directory cannot be read, or the first leftover that could
/// not be removed (the rest are still tried; one another cleaner removed
/// first counts as gone).
pub fn remove_stale_staging(local: &Beneath, staging: &Path) -> std::io::Result<u64> {
    let dir = match local.dir(staging) {
        Ok(dir) => dir,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(err) => return Err(err),
    };
    let mut sweep = Sweep::default();
    for (name, kind) in dir.entries()? {
        let owner = name
            .to_str()
            .and_then(|name| name.split_once('-'))
            .and_then(|(pid, nanos)| nanos.bytes().all(|b| b.is_ascii_digit()).then_some(pid))
            .and_then(|pid| pid.parse::<u32>().ok());
        if kind == EntryKind::File
            && (owner.is_some_and(|pid| !running(pid))
                || is_stale_download(&dir, &name, &HashSet::new()))
        {
            sweep.remove(&dir, &name);
        }
    }
    sweep.end()
}

/// Removes the temporary files a killed `silt data get -o <path>` left in
/// `dir` for `file_name` (made by [`crate::process::temp_name`]) whose
/// writer is gone, by the rules of [`remove_stale_downloads`]. `dir` is
/// the user's choice, outside the working copy: it is opened once as any
/// command-line tool opens it, and everything in it is reached through
/// that handle, never through a link. Only regular files of that name's
/// exact shape ([`crate::process::is_temp_name_for`]) that this user owns
/// are removed: in a directory others write, a live writer of another
/// user's may not show as running here. Returns how many were removed.
///
/// # Errors
/// When the directory cannot be read, or the first leftover that could
/// not be removed (the rest are still tried).
pub fn remove_stale_temp_files_beside(dir: &Path, file_name: &OsStr) -> std::io::Result<u64> {
    let dir = match Beneath::open(dir) {
        Ok(dir) => dir,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(err) => return Err(err),
    };
    let mut sweep = Sweep::default();
    for (name, kind) in dir.entries()? {
        if kind == EntryKind::File
            && is_temp_name_for(&name, file_name)
            && owned_by_this_user(&dir, &name)
            && is_stale_download(&dir, &name, &HashSet::new())
        {
            sweep.remove(&dir, &name);
        }
    }
    sweep.end()
}

/// True when `name` in `dir` belongs to the user this process runs as
/// (false when it cannot be looked at).
fn owned_by_this_user(dir: &Beneath, name: &OsStr) -> bool {
    use std::os::unix::fs::MetadataExt as _;
    // SAFETY: `geteuid` has no preconditions and cannot fail.
    let euid = unsafe { libc::geteuid() };
    dir.open_read(name)
        .and_then(|file| file.metadata())
        .is_ok_and(|meta| meta.uid() == euid)
}

/// True when process `pid` may still run: it exists in this process's pid
/// namespace, whoever's it is (`kill` with no signal: `/proc` may hide
/// other users' processes, or belong to another namespace).
pub(super) fn running(pid: u32) -> bool {
    if pid == std::process::id() {
        return true;
    }
    // 0 and the negative pids of `kill` name groups, never one process.
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    if pid == 0 {
        return false;
    }
    // SAFETY: signal 0 sends nothing; it only checks that `pid` exists.
    if unsafe { libc::kill(pid, 0) } == 0 {
        return true;
    }
    // Exists, but not ours to signal: still running.
    std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
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
        let local = Beneath::open(dir.path()).unwrap();
        let ours = local.join(local.temp_beside(Path::new("data/t/m/g.bin")).unwrap());
        // This process's mark, read back from its own name:
        // `.g.bin.silt-tmp.<place>.<pid>.<nonce>.<n>`.
        let name = ours.file_name().unwrap().to_str().unwrap().to_owned();
        let mark: Vec<u64> = name[".g.bin.silt-tmp.".len()..]
            .split('.')
            .map(|field| field.parse().unwrap())
            .collect();
        let (place, pid, nonce) = (mark[0], mark[1], mark[2]);
        assert_eq!(pid, u64::from(std::process::id()));
        // A pid above Linux's maximum (2^22) never runs; the older shape
        // of name is cleaned up too.
        let dead = nested.join(format!(".f.bin.silt-tmp.{place}.4194305.1.0"));
        let dead_older = nested.join(".e.bin.silt-tmp.4194305.0");
        // A killed process that had this pid (pid 1 in a container).
        let other_nonce = (nonce + 1) % (1 << 32);
        let predecessor = nested.join(format!(".h.bin.silt-tmp.{place}.{pid}.{other_nonce}.0"));
        // Another pid namespace's or machine's pids cannot be checked from
        // here: its file is kept until nothing has written it for an hour.
        let elsewhere = nested.join(format!(".i.bin.silt-tmp.{}.4194305.1.0", place + 1));
        let abandoned = nested.join(format!(".j.bin.silt-tmp.{}.4194305.1.0", place + 1));
        let data = nested.join("f.bin");
        for path in [
            &dead,
            &dead_older,
            &predecessor,
            &ours,
            &elsewhere,
            &abandoned,
            &data,
        ] {
            std::fs::write(path, b"x").unwrap();
        }
        let long_ago = std::time::SystemTime::now() - ABANDONED_AFTER - Duration::from_secs(60);
        std::fs::File::options()
            .write(true)
            .open(&abandoned)
            .unwrap()
            .set_modified(long_ago)
            .unwrap();
        let removed = remove_stale_downloads(&local, Path::new("data"), &HashSet::new()).unwrap();
        assert_eq!(removed, 4);
        assert!(!dead.exists() && !dead_older.exists() && !predecessor.exists());
        assert!(!abandoned.exists());
        assert!(ours.exists() && elsewhere.exists() && data.exists());
        // Known gone (its marker was abandoned): removed however young.
        let gone = HashSet::from([format!("{}.4194305.1", place + 1)]);
        assert_eq!(
            remove_stale_downloads(&local, Path::new("data"), &gone).unwrap(),
            1
        );
        assert!(!elsewhere.exists() && ours.exists() && data.exists());
        assert_eq!(
            remove_stale_downloads(&local, Path::new("missing"), &HashSet::new()).unwrap(),
            0
        );
        // A model directory planted as a link elsewhere is not walked.
        let elsewhere = tempfile::tempdir().unwrap();
        let victim = elsewhere.path().join(".f.bin.silt-tmp.4194305.0");
        std::fs::write(&victim, b"x").unwrap();
        std::os::unix::fs::symlink(elsewhere.path(), dir.path().join("data/t/link")).unwrap();
        assert!(remove_stale_downloads(&local, Path::new("data/t/link"), &HashSet::new()).is_err());
        assert_eq!(
            remove_stale_downloads(&local, Path::new("data"), &HashSet::new()).unwrap(),
            0
        );
        assert!(victim.exists());
    }

    #[test]
    #[cfg(target_os = "linux")]
    fn the_leftovers_beside_an_output_file_go_when_their_writer_is_gone() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("out.bin");
        let ours = dir
            .path()
            .join(crate::process::temp_name(OsStr::new("out.bin")));
        let name = ours.file_name().unwrap().to_str().unwrap().to_owned();
        let mark: Vec<u64> = name[".out.bin.silt-tmp.".len()..]
            .split('.')
            .map(|field| field.parse().unwrap())
            .collect();
        let (place, pid, nonce) = (mark[0], mark[1], mark[2]);
        assert_ne!(place, 0, "boot id and pid namespace are readable");
        let beside = |mark: String| dir.path().join(format!(".out.bin.silt-tmp.{mark}"));
        // A killed writer of this place (a pid above Linux's maximum never
        // runs), a killed predecessor with this pid, and another place's,
        // young, then an hour old.
        let dead = beside(format!("{place}.4194305.1.0"));
        let predecessor = beside(format!("{place}.{pid}.{}.0", (nonce + 1) % (1 << 32)));
        let elsewhere = beside(format!("{}.4194305.1.0", place + 1));
        // Another name's leftover, the target itself, and a dead writer's
        // name padded with zeros (no name silt makes).
        let other = dir
            .path()
            .join(format!(".other.bin.silt-tmp.{place}.4194305.1.0"));
        let padded = beside(format!("{place}.04194305.1.0"));
        for path in [
            &target,
            &ours,
            &dead,
            &predecessor,
            &elsewhere,
            &other,
            &padded,
        ] {
            std::fs::write(path, b"x").unwrap();
        }
        // Links and a directory of that shape are left alone, and so is
        // what they name.
        let victim = tempfile::NamedTempFile::new().unwrap();
        let victim_dir = tempfile::tempdir().unwrap();
        let victim_in_dir = victim_dir.path().join(".out.bin.silt-tmp.4194305.0");
        std::fs::write(&victim_in_dir, b"x").unwrap();
        let link = beside(format!("{place}.4194305.2.0"));
        std::os::unix::fs::symlink(victim.path(), &link).unwrap();
        let dir_link = beside(format!("{place}.4194305.3.0"));
        std::os::unix::fs::symlink(victim_dir.path(), &dir_link).unwrap();
        let a_dir = beside(format!("{place}.4194305.4.0"));
        std::fs::create_dir(&a_dir).unwrap();
        // Another user's, when this test may make one: in a directory
        // others write, its live writer may not show as running here.
        // SAFETY: no preconditions.
        let root = unsafe { libc::geteuid() } == 0;
        let another_users = beside(format!("{place}.4194305.5.0"));
        if root {
            std::fs::write(&another_users, b"x").unwrap();
            std::os::unix::fs::chown(&another_users, Some(4242), Some(4242)).unwrap();
        }

        assert_eq!(
            remove_stale_temp_files_beside(dir.path(), OsStr::new("out.bin")).unwrap(),
            2
        );
        assert!(!dead.exists() && !predecessor.exists());
        for kept in [&target, &ours, &elsewhere, &other, &padded, &a_dir] {
            assert!(kept.exists(), "{}", kept.display());
        }
        assert!(link.symlink_metadata().is_ok() && victim.path().exists());
        assert!(dir_link.symlink_metadata().is_ok() && victim_in_dir.exists());
        assert_eq!(another_users.exists(), root);

        let long_ago = std::time::SystemTime::now() - ABANDONED_AFTER - Duration::from_secs(60);
        std::fs::File::options()
            .write(true)
            .open(&elsewhere)
            .unwrap()
            .set_modified(long_ago)
            .unwrap();
        assert_eq!(
            remove_stale_temp_files_beside(dir.path(), OsStr::new("out.bin")).unwrap(),
            1
        );
        assert!(!elsewhere.exists() && ours.exists() && other.exists());
        // A directory that does not exist holds nothing to remove.
        assert_eq!(
            remove_stale_temp_files_beside(&dir.path().join("missing"), OsStr::new("out.bin"))
                .unwrap(),
            0
        );
    }

    #[test]
    fn the_writer_is_read_from_names_of_the_current_shape_only() {
        assert_eq!(
            writer_of(".w.bin.silt-tmp.12.345.678.9"),
            Some("12.345.678")
        );
        assert_eq!(writer_of(".a.silt-tmp.b.silt-tmp.1.2.3.4"), Some("1.2.3"));
        for other in [
            ".w.bin.silt-tmp.345.9",
            ".w.bin.silt-tmp.12.345.678.9.new",
            ".w.bin.silt-tmp.12.x.678.9",
            ".w.bin.silt-tmp..345.678.9",
            "w.bin",
        ] {
            assert_eq!(writer_of(other), None, "{other}");
        }
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
        // A download into a staged copy, killed mid-way.
        let dead_download = staging.join(".4194305-1767225600000000000.silt-tmp.4194305.0");
        for path in [&dead, &ours, &other, &dead_download] {
            std::fs::write(path, b"x").unwrap();
        }
        let local = Beneath::open(dir.path()).unwrap();
        assert_eq!(
            remove_stale_staging(&local, Path::new(".silt/staging")).unwrap(),
            2
        );
        assert!(!dead.exists() && ours.exists() && other.exists());
        assert!(!dead_download.exists());
    }
}
