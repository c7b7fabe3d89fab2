//! The scenarios, run for one extension on one shared store, and the
//! side-by-side report.

use std::collections::BTreeMap;
use std::time::Instant;

use serde::Serialize;
use silt::datastore::{
    DatastoreError, collect_garbage, commit_one, host_state_dir, remove_leftover_downloads,
    under_leases,
};
use silt::runtime::bindings::exports::silt::datastore::hydration::HydrateOptions;
use silt::runtime::bindings::exports::silt::datastore::sync::SyncOptions;
use silt::runtime::bindings::silt::datastore::types::{
    Base, LocalEdits, LockScope, ModelRef, Scope,
};

use std::sync::Arc;

use silt::store::{CountsSnapshot, ObjectKey, ObjectStore, PutMode};

use crate::fixture::{self, Clone, model};
use crate::lock_watch::Hold;
use crate::{Shared, Sizes, Traffic};

const NAMESPACE_LOCK: &str = "_locks/namespace.json";
/// Versions planted for gc to expire.
pub const GC_ENTRIES: usize = 7;
/// The model written by scenario 1 and compared at the end.
pub const WRITE_TARGET: usize = 1;
/// The model scenario 3's writers share.
const SHARED_MODEL: usize = 2;
/// Scenario 2's writers take models from here on.
pub const DISTINCT_FROM: usize = 10;

/// Everything measured for one extension.
#[derive(Serialize)]
pub struct ExtensionResult {
    pub extension: String,
    populate: Vec<Populate>,
    single_write: Vec<SingleWrite>,
    distinct_models: Vec<Concurrent>,
    same_model: Concurrent,
    noop_sync: Timed,
    /// The no-op sync as the command runs it: the leftover check, then the pull.
    noop_sync_command: Timed,
    /// The same with the walk for leftovers due (once a day, or after a
    /// killed command).
    noop_sync_walk_due: Timed,
    noop_full_check: Timed,
    /// The no-op sync once the journal's lag has passed since the last
    /// commit (p50 of [`SETTLED_PULLS`]): no entry listed again. `None`
    /// under `--quick`, and for an extension without a journal.
    noop_sync_settled: Option<Timed>,
    cold_clone_one_model: ColdClone,
    gc: Gc,
    /// Scenarios 1–6 again, each near the store and far from it.
    pub near_and_far: Vec<crate::distance::NearAndFar>,
    /// Model → (name, sha256) of its live files: every extension must agree.
    fingerprint: BTreeMap<String, Vec<(String, String)>>,
}

#[derive(Serialize)]
struct Populate {
    objects: usize,
    seconds: f64,
}

/// Scenario 1 at one size.
#[derive(Serialize)]
struct SingleWrite {
    objects: usize,
    write_ms_p50: f64,
    /// `None` when no write took the model's lease (unleased commits).
    model_lock_ms_p50: Option<f64>,
    namespace_lock_ms_p50: Option<f64>,
    per_write: Traffic,
    /// Requests one after another in a write (p50).
    in_sequence_p50: usize,
}

/// Scenarios 2 and 3.
#[derive(Serialize)]
pub struct Concurrent {
    pub writers: usize,
    pub succeeded: usize,
    pub lock_timeouts: usize,
    pub other_errors: Vec<String>,
    pub lost_updates: Option<usize>,
    pub wall_ms: f64,
    writer_ms_p50: f64,
    writer_ms_p99: f64,
    namespace_lock_ms_max: Option<f64>,
    pub traffic: Traffic,
    /// Requests one after another, all writers together.
    pub in_sequence: usize,
    /// The store's floor for the same requests (scenario 2 only): see
    /// [`store_floor`].
    store_floor_ms: Option<f64>,
    /// Names of the writes that reported success.
    #[serde(skip)]
    landed: Vec<String>,
}

