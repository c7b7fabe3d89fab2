//! Shared helpers for the integration tests: the real wasm components built
//! from the guest crates, the `silt` binary with an isolated environment,
//! and runtimes with test-sized limits.

#![allow(dead_code)] // Each test binary uses a different subset.

pub mod azurite;
pub mod bench_args;
pub mod child;
pub mod collector;
pub mod containers;
pub mod cpu_time;
pub mod distance;
pub mod fake_gcs;
pub mod flipping_proxy;
pub mod http_head;
pub mod latency_proxy;
pub mod lying_store;
pub mod mangling_proxy;
pub mod misbehaving;
pub mod moto;
pub mod otlp;
pub mod pausing_proxy;
pub mod procfs;
pub mod project;
pub mod recording_proxy;
pub mod recording_store;
pub mod registry;
pub mod seaweed;
pub mod slow_store;
pub mod stripping_proxy;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use silt::config::RuntimeConfig;
use silt::runtime::{ArtifactCache, Runtime};

/// The workspace root, from the environment `cargo test` sets (clones that
/// share a target dir share test binaries, so a compile-time path could name
/// another clone).
pub fn workspace_root() -> PathBuf {
    let host_dir = std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")));
    host_dir
        .ancestors()
        .nth(2)
        .expect("crates/silt/ is two below the workspace root")
        .to_owned()
}

/// Runs `cargo xtask <task>` (which prints a path last) and returns that path.
pub fn xtask_path(task: &str) -> PathBuf {
    let root = workspace_root();
    let output = Command::new(env!("CARGO"))
        .args(["run", "--quiet", "--package", "xtask", "--", task])
        .current_dir(&root)
        .output()
        .expect("cannot run cargo xtask");
    assert!(
        output.status.success(),
        "cargo xtask {task} failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8(output.stdout).unwrap();
    PathBuf::from(stdout.lines().last().expect("xtask printed a path").trim())
}

/// The directory of built components: `SILT_TEST_COMPONENTS` (set by
/// `cargo xtask test`), else built now with `cargo xtask components`.
pub fn components_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| match std::env::var_os("SILT_TEST_COMPONENTS") {
        Some(dir) => PathBuf::from(dir),
        None => xtask_path("components"),
    })
}

/// The component built from the guest crate `name`.
pub fn component(name: &str) -> PathBuf {
    let path = components_dir().join(format!("{name}.wasm"));
    assert!(path.is_file(), "{} was not built", path.display());
    path
}

/// A `silt` command isolated from the user's configuration: its extensions
/// and artifact cache live under `home`.
pub fn silt(home: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_silt"));
    command
        .current_dir(home)
        .env("SILT_EXTENSIONS_DIR", home.join("extensions"))
        .env("SILT_CACHE_DIR", home.join("cache"))
        .env_remove("SILT_CONFIG")
        .env_remove("RUST_LOG");
    // The developer's (or a CI job's) own telemetry and trace context
    // stay out of the tests.
    for (name, _) in std::env::vars_os() {
        let name_text = name.to_string_lossy();
        if name_text.starts_with("OTEL_") || matches!(&*name_text, "TRACEPARENT" | "TRACESTATE") {
            command.env_remove(name);
        }
    }
    command
}

/// One artifact cache for the projects of this test process: a component
/// is compiled once a run rather than once a project (the TypeScript
/// datastore takes about 10 s), as a user's projects share theirs. Tests of
/// compiling itself give [`silt`] a home of their own.
///
/// A directory of its own under `CARGO_TARGET_TMPDIR`, whose `owner` file
/// this process holds locked (`flock`) while it lives; a cache whose owner
/// is unlocked and older than a minute belongs to a process that is gone
/// (in any pid namespace), and is removed by the next one.
pub fn shared_artifact_cache() -> &'static Path {
    static CACHE: OnceLock<(PathBuf, std::fs::File)> = OnceLock::new();
    let (dir, _owner) = CACHE.get_or_init(|| {
        let root = Path::new(env!("CARGO_TARGET_TMPDIR")).join("artifact-caches");
        std::fs::create_dir_all(&root).unwrap();
        let dir = tempfile::Builder::new()
            .prefix("cache-")
            .tempdir_in(&root)
            .unwrap()
            .keep();
        let owner = std::fs::File::create(dir.join("owner")).unwrap();
        assert!(locked(&owner), "cannot lock {}", dir.display());
        for entry in std::fs::read_dir(&root).unwrap().flatten() {
            if entry.path() != dir && abandoned(&entry.path().join("owner")) {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
        (dir, owner)
    });
    dir
}

/// Takes `file`'s `flock` without waiting; true if taken.
fn locked(file: &std::fs::File) -> bool {
    use std::os::fd::AsRawFd as _;
    // SAFETY: flock(2) on a descriptor this function borrows.
    unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) == 0 }
}

