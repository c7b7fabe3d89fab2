//! Lazy hydration vs full hydration vs raw GETs, on one fixture in
//! SeaweedFS (started here), side by side in one run:
//!
//! - **one model**: a cold lazy clone (open, setup) then what `silt run
//!   --model` does (lease, make the model present, push nothing, release);
//! - **full hydration**: a cold full clone fetching every model's latest
//!   files (what `silt datastore setup` does under `hydration = "full"`);
//! - **raw GETs**: the same data keys fetched with plain concurrent GETs,
//!   each written to a file, as many in flight as the transfer limit (no
//!   index, no temporary file, no verification: a copy tool) — the ceiling
//!   hydration is held against;
//! - **raw GETs with the index**: the same, after GETs (into memory) of
//!   every other object the full hydration read (the index partitions):
//!   what a copy tool that had to read the index first would do — so the
//!   index's share of the gap is measured, not estimated;
//! - **host downloads**: the same keys through the host's bulk `download`
//!   outside any extension call (streamed, hashed, landed atomically beside
//!   the target), one call for all, as many in flight as the transfer
//!   limit: what the landing costs, without the extension's planning,
//!   index reads, `stat`s and sidecars.
//!
//! Then one more round of every path far from the store: through the
//! latency proxy (`support::distance::far`, 20 ms a round trip unless set
//! otherwise), which counts each path's requests in sequence and so its
//! physical limit at that distance.
//!
//! The fixture (`fixture.rs`): 2,000 models × 33 names × 4 versions =
//! 264,000 objects, ≈ 252 MB (`--quick`: 64 × 8 × 2). Prints a markdown
//! table; writes JSON to the path given.

#[path = "../../../../tests/support/mod.rs"]
mod support;

mod fixture;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Instant;

use serde::Serialize;
use silt::capabilities::transfer::{Transfer, download};
use silt::datastore::{Datastore, LeasePolicy, hydrate_everything, make_present, under_leases};
use silt::locations::Locations;
use silt::runtime::bindings::exports::silt::datastore::sync::{SetupOptions, SyncOptions};
use silt::runtime::bindings::silt::datastore::object_store::DownloadItem;
use silt::runtime::bindings::silt::datastore::types::{LocalEdits, LockScope, Scope};
use silt::store::{Counting, GetOutcome, ObjectKey, ObjectStore};
use support::distance::{self, limit_ms};
use support::latency_proxy::{Distance, LatencyProxy, critical_path};
use support::recording_store::Recording;

use fixture::Shape;

/// The extension measured: silt's.
const EXTENSION: &str = "partitioned-datastore";

/// One clone's directory and configuration.
struct Clone {
    _dir: tempfile::TempDir,
    locations: Locations,
}

fn new_clone(toml: &str, hydration: &str) -> Clone {
    let dir = scratch_dir();
    let toml = toml.replacen(
        "[datastore]\n",
        &format!("[datastore]\nhydration = \"{hydration}\"\n"),
        1,
    );
    std::fs::write(dir.path().join("silt.toml"), toml).unwrap();
    let locations = Locations::discover(dir.path()).unwrap();
    Clone {
        _dir: dir,
        locations,
    }
}

/// Opens `clone`'s datastore on a recording store.
async fn open(clone: &Clone) -> (Arc<Recording>, Arc<Datastore>) {
    let config = &clone.locations.config.datastore;
    let root = silt::store::root::open(&config.root(&clone.locations.store_dir)).unwrap();
    let recording = Arc::new(Recording::new(root));
    let component = support::component(EXTENSION);
    let datastore =
        Datastore::open_with_store(&clone.locations, &component, recording.clone(), None)
            .await
            .unwrap();
    (recording, Arc::new(datastore))
}

async fn set_up(datastore: &Datastore, create: bool) {
    datastore
        .setup(SetupOptions {
            create,
            retain_versions: None,
        })
        .await
        .unwrap();
}

