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
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::task::JoinHandle;
use tracing::Instrument as _;

use super::bundle::Bundle;
use super::imports::ServedImports;
use super::pool::{Worker, WorkerPool};
use crate::runtime::{ExportCall, ExportReply, Runtime, RuntimeError};

/// Workers kept for one caller's calls ([`WorkerPool::execute_reserved`]).
/// Call [`Self::close`] before cancelling the calls and [`Self::settle`]
/// before dropping it: a start under way would otherwise be cut off when
/// the process exits.
pub struct ReservedWorkers {
    slots: Vec<tokio::sync::Mutex<Reserved>>,
    /// One permit for each slot not in a call: a call holding one finds a
    /// slot free.
    free: tokio::sync::Semaphore,
    /// Set when the caller is done: no worker starts any more.
    closing: AtomicBool,
}

enum Reserved {
    Empty,
    /// Owned by the slot, not by the call that began it: a call that
    /// stops waiting leaves it to finish for the next call.
    Starting(JoinHandle<Result<Worker, RuntimeError>>),
    Ready(Box<Worker>),
}

impl ReservedWorkers {
    /// Starts no worker from now on: neither ahead nor as the successor of
    /// a call that failed or was cancelled (cancelling the calls in flight
    /// is what the caller does next).
    pub fn close(&self) {
        self.closing.store(true, Ordering::Relaxed);
    }

    fn closing(&self) -> bool {
        self.closing.load(Ordering::Relaxed)
    }

    /// Closes (see [`Self::close`]), waits up to `wait` for the calls and
    /// starts under way to end (not for a call that borrowed an idle
    /// pooled worker while its slot's start was under way: it holds no
    /// slot, and its worker goes back to the pool), then
    /// stops every worker. A start is waited for, not cut off: a container
    /// killed while its runtime creates it can leave parts of itself behind
    /// that the runtime no longer lists.
    pub async fn settle(&self, wait: Duration) {
        self.close();
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
        if tokio::time::timeout(wait, settled).await.is_err() {
            tracing::debug!(
                "a worker kept for lease renewals was still starting (or in a call) after {wait:.1?}: stopped as it was"
            );
        }
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
            closing: AtomicBool::new(false),
        })
    }

    /// Starts every reserved worker not started yet (or lost since), in
    /// the background, and returns at once. Starts none before a call has
    /// built the bundle (that call may be compiling the component, and the
    /// caller must not wait for it): the first call on a slot then takes
    /// an idle pooled worker or starts one.
    pub fn start_reserved(self: &Arc<Self>, reserved: &ReservedWorkers) {
        if reserved.closing() {
            return;
        }
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

    /// Runs `call` on a reserved worker: a ready one first, else an idle
    /// pooled worker while the slot's own start is still under way (the
    /// start goes on, for the next call), else the one being started, else
    /// an idle pooled worker taken into the slot, else one started now.
    /// When every reserved worker is in a call, `call`
    /// takes an idle pooled worker if there is one, and otherwise waits for
    /// a reserved one: it never starts a worker beside them. A slot whose
    /// worker failed or whose call was dropped starts a successor at once.
    ///
    /// # Errors
    /// As [`Self::execute`].
    pub async fn execute_reserved(
        self: &Arc<Self>,
        runtime: &Runtime,
        reserved: &ReservedWorkers,
        call: ExportCall,
    ) -> Result<ExportReply, RuntimeError> {
        let permit = match reserved.free.try_acquire() {
            Ok(permit) => permit,
            Err(_) => {
                let imports = ServedImports::new(self.capabilities()?);
                if let Some(worker) = self.take_idle() {
                    return self.run_and_keep(worker, call, imports).await;
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
            match best_free_slot(reserved) {
                Some(slot) => break slot,
                None => tokio::task::yield_now().await,
            }
        };
        let imports = ServedImports::new(self.capabilities()?);
        // A start under way may take a container's start-up (seconds on a
        // loaded machine) while the pooled worker the command uses sits
        // idle: a renewal waiting for the start could lose its lease. The
        // lease comes first: if the command's next call comes meanwhile,
        // it starts a worker of its own.
        if matches!(&*slot, Reserved::Starting(start) if !start.is_finished())
            && let Some(idle) = self.take_idle()
        {
            drop((slot, permit));
            return self.run_and_keep(idle, call, imports).await;
        }
        // A start that failed before this call came is retried once, here.
        let mut started_here = false;
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
                    let err = match started {
                        Ok(Ok(mut worker)) => {
                            if worker.is_alive() {
                                break worker;
                            }
                            // Died while it waited in the slot: a failed
                            // start, retried once like any other.
                            self.worker_error("the worker died before its first call".into())
                        }
                        Ok(Err(err)) => err,
                        Err(err) => {
                            self.worker_error(format!("the worker's start did not finish: {err}"))
                        }
                    };
                    if started_here {
                        return Err(err);
                    }
                    tracing::debug!("a reserved worker's start failed ({err}); trying again");
                }
                Reserved::Empty => {
                    if let Some(worker) = self.take_idle() {
                        break worker;
                    }
                    if reserved.closing() {
                        return Err(self.worker_error(
                            "the caller of these reserved workers is ending".into(),
                        ));
                    }
                    let bundle = self.bundle(runtime).await?;
                    *slot = Reserved::Starting(self.start_in_background(bundle));
                    started_here = true;
                }
            }
        };
        // A worker whose call failed, or was dropped (a renewal's
        // timeout), is killed, never reused; its successor starts now, not
        // on the next call's deadline.
        let mut refill = Refill {
            pool: self,
            closing: &reserved.closing,
            slot: &mut slot,
            kept: false,
        };
        let reply = self.call_on(&mut worker, call, imports).await?;
        *refill.slot = Reserved::Ready(Box::new(worker));
        refill.kept = true;
        Ok(reply)
    }

    pub(crate) fn start_in_background(
        self: &Arc<Self>,
        bundle: Arc<Bundle>,
    ) -> JoinHandle<Result<Worker, RuntimeError>> {
        let pool = self.clone();
        tokio::spawn(async move { pool.spawn(&bundle).await }.in_current_span())
    }
}

