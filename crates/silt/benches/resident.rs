//! What a resident process would save a datastore command (issue 21, goal
//! 5; `docs/resident-process.md`). Run by `cargo xtask bench datastore
//! --only=startup`; prints `key_ms=value` lines (medians).
//!
//! Usage: `resident SILT SILT_CLIENT PROJECT RUNS -- COMMAND...`, where
//! COMMAND is a quiet `silt` command line without the program (`-q data
//! list bench/m1`) and PROJECT the project it runs in.
//!
//! Measured, in one process and one sitting:
//! - `in_process_alone`: the command run again and again in this process
//!   ([`silt::cli::run_in_process`]), the extension runtime kept between
//!   runs: the command's own work in a resident, back to back.
//! - then, run by run, each in turn in a shuffled order (so the machine's
//!   drift and what ran just before hit them alike):
//!   - `in_process`: the same, one run a turn, between the processes;
//!   - `fresh`: `silt COMMAND`, a fresh process, as today;
//!   - `handed_over`: `silt-client COMMAND` handing the command to a
//!     stand-in resident in this process, which runs it as `in_process`
//!     does and answers its exit code. The stand-in receives the request
//!     (argv, environment, working directory and stdio as descriptors) but
//!     runs the command in its own: the same working directory, the same
//!     environment but for `SILT_CACHE_DIR` (below), and this process's
//!     stdout and stderr, where a `-q` command writes nothing. A resident
//!     would switch to the request's;
//!   - `resident`: `silt-client COMMAND` handed to the resident itself
//!     (`silt __resident`, started by the client on first use), with
//!     `SILT_RESIDENT=required`, so a command it did not run fails the
//!     bench;
//!   - `hand_over_only`: `silt-client` handing over a command the
//!     stand-in answers at once: the client's exec and one round trip;
//!   - `no_resident`: `silt-client COMMAND` with `SILT_RESIDENT=0`: it
//!     execs `silt`, the cost of the client when no resident runs;
//!   - `version`: `silt --version`, the fresh process alone;
//! - `stand_in_command`: the command's time inside the stand-in, from the
//!   request's arrival to the answer, during `handed_over`.
//!
//! `SILT_BENCH_RESIDENT_ONLY=in-process` stops after `in_process_alone`
//! (for profiling the command's own work).
//!
//! The processes it starts get `SILT_CACHE_DIR` from
//! `SILT_BENCH_PROCESS_CACHE_DIR`; this process keeps its own. A component's
//! fingerprint memo names the executable that validated it (`silt`, or
//! this benchmark), so sharing one cache would make every turn after the
//! other executable's a memo miss: reading, hashing and validating the
//! component again (1.8 ms in the README's start-up breakdown).

use std::ffi::OsString;
use std::os::unix::net::UnixListener;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use silt::datastore::Runtimes;
use silt_resident::socket_dir;
use silt_resident::{Answer, Request, answer};

#[path = "common/mod.rs"]
mod common;
use common::median;

