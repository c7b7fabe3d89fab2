//! A hostile extension's calls, contained in both execution modes:
//! `broken-datastore` runs the attack its `attack` setting names (see its
//! `hostile` module) through the real `silt` command, once in process and
//! once in a sandboxed worker, and the host must give the same, right
//! answer in both: bounded memory, no panic on impossible numbers, its own
//! records out of reach, an end to endless hydration, the command's
//! execution mode in every process it starts, guest errors that name no
//! host path, one outcome per call whatever the mode.

use crate::support;

use std::os::unix::fs::symlink;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::project::{Backend, Project};

const DATA_ERROR: i32 = 65;
const EXTENSION_FAILED: i32 = 70;

/// Both execution modes, as `--execution` names them.
const MODES: [&str; 2] = ["in-process", "out-of-process"];

/// A project whose broken datastore runs `attack`; `extra` is appended to
/// its `silt.toml`.
fn attacked_by(attack: &str, extra: &str) -> Project {
    Project::with_extension(
        Backend::Dir,
        "broken-datastore",
        &format!("[extensions.config.broken-datastore]\nattack = \"{attack}\"\n{extra}"),
    )
}

/// `silt --execution MODE ARGS…` in `project`: (code, stdout, stderr).
fn run_in(project: &Project, mode: &str, args: &[&str]) -> (i32, String, String) {
    support::output(project.silt().args(["--execution", mode]).args(args))
}

fn put(project: &Project, mode: &str, model: &str) -> (i32, String, String) {
    let input = project.write_input("input", "some data\n");
    run_in(project, mode, &["data", "put", model, "f.txt", &input])
}

/// Runs `command` to its end; returns its exit code, stderr and the peak
/// resident memory of the process (and of any child it waited for).
// Reaped by `wait4`, which `Child::wait` cannot do: it drops the rusage.
#[allow(clippy::zombie_processes)]
fn peak_memory(command: &mut Command) -> (i32, String, u64) {
    let stderr = tempfile::NamedTempFile::new().unwrap();
    let child = command
        .stdout(Stdio::null())
        .stderr(stderr.reopen().unwrap())
        .spawn()
        .unwrap();
    let mut status = 0;
    // SAFETY: plain wait4(2) on our own child, into zeroed memory.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let waited = unsafe { libc::wait4(child.id() as i32, &mut status, 0, &mut usage) };
    assert_eq!(waited, child.id() as i32);
    let code = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        -1
    };
    let stderr = std::fs::read_to_string(stderr.path()).unwrap();
    // Linux counts `ru_maxrss` in KiB.
    (code, stderr, usage.ru_maxrss as u64 * 1024)
}

#[test]
fn a_huge_file_the_extension_claims_is_streamed_with_bounded_memory() {
    for mode in MODES {
        let project = attacked_by("huge-file", "");
        let input = project.write_input("input", "the committed content\n");
        project.ok(&["-q", "data", "put", "t/m", "f.txt", &input]);
        let out = project.path().join("out.txt");
        // The extension makes f.txt a sparse 512 MiB file in the working
        // copy and says that is its size: read whole, as before, the host
        // grew by 512 MiB.
        let (code, stderr, peak) = peak_memory(
            project
                .silt()
                .args(["--execution", mode, "--hydration", "lazy"])
                .args(["data", "get", "t/m", "f.txt", "-o"])
                .arg(&out),
        );
        assert_eq!(code, 0, "{mode}: {stderr}");
        // Not the committed file: the store's copy was delivered instead.
        assert_eq!(
            std::fs::read_to_string(&out).unwrap(),
            "the committed content\n",
            "{mode}"
        );
        assert!(
            peak < 256 << 20,
            "{mode}: silt grew to {} MiB reading a file the extension claims is 512 MiB",
            peak >> 20
        );
    }
}

#[test]
fn a_whole_object_get_of_a_huge_object_is_refused_before_it_is_read() {
    for mode in MODES {
        let project = attacked_by("huge-get", "");
        let input = project.write_input("input", "some data\n");
        let (code, stderr, peak) = peak_memory(project.silt().args([
            "--execution",
            mode,
            "data",
            "put",
            "t/m",
            "f.txt",
            &input,
        ]));
        assert_eq!(code, DATA_ERROR, "{mode}: {stderr}");
        assert!(
            stderr.contains("upload: ok; get: StoreError::InvalidArgument(")
                && stderr.contains("is 314572800 bytes; a whole-object get reads at most 268435456 (download it instead)"),
            "{mode}: {stderr}"
        );
        // Below the object's size: a whole read would pass 300 MiB. (One CI
        // run saw 210 MiB here in process, on a path that reads nothing
        // large; not reproduced, cause not found.)
        assert!(
            peak < 256 << 20,
            "{mode}: silt grew to {} MiB for a get of 300 MiB",
            peak >> 20
        );
    }
}

