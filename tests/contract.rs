//! `silt extension test`: the datastore contract suite run against real
//! components. silt's datastore and the TypeScript example pass every check
//! that applies on a directory, in and out of process, and on SeaweedFS in
//! process; the monolith (on a directory) and sharded (on SeaweedFS)
//! baselines pass all but the held commit, as their design predicts;
//! components that break the contract fail with reasons a person can act on.

use crate::support;

use serde_json::Value;
use support::{component, seaweed};

/// `silt --json extension test ARGS`; returns (exit code, report, stderr).
fn suite(home: &std::path::Path, args: &[&str], execution: &str) -> (i32, Value, String) {
    let mut command = support::silt(home);
    command
        .args(["--json", "--execution", execution, "extension", "test"])
        .args(args)
        .env("AWS_ACCESS_KEY_ID", seaweed::ACCESS_KEY)
        .env("AWS_SECRET_ACCESS_KEY", seaweed::SECRET_KEY)
        .env_remove("AWS_PROFILE");
    let (code, stdout, stderr) = support::output(&mut command);
    // With --json a failure prints the report and then an error object.
    let report = stdout
        .split_inclusive("\n}\n")
        .next()
        .and_then(|first| serde_json::from_str(first).ok())
        .unwrap_or(Value::Null);
    (code, report, stderr)
}

