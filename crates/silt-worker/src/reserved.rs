//! Workers set aside for one caller: a lease set's renewals.
//!
//! A renewal has a third of the lease's TTL to answer. When the pooled
//! worker is busy with the command's own call (a commit hashing and
//! uploading 80 MB), a renewal through the pool has to start a worker, and
//! a container takes a quarter of a second to start here, seconds under
//! load: a live lease was lost that way. Reserved workers are started
//! ahead of the first renewal and kept between renewals; a renewal never
//! starts one on its deadline while a reserved or idle worker will do.

use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;
use tracing::Instrument as _;

use super::bundle::Bundle;
use super::imports::ServedImports;
use super::pool::{Worker, WorkerPool};
use crate::runtime::{ExportCall, ExportReply, Runtime, RuntimeError};

/// Workers kept for one caller's calls ([`WorkerPool::execute_reserved`]).
/// Call [`Self::settle`] before dropping it: a start under way would
/// otherwise be cut off when the process exits.
pub struct ReservedWorkers {
    slots: Vec<tokio::sync::Mutex<Reserved>>,
    /// One permit for each slot not in a call: a call holding one finds a
    /// slot free.
    free: tokio::sync::Semaphore,
}

enum Reserved {
    Empty,
    /// Owned by the slot, not by the call that began it: a call that
    /// stops waiting leaves it to finish for the next call.
    Starting(JoinHandle<Result<Worker, RuntimeError>>),
    Ready(Box<Worker>),
}

impl ReservedWorkers {
    /// Waits up to `wait` for the calls and starts under way to end, then
    /// stops every worker. A start is waited for, not cut off: a container
    /// killed while its runtime creates it can leave parts of itself behind
    /// that the runtime no longer lists.
    pub async fn settle(&self, wait: Duration) {
        let settled = async {
            let _all = self.free.acquire_many(self.slots.len() as u32).await;
            for slot in &self.slots {
                let mut slot = slot.lock().await;
                if let Reserved::Starting(start) = &mut *slot {
                    let _ = start.await;
                }
                *slot = Reserved::Empty;
            }
        };
        let _ = tokio::time::timeout(wait, settled).await;
    }
}

impl WorkerPool {
    /// `count` workers (at least one) set aside for one caller, none
    /// started before [`Self::start_reserved`] or a call; `None` under
    /// `pool_size = 0`, where every call has a fresh worker.
    pub fn reserve(&self, count: usize) -> Option<ReservedWorkers> {
        let count = count.max(1);
        self.keeps_workers().then(|| ReservedWorkers {
            slots: (0..count)
                .map(|_| tokio::sync::Mutex::new(Reserved::Empty))
                .collect(),
            free: tokio::sync::Semaphore::new(count),
        })
    }

    /// Starts every reserved worker not started yet, in the background,
    /// and returns at once. Starts none while no call has built the
    /// bundle yet (the call building it may be compiling the component,
    /// and the caller must not wait for that): the first call on a slot
    /// starts its worker then.
    pub fn start_reserved(self: &Arc<Self>, reserved: &ReservedWorkers) {
        let Some(bundle) = self.built_bundle() else {
            tracing::debug!("no bundle yet: reserved workers start with their first call");
            return;
        };
        for slot in &reserved.slots {
            if let Ok(mut slot) = slot.try_lock()
                && matches!(*slot, Reserved::Empty)
            {
                *slot = Reserved::Starting(self.start_in_background(bundle.clone()));
            }
        }
    }

    /// Runs `call` on a reserved worker: one that is ready, the one being
    /// started, or one started now. When every reserved worker is in a
    /// call, `call` takes an idle pooled worker if there is one, and
    /// otherwise waits for a reserved one: it never starts a worker
    /// beside them.
    ///
    /// # Errors
    /// As [`Self::execute`].
    pub async fn execute_reserved(
        self: &Arc<Self>,
        runtime: &Runtime,
        reserved: &ReservedWorkers,
        call: ExportCall,
    ) -> Result<ExportReply, RuntimeError> {
        let _permit = match reserved.free.try_acquire() {
            Ok(permit) => permit,
            Err(_) => {
                if let Some(worker) = self.take_idle() {
                    return self.run_and_keep(worker, call).await;
                }
                reserved
                    .free
                    .acquire()
                    .await
                    .map_err(|_| self.worker_error("the reserved workers are gone".into()))?
            }
        };
        // A permit leaves a slot free: across an await, slots are held
        // only by calls with a permit (and by `settle`, with every permit);
        // `start_reserved` holds one for a moment without.
        let mut slot = loop {
            match reserved.slots.iter().find_map(|slot| slot.try_lock().ok()) {
                Some(slot) => break slot,
                None => tokio::task::yield_now().await,
            }
        };
        let imports = ServedImports::new(self.capabilities()?);
        let mut worker = loop {
            match &mut *slot {
                Reserved::Ready(worker) => {
                    if worker.is_alive() {
                        let Reserved::Ready(worker) =
                            std::mem::replace(&mut *slot, Reserved::Empty)
                        else {
                            unreachable!("matched as ready")
                        };
                        break *worker;
                    }
                    // Killed while idle: start another.
                    *slot = Reserved::Empty;
                }
                Reserved::Starting(start) => {
                    // If this call is dropped here, the start stays in the
                    // slot and goes on.
                    let started = start.await;
                    *slot = Reserved::Empty;
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
                    let bundle = self.bundle(runtime).await?;
                    *slot = Reserved::Starting(self.start_in_background(bundle));
                }
            }
        };
        // A call dropped here drops its worker (killed); the slot is empty.
        match self.call_on(&mut worker, call, imports).await {
            Ok(reply) => {
                *slot = Reserved::Ready(Box::new(worker));
                Ok(reply)
            }
            Err(err) => {
                // The failed worker is killed, never reused; its successor
                // starts now, not on the next call's deadline.
                drop(worker);
                if let Some(bundle) = self.built_bundle() {
                    *slot = Reserved::Starting(self.start_in_background(bundle));
                }
                Err(err)
            }
        }
    }

    fn start_in_background(
        self: &Arc<Self>,
        bundle: Arc<Bundle>,
    ) -> JoinHandle<Result<Worker, RuntimeError>> {
        let pool = self.clone();
        tokio::spawn(async move { pool.spawn(&bundle).await }.in_current_span())
    }
}
