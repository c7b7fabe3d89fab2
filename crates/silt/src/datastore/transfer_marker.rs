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
//! drops the lock with the process. A marker nobody holds therefore says:
//! its process is gone (whatever pid namespace it ran in, and even if its
//! pid was given to another process since), and its temporary files may
//! be left in the working copy.
//!
//! A pull of everything walks the working copy when such a marker is
//! there, removing every temporary file of those processes whatever their
//! age, or when the last walk is missing or older than [`BACKSTOP`] (for
//! what no marker tells: a marker lost in a machine's crash, leftovers of
//! a silt from before the markers). Otherwise it walks nothing: on a
//! hydrated working copy the walk costs 0.5–1 µs a file, which at 262,144
//! files is ten times the no-op sync itself.

use std::collections::HashSet;
use std::ffi::{OsStr, OsString};
use std::fs::{File, TryLockError};
use std::io;
use std::time::{Duration, SystemTime};

use crate::beneath::{Beneath, EntryKind, temp_name, temp_owner};

use super::leftovers::{is_gone, untouched_for, writer_of};

/// The markers' directory in the host's state.
const TRANSFERS_DIR: &str = "transfers";

/// The file whose modification time says when the working copy was last
/// walked (a name no marker has: markers start with a dot).
const WALKED_STAMP: &str = "swept";