/// One timed operation and its traffic.
#[derive(Serialize)]
pub struct Timed {
    /// Wall time.
    pub ms: f64,
    /// Requests and bytes.
    pub traffic: Traffic,
    /// Requests made one after another (see [`Shared::timeline`]).
    pub in_sequence: usize,
}

/// Pulls timed once the journal has settled (their p50 is reported).
const SETTLED_PULLS: usize = 5;

/// A pull of everything that fetches no missing file and keeps local edits.
fn pull_everything() -> SyncOptions {
    SyncOptions {
        scope: Scope::All,
        leases: Vec::new(),
        dry_run: false,
        fetch_missing: false,
        local_edits: LocalEdits::Keep,
    }
}

/// A pull of everything by `clone` (no missing files fetched), timed, with
/// its traffic and its summary.
pub async fn timed_pull(clone: &Clone, shared: &Shared) -> (Timed, String) {
    let pull = pull_everything();
    shared.timeline.take();
    let before = shared.counts();
    let started = Instant::now();
    let report = clone.datastore.pull(&pull).await.unwrap();
    let timed = Timed {
        ms: ms(started),
        traffic: Traffic::between(before, shared.counts()),
        in_sequence: shared.timeline.take_in_sequence(),
    };
    (timed, report.summary)
}

/// A no-op pull of everything as `silt datastore sync --pull` runs it:
/// first the check for a killed download's leftovers (a walk of the
/// working copy only when one is due), then the pull. With `walk_due`, the
/// walk is made due first (as once a day, or after a killed command).
pub async fn command_pull(clone: &Clone, shared: &Shared, walk_due: bool) -> Timed {
    // The host's state, reached without following a link.
    let host_state =
        silt::beneath::Beneath::create(&host_state_dir(&clone.locations.local_dir)).unwrap();
    let stamp = "transfers/swept";
    if walk_due {
        // Missing when nothing walked before (this clone's pulls were calls).
        let _ = host_state.remove_file(stamp);
    }
    shared.timeline.take();
    let before = shared.counts();
    let started = Instant::now();
    remove_leftover_downloads(&clone.datastore, &Scope::All);
    clone.datastore.pull(&pull_everything()).await.unwrap();
    // The walk, when due, ran to its end and was recorded.
    assert_eq!(
        host_state.kind(stamp).unwrap(),
        Some(silt::beneath::EntryKind::File),
        "no walk recorded at {}",
        host_state.join(stamp).display()
    );
    Timed {
        ms: ms(started),
        traffic: Traffic::between(before, shared.counts()),
        in_sequence: shared.timeline.take_in_sequence(),
    }
}

/// Whether `clone`'s extension keeps a journal progress (silt's does).
fn has_journal(clone: &Clone) -> bool {
    let local = silt::beneath::Beneath::open(&clone.locations.local_dir).unwrap();
    // Not there (nor its directory) for an extension without one.
    matches!(
        local.kind(JOURNAL_PROGRESS),
        Ok(Some(silt::beneath::EntryKind::File))
    )
}

/// The no-op pull once no commit is younger than the journal's lag (so no
/// entry is listed again), waiting from `last_commit` until then: the p50
/// of [`SETTLED_PULLS`] pulls, with the median pull's traffic.
async fn settled_pull(clone: &Clone, shared: &Shared, last_commit: Instant) -> Timed {
    // The lag, and 5 s for the entries' stamps and this machine's clock.
    let settled_after =
        std::time::Duration::from_millis(silt_extension::journal::HORIZON_LAG_MS + 5_000);
    if let Some(wait) = settled_after.checked_sub(last_commit.elapsed()) {
        eprintln!(
            "waiting {:.0} s for the journal to settle",
            wait.as_secs_f64()
        );
        tokio::time::sleep(wait).await;
    }
    // The first pull after the wait moves the horizon past the last entries.
    timed_pull(clone, shared).await;
    let mut pulls = Vec::new();
    for _ in 0..SETTLED_PULLS {
        pulls.push(timed_pull(clone, shared).await.0);
    }
    pulls.sort_by(|a, b| a.ms.total_cmp(&b.ms));
    pulls.swap_remove(SETTLED_PULLS / 2)
}

