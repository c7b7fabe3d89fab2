//! A worker set aside for one caller: a lease set's renewals.
//!
//! A renewal has a third of the lease's TTL to answer. When the only
//! pooled worker is busy with the command's own call (a commit hashing and
//! uploading 80 MB), a renewal through the pool has to start a worker, and
//! a container takes a quarter of a second to start here, seconds under
//! load: a live lease could be lost that way. A reserved worker is started
//! ahead of the first renewal and kept between renewals; a start that a
//! renewal gave up waiting for goes on, in the background, for the next.

use std::sync::Arc;

use tokio::task::JoinHandle;
use tracing::Instrument as _;

use super::imports::ServedImports;
use super::pool::{Worker, WorkerPool};
use crate::runtime::{ExportCall, ExportReply, Runtime, RuntimeError};

/// A worker kept for one caller's calls ([`WorkerPool::execute_reserved`]).
/// Dropping it kills its worker; a start still under way finishes and its
/// worker is killed then (a container killed while it is being created can
/// leave parts of itself behind).
pub struct ReservedWorker {
    state: tokio::sync::Mutex<Reserved>,
}

enum Reserved {
    Empty,
    /// Owned here, not by the call that began it: a call that stops
    /// waiting leaves it to finish for the next call.
    Starting(JoinHandle<Result<Worker, RuntimeError>>),
    Ready(Box<Worker>),
}

impl WorkerPool {
    /// A worker slot for one caller, empty until
    /// [`Self::start_reserved`] or its first call; `None` under
    /// `pool_size = 0`, where every call has a fresh worker.
    pub fn reserve(&self) -> Option<ReservedWorker> {
        self.keeps_workers().then(|| ReservedWorker {
            state: tokio::sync::Mutex::new(Reserved::Empty),
        })
    }

    /// Starts `reserved`'s worker in the background, unless it has one,
    /// is starting one or is in a call. Returns once the start has begun.
    ///
    /// # Errors
    /// When the bundle cannot be built.
    pub async fn start_reserved(
        self: &Arc<Self>,
        runtime: &Runtime,
        reserved: &ReservedWorker,
    ) -> Result<(), RuntimeError> {
        let Ok(mut state) = reserved.state.try_lock() else {
            return Ok(());
        };
        if matches!(*state, Reserved::Empty) {
            *state = Reserved::Starting(self.start_in_background(runtime).await?);
        }
        Ok(())
    }

    /// Runs `call` on `reserved`'s worker: the one it has, the one it is
    /// starting, or one it starts now. While that worker is in another
    /// call, `call` runs on the pool's workers instead.
    ///
    /// # Errors
    /// As [`Self::execute`].
    pub async fn execute_reserved(
        self: &Arc<Self>,
        runtime: &Runtime,
        reserved: &ReservedWorker,
        call: ExportCall,
    ) -> Result<ExportReply, RuntimeError> {
        let Ok(mut state) = reserved.state.try_lock() else {
            return self.execute(runtime, call).await;
        };
        let imports = ServedImports::new(self.capabilities()?);
        let mut worker = loop {
            match &mut *state {
                Reserved::Ready(worker) => {
                    if worker.is_alive() {
                        let Reserved::Ready(worker) =
                            std::mem::replace(&mut *state, Reserved::Empty)
                        else {
                            unreachable!("matched as ready")
                        };
                        break *worker;
                    }
                    // Killed while idle: start another.
                    *state = Reserved::Empty;
                }
                Reserved::Starting(start) => {
                    // If this call is dropped here, the start stays in
                    // `state` and goes on.
                    let started = start.await;
                    *state = Reserved::Empty;
                    match started {
                        Ok(worker) => break worker?,
                        Err(err) => {
                            return Err(self.worker_error(format!(
                                "the worker's start did not finish: {err}"
                            )));
                        }
                    }
                }
                Reserved::Empty => {
                    *state = Reserved::Starting(self.start_in_background(runtime).await?);
                }
            }
        };
        // A worker whose call failed (or whose caller gave up) is dropped
        // here, killed; the next call starts another.
        let reply = self.call_on(&mut worker, call, imports).await?;
        *state = Reserved::Ready(Box::new(worker));
        Ok(reply)
    }

    async fn start_in_background(
        self: &Arc<Self>,
        runtime: &Runtime,
    ) -> Result<JoinHandle<Result<Worker, RuntimeError>>, RuntimeError> {
        let bundle = self.bundle(runtime).await?;
        let pool = self.clone();
        Ok(tokio::spawn(
            async move { pool.spawn(&bundle).await }.in_current_span(),
        ))
    }
}
