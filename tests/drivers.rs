//! What differs by container driver, for runc, podman and docker: a
//! datastore driven through `silt` with every extension call in a
//! container (put and get, a `run` whose lease is renewed by calls in
//! containers, writers taking turns on one model, a lazy clone), the
//! `misbehaving` component's calls answered as in process (traps,
//! deadlines, the memory limit, floods through the runtime's stdio relay,
//! escapes from the cache directory, the host's downloads into its bind),
//! and no container left once the calls are done.
//!
//! The datastore suites run out of process once, on the native driver
//! (`cargo xtask test`): the worker protocol, the host's checks and the
//! lease logic are the same for every driver. What a driver changes is how
//! a worker starts, what confines it and how it goes: `sandbox.rs` probes
//! each driver's confinement, limits and clean-up after a killed host;
//! `leases.rs` holds a short lease through a large commit in podman's and
//! docker's containers (their starts are the slowest); this suite drives
//! real datastores through each.

use crate::support;

use std::process::Child;

use support::containers::{self, ContainerRuntime};
use support::project::{BACKENDS, Backend, Project};

fn spawn(project: &Project, args: &[&str]) -> Child {
    support::child::spawn(project.silt().args(args))
}

/// A datastore driven through `silt` with every extension call in a
/// container of `runtime`, on both backends.
fn a_datastore_runs_end_to_end(runtime: &ContainerRuntime) {
    // A renewal has a third of the TTL to answer, here 1.5 s: several
    // container starts (podman about 170 ms, docker about 250 ms, more on
    // a loaded machine; `cargo xtask bench worker`).
    let ttl_ms = 4_500;
    for backend in BACKENDS {
        let project = Project::new(
            backend,
            &format!("{}[locks]\nttl_ms = {ttl_ms}\n", runtime.settings()),
        );

        // One command, and the log says its worker ran in a container.
        let input = project.write_input("w", "in a container\n");
        let (code, _, stderr) =
            support::output(project.silt().env("RUST_LOG", "silt_worker=debug").args([
                "data",
                "put",
                "vision/detector/m-1",
                "weights.bin",
                &input,
            ]));
        assert_eq!(code, 0, "{backend:?}: {stderr}");
        assert!(
            stderr.contains("worker started") && stderr.contains("driver=\"container\""),
            "{backend:?}: no worker started in a container: {stderr}"
        );
        assert_eq!(
            project.ok(&["data", "get", "vision/detector/m-1", "weights.bin"]),
            "in a container\n"
        );

        // A run that outlives its lease's TTL: the lease is renewed by
        // extension calls in containers while the command works (on one
        // backend: renewals are the same calls on both).
        let seconds = if backend == Backend::S3 {
            ttl_ms as f64 * 1.5 / 1000.0
        } else {
            0.0
        };
        let script = format!("sleep {seconds:.2}; echo done > \"$SILT_MODEL_DIR/result.txt\"");
        project.ok(&["run", "--model", "jobs/long", "--", "sh", "-c", &script]);

        // Four writers of one model take turns and lose nothing.
        let inputs = tempfile::tempdir().unwrap();
        let writers: Vec<Child> = (0..4)
            .map(|i| {
                if i % 2 == 0 {
                    let input = inputs.path().join(format!("in-{i}"));
                    std::fs::write(&input, format!("writer {i}\n")).unwrap();
                    let name = format!("put-{i}.txt");
                    spawn(
                        &project,
                        &[
                            "data",
                            "put",
                            "shared/model",
                            &name,
                            input.to_str().unwrap(),
                        ],
                    )
                } else {
                    let script = format!("echo 'run {i}' >> \"$SILT_MODEL_DIR/log.txt\"");
                    spawn(
                        &project,
                        &["run", "--model", "shared/model", "--", "sh", "-c", &script],
                    )
                }
            })
            .collect();
        for (i, writer) in writers.into_iter().enumerate() {
            let output = writer.wait_with_output().unwrap();
            assert!(
                output.status.success(),
                "{backend:?} writer {i}: {}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        let log = project.ok(&["data", "get", "shared/model", "log.txt"]);
        let mut lines: Vec<&str> = log.lines().collect();
        lines.sort_unstable();
        assert_eq!(lines, ["run 1", "run 3"], "{backend:?}: a run lost a line");
        let listing = project.json(&["data", "list", "shared/model"])["files"].clone();
        let versions: u64 = listing
            .as_array()
            .unwrap()
            .iter()
            .map(|entry| entry["versions"].as_u64().unwrap())
            .sum();
        assert_eq!(versions, 4, "{backend:?}: {listing}");

        // Another clone learns and fetches lazily, through its own workers.
        let clone = project.another_clone();
        assert_eq!(
            clone.ok(&["data", "get", "jobs/long", "result.txt"]),
            "done\n"
        );
        clone.ok(&["datastore", "verify"]);
        project.assert_no_leases();
        // Every command's workers are gone with their commands (no other
        // test runs containers meanwhile: `CONTAINER_TESTS`).
        containers::assert_none_left(&runtime.path, "silt-worker-");
    }
}

/// A root host whose umask masks out everyone but its user (077): what it
/// makes for a container (the bundle, its mount points) must still be
/// traversable by the worker, which runs as `sandbox.worker_uid`. (Not as
/// root, the worker is the user: nothing to check.)
fn a_strict_umask_leaves_the_worker_its_bundle(runtime: &ContainerRuntime) {
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("not root: the worker is the user, whatever the umask");
        return;
    }
    let project = Project::new(Backend::Dir, &runtime.settings());
    let input = project.write_input("w", "under umask 077\n");
    for args in [
        &["data", "put", "t/m", "f", input.as_str()][..],
        &["data", "get", "t/m", "f"],
    ] {
        let mut silt = project.silt();
        silt.args(args);
        let (code, stdout, stderr) = support::output(&mut support::under_umask(&silt, 0o077));
        assert_eq!(code, 0, "{args:?} under umask 077: {stderr}");
        if args[1] == "get" {
            assert_eq!(stdout, "under umask 077\n");
        }
    }
    containers::assert_none_left(&runtime.path, "silt-worker-");
}

/// Every check of this suite on the runtime `variable` names.
fn drive(variable: &str) {
    let _alone = support::CONTAINER_TESTS
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    let Some(runtime) = ContainerRuntime::from_env(variable) else {
        return;
    };
    a_datastore_runs_end_to_end(&runtime);
    a_strict_umask_leaves_the_worker_its_bundle(&runtime);
    tokio::runtime::Runtime::new().unwrap().block_on(
        support::misbehaving::assert_answers_as_in_process(runtime.sandbox(2)),
    );
    containers::assert_none_left(
        &runtime.path,
        &format!("silt-worker-{}-", std::process::id()),
    );
}

#[test]
fn runc_runs_datastores_and_contains_misbehaving_guests() {
    drive("SILT_RUNC");
}

#[test]
fn podman_runs_datastores_and_contains_misbehaving_guests() {
    drive("SILT_PODMAN");
}

#[test]
fn docker_runs_datastores_and_contains_misbehaving_guests() {
    drive("SILT_DOCKER");
}
