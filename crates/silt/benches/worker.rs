//! Out-of-process execution cost, side by side in one run: in-process,
//! a pooled worker (call only), a warm worker (spawn + call), the first
//! call of a process with the artifact cached (bundle + spawn + call) and
//! from an empty cache (compile + bundle + spawn + call), for each driver
//! this machine has. Run by `cargo xtask bench worker [--quick]`.
//!
//! Usage: `cargo bench --bench worker -- OUT.json [--quick]` with
//! `SILT_TEST_COMPONENTS` naming the built components.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use silt::config::RuntimeConfig;
use silt::runtime::{ArtifactCache, ExportCall, Grants, Runtime};
use silt::sandbox::{Driver, Isolation, SandboxConfig, Support};
use silt::store::{MemoryStore, ObjectStore};
use silt::worker::WorkerPool;

#[path = "common/mod.rs"]
mod common;
use common::median;

struct Row {
    label: String,
    describe: Duration,
    list_models: Duration,
}

fn new_runtime(cache: &Path) -> Runtime {
    Runtime::new(RuntimeConfig::default(), ArtifactCache::new(cache, 1 << 30))
}

fn sandbox(driver: Driver, pool_size: usize) -> SandboxConfig {
    SandboxConfig {
        driver: Some(driver),
        isolation: Isolation::Strict,
        pool_size,
        ..SandboxConfig::default()
    }
}

/// Every driver this machine has, by the name its rows carry: native,
/// process, and each container runtime at hand (runc from `SILT_RUNC` or
/// PATH; podman and docker from `SILT_PODMAN` and `SILT_DOCKER`, each with
/// its worker image built here first).
fn drivers() -> Vec<(&'static str, SandboxConfig)> {
    let mut drivers = vec![
        ("native", sandbox(Driver::Native, 0)),
        ("process", sandbox(Driver::Process, 0)),
    ];
    let on_path = |wanted: &str| {
        Support::get()
            .container_runtimes
            .iter()
            .find(|(name, _)| name == wanted)
            .map(|(_, path)| path.clone().into_os_string())
    };
    let container = |runtime: std::ffi::OsString| {
        let mut config = sandbox(Driver::Container, 0);
        config.container.runtime = runtime.to_string_lossy().into_owned();
        config
    };
    if let Some(runc) = std::env::var_os("SILT_RUNC").or_else(|| on_path("runc")) {
        drivers.push(("runc", container(runc)));
    }
    for (name, variable) in [("podman", "SILT_PODMAN"), ("docker", "SILT_DOCKER")] {
        let Some(runtime) = std::env::var_os(variable) else {
            continue;
        };
        let config = container(runtime.clone());
        silt::sandbox::container::image::build(
            Path::new(&runtime),
            Path::new(env!("CARGO_BIN_EXE_silt")),
            &config.container.image,
        )
        .unwrap_or_else(|err| panic!("{name}'s worker image: {err}"));
        drivers.push((name, config));
    }
    drivers
}

/// The median time of each of [`calls`] through `pool`, `runs` times after
/// `warm_up` untimed calls.
async fn time_calls(
    pool: &WorkerPool,
    runtime: &Runtime,
    runs: usize,
    warm_up: usize,
) -> Vec<Duration> {
    let mut times = Vec::new();
    for call in calls() {
        let mut samples = Vec::new();
        for i in 0..runs + warm_up {
            let started = Instant::now();
            pool.execute(runtime, call.clone()).await.expect("call");
            if i >= warm_up {
                samples.push(started.elapsed());
            }
        }
        times.push(median(samples));
    }
    times
}

