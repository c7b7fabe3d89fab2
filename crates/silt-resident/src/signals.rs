//! The client's termination signals while the resident runs its command.
//!
//! In a process of its own, Ctrl-C (SIGINT), SIGTERM or a closed terminal
//! (SIGHUP) reaches the command: one holding leases releases them and ends
//! with 128 + the signal; any other ends at once. Handed over, the command
//! runs in the resident, so the client blocks those signals, takes them on a
//! thread of its own with `sigwait`, and forwards the first as a cancel. It
//! then waits for the answer (a command with leases answers 128 + the
//! signal once they are released), and ends by itself with 128 + the signal
//! at a second signal or after [`crate::client::CANCEL_GRACE`].

use std::os::unix::net::UnixStream;

/// The signals forwarded.
const FORWARDED: [libc::c_int; 3] = [libc::SIGINT, libc::SIGTERM, libc::SIGHUP];

/// Signals blocked in this process and forwarded over a stream, until
/// [`Forwarding::stop`].
pub(crate) struct Forwarding {
    previous_mask: libc::sigset_t,
}

impl Forwarding {
    /// Blocks the forwarded signals in the calling thread (and so in the
    /// thread it starts) and starts the thread that forwards them over
    /// `stream`.
    pub(crate) fn start(stream: UnixStream) -> std::io::Result<Self> {
        let set = forwarded_set();
        // SAFETY: a zeroed sigset_t is a valid value to be overwritten.
        let mut previous_mask: libc::sigset_t = unsafe { std::mem::zeroed() };
        // SAFETY: both pointers are to valid sigset_t values.
        let blocked = unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, &mut previous_mask) };
        if blocked != 0 {
            return Err(std::io::Error::from_raw_os_error(blocked));
        }
        let forwarding = Self { previous_mask };
        std::thread::Builder::new()
            .name("silt-client-signals".into())
            .spawn(move || forward(&stream, &set))
            .inspect_err(|_| forwarding.restore())?;
        Ok(forwarding)
    }

    /// Gives the calling thread its signal mask back, before it runs the
    /// command itself (an exec keeps the mask). A signal that came in the
    /// meantime is delivered then, as it would have been.
    pub(crate) fn stop(self) {
        self.restore();
    }

    fn restore(&self) {
        // SAFETY: the mask was filled by pthread_sigmask.
        unsafe {
            libc::pthread_sigmask(libc::SIG_SETMASK, &self.previous_mask, std::ptr::null_mut());
        }
    }
}

fn forwarded_set() -> libc::sigset_t {
    // SAFETY: sigemptyset initialises the set; sigaddset takes valid signal
    // numbers.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for signal in FORWARDED {
            libc::sigaddset(&mut set, signal);
        }
        set
    }
}

/// Waits for the first forwarded signal, sends it as a cancel, then ends
/// the process at the next one or when the grace has passed.
fn forward(stream: &UnixStream, set: &libc::sigset_t) {
    let Some(first) = wait(set, None) else {
        return;
    };
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
