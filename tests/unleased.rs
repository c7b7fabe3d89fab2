//! Unleased commits (`lease-free-commits`, partitioned-datastore): `silt
//! data put` and `rm` take no lease of their own. A put is three requests
//! once the clone knows the model's partition; a `silt run` holding the
//! model's lease makes it wait its turn and nothing is lost; and the
//! upload of a put still on its way is revoked in the partition before
//! `gc` deletes it, so that put is refused instead of committing an entry
//! whose content is gone.

use std::process::Child;
use std::time::{Duration, Instant};

use super::support;
use super::support::pausing_proxy::{Hold, Trap, trapped_clone_with};
use super::support::project::{BACKENDS, Backend, Project};

/// `silt data put` of `content` as `name`, with its JSON report.
fn put(project: &Project, model: &str, name: &str, content: &str) -> serde_json::Value {
    let input = project.write_input(&format!("in-{name}"), content);
    project.json(&["data", "put", model, name, &input])
}

#[test]
fn a_put_is_three_requests_an_rm_two_and_neither_takes_a_lease() {
    for backend in BACKENDS {
        let project = Project::new(backend, "");
        // The clone's first commit reads the datastore's metadata and the
        // partition (it knows neither): announcement, metadata, upload,
        // partition read, compare-and-swap.
        let first = put(&project, "t/m", "a.txt", "one");
        assert_eq!(first["requests"], 5, "{backend:?}: {first}");
        assert_eq!(
            first["generation"], 0,
            "{backend:?}: no lease, no generation: {first}"
        );
        // Then the announcement, the upload and the compare-and-swap.
        for i in 0..3 {
            let next = put(&project, "t/m", &format!("f{i}.txt"), "two");
            assert_eq!(next["requests"], 3, "{backend:?} put {i}: {next}");
        }
        let over = put(&project, "t/m", "a.txt", "three");
        assert_eq!(over["requests"], 3, "{backend:?}: {over}");
        // A removal uploads nothing.
        let removed = project.json(&["data", "rm", "t/m", "f0.txt"]);
        assert_eq!(removed["requests"], 2, "{backend:?}: {removed}");
        assert!(
            project.keys("_locks/").is_empty(),
            "{backend:?}: a lock object was made"
        );
        assert_eq!(project.ok(&["data", "get", "t/m", "a.txt"]), "three");
        let history = project.json(&["data", "history", "t/m", "a.txt"])["versions"].clone();
        assert_eq!(
            history.as_array().unwrap().len(),
            2,
            "{backend:?}: {history}"
        );

        // Another clone's write moves the partition on: this clone's next
        // compare-and-swap loses on the version it knew (and the host reads
        // the object once to see whether the loss was its own write whose
        // answer was lost), reads the partition, and lands.
        let other = project.another_clone();
        put(&other, "t/m", "b.txt", "theirs");
        let after = put(&project, "t/m", "c.txt", "ours");
        assert_eq!(after["requests"], 6, "{backend:?}: {after}");
        let names = project.file_names("t/m");
        assert_eq!(
            names,
            ["a.txt", "b.txt", "c.txt", "f1.txt", "f2.txt"],
            "{backend:?}"
        );
    }
}

fn spawn(project: &Project, args: &[&str]) -> Child {
    support::child::spawn(project.silt().args(args))
}

/// The exit code and stderr of `child`.
fn finish(child: Child) -> (i32, String) {
    let (code, _, stderr) = support::child::finish(child);
    (code, stderr)
}

