//! The client's termination signals while the resident runs its command.
//!
//! In a process of its own, Ctrl-C (SIGINT), SIGTERM or a closed terminal
//! (SIGHUP) reaches the command: one holding leases releases them and ends
//! with 128 + the signal; any other ends at once. Handed over, the command
//! runs in the resident, so the client blocks those signals before it sends
//! the request and, while it waits for the answer, reads them from a
//! `signalfd` beside the socket: the first is forwarded as a cancel (never
//! before the request, or in it). The resident answers 128 + the signal as
//! the command would have ended. The client ends by itself with 128 + the
//! signal at a second signal or after [`crate::client::CANCEL_GRACE`]
//! without an answer.
//!
//! A signal this process ignores (`nohup`, a script's background job) is
//! not forwarded: the command would not have seen it either.

use std::os::fd::{AsFd as _, FromRawFd as _, OwnedFd};
use std::os::unix::net::UnixStream;
use std::time::Instant;

use crate::request::{Answer, NoAnswer, next_answer, read_frame};

/// The signals forwarded, unless ignored.
const FORWARDED: [libc::c_int; 3] = [libc::SIGINT, libc::SIGTERM, libc::SIGHUP];

/// The forwarded signals, blocked in this process from [`Forwarding::block`]
/// until [`Forwarding::stop`], and read from a `signalfd` meanwhile.
pub(crate) struct Forwarding {
    previous_mask: libc::sigset_t,
    signals: OwnedFd,
    /// The signal read and forwarded, if one was.
    taken: Option<libc::c_int>,
}

impl Forwarding {
    /// Blocks the forwarded signals this process does not ignore: one that
    /// comes meanwhile waits, to be read by [`Forwarding::await_answer`].
    pub(crate) fn block() -> std::io::Result<Self> {
        let set = forwarded_set();
        // SAFETY: a zeroed sigset_t is a valid value to be overwritten.
        let mut previous_mask: libc::sigset_t = unsafe { std::mem::zeroed() };
        // SAFETY: both pointers are to valid sigset_t values.
        let blocked = unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, &mut previous_mask) };
        if blocked != 0 {
            return Err(std::io::Error::from_raw_os_error(blocked));
        }
        // SAFETY: `set` is initialised; -1 asks for a new descriptor.
        let fd = unsafe { libc::signalfd(-1, &set, libc::SFD_CLOEXEC | libc::SFD_NONBLOCK) };
        if fd < 0 {
            let err = std::io::Error::last_os_error();
            restore(&previous_mask);
            return Err(err);
        }
        // SAFETY: signalfd returned a new descriptor that nothing else owns.
        let signals = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(Self {
            previous_mask,
            signals,
            taken: None,
        })
    }

    /// Waits for the resident's answer to the request sent over `stream`,
    /// forwarding the first signal as a cancel; ends this process with
    /// 128 + that signal at a second one or when the grace has passed.
    pub(crate) fn await_answer(&mut self, stream: &UnixStream) -> Result<Answer, NoAnswer> {
        use rustix::event::{PollFd, PollFlags, Timespec, poll};
        let mut started = false;
        let mut deadline: Option<Instant> = None;
        loop {
            let timeout = deadline.map(|deadline| {
                let left = deadline.saturating_duration_since(Instant::now());
                Timespec {
                    tv_sec: i64::try_from(left.as_secs()).unwrap_or(i64::MAX),
                    tv_nsec: i64::from(left.subsec_nanos()),
                }
            });
            let mut fds = [
                PollFd::new(stream, PollFlags::IN),
                PollFd::new(&self.signals, PollFlags::IN),
            ];
            match poll(&mut fds, timeout.as_ref()) {
                Ok(_) | Err(rustix::io::Errno::INTR) => {}
                Err(err) => {
                    return Err(NoAnswer {
                        started,
                        error: std::io::Error::from(err).into(),
                    });
                }
            }
            let answer_ready = !fds[0].revents().is_empty();
            let signal_ready = !fds[1].revents().is_empty();
            if signal_ready && let Some(signal) = self.read_signal() {
                match self.taken {
                    None => {
                        self.taken = Some(signal);
                        let _ = crate::cancel(stream, u8::try_from(signal).unwrap_or(0));
                        deadline = Some(Instant::now() + crate::client::CANCEL_GRACE);
                    }
                    Some(first) => std::process::exit(128 + first),
                }
            }
            if answer_ready {
                if let Some(answer) = next_answer(&mut started, read_frame(stream))? {
                    return Ok(answer);
                }
            } else if let (Some(deadline), Some(first)) = (deadline, self.taken)
                && Instant::now() >= deadline
            {
                std::process::exit(128 + first);
            }
        }
    }

    /// The next signal from the `signalfd`, if one is there (it does not
    /// block: another thread may have taken the signal since `poll`).
    fn read_signal(&self) -> Option<libc::c_int> {
        // SAFETY: a zeroed signalfd_siginfo is a valid buffer.
        let mut info: libc::signalfd_siginfo = unsafe { std::mem::zeroed() };
        let size = std::mem::size_of::<libc::signalfd_siginfo>();
        // SAFETY: reads at most `size` bytes into `info`.
        let read = unsafe {
            libc::read(
                std::os::fd::AsRawFd::as_raw_fd(&self.signals.as_fd()),
                std::ptr::from_mut(&mut info).cast(),
                size,
            )
        };
        (usize::try_from(read).ok() == Some(size))
            .then(|| libc::c_int::try_from(info.ssi_signo).unwrap_or(0))
    }

    /// The command is not handed over: gives this thread its signal mask
    /// back before it runs the command itself. A signal that came meanwhile
    /// ends this process as it would have, whether it waited blocked or
    /// was read (and forwarded to a resident that did not run the command).
    pub(crate) fn stop(self) {
        self.end_forwarding();
        if let Some(signal) = self.taken {
            // SAFETY: kill with this process's own pid and a valid signal,
            // which now does what it does by default.
            unsafe {
                libc::kill(libc::getpid(), signal);
            }
        }
    }

    /// The command was handed over and its resident went away: gives this
    /// thread its signal mask back without raising a signal already
    /// forwarded, so the client reports the loss (exit 76) rather than
    /// ending as if the command had answered it.
    pub(crate) fn end_forwarding(&self) {
        restore(&self.previous_mask);
    }
}

fn restore(previous_mask: &libc::sigset_t) {
    // SAFETY: the mask was filled by pthread_sigmask.
    unsafe {
        libc::pthread_sigmask(libc::SIG_SETMASK, previous_mask, std::ptr::null_mut());
    }
}

/// The forwarded signals this process does not ignore.
fn forwarded_set() -> libc::sigset_t {
    // SAFETY: sigemptyset initialises the set; sigaction with a null new
    // action only reads the current one; sigaddset takes valid numbers.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for signal in FORWARDED {
            let mut current: libc::sigaction = std::mem::zeroed();
            let ignored = libc::sigaction(signal, std::ptr::null(), &mut current) == 0
                && current.sa_sigaction == libc::SIG_IGN;
            if !ignored {
                libc::sigaddset(&mut set, signal);
            }
        }
        set
    }
}