/// Requests, bytes, time and CPU of one measured path.
#[derive(Debug, Clone, Serialize)]
struct Measured {
    requests: u64,
    bytes_read: u64,
    objects_fetched: u64,
    seconds: f64,
    /// CPU seconds this process (the client) and the server used meanwhile:
    /// they share the machine's cores, so a path that needs less of either
    /// leaves more to the other.
    cpu: Cpu,
}

/// CPU seconds used by this process and by the S3 server.
#[derive(Debug, Clone, Copy, Default, Serialize)]
struct Cpu {
    client: f64,
    server: f64,
}

impl Cpu {
    fn now() -> Cpu {
        Cpu {
            client: support::cpu_time::of_self(),
            server: support::cpu_time::of(support::seaweed::server().pid())
                .expect("the S3 server is running"),
        }
    }

    /// What was used since `earlier`.
    fn since(self, earlier: Cpu) -> Cpu {
        Cpu {
            client: self.client - earlier.client,
            server: self.server - earlier.server,
        }
    }
}

impl Measured {
    /// Client and server CPU seconds a file fetched.
    fn cpu_per_file(&self) -> f64 {
        (self.cpu.client + self.cpu.server) / self.objects_fetched as f64
    }

    fn objects_per_second(&self) -> f64 {
        self.objects_fetched as f64 / self.seconds
    }

    fn mib_per_second(&self) -> f64 {
        self.bytes_read as f64 / self.seconds / (1 << 20) as f64
    }
}

/// A cold lazy clone, then `silt run --model` on model `target`.
async fn one_model(toml: &str, target: usize, policy: &LeasePolicy) -> Measured {
    let clone = new_clone(toml, "lazy");
    let cpu = Cpu::now();
    let started = Instant::now();
    let (recording, datastore) = open(&clone).await;
    set_up(&datastore, false).await;
    let model = fixture::model(target);
    let scopes = vec![LockScope::Model(model.clone())];
    let fetched = under_leases(&datastore, scopes, policy, async |leases| {
        let (presence, _held) =
            make_present(&datastore, std::slice::from_ref(&model), LocalEdits::Keep).await?;
        assert!(presence.full_pull_because.is_none());
        datastore
            .push(&SyncOptions {
                scope: Scope::Models(vec![model.clone()]),
                leases: leases.leases(),
                dry_run: false,
                fetch_missing: false,
                local_edits: LocalEdits::Keep,
            })
            .await?;
        anyhow::Ok(presence.fetched)
    })
    .await
    .unwrap();
    let seconds = started.elapsed().as_secs_f64();
    let traffic = datastore.traffic();
    // Only this model's data was read.
    let prefix = format!("data/fixture/m{target:05}/");
    let reads = recording.take_reads();
    let foreign: Vec<&String> = reads
        .iter()
        .filter(|k| k.starts_with("data/") && !k.starts_with(&prefix))
        .collect();
    assert!(foreign.is_empty(), "read other models' data: {foreign:?}");
    Measured {
        requests: traffic.requests(),
        bytes_read: traffic.get_bytes,
        objects_fetched: fetched.objects,
        seconds,
        cpu: Cpu::now().since(cpu),
    }
}

/// What a full hydration read: the data keys (the files it fetched) and
/// the other objects (the index), each sorted.
#[derive(Debug, PartialEq, Eq)]
struct Reads {
    data: Vec<String>,
    index: Vec<String>,
}

