//! Byte progress from inside a transfer.
//!
//! The transfer layer sets a [`ByteProgress`] around each file it moves
//! ([`reporting`]); a backend that learns the object's size, or moves a
//! file in parts, says so ([`expect`], [`moved`]) without any store
//! wrapper in between having to pass it along. Outside such a scope both
//! do nothing.

use std::sync::Arc;

/// Where a transfer's byte progress goes.
pub trait ByteProgress: Send + Sync {
    /// The object being moved is `bytes` long (learnt once it answers).
    fn expect(&self, bytes: u64);
    /// `bytes` more have moved.
    fn moved(&self, bytes: u64);
}

tokio::task_local! {
    static PROGRESS: Arc<dyn ByteProgress>;
}

/// Runs `transfer` with `progress` receiving what it reports.
pub async fn reporting<F: Future>(progress: Arc<dyn ByteProgress>, transfer: F) -> F::Output {
    PROGRESS.scope(progress, transfer).await
}

/// The progress of the transfer this task runs in, if any, for work that
/// runs outside the task (a body an HTTP client sends from its own).
pub fn current() -> Option<Arc<dyn ByteProgress>> {
    PROGRESS.try_with(Arc::clone).ok()
}

/// Reports the size of the object being moved.
pub fn expect(bytes: u64) {
    let _ = PROGRESS.try_with(|progress| progress.expect(bytes));
}

/// Reports bytes moved.
pub fn moved(bytes: u64) {
    let _ = PROGRESS.try_with(|progress| progress.moved(bytes));
}
