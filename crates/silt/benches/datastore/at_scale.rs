//! Scenario 4 at a million objects: silt's no-op sync with 1,048,576
//! objects in 8,192 models.
//!
//! Pushing that many models through the extension would take hours on this
//! machine, so the index is written straight through the store instead:
//! one partition per model, made with the SDK's own `Partition` type, and
//! one journal entry per model as its commit would have left (all of them
//! older than a reader's horizon). The data objects themselves are not
//! written: no sync lists or reads them (`data/` is another prefix).

use std::sync::Arc;
use std::time::Instant;

use serde::Serialize;
use silt::store::{GetOutcome, ObjectKey, ObjectStore, PutMode};
use silt_extension::journal;
use silt_extension::partition::{Entry, Partition};

use crate::fixture::{self, Clone, model};
use crate::support::latency_proxy::Distance;

/// Fixture model `i`, as the SDK's type.
fn sdk_model(i: usize) -> silt_extension::silt::datastore::types::ModelRef {
    let m = model(i);
    silt_extension::silt::datastore::types::ModelRef {
        model_type: m.model_type,
        model_id: m.model_id,
    }
}
use crate::Shared;
use crate::scenarios::{self, timed_pull};

/// Partition writes in flight while populating.
const CONCURRENT_WRITES: usize = 64;

/// Scenario 4 at scale.
#[derive(Serialize)]
pub struct NoopAtScale {
    objects: usize,
    models: usize,
    populate_seconds: f64,
    /// The clone's first pull: a full check reading every partition, then
    /// writing the index checkpoint.
    first_pull: scenarios::Timed,
    /// What that pull said (the checkpoint's cost among it).
    first_pull_summary: String,
    /// The checkpoint in the store: objects and bytes.
    checkpoint_objects: usize,
    checkpoint_bytes: u64,
    /// Another fresh clone's first pull: from the checkpoint.
    from_checkpoint: scenarios::Timed,
    /// The same, far from the store.
    from_checkpoint_far: scenarios::Timed,
    /// Its physical limit (see `support::distance::limit_ms`).
    from_checkpoint_far_limit_ms: f64,
    /// A fresh clone's first pull far from the store with the checkpoint
    /// hidden: every partition read (as before the checkpoint).
    first_pull_far: scenarios::Timed,
    /// Its round trip.
    far_rtt_ms: f64,
    /// Its physical limit.
    far_limit_ms: f64,
    /// Nothing changed since: the journal pass.
    noop_sync: scenarios::Timed,
    /// Nothing changed since, full check due (every ten minutes).
    noop_full_check: scenarios::Timed,
}

/// Model `i`'s partition: `files` files of 1 KiB, one version each.
fn partition(i: usize, files: usize, now_ms: u64) -> (Partition, String) {
    let m = sdk_model(i);
    let token = format!("{now_ms:013}-{i:016x}");
    let mut slice = Partition::empty("data", &m);
    slice.seq = 1;
    slice.last_commit = token.clone();
    for f in 0..files {
        let entry = Entry {
            version: if f == 0 {
                token.clone()
            } else {
                format!("{now_ms:013}-{i:08x}{f:08x}")
            },
            size: 1024,
            sha256: format!("{:064x}", i * 4096 + f),
            generation: 1,
            writer: "bench@fixture".to_owned(),
            committed_at: now_ms,
            deleted: false,
        };
        slice.files.insert(format!("f{f:03}"), vec![entry]);
    }
    (slice, token)
}