/// A cold full clone hydrating everything; returns the keys it read.
async fn full_hydration(toml: &str, shape: Shape) -> (Measured, Reads) {
    let clone = new_clone(toml, "full");
    let cpu = Cpu::now();
    let started = Instant::now();
    let (recording, datastore) = open(&clone).await;
    let opened = started.elapsed().as_secs_f64();
    set_up(&datastore, false).await;
    let set = started.elapsed().as_secs_f64();
    let fetched = hydrate_everything(&datastore, &mut |_| {}).await.unwrap();
    eprintln!(
        "full hydration: open {:.0} ms, setup {:.0} ms, hydrate {:.0} ms",
        opened * 1e3,
        (set - opened) * 1e3,
        (started.elapsed().as_secs_f64() - set) * 1e3
    );
    let seconds = started.elapsed().as_secs_f64();
    let cpu = Cpu::now().since(cpu);
    let traffic = datastore.traffic();
    assert_eq!(
        fetched.objects as usize,
        shape.models * shape.names,
        "full hydration fetched {} files",
        fetched.objects
    );
    // Listings are recorded as `list:<prefix>`: not objects to GET.
    let (data, index): (BTreeSet<String>, BTreeSet<String>) = recording
        .take_reads()
        .into_iter()
        .filter(|k| !k.starts_with("list:"))
        .partition(|k| k.starts_with("data/"));
    let measured = Measured {
        requests: traffic.requests(),
        bytes_read: traffic.get_bytes,
        objects_fetched: fetched.objects,
        seconds,
        cpu,
    };
    let reads = Reads {
        data: data.into_iter().collect(),
        index: index.into_iter().collect(),
    };
    (measured, reads)
}

/// Plain concurrent GETs of `keys`, each written to a file under `into`
/// (as a copy tool would: no temporary file, no checksum), `concurrency`
/// in flight: that many tasks, each taking the next key until none is
/// left. The host's transfers are scheduled the same way, so the ceiling
/// is not lowered by a task and a wake-up of this thread a file. `into` is
/// the bench's own scratch directory, which no extension writes to: plain
/// `std::fs` is the copy tool's way. `index` (empty, or the index objects
/// the hydration read) is fetched first, into memory and dropped, from the
/// same queue; only the files count as fetched.
async fn raw_gets(
    store: Arc<dyn ObjectStore>,
    index: &[String],
    keys: &[String],
    concurrency: usize,
    into: &std::path::Path,
) -> Measured {
    let counting = Arc::new(Counting::new(store));
    let store: Arc<dyn ObjectStore> = counting.clone();
    // Timed from here: the host's transfers check each key and path in
    // their time too.
    let cpu = Cpu::now();
    let started = Instant::now();
    let work: Arc<Vec<(ObjectKey, Option<std::path::PathBuf>)>> = Arc::new(
        index
            .iter()
            .map(|key| (ObjectKey::new(key).unwrap(), None))
            .chain(keys.iter().map(|key| {
                let path = into.join(working_path(key));
                (ObjectKey::new(key).unwrap(), Some(path))
            }))
            .collect(),
    );
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..concurrency.clamp(1, work.len().max(1)) {
        let (store, work, next) = (store.clone(), work.clone(), next.clone());
        tasks.spawn(async move {
            let mut written = 0u64;
            loop {
                let index = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some((key, path)) = work.get(index) else {
                    return written;
                };
                let data = match store.get(key, None).await.unwrap() {
                    GetOutcome::Found(_, data) => data,
                    GetOutcome::NotModified => unreachable!(),
                };
                let Some(path) = path.clone() else {
                    continue;
                };
                tokio::task::spawn_blocking(move || {
                    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
                    std::fs::write(&path, data).unwrap();
                })
                .await
                .unwrap();
                written += 1;
            }
        });
    }
    let mut written = 0;
    while let Some(joined) = tasks.join_next().await {
        written += joined.unwrap();
    }
    let seconds = started.elapsed().as_secs_f64();
    let cpu = Cpu::now().since(cpu);
    let counts = counting.counts().snapshot();
    Measured {
        requests: counts.requests(),
        bytes_read: counts.get_bytes,
        objects_fetched: written,
        seconds,
        cpu,
    }
}

#[derive(Serialize)]
struct Report {
    shape: Shape,
    fill: fixture::Filled,
    store_bytes: u64,
    one_model: Vec<Measured>,
    full_hydration: Vec<Measured>,
    raw_gets: Vec<Measured>,
    raw_gets_with_index: Vec<Measured>,
    host_downloads: Vec<Measured>,
    /// One round far from the store (not while profiling one path).
    far: Option<Far>,
}