/// Starts a successor in a slot whose call ended without keeping its
/// worker: failed, or dropped mid-call.
struct Refill<'a> {
    pool: &'a Arc<WorkerPool>,
    closing: &'a AtomicBool,
    slot: &'a mut Reserved,
    kept: bool,
}

impl Drop for Refill<'_> {
    fn drop(&mut self) {
        // Not when the caller is ending (its calls are cancelled then),
        // nor off a runtime.
        if self.kept
            || self.closing.load(Ordering::Relaxed)
            || tokio::runtime::Handle::try_current().is_err()
        {
            return;
        }
        if let Some(bundle) = self.pool.built_bundle() {
            *self.slot = Reserved::Starting(self.pool.start_in_background(bundle));
        }
    }
}

/// The free slot to use, best first: a live ready worker, then a start
/// that has finished, then one under way, then an empty slot (or a dead
/// worker). `None` when every slot is locked for the moment.
fn best_free_slot(reserved: &ReservedWorkers) -> Option<tokio::sync::MutexGuard<'_, Reserved>> {
    let mut best: Option<(u8, tokio::sync::MutexGuard<'_, Reserved>)> = None;
    for slot in &reserved.slots {
        let Ok(mut slot) = slot.try_lock() else {
            continue;
        };
        let rank = match &mut *slot {
            Reserved::Ready(worker) => {
                if worker.is_alive() {
                    0
                } else {
                    3
                }
            }
            Reserved::Starting(start) => {
                if start.is_finished() {
                    1
                } else {
                    2
                }
            }
            Reserved::Empty => 3,
        };
        if best.as_ref().is_none_or(|(best, _)| rank < *best) {
            best = Some((rank, slot));
        }
        if rank == 0 {
            break;
        }
    }
    best.map(|(_, slot)| slot)
}
