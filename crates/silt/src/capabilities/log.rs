//! The `log` import: extension messages into the host's `tracing` log,
//! escaped and within the instance's log budget (see `LogBudget`).

use crate::runtime::HostState;
use crate::runtime::bindings::silt::datastore::log::{Host, Level};
use crate::worker::protocol::Notification;

impl Host for HostState {
    async fn log(&mut self, level: Level, message: String) {
        // Counted where the guest runs: in a worker, a flood stops there
        // instead of crossing the pipe.
        if !self.log_budget.take() {
            return;
        }
        if let Some(link) = &self.host_link {
            return link.notify(Notification::Log { level, message });
        }
        let extension = self.extension.as_str();
        let message = crate::runtime::loggable(&message);
        match level {
            Level::Trace => tracing::trace!(target: "silt::extension", extension, "{message}"),
            Level::Debug => tracing::debug!(target: "silt::extension", extension, "{message}"),
            Level::Info => tracing::info!(target: "silt::extension", extension, "{message}"),
            Level::Warn => tracing::warn!(target: "silt::extension", extension, "{message}"),
            Level::Error => tracing::error!(target: "silt::extension", extension, "{message}"),
        }
    }
}
