//! The OS sandbox of workers, probed from inside through the real drivers
//! (`silt sandbox probe`): what a worker cannot reach, the limits that stop
//! it, and that it dies with its host. Each denial is paired with a control
//! that shows the probe itself works.

use crate::support;

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::Value;

/// `silt sandbox probe` with `flags`, then the probe `args`; returns its report.
fn probe(home: &Path, scratch: &Path, flags: &[&str], args: &[&str]) -> Value {
    let mut command = support::silt(home);
    command
        .args(["--json", "sandbox", "probe", "--scratch"])
        .arg(scratch)
        .args(flags)
        .arg("--")
        .args(args);
    let (code, stdout, stderr) = support::output(&mut command);
    assert_eq!(
        code, 0,
        "silt sandbox probe {flags:?} -- {args:?}: {stderr}"
    );
    serde_json::from_str(&stdout).unwrap_or_else(|err| panic!("{err}: {stdout}"))
}

fn native(home: &Path, scratch: &Path, args: &[&str]) -> Value {
    native_with(home, scratch, &[], args)
}

/// [`native`] with extra flags (limits).
fn native_with(home: &Path, scratch: &Path, flags: &[&str], args: &[&str]) -> Value {
    let mut all = vec!["--driver", "native", "--isolation", "strict"];
    all.extend_from_slice(flags);
    let report = probe(home, scratch, &all, args);
    assert_eq!(report["driver"], "native", "{report}");
    report
}

#[test]
fn a_native_worker_is_nobody_with_an_empty_environment_in_its_own_namespaces() {
    let home = tempfile::tempdir().unwrap();
    let report = native(home.path(), home.path(), &["id"]);
    let id = &report["result"];
    assert_eq!(id["uid"], 65534, "{report}");
    assert_eq!(id["gid"], 65534);
    assert_eq!(
        id["capabilities"], 0,
        "no capabilities, even in its own user namespace"
    );
    assert_eq!(id["pid"], 1, "its own pid namespace");
    assert_eq!(id["hostname"], "silt-worker", "its own uts namespace");
    assert_eq!(id["environment"], 0);

    let plain = probe(home.path(), home.path(), &["--driver", "process"], &["id"]);
    assert_eq!(plain["result"]["environment"], 0, "{plain}");
    assert_ne!(plain["result"]["pid"], 1);
}

#[test]
fn a_native_worker_cannot_connect_to_a_listener_on_this_machine() {
    let home = tempfile::tempdir().unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap().to_string();
    let control = probe(
        home.path(),
        home.path(),
        &["--driver", "process"],
        &["connect", &address],
    );
    assert_eq!(
        control["result"]["ok"], true,
        "the process driver has the network: {control}"
    );
    let report = native(home.path(), home.path(), &["connect", &address]);
    assert_eq!(report["result"]["ok"], false, "{report}");
}

#[test]
fn a_native_worker_writes_only_its_scratch_directory() {
    let home = tempfile::tempdir().unwrap();
    let scratch = home.path().join("scratch");
    std::fs::create_dir(&scratch).unwrap();
    let report = native(home.path(), &scratch, &["write", "/scratch/ok.txt"]);
    assert_eq!(report["result"]["ok"], true, "{report}");
    assert_eq!(std::fs::read(scratch.join("ok.txt")).unwrap(), b"probe");

    let outside = home.path().join("outside.txt");
    for target in [
        outside.to_str().unwrap(),
        "/silt",
        "/usr/evil",
        "/tmp/evil",
        "/evil",
    ] {
        let report = native(home.path(), &scratch, &["write", target]);
        assert_eq!(report["result"]["ok"], false, "wrote {target}: {report}");
    }
    assert!(!outside.exists());
    for secret in ["/etc/passwd", "/proc/self/environ", "/root", "/usr/bin/sh"] {
        let report = native(home.path(), &scratch, &["read", secret]);
        assert_eq!(report["result"]["ok"], false, "read {secret}: {report}");
    }
}

#[test]
fn a_native_worker_is_killed_past_its_memory_limit() {
    let home = tempfile::tempdir().unwrap();
    let flags = ["--memory-limit-mib", "64"];
    let control = native_with(home.path(), home.path(), &flags, &["alloc", "16"]);
    assert_eq!(control["result"]["allocated_mib"], 16, "{control}");
    let report = native_with(home.path(), home.path(), &flags, &["alloc", "256"]);
    assert_eq!(report["oom_killed"], true, "{report}");
    assert!(report["result"].is_null(), "it never finished: {report}");
}