#[test]
fn a_put_while_a_run_holds_the_model_waits_for_the_lease_and_both_land() {
    for backend in BACKENDS {
        let project = Project::new(backend, "");
        put(&project, "t/m", "f.txt", "before");
        let ready = project.path().join("ready");
        // The run holds the model until the put says it waits for the
        // lease (a fixed sleep raced the put's start on a loaded machine).
        let script = "echo run > \"$SILT_MODEL_DIR/log.txt\"; touch \"$0\"; \
                      i=0; while [ ! -e \"$0.go\" ] && [ $i -lt 2400 ]; do sleep 0.05; i=$((i+1)); done";
        let run = spawn(
            &project,
            &[
                "run",
                "--model",
                "t/m",
                "--",
                "sh",
                "-c",
                script,
                ready.to_str().unwrap(),
            ],
        );
        let started = Instant::now();
        while !ready.exists() {
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "the run never started"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        let input = project.write_input("in-during", "during");
        // Said without -v: a user at the terminal sees why nothing happens.
        let mut writer = spawn(&project, &["data", "put", "t/m", "f.txt", &input]);
        let (waiting, put_stderr) = support::watch_for(
            writer.stderr.take().unwrap(),
            "silt: waiting for the lease on model t/m",
        );
        let waited = waiting.recv_timeout(Duration::from_secs(60)).is_ok();
        std::fs::write(project.path().join("ready.go"), b"").unwrap();
        let put_code = writer.wait().unwrap().code().unwrap_or(-1);
        let put_stderr = put_stderr.join().unwrap();
        let (run_code, run_stderr) = finish(run);
        assert_eq!(run_code, 0, "{backend:?}: {run_stderr}");
        assert_eq!(put_code, 0, "{backend:?}: {put_stderr}");
        assert!(
            waited && put_stderr.contains("silt: waiting for the lease on model t/m"),
            "{backend:?}: the put did not wait for the run: {put_stderr}"
        );
        assert!(put_stderr.contains("s more"), "{put_stderr}");
        assert_eq!(project.ok(&["data", "get", "t/m", "f.txt"]), "during");
        assert_eq!(project.ok(&["data", "get", "t/m", "log.txt"]), "run\n");
        // Committed after the run, under a lease of its own.
        let run_generation = project.generations("t/m", "log.txt")[0];
        assert_eq!(
            project.generations("t/m", "f.txt"),
            [0, run_generation + 1],
            "{backend:?}"
        );
        project.assert_no_leases();
    }
}

#[test]
fn gc_revokes_a_put_on_its_way_before_deleting_its_upload_and_the_put_is_refused() {
    let reader = Project::new(Backend::S3, "");
    put(&reader, "t/m", "f.txt", "r0");
    // The writer's compare-and-swap is held back (after its announcement
    // and its upload) until the request times out, and its retry waits
    // until the gc below is done (else, on a loaded machine, the retry
    // could land before the gc revoked the put).
    let trap = Trap {
        method: "PUT",
        path_contains: "/_index/".to_owned(),
        armed_by: "/data/t/m/".to_owned(),
        hold: Hold::BeforeServer,
        later_ones_wait: true,
    };
    let (writer, proxy) = trapped_clone_with(&reader, trap, "request_timeout_ms = 2000\n");
    let input = writer.write_input("in-late", "late");
    let late = spawn(&writer, &["data", "put", "t/m", "f.txt", &input]);
    let caught = proxy.wait_caught(Duration::from_secs(60));
    assert!(caught.contains("/_index/"), "{caught}");

    let gc = reader.json(&["datastore", "gc", "--keep", "10", "--orphan-min-age", "0"]);
    proxy.release();
    assert_eq!(gc["orphans_deleted"], 1, "the late put's upload: {gc}");
    let (code, stderr) = finish(late);
    assert_ne!(
        code, 0,
        "the late put committed an upload gc had deleted: {stderr}"
    );
    assert!(stderr.contains("collected its upload"), "{stderr}");

    // Nothing of it is in the index, and nothing is left behind.
    assert_eq!(reader.ok(&["data", "get", "t/m", "f.txt"]), "r0");
    let history = reader.json(&["data", "history", "t/m", "f.txt"])["versions"].clone();
    assert_eq!(history.as_array().unwrap().len(), 1, "{history}");
    reader.ok(&["datastore", "verify"]);
    // Tried again, it lands.
    writer.ok(&["-q", "data", "put", "t/m", "f.txt", &input]);
    assert_eq!(reader.ok(&["data", "get", "t/m", "f.txt"]), "late");
}
