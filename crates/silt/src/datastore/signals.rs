//! SIGINT and SIGTERM: a command holding leases stops its work, releases
//! them, and exits 130 / 143. (SIGKILL cannot be caught: the lease's TTL
//! frees it.)

use tokio::signal::unix::{Signal, SignalKind, signal};

/// A termination signal arrived.
#[derive(Debug, thiserror::Error)]
#[error("interrupted by {name}; leases were released and nothing more was committed")]
pub struct Interrupted {
    /// `SIGINT` or `SIGTERM`.
    pub name: &'static str,
    /// The signal number (the exit code is 128 + it).
    pub number: u8,
}

impl Interrupted {
    /// The interruption by signal `number`.
    fn by(number: u8) -> Self {
        let name = match number {
            2 => "SIGINT",
            15 => "SIGTERM",
            _ => "a signal",
        };
        Self { name, number }
    }
}

/// Listens for SIGINT and SIGTERM from now on.
pub struct Signals {
    interrupt: Signal,
    terminate: Signal,
}

impl Signals {
    /// Starts listening (must run inside the tokio runtime).
    ///
    /// # Errors
    /// When the handlers cannot be installed.
    pub fn listen() -> anyhow::Result<Self> {
        Ok(Self {
            interrupt: signal(SignalKind::interrupt())?,
            terminate: signal(SignalKind::terminate())?,
        })
    }

    /// Resolves at the next SIGINT or SIGTERM.
    pub async fn recv(&mut self) -> Interrupted {
        tokio::select! {
            _ = self.interrupt.recv() => Interrupted::by(2),
            _ = self.terminate.recv() => Interrupted::by(15),
        }
    }
}
