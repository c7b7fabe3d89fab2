//! Commands that may leave temporary download files in the working copy,
//! marked in the host's state (`transfers/`, beside the working copy, out
//! of the extension's reach), so that a pull of everything walks the
//! working copy for leftovers only when there can be some.
//!
//! Every command that opens the datastore creates a marker named as the
//! temporary files it may leave are ([`temp_name`]: where its pids mean
//! something, its pid, its nonce), holds an `flock` on it for as long as
//! it runs, and removes it once every download it started has ended:
//! renamed into place or removed. A kill skips the removal, and the kernel
//! drops the lock with the process. A marker of this pid namespace that
//! nobody holds therefore says: its process is gone (even if its pid was
//! given to another process since), and its temporary files may be left
//! in the working copy; the walk removes every one of them, however young.
//! A marker from elsewhere (another pid namespace or machine, where a lock
//! on a shared file system may be local to one machine) only makes the
//! walk due once it is an hour old; its files are judged by their own age.
//!
//! A pull of everything walks the working copy when such a marker is
//! there, or when the last walk is missing or older than [`BACKSTOP`] (for
//! what no marker tells: a marker lost in a machine's crash, leftovers of
//! a silt from before the markers). Otherwise it walks nothing: on a
//! hydrated working copy the walk costs 0.5–0.9 µs a file, which at
//! 262,144 files is 7–16 times the no-op sync itself.

use std::collections::HashSet;
use std::ffi::{OsStr, OsString};
use std::fs::{File, TryLockError};
use std::io;
use std::os::unix::fs::MetadataExt as _;
use std::time::{Duration, SystemTime};

use crate::beneath::{Beneath, EntryKind};
use crate::process::{TempOwner, temp_name, temp_owner};

use super::leftovers::{is_gone, untouched_for, untouched_since, writer_of};

/// The markers' directory in the host's state.
const TRANSFERS_DIR: &str = "transfers";

/// The file whose modification time says when the working copy was last
/// walked (a name no marker has: markers start with a dot).
const WALKED_STAMP: &str = "swept";

/// What a marker is called between its creation and its lock: no marker
/// name ends so, so a walk never takes it for an abandoned one.
const UNLOCKED_SUFFIX: &str = ".new";

/// How old an unlocked `.new` file must be before a walk removes it (its
/// creator was killed in the microseconds between creating and locking it,
/// or renaming it): far longer than those steps ever take.
const UNLOCKED_GRACE: Duration = Duration::from_secs(60);

/// The longest a pull of everything goes without walking the working copy.
pub(crate) const BACKSTOP: Duration = Duration::from_secs(24 * 3600);

/// This command's marker, locked while the command runs. Removed by
/// [`TransferMarker::release`]; dropped without it (a panic, work left
/// running), it stays, locked until the process exits.
#[derive(Debug)]
#[must_use = "a marker dropped without `release` stays until the next walk"]
pub(crate) struct TransferMarker {
    dir: Beneath,
    name: OsString,
    lock: Option<File>,
}

impl TransferMarker {
    /// Marks this process's command as one that may download into the
    /// working copy.
    ///
    /// # Errors
    /// When the host's state cannot be written, or the marker locked.
    pub(crate) fn create(host_state: &Beneath) -> io::Result<Self> {
        let dir = host_state.create_dir_all(TRANSFERS_DIR)?;
        // A fresh name each call, never one derived from the pid alone.
        let name = temp_name(OsStr::new("command"));
        let mut unlocked = name.clone();
        unlocked.push(UNLOCKED_SUFFIX);
        // Locked before it takes its name: a walk never sees it unlocked.
        let file = dir.create_new(&unlocked)?;
        let locked = file.try_lock().map_err(|err| match err {
            TryLockError::Error(err) => err,
            TryLockError::WouldBlock => io::ErrorKind::WouldBlock.into(),
        });
        if let Err(err) = locked.and_then(|()| dir.rename(&unlocked, &name)) {
            let _ = dir.remove_file(&unlocked);
            return Err(err);
        }
        Ok(Self {
            dir,
            name,
            lock: Some(file),
        })
    }

    /// The command's downloads have all ended: no temporary file of it is
    /// left.
    pub(crate) fn release(mut self) {
        match self.dir.remove_file(&self.name) {
            Ok(()) => drop(self.lock.take()),
            Err(err) if err.kind() == io::ErrorKind::NotFound => drop(self.lock.take()),
            // Kept locked (see `Drop`): unlocked, the marker of a process
            // that still runs would read as abandoned.
            Err(err) => tracing::debug!("cannot remove the transfer marker: {err}"),
        }
    }
}

