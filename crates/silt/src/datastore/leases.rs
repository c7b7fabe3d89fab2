//! The coordinator's leases: acquired in sorted order with jittered waiting,
//! renewed in the background every TTL/3, released at the end.
//!
//! A lease that is taken over, or that could not be renewed for 0.75 × TTL
//! (the process was paused, the store was unreachable), is *lost*: the work
//! under it must stop, and the extension refuses to commit with it.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tracing::Instrument as _;

use super::client::Datastore;
use super::error::{DatastoreError, describe_holder, scope_label};
use super::signals::Signals;
use super::working_copy_lock::Claim;
use crate::config::LocksConfig;
use crate::runtime::bindings::exports::silt::datastore::sync::{SyncOptions, SyncReport};
use crate::runtime::bindings::silt::datastore::types::{
    Committer, Lease, LocalEdits, LockScope, ModelRef, Scope,
};
use crate::worker::ReservedWorkers;

/// The capability of an extension whose `put-file` and `remove-file`
/// commit with no lease (`committer::unleased`).
pub const LEASE_FREE_COMMITS: &str = "lease-free-commits";

/// Environment variable overriding `[locks] max_wait_ms`, in seconds.
pub const ENV_LOCK_MAX_WAIT: &str = "SILT_LOCK_MAX_WAIT";

/// How leases are taken and kept.
#[derive(Debug, Clone)]
pub struct LeasePolicy {
    /// Time to live after each renewal.
    pub ttl: Duration,
    /// How long to wait for a held lease.
    pub max_wait: Duration,
    /// Who is told when a lease is held and the command starts waiting.
    pub on_wait: Option<WaitNotice>,
}

/// Tells the user that a command waits for a held lease (the text says
/// whose, and for how long at most).
#[derive(Clone)]
pub struct WaitNotice(pub Arc<dyn Fn(&str) + Send + Sync>);

impl std::fmt::Debug for WaitNotice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WaitNotice")
    }
}

impl LeasePolicy {
    /// From `[locks]`, with `SILT_LOCK_MAX_WAIT` (seconds) overriding the wait.
    ///
    /// # Errors
    /// When `SILT_LOCK_MAX_WAIT` is not a number of seconds.
    pub fn from_config(config: &LocksConfig) -> anyhow::Result<Self> {
        let mut max_wait = Duration::from_millis(config.max_wait_ms);
        if let Some(value) = std::env::var_os(ENV_LOCK_MAX_WAIT) {
            let text = value.to_string_lossy();
            let seconds: f64 = text
                .trim()
                .parse()
                .ok()
                .filter(|s: &f64| s.is_finite() && *s >= 0.0)
                .ok_or_else(|| {
                    anyhow::anyhow!(
                        "{ENV_LOCK_MAX_WAIT}=`{text}` is not a number of seconds (e.g. 60 or 0.5)"
                    )
                })?;
            max_wait = Duration::from_secs_f64(seconds);
        }
        Ok(Self {
            ttl: Duration::from_millis(u64::from(config.ttl_ms)),
            max_wait,
            on_wait: None,
        })
    }

    fn ttl_ms(&self) -> u32 {
        self.ttl.as_millis().min(u128::from(u32::MAX)) as u32
    }
}

/// Leases held for one command.
pub struct LeaseSet {
    datastore: Arc<Datastore>,
    held: Arc<Mutex<Vec<Lease>>>,
    lost: watch::Receiver<Option<String>>,
    renewer: tokio::task::JoinHandle<()>,
    /// Out of process, the workers the renewals run on.
    reserved: Option<Arc<ReservedWorkers>>,
}

/// Workers kept for a command's renewals, at most: renewals of more leases
/// share them (and any idle pooled worker). A renewal on a kept worker is
/// a round trip (0.4 ms to a docker worker here) and two store requests.
const RESERVED_FOR_RENEWALS: usize = 4;

/// How long releasing waits for a reserved worker still starting, so that
/// it is stopped whole (a container start takes 0.25 s here).
const SETTLE_WAIT: Duration = Duration::from_secs(5);

/// Sorting key: namespace first, then models by label — one global order, so
/// two multi-model commands can never wait on each other in a cycle.
fn order(scope: &LockScope) -> (u8, String) {
    match scope {
        LockScope::Global => (0, String::new()),
        LockScope::Namespace => (1, String::new()),
        // Raw names, not the display label (which is cut and escaped).
        LockScope::Model(model) => (2, format!("{}\0{}", model.model_type, model.model_id)),
    }
}

