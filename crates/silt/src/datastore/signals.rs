//! SIGINT and SIGTERM: a command holding leases stops its work, releases
//! them, and exits 130 / 143. (SIGKILL cannot be caught: the lease's TTL
//! frees it.)
//!
//! A command run by the resident process gets its client's signal as a
//! [`ForwardedSignal`] instead: the client's terminal and `kill` reach the
//! client, which forwards what it received.

use std::sync::Mutex;

use tokio::signal::unix::{Signal, SignalKind, signal};
use tokio::sync::watch;

/// A termination signal arrived.
#[derive(Debug, thiserror::Error)]
#[error("interrupted by {name}; leases were released and nothing more was committed")]
pub struct Interrupted {
    /// `SIGINT`, `SIGTERM` or `SIGHUP`.
    pub name: &'static str,
    /// The signal number (the exit code is 128 + it).
    pub number: u8,
}

impl Interrupted {
    /// The interruption by signal `number` (this process's own, or one
    /// forwarded from a client).
    fn by(number: u8) -> Self {
        let name = match number {
            1 => "SIGHUP",
            2 => "SIGINT",
            15 => "SIGTERM",
            _ => "a signal",
        };
        Self { name, number }
    }
}

/// The signal forwarded to the command running now, when a resident runs it.
static FORWARDED: Mutex<Option<watch::Receiver<Option<u8>>>> = Mutex::new(None);

/// Listens for SIGINT and SIGTERM from now on.
pub struct Signals {
    interrupt: Signal,
    terminate: Signal,
    forwarded: Option<watch::Receiver<Option<u8>>>,
}

impl Signals {
    /// Starts listening (must run inside the tokio runtime).
    ///
    /// # Errors
    /// When the handlers cannot be installed.
    pub fn listen() -> anyhow::Result<Self> {
        let forwarded = FORWARDED
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        Self::listen_with(forwarded)
    }

    fn listen_with(forwarded: Option<watch::Receiver<Option<u8>>>) -> anyhow::Result<Self> {
        Ok(Self {
            interrupt: signal(SignalKind::interrupt())?,
            terminate: signal(SignalKind::terminate())?,
            forwarded,
        })
    }

    /// Resolves at the next SIGINT or SIGTERM, or signal forwarded.
    pub async fn recv(&mut self) -> Interrupted {
        tokio::select! {
            _ = self.interrupt.recv() => Interrupted::by(2),
            _ = self.terminate.recv() => Interrupted::by(15),
            number = forwarded(self.forwarded.as_mut()) => Interrupted::by(number),
        }
    }
}

/// The forwarded signal's number, once one is sent; never when there is no
/// forwarding or it ended without one.
async fn forwarded(receiver: Option<&mut watch::Receiver<Option<u8>>>) -> u8 {
    if let Some(receiver) = receiver
        && let Ok(number) = receiver.wait_for(Option::is_some).await
        && let Some(number) = *number
    {
        return number;
    }
    std::future::pending().await
}

/// A signal to forward to the command that runs while this lives: the
/// [`Signals`] it listens with end at [`ForwardedSignal::send`] as at a
/// signal of its own. One command at a time: installing another replaces
/// it.
pub struct ForwardedSignal {
    sender: watch::Sender<Option<u8>>,
}

impl ForwardedSignal {
    /// Installs a forwarding for the commands started from now on.
    pub fn install() -> Self {
        let (forwarding, receiver) = Self::new();
        *FORWARDED
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(receiver);
        forwarding
    }

    fn new() -> (Self, watch::Receiver<Option<u8>>) {
        let (sender, receiver) = watch::channel(None);
        (Self { sender }, receiver)
    }

    /// True while a command listens for signals (a [`Signals`] made while
    /// this is installed is alive).
    pub fn listening(&self) -> bool {
        // One receiver is the installed one that `Signals::listen` clones
        // (none once another forwarding replaced it).
        let installed = usize::from(
            FORWARDED
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .as_ref()
                .is_some_and(|receiver| receiver.same_channel(&self.sender.subscribe())),
        );
        self.sender.receiver_count() > installed
    }

    /// Forwards signal `number` (the first one sent counts).
    pub fn send(&self, number: u8) {
        self.sender.send_if_modified(|current| {
            let first = current.is_none();
            if first {
                *current = Some(number);
            }
            first
        });
    }
}

impl Drop for ForwardedSignal {
    /// Uninstalls this forwarding, unless another was installed since.
    fn drop(&mut self) {
        let mut installed = FORWARDED
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if installed
            .as_ref()
            .is_some_and(|receiver| receiver.same_channel(&self.sender.subscribe()))
        {
            *installed = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_forwarded_signal_ends_listening_as_its_own_would() {
        // Not installed: other tests of this process listen for signals.
        let (forwarding, receiver) = ForwardedSignal::new();
        let mut signals = Signals::listen_with(Some(receiver)).unwrap();
        forwarding.send(2);
        forwarding.send(15);
        let interrupted = tokio::time::timeout(std::time::Duration::from_secs(5), signals.recv())
            .await
            .expect("the forwarded signal ends it");
        assert_eq!((interrupted.name, interrupted.number), ("SIGINT", 2));
        let (forwarding, receiver) = ForwardedSignal::new();
        let mut unsent = Signals::listen_with(Some(receiver)).unwrap();
        drop(forwarding);
        assert!(
            tokio::time::timeout(std::time::Duration::from_millis(50), unsent.recv())
                .await
                .is_err(),
            "a forwarding dropped unsent interrupts nothing"
        );
    }
}
