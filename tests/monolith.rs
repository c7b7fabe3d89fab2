//! The baseline extension, `monolith-datastore`, as a datastore in its own
//! right: one index object, every commit under the namespace lock, and the
//! lock protocol of today's datastores (waits, timeouts, stale locks), with
//! fencing added (a takeover is one generation up). Its
//! shared behaviour (put/get/list/history/rm, two clones, `silt run`,
//! retention) is tested with the partitioned one in `datastore.rs`.

use crate::support;

use std::process::Stdio;

use support::project::{BACKENDS, Backend, Project};

const MONOLITH: &str = "monolith-datastore";

/// A lock body as the extensions store it, on `scope`, held by `pid` at
/// `generation` and renewed at `renewed_at`.
fn lock_body(
    scope: serde_json::Value,
    token: &str,
    generation: u64,
    pid: u32,
    renewed_at: u64,
    ttl_ms: u64,
) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "scope": scope,
        "holder": {"name": "someone@elsewhere", "host": "elsewhere", "pid": pid},
        "token": token, "generation": generation,
        "acquired_at": renewed_at, "renewed_at": renewed_at, "ttl_ms": ttl_ms,
        "nonce": "0123456789abcdef",
    }))
    .unwrap()
}

/// The namespace lock as the extensions store it, held by `pid` and renewed at `renewed_at`.
fn namespace_lock(token: &str, pid: u32, renewed_at: u64, ttl_ms: u64) -> Vec<u8> {
    let scope = serde_json::json!({"kind": "namespace"});
    lock_body(scope, token, 1, pid, renewed_at, ttl_ms)
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

#[test]
fn every_model_lives_in_one_index_object() {
    for backend in BACKENDS {
        let project = Project::with_extension(backend, MONOLITH, "");
        for model in ["a/m1", "a/m2", "b/m3"] {
            let input = project.write_input("in", model);
            project.ok(&["data", "put", model, "f", &input]);
        }
        assert_eq!(
            project.keys("_index/"),
            vec!["_index/index.json".to_owned()],
            "{backend:?}"
        );
        let index: serde_json::Value =
            serde_json::from_slice(&project.read_object("_index/index.json")).unwrap();
        let models: Vec<&String> = index["models"].as_object().unwrap().keys().collect();
        assert_eq!(models, ["a/m1", "a/m2", "b/m3"], "{backend:?}");
        assert_eq!(index["seq"], 3);
        project.assert_no_leases();
    }
}

#[test]
fn concurrent_writers_on_distinct_models_all_land() {
    for backend in BACKENDS {
        let project = Project::with_extension(backend, MONOLITH, "");
        let input = project.write_input("in", "payload\n");
        let writers: Vec<_> = (0..8)
            .map(|i| {
                project
                    .silt()
                    .args(["-q", "data", "put", &format!("t/m{i}"), "f", &input])
                    .stderr(Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        for writer in writers {
            let output = writer.wait_with_output().unwrap();
            assert!(
                output.status.success(),
                "{backend:?}: {}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        // Serialized by the namespace lock: no write lost another's.
        for i in 0..8 {
            assert_eq!(project.file_names(&format!("t/m{i}")), ["f"], "{backend:?}");
        }
        project.assert_no_leases();
    }
}

#[test]
fn a_live_namespace_lock_times_out_a_commit_after_twice_the_ttl() {
    // Not shorter: the put's own model lease must outlive the wait, and a
    // 400 ms TTL left a renewal 167 ms to answer on a loaded machine.
    let ttl = support::lease_ttl_ms(1500);
    let project = Project::with_extension(
        Backend::Dir,
        MONOLITH,
        &format!("[locks]\nttl_ms = {ttl}\n"),
    );
    // Someone else's commit holds the namespace lock, renewed just now, far in the future.
    let far = now_ms() + 3_600_000;
    project.overwrite_object(
        "_locks/namespace.json",
        &namespace_lock("push-other", 4242, far, ttl),
    );
    let input = project.write_input("in", "x");
    let started = std::time::Instant::now();
    let (code, _, stderr) = project.run(&["data", "put", "t/m", "f", &input]);
    assert_eq!(code, 75, "{stderr}");
    assert!(stderr.contains("pid 4242"), "{stderr}");
    assert!(
        started.elapsed() >= std::time::Duration::from_millis(2 * ttl),
        "gave up before twice the TTL"
    );
    // Nothing was committed, and the model lock was released.
    assert!(project.file_names("t/m").is_empty());
    let leases = project.json(&["datastore", "lock", "status"])["locks"].clone();
    assert_eq!(
        leases.as_array().unwrap().len(),
        1,
        "only the namespace lock: {leases}"
    );
    assert_eq!(leases[0]["pid"], 4242, "only the namespace lock: {leases}");
}

#[test]
fn a_stale_namespace_lock_is_broken_and_the_commit_lands() {
    let project = Project::with_extension(Backend::Dir, MONOLITH, "");
    // Left by a writer killed mid-commit an hour ago.
    project.overwrite_object(
        "_locks/namespace.json",
        &namespace_lock("push-dead", 4242, now_ms() - 3_600_000, 30_000),
    );
    let input = project.write_input("in", "x");
    project.ok(&["data", "put", "t/m", "f", &input]);
    assert_eq!(project.file_names("t/m"), ["f"]);
    project.assert_no_leases();
}

#[test]
fn a_stale_model_lock_is_taken_over_one_generation_up() {
    let project = Project::with_extension(Backend::Dir, MONOLITH, "");
    // Left by a holder of generation 4, killed an hour ago.
    let scope = serde_json::json!({"kind": "model", "model_type": "t", "model_id": "m"});
    project.overwrite_object(
        "_locks/model/t/m.json",
        &lock_body(scope, "dead", 4, 4242, now_ms() - 3_600_000, 30_000),
    );
    let input = project.write_input("in", "x");
    project.ok(&["data", "put", "t/m", "f", &input]);
    let history = project.json(&["data", "history", "t/m", "f"])["versions"].clone();
    assert_eq!(history[0]["generation"], 5, "{history}");
    project.assert_no_leases();
}

#[test]
fn each_extension_refuses_the_other_kinds_datastore() {
    for (creator, user, kind) in [
        (MONOLITH, "partitioned-datastore", "monolith"),
        ("partitioned-datastore", MONOLITH, "partitioned"),
    ] {
        let project = Project::with_extension(Backend::Dir, creator, "");
        // The host refuses another extension on a datastore that records
        // its own (tests/identity.rs); a datastore set up before silt kept
        // that record has only the extensions' own check, tested here.
        project.delete_object("_silt/datastore.json");
        let text = std::fs::read_to_string(project.path().join("silt.toml")).unwrap();
        std::fs::write(
            project.path().join("silt.toml"),
            text.replace(creator, user),
        )
        .unwrap();
        project.ok(&[
            "-q",
            "extension",
            "add",
            support::component(user).to_str().unwrap(),
        ]);
        let input = project.write_input("in", "x");
        for args in [
            vec!["data", "put", "t/m", "f", input.as_str()],
            vec!["datastore", "verify"],
        ] {
            let (code, _, stderr) = project.run(&args);
            assert_ne!(code, 0, "{user}: {args:?}");
            assert!(
                stderr.contains(&format!("index is of kind `{kind}`"))
                    && stderr.contains("Install the build of the extension that reads it"),
                "{user}: {args:?}: {stderr}"
            );
        }
    }
}

#[test]
fn a_corrupt_index_is_named_and_left_alone() {
    let project = Project::with_extension(Backend::Dir, MONOLITH, "");
    let input = project.write_input("in", "x");
    project.ok(&["data", "put", "t/m", "f", &input]);
    project.overwrite_object("_index/index.json", b"{\"seq\": 1, \"models\": {");
    for args in [
        vec!["data", "list", "t/m"],
        vec!["data", "put", "t/m", "g", input.as_str()],
    ] {
        let (code, _, stderr) = project.run(&args);
        assert_eq!(code, 65, "{args:?}: {stderr}");
        assert!(stderr.contains("_index/index.json"), "{stderr}");
    }
    assert_eq!(
        project.read_object("_index/index.json"),
        b"{\"seq\": 1, \"models\": {"
    );
    project.assert_no_leases();
}
