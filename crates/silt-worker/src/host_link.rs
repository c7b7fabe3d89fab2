//! The worker's side of the pipe: its link to the host.
//!
//! Inside a worker, the guest's object-store, log and progress imports do
//! not run locally (the worker holds no store, no credentials, no network):
//! [`HostLink::capabilities`] implements each of them by sending the call
//! to the host (and, for the object store, waiting for the answer). The
//! worker runs one call at a time and the guest calls imports one at a
//! time, so blocking I/O here is the simplest correct thing.

use std::io::{Read, Write};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::protocol::{FromWorker, Notification, ToWorker, read_message, write_message};
use crate::capabilities::store_imports::{BoxFuture, Forwarded, StoreTransport};
use crate::capabilities::{Capabilities, LogSink, ProgressSink, Settings, StoreCall, StoreReply};
use crate::runtime::bindings::silt::datastore::log::Level;

/// Exit code of a worker whose host went away or broke the protocol.
pub const EXIT_HOST_GONE: i32 = 3;

/// How often progress advances are sent at most: a guest's flood of
/// `progress.advance` costs a sum here, not a message each (in process it
/// costs a call each), so that it has the same outcome in both modes.
const ADVANCE_INTERVAL: Duration = Duration::from_millis(50);

/// The worker's stdin and stdout, shared by the serve loop and the imports.
pub struct HostLink {
    pipe: Mutex<(Box<dyn Read + Send>, Box<dyn Write + Send>)>,
    /// Advances not sent yet, summed, and when advances were last sent.
    advances: Mutex<PendingAdvances>,
}

#[derive(Default)]
struct PendingAdvances {
    items: u64,
    bytes: u64,
    last_sent: Option<Instant>,
}

impl PendingAdvances {
    /// The sum to send now, if any, and the time of sending noted.
    fn take(&mut self) -> Option<Notification> {
        if self.items == 0 && self.bytes == 0 {
            return None;
        }
        self.last_sent = Some(Instant::now());
        Some(Notification::ProgressAdvance {
            items: std::mem::take(&mut self.items),
            bytes: std::mem::take(&mut self.bytes),
        })
    }
}

impl HostLink {
    /// A link over `reader` (from the host) and `writer` (to the host).
    pub fn new(reader: Box<dyn Read + Send>, writer: Box<dyn Write + Send>) -> Self {
        Self {
            pipe: Mutex::new((reader, writer)),
            advances: Mutex::new(PendingAdvances::default()),
        }
    }

    /// Sends one message to the host, after the progress advances not sent
    /// yet (so the host sees everything in order). A broken pipe means the
    /// host is gone: the worker exits, there is no one to answer to.
    pub fn send(&self, message: &FromWorker) {
        let advance = self.pending_advances().take();
        let mut pipe = self.pipe.lock().unwrap_or_else(|e| e.into_inner());
        let advance = advance.map(FromWorker::Notify);
        for message in advance.iter().chain([message]) {
            if let Err(err) = write_message(&mut pipe.1, message) {
                host_gone(&format!("cannot write to the host: {err}"));
            }
        }
    }

    fn pending_advances(&self) -> std::sync::MutexGuard<'_, PendingAdvances> {
        self.advances.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Receives one message; `None` when the host closed the pipe (done).
    pub fn receive<T: serde::de::DeserializeOwned>(&self) -> Option<T> {
        let mut pipe = self.pipe.lock().unwrap_or_else(|e| e.into_inner());
        match read_message(&mut pipe.0) {
            Ok(message) => message,
            Err(err) => host_gone(&format!("cannot read from the host: {err}")),
        }
    }

    /// Sends a one-way `log` or `progress` call.
    fn notify(&self, notification: Notification) {
        self.send(&FromWorker::Notify(notification));
    }

    /// The capabilities of a guest in this worker: its object-store, log
    /// and progress imports all go to the host over this link; `config`
    /// answers from the `settings` the host sent with the start.
    pub fn capabilities(self: &Arc<Self>, settings: Arc<Settings>) -> Capabilities {
        Capabilities {
            store: Arc::new(Forwarded(self.clone())),
            log: self.clone(),
            progress: Some(self.clone()),
            settings,
        }
    }
}

/// An object-store call runs in the host: the worker blocks on the pipe
/// (one call at a time; the wait counts as store time, not the guest's).
impl StoreTransport for HostLink {
    fn round_trip(&self, call: StoreCall) -> BoxFuture<'_, StoreReply> {
        self.send(&FromWorker::Import(call));
        let reply = match self.receive::<ToWorker>() {
            Some(ToWorker::Import(reply)) => reply,
            Some(other) => host_gone(&format!("expected an import answer, got {other:?}")),
            None => host_gone("the host closed the pipe during an import call"),
        };
        Box::pin(std::future::ready(reply))
    }

    fn refuse(&self, expected: &'static str, reply: StoreReply) -> ! {
        host_gone(&format!(
            "the host answered `{expected}` with the reply of `{}`",
            reply.function()
        ))
    }
}

/// Log lines go to the host, which escapes and shows them.
impl LogSink for HostLink {
    fn log(&self, level: Level, message: String) {
        self.notify(Notification::Log { level, message });
    }

    /// The host reports them, where the user sees it.
    fn dropped(&self, count: u64) {
        self.notify(Notification::LogsDropped { count });
    }
}

impl ProgressSink for HostLink {
    fn begin(&self, label: &str, total_items: Option<u64>, total_bytes: Option<u64>) {
        self.notify(Notification::ProgressBegin {
            label: label.to_owned(),
            total_items,
            total_bytes,
        });
    }

    fn advance(&self, items: u64, bytes: u64) {
        let due = {
            let mut pending = self.pending_advances();
            pending.items = pending.items.saturating_add(items);
            pending.bytes = pending.bytes.saturating_add(bytes);
            pending
                .last_sent
                .is_none_or(|sent| sent.elapsed() >= ADVANCE_INTERVAL)
        };
        if !due {
            return;
        }
        // Taken before sending: `send` takes the lock again.
        let advance = self.pending_advances().take();
        if let Some(advance) = advance {
            self.notify(advance);
        }
    }

    fn finish(&self) {
        self.notify(Notification::ProgressFinish);
    }
}

fn host_gone(detail: &str) -> ! {
    eprintln!("silt worker: {detail}; exiting");
    std::process::exit(EXIT_HOST_GONE)
}
