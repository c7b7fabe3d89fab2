//! The host's side of forwarded imports: a worker's object-store, log and
//! progress calls run here, through the very implementations in-process
//! guests use ([`Capabilities::local`], built once per pool).

use std::sync::atomic::{AtomicU64, Ordering};

use crate::capabilities::{Capabilities, StoreCall, StoreReply};
use crate::runtime::LogBudget;

use super::protocol::Notification;

/// What one call's forwarded imports run on in the host.
pub(crate) struct ServedImports {
    capabilities: Capabilities,
    /// The host's own count of the worker's log lines: a worker whose guest
    /// escaped could ignore its budget; the host's log cannot be flooded.
    log_budget: LogBudget,
    /// Lines the worker says it dropped: added up and reported once, when
    /// the call ends, so that these messages cannot flood the log either.
    dropped_in_worker: AtomicU64,
}

impl ServedImports {
    /// One call's imports, served on the host's `capabilities`.
    pub(crate) fn new(capabilities: Capabilities) -> Self {
        Self {
            capabilities,
            log_budget: LogBudget::default(),
            dropped_in_worker: AtomicU64::new(0),
        }
    }

    /// Runs one forwarded object-store call.
    pub(crate) async fn serve(&self, call: StoreCall) -> StoreReply {
        self.capabilities.store.serve(call).await
    }

    /// Runs one forwarded log or progress call.
    pub(crate) fn notify(&self, notification: Notification) {
        let progress = self.capabilities.progress.as_deref();
        match notification {
            Notification::Log { level, message } => {
                if self.log_budget.take() {
                    self.capabilities.log.log(level, message);
                }
            }
            Notification::LogsDropped { count } => {
                self.dropped_in_worker.fetch_add(count, Ordering::Relaxed);
            }
            Notification::ProgressBegin {
                label,
                total_items,
                total_bytes,
            } => {
                if let Some(sink) = progress {
                    sink.begin(&label, total_items, total_bytes);
                }
            }
            Notification::ProgressAdvance { items, bytes } => {
                if let Some(sink) = progress {
                    sink.advance(items, bytes);
                }
            }
            Notification::ProgressFinish => {
                if let Some(sink) = progress {
                    sink.finish();
                }
            }
        }
    }
}

/// The call is over (answered, failed or torn down): one line for every
/// log line that was not shown, the worker's and the host's own drops.
impl Drop for ServedImports {
    fn drop(&mut self) {
        let dropped = self
            .dropped_in_worker
            .load(Ordering::Relaxed)
            .saturating_add(self.log_budget.take_dropped());
        if dropped > 0 {
            self.capabilities.log.dropped(dropped);
        }
    }
}
