//! Where a command's work runs: a tokio runtime built for the command (and
//! only for commands that execute extensions), the configured datastore
//! opened on it, and the marker that tells a later pull a killed command's
//! downloads may have left temporary files.

use std::sync::Arc;

use anyhow::Context as _;

use super::Events;
use crate::beneath::Beneath;
use crate::datastore::transfer_marker::TransferMarker;
use crate::datastore::{Datastore, Runtimes, host_state_dir, trust};
use crate::locations::Locations;
use crate::store::root;

/// How long a command's end waits for the work it handed to tokio's
/// blocking pool: a worker's teardown (its cgroup, a container's removal:
/// normally well under a second; a container left behind is swept by the
/// next start), a compile abandoned by an interrupt (its artifact is
/// written to a temporary file and renamed, so at worst the temporary
/// file is left), and the file operations of in-process guests. A guest's
/// operation can block for good: opening a FIFO planted in its `/cache`
/// waits for a writer that never comes. Its call was stopped at the
/// deadline, but dropping the runtime joins every blocking thread, so
/// without a bound the command would never end. Past this wait, such a
/// thread is left to the process's exit.
const BLOCKING_WORK_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// Set when a command ended with work still running on a blocking thread
/// (see [`BLOCKING_WORK_WAIT`]): its downloads may still be landing.
static LEFT_WORK_BEHIND: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// True once a command of this process left work running past its end.
pub fn left_work_behind() -> bool {
    LEFT_WORK_BEHIND.load(std::sync::atomic::Ordering::SeqCst)
}

/// A runtime for the commands that execute extensions; others never build one.
pub fn block_on<F: Future>(future: F) -> anyhow::Result<F::Output> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    // The command's span goes on in the runtime (tasks spawned from it
    // carry their own).
    let output = runtime.block_on(tracing::Instrument::in_current_span(future));
    let shutting_down = std::time::Instant::now();
    runtime.shutdown_timeout(BLOCKING_WORK_WAIT);
    // Download writes run on threads of their own, outside the runtime: a
    // download dropped at its deadline removes its temporary file once its
    // write ends.
    let settled = crate::runtime::capabilities::wait_for_landings(
        BLOCKING_WORK_WAIT.saturating_sub(shutting_down.elapsed()),
    );
    if !settled || shutting_down.elapsed() >= BLOCKING_WORK_WAIT {
        LEFT_WORK_BEHIND.store(true, std::sync::atomic::Ordering::SeqCst);
        tracing::warn!(
            "work handed to a blocking thread was still running {} s after the command's work ended (an extension's file operation blocked on a FIFO or a stalled file system, or a worker's teardown); exiting without it",
            BLOCKING_WORK_WAIT.as_secs()
        );
    }
    Ok(output)
}

/// Opens the configured datastore (loading its extension) on a runtime
/// and runs `work` with it. A store that was allowed despite failing the
/// doctor's checks is a warning ([`trust`]).
pub fn with_datastore<T>(
    locations: &Locations,
    runtimes: &Arc<Runtimes>,
    events: &dyn Events,
    work: impl AsyncFnOnce(&Arc<Datastore>) -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    let marker = mark_transfers(&locations.local_dir);
    let output = block_on(async {
        let progress = events.transfer_progress();
        let datastore = Arc::new(Datastore::open(locations, runtimes, progress).await?);
        warn_if_unsafe_store(locations, events, &datastore).await;
        work(&datastore).await
    });
    release_transfers(marker);
    output?
}

/// Marks this command in the host's state of the working copy in
/// `local_dir` as one that may leave temporary download files there if
/// killed ([`TransferMarker`]); before the extension first runs.
pub(crate) fn mark_transfers(local_dir: &std::path::Path) -> Option<TransferMarker> {
    match Beneath::create(&host_state_dir(local_dir))
        .and_then(|state| TransferMarker::create(&state))
    {
        Ok(marker) => Some(marker),
        Err(err) => {
            tracing::debug!(
                "cannot mark this command's downloads in the host's state ({err}); if it is killed, its temporary files wait for a pull of everything a day after the last clean-up"
            );
            None
        }
    }
}

/// After [`block_on`] returned: every download of the command has ended
/// (renamed into place or removed), unless work was left running; then the
/// marker stays, for the next pull of everything to look for its files.
pub(crate) fn release_transfers(marker: Option<TransferMarker>) {
    if let Some(marker) = marker
        && !left_work_behind()
    {
        marker.release();
    }
}

/// The store was allowed despite failing `doctor` (see [`trust`]): a
/// warning each time it is opened ([`Events::warning`]; the CLI shows it
/// once a command).
async fn warn_if_unsafe_store(locations: &Locations, events: &dyn Events, datastore: &Datastore) {
    let Ok(host_state) = datastore.host_state() else {
        return;
    };
    let decision = match trust::remembered(&host_state) {
        Some(decision) => decision,
        None => {
            let config = &locations.config.datastore;
            match root::open(&config.root(&locations.store_dir)) {
                Ok(store) => trust::read(&store, &host_state).await,
                Err(_) => None,
            }
        }
    };
    if let Some(decision) = decision {
        events.warning(&decision.warning());
    }
}