impl Drop for TransferMarker {
    fn drop(&mut self) {
        // Not released: the command's temporary files may outlive it. The
        // lock stays until the process exits, so no walk takes the marker
        // for a dead process's while this one may still write them.
        if let Some(file) = self.lock.take() {
            std::mem::forget(file);
        }
    }
}

/// Whether anybody holds the lock on a marker opened as `file`.
#[derive(Debug, PartialEq, Eq)]
enum Holder {
    /// Its command runs.
    Running,
    /// Nobody, and the marker is still there: its process is gone.
    Gone,
    /// Nobody, because its command released it after the marker was
    /// opened here (released markers are removed before they are
    /// unlocked): nothing to do.
    Released,
    /// The file system has no `flock`.
    Unknown,
}

fn holder(file: &File) -> io::Result<Holder> {
    match file.try_lock() {
        Ok(()) if file.metadata()?.nlink() == 0 => Ok(Holder::Released),
        Ok(()) => Ok(Holder::Gone),
        Err(TryLockError::WouldBlock) => Ok(Holder::Running),
        Err(TryLockError::Error(_)) => Ok(Holder::Unknown),
    }
}

/// A walk of the working copy that is due; [`LeftoverWalk::done`] records
/// it.
#[derive(Debug)]
pub(crate) struct LeftoverWalk {
    dir: Beneath,
    /// The markers taken for abandoned, read before the walk.
    abandoned: Vec<OsString>,
    /// Of those, the processes (`<where>.<pid>.<nonce>`) known to be gone:
    /// markers of this pid namespace that nobody holds.
    pub(crate) gone: HashSet<String>,
}

impl LeftoverWalk {
    /// `Some` when the working copy must be walked for leftovers: a
    /// marker's process is gone, or the last walk is missing or older
    /// than [`BACKSTOP`]. Removes what a command killed while making its
    /// marker left.
    ///
    /// # Errors
    /// When the host's state cannot be read.
    pub(crate) fn due(host_state: &Beneath) -> io::Result<Option<Self>> {
        let dir = host_state.create_dir_all(TRANSFERS_DIR)?;
        let mut abandoned = Vec::new();
        let mut gone = HashSet::new();
        for (name, kind) in dir.entries()? {
            let Some(text) = name.to_str().filter(|_| kind == EntryKind::File) else {
                continue;
            };
            if text.ends_with(UNLOCKED_SUFFIX) {
                remove_if_stranded(&dir, &name);
                continue;
            }
            let Some(owner) = temp_owner(text) else {
                continue;
            };
            let file = match dir.open_read(&name) {
                Ok(file) => file,
                // Released meanwhile.
                Err(err) if err.kind() == io::ErrorKind::NotFound => continue,
                Err(err) => return Err(err),
            };
            let untouched = || untouched_for(&dir, &name);
            match (holder(&file)?, owner) {
                (Holder::Running | Holder::Released, _) => {}
                (Holder::Gone, TempOwner::Process(_) | TempOwner::Predecessor) => {
                    gone.extend(writer_of(text).map(str::to_owned));
                    abandoned.push(name);
                }
                // A lock from another machine may not be seen here, and
                // without `flock` nothing is known: the marker's age
                // alone makes the walk due, and the walk judges each file
                // by its own.
                (Holder::Gone | Holder::Unknown, _) => {
                    if is_gone(owner, untouched) {
                        abandoned.push(name);
                    }
                }
            }
        }
        let backstop_due = last_walk_age(&dir).is_none_or(|age| age >= BACKSTOP);
        Ok((backstop_due || !abandoned.is_empty()).then_some(Self {
            dir,
            abandoned,
            gone,
        }))
    }

    /// The walk ended without error (every temporary file of the gone
    /// processes removed): their markers go, and the time is recorded.
    /// Markers made since stay.
    ///
    /// # Errors
    /// When the host's state cannot be written.
    pub(crate) fn done(self) -> io::Result<()> {
        for name in &self.abandoned {
            if let Err(err) = self.dir.remove_file(name)
                && err.kind() != io::ErrorKind::NotFound
            {
                return Err(err);
            }
        }
        self.dir.write_atomic(WALKED_STAMP, b"")
    }
}