impl LeaseSet {
    /// Takes leases on every scope, in sorted order, waiting for held ones
    /// up to `policy.max_wait` each; on failure releases what it took.
    ///
    /// # Errors
    /// [`DatastoreError::LockTimeout`] naming the holder, or any error of the extension.
    pub async fn acquire(
        datastore: Arc<Datastore>,
        mut scopes: Vec<LockScope>,
        policy: &LeasePolicy,
        signals: &mut Signals,
    ) -> anyhow::Result<Self> {
        scopes.sort_by_key(order);
        scopes.dedup_by_key(|scope| order(scope));
        // Renewal starts before the first lease: the leases taken first must
        // stay alive while we wait for the later ones.
        let held = Arc::new(Mutex::new(Vec::new()));
        let (lost_tx, lost) = watch::channel(None);
        // In the command's span: each renewal round is a span of its own
        // beside the command's other work.
        let reserved = datastore
            .reserve_workers(scopes.len().min(RESERVED_FOR_RENEWALS))
            .map(Arc::new);
        let renewer = tokio::spawn(
            renew_forever(
                datastore.clone(),
                held.clone(),
                reserved.clone(),
                policy.ttl,
                lost_tx,
            )
            .in_current_span(),
        );
        let set = Self {
            datastore,
            held,
            lost,
            renewer,
            reserved,
        };
        for scope in &scopes {
            // A signal or a lost lease ends the command promptly.
            let (attempt, promptly) = tokio::select! {
                result = acquire_one(&set.datastore, scope, policy) => (result, false),
                interrupted = signals.recv() => (Err(interrupted.into()), true),
                detail = set.lost() => (Err(DatastoreError::LockLost { operation: "acquire leases", detail }.into()), true),
            };
            match attempt {
                Ok(lease) => set.held.lock().expect("lease list").push(lease),
                Err(err) => {
                    // However we stopped waiting (timeout, signal, a lost
                    // lease), a namespace claim left while model holders
                    // drained must not keep model writers out for a TTL.
                    if matches!(scope, LockScope::Namespace) {
                        let withdraw = withdraw_namespace_claim(&set.datastore);
                        if promptly {
                            // Best effort within the exit's time.
                            let _ = tokio::time::timeout(RELEASE_WAIT, withdraw).await;
                        } else {
                            withdraw.await;
                        }
                    }
                    if promptly {
                        set.release_within(RELEASE_WAIT).await;
                    } else {
                        set.release().await;
                    }
                    return Err(err);
                }
            }
        }
        Ok(set)
    }

    /// The leases as last renewed (hand these to every fenced call).
    pub fn leases(&self) -> Vec<Lease> {
        self.held.lock().expect("lease list").clone()
    }

    /// `Err(lock lost)` once a lease is lost.
    ///
    /// # Errors
    /// [`DatastoreError::LockLost`].
    pub fn check(&self, operation: &'static str) -> Result<(), DatastoreError> {
        match self.lost.borrow().clone() {
            Some(detail) => Err(DatastoreError::LockLost { operation, detail }),
            None => Ok(()),
        }
    }

    /// Resolves when a lease is lost, with what happened.
    pub async fn lost(&self) -> String {
        let mut lost = self.lost.clone();
        // The watch guard is dropped before any further await, so that this
        // future (and `under_leases`) is `Send` and can be spawned.
        let reason = lost
            .wait_for(Option::is_some)
            .await
            .map(|reason| reason.clone().unwrap_or_default());
        match reason {
            Ok(reason) => reason,
            // The renewer ended without losing anything: never resolve.
            Err(_) => std::future::pending().await,
        }
    }

    /// Stops renewing and releases every lease still ours.
    pub async fn release(self) {
        close(self.reserved.as_deref());
        self.renewer.abort();
        let held = self.leases();
        tokio::join!(
            release_all(&self.datastore, &held),
            settle(self.reserved.as_deref(), SETTLE_WAIT)
        );
    }