/// True when nobody holds `owner` and it is over a minute old (a cache
/// being set up has its owner locked within that minute).
fn abandoned(owner: &Path) -> bool {
    let Ok(file) = std::fs::File::open(owner) else {
        return false;
    };
    let old = file
        .metadata()
        .and_then(|meta| meta.modified())
        .is_ok_and(|modified| {
            modified
                .elapsed()
                .is_ok_and(|age| age > Duration::from_secs(60))
        });
    old && locked(&file)
}

/// Held by each test that runs containers: a host that starts one first
/// removes other hosts' leftovers (`container/leftovers.rs`; a root host
/// keeps every runtime's in `/run/silt/containers`), which would take the
/// one a test leaves on purpose.
pub static CONTAINER_TESTS: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Held by each test of a binary whose tests measure time bounds
/// (`leases`, `deadlines`): libtest runs a binary's tests two at a time on
/// this machine, and a bound measured beside another test's processes
/// measures the machine. One at a time, they run beside nothing. A test
/// that failed (and poisoned the lock) does not fail the next.
pub fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());
    SERIAL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A lease TTL for a test that waits on one: `ms`, or five times `ms`
/// when workers start in containers (`SILT_SANDBOX_RUNTIME`), where a
/// renewal that needs a worker of its own waits for its container (podman
/// 171 ms and docker about 250 ms spawn + call in `cargo xtask bench
/// worker`, 2026-11-25).
pub fn lease_ttl_ms(ms: u64) -> u64 {
    if in_containers() { ms * 5 } else { ms }
}

/// True when every worker starts in a container (`SILT_SANDBOX_RUNTIME`
/// names podman or docker): a suite run by hand in containers. `cargo
/// xtask test` runs the suites natively and drives the container runtimes
/// in `drivers` and `sandbox`.
pub fn in_containers() -> bool {
    std::env::var_os("SILT_SANDBOX_RUNTIME").is_some()
}

/// Reads `stream` to its end on a thread: says on the channel when a
/// line holding `needle` came, and answers everything read.
pub fn watch_for(
    stream: impl std::io::Read + Send + 'static,
    needle: &'static str,
) -> (
    std::sync::mpsc::Receiver<()>,
    std::thread::JoinHandle<String>,
) {
    use std::io::BufRead as _;
    let (seen, waiting) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut all = String::new();
        for line in std::io::BufReader::new(stream).lines() {
            let Ok(line) = line else { break };
            if line.contains(needle) {
                let _ = seen.send(());
            }
            all.push_str(&line);
            all.push('\n');
        }
        all
    });
    (waiting, reader)
}