/// Where silt's extension keeps its journal progress in a working copy.
const JOURNAL_PROGRESS: &str = ".silt/journal/data.json";

/// Makes `clone`'s next pull a full check (as every ten minutes), by
/// dating its journal progress back; nothing for an extension without one.
pub fn force_full_check(clone: &Clone) {
    // Inside the working copy, whose directories the extension writes:
    // resolved beneath it, never through a link.
    let local = silt::beneath::Beneath::open(&clone.locations.local_dir).unwrap();
    let progress = JOURNAL_PROGRESS;
    let Ok(bytes) = local.read(progress, 1 << 20) else {
        return;
    };
    let mut value: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    value["full_check_ms"] = 0.into();
    local
        .write_atomic(progress, value.to_string().as_bytes())
        .unwrap();
}

/// Scenario 5.
#[derive(Serialize)]
pub struct ColdClone {
    pub ms: f64,
    pub traffic: Traffic,
    pub in_sequence: usize,
    data_bytes_in_store: u64,
    fraction_of_data_bytes: f64,
}

/// Scenario 6.
#[derive(Serialize)]
pub struct Gc {
    pub ms: f64,
    pub entries_expired: u64,
    model_locks: usize,
    model_lock_ms_max: f64,
    namespace_lock_ms: Option<f64>,
    pub traffic: Traffic,
    pub in_sequence: usize,
}

