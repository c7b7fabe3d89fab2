//! The resident's side of the socket: one resident a socket, and the process
//! state switched to each command's and back.

use std::os::fd::{AsFd as _, OwnedFd};
use std::os::unix::fs::{MetadataExt as _, OpenOptionsExt as _};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

use rustix::fs::{FlockOperation, Mode, OFlags};

use crate::error::WireError;
use crate::request::Request;

/// The resident's socket, bound and held.
///
/// At most one resident serves a socket: binding takes an exclusive lock
/// on `<socket>.lock` first, which the kernel releases when the process
/// ends however it ends, so a resident killed with `kill -9` leaves a
/// socket file the next one removes, never a second resident.
pub struct Listener {
    listener: UnixListener,
    path: PathBuf,
    /// The bound socket's inode: the path still names our socket while it
    /// matches.
    inode: (u64, u64),
    /// Held for the resident's life.
    _lock: std::fs::File,
}

impl Listener {
    /// Binds `socket` (its directory must pass [`crate::socket_dir::check`]),
    /// or `None` when another resident holds it.
    ///
    /// # Errors
    /// When the directory is not safe, or the lock or socket cannot be made.
    pub fn bind(socket: &Path) -> Result<Option<Self>, WireError> {
        let dir = socket
            .parent()
            .ok_or(WireError::Malformed("a socket path without a directory"))?;
        crate::socket_dir::check(dir)?;
        let mut lock_path = socket.as_os_str().to_owned();
        lock_path.push(".lock");
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&lock_path)?;
        match rustix::fs::flock(&lock, FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => {}
            Err(rustix::io::Errno::WOULDBLOCK) => return Ok(None),
            Err(err) => return Err(std::io::Error::from(err).into()),
        }
        // Ours now: whatever is at the path is a dead resident's socket.
        match std::fs::remove_file(socket) {
            Ok(()) => {}
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
            Err(err) => return Err(err.into()),
        }
        let listener = UnixListener::bind(socket)?;
        let meta = std::fs::symlink_metadata(socket)?;
        Ok(Some(Self {
            listener,
            path: socket.to_owned(),
            inode: (meta.dev(), meta.ino()),
            _lock: lock,
        }))
    }

    /// The next connection, or `None` when none came within `timeout`.
    ///
    /// # Errors
    /// When the socket fails.
    pub fn accept_within(&self, timeout: Duration) -> Result<Option<UnixStream>, WireError> {
        let timeout = rustix::event::Timespec {
            tv_sec: i64::try_from(timeout.as_secs()).unwrap_or(i64::MAX),
            tv_nsec: i64::from(timeout.subsec_nanos()),
        };
        let mut fds = [rustix::event::PollFd::new(
            &self.listener,
            rustix::event::PollFlags::IN,
        )];
        match rustix::event::poll(&mut fds, Some(&timeout)) {
            Ok(0) => Ok(None),
            Ok(_) => Ok(Some(self.listener.accept()?.0)),
            Err(rustix::io::Errno::INTR) => Ok(None),
            Err(err) => Err(std::io::Error::from(err).into()),
        }
    }

    /// True while the socket's path still names this listener's socket (not
    /// removed, not replaced): a resident whose path is gone can no longer
    /// be found and should exit.
    pub fn still_reachable(&self) -> bool {
        std::fs::symlink_metadata(&self.path)
            .is_ok_and(|meta| (meta.dev(), meta.ino()) == self.inode)
    }
}

