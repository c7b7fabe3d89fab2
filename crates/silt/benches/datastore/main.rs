//! The field's pain scenarios, silt's partitioned datastore side by side
//! with two baselines, same host, same store (SeaweedFS, started here), one
//! run: the peer as users run it today (`extensions/sharded-datastore`: a
//! shard per model, a commit sequence read on every sync, every commit
//! reading every shard under one global lock) and the design of May 2026
//! (`extensions/monolith-datastore`: one index object, every write under
//! the namespace lock).
//!
//! 1. one 1 KiB write into one model at three namespace sizes; and, for
//!    silt, the smallest and largest written alternately (`write_ratio`:
//!    the ratio free of the machine's drift);
//! 2. 4 and 16 concurrent writers on distinct models (each its own clone);
//! 3. 16 concurrent writers on one model: successes, lost updates;
//! 4. a no-op sync at the largest size (right after scenario 3's commits,
//!    and, for silt, again once its journal's lag has passed), and silt's at
//!    1,048,576 objects / 8,192 models (`at_scale`: an index written
//!    through the store);
//! 5. a cold clone making one model present;
//! 6. gc of 7 expired versions: what is locked and for how long;
//!
//! (7, start-up, is about processes: `cargo xtask bench datastore` times it
//! with the `silt` binary after this.) Every scenario reports requests and
//! bytes from the counting wrapper, and lock holds as the store saw them.
//!
//! `--quick` uses small sizes, checks that every scenario completes and that
//! every extension holds the same data afterwards, and asserts nothing about
//! speed. Prints a markdown table; writes JSON to the path given.

#[path = "../../../../tests/support/mod.rs"]
mod support;

mod at_scale;
mod distance;
mod fixture;
mod lock_watch;
mod scenarios;
mod write_ratio;

use std::sync::Arc;

use silt::store::{Counting, CountsSnapshot, ObjectStore};
use support::distance::{Switch, Timeline};
use support::latency_proxy::LatencyProxy;

use lock_watch::LockWatch;

/// The extensions, silt's first; then the peer's current design and the
/// design of May 2026.
pub const EXTENSIONS: [&str; 3] = [
    "partitioned-datastore",
    "sharded-datastore",
    "monolith-datastore",
];

/// Which extensions run the scenarios: a comma-separated subset of
/// [`EXTENSIONS`] (all of them when unset). xtask's full run on the GCS and
/// Azure emulators takes silt's alone: the baselines are compared on
/// SeaweedFS.
const ONLY_EXTENSIONS: &str = "SILT_BENCH_EXTENSIONS";

/// The scenarios' namespace sizes in models, comma-separated and
/// ascending, instead of the run's own (the last is where scenarios 2–6
/// run). xtask's full run on the emulators stops at 128 models (16,384
/// objects): they took 123 s (Azurite) and 264 s (fake-gcs-server) to
/// take those through the extension, where SeaweedFS took 25 s.
const MODELS: &str = "SILT_BENCH_MODELS";

/// The items of the comma-separated variable `name`, trimmed; `None` when
/// it is unset.
fn comma_list(name: &str) -> Option<Vec<String>> {
    let value = std::env::var(name).ok()?;
    Some(
        value
            .split(',')
            .map(|item| item.trim().to_owned())
            .collect(),
    )
}

fn scenario_models(own: Vec<usize>) -> Vec<usize> {
    let Some(chosen) = comma_list(MODELS) else {
        return own;
    };
    let models: Vec<usize> = chosen
        .iter()
        .map(|n| {
            n.parse()
                .unwrap_or_else(|_| panic!("{MODELS}: {n} is no number"))
        })
        .collect();
    assert!(
        models.windows(2).all(|w| w[0] < w[1]),
        "{MODELS}: ascending sizes"
    );
    models
}

fn scenario_extensions() -> Vec<&'static str> {
    let Some(chosen) = comma_list(ONLY_EXTENSIONS) else {
        return EXTENSIONS.to_vec();
    };
    for name in &chosen {
        assert!(
            EXTENSIONS.contains(&name.as_str()),
            "{ONLY_EXTENSIONS}: {name} is not one of {EXTENSIONS:?}"
        );
    }
    EXTENSIONS
        .into_iter()
        .filter(|name| chosen.iter().any(|c| c == name))
        .collect()
}

