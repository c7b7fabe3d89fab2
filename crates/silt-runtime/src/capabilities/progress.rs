//! The `progress` import: calls to a [`ProgressSink`], the host's
//! progress display (or, in a worker, the link to the host).

use std::sync::Mutex;

use crate::HostState;
use crate::bindings::silt::datastore::progress::Host;

/// Where progress of extension work (and of bulk transfers) is shown.
pub trait ProgressSink: Send + Sync {
    /// A phase starts; totals are unknown when `None`.
    fn begin(&self, label: &str, total_items: Option<u64>, total_bytes: Option<u64>);
    /// Work done since the last report.
    fn advance(&self, items: u64, bytes: u64);
    /// `bytes` more are to come than the phase's total said (a transfer
    /// learns each object's size as it starts to arrive).
    fn expect(&self, bytes: u64) {
        let _ = bytes;
    }
    /// The phase ended.
    fn finish(&self);
}

/// Progress as log lines (for non-terminals and tests).
#[derive(Debug, Default)]
pub struct LogProgress {
    state: Mutex<(String, u64, u64)>,
}

impl ProgressSink for LogProgress {
    fn begin(&self, label: &str, total_items: Option<u64>, total_bytes: Option<u64>) {
        // Guest text: escaped before it reaches the log.
        let label = crate::loggable(label);
        tracing::info!(label, ?total_items, ?total_bytes, "started");
        *self.state.lock().expect("progress poisoned") = (label, 0, 0);
    }

    fn advance(&self, items: u64, bytes: u64) {
        let mut state = self.state.lock().expect("progress poisoned");
        state.1 = state.1.saturating_add(items);
        state.2 = state.2.saturating_add(bytes);
    }

    fn finish(&self) {
        let state = self.state.lock().expect("progress poisoned");
        tracing::info!(label = %state.0, items = state.1, bytes = state.2, "finished");
    }
}

impl Host for HostState {
    async fn begin(&mut self, label: String, total_items: Option<u64>, total_bytes: Option<u64>) {
        if let Some(sink) = &self.capabilities.progress {
            sink.begin(&label, total_items, total_bytes);
        }
    }

    async fn advance(&mut self, items: u64, bytes: u64) {
        if let Some(sink) = &self.capabilities.progress {
            sink.advance(items, bytes);
        }
    }

    async fn finish(&mut self) {
        if let Some(sink) = &self.capabilities.progress {
            sink.finish();
        }
    }
}