/// Asks `poll` every 20 ms until it answers, for at most `limit`.
pub fn poll_until<T>(limit: Duration, mut poll: impl FnMut() -> Option<T>) -> Option<T> {
    let started = Instant::now();
    loop {
        if let Some(answer) = poll() {
            return Some(answer);
        }
        if started.elapsed() > limit {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The first server `try_start` starts, trying `attempts` times (a port
/// picked free may be taken before the server binds it); panics with every
/// attempt's failure when none did.
pub fn start_with_retries<T>(
    what: &str,
    attempts: u32,
    mut try_start: impl FnMut() -> Result<T, String>,
) -> T {
    let mut failures = Vec::new();
    for attempt in 1..=attempts {
        match try_start() {
            Ok(server) => return server,
            Err(why) => {
                eprintln!("{what} start attempt {attempt} failed: {why}");
                failures.push(why);
            }
        }
    }
    panic!(
        "{what} did not start in {attempts} attempts:\n{}",
        failures.join("\n---\n")
    );
}

/// `command` run under `umask` (octal, e.g. `0o077`): a shell sets the
/// mask, then execs the program with the same arguments, variables and
/// directory (a umask is the process's own: only its parent can choose it).
pub fn under_umask(command: &Command, umask: u32) -> Command {
    let mut shell = Command::new("sh");
    shell
        .arg("-c")
        .arg(format!("umask {umask:03o} && exec \"$0\" \"$@\""))
        .arg(command.get_program())
        .args(command.get_args());
    for (key, value) in command.get_envs() {
        match value {
            Some(value) => shell.env(key, value),
            None => shell.env_remove(key),
        };
    }
    if let Some(dir) = command.get_current_dir() {
        shell.current_dir(dir);
    }
    shell
}

/// Runs `command`, returning (exit code, stdout, stderr).
pub fn output(command: &mut Command) -> (i32, String, String) {
    let output = command.output().expect("cannot run silt");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// A runtime with the default limits and its artifact cache in `cache`.
pub fn runtime(cache: &Path) -> Runtime {
    runtime_with(cache, RuntimeConfig::default())
}

/// A runtime with `config` and its artifact cache in `cache`.
pub fn runtime_with(cache: &Path, config: RuntimeConfig) -> Runtime {
    Runtime::new(config, ArtifactCache::new(cache, 1 << 30))
}

/// 100 distinct extensions (the hello component renamed `hello-extensiNN`),
/// built by `cargo xtask components`.
pub fn hello_variants() -> Vec<PathBuf> {
    let dir = components_dir().join("variants");
    (0..100)
        .map(|i| dir.join(format!("hello-extensi{i:02}.wasm")))
        .collect()
}

/// A shell that stops `server` when this test process is gone (also
/// after a panic), then removes `root` once this process has exited.
pub fn watchdog(server: &std::process::Child, root: &Path) -> std::process::Child {
    let script = format!(
        "while kill -0 {me} 2>/dev/null && kill -0 {server} 2>/dev/null; do sleep 0.5; done; kill {server} 2>/dev/null; sleep 2; kill -9 {server} 2>/dev/null; while kill -0 {me} 2>/dev/null; do sleep 1; done; rm -rf '{root}'",
        me = std::process::id(),
        server = server.id(),
        root = root.display(),
    );
    Command::new("sh")
        .arg("-c")
        .arg(script)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("cannot start the watchdog shell")
}

/// Starts a test server: `command`, with its output in `<root>/<name>.log`
/// and a [`watchdog`], waited for until it listens on `port` of 127.0.0.1
/// ([`wait_listening`]). Answers the server and its watchdog.
pub fn spawn_listening(
    name: &str,
    command: &mut Command,
    root: &Path,
    port: u16,
) -> Result<(std::process::Child, std::process::Child), String> {
    let log_path = root.join(format!("{name}.log"));
    let log = std::fs::File::create(&log_path).unwrap();
    let mut server = command
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .map_err(|err| {
            format!(
                "cannot run {}: {err}",
                command.get_program().to_string_lossy()
            )
        })?;
    let mut watchdog = watchdog(&server, root);
    wait_listening(name, &mut server, &mut watchdog, port, &log_path)?;
    Ok((server, watchdog))
}

/// Waits up to 60 s for a server just started to listen on `port` of
/// 127.0.0.1. If it exits or never listens, stops it and its watchdog and
/// answers why, with its log (at `log`).
pub fn wait_listening(
    what: &str,
    server: &mut std::process::Child,
    watchdog: &mut std::process::Child,
    port: u16,
    log: &Path,
) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(60);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        let failure = match server.try_wait() {
            Ok(Some(status)) => Some(format!("{what} exited ({status})")),
            _ if Instant::now() >= deadline => Some("not listening after 60 s".to_owned()),
            _ => None,
        };
        if let Some(failure) = failure {
            // This attempt is over: no process of it may outlive it.
            for child in [server, watchdog] {
                let _ = child.kill();
                let _ = child.wait();
            }
            let log = std::fs::read_to_string(log).unwrap_or_default();
            return Err(format!("{failure}; its log:\n{log}"));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(())
}