/// The command the stand-in answers at once, without running anything.
const NOOP: &str = "bench-hand-over-only";

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let Some(split) = args.iter().position(|a| a == "--") else {
        eprintln!("usage: resident SILT SILT_CLIENT PROJECT RUNS -- COMMAND...");
        std::process::exit(2);
    };
    let [silt, client, project, runs] = &args[..split] else {
        eprintln!("usage: resident SILT SILT_CLIENT PROJECT RUNS -- COMMAND...");
        std::process::exit(2);
    };
    let command: Vec<String> = args[split + 1..].to_vec();
    let runs: usize = runs.parse().expect("RUNS");
    let process_cache = std::env::var_os("SILT_BENCH_PROCESS_CACHE_DIR")
        .expect("SILT_BENCH_PROCESS_CACHE_DIR: the cache of the processes started");
    std::env::set_current_dir(project).expect("cd PROJECT");
    let argv: Vec<OsString> = std::iter::once("silt")
        .chain(command.iter().map(String::as_str))
        .map(OsString::from)
        .collect();

    let runtimes: Arc<Runtimes> = Arc::default();
    // The first run loads the engine and maps the artifact, once.
    assert_eq!(
        silt::cli::run_in_process(&argv, &runtimes),
        0,
        "{command:?} failed"
    );
    let in_process = || {
        let started = Instant::now();
        assert_eq!(silt::cli::run_in_process(&argv, &runtimes), 0);
        started.elapsed()
    };
    let alone = median((0..runs).map(|_| in_process()).collect());
    println!("in_process_alone_ms={}", ms(alone));
    if std::env::var_os("SILT_BENCH_RESIDENT_ONLY").is_some_and(|only| only == "in-process") {
        return;
    }

    let parent = tempfile::tempdir().expect("tempdir");
    let dir = parent.path().join("silt");
    socket_dir::ensure(&dir).expect("socket directory");
    let stand_in_socket = dir.join("stand-in.sock");
    let resident_socket = dir.join("resident.sock");
    let listener = UnixListener::bind(&stand_in_socket).expect("bind");
    let stand_in_runtimes = runtimes.clone();
    let (ran_tx, ran_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || stand_in(&listener, &stand_in_runtimes, &ran_tx));

    let process = |program: &str| {
        let mut c = Command::new(program);
        c.env("SILT_CACHE_DIR", &process_cache);
        c
    };
    let fresh = || {
        let mut c = process(silt);
        c.args(&command);
        c
    };
    let handed_over = || {
        let mut c = process(client);
        c.env("SILT_RESIDENT_SOCKET", &stand_in_socket)
            .args(&command);
        c
    };
    let hand_over_only = || {
        let mut c = process(client);
        c.env("SILT_RESIDENT_SOCKET", &stand_in_socket).arg(NOOP);
        c
    };
    let resident = || {
        let mut c = process(client);
        c.env("SILT_RESIDENT_SOCKET", &resident_socket)
            .env("SILT_RESIDENT", "required")
            .env("SILT_RESIDENT_IDLE_SECS", "120")
            .args(&command);
        c
    };
    start_resident(&resident, &resident_socket);
    let no_resident = || {
        let mut c = process(client);
        c.env("SILT_RESIDENT", "0").args(&command);
        c
    };
    let version = || {
        let mut c = process(silt);
        c.arg("--version");
        c
    };
    let spawned = |make: &dyn Fn() -> Command, name: &str| time(name, make());
    let turns: [(&str, &dyn Fn() -> Duration); 7] = [
        ("fresh", &|| spawned(&fresh, "fresh")),
        ("handed_over", &|| spawned(&handed_over, "handed_over")),
        ("resident", &|| spawned(&resident, "resident")),
        ("in_process", &in_process),
        ("hand_over_only", &|| {
            spawned(&hand_over_only, "hand_over_only")
        }),
        ("no_resident", &|| spawned(&no_resident, "no_resident")),
        ("version", &|| spawned(&version, "version")),
    ];
    let mut samples: Vec<Vec<Duration>> = vec![Vec::with_capacity(runs); turns.len()];
    // Each run takes the turns in a shuffled order: what runs before a turn
    // (a 60 MB process, or the same command warm) changes what it costs, so
    // no turn always follows the same one.
    let mut order: Vec<usize> = (0..turns.len()).collect();
    let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
    for _ in 0..runs {
        for i in (1..order.len()).rev() {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            order.swap(i, (seed % (i as u64 + 1)) as usize);
        }
        for &which in &order {
            samples[which].push(turns[which].1());
        }
    }
    for ((name, _), samples) in turns.iter().zip(samples) {
        println!("{name}_ms={}", ms(median(samples)));
    }
    // Each `handed_over` turn must have been run by the stand-in: the
    // client falls back to `silt` silently when it cannot hand over.
    let ran: Vec<Duration> = ran_rx.try_iter().collect();
    assert_eq!(
        ran.len(),
        runs,
        "the stand-in ran {} of {runs} handed-over commands",
        ran.len()
    );
    println!("stand_in_command_ms={}", ms(median(ran)));
}

/// The stand-in resident: checks the peer, receives each request, runs it
/// here on the kept runtimes (or answers [`NOOP`] at once), answers. Sends
/// how long each command took (from its request's arrival to its answer).
fn stand_in(
    listener: &UnixListener,
    runtimes: &Arc<Runtimes>,
    ran: &std::sync::mpsc::Sender<Duration>,
) {
    for stream in listener.incoming() {
        let stream = stream.expect("accept");
        let request = Request::receive(&stream).expect("a request");
        let started = Instant::now();
        let noop = request.argv.get(1).is_some_and(|arg| arg == NOOP);
        silt_resident::started(&stream).expect("started");
        let code = if noop {
            0
        } else {
            silt::cli::run_in_process(&request.argv, runtimes)
        };
        // The client's descriptors are closed before the answer: whoever
        // reads the client's output sees its end when the client exits.
        drop(request);
        if !noop {
            let _ = ran.send(started.elapsed());
        }
        answer(&stream, Answer::Ran(code)).expect("answer");
    }
}

/// Starts the resident with its first command (which fails: it was not
/// handed over), waits for its socket, and runs one command in it, which
/// loads the extension's runtime there.
fn start_resident(make: &dyn Fn() -> Command, socket: &std::path::Path) {
    let first = make().output().expect("spawn silt-client");
    assert_eq!(first.status.code(), Some(69), "{first:?}");
    let waiting = Instant::now();
    while !socket.exists() {
        assert!(
            waiting.elapsed() < Duration::from_secs(30),
            "no resident at {} after 30 s",
            socket.display()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    time("resident (first)", make());
}

/// Runs `command` to its end; its wall time. A failure ends the bench.
fn time(name: &str, mut command: Command) -> Duration {
    let started = Instant::now();
    let output = command.output().expect("spawn");
    let elapsed = started.elapsed();
    assert!(
        output.status.success(),
        "{name}: {command:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    elapsed
}

fn ms(duration: Duration) -> String {
    format!("{:.3}", duration.as_secs_f64() * 1e3)
}