#[test]
fn impossible_orphan_counts_are_refused_not_added_up() {
    for mode in MODES {
        let project = attacked_by("orphan-counts", "");
        for args in [
            &["datastore", "gc", "--keep", "3"][..],
            &["datastore", "gc", "--keep", "3", "--dry-run"],
        ] {
            let (code, stdout, stderr) = run_in(&project, mode, args);
            assert_eq!(code, EXTENSION_FAILED, "{mode} {args:?}: {stdout}{stderr}");
            assert!(
                stderr.contains("misbehaved in `sync.collect-orphans`: it reported 7 orphans deleted and 9 kept of 1 found"),
                "{mode} {args:?}: {stderr}"
            );
            assert!(!stderr.contains("panicked"), "{mode}: {stderr}");
        }
    }
}

#[test]
fn the_hosts_own_records_are_out_of_the_extensions_reach() {
    for mode in MODES {
        let project = attacked_by("host-records", "");
        let record = project.read_object("_silt/datastore.json");
        let (code, _, stderr) = put(&project, mode, "t/m");
        assert_eq!(code, DATA_ERROR, "{mode}: {stderr}");
        for key in [
            "_silt/datastore.json",
            "_SILT/datastore.json",
            "_silt/unsafe-store.json",
        ] {
            assert!(
                stderr.contains(&format!(
                    "{key}: put=invalid-key get=invalid-key delete=invalid-key"
                )),
                "{mode}: {key}: {stderr}"
            );
        }
        assert!(
            stderr.contains("list _silt/=invalid-key"),
            "{mode}: {stderr}"
        );
        assert!(
            stderr.contains("host keys in a listing of everything: 0"),
            "{mode}: {stderr}"
        );
        // The record is untouched, and a new clone sets up.
        assert_eq!(
            project.read_object("_silt/datastore.json"),
            record,
            "{mode}"
        );
        let clone = project.another_clone();
        let (code, _, stderr) = clone.run(&["datastore", "setup"]);
        assert_eq!(code, 0, "{mode}: {stderr}");
    }
}

/// Starts the background hydrator of `project` in `mode`; its pid.
fn start_hydrator(project: &Project, mode: &str) -> u32 {
    let (code, stdout, stderr) = run_in(
        project,
        mode,
        &[
            "--json",
            "--hydration",
            "lazy",
            "datastore",
            "hydrate",
            "--background",
        ],
    );
    assert_eq!(code, 0, "{mode}: {stderr}");
    let started: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    started["pid"].as_u64().expect("a hydrator was started") as u32
}