    /// Releases what is still ours, best effort, waiting at most `wait`:
    /// after a signal or a lost lease silt exits promptly whatever the
    /// store does (a lease left behind expires after its TTL).
    pub async fn release_within(self, wait: Duration) {
        close(self.reserved.as_deref());
        self.renewer.abort();
        let held = self.leases();
        // Both within `wait` (`settle` says itself when it ran out).
        let (released, ()) = tokio::join!(
            tokio::time::timeout(wait, release_all(&self.datastore, &held)),
            settle(self.reserved.as_deref(), wait)
        );
        if released.is_err() {
            tracing::warn!(
                "the store did not answer within {wait:.1?}: leases left to expire after their TTL"
            );
        }
    }
}

/// Starts no more reserved workers: the command ends (released, or a
/// lease was lost). Called before the renewer is aborted, so that not even
/// the successor of a renewal the abort cancels may start.
fn close(reserved: Option<&ReservedWorkers>) {
    if let Some(reserved) = reserved {
        reserved.close();
    }
}

/// Stops the reserved workers, waiting up to `wait` for one still starting.
async fn settle(reserved: Option<&ReservedWorkers>, wait: Duration) {
    if let Some(reserved) = reserved {
        reserved.settle(wait).await;
    }
}

/// One lease, waiting for its holder as the policy allows: one
/// `lease.acquire` span (each try is an `extension.call` in it).
async fn acquire_one(
    datastore: &Datastore,
    scope: &LockScope,
    policy: &LeasePolicy,
) -> anyhow::Result<Lease> {
    let span = tracing::info_span!(
        "lease.acquire",
        silt.lease.scope = %scope_label(scope),
        silt.lease.tries = tracing::field::Empty,
        silt.lease.waited_ms = tracing::field::Empty,
        otel.status_code = tracing::field::Empty,
    );
    let started = Instant::now();
    let mut tries = 0u32;
    let result = acquire_waiting(datastore, scope, policy, &mut tries)
        .instrument(span.clone())
        .await;
    span.record("silt.lease.tries", tries);
    span.record("silt.lease.waited_ms", started.elapsed().as_millis() as u64);
    if result.is_err() {
        span.record("otel.status_code", "ERROR");
    }
    result
}

async fn acquire_waiting(
    datastore: &Datastore,
    scope: &LockScope,
    policy: &LeasePolicy,
    tries: &mut u32,
) -> anyhow::Result<Lease> {
    let started = Instant::now();
    let mut attempt: u32 = 0;
    loop {
        *tries += 1;
        let err = match datastore.acquire(scope, policy.ttl_ms()).await {
            Ok(lease) => return Ok(lease),
            Err(err) => err,
        };
        let holder = match err.downcast_ref::<DatastoreError>() {
            Some(DatastoreError::LockHeld { info, .. }) => describe_holder(info),
            // A lost race on the lock object: just try again.
            Some(DatastoreError::Raced { .. }) => "changing hands".to_owned(),
            _ => return Err(err),
        };
        let waited = started.elapsed();
        if waited >= policy.max_wait {
            let release_hint = match scope {
                LockScope::Model(model) => {
                    format!(" --model {}", super::model_label(model))
                }
                _ => " --namespace".to_owned(),
            };
            return Err(DatastoreError::LockTimeout {
                scope: scope_label(scope),
                holder,
                waited,
                release_hint,
            }
            .into());
        }
        if attempt == 0 {
            tracing::info!("waiting for the lease on {}: {holder}", scope_label(scope));
            if let Some(notice) = &policy.on_wait {
                (notice.0)(&format!(
                    "waiting for the lease on {}: {holder}; up to {} s more ([locks] max_wait_ms, or SILT_LOCK_MAX_WAIT in seconds)",
                    scope_label(scope),
                    (policy.max_wait - waited).as_secs_f64().ceil()
                ));
            }
            tracing::event!(target: crate::store::METRICS_TARGET, tracing::Level::INFO, { monotonic_counter.silt.lease.waits = 1u64 });
        }
        let delay = backoff(attempt).min(policy.max_wait - waited);
        attempt = attempt.saturating_add(1);
        tokio::time::sleep(delay).await;
    }
}

/// A namespace claim we made while waiting for model holders to drain must
/// not block model writers after we give up.
async fn withdraw_namespace_claim(datastore: &Datastore) {
    if let Ok(Some(info)) = datastore.inspect(&LockScope::Namespace).await
        && info.holder.name == datastore.holder().name
        && info.holder.host == datastore.holder().host
        && info.holder.pid == datastore.holder().pid
    {
        let _ = datastore.force_release(&info).await;
    }
}