pub(crate) fn percentile(samples: &[f64], p: f64) -> f64 {
    let mut sorted = samples.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

pub(crate) fn ms(since: Instant) -> f64 {
    since.elapsed().as_secs_f64() * 1e3
}

/// Holds of the namespace lock and of model locks among `holds`.
fn split(holds: &[Hold]) -> (Vec<f64>, Vec<f64>) {
    let millis = |h: &Hold| h.held.as_secs_f64() * 1e3;
    (
        holds
            .iter()
            .filter(|h| h.key == NAMESPACE_LOCK)
            .map(millis)
            .collect(),
        holds
            .iter()
            .filter(|h| h.key != NAMESPACE_LOCK)
            .map(millis)
            .collect(),
    )
}

/// What `silt data put` does: one commit, unleased when the extension
/// allows (else under the model's lease, taken and released).
pub(crate) async fn put(
    clone: &Clone,
    target: &ModelRef,
    name: &str,
    staged: &str,
) -> anyhow::Result<()> {
    commit_one(
        &clone.datastore,
        target,
        &clone.policy,
        |by, _| async move {
            clone
                .datastore
                .put_file(target, name, staged, &Base::Any, &by)
                .await
        },
    )
    .await
    .map(|_| ())
}

/// Stages 1 KiB in `clone`'s local copy; returns its cache path.
pub(crate) fn stage(clone: &Clone, tag: usize) -> String {
    let staged = format!(".silt/bench-input-{tag}");
    std::fs::create_dir_all(clone.locations.local_dir.join(".silt")).unwrap();
    std::fs::write(
        clone.locations.local_dir.join(&staged),
        fixture::content(usize::MAX, tag, 9),
    )
    .unwrap();
    staged
}

fn is_lock_timeout(err: &anyhow::Error) -> bool {
    matches!(
        err.downcast_ref::<DatastoreError>(),
        Some(DatastoreError::LockTimeout { .. } | DatastoreError::LockHeld { .. })
    )
}

/// `writers` clones each put one file at once, into `target(i)`.
pub async fn concurrent(
    extension: &str,
    shared: &Shared,
    writers: usize,
    target: impl Fn(usize) -> ModelRef,
    tag: &str,
    floor: Floor,
) -> Concurrent {
    let mut clones = Vec::new();
    for i in 0..writers {
        let clone = fixture::writer_clone(extension, shared, i).await;
        let staged = stage(&clone, i);
        clones.push((clone, staged, target(i)));
    }
    shared.locks.take();
    shared.timeline.take();
    let before = shared.counts();
    let started = Instant::now();
    let tasks: Vec<_> = clones
        .into_iter()
        .enumerate()
        .map(|(i, (clone, staged, target))| {
            let name = format!("{tag}-{i}");
            tokio::spawn(async move {
                let began = Instant::now();
                let result = put(&clone, &target, &name, &staged).await;
                (ms(began), result.map(|()| name), clone)
            })
        })
        .collect();
    let mut times = Vec::new();
    let mut landed = Vec::new();
    let mut lock_timeouts = 0;
    let mut other_errors = Vec::new();
    for task in tasks {
        let (took, outcome, _clone) = task.await.unwrap();
        times.push(took);
        match outcome {
            Ok(name) => landed.push(name),
            Err(err) if is_lock_timeout(&err) => lock_timeouts += 1,
            Err(err) => other_errors.push(format!("{err:#}")),
        }
    }
    let wall_ms = ms(started);
    let in_sequence = shared.timeline.take_in_sequence();
    let (namespace, _) = split(&shared.locks.take());
    let after = shared.counts();
    let store_floor_ms = match floor {
        Floor::Measure => Some(store_floor(&shared.floor, &before, &after, writers, tag).await),
        Floor::Skip => None,
    };
    Concurrent {
        writers,
        succeeded: landed.len(),
        lock_timeouts,
        other_errors,
        lost_updates: None,
        wall_ms,
        writer_ms_p50: percentile(&times, 0.5),
        writer_ms_p99: percentile(&times, 0.99),
        namespace_lock_ms_max: namespace.into_iter().reduce(f64::max),
        traffic: Traffic::between(before, after),
        in_sequence,
        store_floor_ms,
        landed,
    }
}

/// Whether a concurrent scenario also measures the store's floor.
#[derive(Clone, Copy)]
pub enum Floor {
    Measure,
    Skip,
}

/// The store's own floor for what `writers` concurrent writers just did:
/// the same number of requests of each kind (between `before` and
/// `after`), with 1 KiB bodies, made straight to the store (the same
/// server and client stack, a prefix of its own) by `writers` tasks at
/// once, each making its share one after another as a writer does. No
/// extension, no index, no clone: what those requests cost on this server
/// at that concurrency, so a wall time close to it is the store's ceiling.
/// Returns the wall time in ms.
async fn store_floor(
    store: &Arc<dyn ObjectStore>,
    before: &CountsSnapshot,
    after: &CountsSnapshot,
    writers: usize,
    tag: &str,
) -> f64 {
    #[derive(Clone, Copy)]
    enum Op {
        Get,
        Head,
        Put,
        Delete,
        List,
    }
    let mix = [
        (Op::Get, after.get - before.get),
        (Op::Head, after.head - before.head),
        (Op::Put, after.put - before.put),
        (Op::Delete, after.delete - before.delete),
        (Op::List, after.list - before.list),
    ];
    // Request j goes to task j % writers: each task gets an even share of
    // every kind.
    let mut shares: Vec<Vec<Op>> = vec![Vec::new(); writers];
    let mut next = 0;
    for (op, count) in mix {
        for _ in 0..count {
            shares[next % writers].push(op);
            next += 1;
        }
    }
    let body = vec![7u8; 1024];
    let key = |name: String| ObjectKey::new(&format!("{tag}/{name}")).unwrap();
    for i in 0..writers {
        store
            .put(&key(format!("read-{i}")), body.clone(), PutMode::Overwrite)
            .await
            .unwrap();
    }
    let started = Instant::now();
    let tasks: Vec<_> = shares
        .into_iter()
        .enumerate()
        .map(|(i, ops)| {
            let (store, body) = (store.clone(), body.clone());
            let read = key(format!("read-{i}"));
            let prefix = format!("{tag}/");
            let written: Vec<ObjectKey> =
                (0..ops.len()).map(|n| key(format!("w-{i}-{n}"))).collect();
            tokio::spawn(async move {
                for (n, op) in ops.into_iter().enumerate() {
                    match op {
                        Op::Get => drop(store.get(&read, None).await.unwrap()),
                        Op::Head => drop(store.head(&read).await.unwrap()),
                        Op::Put => drop(
                            store
                                .put(&written[n], body.clone(), PutMode::Create)
                                .await
                                .unwrap(),
                        ),
                        // A key of this task's, written or not: an
                        // unconditional delete costs the server the same.
                        Op::Delete => store.delete(&written[n], None).await.unwrap(),
                        Op::List => drop(store.list(&prefix, None, 1000).await.unwrap()),
                    }
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    ms(started)
}

/// Runs every scenario for `extension`.
pub async fn run_all(extension: &str, shared: &Shared, sizes: &Sizes) -> ExtensionResult {
    let main = fixture::first_clone(extension, shared).await;
    let mut populate = Vec::new();
    let mut single_write = Vec::new();
    let mut models_so_far = 0;
    let mut populated_seconds = 0.0;
    let largest = *sizes.models.last().unwrap();
    let staged = stage(&main, 0);
    for &models in &sizes.models {
        let seconds = main
            .grow(models_so_far, models, sizes.files_per_model)
            .await;
        models_so_far = models;
        // From empty to this size (the steps before included).
        populated_seconds += seconds;
        let objects = models * sizes.files_per_model;
        eprintln!("{extension}: {objects} objects populated in {populated_seconds:.1} s");
        populate.push(Populate {
            objects,
            seconds: populated_seconds,
        });

        // 1. One write of 1 KiB into one model, `writes` times.
        let target = model(WRITE_TARGET);
        let (mut writes, mut model_holds, mut namespace_holds) =
            (Vec::new(), Vec::new(), Vec::new());
        put(&main, &target, &format!("warm-{objects}"), &staged)
            .await
            .unwrap();
        shared.locks.take();
        let before = shared.counts();
        let mut chains = Vec::new();
        for i in 0..sizes.writes {
            shared.timeline.take();
            let started = Instant::now();
            put(&main, &target, &format!("w-{objects}-{i}"), &staged)
                .await
                .unwrap();
            writes.push(ms(started));
            chains.push(shared.timeline.take_in_sequence() as f64);
            let (namespace, model) = split(&shared.locks.take());
            model_holds.extend(model);
            namespace_holds.extend(namespace);
        }
        let traffic = Traffic::between(before, shared.counts());
        let n = sizes.writes as u64;
        single_write.push(SingleWrite {
            objects,
            write_ms_p50: percentile(&writes, 0.5),
            model_lock_ms_p50: (!model_holds.is_empty()).then(|| percentile(&model_holds, 0.5)),
            namespace_lock_ms_p50: (!namespace_holds.is_empty())
                .then(|| percentile(&namespace_holds, 0.5)),
            per_write: Traffic {
                requests: traffic.requests / n,
                bytes_down: traffic.bytes_down / n,
                bytes_up: traffic.bytes_up / n,
            },
            in_sequence_p50: percentile(&chains, 0.5) as usize,
        });
        eprintln!("{extension}: scenario 1 at {objects} objects done");
    }
    main.plant_old_versions(GC_ENTRIES, 1).await;

    // 2. Concurrent writers on distinct models, each on its own clone.
    let mut distinct_models = Vec::new();
    for writers in [4, 16] {
        let result = concurrent(
            extension,
            shared,
            writers,
            |i| model(DISTINCT_FROM + i),
            &format!("d{writers}"),
            Floor::Measure,
        )
        .await;
        eprintln!("{extension}: scenario 2 with {writers} writers done");
        distinct_models.push(result);
    }

    // 3. Concurrent writers on one model: did every success land?
    let same_model = same_model(extension, shared, &main, "same").await;
    let last_commit = Instant::now();
    eprintln!("{extension}: scenario 3 done");

    // 4. No-op sync: bring the local copy up to date, then sync again.
    timed_pull(&main, shared).await;
    let (noop_sync, _) = timed_pull(&main, shared).await;
    // Every file of the populate is present in this working copy.
    let noop_sync_walk_due = command_pull(&main, shared, true).await;
    let noop_sync_command = command_pull(&main, shared, false).await;
    // What it costs every ten minutes with a journal (every time without).
    force_full_check(&main);
    let (noop_full_check, _) = timed_pull(&main, shared).await;
    // Nothing committed for longer than the journal's lag: what a reader's
    // no-op costs when the datastore is quiet (above, right after
    // scenario 3's commits, it lists their entries again).
    let noop_sync_settled = if sizes.settle && has_journal(&main) {
        Some(settled_pull(&main, shared, last_commit).await)
    } else {
        None
    };

    // 5. A cold clone makes one model present (what `silt run --model` does).
    let data_bytes_in_store = (largest * sizes.files_per_model * 1024) as u64;
    let cold_clone_one_model =
        cold_clone_one_model(extension, shared, model(largest / 2), data_bytes_in_store).await;
    eprintln!("{extension}: scenarios 4 and 5 done");

    // 6. gc of the planted versions: what is locked, and for how long.
    let gc = gc(&main, shared).await;
    eprintln!("{extension}: scenario 6 done");

    let near_and_far = crate::distance::run(extension, shared, &main, sizes).await;

    let mut fingerprint = BTreeMap::new();
    for i in [0, WRITE_TARGET, 5, largest - 1] {
        let mut files: Vec<(String, String)> = main
            .datastore
            .list_files(&model(i))
            .await
            .unwrap()
            .into_iter()
            .map(|entry| (entry.name, entry.latest.sha256))
            .collect();
        files.sort();
        fingerprint.insert(format!("bench/m{i:05}"), files);
    }
    ExtensionResult {
        extension: extension.to_owned(),
        populate,
        single_write,
        distinct_models,
        same_model,
        noop_sync,
        noop_sync_command,
        noop_sync_walk_due,
        noop_full_check,
        noop_sync_settled,
        cold_clone_one_model,
        gc,
        near_and_far,
        fingerprint,
    }
}

/// Scenario 3: 16 writers on one model at once, each its own clone; their
/// lost updates counted from what `main` then lists.
pub async fn same_model(extension: &str, shared: &Shared, main: &Clone, tag: &str) -> Concurrent {
    let mut same_model = concurrent(
        extension,
        shared,
        16,
        |_| model(SHARED_MODEL),
        tag,
        Floor::Skip,
    )
    .await;
    let present: Vec<String> = main
        .datastore
        .list_files(&model(SHARED_MODEL))
        .await
        .unwrap()
        .into_iter()
        .map(|entry| entry.name)
        .collect();
    same_model.lost_updates = Some(
        same_model
            .landed
            .iter()
            .filter(|name| !present.contains(name))
            .count(),
    );
    same_model
}

/// Scenario 5: a cold clone makes `target` present (what `silt run
/// --model` does).
pub async fn cold_clone_one_model(
    extension: &str,
    shared: &Shared,
    target: ModelRef,
    data_bytes_in_store: u64,
) -> ColdClone {
    let cold = fixture::clone(extension, shared).await;
    shared.timeline.take();
    let before = shared.counts();
    let started = Instant::now();
    under_leases(
        &cold.datastore,
        vec![LockScope::Model(target.clone())],
        &cold.policy,
        async |_| {
            cold.datastore
                .hydrate_scope(
                    std::slice::from_ref(&target),
                    HydrateOptions {
                        include_history: false,
                        dry_run: false,
                        max_objects: None,
                        local_edits: LocalEdits::Keep,
                    },
                )
                .await
        },
    )
    .await
    .unwrap();
    let traffic = Traffic::between(before, shared.counts());
    ColdClone {
        ms: ms(started),
        traffic,
        in_sequence: shared.timeline.take_in_sequence(),
        data_bytes_in_store,
        fraction_of_data_bytes: traffic.bytes_down as f64 / data_bytes_in_store as f64,
    }
}

/// Scenario 6: gc of the versions planted last (`--keep 1`) by `main`.
pub async fn gc(main: &Clone, shared: &Shared) -> Gc {
    shared.locks.take();
    shared.timeline.take();
    let before = shared.counts();
    let started = Instant::now();
    let report = collect_garbage(&main.datastore, Scope::All, 1, &main.policy, false)
        .await
        .unwrap();
    let took = ms(started);
    let in_sequence = shared.timeline.take_in_sequence();
    let (namespace, models) = split(&shared.locks.take());
    Gc {
        ms: took,
        entries_expired: report.entries_expired,
        model_locks: models.len(),
        model_lock_ms_max: models.iter().copied().fold(0.0, f64::max),
        namespace_lock_ms: namespace.into_iter().reduce(f64::max),
        traffic: Traffic::between(before, shared.counts()),
        in_sequence,
    }
}

/// Panics unless every extension holds the same files with the same content
/// in the models every scenario left comparable, and every scenario that
/// must succeed did.
pub fn check_agreement(results: &[ExtensionResult]) {
    let [silt, baselines @ ..] = results else {
        panic!("expected silt's extension first")
    };
    for baseline in baselines {
        assert_eq!(
            silt.fingerprint, baseline.fingerprint,
            "{} and {} disagree on the data",
            silt.extension, baseline.extension
        );
    }
    // silt's writers never wait on a namespace lock: every one of them
    // must land (the baseline's may time out; that is its pain).
    for concurrent in silt.distinct_models.iter().chain([&silt.same_model]) {
        assert!(
            concurrent.succeeded == concurrent.writers && concurrent.lock_timeouts == 0,
            "{}: {} of {} writers landed, {} lock timeouts",
            silt.extension,
            concurrent.succeeded,
            concurrent.writers,
            concurrent.lock_timeouts
        );
    }
    for result in results {
        assert_eq!(
            result.gc.entries_expired, GC_ENTRIES as u64,
            "{}: gc",
            result.extension
        );
        let mut all = result.distinct_models.iter().chain([&result.same_model]);
        assert!(
            all.all(|c| c.other_errors.is_empty()),
            "{}: writers failed",
            result.extension
        );
        assert_eq!(
            result.same_model.lost_updates,
            Some(0),
            "{}: lost updates",
            result.extension
        );
    }
}

pub(crate) fn mib(bytes: u64) -> String {
    if bytes >= 1 << 20 {
        format!("{:.1} MiB", bytes as f64 / (1 << 20) as f64)
    } else {
        format!("{:.1} KiB", bytes as f64 / 1024.0)
    }
}

/// `N req, ↓x ↑y`.
pub fn traffic(t: &Traffic) -> String {
    format!(
        "{} req, ↓{} ↑{}",
        t.requests,
        mib(t.bytes_down),
        mib(t.bytes_up)
    )
}

fn opt_ms(v: Option<f64>) -> String {
    v.map_or("none".to_owned(), |v| format!("{v:.0} ms"))
}

/// Prints the side-by-side table: one column per extension, silt's first.
pub fn print(results: &[ExtensionResult], sizes: &Sizes) {
    let row = |label: &str, cell: &dyn Fn(&ExtensionResult) -> String| {
        let cells: Vec<String> = results.iter().map(cell).collect();
        println!("| {label} | {} |", cells.join(" | "));
    };
    let names: Vec<&str> = results.iter().map(|r| r.extension.as_str()).collect();
    println!("\n| scenario | {} |", names.join(" | "));
    println!("|---|{}", "---|".repeat(results.len()));
    for (i, size) in results[0].single_write.iter().enumerate() {
        row(
            &format!(
                "1. one 1 KiB write, {} objects (p50 of {})",
                size.objects, sizes.writes
            ),
            &|r| {
                let w = &r.single_write[i];
                format!(
                    "{:.0} ms; model lock {}; namespace lock {}; {}",
                    w.write_ms_p50,
                    opt_ms(w.model_lock_ms_p50),
                    opt_ms(w.namespace_lock_ms_p50),
                    traffic(&w.per_write)
                )
            },
        );
    }
    row("1. write time, largest / smallest namespace", &|r| {
        let (first, last) = (&r.single_write[0], r.single_write.last().unwrap());
        format!("{:.2}", last.write_ms_p50 / first.write_ms_p50)
    });
    let concurrent = |c: &Concurrent| {
        format!(
            "{}/{} ok, {} lock timeouts{}; wall {:.0} ms; per writer p50 {:.0} / p99 {:.0} ms; namespace lock max {}; {}",
            c.succeeded,
            c.writers,
            c.lock_timeouts,
            c.lost_updates
                .map_or(String::new(), |lost| format!(", {lost} lost updates")),
            c.wall_ms,
            c.writer_ms_p50,
            c.writer_ms_p99,
            opt_ms(c.namespace_lock_ms_max),
            traffic(&c.traffic)
        ) + &c.store_floor_ms.map_or(String::new(), |floor| {
            format!(
                "; the store alone, same requests at {} in flight: {floor:.0} ms (wall {:.2}× it)",
                c.writers,
                c.wall_ms / floor
            )
        })
    };
    for (i, writers) in results[0].distinct_models.iter().enumerate() {
        row(
            &format!("2. {} concurrent writers, distinct models", writers.writers),
            &|r| concurrent(&r.distinct_models[i]),
        );
    }
    row("3. 16 concurrent writers, one model", &|r| {
        concurrent(&r.same_model)
    });
    let timed = |t: &Timed| format!("{:.1} ms; {}", t.ms, traffic(&t.traffic));
    row(
        "4. no-op sync (right after scenario 3's commits: their journal entries listed again)",
        &|r| timed(&r.noop_sync),
    );
    row(
        "4. no-op sync, the command's steps (leftover check, then the pull; every file present)",
        &|r| timed(&r.noop_sync_command),
    );
    row(
        "4. the same, the walk for leftovers due (daily, or after a killed command)",
        &|r| timed(&r.noop_sync_walk_due),
    );
    row(
        "4. no-op sync, silt's full check due (every 10 min)",
        &|r| timed(&r.noop_full_check),
    );
    row(
        &format!(
            "4. no-op sync, no commit for longer than the journal's lag (p50 of {SETTLED_PULLS})"
        ),
        &|r| {
            r.noop_sync_settled
                .as_ref()
                .map_or("no journal, or --quick".to_owned(), timed)
        },
    );
    row("5. cold clone, make one model present", &|r| {
        let c = &r.cold_clone_one_model;
        format!(
            "{:.0} ms; {}; {:.3}% of the data bytes",
            c.ms,
            traffic(&c.traffic),
            c.fraction_of_data_bytes * 100.0
        )
    });
    row(&format!("6. gc of {GC_ENTRIES} versions"), &|r| {
        let g = &r.gc;
        format!(
            "{:.0} ms; expired {}; {} model locks (max {:.0} ms); namespace lock {}; {}",
            g.ms,
            g.entries_expired,
            g.model_locks,
            g.model_lock_ms_max,
            opt_ms(g.namespace_lock_ms),
            traffic(&g.traffic)
        )
    });
    row("populate (through the extension)", &|r| {
        r.populate
            .iter()
            .map(|p| format!("{} → {:.1} s", p.objects, p.seconds))
            .collect::<Vec<_>>()
            .join(", ")
    });
}