/// The round far from the store.
#[derive(Serialize)]
struct Far {
    rtt_ms: f64,
    /// Bytes per second each way; `None`: uncapped.
    bandwidth: Option<u64>,
    paths: Vec<FarPath>,
}

/// One path far from the store.
#[derive(Serialize)]
struct FarPath {
    path: &'static str,
    measured: Measured,
    /// Requests one after another, as the proxy saw them.
    in_sequence: usize,
    /// The least time any client could take (see `distance::limit_ms`).
    limit_ms: f64,
}

/// The median (of an even count: the mean of the middle two).
fn median(values: impl Iterator<Item = f64>) -> f64 {
    let mut values: Vec<f64> = values.collect();
    values.sort_by(f64::total_cmp);
    let middle = values.len() / 2;
    if values.len().is_multiple_of(2) {
        (values[middle - 1] + values[middle]) / 2.0
    } else {
        values[middle]
    }
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let support::bench_args::BenchArgs { quick, out, .. } =
        support::bench_args::BenchArgs::from_env();
    let shape = if quick {
        Shape {
            models: 64,
            names: 8,
            versions: 2,
        }
    } else {
        Shape {
            models: count_from_env("SILT_BENCH_HYDRATION_MODELS", 2_000),
            names: 33,
            versions: count_from_env("SILT_BENCH_HYDRATION_VERSIONS", 4),
        }
    };
    support::seaweed::use_test_credentials();
    let prefix = format!("hydration-{}", std::process::id());
    support::seaweed::store("bench-hydration", &prefix).await;
    let toml = format!(
        "[datastore]\nextension = \"{EXTENSION}\"\nbackend = \"s3\"\n[datastore.s3]\nbucket = \"bench-hydration\"\nprefix = \"{prefix}\"\nendpoint = \"{}\"\n",
        support::seaweed::server().endpoint
    );

    // The fixture, through a writer clone.
    let writer = new_clone(&toml, "lazy");
    let (_, writer_store) = open(&writer).await;
    set_up(&writer_store, true).await;
    let policy = LeasePolicy::from_config(&writer.locations.config.locks).unwrap();
    eprintln!(
        "fixture: {} models × {} names × {} versions = {} objects, {:.1} MB",
        shape.models,
        shape.names,
        shape.versions,
        shape.objects(),
        shape.bytes() as f64 / 1e6
    );
    let fill = fixture::fill(&writer_store, &policy, shape).await;
    eprintln!(
        "fixture: filled in {:.0} s ({:.0} objects/s)",
        fill.seconds,
        fill.objects as f64 / fill.seconds
    );
    let concurrency = writer.locations.config.datastore.transfer_concurrency;
    let root = silt::store::root::open(
        &writer
            .locations
            .config
            .datastore
            .root(&writer.locations.store_dir),
    )
    .unwrap();

    // Side by side, alternating, so drift on this shared machine hits all.
    let rounds = if quick {
        1
    } else {
        count_from_env("SILT_BENCH_HYDRATION_ROUNDS", 2)
    };
    // One path only after round 0 (which reads the keys), to profile it:
    // `SILT_BENCH_HYDRATION_ONLY` = `hydration`, `host`, `raw` or
    // `raw-index`.
    let only = std::env::var("SILT_BENCH_HYDRATION_ONLY")
        .ok()
        .map(|path| match path.as_str() {
            "hydration" => 0,
            "host" => 1,
            "raw" => 2,
            "raw-index" => 3,
            other => panic!(
                "SILT_BENCH_HYDRATION_ONLY: hydration, host, raw or raw-index, not {other:?}"
            ),
        });
    if only.is_some() && rounds < 2 {
        eprintln!(
            "SILT_BENCH_HYDRATION_ONLY needs SILT_BENCH_HYDRATION_ROUNDS of 2 or more: round 0 runs every path"
        );
    }
    let mut report = Report {
        shape,
        fill,
        store_bytes: shape.bytes(),
        one_model: Vec::new(),
        full_hydration: Vec::new(),
        raw_gets: Vec::new(),
        raw_gets_with_index: Vec::new(),
        host_downloads: Vec::new(),
        far: None,
    };
    // The keys the other paths fetch: what the first full hydration read
    // (the same in every round; checked).
    let mut reads: Option<Reads> = None;
    for round in 0..rounds {
        // While profiling one path, only round 0 (outside the profile) runs
        // the clones.
        let clones = if only.is_none() || round == 0 { 3 } else { 0 };
        for k in 0..clones {
            let target = ((round * 3 + k) * shape.models / 7 + 1) % shape.models;
            report
                .one_model
                .push(one_model(&toml, target, &policy).await);
        }
        // The four paths in turn, the order rotated each round and
        // reversed every other round (round 0 starts with the full
        // hydration, whose reads are the keys the others fetch), so a drift
        // of this machine over the run weighs on every path alike, and no
        // path always follows the same one (the store's caches warmed by
        // the one before).
        let paths: Vec<usize> = match only {
            Some(path) if round > 0 => vec![path],
            _ => {
                let mut paths: Vec<usize> = (0..4).map(|k| (k + round) % 4).collect();
                if round % 2 == 1 {
                    paths.reverse();
                }
                paths
            }
        };
        if only.is_some() && round == 1 {
            eprintln!("from here on, one path only");
        }
        for path in paths {
            if path == 0 {
                let (full, read) = full_hydration(&toml, shape).await;
                eprintln!("round {round}: full hydration {:.1} s", full.seconds);
                report.full_hydration.push(full);
                match &reads {
                    Some(reads) => {
                        assert_eq!(reads, &read, "round {round} read other keys");
                    }
                    None => {
                        // The baselines write each key at its working
                        // path: one key a path, or they would overwrite.
                        let paths: BTreeSet<&str> =
                            read.data.iter().map(|key| working_path(key)).collect();
                        assert_eq!(paths.len(), read.data.len(), "two keys of one working path");
                        eprintln!(
                            "full hydration read {} files and {} other objects (the index)",
                            read.data.len(),
                            read.index.len()
                        );
                        reads = Some(read);
                    }
                }
                continue;
            }
            let reads = reads
                .as_ref()
                .expect("round 0 ran the full hydration first");
            match path {
                1 => report
                    .host_downloads
                    .push(host_round(round, &root, &reads.data, concurrency).await),
                2 => report
                    .raw_gets
                    .push(raw_round(round, &root, &[], &reads.data, concurrency).await),
                _ => report
                    .raw_gets_with_index
                    .push(raw_round(round, &root, &reads.index, &reads.data, concurrency).await),
            }
        }
    }
    if only.is_none() {
        let reads = reads.as_ref().expect("round 0 ran the full hydration");
        report.far = Some(far_round(&toml, shape, &policy, reads, concurrency).await);
    }
    print(&report, concurrency);
    if let Some(out) = out {
        std::fs::write(&out, serde_json::to_string_pretty(&report).unwrap()).unwrap();
        eprintln!("wrote {out}");
    }
}