fn calls() -> [ExportCall; 2] {
    [ExportCall::Describe {}, ExportCall::ListModels {}]
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let out = PathBuf::from(args.first().expect("usage: worker OUT.json [--quick]"));
    let quick = args.iter().any(|a| a == "--quick");
    let (fast_runs, spawn_runs, first_runs) = if quick { (200, 10, 2) } else { (2000, 60, 5) };
    let components =
        PathBuf::from(std::env::var_os("SILT_TEST_COMPONENTS").expect("SILT_TEST_COMPONENTS"));
    let component = components.join("partitioned-datastore.wasm");
    // SAFETY: set before any thread of ours exists.
    unsafe { std::env::set_var("SILT_WORKER_BINARY", env!("CARGO_BIN_EXE_silt")) };
    let work = std::env::temp_dir().join(format!("silt-bench-worker-{}", std::process::id()));
    let store: Arc<dyn ObjectStore> = Arc::new(MemoryStore::new());
    let grants = Grants {
        store: Some(store),
        cache_dir: Some(work.join("local")),
        ..Grants::default()
    };
    let tokio = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio");
    let drivers = drivers();
    let rows = tokio.block_on(async {
        let cache = work.join("cache");
        let runtime = new_runtime(&cache);
        let mut rows = Vec::new();

        // In-process: fresh instance + call, as every datastore call does.
        let loaded = runtime.load(&component).await.expect("load");
        let mut times = Vec::new();
        for call in calls() {
            let samples =
                common::time_in_process(&runtime, &loaded, &grants, &call, 20, fast_runs).await;
            times.push(median(samples));
        }
        rows.push(Row {
            label: "in-process (instantiate + call)".into(),
            describe: times[0],
            list_models: times[1],
        });

        for (name, config) in &drivers {
            for (pool_size, runs, warm_up, label) in [
                (1, fast_runs, 20, "pooled worker (call only)"),
                (0, spawn_runs, 2, "warm (spawn + call)"),
            ] {
                let pool = WorkerPool::new(
                    "partitioned-datastore",
                    &component,
                    grants.clone(),
                    RuntimeConfig::default(),
                    SandboxConfig {
                        pool_size,
                        ..config.clone()
                    },
                    &cache,
                );
                let times = time_calls(&pool, &runtime, runs, warm_up).await;
                rows.push(Row {
                    label: format!("{name}: {label}"),
                    describe: times[0],
                    list_models: times[1],
                });
            }
        }

        // The first out-of-process call of a process (a fresh runtime and
        // pool): with the artifact cached by another process, only the bundle
        // is built; from an empty cache, the component is compiled too.
        let first_call = async |cache_dir: &Path| {
            let fresh_runtime = new_runtime(cache_dir);
            let pool = WorkerPool::new(
                "partitioned-datastore",
                &component,
                grants.clone(),
                RuntimeConfig::default(),
                sandbox(Driver::Native, 0),
                cache_dir,
            );
            let started = Instant::now();
            pool.execute(&fresh_runtime, ExportCall::Describe {})
                .await
                .expect("first call");
            started.elapsed()
        };
        let mut first_cached = Vec::new();
        let mut first_cold = Vec::new();
        for i in 0..first_runs {
            first_cached.push(first_call(&cache).await);
            first_cold.push(first_call(&work.join(format!("cold-{i}"))).await);
        }
        rows.push(Row {
            label: "native: first in a process, artifact cached (bundle + spawn + call)".into(),
            describe: median(first_cached),
            list_models: Duration::ZERO,
        });
        rows.push(Row {
            label: "native: first from an empty cache (compile + bundle + spawn + call)".into(),
            describe: median(first_cold),
            list_models: Duration::ZERO,
        });
        rows
    });
    let _ = std::fs::remove_dir_all(&work);

    let base = rows[0].describe.as_secs_f64();
    println!("| execution | describe | × in-process | list-models (1 store request) |");
    println!("|---|---|---|---|");
    for row in &rows {
        let list = if row.list_models.is_zero() {
            "—".to_owned()
        } else {
            format!("{:.3} ms", row.list_models.as_secs_f64() * 1e3)
        };
        println!(
            "| {} | {:.3} ms | {:.1} | {list} |",
            row.label,
            row.describe.as_secs_f64() * 1e3,
            row.describe.as_secs_f64() / base
        );
    }
    let json: Vec<_> = rows
        .iter()
        .map(|row| {
            serde_json::json!({
                "execution": row.label,
                "describe_us": row.describe.as_micros() as u64,
                "list_models_us": row.list_models.as_micros() as u64,
            })
        })
        .collect();
    let _ = std::fs::write(&out, serde_json::to_vec_pretty(&json).expect("json"));
    println!("wrote {}", out.display());
}