/// Full jitter over 50 ms × 1.5^attempt, capped at 1 s.
fn backoff(attempt: u32) -> Duration {
    let cap = (50.0 * 1.5f64.powi(attempt.min(20) as i32)).min(1000.0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    // Cheap jitter: mix the clock's nanoseconds with our pid.
    let mixed = (u64::from(nanos) ^ (u64::from(std::process::id()) << 16))
        .wrapping_mul(0x9E37_79B9_7F4A_7C15);
    let fraction = (mixed >> 11) as f64 / (1u64 << 53) as f64;
    Duration::from_secs_f64((cap * (0.2 + 0.8 * fraction)) / 1e3)
}

async fn release_all(datastore: &Datastore, held: &[Lease]) {
    for lease in held.iter().rev() {
        let span = tracing::info_span!(
            "lease.release",
            silt.lease.scope = %scope_label(&lease.scope),
            otel.status_code = tracing::field::Empty,
        );
        if let Err(err) = datastore.release(lease).instrument(span.clone()).await {
            span.record("otel.status_code", "ERROR");
            tracing::warn!(
                "could not release the lease on {}: {err:#}",
                scope_label(&lease.scope)
            );
        }
    }
}

/// Lease renewals in flight at once.
const RENEWALS_IN_FLIGHT: usize = 16;

async fn renew_forever(
    datastore: Arc<Datastore>,
    held: Arc<Mutex<Vec<Lease>>>,
    reserved: Option<Arc<ReservedWorkers>>,
    ttl: Duration,
    lost: watch::Sender<Option<String>>,
) {
    let interval = ttl / 3;
    let give_up_after = ttl.mul_f64(0.75);
    let mut last_renewed = Instant::now();
    // Out of process, a renewal must not wait for a worker to start (a
    // container: a quarter of a second here, seconds under load), which it
    // would whenever the command's own call holds the pooled worker. Its
    // reserved workers start halfway to the first renewal, whether or not
    // a lease is held yet (the command's first call may itself be waiting
    // for its worker; a command that ends sooner starts none), and again
    // after each round for any slot whose worker was lost.
    let start_reserved = || {
        if let Some(reserved) = &reserved {
            datastore.start_reserved(reserved);
        }
    };
    // Rounds begin an interval after the previous one *began*, not after
    // it ended. Silence counts from a round's start: with the pause taken
    // after a round's end, the next round had 0.42 TTL (0.75 − 1/3) less
    // the previous round's length to answer. Now each round has its own
    // interval (a renewal's timeout), and a round that failed fast is
    // tried once more before the limit.
    let mut next_round = last_renewed + interval;
    if reserved.is_some() {
        tokio::time::sleep(interval / 2).await;
        start_reserved();
    }
    loop {
        // Wake at the next renewal, or when silence would reach the limit.
        let wake = next_round.min(last_renewed + give_up_after);
        tokio::time::sleep_until(tokio::time::Instant::from_std(wake)).await;
        // Checked before renewing: after a pause (SIGSTOP, a suspended VM)
        // someone may already have taken over, and a renewal that happens to
        // succeed does not undo what they did meanwhile.
        let silent = last_renewed.elapsed();
        if silent >= give_up_after {
            close(reserved.as_deref());
            let _ = lost.send(Some(format!(
                "the lease was not renewed for {:.1} s (TTL {:.1} s; the process was paused or the store unreachable), so another process may hold it now",
                silent.as_secs_f64(),
                ttl.as_secs_f64()
            )));
            return;
        }
        let leases = held.lock().expect("lease list").clone();
        let round = tracing::info_span!(
            "lease.renew",
            silt.lease.count = leases.len(),
            otel.status_code = tracing::field::Empty,
        );
        let mut all_renewed = true;
        // Together, a bounded number at a time: a command on hundreds of
        // models renews them all well within the interval, even on a slow
        // store (one after another, 120 leases at 6 ms a request outlast
        // the 0.75 of a 1.5 s TTL a lease may go unrenewed:
        // `tests/leases.rs`).
        let round_started = Instant::now();
        next_round = round_started + interval;
        let slots = Arc::new(tokio::sync::Semaphore::new(RENEWALS_IN_FLIGHT));
        let mut renewals = tokio::task::JoinSet::new();
        for (index, lease) in leases.into_iter().enumerate() {
            let (datastore, slots) = (datastore.clone(), slots.clone());
            let reserved = reserved.clone();
            renewals.spawn(
                async move {
                    let _slot = slots.acquire_owned().await;
                    // A renewal that hangs must not hold off the self-fence.
                    // On a reserved worker, an idle pooled one, or the
                    // first reserved one to be free. A worker starts on a
                    // renewal's deadline only for a reserved slot that has
                    // none (its start failed; no bundle yet at the start).
                    let renewal = tokio::time::timeout(
                        interval,
                        datastore.renew(&lease, reserved.as_deref()),
                    )
                    .await
                    .unwrap_or_else(|_| Err(anyhow::anyhow!("no answer within {interval:.1?}")));
                    (index, lease, renewal)
                }
                .instrument(round.clone()),
            );
        }
        // A round that outlasts the silence allowed (a hung store, more
        // leases than slots) is a lost lease now, not when it ends.
        let give_up_at = tokio::time::Instant::from_std(last_renewed + give_up_after);
        // Dropping the set (a lost lease, or this task aborted) cancels the rest.
        loop {
            let done = tokio::select! {
                done = renewals.join_next() => done,
                () = tokio::time::sleep_until(give_up_at) => {
                    round.record("otel.status_code", "ERROR");
                    close(reserved.as_deref());
                    let _ = lost.send(Some(format!(
                        "the lease was not renewed for {:.1} s (TTL {:.1} s; the store did not answer in time), so another process may hold it now",
                        last_renewed.elapsed().as_secs_f64(),
                        ttl.as_secs_f64()
                    )));
                    return;
                }
            };
            let Some(done) = done else {
                break;
            };
            let (index, lease, renewal) = match done {
                Ok(done) => done,
                Err(err) => {
                    tracing::warn!("a lease renewal failed to run: {err}");
                    all_renewed = false;
                    continue;
                }
            };
            match renewal {
                Ok(renewed) => held.lock().expect("lease list")[index] = renewed,
                Err(err) => match err.downcast_ref::<DatastoreError>() {
                    Some(DatastoreError::LockLost { detail, .. }) => {
                        round.record("otel.status_code", "ERROR");
                        close(reserved.as_deref());
                        let _ = lost.send(Some(format!("{}: {detail}", scope_label(&lease.scope))));
                        return;
                    }
                    _ => {
                        all_renewed = false;
                        tracing::warn!(
                            "could not renew the lease on {} (will retry): {err:#}",
                            scope_label(&lease.scope)
                        );
                    }
                },
            }
        }
        if !all_renewed {
            round.record("otel.status_code", "ERROR");
        }
        drop(round);
        start_reserved();
        // From when the round began: a lease renewed early in a long round
        // is that much older.
        if all_renewed {
            last_renewed = round_started;
        }
    }
}

/// How long releasing leases may hold up an exit after a signal or a lost
/// lease.
const RELEASE_WAIT: Duration = Duration::from_millis(700);

/// Runs `work` under leases on `scopes`: acquires them (waiting as the policy
/// allows), runs `work` until it finishes, a lease is lost or SIGINT/SIGTERM
/// arrives, then releases every lease still ours. On loss or signal, `work`
/// is dropped where it stands (a commit in flight lands whole or not at all).
///
/// # Errors
/// The work's error, [`DatastoreError::LockLost`], [`super::Interrupted`],
/// or a failure to acquire.
pub async fn under_leases<T>(
    datastore: &Arc<Datastore>,
    scopes: Vec<LockScope>,
    policy: &LeasePolicy,
    work: impl AsyncFnOnce(&LeaseSet) -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    let mut signals = Signals::listen()?;
    let leases = LeaseSet::acquire(datastore.clone(), scopes, policy, &mut signals).await?;
    let (result, promptly) = tokio::select! {
        result = work(&leases) => (result, false),
        detail = leases.lost() => (Err(DatastoreError::LockLost { operation: "lease", detail }.into()), true),
        interrupted = signals.recv() => (Err(interrupted.into()), true),
    };
    if promptly {
        // Exit within a second of the signal or the loss.
        leases.release_within(RELEASE_WAIT).await;
    } else {
        leases.release().await;
    }
    result
}

/// Runs `commit`, one commit to `model`, the cheapest way the extension
/// allows: with no lease when it declares [`LEASE_FREE_COMMITS`] (no lock
/// object: three requests on the common path), else under the model's
/// lease. An unleased commit refused because someone holds the model
/// (`lock-held`), because it lost every race for the model's partition to
/// other writers (`precondition-failed`: the lease makes them queue), or
/// because this datastore cannot take one (`not-supported`, e.g. one
/// without a change journal), is made again under the lease, waiting for
/// it as any writer does. Nothing was committed by a refused attempt.
///
/// The model's working-copy lock is tried (never waited for: a stopped
/// process may hold it for good) after the lease, as every command takes
/// them, and held around `commit` when free; `commit` hears whether it is
/// (the extension may then bring this copy along with its commit). The
/// lock decides only that: a busy one changes neither the path nor the
/// requests of the commit.
///
/// # Errors
/// As [`under_leases`], and as `commit`.
pub async fn commit_one<T, F, Commit>(
    datastore: &Arc<Datastore>,
    model: &ModelRef,
    policy: &LeasePolicy,
    commit: F,
) -> anyhow::Result<T>
where
    F: Fn(Committer, WorkingCopy) -> Commit,
    Commit: Future<Output = anyhow::Result<T>>,
{
    let locks = datastore.working_copy_locks();
    let try_working_copy = || {
        let held = locks.try_foreground(model)?;
        let state = match &held {
            Some(_) => WorkingCopy::Held,
            None => WorkingCopy::Busy,
        };
        anyhow::Ok((held, state))
    };
    if datastore.supports(LEASE_FREE_COMMITS) {
        let (_held, working_copy) = try_working_copy()?;
        let unleased = Committer::Unleased(super::holder::current());
        // Honoured as under a lease: out at once (nothing is committed
        // that was not acknowledged; an upload left behind is an orphan).
        let mut signals = Signals::listen()?;
        let attempt = tokio::select! {
            attempt = commit(unleased, working_copy) => attempt,
            interrupted = signals.recv() => return Err(interrupted.into()),
        };
        match attempt {
            Err(err) if refused_unleased(&err) => {
                tracing::debug!("unleased commit refused ({err:#}); taking the model's lease");
            }
            done => return done,
        }
    }
    let scopes = vec![LockScope::Model(model.clone())];
    under_leases(datastore, scopes, policy, async |leases| {
        let (_held, working_copy) = try_working_copy()?;
        commit(Committer::Leased(leases.leases()[0].clone()), working_copy).await
    })
    .await
}

/// Whether a commit holds its model's working-copy lock (see [`commit_one`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkingCopy {
    /// Held: nothing else of this working copy touches the model meanwhile.
    Held,
    /// Another process of this working copy holds it.
    Busy,
}