/// Every path once more, far from the store: the same server through a
/// latency proxy at [`distance::far`], whose log tells each path's
/// requests in sequence.
async fn far_round(
    toml: &str,
    shape: Shape,
    policy: &LeasePolicy,
    reads: &Reads,
    concurrency: usize,
) -> Far {
    let far = distance::far();
    let endpoint = &support::seaweed::server().endpoint;
    let proxy = LatencyProxy::start(&distance::upstream(endpoint));
    proxy.set(far);
    let toml = toml.replace(endpoint.as_str(), &distance::through(&proxy, endpoint));
    let reader = new_clone(&toml, "lazy");
    let config = &reader.locations.config.datastore;
    let root = silt::store::root::open(&config.root(&reader.locations.store_dir)).unwrap();
    let mut paths = Vec::new();
    let mut record = |path: &'static str, measured: Measured, proxy: &LatencyProxy| {
        let in_sequence = critical_path(&proxy.take_log());
        eprintln!(
            "far: {path} {:.1} s, {in_sequence} requests in sequence",
            measured.seconds
        );
        let limit_ms = limit_ms(far, in_sequence, measured.bytes_read);
        paths.push(FarPath {
            path,
            measured,
            in_sequence,
            limit_ms,
        });
    };
    proxy.take_log();
    let one = one_model(&toml, shape.models / 3, policy).await;
    record("one model", one, &proxy);
    let (full, read) = full_hydration(&toml, shape).await;
    assert_eq!(&read, reads, "the far full hydration read other keys");
    record("full hydration", full, &proxy);
    let raw = raw_round(0, &root, &[], &reads.data, concurrency).await;
    record("raw GETs", raw, &proxy);
    let with_index = raw_round(0, &root, &reads.index, &reads.data, concurrency).await;
    record("raw GETs with the index", with_index, &proxy);
    let host = host_round(0, &root, &reads.data, concurrency).await;
    record("host downloads", host, &proxy);
    proxy.set(Distance::default());
    Far {
        rtt_ms: far.rtt.as_secs_f64() * 1e3,
        bandwidth: far.bandwidth,
        paths,
    }
}

