//! The client's termination signals while the resident runs its command.
//!
//! In a process of its own, Ctrl-C (SIGINT), SIGTERM or a closed terminal
//! (SIGHUP) reaches the command: one holding leases releases them and ends
//! with 128 + the signal; any other ends at once. Handed over, the command
//! runs in the resident, so the client blocks those signals before it sends
//! the request, takes them afterwards on a thread of its own with
//! `sigwait`, and forwards the first as a cancel. The resident answers
//! 128 + the signal as the command would have ended. The client ends by
//! itself with 128 + the signal at a second signal or after
//! [`crate::client::CANCEL_GRACE`] without an answer.
//!
//! A signal this process ignores (`nohup`, a script's background job) is
//! not forwarded: the command would not have seen it either.

use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};

/// The signals forwarded, unless ignored.
const FORWARDED: [libc::c_int; 3] = [libc::SIGINT, libc::SIGTERM, libc::SIGHUP];

/// What the forwarding thread and the thread that stops it share.
#[derive(Default)]
struct Handshake {
    /// The signal the forwarding thread took (0: none).
    taken: AtomicI32,
    /// The command is not handed over after all: a signal taken now is
    /// this process's own again.
    stopping: AtomicBool,
}

/// The forwarded signals, blocked in this process from [`Forwarding::block`]
/// until [`Forwarding::stop`].
pub(crate) struct Forwarding {
    previous_mask: libc::sigset_t,
    set: libc::sigset_t,
    handshake: Arc<Handshake>,
}

impl Forwarding {
    /// Blocks the forwarded signals this process does not ignore, in the
    /// calling thread (and so in the thread [`Forwarding::start`] starts):
    /// one that comes meanwhile waits.
    pub(crate) fn block() -> std::io::Result<Self> {
        let set = forwarded_set();
        // SAFETY: a zeroed sigset_t is a valid value to be overwritten.
        let mut previous_mask: libc::sigset_t = unsafe { std::mem::zeroed() };
        // SAFETY: both pointers are to valid sigset_t values.
        let blocked = unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, &mut previous_mask) };
        if blocked != 0 {
            return Err(std::io::Error::from_raw_os_error(blocked));
        }
        Ok(Self {
            previous_mask,
            set,
            handshake: Arc::default(),
        })
    }

    /// Starts the thread that forwards the blocked signals over `stream`
    /// (the request is sent: a cancel must not come before it).
    pub(crate) fn start(&self, stream: UnixStream) -> std::io::Result<()> {
        let set = self.set;
        let handshake = self.handshake.clone();
        std::thread::Builder::new()
            .name("silt-client-signals".into())
            .spawn(move || forward(&stream, &set, &handshake))
            .map(drop)
    }

    /// The command is not handed over: gives the calling thread its signal
    /// mask back before it runs the command itself. A signal that came
    /// meanwhile ends this process as it would have, whether it waited
    /// blocked or the forwarding thread took it.
    pub(crate) fn stop(self) {
        self.handshake.stopping.store(true, Ordering::SeqCst);
        // SAFETY: the mask was filled by pthread_sigmask.
        unsafe {
            libc::pthread_sigmask(libc::SIG_SETMASK, &self.previous_mask, std::ptr::null_mut());
        }
        let taken = self.handshake.taken.load(Ordering::SeqCst);
        if taken != 0 {
            raise_as_own(taken);
        }
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

/// Sends `signal` to this process again, where it now does what it does by
/// default (the mask is restored): the process ends as it would have.
fn raise_as_own(signal: libc::c_int) {
    // SAFETY: kill with this process's own pid and a valid signal.
    unsafe {
        libc::kill(libc::getpid(), signal);
    }
}

/// Waits for the first forwarded signal, sends it as a cancel, then ends
/// the process at the next one or when the grace has passed.
fn forward(stream: &UnixStream, set: &libc::sigset_t, handshake: &Handshake) {
    let Some(first) = wait(set, None) else {
        return;
    };
    handshake.taken.store(first, Ordering::SeqCst);
    if handshake.stopping.load(Ordering::SeqCst) {
        raise_as_own(first);
        return;
    }
    let _ = crate::cancel(stream, u8::try_from(first).unwrap_or(0));
    let _ = wait(set, Some(crate::client::CANCEL_GRACE));
    std::process::exit(128 + first);
}

/// The next signal of `set`, waiting at most `timeout` (for ever when
/// `None`); `None` when the time passed.
fn wait(set: &libc::sigset_t, timeout: Option<std::time::Duration>) -> Option<libc::c_int> {
    let timespec = timeout.map(|timeout| libc::timespec {
        tv_sec: libc::time_t::try_from(timeout.as_secs()).unwrap_or(libc::time_t::MAX),
        tv_nsec: libc::c_long::from(timeout.subsec_nanos().cast_signed()),
    });
    let deadline = timeout.map(|timeout| std::time::Instant::now() + timeout);
    loop {
        // SAFETY: `set` is initialised; the timespec, when given, lives
        // across the call; no siginfo is asked for.
        let signal = unsafe {
            libc::sigtimedwait(
                set,
                std::ptr::null_mut(),
                timespec
                    .as_ref()
                    .map_or(std::ptr::null(), std::ptr::from_ref),
            )
        };
        if signal > 0 {
            return Some(signal);
        }
        let err = std::io::Error::last_os_error();
        if err.raw_os_error() == Some(libc::EAGAIN) {
            return None;
        }
        // EINTR (a signal outside the set): wait again, no longer than the
        // deadline.
        if deadline.is_some_and(|deadline| std::time::Instant::now() >= deadline) {
            return None;
        }
    }
}