impl Listener {
    /// Stops serving: removes the socket's path (when still ours), so no
    /// client finds it, then hands each connection that came before that to
    /// `refuse` (to answer "not run"), so no client that connected is left
    /// without an answer.
    pub fn close(self, mut refuse: impl FnMut(UnixStream)) {
        if self.still_reachable() {
            let _ = std::fs::remove_file(&self.path);
        }
        // A connect that looked the path up just before it went may still
        // be queueing: look twice.
        for _ in 0..2 {
            while let Ok(Some(stream)) = self.accept_within(Duration::ZERO) {
                refuse(stream);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        if self.still_reachable() {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// The resident's own working directory and descriptors 0–2, kept while a
/// command runs with the request's ([`ProcessState::enter`]).
///
/// Working directory and descriptors belong to the whole process, so a
/// resident runs one command at a time: nothing else of it reads them.
pub struct ProcessState {
    root: OwnedFd,
    stdio: [OwnedFd; 3],
}

impl ProcessState {
    /// Keeps the resident's own working directory (`/`) and descriptors 0–2.
    ///
    /// # Errors
    /// When they cannot be duplicated.
    pub fn save() -> std::io::Result<Self> {
        let root = rustix::fs::open(
            "/",
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        let dup = |fd: std::os::fd::BorrowedFd<'_>| rustix::io::fcntl_dupfd_cloexec(fd, 3);
        let stdio = [
            dup(rustix::stdio::stdin())?,
            dup(rustix::stdio::stdout())?,
            dup(rustix::stdio::stderr())?,
        ];
        Ok(Self { root, stdio })
    }

    /// Makes `request`'s working directory and descriptors 0–2 the
    /// process's, for the command it carries.
    ///
    /// # Errors
    /// When a `dup2` or `fchdir` fails; [`ProcessState::leave`] restores
    /// what was switched.
    pub fn enter(&self, request: &Request) -> std::io::Result<()> {
        let [stdin, stdout, stderr] = &request.stdio;
        rustix::stdio::dup2_stdin(stdin)?;
        rustix::stdio::dup2_stdout(stdout)?;
        rustix::stdio::dup2_stderr(stderr)?;
        rustix::process::fchdir(&request.cwd)?;
        Ok(())
    }

    /// Flushes what the command left in std's stdout buffer to its
    /// descriptor, then gives the process back its own directory and
    /// descriptors. The request's copies of 0–2 close when it is dropped,
    /// so whoever reads the command's output sees its end.
    ///
    /// std's stdin buffer cannot be emptied from outside: a command run
    /// here reads stdin unbuffered, from descriptor 0 (`silt data put M F -`).
    pub fn leave(&self) {
        use std::io::Write as _;
        if std::io::stdout().flush().is_err() {
            // A closed pipe (`| head -c1`): std keeps what it could not
            // write and would send it ahead of the next command's output.
            // Written to /dev/null instead, the buffer is emptied.
            if let Ok(null) = std::fs::OpenOptions::new().write(true).open("/dev/null") {
                let _ = rustix::stdio::dup2_stdout(&null);
                let _ = std::io::stdout().flush();
            }
        }
        let [stdin, stdout, stderr] = &self.stdio;
        let _ = rustix::stdio::dup2_stdin(stdin.as_fd());
        let _ = rustix::stdio::dup2_stdout(stdout.as_fd());
        let _ = rustix::stdio::dup2_stderr(stderr.as_fd());
        let _ = rustix::process::fchdir(&self.root);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn private_dir() -> (tempfile::TempDir, PathBuf) {
        let parent = tempfile::tempdir().unwrap();
        let dir = parent.path().join("silt");
        crate::socket_dir::ensure(&dir).unwrap();
        (parent, dir)
    }

    #[test]
    fn one_resident_a_socket_and_a_dead_ones_socket_is_replaced() {
        let (_parent, dir) = private_dir();
        let socket = dir.join("resident-0.sock");
        // A socket left by a resident killed with kill -9: a file, no lock.
        drop(UnixListener::bind(&socket).unwrap());
        let first = Listener::bind(&socket).unwrap().expect("the lock is free");
        assert!(
            Listener::bind(&socket).unwrap().is_none(),
            "a second resident"
        );
        let _client = UnixStream::connect(&socket).unwrap();
        assert!(
            first
                .accept_within(Duration::from_secs(5))
                .unwrap()
                .is_some()
        );
        assert!(
            first
                .accept_within(Duration::from_millis(10))
                .unwrap()
                .is_none()
        );
        assert!(first.still_reachable());
        drop(first);
        assert!(!socket.exists(), "removed at exit");
        assert!(
            Listener::bind(&socket).unwrap().is_some(),
            "the lock went with it"
        );
    }

    #[test]
    fn a_replaced_socket_is_not_reachable_and_is_left_alone() {
        let (_parent, dir) = private_dir();
        let socket = dir.join("resident-0.sock");
        let first = Listener::bind(&socket).unwrap().unwrap();
        std::fs::remove_file(&socket).unwrap();
        std::fs::write(&socket, b"someone else's").unwrap();
        assert!(!first.still_reachable());
        drop(first);
        assert_eq!(std::fs::read(&socket).unwrap(), b"someone else's");
    }
}
