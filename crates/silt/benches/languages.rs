//! The same contract in two languages, side by side in one run: the Rust
//! `partitioned-datastore` and the TypeScript `examples/ts-datastore`
//! (componentize-js, SpiderMonkey inside the component).
//!
//! Per component: its size; compiling it (empty artifact cache) and loading
//! the cached artifact; one in-process instantiate + `describe`; and a
//! datastore round trip on a local-directory store: acquire a model lease,
//! `put-file` of 1 MiB (which the extension hashes), release, `get-file`.
//! Prints a markdown table with the TypeScript / Rust ratio.
//!
//! Usage: `cargo bench --bench languages -- RUST.wasm TS.wasm [--quick]`
//! (`cargo xtask bench languages` passes the built components).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use silt::config::{Config, RuntimeConfig};
use silt::datastore::Datastore;
use silt::locations::Locations;
use silt::runtime::bindings::exports::silt::datastore::sync::SetupOptions;
use silt::runtime::bindings::silt::datastore::types::{Base, Committer, LockScope, ModelRef};
use silt::runtime::{ArtifactCache, ExportCall, Grants, Runtime};
use silt::store::{ObjectStore, root};

#[path = "common/mod.rs"]
mod common;
use common::median;

/// What one component measured.
struct Row {
    size_mib: f64,
    compile: Duration,
    artifact_mib: f64,
    load_cached: Duration,
    describe: Duration,
    put_1mib: Duration,
    get_1mib: Duration,
}

fn dir_size(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .filter_map(|entry| entry.metadata().ok())
                .filter(|meta| meta.is_file())
                .map(|meta| meta.len())
                .sum()
        })
        .unwrap_or(0)
}

async fn measure(component: &Path, work: &Path, iterations: usize) -> Row {
    let cache_dir = work.join("artifacts");
    let size_mib = std::fs::metadata(component).expect("component").len() as f64 / 1048576.0;

    let started = Instant::now();
    Runtime::new(
        RuntimeConfig::default(),
        ArtifactCache::new(&cache_dir, 1 << 32),
    )
    .load(component)
    .await
    .expect("compile");
    let compile = started.elapsed();
    let artifact_mib = dir_size(&cache_dir) as f64 / 1048576.0;

    // A new runtime, as a new process would have: the artifact is on disk.
    let runtime = Runtime::new(
        RuntimeConfig::default(),
        ArtifactCache::new(&cache_dir, 1 << 32),
    );
    let started = Instant::now();
    let loaded = runtime.load(component).await.expect("load cached");
    let load_cached = started.elapsed();

    let samples = common::time_in_process(
        &runtime,
        &loaded,
        &Grants::default(),
        &ExportCall::Describe {},
        10,
        iterations * 10,
    )
    .await;
    let describe = median(samples);

    let (put_1mib, get_1mib) = round_trip(
        component,
        work,
        &cache_dir,
        loaded.metadata.name.clone(),
        iterations,
    )
    .await;
    Row {
        size_mib,
        compile,
        artifact_mib,
        load_cached,
        describe,
        put_1mib,
        get_1mib,
    }
}

async fn round_trip(
    component: &Path,
    work: &Path,
    cache_dir: &Path,
    name: String,
    iterations: usize,
) -> (Duration, Duration) {
    let mut config = Config::default();
    config.datastore.extension = name;
    let locations = Locations {
        config_file: None,
        config,
        extensions_dir: work.join("extensions"),
        user_extensions_dir: None,
        cache_dir: cache_dir.to_owned(),
        store_dir: work.join("store"),
        local_dir: work.join("local"),
    };
    let store: Arc<dyn ObjectStore> =
        root::open(&locations.config.datastore.root(&locations.store_dir)).expect("store");
    let datastore = Datastore::open_with_store(&locations, component, store, None)
        .await
        .expect("open");
    datastore
        .setup(SetupOptions {
            create: true,
            retain_versions: None,
        })
        .await
        .expect("setup");
    let model = ModelRef {
        model_type: "bench/languages".to_owned(),
        model_id: "m-1".to_owned(),
    };
    let staged = ".silt/staging/bench-input";
    std::fs::create_dir_all(locations.local_dir.join(".silt/staging")).expect("staging");
    let (mut puts, mut gets) = (Vec::new(), Vec::new());
    for round in 0..iterations + 1 {
        // New content each round: every put is a new version and a new upload.
        let content: Vec<u8> = (0..1u32 << 20)
            .map(|i| (i.wrapping_mul(2_654_435_761).wrapping_add(round as u32) >> 13) as u8)
            .collect();
        std::fs::write(locations.local_dir.join(staged), &content).expect("stage");
        let started = Instant::now();
        let lease = datastore
            .acquire(&LockScope::Model(model.clone()), 30_000)
            .await
            .expect("acquire");
        datastore
            .put_file(
                &model,
                "weights.bin",
                staged,
                &Base::Any,
                &Committer::Leased(lease.clone()),
            )
            .await
            .expect("put-file");
        datastore.release(&lease).await.expect("release");
        let put = started.elapsed();
        let started = Instant::now();
        datastore
            .get_file(&model, "weights.bin", None, ".silt/staging/bench-output")
            .await
            .expect("get-file");
        let get = started.elapsed();
        if round > 0 {
            puts.push(put);
            gets.push(get);
        }
    }
    (median(puts), median(gets))
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let quick = args.iter().any(|a| a == "--quick");
    let paths: Vec<PathBuf> = args
        .iter()
        .filter(|a| !a.starts_with("--"))
        .map(PathBuf::from)
        .collect();
    let [rust, ts] = paths.as_slice() else {
        eprintln!("usage: languages RUST.wasm TS.wasm [--quick]");
        std::process::exit(2);
    };
    let iterations = if quick { 3 } else { 20 };
    let work = std::env::temp_dir().join(format!("silt-bench-languages-{}", std::process::id()));
    let tokio = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio");
    let rows = tokio.block_on(async {
        let rust = measure(rust, &work.join("rust"), iterations).await;
        let ts = measure(ts, &work.join("ts"), iterations).await;
        [rust, ts]
    });
    let _ = std::fs::remove_dir_all(&work);
    let [rust, ts] = &rows;
    println!("| measure | Rust (partitioned-datastore) | TypeScript (ts-datastore) | TS / Rust |");
    println!("|---|---|---|---|");
    let mib = |rust: f64, ts: f64| (format!("{rust:.2} MiB"), format!("{ts:.2} MiB"), ts / rust);
    let time =
        |rust: Duration, ts: Duration| (ms(rust), ms(ts), ts.as_secs_f64() / rust.as_secs_f64());
    let table = [
        ("component size", mib(rust.size_mib, ts.size_mib)),
        (
            "compile (empty artifact cache)",
            time(rust.compile, ts.compile),
        ),
        ("compiled artifact", mib(rust.artifact_mib, ts.artifact_mib)),
        (
            "load cached artifact",
            time(rust.load_cached, ts.load_cached),
        ),
        ("instantiate + describe", time(rust.describe, ts.describe)),
        (
            "lease + put-file 1 MiB + release",
            time(rust.put_1mib, ts.put_1mib),
        ),
        ("get-file 1 MiB", time(rust.get_1mib, ts.get_1mib)),
    ];
    for (measure, (rust, ts, ratio)) in table {
        println!("| {measure} | {rust} | {ts} | {ratio:.1}× |");
    }
    println!(
        "(medians: {} rounds of put/get, {} of instantiate + describe; compile and load: one each{})",
        iterations,
        iterations * 10,
        if quick { "; --quick" } else { "" }
    );
}