/// Writes the index of `models` models of `files` files; returns seconds.
async fn populate(store: Arc<dyn ObjectStore>, models: usize, files: usize) -> f64 {
    let started = Instant::now();
    // Older than any reader's horizon: as if committed long ago.
    let long_ago = silt_extension::clock::now_ms() - 3_600_000;
    let gate = Arc::new(tokio::sync::Semaphore::new(CONCURRENT_WRITES));
    let mut writes = tokio::task::JoinSet::new();
    for i in 0..models {
        let (store, gate) = (store.clone(), gate.clone());
        writes.spawn(async move {
            let _slot = gate.acquire().await.unwrap();
            let (slice, token) = partition(i, files, long_ago);
            let m = sdk_model(i);
            let key = format!("_index/data/{}/{}.json", m.model_type, m.model_id);
            let entry = journal::Entry {
                at_ms: long_ago,
                token,
                model: m,
            };
            for (key, body) in [(key, slice.to_bytes()), (entry.key(), Vec::new())] {
                let key = ObjectKey::new(&key).unwrap();
                store.put(&key, body, PutMode::Overwrite).await.unwrap();
            }
        });
    }
    while let Some(done) = writes.join_next().await {
        done.unwrap();
    }
    started.elapsed().as_secs_f64()
}

/// A clone of silt's datastore on `shared`, whose index of `models` models
/// of `files` files is written through the store, then pulled by the
/// clone (a full check: every partition read). Returns the clone, the
/// seconds the index took to write, and the pull with its summary. `label` prefixes the
/// progress line.
pub async fn indexed_clone(
    shared: &Shared,
    models: usize,
    files: usize,
    label: &str,
) -> (Clone, f64, (scenarios::Timed, String)) {
    let clone = fixture::first_clone("partitioned-datastore", shared).await;
    let seconds = populate(shared.counting.clone(), models, files).await;
    eprintln!(
        "{label}: {} objects in {models} models indexed in {seconds:.1} s",
        models * files
    );
    let (pull, summary) = timed_pull(&clone, shared).await;
    assert!(
        summary.starts_with(&format!("{models} of {models} models changed")),
        "{summary}"
    );
    (clone, seconds, (pull, summary))
}

/// Runs scenario 4 at `models` × `files` objects on its own datastore.
pub async fn run(shared: &Shared, models: usize, files: usize) -> NoopAtScale {
    let (main, populate_seconds, (first_pull, first_pull_summary)) =
        indexed_clone(shared, models, files, "at scale").await;
    let checkpoint = checkpoint_objects(shared).await;
    assert!(
        checkpoint.iter().any(|(key, _)| key.starts_with(MANIFESTS)),
        "the first pull wrote no checkpoint: {first_pull_summary}"
    );
    let (noop_sync, summary) = timed_pull(&main, shared).await;
    assert!(summary.starts_with("0 models changed (0 read"), "{summary}");
    scenarios::force_full_check(&main);
    let (noop_full_check, summary) = timed_pull(&main, shared).await;
    assert!(
        summary.starts_with(&format!("0 of {models} models changed")),
        "{summary}"
    );
    let from_checkpoint_summary =
        format!("{models} of {models} models changed ({models} from the index checkpoint)");
    let fresh = fixture::clone("partitioned-datastore", shared).await;
    let (from_checkpoint, summary) = timed_pull(&fresh, shared).await;
    assert!(summary.starts_with(&from_checkpoint_summary), "{summary}");
    let far = crate::support::distance::far();
    let limit = |timed: &scenarios::Timed| {
        crate::support::distance::limit_ms(
            far,
            timed.in_sequence,
            timed.traffic.bytes_down + timed.traffic.bytes_up,
        )
    };
    let fresh = fixture::clone("partitioned-datastore", shared).await;
    shared.switch.set(far);
    let (from_checkpoint_far, summary) = timed_pull(&fresh, shared).await;
    shared.switch.set(Distance::default());
    assert!(summary.starts_with(&from_checkpoint_summary), "{summary}");
    // As before the checkpoint: its manifest hidden (then put back), and a
    // clone that writes none.
    let mut manifests = Vec::new();
    for (key, _) in checkpoint
        .iter()
        .filter(|(key, _)| key.starts_with(MANIFESTS))
    {
        let key = ObjectKey::new(key).unwrap();
        match shared.counting.get(&key, None).await.unwrap() {
            GetOutcome::Found(_, data) => manifests.push((key.clone(), data)),
            GetOutcome::NotModified => unreachable!("an unconditional get"),
        }
        shared.counting.delete(&key, None).await.unwrap();
    }
    let fresh = fixture::clone_with(
        "partitioned-datastore",
        shared,
        "[extensions.config.partitioned-datastore]\ncheckpoint.write-after-reads = 0\n",
    )
    .await;
    shared.switch.set(far);
    let (first_pull_far, summary) = timed_pull(&fresh, shared).await;
    shared.switch.set(Distance::default());
    assert!(
        summary.starts_with(&format!("{models} of {models} models changed")),
        "{summary}"
    );
    let written = checkpoint_objects(shared).await;
    assert!(
        !written.iter().any(|(key, _)| key.starts_with(MANIFESTS)),
        "checkpoint.write-after-reads = 0 wrote one: {summary}"
    );
    for (key, data) in manifests {
        shared
            .counting
            .put(&key, data, PutMode::Overwrite)
            .await
            .unwrap();
    }
    let checkpoint = checkpoint_objects(shared).await;
    NoopAtScale {
        objects: models * files,
        models,
        populate_seconds,
        first_pull,
        first_pull_summary,
        checkpoint_objects: checkpoint.len(),
        checkpoint_bytes: checkpoint.iter().map(|(_, size)| size).sum(),
        from_checkpoint_far_limit_ms: limit(&from_checkpoint_far),
        from_checkpoint,
        from_checkpoint_far,
        far_rtt_ms: far.rtt.as_secs_f64() * 1e3,
        far_limit_ms: limit(&first_pull_far),
        first_pull_far,
        noop_sync,
        noop_full_check,
    }
}