/// The sizes of one run.
pub struct Sizes {
    /// Files per model.
    pub files_per_model: usize,
    /// Models at each measured size (the last is where scenarios 2–6 run).
    pub models: Vec<usize>,
    /// Sequential writes measured per size (scenario 1).
    pub writes: usize,
    /// Scenario 4 at scale: models, files per model.
    pub at_scale: (usize, usize),
    /// Scenario 1 interleaved, for silt.
    pub write_ratio: write_ratio::RatioSizes,
    /// Scenario 4 again once the journal's lag has passed (a wait of about
    /// 95 s for silt; not under `--quick`).
    pub settle: bool,
}

/// The store every clone of one extension's datastore shares, with its
/// counters, timeline and lock watcher.
pub struct Shared {
    /// Counting(Timeline(LockWatch(Switch(root, root through the proxy)))):
    /// the store every clone uses.
    pub counting: Arc<Counting<Arc<dyn ObjectStore>>>,
    /// When each request started and ended.
    pub timeline: Arc<Timeline<Arc<dyn ObjectStore>>>,
    /// Straight to the server, or through the latency proxy.
    pub switch: Arc<Switch>,
    /// Lock holds.
    pub locks: Arc<LockWatch>,
    /// `silt.toml` of every clone.
    pub toml: String,
    /// The same server under a prefix of its own, for the store's floor
    /// (requests straight to the store, no extension; see
    /// `scenarios::store_floor`).
    pub floor: Arc<dyn ObjectStore>,
}

impl Shared {
    /// Counts so far.
    pub fn counts(&self) -> CountsSnapshot {
        self.counting.counts().snapshot()
    }
}

/// Requests and bytes between two snapshots.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct Traffic {
    /// Requests of every kind.
    pub requests: u64,
    /// Bytes read (GET bodies, downloads).
    pub bytes_down: u64,
    /// Bytes written (PUT bodies, uploads).
    pub bytes_up: u64,
}

impl Traffic {
    /// `after - before`.
    pub fn between(before: CountsSnapshot, after: CountsSnapshot) -> Self {
        Self {
            requests: after.requests() - before.requests(),
            bytes_down: after.get_bytes - before.get_bytes,
            bytes_up: after.put_bytes - before.put_bytes,
        }
    }
}

/// Another S3 server to run against instead of the harness's SeaweedFS,
/// its bucket `bench-pains` made beforehand (e.g. moto's server, to tell
/// what is SeaweedFS's own from what is silt's).
const OTHER_SERVER: &str = "SILT_BENCH_S3_ENDPOINT";

/// Which emulator the benchmark's datastores live on: `s3` (SeaweedFS,
/// the default), `gcs` (fake-gcs-server behind its gate) or `azure`
/// (Azurite).
const BACKEND: &str = "SILT_BENCH_BACKEND";

/// The `[datastore]` backend lines of a datastore under `prefix` on the
/// benchmark's backend, and the endpoint they name.
async fn backend_toml(prefix: &str) -> (String, String) {
    match std::env::var(BACKEND).as_deref().unwrap_or("s3") {
        "gcs" => {
            support::fake_gcs::create_bucket("bench-pains");
            let endpoint = support::fake_gcs::gated().to_owned();
            let lines = format!(
                "backend = \"gcs\"\n[datastore.gcs]\nbucket = \"bench-pains\"\nprefix = \"{prefix}\"\nendpoint = \"{endpoint}\"\ncredentials = \"none\"\n"
            );
            (lines, endpoint)
        }
        "azure" => {
            let endpoint = support::azurite::config("bench-pains", "")
                .endpoint
                .expect("Azurite's endpoint");
            let lines = format!(
                "backend = \"azure\"\n[datastore.azure]\naccount = \"{}\"\ncontainer = \"bench-pains\"\nprefix = \"{prefix}\"\nendpoint = \"{endpoint}\"\n",
                support::azurite::ACCOUNT,
            );
            (lines, endpoint)
        }
        "s3" => {
            let endpoint = match std::env::var(OTHER_SERVER) {
                Ok(endpoint) => endpoint,
                Err(_) => {
                    support::seaweed::store("bench-pains", prefix).await;
                    support::seaweed::server().endpoint.clone()
                }
            };
            let lines = format!(
                "backend = \"s3\"\n[datastore.s3]\nbucket = \"bench-pains\"\nprefix = \"{prefix}\"\nendpoint = \"{endpoint}\"\n"
            );
            (lines, endpoint)
        }
        other => panic!("{BACKEND}={other}: expected s3, gcs or azure"),
    }
}

