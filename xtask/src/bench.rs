//! `cargo xtask bench startup`: extension start-up costs, measured side by
//! side in one run, printed as a markdown table and written as JSON to
//! `target/bench/startup.json`.
//!
//! Measured (median of N runs each):
//! - `silt extension list` with 1 and with 100 installed extensions;
//! - first execution in a fresh process with an empty artifact cache (compile);
//! - execution in a fresh process with a warm cache (map + instantiate + call);
//! - in-process: fresh store + instantiate + one call (bench binary).

use std::path::Path;
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
    let silt = build::silt_binary("release")?;
    let hello_path = components.join("hello-extension.wasm");
    let work = build::target_dir().join("bench/startup-work");
    let _ = std::fs::remove_dir_all(&work);
    let one = work.join("one");
    let hundred = work.join("hundred");
    let cache = work.join("cache");
    let silt_in = |extensions: &Path| {
        let mut command = Command::new(&silt);
        command
            .env("SILT_EXTENSIONS_DIR", extensions)
            .env("SILT_CACHE_DIR", &cache)
            .env_remove("RUST_LOG");
        command
    };
    // Installs quietly: only a failure is worth printing here.
    let install = |extensions: &Path, file: &Path| -> Result<()> {
        let output = silt_in(extensions)
            .args(["extension", "add"])
            .arg(file)
            .output()
            .map_err(|err| err.to_string())?;
        if output.status.success() {
            Ok(())
        } else {
            Err(format!(
                "installing {}: {}",
                file.display(),
                String::from_utf8_lossy(&output.stderr)
            ))
        }
    };
    install(&one, &hello_path)?;
    for variant in build::variants(&components)? {
        install(&hundred, &variant)?;
    }

    let list_1 = time_command(runs, || {
        let mut c = silt_in(&one);
        c.args(["extension", "list"]);
        c
    })?;
    let list_100 = time_command(runs, || {
        let mut c = silt_in(&hundred);
        c.args(["extension", "list"]);
        c
    })?;
    let help = time_command(runs, || {
        let mut c = silt_in(&one);
        c.arg("--help");
        c
    })?;
    let compile_runs = if quick { 1 } else { 5 };
    let first = time_command(compile_runs, || {
        let _ = std::fs::remove_dir_all(&cache);
        let mut c = silt_in(&one);
        c.args(["extension", "verify", "hello-extension"]);
        c
    })?;
    let warm = time_command(runs, || {
        let mut c = silt_in(&one);
        c.args(["extension", "verify", "hello-extension"]);
        c
    })?;
    // In-process: the bench binary loads once, then times fresh store + instantiate + call.
    let output = cargo_bench("startup")
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

/// `cargo xtask bench store`: the object-store benchmark against SeaweedFS.
pub fn store(args: &[&str]) -> Result<()> {
    run(&mut bench_binary("store", args)?)
}

/// `cargo xtask bench datastore`: the field's pain scenarios, silt's
/// partitioned datastore beside the monolithic baseline, on SeaweedFS.
pub fn datastore(args: &[&str]) -> Result<()> {
    let components = build::components()?;
    run(bench_binary("datastore", args)?.env("SILT_TEST_COMPONENTS", components))
}

/// `cargo bench --bench <name> -- <target>/bench/<name>.json <args>` with
/// the SeaweedFS binary at hand.
fn bench_binary(name: &str, args: &[&str]) -> Result<Command> {
    let weed = build::seaweed()?;
    let out = build::target_dir().join("bench");
    std::fs::create_dir_all(&out).map_err(|err| err.to_string())?;
    let mut command = cargo_bench(name);
    command
        .arg(out.join(format!("{name}.json")))
        .args(args)
        .env("SILT_WEED", weed);
    Ok(command)
}

/// `cargo bench --quiet --package silt --bench <name> --`.
fn cargo_bench(name: &str) -> Command {
    let mut command = build::cargo();
    command.args([
        "bench",
        "--quiet",
        "--package",
        "silt",
        "--bench",
        name,
        "--",
    ]);
    command
}