/// The hydrator's last state once it ended; panics after `limit`.
fn hydrator_once_stopped(project: &Project, limit: Duration) -> serde_json::Value {
    let deadline = Instant::now() + limit;
    loop {
        let status = project.json(&["datastore", "hydrate", "--status"]);
        // Not running, and its last state written (it may not have begun).
        let last = &status["background"]["last"];
        if status["background"]["running"] == false
            && (last["phase"] == "done" || last["phase"] == "failed")
        {
            return last.clone();
        }
        assert!(
            Instant::now() < deadline,
            "the hydrator still runs: {status}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_hydration_that_never_progresses_is_stopped_with_a_reason() {
    for attack in [
        "idle-hydration",
        "treadmill-hydration",
        "countdown-hydration",
    ] {
        for mode in MODES {
            let project = attacked_by(attack, "");
            let input = project.write_input("input", "some data\n");
            project.ok(&["-q", "data", "put", "t/m", "f.txt", &input]);
            let started = Instant::now();
            start_hydrator(&project, mode);
            // Each round answers at once: three rounds take well under a
            // second; before, it ran until the extension changed its answer.
            let last = hydrator_once_stopped(&project, Duration::from_secs(30));
            assert_eq!(last["phase"], "failed", "{attack} {mode}: {last}");
            let error = last["error"].as_str().unwrap();
            let reason = match attack {
                // One file: one slice, and three rounds of slack.
                "countdown-hydration" => "t/m (5 rounds, more than its files need (4 with slack;",
                _ => {
                    "t/m (3 rounds in a row fetched nothing or left as much to do (5 objects said to remain))"
                }
            };
            assert!(
                error.contains(&format!(
                    "stopped without progress on 1 of the models: {reason}"
                )),
                "{attack} {mode}: {error}"
            );
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "{attack} {mode}: took {:?}",
                started.elapsed()
            );
        }
    }
}

/// The processes below `pid` now.
fn descendants(pid: u32) -> Vec<u32> {
    let mut parents = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(child) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // `pid (comm) state ppid …`: the name may hold spaces and parens.
        let Some((_, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        if let Some(parent) = rest
            .split_whitespace()
            .nth(1)
            .and_then(|p| p.parse::<u32>().ok())
        {
            parents.push((child, parent));
        }
    }
    let mut found = vec![pid];
    let mut grew = true;
    while grew {
        grew = false;
        for (child, parent) in &parents {
            if found.contains(parent) && !found.contains(child) {
                found.push(*child);
                grew = true;
            }
        }
    }
    found.retain(|p| *p != pid);
    found
}

#[test]
fn the_background_hydrator_runs_extensions_where_the_command_said() {
    for mode in MODES {
        let project = attacked_by("slow-hydration", "");
        let input = project.write_input("input", "some data\n");
        project.ok(&["-q", "data", "put", "t/m", "f.txt", &input]);
        // Its extension sleeps 4 s in `hydrate-scope`: long enough to look.
        let pid = start_hydrator(&project, mode);
        let deadline = Instant::now() + Duration::from_secs(3);
        let mut workers = Vec::new();
        while workers.is_empty() && Instant::now() < deadline {
            workers = descendants(pid);
            std::thread::sleep(Duration::from_millis(50));
        }
        match mode {
            "out-of-process" => assert!(
                !workers.is_empty(),
                "the hydrator of an out-of-process command ran its extension in process"
            ),
            _ => assert_eq!(workers, Vec::<u32>::new(), "a worker in process?"),
        }
        let last = hydrator_once_stopped(&project, Duration::from_secs(30));
        assert_eq!(last["phase"], "done", "{mode}: {last}");
    }
}

#[test]
fn a_link_in_the_way_is_an_invalid_path_to_the_guest_without_host_paths() {
    for mode in MODES {
        let project = attacked_by("link-in-the-way", "");
        let outside = tempfile::tempdir().unwrap();
        symlink(outside.path(), project.path().join(".silt/local/esc")).unwrap();
        let (code, _, stderr) = put(&project, mode, "t/m");
        assert_eq!(code, DATA_ERROR, "{mode}: {stderr}");
        assert!(
            stderr.contains(
                "download through the link: StoreError::InvalidPath(\"cache file `esc/landed`: a symbolic link is in the way"
            ),
            "{mode}: {stderr}"
        );
        let home = project.path().to_str().unwrap();
        assert!(
            !stderr.contains(home),
            "{mode}: a host path reached the guest: {stderr}"
        );
        assert_eq!(
            std::fs::read_dir(outside.path()).unwrap().count(),
            0,
            "{mode}"
        );
    }
}

#[test]
fn one_call_has_one_outcome_in_both_modes() {
    // 4 s of small store calls under a 1.5 s deadline: store time is not
    // the guest's, in process or out. And a million progress reports.
    for (attack, extra) in [
        ("store-calls", "[runtime]\ndeadline_ms = 1500\n"),
        ("progress-flood", "[runtime]\ndeadline_ms = 10000\n"),
    ] {
        for mode in MODES {
            let project = attacked_by(attack, extra);
            let (code, _, stderr) = put(&project, mode, "t/m");
            assert_eq!(code, 0, "{attack} {mode}: {stderr}");
        }
    }
}

#[test]
fn a_guest_panic_keeps_its_lines_in_both_modes() {
    for mode in MODES {
        let project = attacked_by("panic", "");
        let (code, _, stderr) = put(&project, mode, "t/m");
        assert_eq!(code, EXTENSION_FAILED, "{mode}: {stderr}");
        assert!(
            stderr.contains("first line of the panic\nsecond line\nthird line"),
            "{mode}: {stderr}"
        );
    }
}

#[test]
fn a_gc_of_many_models_takes_their_leases_in_bounded_steps() {
    for mode in MODES {
        let project = attacked_by("many-models", "");
        let report: serde_json::Value = {
            let (code, stdout, stderr) = run_in(
                &project,
                mode,
                &["--json", "datastore", "gc", "--keep", "3"],
            );
            assert_eq!(code, 0, "{mode}: {stderr}");
            serde_json::from_str(&stdout).unwrap()
        };
        // The extension reports one entry a call, and the leases it got:
        // 16 steps of at most 64 leases, each split over 2 calls, which
        // get their own models' leases, every one once.
        assert_eq!(report["models"].as_array().unwrap().len(), 1000, "{mode}");
        assert_eq!(
            report["entries_expired"], 32,
            "{mode}: 1,000 models in steps of 64, 2 calls each"
        );
        assert_eq!(report["objects_deleted"], 1000, "{mode}: {report}");
    }
}

/// A large file given to `put` is sent from where it is (0.7.4), and the
/// commit is checked against what the host read of it all the same: an
/// extension that commits other bytes without sending it, or that records
/// another checksum than what it sent, is refused (exit 65), in both modes.
#[test]
fn a_large_file_given_is_checked_against_what_was_committed() {
    for (attack, model) in [("unsent", "t/m"), ("none", "attack/wrong-checksum")] {
        let project = attacked_by(attack, "");
        let input = project.path().join("big.in");
        std::fs::File::create(&input)
            .unwrap()
            .set_len((64 << 20) + 3)
            .unwrap();
        for mode in MODES {
            let (code, _, stderr) = run_in(
                &project,
                mode,
                &["data", "put", model, "big.bin", input.to_str().unwrap()],
            );
            assert_eq!(code, DATA_ERROR, "{attack} {mode}: {stderr}");
            assert!(
                stderr.contains("the committed version"),
                "{attack} {mode}: {stderr}"
            );
        }
    }
}