/// A new directory for a clone or the raw GETs' files: in
/// `SILT_BENCH_HYDRATION_DIR` when set (e.g. a tmpfs, to take the local
/// file system's cost out of both paths), else in the system's temp dir.
fn scratch_dir() -> tempfile::TempDir {
    match std::env::var_os("SILT_BENCH_HYDRATION_DIR") {
        Some(dir) => tempfile::tempdir_in(&dir)
            .unwrap_or_else(|err| panic!("SILT_BENCH_HYDRATION_DIR {dir:?}: {err}")),
        None => tempfile::tempdir().unwrap(),
    }
}

/// Where the extension lands the object `key` (`data/<model>/<name>/<version>`):
/// its working path, `data/<model>/<name>`. The raw GETs and the host
/// downloads write there too, so every path makes the same files in the
/// same directories (one a model's name directory, not one a version).
fn working_path(key: &str) -> &str {
    key.rsplit_once('/')
        .map(|(path, _version)| path)
        .unwrap_or_else(|| panic!("a data key ends in its version: {key}"))
}

/// One round's raw GETs of `keys` (after `index`, see [`raw_gets`]), into
/// a directory removed afterwards.
async fn raw_round(
    round: usize,
    root: &Arc<dyn ObjectStore>,
    index: &[String],
    keys: &[String],
    concurrency: usize,
) -> Measured {
    let into = scratch_dir();
    let raw = raw_gets(root.clone(), index, keys, concurrency, into.path()).await;
    let with = if index.is_empty() {
        ""
    } else {
        " with the index"
    };
    eprintln!("round {round}: raw GETs{with} {:.1} s", raw.seconds);
    raw
}

/// One round's host downloads of `keys`, into a directory removed
/// afterwards.
async fn host_round(
    round: usize,
    root: &Arc<dyn ObjectStore>,
    keys: &[String],
    concurrency: usize,
) -> Measured {
    let into = scratch_dir();
    let host = host_downloads(root.clone(), keys, concurrency, into.path()).await;
    eprintln!("round {round}: host downloads {:.1} s", host.seconds);
    host
}

