//! Commands that may leave temporary download files in the working copy,
//! marked in the host's state (`transfers/`, beside the working copy, out
//! of the extension's reach), so that a pull of everything walks the
//! working copy for leftovers only when there can be some.
//!
//! Every command that opens the datastore creates a marker named as the
//! temporary files it may leave are ([`temp_name`]: where its pids mean
//! something, its pid, its nonce), and removes it once every download it
//! started has ended: renamed into place or removed. A kill skips that.
//! A marker whose process is gone therefore says: that process's
//! temporary files may be left in the working copy. A pull of everything
//! walks the working copy when such a marker is there, or when the last
//! walk is older than [`BACKSTOP`] (for what no marker tells: a marker
//! lost in a machine's crash, a dead process's pid taken by a live one,
//! leftovers of a silt from before the markers). Otherwise it walks
//! nothing: on a hydrated working copy the walk costs 0.3–0.4 µs a file,
//! which at 262,144 files is twenty times the no-op sync itself.

use std::ffi::{OsStr, OsString};
use std::io;
use std::time::{Duration, SystemTime};

use crate::beneath::{Beneath, EntryKind, temp_name, temp_owner};

use super::leftovers::{is_gone, untouched_for};

/// The markers' directory in the host's state.
const TRANSFERS_DIR: &str = "transfers";

/// The file whose modification time says when the working copy was last
/// walked (a name no marker has: markers start with a dot).
const SWEPT_STAMP: &str = "swept";

/// The longest a pull of everything goes without walking the working copy.
pub const BACKSTOP: Duration = Duration::from_secs(24 * 3600);

/// This command's marker: kept when dropped (as when killed), removed by
/// [`TransferMarker::release`].
#[derive(Debug)]
pub struct TransferMarker {
    dir: Beneath,
    name: OsString,
}

impl TransferMarker {
    /// Marks this process's command as one that may download into the
    /// working copy.
    ///
    /// # Errors
    /// When the host's state cannot be written.
    pub fn create(host_state: &Beneath) -> io::Result<Self> {
        let dir = host_state.create_dir_all(TRANSFERS_DIR)?;
        // A fresh name each call: the resident runs commands side by side
        // in one process, each with its own marker.
        let name = temp_name(OsStr::new("command"));
        dir.create_new(&name)?;
        Ok(Self { dir, name })
    }

    /// The command's downloads have all ended: no temporary file of it is
    /// left.
    pub fn release(self) {
        if let Err(err) = self.dir.remove_file(&self.name) {
            // Removed by a sweep that took it for abandoned (a marker from
            // another pid namespace, see `is_gone`): nothing lost.
            tracing::debug!("cannot remove the transfer marker: {err}");
        }
    }
}

/// A walk of the working copy that is due; [`Sweep::done`] records it.
#[derive(Debug)]
pub struct Sweep {
    dir: Beneath,
    /// The markers of processes that are gone, read before the walk.
    stale: Vec<OsString>,
}

impl Sweep {
    /// `Some` when the working copy must be walked for leftovers: a
    /// marker's process is gone, or the last walk is missing or older
    /// than [`BACKSTOP`].
    ///
    /// # Errors
    /// When the host's state cannot be read.
    pub fn due(host_state: &Beneath) -> io::Result<Option<Self>> {
        let dir = host_state.create_dir_all(TRANSFERS_DIR)?;
        let mut stale = Vec::new();
        for (name, kind) in dir.entries()? {
            let owner = name.to_str().and_then(temp_owner);
            if kind == EntryKind::File
                && owner.is_some_and(|owner| is_gone(owner, || untouched_for(&dir, &name)))
            {
                stale.push(name);
            }
        }
        let backstop_due = last_walk_age(&dir).is_none_or(|age| age >= BACKSTOP);
        Ok((backstop_due || !stale.is_empty()).then_some(Self { dir, stale }))
    }

    /// The walk ended without error: the markers it covered are removed
    /// and the time is recorded. Markers made since stay.
    ///
    /// # Errors
    /// When the host's state cannot be written.
    pub fn done(self) -> io::Result<()> {
        for name in &self.stale {
            match self.dir.remove_file(name) {
                Err(err) if err.kind() != io::ErrorKind::NotFound => return Err(err),
                _ => {}
            }
        }
        self.dir.write_atomic(SWEPT_STAMP, b"")
    }
}

/// How long since the working copy was last walked; `None` when never, or
/// when the stamp is in the future (the clock was set back: walk, and
/// stamp again).
fn last_walk_age(dir: &Beneath) -> Option<Duration> {
    let modified = dir
        .open_read(SWEPT_STAMP)
        .and_then(|file| file.metadata())
        .and_then(|meta| meta.modified())
        .ok()?;
    SystemTime::now().duration_since(modified).ok()
}

