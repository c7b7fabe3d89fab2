//! The OS sandbox of workers, probed from inside through the real drivers
//! (`silt sandbox probe`): what a worker cannot reach, the limits that stop
//! it, and that it dies with its host. Each denial is paired with a control
//! that shows the probe itself works.

use crate::support;

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;
use support::containers::{self, WorkerImage};

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
    let mut all = NATIVE_STRICT.to_vec();
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
    assert_scratch_files_are_the_hosts(&scratch, "ok.txt", |args| {
        native(home.path(), &scratch, args)
    });

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

/// What a worker makes in its scratch directory is the host user's on
/// disk (root's, when silt is root, though the worker is not: `written`
/// is a file it wrote there), the host's private files are the worker's to
/// read, and, as its files are root's outside where no mount is nosuid, it
/// may set modes but never set-user-ID or set-group-ID. `probe` runs a
/// probe in the worker.
fn assert_scratch_files_are_the_hosts(
    scratch: &Path,
    written: &str,
    probe: impl Fn(&[&str]) -> Value,
) {
    use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
    // SAFETY: a plain query.
    let host_uid = unsafe { libc::geteuid() };
    assert_eq!(
        std::fs::metadata(scratch.join(written)).unwrap().uid(),
        host_uid
    );
    std::fs::write(scratch.join("private.txt"), b"mine").unwrap();
    std::fs::set_permissions(
        scratch.join("private.txt"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    let report = probe(&["read", "/scratch/private.txt"]);
    assert_eq!(report["result"]["bytes"], 4, "{report}");
    let control = probe(&["chmod", "/scratch/tool", "755"]);
    assert_eq!(control["result"]["ok"], true, "{control}");
    for mode in ["4755", "2755", "6777"] {
        let report = probe(&["chmod", "/scratch/tool", mode]);
        assert_eq!(report["result"]["ok"], false, "chmod {mode}: {report}");
        let on_disk = std::fs::metadata(scratch.join("tool")).unwrap().mode();
        assert_eq!(on_disk & 0o6000, 0, "mode {on_disk:o} after chmod {mode}");
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

/// Pids whose parent is `parent`.
fn children(parent: u32) -> Vec<u32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|entry| entry.file_name().to_string_lossy().parse::<u32>().ok())
        .filter(|&pid| {
            support::procfs::state_and_parent(pid).is_some_and(|(_, ppid)| ppid == parent)
        })
        .collect()
}

/// `silt sandbox probe FLAGS -- sleep 60000` in `home`, started and left
/// running: the caller kills it and waits for it.
#[allow(clippy::zombie_processes)]
fn sleeping_probe(home: &Path, scratch: &Path, flags: &[&str]) -> std::process::Child {
    support::silt(home)
        .args(["sandbox", "probe", "--scratch"])
        .arg(scratch)
        .args(flags)
        .args(["--", "sleep", "60000"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// The flags of a native probe that must have every layer.
const NATIVE_STRICT: &[&str] = &["--driver", "native", "--isolation", "strict"];

fn alive(pid: u32) -> bool {
    support::procfs::state_and_parent(pid).is_some_and(|(state, _)| state != 'Z')
}

#[test]
fn a_native_worker_dies_when_its_host_is_killed() {
    let home = tempfile::tempdir().unwrap();
    let mut host = sleeping_probe(home.path(), home.path(), NATIVE_STRICT);
    let (init, worker) = sandbox_processes(host.id());
    assert!(alive(worker));
    host.kill().unwrap();
    host.wait().unwrap();
    let gone = support::poll_until(Duration::from_secs(20), || {
        (!alive(worker) && !alive(init)).then_some(())
    });
    assert!(gone.is_some(), "the sandbox outlived its host");
}

/// The real, effective, saved and filesystem uids (or gids) of `pid`.
fn kernel_ids(pid: u32, field: &str) -> Vec<u32> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status
        .lines()
        .find(|line| line.starts_with(field))
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"));
    line[field.len()..]
        .split_whitespace()
        .map(|id| id.parse().unwrap())
        .collect()
}

/// The kernel uid and gid every worker runs as: a root host's the
/// dedicated `[sandbox] worker_uid` (default 2080000000), an ordinary
/// host's its own.
fn expected_worker_ids() -> (u32, u32) {
    // SAFETY: plain queries.
    let (host_uid, host_gid) = unsafe { (libc::geteuid(), libc::getegid()) };
    if host_uid == 0 {
        (2_080_000_000, 2_080_000_000)
    } else {
        (host_uid, host_gid)
    }
}

/// Asserts that process `pid` (a worker, seen from the host) runs as
/// [`expected_worker_ids`]: real, effective, saved and filesystem ids.
fn assert_worker_ids(pid: u32, uids: &[u32], gids: &[u32]) {
    let (uid, gid) = expected_worker_ids();
    assert_eq!(uids, [uid; 4], "uids of {pid}");
    assert_eq!(gids, [gid; 4], "gids of {pid}");
    assert_ne!(uids[0], 0, "{pid} is kernel uid 0");
}

/// The init and the worker of a native sandbox started by `host`, once
/// the worker runs: pid 1 of its own pid namespace, its SIGTERM handler
/// in place. Before that, the init's child may be one of its short-lived
/// helpers, and the init may not have dropped its ids yet.
fn sandbox_processes(host: u32) -> (u32, u32) {
    let in_own_pid_namespace = |pid: u32| {
        std::fs::read_to_string(format!("/proc/{pid}/status")).is_ok_and(|status| {
            status
                .lines()
                .find_map(|line| line.strip_prefix("NSpid:"))
                .is_some_and(|ids| ids.split_whitespace().last() == Some("1"))
        })
    };
    support::poll_until(Duration::from_secs(10), || {
        let init = *children(host).first()?;
        let worker = *children(init).first()?;
        (in_own_pid_namespace(worker) && catches_sigterm(worker)).then_some((init, worker))
    })
    .expect("the worker never started")
}

#[test]
fn a_native_worker_is_never_kernel_uid_0() {
    let home = tempfile::tempdir().unwrap();
    let mut host = sleeping_probe(home.path(), home.path(), NATIVE_STRICT);
    let (init, worker) = sandbox_processes(host.id());
    // Read before the host goes: the init outside the pid namespace, the
    // worker inside it, both as the kernel sees them.
    let ids: Vec<(u32, Vec<u32>, Vec<u32>)> = [init, worker]
        .into_iter()
        .map(|pid| (pid, kernel_ids(pid, "Uid:"), kernel_ids(pid, "Gid:")))
        .collect();
    host.kill().unwrap();
    host.wait().unwrap();
    for (pid, uids, gids) in ids {
        assert_worker_ids(pid, &uids, &gids);
    }
}

#[test]
fn a_root_host_refuses_a_worker_uid_of_root_or_of_an_account() {
    // SAFETY: a plain query.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: only a root host drops its workers to [sandbox] worker_uid");
        return;
    }
    let home = tempfile::tempdir().unwrap();
    for (uid, says) in [(0, "would run workers as root"), (65534, "is the account")] {
        std::fs::write(
            home.path().join("silt.toml"),
            format!("[sandbox]\nworker_uid = {uid}\n"),
        )
        .unwrap();
        let (code, _, stderr) = support::output(
            support::silt(home.path())
                .args(["sandbox", "probe", "--scratch"])
                .arg(home.path())
                .args(NATIVE_STRICT)
                .args(["--", "id"]),
        );
        assert_eq!(code, 69, "worker_uid = {uid}: {stderr}");
        assert!(stderr.contains(says), "worker_uid = {uid}: {stderr}");
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

fn runc() -> Option<std::ffi::OsString> {
    containers::runtime("SILT_RUNC")
}

/// A project in `home` whose workers run in containers of `runtime`
/// (of `image`, for podman and docker).
fn container_project(home: &Path, runtime: &std::ffi::OsStr, image: Option<&str>) {
    let mut config = format!(
        "[sandbox]\ndriver = \"container\"\nisolation = \"strict\"\n[sandbox.container]\nruntime = \"{}\"\n",
        Path::new(runtime).display()
    );
    if let Some(image) = image {
        config.push_str(&format!("image = \"{image}\"\n"));
    }
    std::fs::write(home.join("silt.toml"), config).unwrap();
}

fn runc_project(home: &Path, runc: &std::ffi::OsStr) {
    container_project(home, runc, None);
}

/// Whether process `pid` has a handler for SIGTERM (`SigCgt` in its
/// status): a container's pid 1 ignores the signals it has none for.
fn catches_sigterm(pid: u32) -> bool {
    let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else {
        return false;
    };
    status
        .lines()
        .find_map(|line| line.strip_prefix("SigCgt:"))
        .and_then(|mask| u64::from_str_radix(mask.trim(), 16).ok())
        .is_some_and(|mask| mask & (1 << (libc::SIGTERM - 1)) != 0)
}

/// The host pid of container `id`'s first process (`runc state`).
fn container_pid(runc: &std::ffi::OsStr, id: &str) -> Option<u32> {
    let output = std::process::Command::new(runc)
        .args(["state", id])
        .output()
        .ok()?;
    let state: serde_json::Value = serde_json::from_slice(&output.stdout).ok()?;
    state["pid"]
        .as_u64()
        .and_then(|pid| u32::try_from(pid).ok())
}

/// Starts a runc probe that sleeps, and waits until its container runs
/// and its process is ready for the SIGTERM runc passes on (a signal that
/// comes before the handler is dropped: the container's pid 1 ignores it,
/// and a real worker then still ends at the end of its pipe, which this
/// probe never reads); returns the host and the container's id.
#[allow(clippy::zombie_processes)] // the caller kills and waits for the host
fn sleeping_runc_probe(home: &Path, runc: &std::ffi::OsStr) -> (std::process::Child, String) {
    let mut host = sleeping_probe(home, home, &[]);
    let prefix = format!("silt-probe-{}-", host.id());
    let ready = |id: &String| container_pid(runc, id).is_some_and(catches_sigterm);
    match support::poll_until(Duration::from_secs(20), || {
        containers::try_containers(runc, &prefix, true)
            .ok()?
            .pop()
            .filter(ready)
    }) {
        Some(id) => (host, id),
        None => {
            let _ = host.kill();
            let _ = host.wait();
            panic!("the container never started, or never caught SIGTERM");
        }
    }
}

#[test]
fn a_host_killed_with_sigkill_leaves_no_runc_container_behind() {
    let Some(runc) = runc() else { return };
    let _alone = support::CONTAINER_TESTS
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    let home = tempfile::tempdir().unwrap();
    runc_project(home.path(), &runc);
    // A root host's bundles are where its worker's uid can reach them.
    let bundles = if unsafe { libc::geteuid() } == 0 {
        root_host_containers()
    } else {
        home.path().join("cache/containers")
    };

    // The host alone is killed: runc passes the signal on and removes the
    // container itself, with no other silt running.
    let (mut host, id) = sleeping_runc_probe(home.path(), &runc);
    // Meanwhile: the worker is never kernel uid 0.
    let worker = container_pid(&runc, &id).expect("the container runs");
    assert_worker_ids(
        worker,
        &kernel_ids(worker, "Uid:"),
        &kernel_ids(worker, "Gid:"),
    );
    host.kill().unwrap();
    host.wait().unwrap();
    let gone = support::poll_until(Duration::from_secs(10), || {
        containers::try_containers(&runc, &id, true)
            .is_ok_and(|left| !left.contains(&id))
            .then_some(())
    });
    assert!(gone.is_some(), "container {id} outlived its host by 10 s");
    assert!(
        bundles.join(&id).exists(),
        "the bundle waits for the next host"
    );

    // Host and runc both killed: the container runs on, until the next
    // host that uses runc removes it, and both bundles.
    let (mut host, second) = sleeping_runc_probe(home.path(), &runc);
    // Stopped first, so that the host cannot clean up after its runtime.
    support::procfs::stop_every_thread(host.id());
    let runtimes = children(host.id());
    // SAFETY: signals to our own child's children.
    for runtime in &runtimes {
        unsafe { libc::kill(*runtime as i32, libc::SIGKILL) };
    }
    host.kill().unwrap();
    host.wait().unwrap();
    // Everything that could remove the container is gone: what is left now
    // stays.
    all_gone(&runtimes);
    assert!(
        containers::containers(&runc, &second, true).contains(&second),
        "with runc killed too, nothing removed the container"
    );
    let scratch = home.path().join("scratch");
    std::fs::create_dir(&scratch).unwrap();
    let report = probe(home.path(), &scratch, &[], &["id"]);
    assert_eq!(report["driver"], "container", "{report}");
    assert!(
        containers::containers(&runc, &second, true).is_empty(),
        "the next host removed {second}"
    );
    for bundle in [&id, &second] {
        assert!(!bundles.join(bundle).exists(), "bundle {bundle} is left");
    }
}

/// Waits until none of `pids` runs any more (gone, or a zombie nobody has
/// reaped yet: it runs nothing either).
fn all_gone(pids: &[u32]) {
    let gone = support::poll_until(Duration::from_secs(10), || {
        pids.iter()
            .all(|pid| {
                support::procfs::state_and_parent(*pid).is_none_or(|(state, _)| state == 'Z')
            })
            .then_some(())
    });
    assert!(gone.is_some(), "{pids:?} still run 10 s after SIGKILL");
}

#[test]
fn a_runc_container_is_confined_and_limited() {
    let Some(runc) = runc() else { return };
    let _alone = support::CONTAINER_TESTS
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    let home = tempfile::tempdir().unwrap();
    runc_project(home.path(), &runc);
    assert_confined_container(home.path());
}

/// What every container runtime must give a worker of the project in
/// `home`, probed from inside: no capabilities, `no_new_privs`, its own
/// pid and uts namespaces, no network, a read-only root with one writable
/// scratch directory, and the memory and pids limits.
fn assert_confined_container(home: &Path) {
    let scratch = home.join("scratch");
    std::fs::create_dir_all(&scratch).unwrap();
    let container = |flags: &[&str], args: &[&str]| {
        let report = probe(home, &scratch, flags, args);
        assert_eq!(report["driver"], "container", "{report}");
        report
    };
    let id = container(&[], &["id"]);
    let id = &id["result"];
    assert_eq!(id["capabilities"], 0, "no capabilities: {id}");
    assert_eq!(id["no_new_privs"], true, "{id}");
    assert_eq!(id["pid"], 1, "its own pid namespace: {id}");
    assert_eq!(id["hostname"], "silt-worker", "{id}");
    assert_eq!(
        id["environment"], 0,
        "no variables, not even docker's: {id}"
    );

    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap().to_string();
    assert_eq!(
        container(&[], &["connect", &address])["result"]["ok"],
        false
    );
    assert_eq!(
        container(&[], &["write", "/scratch/ok"])["result"]["ok"],
        true
    );
    assert_scratch_files_are_the_hosts(&scratch, "ok", |args| container(&[], args));
    for target in ["/usr/evil", "/evil", "/silt"] {
        let report = container(&[], &["write", target]);
        assert_eq!(report["result"]["ok"], false, "wrote {target}: {report}");
    }

    let memory = ["--memory-limit-mib", "64"];
    let control = container(&memory, &["alloc", "16"]);
    assert_eq!(control["result"]["allocated_mib"], 16, "{control}");
    let report = container(&memory, &["alloc", "256"]);
    assert_eq!(
        report["exit_code"], 137,
        "killed by its memory limit: {report}"
    );
    assert!(report["result"].is_null(), "it never finished: {report}");
    let pids = ["--pids-limit", "16"];
    let report = container(&pids, &["fork", "200"]);
    let forked = report["result"]["forked"].as_u64().unwrap();
    assert!(forked < 16, "{report}");
}

/// The host pid of podman or docker container `name`'s first process.
fn cli_pid(runtime: &std::ffi::OsStr, name: &str) -> Option<u32> {
    let output = std::process::Command::new(runtime)
        .args(["inspect", "--format", "{{.State.Pid}}", name])
        .output()
        .ok()?;
    String::from_utf8_lossy(&output.stdout)
        .trim()
        .parse()
        .ok()
        .filter(|&pid| pid != 0)
}

/// Starts a probe that sleeps in a podman or docker container, and waits
/// until the container runs and its process catches SIGTERM; returns the
/// host and the container's name.
#[allow(clippy::zombie_processes)] // the caller kills and waits for the host
fn sleeping_cli_probe(
    home: &Path,
    scratch: &Path,
    runtime: &std::ffi::OsStr,
) -> (std::process::Child, String) {
    let mut host = sleeping_probe(home, scratch, &[]);
    let prefix = format!("silt-probe-{}-", host.id());
    let ready = |name: &String| cli_pid(runtime, name).is_some_and(catches_sigterm);
    match support::poll_until(Duration::from_secs(30), || {
        containers::try_containers(runtime, &prefix, false)
            .ok()?
            .pop()
            .filter(ready)
    }) {
        Some(name) => (host, name),
        None => {
            let _ = host.kill();
            let _ = host.wait();
            panic!("the container never started, or never caught SIGTERM");
        }
    }
}

/// What `silt sandbox image build` said of `image`: its tag, and files
/// that include silt's C library.
fn assert_image_report(image: &WorkerImage) {
    crate::json_schemas::assert_valid("sandbox-image-build", &image.report);
    let built: Value = serde_json::from_str(&image.report).unwrap();
    assert_eq!(built["image"], image.tag.as_str());
    let files: Vec<&str> = built["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|file| file.as_str().unwrap())
        .collect();
    assert!(
        files.iter().any(|file| file.ends_with("/libc.so.6")),
        "the image holds silt's C library: {files:?}"
    );
}

/// What podman and docker workers must give: [`assert_confined_container`],
/// never kernel uid 0, and no container left once a host is killed with
/// SIGKILL (the CLI passes the signal on, the worker exits and `--rm`
/// removes its container, with no other silt running).
fn assert_cli_worker_is_confined_and_gone_with_its_host(runtime: &std::ffi::OsStr) {
    let _alone = support::CONTAINER_TESTS
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    let home = tempfile::tempdir().unwrap();
    let image = WorkerImage::build(home.path(), runtime);
    assert_image_report(&image);
    container_project(home.path(), runtime, Some(&image.tag));
    assert_confined_container(home.path());
    if unsafe { libc::geteuid() } == 0 {
        // Every probe's worker is gone, and with it every bind a root
        // host attached in this namespace for docker's daemon.
        assert_eq!(
            mounts_beneath(&root_host_containers()),
            Vec::<String>::new()
        );
    }
    let scratch = home.path().join("scratch");

    let (mut host, name) = sleeping_cli_probe(home.path(), &scratch, runtime);
    let prefix = format!("silt-probe-{}-", host.id());
    // Meanwhile: the worker is never kernel uid 0.
    let worker = cli_pid(runtime, &name).expect("the container runs");
    assert_worker_ids(
        worker,
        &kernel_ids(worker, "Uid:"),
        &kernel_ids(worker, "Gid:"),
    );
    host.kill().unwrap();
    host.wait().unwrap();
    containers::assert_none_left(runtime, &prefix);
}

#[test]
fn a_podman_worker_is_confined_limited_and_gone_with_its_host() {
    let Some(podman) = containers::runtime("SILT_PODMAN") else {
        return;
    };
    assert_cli_worker_is_confined_and_gone_with_its_host(&podman);
}

#[test]
fn a_docker_worker_is_confined_limited_and_gone_with_its_host() {
    let Some(docker) = containers::runtime("SILT_DOCKER") else {
        return;
    };
    assert_cli_worker_is_confined_and_gone_with_its_host(&docker);
}

/// Where a root host in this pid namespace keeps its containers'
/// directories: `/run/silt/containers/<pid namespace>`.
fn root_host_containers() -> std::path::PathBuf {
    let namespace = std::fs::read_link("/proc/self/ns/pid").unwrap();
    let digits: String = namespace
        .to_string_lossy()
        .chars()
        .filter(char::is_ascii_digit)
        .collect();
    Path::new("/run/silt/containers").join(digits)
}

/// The mount points beneath `dir` (not `dir` itself: a root host makes
/// its containers' directory a private mount) in this process's namespace.
fn mounts_beneath(dir: &Path) -> Vec<String> {
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter_map(|line| line.split(' ').nth(4))
        .filter(|point| Path::new(point).starts_with(dir) && Path::new(point) != dir)
        .map(str::to_owned)
        .collect()
}

/// docker's daemon makes a root host's worker's mounts in the host's
/// namespace, so its idmapped binds are attached there. A host killed
/// together with its docker CLI leaves them attached, and its container
/// running; the next host removes the container, detaches the binds and
/// only then removes their mount points: the scratch directory they show
/// keeps every file.
#[test]
fn a_killed_docker_hosts_binds_are_detached_before_its_directory_goes() {
    let Some(docker) = containers::runtime("SILT_DOCKER") else {
        return;
    };
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: only a root host idmaps its docker workers' binds");
        return;
    }
    let _alone = support::CONTAINER_TESTS
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    let home = tempfile::tempdir().unwrap();
    let image = WorkerImage::build(home.path(), &docker);
    assert_image_report(&image);
    container_project(home.path(), &docker, Some(&image.tag));
    let scratch = home.path().join("scratch");
    std::fs::create_dir(&scratch).unwrap();
    std::fs::write(scratch.join("keep"), b"the extension's own file").unwrap();

    let (mut host, name) = sleeping_cli_probe(home.path(), &scratch, &docker);
    let dir = root_host_containers().join(&name);
    assert!(
        !mounts_beneath(&dir).is_empty(),
        "the worker's binds are attached under {}",
        dir.display()
    );
    // Stopped first, so that the host cannot clean up after its CLI.
    support::procfs::stop_every_thread(host.id());
    let clis = children(host.id());
    // SAFETY: signals to our own child's children.
    for cli in &clis {
        unsafe { libc::kill(*cli as i32, libc::SIGKILL) };
    }
    host.kill().unwrap();
    host.wait().unwrap();
    // The host and its CLI are gone: the daemon alone decides now.
    all_gone(&clis);
    assert!(
        containers::containers(&docker, &name, false).contains(&name),
        "with its CLI killed too, the container runs on in the daemon"
    );
    assert!(
        !mounts_beneath(&dir).is_empty(),
        "and its binds stay attached"
    );

    let report = probe(home.path(), &scratch, &[], &["id"]);
    assert_eq!(report["driver"], "container", "{report}");
    assert!(
        containers::containers(&docker, &name, true).is_empty(),
        "the next host removed {name}"
    );
    assert_eq!(mounts_beneath(&dir), Vec::<String>::new(), "binds detached");
    assert!(!dir.exists(), "{} is left", dir.display());
    assert_eq!(
        std::fs::read(scratch.join("keep")).unwrap(),
        b"the extension's own file",
        "nothing was removed through a mount"
    );
}