/// The host's bulk `download` of `keys` into `into`, each at its working
/// path, in one call with `concurrency` in flight.
async fn host_downloads(
    store: Arc<dyn ObjectStore>,
    keys: &[String],
    concurrency: usize,
    into: &std::path::Path,
) -> Measured {
    let counting = Arc::new(Counting::new(store));
    let store: Arc<dyn ObjectStore> = counting.clone();
    let items: Vec<DownloadItem> = keys
        .iter()
        .map(|key| DownloadItem {
            key: key.clone(),
            cache_path: working_path(key).to_owned(),
            expected_version: None,
            sha256: None,
        })
        .collect();
    let cpu = Cpu::now();
    let started = Instant::now();
    let transfer = Transfer::between(store, into, concurrency, None).expect("transfer");
    let results = download(Ok(transfer), items).await;
    let seconds = started.elapsed().as_secs_f64();
    let cpu = Cpu::now().since(cpu);
    let failed = results.iter().filter(|result| result.is_err()).count();
    assert_eq!(failed, 0, "{failed} host downloads failed");
    let counts = counting.counts().snapshot();
    Measured {
        requests: counts.requests(),
        bytes_read: counts.get_bytes,
        objects_fetched: results.len() as u64,
        seconds,
        cpu,
    }
}

/// A count for the full run: `default`, or the positive number in the
/// environment variable `name`. `SILT_BENCH_HYDRATION_MODELS` (2,000)
/// makes a shorter run of the same shape, e.g. to compare two builds (the
/// fill takes most of the full run's time); `SILT_BENCH_HYDRATION_ROUNDS`
/// (2) more rounds, alternating, to tell a few percent from this
/// machine's drift; `SILT_BENCH_HYDRATION_VERSIONS` (4) the versions of
/// each name, which the index partitions hold (hydration fetches the
/// latest only), to weigh what reading the index costs.
fn count_from_env(name: &str, default: usize) -> usize {
    match std::env::var(name) {
        Ok(value) => value
            .parse()
            .ok()
            .filter(|&count: &usize| count > 0)
            .unwrap_or_else(|| panic!("{name}: a positive number, not {value:?}")),
        Err(_) => default,
    }
}