/// Where the checkpoint's manifests are.
const MANIFESTS: &str = "_checkpoint/manifest/";

/// The checkpoint's objects (keys and sizes).
async fn checkpoint_objects(shared: &Shared) -> Vec<(String, u64)> {
    let mut objects = Vec::new();
    let mut after = None;
    loop {
        let page = shared
            .counting
            .list("_checkpoint/", after.as_ref(), 1000)
            .await
            .unwrap();
        objects.extend(
            page.items
                .iter()
                .map(|meta| (meta.key.as_str().to_owned(), meta.size)),
        );
        match page.next_start_after {
            Some(next) => after = Some(next),
            None => return objects,
        }
    }
}

/// Prints its rows.
pub fn print(result: &NoopAtScale) {
    let timed = |t: &scenarios::Timed| {
        format!(
            "{:.1} ms; {}, {} in sequence",
            t.ms,
            scenarios::traffic(&t.traffic),
            t.in_sequence
        )
    };
    println!(
        "\n| scenario 4 at {} objects / {} models (index written through the store in {:.1} s) | silt (partitioned) |",
        result.objects, result.models, result.populate_seconds
    );
    println!("|---|---|");
    println!(
        "| first pull (full check, reads every partition, writes the checkpoint) | {} |",
        timed(&result.first_pull)
    );
    println!(
        "| the index checkpoint it wrote | {} objects, {:.1} MiB; {} |",
        result.checkpoint_objects,
        result.checkpoint_bytes as f64 / 1048576.0,
        result
            .first_pull_summary
            .split("; ")
            .find(|part| part.starts_with("index checkpoint"))
            .unwrap_or("(not said)")
    );
    println!(
        "| a fresh clone's first pull, from the checkpoint | {} |",
        timed(&result.from_checkpoint)
    );
    for (label, far, limit) in [
        (
            "from the checkpoint",
            &result.from_checkpoint_far,
            result.from_checkpoint_far_limit_ms,
        ),
        (
            "checkpoint hidden (every partition)",
            &result.first_pull_far,
            result.far_limit_ms,
        ),
    ] {
        println!(
            "| a fresh clone's first pull, {:.0} ms from the store, {label} | {}; limit {limit:.0} ms, {:.2}× |",
            result.far_rtt_ms,
            timed(far),
            far.ms / limit
        );
    }
    println!("| no-op sync (journal) | {} |", timed(&result.noop_sync));
    println!(
        "| no-op sync, full check due (every 10 min) | {} |",
        timed(&result.noop_full_check)
    );
}