fn outcomes(report: &Value) -> Vec<(String, String, String)> {
    report["checks"]
        .as_array()
        .unwrap_or_else(|| panic!("no checks in {report}"))
        .iter()
        .map(|check| {
            (
                check["check"].as_str().unwrap().to_owned(),
                check["outcome"].as_str().unwrap().to_owned(),
                check["detail"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// The check the baselines fail by design: like the peer, they fence a
/// commit by a look at the model's lock object under their namespace lock,
/// and a commit stopped after that look lands after a takeover.
const HELD_COMMIT: &str = "a commit held across a forced takeover never lands";

/// Nothing fails but `expected` (which must fail, saying the commit
/// landed inside the new holder's lease), and at least 9 checks pass.
fn assert_all_pass_but(report: &Value, context: &str, expected: Option<&str>) {
    let checks = outcomes(report);
    for (check, outcome, detail) in &checks {
        if expected.is_some_and(|expected| check.starts_with(expected)) {
            assert_eq!(outcome, "fail", "{context}: {check}: {detail}");
            assert!(
                detail.contains("the commit landed inside the new holder's lease"),
                "{context}: {check}: {detail}"
            );
            continue;
        }
        assert_ne!(outcome, "fail", "{context}: {check}: {detail}");
    }
    let passed = checks
        .iter()
        .filter(|(_, outcome, _)| outcome == "pass")
        .count();
    assert!(
        passed >= 9,
        "{context}: only {passed} checks passed: {report}"
    );
}

/// Runs the suite against `extension` on a directory, in process and out
/// of process; asserts nothing failed and returns both reports.
fn assert_passes_in_and_out_of_process(extension: &str) -> Vec<(&'static str, Value)> {
    assert_passes_in_and_out_of_process_but(extension, None)
}

/// As [`assert_passes_in_and_out_of_process`], but `expected` fails.
fn assert_passes_in_and_out_of_process_but(
    extension: &str,
    expected: Option<&str>,
) -> Vec<(&'static str, Value)> {
    let home = tempfile::tempdir().unwrap();
    let path = component(extension);
    ["in-process", "out-of-process"]
        .into_iter()
        .map(|execution| {
            let (code, report, stderr) = suite(home.path(), &[path.to_str().unwrap()], execution);
            // The checks first: a failure names the check, not just the exit code.
            assert_all_pass_but(&report, &format!("{extension} {execution}"), expected);
            let status = if expected.is_some() { 1 } else { 0 };
            assert_eq!(code, status, "{extension} {execution}: {stderr}");
            (execution, report)
        })
        .collect()
}

/// The detail of `check` in `report`, which must have passed.
fn passed_detail(report: &Value, check: &str) -> String {
    outcomes(report)
        .into_iter()
        .find(|(name, outcome, _)| name.starts_with(check) && outcome == "pass")
        .unwrap_or_else(|| panic!("{check} did not pass: {report}"))
        .2
}

/// The round trip's check: its detail says how a delivery was made.
const ROUND_TRIP: &str = "put, get, list and history round-trip";

#[test]
fn the_partitioned_datastore_passes_on_a_directory_in_and_out_of_process() {
    for (execution, report) in assert_passes_in_and_out_of_process("partitioned-datastore") {
        // The SDK hands a delivery to the host (0.7.3), and sends a
        // sending with `upload-hashed` (0.7.4).
        let round_trip = passed_detail(&report, ROUND_TRIP);
        assert!(
            round_trip.contains("handed to the host (object-store.deliver)"),
            "{execution}: {round_trip}"
        );
        assert!(
            round_trip.contains("a sending sent from the file given"),
            "{execution}: {round_trip}"
        );
    }
}

#[test]
fn a_passing_run_of_the_suite_prints_no_warning() {
    let home = tempfile::tempdir().unwrap();
    let path = component("partitioned-datastore");
    let (code, _, stderr) = suite(home.path(), &[path.to_str().unwrap()], "in-process");
    assert_eq!(code, 0, "{stderr}");
    // (Its checks set edits aside on purpose: the host reports that where
    // it matters, the extension's own line is information.)
    assert!(!stderr.contains("warning"), "{stderr}");
}

#[test]
fn an_extension_of_the_previous_contract_passes_in_and_out_of_process() {
    // tests/components/previous-contract: silt's datastore built for
    // silt:datastore@0.6.0, run through the host's adapted bindings.
    for (execution, report) in assert_passes_in_and_out_of_process("previous-contract") {
        let loaded = passed_detail(&report, "loads and validates");
        assert!(
            loaded.contains("(silt:datastore@0.6.0)"),
            "{execution}: {loaded}"
        );
        let held = passed_detail(&report, HELD_COMMIT);
        assert!(held.contains("lock-lost"), "{execution}: {held}");
    }
}

#[test]
fn an_extension_of_the_patch_before_passes_in_and_out_of_process() {
    // tests/components/contract-0-7-0: silt's datastore built for
    // silt:datastore@0.7.0, run on this version's bindings as it is.
    for (execution, report) in assert_passes_in_and_out_of_process("contract-0-7-0") {
        let loaded = passed_detail(&report, "loads and validates");
        assert!(
            loaded.contains("(silt:datastore@0.7.0)"),
            "{execution}: {loaded}"
        );
        // 0.7.0 has no `deliver`: it writes the cache path it was given;
        // and it is handed no sending (it would read the path itself).
        let round_trip = passed_detail(&report, ROUND_TRIP);
        assert!(
            round_trip.contains("written to the cache path"),
            "{execution}: {round_trip}"
        );
        assert!(
            round_trip.contains("a sending not offered"),
            "{execution}: {round_trip}"
        );
    }
}

/// Runs the suite against `extension` on a fresh prefix of SeaweedFS.
fn assert_passes_on_s3(extension: &str) {
    assert_passes_on_s3_but(extension, None);
}

/// As [`assert_passes_on_s3`], but `expected` fails.
fn assert_passes_on_s3_but(extension: &str, expected: Option<&str>) {
    let home = tempfile::tempdir().unwrap();
    let bucket = "silt-contract-tests";
    let prefix = format!("run-{}-{extension}", std::process::id());
    tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(seaweed::store(bucket, &prefix));
    let path = component(extension);
    let endpoint = seaweed::server().endpoint.clone();
    let args = [
        path.to_str().unwrap(),
        "--store",
        "s3",
        "--bucket",
        bucket,
        "--prefix",
        &prefix,
        "--endpoint",
        &endpoint,
        "--region",
        "us-east-1",
    ];
    let (code, report, stderr) = suite(home.path(), &args, "in-process");
    assert_all_pass_but(&report, &format!("{extension} on s3"), expected);
    assert_eq!(code, if expected.is_some() { 1 } else { 0 }, "{stderr}");
}

#[test]
fn the_partitioned_datastore_passes_on_s3() {
    assert_passes_on_s3("partitioned-datastore");
}

#[test]
fn the_typescript_example_passes_on_a_directory_in_and_out_of_process() {
    // examples/ts-datastore, componentized by componentize-js: the same
    // contract from a JavaScript engine inside the component.
    for (execution, report) in assert_passes_in_and_out_of_process("ts-datastore") {
        let fencing = passed_detail(&report, "a lease taken over cannot commit");
        assert!(fencing.contains("lock-lost"), "{execution}: {fencing}");
        let round_trip = passed_detail(&report, ROUND_TRIP);
        assert!(
            round_trip.contains("handed to the host (object-store.deliver)"),
            "{execution}: {round_trip}"
        );
        assert!(
            round_trip.contains("a sending sent from the file given"),
            "{execution}: {round_trip}"
        );
    }
}

#[test]
fn the_typescript_example_passes_on_s3() {
    assert_passes_on_s3("ts-datastore");
}

#[test]
fn the_monolith_baseline_passes_on_a_directory_in_and_out_of_process_but_a_held_commit() {
    // The baseline still serializes every writer on one namespace lock, and
    // a commit checks the model's lock object for the caller's token under
    // it: a stale, released or forged lease cannot commit. But nothing in
    // its index fences a commit stopped after that look (the peer's design
    // has no fence either).
    for (execution, report) in
        assert_passes_in_and_out_of_process_but("monolith-datastore", Some(HELD_COMMIT))
    {
        let fencing = passed_detail(&report, "a lease taken over cannot commit");
        assert!(fencing.contains("lock-lost"), "{execution}: {fencing}");
        let typed = passed_detail(&report, "mistakes get typed errors");
        assert!(
            typed.contains("forged lease: lock-lost"),
            "{execution}: {typed}"
        );
    }
}

#[test]
fn the_sharded_baseline_passes_on_s3_but_a_held_commit() {
    // The peer's current design: a shard per model, a commit sequence read
    // on every sync, everything written under one global lock, shards with
    // plain PUTs (so a commit stopped after its lease check lands later).
    assert_passes_on_s3_but("sharded-datastore", Some(HELD_COMMIT));
}

#[test]
fn an_extension_without_locks_fails_with_readable_reasons() {
    let home = tempfile::tempdir().unwrap();
    let path = component("hello-extension");
    let (code, report, stderr) = suite(home.path(), &[path.to_str().unwrap()], "in-process");
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("contract's checks failed"), "{stderr}");
    let checks = outcomes(&report);
    let round_trip = checks
        .iter()
        .find(|(check, _, _)| check.starts_with("put, get"))
        .unwrap();
    assert_eq!(round_trip.1, "fail");
    assert!(round_trip.2.contains("locks.acquire"), "{}", round_trip.2);
    assert!(
        round_trip.2.contains("does not support"),
        "{}",
        round_trip.2
    );
    let skipped = checks
        .iter()
        .filter(|(_, outcome, _)| outcome == "skip")
        .count();
    assert!(
        skipped >= 4,
        "undeclared capabilities are skipped: {report}"
    );

    let (code, _, stderr) = suite(home.path(), &["/nonexistent/x.wasm"], "in-process");
    assert_eq!(code, 1);
    assert!(stderr.contains("contract's checks failed"), "{stderr}");
}

#[test]
fn a_deliberately_broken_extension_fails_with_readable_reasons() {
    // tests/components/broken-datastore: leases exclude nobody, commits
    // ignore leases and base versions. Everything else works.
    let home = tempfile::tempdir().unwrap();
    let path = component("broken-datastore");
    let (code, report, stderr) = suite(home.path(), &[path.to_str().unwrap()], "in-process");
    assert_eq!(code, 1, "{stderr}");
    let checks = outcomes(&report);
    let outcome = |name: &str| {
        checks
            .iter()
            .find(|(check, _, _)| check.starts_with(name))
            .unwrap_or_else(|| panic!("no check {name}: {report}"))
            .clone()
    };
    for working in ["setup", "put, get", "pull and push"] {
        assert_eq!(outcome(working).1, "pass", "{working}: {report}");
    }
    let (_, excludes, why) = outcome("a model lease excludes");
    assert_eq!(excludes, "fail");
    assert!(
        why.contains("expected lock-held, but it was granted"),
        "{why}"
    );
    // (The SDK's self-fence still stops the stale holder's commit; the
    // takeover's generation does not grow.)
    let (_, fenced, why) = outcome("a lease taken over cannot commit");
    assert_eq!(fenced, "fail");
    assert!(why.contains("generations only grow"), "{why}");
    let (_, typed, why) = outcome("mistakes get typed errors");
    assert_eq!(typed, "fail");
    assert!(why.contains("forged lease"), "{why}");
    let (_, conflicts, why) = outcome("an edit of an older version is a conflict");
    assert_eq!(conflicts, "fail");
    assert!(
        why.contains("older version as its base: expected conflict, but it succeeded"),
        "{why}"
    );
    // Its locks store nothing: there is no lock to take over.
    let (_, held, why) = outcome(HELD_COMMIT);
    assert_eq!(held, "fail");
    assert!(why.contains("found no lock"), "{why}");
    assert_eq!(report["failed"], 5, "{report}");
}
