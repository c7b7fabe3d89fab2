//! The `log` import: extension messages to a [`LogSink`], within the
//! instance's log budget (see `LogBudget`).

use crate::bindings::silt::datastore::log::{Host, Level};
use crate::{HostState, loggable, report_dropped};

/// Where an extension's log lines go.
pub trait LogSink: Send + Sync {
    /// One line the guest logged (raw guest text: the sink escapes it
    /// before anyone sees it).
    fn log(&self, level: Level, message: String);
    /// `count` lines were dropped past the instance's budget.
    fn dropped(&self, count: u64);
}

/// Extension lines as `tracing` events of target `silt::extension`,
/// escaped and cut.
pub struct TracingLog {
    extension: String,
}

impl TracingLog {
    /// The log of `extension`.
    pub fn new(extension: &str) -> Self {
        Self {
            extension: extension.to_owned(),
        }
    }
}

impl LogSink for TracingLog {
    fn log(&self, level: Level, message: String) {
        let extension = self.extension.as_str();
        let message = loggable(&message);
        match level {
            Level::Trace => tracing::trace!(target: "silt::extension", extension, "{message}"),
            Level::Debug => tracing::debug!(target: "silt::extension", extension, "{message}"),
            Level::Info => tracing::info!(target: "silt::extension", extension, "{message}"),
            Level::Warn => tracing::warn!(target: "silt::extension", extension, "{message}"),
            Level::Error => tracing::error!(target: "silt::extension", extension, "{message}"),
        }
    }

    fn dropped(&self, count: u64) {
        report_dropped(&self.extension, count);
    }
}

impl Host for HostState {
    async fn log(&mut self, level: Level, message: String) {
        // Counted where the guest runs: in a worker, a flood stops there
        // instead of crossing the pipe.
        if self.log_budget.take() {
            self.capabilities.log.log(level, message);
        }
    }
}
