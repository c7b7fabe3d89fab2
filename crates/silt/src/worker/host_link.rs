//! The worker's side of the pipe: its link to the host.
//!
//! Inside a worker, the guest's object-store, log and progress imports do
//! not run locally (the worker holds no store, no credentials, no network):
//! [`HostLink::forward`] sends each call to the host and waits for the
//! answer. The worker runs one call at a time and the guest calls imports
//! one at a time, so blocking I/O here is the simplest correct thing.

use std::io::{Read, Write};
use std::sync::Mutex;

use super::protocol::{
    FromWorker, ImportCall, ImportReply, Notification, ToWorker, read_message, write_message,
};
use crate::runtime::HostState;

/// Exit code of a worker whose host went away or broke the protocol.
pub const EXIT_HOST_GONE: i32 = 3;

/// The worker's stdin and stdout, shared by the serve loop and the imports.
pub struct HostLink {
    pipe: Mutex<(Box<dyn Read + Send>, Box<dyn Write + Send>)>,
}

impl HostLink {
    /// A link over `reader` (from the host) and `writer` (to the host).
    pub fn new(reader: Box<dyn Read + Send>, writer: Box<dyn Write + Send>) -> Self {
        Self {
            pipe: Mutex::new((reader, writer)),
        }
    }

    /// Sends one message to the host. A broken pipe means the host is
    /// gone: the worker exits, there is no one to answer to.
    pub fn send(&self, message: &FromWorker) {
        let mut pipe = self.pipe.lock().unwrap_or_else(|e| e.into_inner());
        if let Err(err) = write_message(&mut pipe.1, message) {
            host_gone(&format!("cannot write to the host: {err}"));
        }
    }

    /// Receives one message; `None` when the host closed the pipe (done).
    pub fn receive<T: serde::de::DeserializeOwned>(&self) -> Option<T> {
        let mut pipe = self.pipe.lock().unwrap_or_else(|e| e.into_inner());
        match read_message(&mut pipe.0) {
            Ok(message) => message,
            Err(err) => host_gone(&format!("cannot read from the host: {err}")),
        }
    }

    /// Runs an import call in the host and returns what `pick` takes from
    /// the answer. The wait counts as object-store time, not the guest's.
    pub(crate) fn forward<T>(
        &self,
        state: &mut HostState,
        call: ImportCall,
        pick: impl FnOnce(ImportReply) -> Option<T>,
    ) -> T {
        state.clock.store_begin();
        self.send(&FromWorker::Import(call));
        let answer = match self.receive::<ToWorker>() {
            Some(ToWorker::Import(reply)) => pick(reply),
            Some(other) => host_gone(&format!("expected an import answer, got {other:?}")),
            None => host_gone("the host closed the pipe during an import call"),
        };
        state.clock.store_done();
        answer.unwrap_or_else(|| host_gone("the host answered an import call with the wrong kind"))
    }

    /// Sends a one-way `log` or `progress` call.
    pub(crate) fn notify(&self, notification: Notification) {
        self.send(&FromWorker::Notify(notification));
    }
}

fn host_gone(detail: &str) -> ! {
    eprintln!("silt worker: {detail}; exiting");
    std::process::exit(EXIT_HOST_GONE)
}

/// In a worker, forwards the import call to the host and returns its
/// answer from the enclosing function; elsewhere does nothing.
macro_rules! forward_import {
    ($state:expr, $call:expr, $reply:path) => {
        if let Some(link) = $state.host_link.clone() {
            return link.forward($state, $call, |reply| match reply {
                $reply(answer) => Some(answer),
                _ => None,
            });
        }
    };
}
pub(crate) use forward_import;
