//! `cargo xtask bench startup`: extension start-up costs, measured side by
//! side in one run, printed as a markdown table and written as JSON to
//! `target/bench/startup.json`.
//!
//! Measured (median of N runs each):
//! - `silt extension list` with 1 and with 100 installed extensions;
//! - first execution in a fresh process with an empty artifact cache (compile);
//! - execution in a fresh process with a warm cache (map + instantiate + call);
//! - in-process: fresh store + instantiate + one call (bench binary).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::build::{self, Result, run};

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn time_command(runs: usize, mut make: impl FnMut() -> Command) -> Result<Duration> {
    let mut samples = Vec::with_capacity(runs);
    for _ in 0..runs {
        let mut command = make();
        let started = Instant::now();
        let output = command
            .output()
            .map_err(|err| format!("cannot run {command:?}: {err}"))?;
        samples.push(started.elapsed());
        if !output.status.success() {
            return Err(format!(
                "{command:?} failed: {}",
                String::from_utf8_lossy(&output.stderr)
            ));
        }
    }
    Ok(median(samples))
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

/// Runs the start-up benchmark.
pub fn startup(args: &[&str]) -> Result<()> {
    let quick = args.contains(&"--quick");
    let runs = if quick { 3 } else { 15 };
    let components = build::components()?;
    let silt = build::silt_binary(profile(quick))?;
    let hello_path = components.join("hello-extension.wasm");
    let work = build::target_dir().join("bench/startup-work");
    let _ = std::fs::remove_dir_all(&work);
    let one = Sandbox::new(&silt, &work.join("one"));
    one.install(&hello_path)?;

    let list_1 = time_command(runs, || one.command(["extension", "list"]))?;
    let list_100 = list_with_100_installed(&silt, &work, &components, runs)?;
    let help = time_command(runs, || one.command(["--help"]))?;
    let compile_runs = if quick { 1 } else { 5 };
    let verify = ["extension", "verify", "hello-extension"];
    let first = time_command(compile_runs, || {
        let _ = std::fs::remove_dir_all(&one.cache);
        one.command(verify)
    })?;
    let warm = time_command(runs, || one.command(verify))?;
    // In-process: the bench binary loads once, then times fresh store + instantiate + call.
    let output = cargo_bench("startup", quick)
        .arg(&hello_path)
        .arg(if quick { "2000" } else { "20000" })
        .output()
        .map_err(|err| err.to_string())?;
    if !output.status.success() {
        return Err(format!(
            "in-process bench failed: {}",
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let field = |name: &str| -> Result<f64> {
        stdout
            .lines()
            .find_map(|line| line.strip_prefix(&format!("{name}=")))
            .and_then(|v| v.trim().parse().ok())
            .ok_or_else(|| format!("bench output lacks {name}: {stdout}"))
    };
    let in_process_us = field("in_process_us")?;
    let pooling = field("pooling")? > 0.0;

    let rows = [
        (
            "silt --help",
            ms(help),
            "never touches the compiler".to_owned(),
        ),
        (
            "silt extension list, 1 installed",
            ms(list_1),
            "≤ 15 ms for 100".to_owned(),
        ),
        (
            "silt extension list, 100 installed",
            ms(list_100),
            "≤ 15 ms".to_owned(),
        ),
        (
            "first execution, fresh process, empty cache (compile)",
            ms(first),
            String::new(),
        ),
        (
            "execution, fresh process, warm cache",
            ms(warm),
            "≤ 10 ms".to_owned(),
        ),
        (
            "in-process: fresh store + instantiate + describe",
            format!("{in_process_us:.1} µs"),
            "≤ 100 µs".to_owned(),
        ),
    ];
    println!("\n| scenario (median of {runs} runs; compile: {compile_runs}) | time | target |");
    println!("|---|---:|---|");
    for (name, value, target) in &rows {
        println!("| {name} | {value} | {target} |");
    }
    println!(
        "\nfirst/warm ratio: {:.0}x; pooling allocator: {}",
        first.as_secs_f64() / warm.as_secs_f64(),
        if pooling { "yes" } else { "no (on-demand)" }
    );
    let json = format!(
        "{{\"runs\":{runs},\"help_ms\":{},\"list_1_ms\":{},\"list_100_ms\":{},\"first_execution_ms\":{},\"warm_execution_ms\":{},\"in_process_us\":{in_process_us},\"pooling\":{pooling}}}\n",
        help.as_secs_f64() * 1e3,
        list_1.as_secs_f64() * 1e3,
        list_100.as_secs_f64() * 1e3,
        first.as_secs_f64() * 1e3,
        warm.as_secs_f64() * 1e3,
    );
    let out = build::target_dir().join("bench");
    std::fs::create_dir_all(&out).map_err(|err| err.to_string())?;
    std::fs::write(out.join("startup.json"), json).map_err(|err| err.to_string())?;
    println!("wrote {}", out.join("startup.json").display());
    Ok(())
}

/// `cargo xtask bench store`: the object-store benchmark against SeaweedFS,
/// then one large file in and out beside `aws s3 cp`, `s5cmd` and `cp` +
/// `sha256sum` (`large_objects`).
pub fn store(args: &[&str]) -> Result<()> {
    // `--only=` names a size of `large_objects`: the store benchmark has
    // no parts to pick from, so it is left out then.
    if !args.iter().any(|arg| arg.starts_with("--only=")) {
        run(&mut bench_binary("store", args)?)?;
    }
    let components = build::guest_components(&["extensions/partitioned-datastore"])?;
    let (aws, s5cmd) = build::s3_peers()?;
    run(bench_binary("large_objects", args)?
        .env("SILT_TEST_COMPONENTS", &components)
        .env("SILT_AWS", aws)
        .env("SILT_S5CMD", s5cmd))
}

/// `cargo xtask bench hydration`: a cold lazy clone running on one model
/// vs full hydration vs raw parallel GETs, on the fixture generator's
/// 264,000-object datastore in SeaweedFS (`--quick`: 1,024 objects).
pub fn hydration(args: &[&str]) -> Result<()> {
    let components = build::components()?;
    run(bench_binary("hydration", args)?.env("SILT_TEST_COMPONENTS", &components))
}

/// `cargo xtask bench datastore`: the field's pain scenarios, silt's
/// partitioned datastore beside the sharded and monolithic baselines, on SeaweedFS
/// (scenarios 1–6, the bench binary), then scenario 7, start-up, which is
/// about processes and so is timed here with the `silt` binary.
///
/// `--only=PART` runs one part: `scenarios`, `at-scale` or `write-ratio`
/// (the bench binary's), or `startup` (this one's).
pub fn datastore(args: &[&str]) -> Result<()> {
    let components = build::components()?;
    let only = args.iter().find_map(|a| a.strip_prefix("--only="));
    if only != Some("startup") {
        run(bench_binary("datastore", args)?.env("SILT_TEST_COMPONENTS", &components))?;
    }
    // The pain scenarios (one write's requests, the no-op sync, 16 writers)
    // again on the GCS and Azure emulators, beside SeaweedFS's above; near
    // the store only (a round trip of 0: the far runs' requests in sequence
    // are the extension's, measured on SeaweedFS). `--quick` runs all three
    // extensions there (their agreement is the check), the full run silt's
    // alone (the baselines are compared on SeaweedFS).
    if only.is_none_or(|part| part == "scenarios") {
        let fake_gcs = build::fake_gcs()?;
        let azurite = build::azurite()?;
        for backend in ["gcs", "azure"] {
            eprintln!("xtask: bench datastore: the scenarios on {backend}");
            let out = build::target_dir().join(format!("bench/datastore-{backend}.json"));
            let mut command = cargo_bench("datastore", args.contains(&"--quick"));
            command
                .arg(&out)
                .args(args.iter().filter(|arg| !arg.starts_with("--only=")))
                .arg("--only=scenarios")
                .env("SILT_TEST_COMPONENTS", &components)
                .env("SILT_BENCH_BACKEND", backend)
                .env("SILT_BENCH_RTT_MS", "0")
                .env("SILT_FAKE_GCS", &fake_gcs)
                .env("SILT_AZURITE", &azurite);
            if !args.contains(&"--quick") {
                // The emulators take minutes where SeaweedFS takes seconds
                // to be filled: silt's extension alone, up to 16,384 objects.
                command
                    .env("SILT_BENCH_EXTENSIONS", DATASTORE_EXTENSIONS[0])
                    .env("SILT_BENCH_MODELS", "8,128");
            }
            run(&mut command)?;
        }
    }
    if only.is_none_or(|part| part == "startup") {
        datastore_startup(&components, args.contains(&"--quick"))?;
    }
    Ok(())
}

/// `cargo xtask bench worker`: out-of-process execution vs in-process,
/// per driver (native, process, and containers under runc, podman and
/// docker).
pub fn worker(args: &[&str]) -> Result<()> {
    let components = build::components()?;
    let runc = build::runc()?;
    let podman = build::podman()?;
    let dockerd = crate::dockerd::Dockerd::start()?;
    // No S3 here: the worker bench runs on an in-memory store.
    run(bench_with_json("worker", args)?
        .env("SILT_TEST_COMPONENTS", &components)
        .env("SILT_RUNC", &runc)
        .env("SILT_PODMAN", &podman)
        .env("SILT_DOCKER", &dockerd.cli)
        .env("DOCKER_HOST", &dockerd.host))
}

/// `cargo xtask bench languages`: the Rust partitioned datastore beside the
/// TypeScript example: size, compile, instantiate, put and get.
pub fn languages(args: &[&str]) -> Result<()> {
    let components = build::components()?;
    run(cargo_bench("languages", args.contains(&"--quick"))
        .arg(components.join("partitioned-datastore.wasm"))
        .arg(components.join("ts-datastore.wasm"))
        .args(args))
}

/// The datastore extensions, silt's first (as in the bench binary).
const DATASTORE_EXTENSIONS: [&str; 3] = [
    "partitioned-datastore",
    "sharded-datastore",
    "monolith-datastore",
];

/// Scenario 7: `silt extension list` with 100 installed, and one datastore
/// command (`silt data list` of a model on a local-directory datastore) in
/// a fresh process: first (empty artifact cache: the component is compiled)
/// vs cached, for each datastore extension. Written to
/// `target/bench/datastore-startup.json`.
fn datastore_startup(components: &Path, quick: bool) -> Result<()> {
    let runs = if quick { 3 } else { 15 };
    let compile_runs = if quick { 1 } else { 3 };
    let silt = build::silt_binary(profile(quick))?;
    let work = build::target_dir().join("bench/datastore-startup-work");
    let _ = std::fs::remove_dir_all(&work);

    let list_100 = list_with_100_installed(&silt, &work, components, runs)?;

    let mut rows = Vec::new();
    for extension in DATASTORE_EXTENSIONS {
        let sandbox = Sandbox::new(&silt, &work.join(extension));
        let component = components.join(format!("{extension}.wasm"));
        sandbox.install(&component)?;
        let project = sandbox.project(extension)?;
        let payload = project.join("payload.bin");
        std::fs::write(&payload, vec![1u8; 1024]).map_err(|err| err.to_string())?;
        let payload = payload.to_string_lossy().into_owned();
        sandbox.quietly(["datastore", "setup"])?;
        sandbox.quietly(["data", "put", "bench/m1", "f.bin", &payload])?;
        let list = ["data", "list", "bench/m1"];
        let first = time_command(compile_runs, || {
            let _ = std::fs::remove_dir_all(&sandbox.cache);
            sandbox.command(list)
        })?;
        let cached = time_command(runs, || sandbox.command(list))?;
        let size = std::fs::metadata(&component)
            .map_err(|err| err.to_string())?
            .len();
        rows.push(StartupRow {
            extension,
            size,
            first,
            cached,
        });
    }

    println!("\n## 7. start-up (median of {runs} runs; first execution: {compile_runs})\n");
    println!("| | {} |", DATASTORE_EXTENSIONS.join(" | "));
    println!("|---|{}", "---|".repeat(DATASTORE_EXTENSIONS.len()));
    let row = |name: &str, cell: fn(&StartupRow) -> String| {
        let cells: Vec<String> = rows.iter().map(cell).collect();
        println!("| {name} | {} |", cells.join(" | "));
    };
    row("component size", |r| format!("{} KiB", r.size / 1024));
    row(
        "`silt data list`, fresh process, empty artifact cache (compile)",
        |r| ms(r.first),
    );
    row("`silt data list`, fresh process, cached artifact", |r| {
        ms(r.cached)
    });
    row("first / cached", |r| {
        format!("{:.0}×", r.first.as_secs_f64() / r.cached.as_secs_f64())
    });
    println!(
        "| `silt extension list`, 100 installed (nothing compiled) | {} |{}",
        ms(list_100),
        " (same host) |".repeat(DATASTORE_EXTENSIONS.len() - 1)
    );

    let extensions: Vec<String> = rows
        .iter()
        .map(|r| {
            format!(
                "{{\"extension\":\"{}\",\"component_bytes\":{},\"first_ms\":{},\"cached_ms\":{}}}",
                r.extension,
                r.size,
                r.first.as_secs_f64() * 1e3,
                r.cached.as_secs_f64() * 1e3,
            )
        })
        .collect();
    let json = format!(
        "{{\"runs\":{runs},\"list_100_ms\":{},\"extensions\":[{}]}}\n",
        list_100.as_secs_f64() * 1e3,
        extensions.join(",")
    );
    let out = build::target_dir().join("bench/datastore-startup.json");
    std::fs::write(&out, json).map_err(|err| err.to_string())?;
    println!("\nwrote {}", out.display());
    Ok(())
}

/// `silt extension list` with the 100 hello-extension variants installed
/// (under `work/hundred`): median of `runs`.
fn list_with_100_installed(
    silt: &Path,
    work: &Path,
    components: &Path,
    runs: usize,
) -> Result<Duration> {
    let hundred = Sandbox::new(silt, &work.join("hundred"));
    for variant in build::variants(components)? {
        hundred.install(&variant)?;
    }
    time_command(runs, || hundred.command(["extension", "list"]))
}

/// Scenario 7 for one extension.
struct StartupRow {
    extension: &'static str,
    /// Component bytes.
    size: u64,
    /// Fresh process, empty artifact cache.
    first: Duration,
    /// Fresh process, cached artifact.
    cached: Duration,
}

/// The `silt` binary with its own extensions directory, artifact cache and
/// working directory, so a benchmark touches nothing of the user's.
struct Sandbox {
    silt: PathBuf,
    dir: PathBuf,
    cache: PathBuf,
}

impl Sandbox {
    fn new(silt: &Path, dir: &Path) -> Self {
        Self {
            silt: silt.to_owned(),
            dir: dir.to_owned(),
            cache: dir.join("cache"),
        }
    }

    /// `silt ARGS` in this sandbox, quiet.
    fn command<'a>(&self, args: impl IntoIterator<Item = &'a str>) -> Command {
        let mut command = Command::new(&self.silt);
        command
            .current_dir(self.dir.join("project"))
            .env("SILT_EXTENSIONS_DIR", self.dir.join("extensions"))
            .env("SILT_CACHE_DIR", &self.cache)
            .env_remove("RUST_LOG")
            .env_remove("SILT_CONFIG")
            .args(args);
        command
    }

    /// Runs `silt ARGS`; only a failure is worth printing.
    fn quietly<'a>(&self, args: impl IntoIterator<Item = &'a str> + Clone) -> Result<()> {
        let line: Vec<&str> = args.clone().into_iter().collect();
        let output = self.command(args).output().map_err(|err| err.to_string())?;
        if output.status.success() {
            Ok(())
        } else {
            Err(format!(
                "silt {}: {}",
                line.join(" "),
                String::from_utf8_lossy(&output.stderr)
            ))
        }
    }

    /// Installs `file`.
    fn install(&self, file: &Path) -> Result<()> {
        std::fs::create_dir_all(self.dir.join("project")).map_err(|err| err.to_string())?;
        self.quietly(["extension", "add", &*file.to_string_lossy()])
    }

    /// A project on a local-directory datastore served by `extension`;
    /// returns its directory.
    fn project(&self, extension: &str) -> Result<PathBuf> {
        let project = self.dir.join("project");
        std::fs::write(
            project.join("silt.toml"),
            format!("[datastore]\nextension = \"{extension}\"\nbackend = \"dir\"\n"),
        )
        .map_err(|err| err.to_string())?;
        Ok(project)
    }
}

/// `cargo bench --bench <name> -- <target>/bench/<name>.json <args>` with
/// the SeaweedFS binary at hand.
fn bench_binary(name: &str, args: &[&str]) -> Result<Command> {
    let weed = build::seaweed()?;
    let mut command = bench_with_json(name, args)?;
    command.env("SILT_WEED", weed);
    Ok(command)
}

/// `cargo bench --bench <name> -- <target>/bench/<name>.json <args>`.
fn bench_with_json(name: &str, args: &[&str]) -> Result<Command> {
    let out = build::target_dir().join("bench");
    std::fs::create_dir_all(&out).map_err(|err| err.to_string())?;
    let mut command = cargo_bench(name, args.contains(&"--quick"));
    command.arg(out.join(format!("{name}.json"))).args(args);
    Ok(command)
}

/// The profile a benchmark's binaries are built in: `release` to
/// measure, `dev` for `--quick`, which checks that every scenario completes
/// and agrees (nothing about speed) and so reuses the test run's compiled
/// dependencies instead of building wasmtime again in release.
fn profile(quick: bool) -> &'static str {
    if quick { "dev" } else { "release" }
}

/// `cargo bench --quiet --package silt --bench <name> --profile P --`.
fn cargo_bench(name: &str, quick: bool) -> Command {
    let mut command = build::cargo();
    command.args([
        "bench",
        "--quiet",
        "--package",
        "silt",
        "--bench",
        name,
        "--profile",
        profile(quick),
        "--",
    ]);
    command
}

/// How a telemetry benchmark run exports.
#[derive(Clone, Copy)]
enum Export {
    Off,
    TraceFile,
    Collector,
    DeadCollector,
}

impl Export {
    const ALL: [Export; 4] = [
        Export::Off,
        Export::TraceFile,
        Export::Collector,
        Export::DeadCollector,
    ];

    fn label(self) -> &'static str {
        match self {
            Export::Off => "nothing asked (no OTEL_*, no --trace-file)",
            Export::TraceFile => "--trace-file",
            Export::Collector => "OTLP/HTTP to a live collector (rotel, 127.0.0.1)",
            Export::DeadCollector => "OTLP/HTTP to a dead endpoint (connection refused)",
        }
    }
}