async fn shared(extension: &str, tag: &str) -> Shared {
    let prefix = format!("{extension}{tag}-{}", std::process::id());
    let (store, endpoint) = backend_toml(&prefix).await;
    let (floor_store, _) = backend_toml(&format!("{prefix}-floor")).await;
    let toml_with = |store: &str| {
        format!(
            "[datastore]\nextension = \"{extension}\"\n{store}\
             # The baseline waits up to 60 s for the namespace lock inside one call\n\
             # and holds the whole index in memory: give both the room.\n\
             [runtime]\ndeadline_ms = 600000\nmemory_limit_mib = 3072\n"
        )
    };
    let toml = toml_with(&store);
    let proxy = LatencyProxy::start(&support::distance::upstream(&endpoint));
    let far = open_root(&toml_with(
        &store.replace(&endpoint, &support::distance::through(&proxy, &endpoint)),
    ));
    let switch = Arc::new(Switch::new(open_root(&toml), far, proxy));
    let floor = open_root(&toml_with(&floor_store));
    let locks = Arc::new(LockWatch::new(switch.clone() as Arc<dyn ObjectStore>));
    let timeline = Arc::new(Timeline::new(locks.clone() as Arc<dyn ObjectStore>));
    let counting = Arc::new(Counting::new(timeline.clone() as Arc<dyn ObjectStore>));
    Shared {
        counting,
        timeline,
        switch,
        locks,
        toml,
        floor,
    }
}

/// The datastore root `toml` configures, opened as every clone opens it.
fn open_root(toml: &str) -> Arc<dyn ObjectStore> {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("silt.toml"), toml).unwrap();
    let locations = silt::locations::Locations::discover(dir.path()).unwrap();
    silt::store::root::open(&locations.config.datastore.root(&locations.store_dir)).unwrap()
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let support::bench_args::BenchArgs { quick, out, only } =
        support::bench_args::BenchArgs::with_parts(&["scenarios", "at-scale", "write-ratio"]);
    let runs = |part: &str| only.as_deref().is_none_or(|only| only == part);
    let mut sizes = if quick {
        Sizes {
            files_per_model: 32,
            models: vec![8, 32, 128],
            writes: 3,
            at_scale: (160, 4),
            write_ratio: write_ratio::RatioSizes {
                small_models: 8,
                large_models: 32,
                files: 32,
                writes: 4,
            },
            settle: false,
        }
    } else {
        // 1,024 / 16,384 / 262,144 objects.
        Sizes {
            files_per_model: 128,
            models: vec![8, 128, 2_048],
            writes: 5,
            // 1,048,576 objects.
            at_scale: (8_192, 128),
            // 1,024 and 262,144 objects, as scenario 1's ends.
            write_ratio: write_ratio::RatioSizes {
                small_models: 8,
                large_models: 2_048,
                files: 128,
                writes: 40,
            },
            settle: true,
        }
    };
    sizes.models = scenario_models(sizes.models);
    support::seaweed::use_test_credentials();
    let mut results = Vec::new();
    for extension in scenario_extensions()
        .into_iter()
        .filter(|_| runs("scenarios"))
    {
        let shared = shared(extension, "").await;
        let result = scenarios::run_all(extension, &shared, &sizes).await;
        results.push(result);
    }
    let (models, files) = sizes.at_scale;
    let at_scale = if runs("at-scale") {
        let shared = shared(EXTENSIONS[0], "-at-scale").await;
        Some(at_scale::run(&shared, models, files).await)
    } else {
        None
    };
    let write_ratio = if runs("write-ratio") {
        let small = shared(EXTENSIONS[0], "-ratio-small").await;
        let large = shared(EXTENSIONS[0], "-ratio-large").await;
        Some(write_ratio::run(&small, &large, &sizes.write_ratio).await)
    } else {
        None
    };
    if !results.is_empty() {
        scenarios::check_agreement(&results);
        scenarios::print(&results, &sizes);
        let rows: Vec<&[distance::NearAndFar]> =
            results.iter().map(|r| r.near_and_far.as_slice()).collect();
        let names: Vec<&str> = results.iter().map(|r| r.extension.as_str()).collect();
        distance::check(&rows, &names);
        distance::print(&rows, &names);
    }
    if let Some(at_scale) = &at_scale {
        at_scale::print(at_scale);
    }
    if let Some(write_ratio) = &write_ratio {
        write_ratio::print(write_ratio);
    }
    if let Some(out) = out {
        let all = serde_json::json!({
            "extensions": results,
            "at_scale": at_scale,
            "write_ratio": write_ratio,
        });
        std::fs::write(&out, serde_json::to_string_pretty(&all).unwrap()).unwrap();
        eprintln!("wrote {out}");
    }
}