/// Removes `name`, a marker that never took its name, once it is older
/// than [`UNLOCKED_GRACE`] and nobody holds it (best effort).
fn remove_if_stranded(dir: &Beneath, name: &OsStr) {
    // Opened once: its age and its lock are the same file's.
    let Ok(file) = dir.open_read(name) else {
        return;
    };
    let stranded = untouched_since(&file) >= UNLOCKED_GRACE
        && holder(&file).is_ok_and(|holder| holder == Holder::Gone);
    if stranded && let Err(err) = dir.remove_file(name) {
        tracing::debug!("cannot remove a stranded transfer marker: {err}");
    }
}

/// How long since the working copy was last walked; `None` when never, or
/// when the stamp is in the future (the clock was set back: walk, and
/// stamp again).
fn last_walk_age(dir: &Beneath) -> Option<Duration> {
    let modified = dir
        .open_read(WALKED_STAMP)
        .and_then(|file| file.metadata())
        .and_then(|meta| meta.modified())
        .ok()?;
    SystemTime::now().duration_since(modified).ok()
}

#[cfg(test)]
mod tests {
    use super::super::leftovers::ABANDONED_AFTER;
    use super::*;

    fn host_state() -> (tempfile::TempDir, Beneath) {
        let dir = tempfile::tempdir().unwrap();
        let state = Beneath::open(dir.path()).unwrap();
        (dir, state)
    }

    fn transfers(state: &Beneath) -> Beneath {
        state.create_dir_all(TRANSFERS_DIR).unwrap()
    }

    fn markers(state: &Beneath) -> Vec<String> {
        let mut names: Vec<String> = transfers(state)
            .entries()
            .unwrap()
            .into_iter()
            .map(|(name, _)| name.into_string().unwrap())
            .filter(|name| name != WALKED_STAMP)
            .collect();
        names.sort();
        names
    }

    /// Plants `name` in `transfers/`, last written `age` ago; returns it
    /// open (to lock it, as its command would).
    fn plant(state: &Beneath, name: &str, age: Duration) -> File {
        let file = transfers(state).open_or_create(name).unwrap();
        file.set_modified(SystemTime::now() - age).unwrap();
        file
    }

    fn exists(state: &Beneath, name: &str) -> bool {
        transfers(state).kind(name).unwrap().is_some()
    }

    fn set_stamp(state: &Beneath, to: SystemTime) {
        transfers(state)
            .open_or_create(WALKED_STAMP)
            .unwrap()
            .set_modified(to)
            .unwrap();
    }

    /// Where this process's pids mean something, as its names say.
    fn this_place(state: &Beneath) -> String {
        let marker = TransferMarker::create(state).unwrap();
        let writer = writer_of(marker.name.to_str().unwrap()).unwrap().to_owned();
        marker.release();
        writer.split('.').next().unwrap().to_owned()
    }

    #[test]
    fn the_first_pull_walks_and_a_walk_is_not_due_again_until_the_backstop() {
        let (_dir, state) = host_state();
        let walk = LeftoverWalk::due(&state).unwrap().expect("never walked");
        assert!(walk.abandoned.is_empty() && walk.gone.is_empty());
        walk.done().unwrap();
        assert!(LeftoverWalk::due(&state).unwrap().is_none());
        set_stamp(
            &state,
            SystemTime::now() - BACKSTOP + Duration::from_secs(60),
        );
        assert!(LeftoverWalk::due(&state).unwrap().is_none());
        set_stamp(
            &state,
            SystemTime::now() - BACKSTOP - Duration::from_secs(60),
        );
        let walk = LeftoverWalk::due(&state).unwrap().expect("the backstop");
        walk.done().unwrap();
        assert!(LeftoverWalk::due(&state).unwrap().is_none());
        // A stamp from the future (the clock was set back) is not trusted.
        set_stamp(&state, SystemTime::now() + Duration::from_secs(3600));
        assert!(LeftoverWalk::due(&state).unwrap().is_some());
    }