/// `cargo xtask bench telemetry [--quick]`: what traces and metrics cost.
/// Fresh-process `silt data list` and `silt data put` on a local-directory
/// datastore with each way of exporting, interleaved run by run so the
/// machine's drift hits every mode alike; then, in one process, a store
/// operation through `Traced` beside the bare store, with and without a
/// subscriber recording spans (`benches/telemetry.rs`).
pub fn telemetry(args: &[&str]) -> Result<()> {
    let quick = args.contains(&"--quick");
    let runs = if quick { 3 } else { 30 };
    let components = build::components()?;
    let silt = build::silt_binary(profile(quick))?;
    let rotel = build::rotel()?;
    let work = build::target_dir().join("bench/telemetry-work");
    let _ = std::fs::remove_dir_all(&work);
    let sandbox = Sandbox::new(&silt, &work.join("sandbox"));
    sandbox.install(&components.join("partitioned-datastore.wasm"))?;
    let project = sandbox.project("partitioned-datastore")?;
    let payload = project.join("payload.bin");
    std::fs::write(&payload, vec![7u8; 4096]).map_err(|err| err.to_string())?;
    let payload = payload.to_string_lossy().into_owned();
    sandbox.quietly(["datastore", "setup"])?;
    sandbox.quietly(["data", "put", "bench/m1", "f.bin", &payload])?;

    let free_port = || -> Result<u16> {
        Ok(std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|err| err.to_string())?
            .port())
    };
    let (port, grpc, dead) = (free_port()?, free_port()?, free_port()?);
    let processor = build::root().join("tests/support/rotel_otlp_json.py");
    let received = work.join("collector");
    std::fs::create_dir_all(&received).map_err(|err| err.to_string())?;
    let mut collector = Command::new(&rotel)
        .args([
            "start",
            "--otlp-http-endpoint",
            &format!("127.0.0.1:{port}"),
        ])
        .args(["--otlp-grpc-endpoint", &format!("127.0.0.1:{grpc}")])
        .args(["--exporter", "blackhole", "--disable-batching"])
        .arg("--otlp-with-trace-processor")
        .arg(&processor)
        .arg("--otlp-with-metrics-processor")
        .arg(&processor)
        .env("SILT_COLLECTOR_DIR", &received)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .map_err(|err| format!("cannot start {}: {err}", rotel.display()))?;
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if started.elapsed() > Duration::from_secs(20) {
            let _ = collector.kill();
            return Err("the collector did not start within 20 s".to_owned());
        }
        std::thread::sleep(Duration::from_millis(20));
    }

    let trace_file = work.join("trace.jsonl");
    let command = |mode: Export, args: &[&str]| {
        let mut command = sandbox.command(["-q"]);
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("OTEL_") {
                command.env_remove(name);
            }
        }
        match mode {
            Export::Off => {}
            Export::TraceFile => {
                command.arg("--trace-file").arg(&trace_file);
            }
            Export::Collector => {
                command.env(
                    "OTEL_EXPORTER_OTLP_ENDPOINT",
                    format!("http://127.0.0.1:{port}"),
                );
            }
            Export::DeadCollector => {
                command.env(
                    "OTEL_EXPORTER_OTLP_ENDPOINT",
                    format!("http://127.0.0.1:{dead}"),
                );
            }
        }
        command.args(args);
        command
    };
    let list = ["data", "list", "bench/m1"];
    let put = ["data", "put", "bench/m1", "f.bin", payload.as_str()];
    let mut table = Vec::new();
    for (name, args) in [
        ("silt data list", &list[..]),
        ("silt data put (4 KiB)", &put[..]),
    ] {
        let mut samples: Vec<Vec<Duration>> = vec![Vec::new(); Export::ALL.len()];
        for _ in 0..runs {
            for (index, mode) in Export::ALL.iter().enumerate() {
                let mut command = command(*mode, args);
                let started = Instant::now();
                let output = command.output().map_err(|err| err.to_string())?;
                samples[index].push(started.elapsed());
                if !output.status.success() {
                    let _ = collector.kill();
                    return Err(format!(
                        "{name} ({}) failed: {}",
                        mode.label(),
                        String::from_utf8_lossy(&output.stderr)
                    ));
                }
            }
        }
        table.push((name, samples.into_iter().map(median).collect::<Vec<_>>()));
    }
    let _ = collector.kill();
    let _ = collector.wait();
    let spans_received = std::fs::read_to_string(received.join("traces.jsonl"))
        .map(|text| text.matches("\"spanId\"").count())
        .unwrap_or(0);

    println!("\n## Telemetry: fresh-process commands (median of {runs} interleaved runs)\n");
    println!(
        "| export | {} |",
        table
            .iter()
            .map(|(n, _)| *n)
            .collect::<Vec<_>>()
            .join(" | ")
    );
    println!("|---|{}", "---:|".repeat(table.len()));
    for (index, mode) in Export::ALL.iter().enumerate() {
        let cells: Vec<String> = table
            .iter()
            .map(|(_, medians)| {
                format!(
                    "{} ({:.2}×)",
                    ms(medians[index]),
                    medians[index].as_secs_f64() / medians[0].as_secs_f64()
                )
            })
            .collect();
        println!("| {} | {} |", mode.label(), cells.join(" | "));
    }
    println!("\nspans the collector received over all runs: {spans_received}");
    if spans_received == 0 {
        return Err("the collector received no span: the OTLP export did not run".to_owned());
    }

    let output = cargo_bench("telemetry", quick)
        .arg(if quick { "20000" } else { "400000" })
        .output()
        .map_err(|err| err.to_string())?;
    if !output.status.success() {
        return Err(format!(
            "the in-process telemetry bench failed: {}",
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    let text = String::from_utf8_lossy(&output.stdout);
    let value = |key: &str| -> String {
        text.lines()
            .find_map(|line| line.strip_prefix(&format!("{key}=")))
            .unwrap_or("?")
            .to_owned()
    };
    println!(
        "\n## Telemetry: one store operation in process (`head` on the in-memory store; median ns of {} batches)\n",
        value("batches")
    );
    println!("| store | ns per operation |");
    println!("|---|---:|");
    println!("| bare store | {} |", value("bare_ns"));
    println!(
        "| through `Traced`, nothing recording spans | {} |",
        value("traced_off_ns")
    );
    println!(
        "| through `Traced`, spans recorded (trace file to /dev/null) | {} |",
        value("traced_on_ns")
    );
    Ok(())
}