fn print(report: &Report, concurrency: usize) {
    let shape = report.shape;
    println!(
        "\n## Lazy hydration: {} models × {} names × {} versions = {} objects, {:.1} MB in SeaweedFS\n",
        shape.models,
        shape.names,
        shape.versions,
        shape.objects(),
        report.store_bytes as f64 / 1e6
    );
    println!(
        "Fixture filled through the extension in {:.0} s ({:.0} objects/s).\n",
        report.fill.seconds,
        report.fill.objects as f64 / report.fill.seconds
    );
    println!("| path | requests | bytes read | files | wall (median) | files/s | MiB/s |");
    println!("|---|---|---|---|---|---|---|");
    let row = |label: &str, all: &[Measured]| {
        let first = &all[0];
        let seconds = median(all.iter().map(|m| m.seconds));
        println!(
            "| {label} | {} | {:.1} KiB | {} | {:.0} ms | {:.0} | {:.1} |",
            first.requests,
            first.bytes_read as f64 / 1024.0,
            first.objects_fetched,
            seconds * 1e3,
            median(all.iter().map(Measured::objects_per_second)),
            median(all.iter().map(Measured::mib_per_second)),
        );
    };
    row("cold lazy clone + run on one model", &report.one_model);
    row("cold full clone: full hydration", &report.full_hydration);
    row(
        &format!("raw GETs of the same files to files ({concurrency} in flight)"),
        &report.raw_gets,
    );
    row(
        &format!("raw GETs of the index, then of the same files ({concurrency} in flight)"),
        &report.raw_gets_with_index,
    );
    row(
        &format!("host downloads of the same files ({concurrency} in flight)"),
        &report.host_downloads,
    );
    let one = &report.one_model[0];
    let full = &report.full_hydration[0];
    println!(
        "\none model: {:.3}% of the full hydration's bytes, {:.3}% of the store's; {:.0} ms (median of {})",
        one.bytes_read as f64 * 100.0 / full.bytes_read as f64,
        one.bytes_read as f64 * 100.0 / report.store_bytes as f64,
        median(report.one_model.iter().map(|m| m.seconds)) * 1e3,
        report.one_model.len()
    );
    // Besides files/s, the ratio of CPU a file (client and server): every
    // path keeps both cores busy here, so it predicts the files/s ratio,
    // and it moves less from round to round than the wall times do.
    let ratios = |label: &str, of: &[Measured], against: &str, baseline: &[Measured]| {
        let pairs = || of.iter().zip(baseline);
        let by_files: Vec<f64> = pairs()
            .map(|(f, r)| f.objects_per_second() * 100.0 / r.objects_per_second())
            .collect();
        let by_cpu = median(pairs().map(|(f, r)| r.cpu_per_file() * 100.0 / f.cpu_per_file()));
        let rounds: Vec<String> = by_files
            .iter()
            .map(|ratio| format!("{ratio:.0}%"))
            .collect();
        println!(
            "{label} throughput / {against} (files/s, each round side by side): {}; median {:.1}%; by CPU a file (the baseline's / its own), median {by_cpu:.1}%",
            rounds.join(", "),
            median(by_files.iter().copied()),
        );
    };
    let (raw, with_index) = (&report.raw_gets[..], &report.raw_gets_with_index[..]);
    ratios("full hydration", &report.full_hydration, "raw GETs", raw);
    ratios("host downloads", &report.host_downloads, "raw GETs", raw);
    // Where the gap goes: reading the index (which the raw GETs skip), and
    // the rest (the landing, the extension's work).
    ratios("raw GETs with the index", with_index, "raw GETs", raw);
    ratios(
        "full hydration",
        &report.full_hydration,
        "raw GETs with the index",
        with_index,
    );
    println!(
        "\nCPU per 1,000 files (median over rounds; client = this process, server = SeaweedFS; busy = CPU seconds per wall second, of {} cores):\n",
        std::thread::available_parallelism().map_or(0, usize::from)
    );
    println!("| path | client CPU ms | server CPU ms | busy |");
    println!("|---|---|---|---|");
    let cpu_row = |label: &str, all: &[Measured]| {
        let per_thousand = |cpu: fn(&Cpu) -> f64| {
            median(
                all.iter()
                    .map(|m| cpu(&m.cpu) * 1e6 / m.objects_fetched as f64),
            )
        };
        println!(
            "| {label} | {:.0} | {:.0} | {:.2} |",
            per_thousand(|cpu| cpu.client),
            per_thousand(|cpu| cpu.server),
            median(
                all.iter()
                    .map(|m| (m.cpu.client + m.cpu.server) / m.seconds)
            ),
        );
    };
    cpu_row("full hydration", &report.full_hydration);
    cpu_row("raw GETs", &report.raw_gets);
    cpu_row("raw GETs with the index", &report.raw_gets_with_index);
    cpu_row("host downloads", &report.host_downloads);
    if let Some(far) = &report.far {
        print_far(far);
    }
}

fn print_far(far: &Far) {
    let bandwidth = far.bandwidth.map_or("uncapped".to_owned(), |rate| {
        format!("{:.0} MiB/s", rate as f64 / (1 << 20) as f64)
    });
    println!(
        "\nFar from the store ({:.0} ms a round trip, bandwidth {bandwidth}; one round; the limit is the requests in sequence × the round trip, or the bytes at the bandwidth):\n",
        far.rtt_ms
    );
    println!("| path | requests | in sequence | wall | files/s | limit | wall / limit |");
    println!("|---|---|---|---|---|---|---|");
    for path in &far.paths {
        let m = &path.measured;
        println!(
            "| {} | {} | {} | {:.0} ms | {:.0} | {:.0} ms | {:.2}× |",
            path.path,
            m.requests,
            path.in_sequence,
            m.seconds * 1e3,
            m.objects_per_second(),
            path.limit_ms,
            m.seconds * 1e3 / path.limit_ms
        );
    }
    let files_per_second = |name: &str| {
        far.paths
            .iter()
            .find(|path| path.path == name)
            .map(|path| path.measured.objects_per_second())
    };
    if let (Some(full), Some(raw)) = (
        files_per_second("full hydration"),
        files_per_second("raw GETs"),
    ) {
        println!(
            "\nfar: full hydration / raw GETs (files/s): {:.1}%",
            full * 100.0 / raw
        );
    }
}