#[cfg(test)]
mod tests {
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
            .filter(|name| name != SWEPT_STAMP)
            .collect();
        names.sort();
        names
    }

    fn age_stamp(state: &Beneath, by: Duration) {
        let stamp = state.join(TRANSFERS_DIR).join(SWEPT_STAMP);
        std::fs::File::options()
            .write(true)
            .open(stamp)
            .unwrap()
            .set_modified(SystemTime::now() - by)
            .unwrap();
    }

    #[test]
    fn the_first_pull_walks_and_a_walk_is_not_due_again_until_the_backstop() {
        let (_dir, state) = host_state();
        let sweep = Sweep::due(&state).unwrap().expect("never walked");
        assert!(sweep.stale.is_empty());
        sweep.done().unwrap();
        assert!(Sweep::due(&state).unwrap().is_none());
        age_stamp(&state, BACKSTOP - Duration::from_secs(60));
        assert!(Sweep::due(&state).unwrap().is_none());
        age_stamp(&state, BACKSTOP + Duration::from_secs(60));
        Sweep::due(&state)
            .unwrap()
            .expect("the backstop")
            .done()
            .unwrap();
        assert!(Sweep::due(&state).unwrap().is_none());
        // A stamp from the future (the clock was set back) is not trusted.
        age_stamp(&state, Duration::ZERO);
        let stamp = state.join(TRANSFERS_DIR).join(SWEPT_STAMP);
        std::fs::File::options()
            .write(true)
            .open(stamp)
            .unwrap()
            .set_modified(SystemTime::now() + Duration::from_secs(3600))
            .unwrap();
        assert!(Sweep::due(&state).unwrap().is_some());
    }

    #[test]
    #[cfg(target_os = "linux")]
    fn a_live_command_makes_no_walk_due_and_a_killed_one_does() {
        let (_dir, state) = host_state();
        Sweep::due(&state).unwrap().unwrap().done().unwrap();

        // Live (this process's): nothing due; released, it is gone.
        let live = TransferMarker::create(&state).unwrap();
        let other = TransferMarker::create(&state).unwrap();
        assert_eq!(markers(&state).len(), 2, "one marker per command");
        assert!(Sweep::due(&state).unwrap().is_none());
        live.release();
        assert_eq!(markers(&state).len(), 1);

        // Killed: a marker of a process that is gone (a pid above Linux's
        // maximum never runs; the older shape of name counts too).
        let transfers = state.join(TRANSFERS_DIR);
        let dead = ".command.silt-tmp.4194305.0";
        std::fs::write(transfers.join(dead), b"").unwrap();
        let sweep = Sweep::due(&state).unwrap().expect("a killed command");
        assert_eq!(sweep.stale, [OsString::from(dead)]);
        // A command that starts after the check is not the sweep's.
        let later = TransferMarker::create(&state).unwrap();
        sweep.done().unwrap();
        assert_eq!(markers(&state).len(), 2, "{:?}", markers(&state));
        assert!(!transfers.join(dead).exists());
        assert!(Sweep::due(&state).unwrap().is_none());
        other.release();
        later.release();
        assert!(markers(&state).is_empty());

        // Dropped without release (a command that left work running):
        // kept, and this process's, so not due yet.
        drop(TransferMarker::create(&state).unwrap());
        assert_eq!(markers(&state).len(), 1);
        assert!(Sweep::due(&state).unwrap().is_none());
    }

    #[test]
    fn a_marker_whose_process_cannot_be_checked_is_due_once_untouched_for_long() {
        let (_dir, state) = host_state();
        Sweep::due(&state).unwrap().unwrap().done().unwrap();
        let transfers = state.join(TRANSFERS_DIR);
        // Place 1 is no place this process is in: another pid namespace's.
        let elsewhere = transfers.join(".command.silt-tmp.1.4194305.7.0");
        std::fs::write(&elsewhere, b"").unwrap();
        assert!(Sweep::due(&state).unwrap().is_none(), "may still run");
        std::fs::File::options()
            .write(true)
            .open(&elsewhere)
            .unwrap()
            .set_modified(SystemTime::now() - super::super::leftovers::ABANDONED_AFTER)
            .unwrap();
        Sweep::due(&state)
            .unwrap()
            .expect("abandoned")
            .done()
            .unwrap();
        assert!(!elsewhere.exists());
        // Other names in the directory are not markers.
        std::fs::write(transfers.join("notes"), b"").unwrap();
        assert!(Sweep::due(&state).unwrap().is_none());
    }
}
