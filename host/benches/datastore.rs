//! The partitioned datastore at two sizes, side by side in one run: what a
//! write costs and how long it holds its lease when the namespace holds 1k
//! objects and when it holds 100k (quick: 10k), and what a no-op sync costs.
//! The claim under test: a write's cost tracks the work (one model's
//! partition), not the size of the datastore.
//!
//! Each size is a namespace of models with 100 files of 1 KiB each, written
//! through the extension itself (lease, push, release), on the local
//! directory backend and on SeaweedFS (started here).
//!
//! Run by `cargo xtask bench datastore [--quick]`; prints a markdown table and
//! writes JSON to the path given as the first argument.

#[path = "../../tests/support/mod.rs"]
mod support;

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use silt::datastore::{Datastore, LeasePolicy, LeaseSet, Signals};
use silt::locations::Locations;
use silt::runtime::bindings::exports::silt::datastore::sync::{SetupOptions, SyncOptions};
use silt::runtime::bindings::silt::datastore::types::{LockScope, ModelRef, Scope};
use silt::store::{Counting, ObjectStore};

const FILES_PER_MODEL: usize = 100;
const WRITES: usize = 15;
/// Writes before the measured ones (first-touch costs of the model's partition and lock).
const WARMUP: usize = 3;

struct Row {
    backend: &'static str,
    objects: usize,
    models: usize,
    populate_s: f64,
    write_ms: f64,
    hold_ms: f64,
    write_requests: f64,
    noop_sync_ms: f64,
    noop_sync_lists: u64,
    noop_sync_gets: u64,
}

fn model(i: usize) -> ModelRef {
    ModelRef {
        model_type: "bench".to_owned(),
        model_id: format!("m{i:05}"),
    }
}