    #[test]
    #[cfg(target_os = "linux")]
    fn a_running_command_makes_no_walk_due_and_a_killed_one_does() {
        let (_dir, state) = host_state();
        LeftoverWalk::due(&state).unwrap().unwrap().done().unwrap();
        let place = this_place(&state);

        // Running (locked): nothing due, however old its marker; released,
        // it is gone.
        let running = TransferMarker::create(&state).unwrap();
        let other = TransferMarker::create(&state).unwrap();
        assert_eq!(markers(&state).len(), 2, "one marker per command");
        for name in markers(&state) {
            plant(&state, &name, ABANDONED_AFTER + Duration::from_secs(60));
        }
        assert!(LeftoverWalk::due(&state).unwrap().is_none());
        running.release();
        assert_eq!(markers(&state).len(), 1);

        // Killed: a marker of this place nobody holds (its writer is gone
        // for certain), and one of the older shape (no writer to name).
        let killed = format!(".command.silt-tmp.{place}.4194305.9.0");
        let older_shape = ".command.silt-tmp.4194305.0";
        plant(&state, &killed, Duration::ZERO);
        plant(&state, older_shape, Duration::ZERO);
        let walk = LeftoverWalk::due(&state)
            .unwrap()
            .expect("a killed command");
        assert_eq!(walk.abandoned.len(), 2);
        assert_eq!(walk.gone, HashSet::from([format!("{place}.4194305.9")]));
        // A command that starts after the check is not the walk's.
        let later = TransferMarker::create(&state).unwrap();
        walk.done().unwrap();
        assert_eq!(markers(&state).len(), 2, "{:?}", markers(&state));
        assert!(!exists(&state, &killed) && !exists(&state, older_shape));
        assert!(LeftoverWalk::due(&state).unwrap().is_none());
        other.release();
        later.release();
        assert!(markers(&state).is_empty());

        // Dropped without release (a command that left work running):
        // kept, and still locked, so not due while this process runs.
        drop(TransferMarker::create(&state).unwrap());
        assert_eq!(markers(&state).len(), 1);
        assert!(LeftoverWalk::due(&state).unwrap().is_none());
        // Held, a marker is not abandoned even when its name says its pid
        // is dead: the lock alone decides.
        let name = format!(".command.silt-tmp.{place}.4194305.9.1");
        let held = plant(&state, &name, Duration::ZERO);
        held.lock().unwrap();
        assert!(LeftoverWalk::due(&state).unwrap().is_none());
        drop(held);
        let walk = LeftoverWalk::due(&state).unwrap().expect("released");
        walk.done().unwrap();
        assert!(!exists(&state, &name));
        // A marker not locked yet has no marker's name.
        assert!(temp_owner(&format!("{}{UNLOCKED_SUFFIX}", markers(&state)[0])).is_none());
    }

    #[test]
    fn a_marker_released_while_a_walk_looks_at_it_is_not_abandoned() {
        let (_dir, state) = host_state();
        let marker = TransferMarker::create(&state).unwrap();
        let name = marker.name.clone();
        let opened = transfers(&state).open_read(&name).unwrap();
        assert_eq!(holder(&opened).unwrap(), Holder::Running);
        marker.release();
        assert_eq!(holder(&opened).unwrap(), Holder::Released);
    }

    #[test]
    fn a_marker_from_elsewhere_makes_the_walk_due_once_old_and_names_no_writer_gone() {
        let (_dir, state) = host_state();
        LeftoverWalk::due(&state).unwrap().unwrap().done().unwrap();
        // Place 1 is no place this process is in: another pid namespace's
        // or machine's, whose lock may not be seen from here.
        let elsewhere = ".command.silt-tmp.1.4194305.7.0";
        plant(&state, elsewhere, Duration::ZERO);
        assert!(
            LeftoverWalk::due(&state).unwrap().is_none(),
            "may still run"
        );
        plant(&state, elsewhere, ABANDONED_AFTER + Duration::from_secs(60));
        let walk = LeftoverWalk::due(&state).unwrap().expect("abandoned");
        assert!(walk.gone.is_empty(), "{:?}", walk.gone);
        walk.done().unwrap();
        assert!(!exists(&state, elsewhere));
        // Other names in the directory are not markers.
        plant(&state, "notes", Duration::ZERO);
        assert!(LeftoverWalk::due(&state).unwrap().is_none());
    }

    #[test]
    fn a_marker_stranded_before_its_lock_is_removed_once_old() {
        let (_dir, state) = host_state();
        LeftoverWalk::due(&state).unwrap().unwrap().done().unwrap();
        let fresh = ".command.silt-tmp.1.2.3.4.new";
        let stranded = ".command.silt-tmp.1.2.3.5.new";
        let held = ".command.silt-tmp.1.2.3.6.new";
        plant(&state, fresh, Duration::ZERO);
        plant(&state, stranded, UNLOCKED_GRACE * 2);
        let holding = plant(&state, held, UNLOCKED_GRACE * 2);
        holding.lock().unwrap();
        assert!(LeftoverWalk::due(&state).unwrap().is_none());
        assert!(exists(&state, fresh) && exists(&state, held));
        assert!(!exists(&state, stranded));
    }
}