/// What a marker is called between its creation and its lock: no marker
/// name ends so, so a walk never takes it for an abandoned one.
const UNLOCKED_SUFFIX: &str = ".new";

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
        // A fresh name each call: one process may run several commands
        // (the resident, one after another).
        let name = temp_name(OsStr::new("command"));
        let mut unlocked = name.clone();
        unlocked.push(UNLOCKED_SUFFIX);
        // Locked before it takes its name: a walk never sees it unlocked.
        let file = dir.create_new(&unlocked)?;
        if let Err(err) = file.try_lock() {
            let _ = dir.remove_file(&unlocked);
            return Err(match err {
                TryLockError::Error(err) => err,
                TryLockError::WouldBlock => io::ErrorKind::WouldBlock.into(),
            });
        }
        dir.rename(&unlocked, &name)?;
        Ok(Self {
            dir,
            name,
            lock: Some(file),
        })
    }

    /// The command's downloads have all ended: no temporary file of it is
    /// left.
    pub(crate) fn release(mut self) {
        if let Err(err) = self.dir.remove_file(&self.name) {
            tracing::debug!("cannot remove the transfer marker: {err}");
        }
        drop(self.lock.take());
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

/// A walk of the working copy that is due; [`LeftoverWalk::done`] records
/// it.
#[derive(Debug)]
pub(crate) struct LeftoverWalk {
    dir: Beneath,
    /// The markers nobody holds, read before the walk.
    abandoned: Vec<OsString>,
    /// Their processes (`<where>.<pid>.<nonce>`): gone for certain.
    pub(crate) gone: HashSet<String>,
}

impl LeftoverWalk {
    /// `Some` when the working copy must be walked for leftovers: a
    /// marker's process is gone, or the last walk is missing or older
    /// than [`BACKSTOP`].
    ///
    /// # Errors
    /// When the host's state cannot be read.
    pub(crate) fn due(host_state: &Beneath) -> io::Result<Option<Self>> {
        let dir = host_state.create_dir_all(TRANSFERS_DIR)?;
        let mut abandoned = Vec::new();
        for (name, kind) in dir.entries()? {
            let Some(text) = name.to_str().filter(|_| kind == EntryKind::File) else {
                continue;
            };
            let Some(owner) = temp_owner(text) else {
                continue;
            };
            let file = match dir.open_read(&name) {
                Ok(file) => file,
                // Released meanwhile.
                Err(err) if err.kind() == io::ErrorKind::NotFound => continue,
                Err(err) => return Err(err),
            };
            let gone = match file.try_lock() {
                Ok(()) => true,
                Err(TryLockError::WouldBlock) => false,
                // A file system without `flock`: the process, as far as
                // its pid tells.
                Err(TryLockError::Error(_)) => is_gone(owner, || untouched_for(&dir, &name)),
            };
            if gone {
                abandoned.push(name);
            }
        }
        let backstop_due = last_walk_age(&dir).is_none_or(|age| age >= BACKSTOP);
        let gone = abandoned
            .iter()
            .filter_map(|name| writer_of(name.to_str()?))
            .map(str::to_owned)
            .collect();
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

    fn markers(state: &Beneath) -> Vec<String> {
        let mut names: Vec<String> = state
            .dir(TRANSFERS_DIR)
            .unwrap()
            .entries()
            .unwrap()
            .into_iter()
            .map(|(name, _)| name.into_string().unwrap())
            .filter(|name| name != WALKED_STAMP)
            .collect();
        names.sort();
        names
    }

    fn set_stamp(state: &Beneath, to: SystemTime) {
        let stamp = state.join(TRANSFERS_DIR).join(WALKED_STAMP);
        std::fs::File::options()
            .write(true)
            .open(stamp)
            .unwrap()
            .set_modified(to)
            .unwrap();
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
    fn a_running_command_makes_no_walk_due_and_a_killed_one_does() {
        let (_dir, state) = host_state();
        LeftoverWalk::due(&state).unwrap().unwrap().done().unwrap();

        // Running (locked): nothing due, however old its marker; released,
        // it is gone.
        let running = TransferMarker::create(&state).unwrap();
        let other = TransferMarker::create(&state).unwrap();
        assert_eq!(markers(&state).len(), 2, "one marker per command");
        for name in markers(&state) {
            let path = state.join(TRANSFERS_DIR).join(name);
            let long_ago = SystemTime::now() - ABANDONED_AFTER - Duration::from_secs(60);
            File::options()
                .write(true)
                .open(path)
                .unwrap()
                .set_modified(long_ago)
                .unwrap();
        }
        assert!(LeftoverWalk::due(&state).unwrap().is_none());
        running.release();
        assert_eq!(markers(&state).len(), 1);

        // Killed: a marker nobody holds, of whatever shape or place.
        let transfers = state.join(TRANSFERS_DIR);
        let killed = ".command.silt-tmp.77.4194305.9.0";
        let older_shape = ".command.silt-tmp.4194305.0";
        std::fs::write(transfers.join(killed), b"").unwrap();
        std::fs::write(transfers.join(older_shape), b"").unwrap();
        let walk = LeftoverWalk::due(&state)
            .unwrap()
            .expect("a killed command");
        assert_eq!(walk.abandoned.len(), 2);
        assert_eq!(walk.gone, HashSet::from(["77.4194305.9".to_owned()]));
        // A command that starts after the check is not the walk's.
        let later = TransferMarker::create(&state).unwrap();
        walk.done().unwrap();
        assert_eq!(markers(&state).len(), 2, "{:?}", markers(&state));
        assert!(!transfers.join(killed).exists() && !transfers.join(older_shape).exists());
        assert!(LeftoverWalk::due(&state).unwrap().is_none());
        other.release();
        later.release();
        assert!(markers(&state).is_empty());

        // Dropped without release (a command that left work running):
        // kept, and still locked, so not due while this process runs.
        drop(TransferMarker::create(&state).unwrap());
        assert_eq!(markers(&state).len(), 1);
        assert!(LeftoverWalk::due(&state).unwrap().is_none());
        // Held, a marker is not abandoned even when its name and age say
        // so (another pid namespace's, untouched for hours; a dead pid):
        // the lock alone decides.
        for (name, age) in [
            (".command.silt-tmp.77.4194305.9.1", ABANDONED_AFTER * 3),
            (".command.silt-tmp.4194305.1", Duration::ZERO),
        ] {
            let path = state.join(TRANSFERS_DIR).join(name);
            let held = File::create(&path).unwrap();
            held.set_modified(SystemTime::now() - age).unwrap();
            held.lock().unwrap();
            assert!(LeftoverWalk::due(&state).unwrap().is_none(), "{name}");
            drop(held);
            let walk = LeftoverWalk::due(&state).unwrap().expect(name);
            walk.done().unwrap();
            assert!(!path.exists());
        }
        // A marker not locked yet has no marker's name.
        assert!(temp_owner(&format!("{}{UNLOCKED_SUFFIX}", markers(&state)[0])).is_none());
    }
}