fn median(mut samples: Vec<f64>) -> f64 {
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

async fn open(dir: &Path, store: Arc<dyn ObjectStore>) -> (Datastore, Locations) {
    let locations = Locations::discover(dir).unwrap();
    let component = support::component("partitioned-datastore");
    let datastore = Datastore::open_with_store(&locations, &component, store, None)
        .await
        .unwrap();
    (datastore, locations)
}

async fn measure(backend: &'static str, objects: usize) -> Row {
    let dir = tempfile::tempdir().unwrap();
    let toml = match backend {
        "dir" => "[datastore]\nbackend = \"dir\"\n".to_owned(),
        _ => {
            let prefix = format!("n{objects}-{}", std::process::id());
            support::seaweed::store("bench-datastore", &prefix).await;
            format!(
                "[datastore]\nbackend = \"s3\"\n[datastore.s3]\nbucket = \"bench-datastore\"\nprefix = \"{prefix}\"\nendpoint = \"{}\"\n",
                support::seaweed::server().endpoint
            )
        }
    };
    std::fs::write(dir.path().join("silt.toml"), toml).unwrap();
    let locations = Locations::discover(dir.path()).unwrap();
    let root = silt::store::root::open(&locations.config.datastore, &locations.store_dir).unwrap();
    let counting = Arc::new(Counting::new(root));
    let counts = counting.counts();
    let (datastore, locations) = open(dir.path(), counting).await;
    let datastore = Arc::new(datastore);
    datastore
        .setup(SetupOptions {
            create: true,
            retain_versions: None,
        })
        .await
        .unwrap();
    let policy = LeasePolicy::from_config(&locations.config.locks).unwrap();
    let mut signals = Signals::listen().unwrap();

    // Populate: 100 files per model, pushed under the models' leases, 50
    // models per push.
    let models = objects / FILES_PER_MODEL;
    let started = Instant::now();
    let body = vec![0x42u8; 1024];
    for batch in (0..models).collect::<Vec<_>>().chunks(50) {
        let refs: Vec<ModelRef> = batch.iter().map(|&i| model(i)).collect();
        for m in &refs {
            let dir = locations
                .local_dir
                .join("data")
                .join(&m.model_type)
                .join(&m.model_id);
            std::fs::create_dir_all(&dir).unwrap();
            for f in 0..FILES_PER_MODEL {
                let mut content = body.clone();
                content[..8].copy_from_slice(&(f as u64).to_le_bytes());
                std::fs::write(dir.join(format!("f{f:03}")), content).unwrap();
            }
        }
        let scopes = refs.iter().cloned().map(LockScope::Model).collect();
        let leases = LeaseSet::acquire(datastore.clone(), scopes, &policy, &mut signals)
            .await
            .unwrap();
        datastore
            .push(&SyncOptions {
                scope: Scope::Models(refs),
                leases: leases.leases(),
                dry_run: false,
            })
            .await
            .unwrap();
        leases.release().await;
    }
    let populate_s = started.elapsed().as_secs_f64();

    // Writes: one 1 KiB file into one model, lease to release, as `silt data put` does.
    let staged = ".silt/bench-input";
    std::fs::write(locations.local_dir.join(staged), &body).unwrap();
    let target = model(models / 2);
    let mut writes = Vec::new();
    let mut holds = Vec::new();
    let mut before = counts.snapshot().requests();
    for i in 0..WARMUP + WRITES {
        if i == WARMUP {
            writes.clear();
            holds.clear();
            before = counts.snapshot().requests();
        }
        let started = Instant::now();
        let leases = LeaseSet::acquire(
            datastore.clone(),
            vec![LockScope::Model(target.clone())],
            &policy,
            &mut signals,
        )
        .await
        .unwrap();
        let held = Instant::now();
        datastore
            .put_file(&target, &format!("new-{i}"), staged, &leases.leases()[0])
            .await
            .unwrap();
        leases.release().await;
        holds.push(held.elapsed().as_secs_f64() * 1e3);
        writes.push(started.elapsed().as_secs_f64() * 1e3);
    }
    let write_requests = (counts.snapshot().requests() - before) as f64 / WRITES as f64;

    // No-op sync: the first pull brings the sidecars up to date; the second
    // finds nothing to do.
    let pull = SyncOptions {
        scope: Scope::All,
        leases: Vec::new(),
        dry_run: false,
    };
    datastore.pull(&pull).await.unwrap();
    let before = counts.snapshot();
    let started = Instant::now();
    datastore.pull(&pull).await.unwrap();
    let noop_sync_ms = started.elapsed().as_secs_f64() * 1e3;
    let after = counts.snapshot();
    Row {
        backend,
        objects,
        models,
        populate_s,
        write_ms: median(writes),
        hold_ms: median(holds),
        write_requests,
        noop_sync_ms,
        noop_sync_lists: after.list - before.list,
        noop_sync_gets: after.get - before.get,
    }
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let quick = args.iter().any(|a| a == "--quick");
    let out = args.iter().find(|a| !a.starts_with("--")).cloned();
    let sizes = if quick {
        [1_000, 10_000]
    } else {
        [1_000, 100_000]
    };
    support::seaweed::use_test_credentials();
    let mut rows = Vec::new();
    for backend in ["dir", "s3"] {
        for objects in sizes {
            let row = measure(backend, objects).await;
            eprintln!("{backend} {objects}: populated in {:.1} s", row.populate_s);
            rows.push(row);
        }
    }
    println!(
        "| backend | objects | models | write p50 (lease → release) | lease hold p50 | requests per write | no-op sync | no-op sync requests |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for r in &rows {
        println!(
            "| {} | {} | {} | {:.1} ms | {:.1} ms | {:.1} | {:.1} ms | {} LIST + {} GET |",
            r.backend,
            r.objects,
            r.models,
            r.write_ms,
            r.hold_ms,
            r.write_requests,
            r.noop_sync_ms,
            r.noop_sync_lists,
            r.noop_sync_gets
        );
    }
    for backend in ["dir", "s3"] {
        let pair: Vec<&Row> = rows.iter().filter(|r| r.backend == backend).collect();
        if let [small, large] = pair[..] {
            println!(
                "{backend}: write time at {} / at {} objects = {:.2}; lease hold ratio {:.2}",
                large.objects,
                small.objects,
                large.write_ms / small.write_ms,
                large.hold_ms / small.hold_ms
            );
        }
    }
    if let Some(out) = out {
        let json: Vec<_> = rows
            .iter()
            .map(|r| {
                serde_json::json!({
                    "backend": r.backend, "objects": r.objects, "models": r.models,
                    "populate_s": r.populate_s, "write_ms_p50": r.write_ms, "lease_hold_ms_p50": r.hold_ms,
                    "requests_per_write": r.write_requests, "noop_sync_ms": r.noop_sync_ms,
                    "noop_sync_lists": r.noop_sync_lists, "noop_sync_gets": r.noop_sync_gets,
                })
            })
            .collect();
        std::fs::write(&out, serde_json::to_string_pretty(&json).unwrap()).unwrap();
        eprintln!("wrote {out}");
    }
}