#[test]
fn a_native_worker_hits_its_pids_limit() {
    let home = tempfile::tempdir().unwrap();
    let flags = ["--pids-limit", "16"];
    let control = native_with(home.path(), home.path(), &flags, &["fork", "4"]);
    assert_eq!(control["result"]["forked"], 4, "{control}");
    let report = native_with(home.path(), home.path(), &flags, &["fork", "200"]);
    let forked = report["result"]["forked"].as_u64().unwrap();
    assert!(forked < 16, "{report}");
    assert!(report["result"]["error"].is_string(), "{report}");
}

/// The state letter and parent pid of `pid`, from `/proc/PID/stat`.
fn stat(pid: u32) -> Option<(char, u32)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // `pid (comm) state ppid ...`: comm may hold spaces, so split after `)`.
    let mut fields = stat[stat.rfind(')')? + 2..].split(' ');
    let state = fields.next()?.chars().next()?;
    let ppid = fields.next()?.parse().ok()?;
    Some((state, ppid))
}

/// Pids whose parent is `parent`.
fn children(parent: u32) -> Vec<u32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|entry| entry.file_name().to_string_lossy().parse::<u32>().ok())
        .filter(|&pid| stat(pid).is_some_and(|(_, ppid)| ppid == parent))
        .collect()
}

fn alive(pid: u32) -> bool {
    stat(pid).is_some_and(|(state, _)| state != 'Z')
}

#[test]
fn a_native_worker_dies_when_its_host_is_killed() {
    let home = tempfile::tempdir().unwrap();
    let mut host = support::silt(home.path())
        .args([
            "sandbox",
            "probe",
            "--driver",
            "native",
            "--isolation",
            "strict",
            "--scratch",
        ])
        .arg(home.path())
        .args(["--", "sleep", "60000"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let (init, worker) = loop {
        let inits = children(host.id());
        if let Some(&init) = inits.first()
            && let Some(&worker) = children(init).first()
        {
            break (init, worker);
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the worker never started"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(alive(worker));
    host.kill().unwrap();
    host.wait().unwrap();
    let killed = Instant::now();
    while alive(worker) || alive(init) {
        assert!(
            killed.elapsed() < Duration::from_secs(5),
            "the sandbox outlived its host"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn sandbox_check_reports_this_machine_and_a_working_trial() {
    let home = tempfile::tempdir().unwrap();
    let (code, stdout, stderr) =
        support::output(support::silt(home.path()).args(["--json", "sandbox", "check"]));
    assert_eq!(code, 0, "{stderr}");
    let report: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["trial"]["ok"], true, "{report}");
    assert!(report["support"]["seccomp"].is_boolean());
    assert!(report["support"].get("landlock_abi").is_some());
    // Human form names every layer.
    let (_, text, _) = support::output(support::silt(home.path()).args(["sandbox", "check"]));
    for layer in [
        "namespaces",
        "Landlock",
        "seccomp",
        "memory cgroup",
        "pids cgroup",
        "trial",
    ] {
        assert!(text.contains(layer), "{layer} missing from:\n{text}");
    }
}

#[test]
fn a_runc_container_has_no_network_and_a_read_only_root() {
    let Some(runc) = std::env::var_os("SILT_RUNC") else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must run the container tests: `cargo xtask test` installs runc"
        );
        eprintln!("skipped: SILT_RUNC is not set (run through `cargo xtask test`)");
        return;
    };
    let home = tempfile::tempdir().unwrap();
    std::fs::write(
        home.path().join("silt.toml"),
        format!(
            "[sandbox]\ndriver = \"container\"\nisolation = \"strict\"\n[sandbox.container]\nruntime = \"{}\"\n",
            Path::new(&runc).display()
        ),
    )
    .unwrap();
    let scratch = home.path().join("scratch");
    std::fs::create_dir(&scratch).unwrap();
    let container = |args: &[&str]| {
        let report = probe(home.path(), &scratch, &[], args);
        assert_eq!(report["driver"], "container", "{report}");
        report
    };
    let id = container(&["id"]);
    assert_eq!(id["result"]["hostname"], "silt-worker", "{id}");
    assert_eq!(id["result"]["pid"], 1);
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap().to_string();
    assert_eq!(container(&["connect", &address])["result"]["ok"], false);
    assert_eq!(container(&["write", "/scratch/ok"])["result"]["ok"], true);
    assert!(scratch.join("ok").is_file());
    assert_eq!(container(&["write", "/usr/evil"])["result"]["ok"], false);
    assert_eq!(container(&["write", "/evil"])["result"]["ok"], false);
}