/// True when an unleased commit was refused in a way the model's lease
/// answers: someone holds it, others kept winning the race, or the
/// datastore commits only under it.
fn refused_unleased(err: &anyhow::Error) -> bool {
    matches!(
        err.downcast_ref::<DatastoreError>(),
        Some(
            DatastoreError::LockHeld { .. }
                | DatastoreError::Raced { .. }
                | DatastoreError::NotSupported { .. }
        )
    )
}

/// Pushes the local changes of `models` under their leases (taken in
/// order, released after), holding their working-copy locks inside them:
/// what `silt datastore sync --push` does once it knows which models
/// changed. `edits`: `ours` commits edits on top of newer versions; else
/// such an edit is a conflict.
///
/// # Errors
/// As [`under_leases`], and when the push fails.
pub async fn push_under_leases(
    datastore: &Arc<Datastore>,
    models: Vec<ModelRef>,
    policy: &LeasePolicy,
    edits: LocalEdits,
) -> anyhow::Result<SyncReport> {
    let scope = Scope::Models(models.clone());
    let scopes = models.iter().cloned().map(LockScope::Model).collect();
    under_leases(datastore, scopes, policy, async |leases| {
        // Push stamps these models' sidecars: leases first, then the
        // working copy (the order every command keeps, so none deadlock).
        let _working_copy = datastore
            .working_copy_locks()
            .foreground(Claim::Models(&models))
            .await?;
        leases.check("push")?;
        datastore
            .push(&SyncOptions {
                scope,
                leases: leases.leases(),
                dry_run: false,
                fetch_missing: false,
                local_edits: edits,
            })
            .await
    })
    .await
}
