//! Contract versions side by side: an extension built for the previous
//! contract (`silt:datastore@0.6.0`: `tests/components/previous-contract`,
//! silt's datastore on the SDK's `contract-0-6`) is inspected as such and
//! is a working datastore in and out of process, beside clones running the
//! current build; and settings, which 0.6.0 has no import for, never reach
//! it (silt says so). One built for the patch before this one (0.7.0:
//! `tests/components/contract-0-7-0`) runs as it is, settings and all, and
//! both stamp what they download with the landed file's own size and time.
//! The contract suite's runs on them are in `contract`.

use super::support::project::{Backend, Project};

/// Both ways an extension runs.
const EXECUTIONS: [&str; 2] = ["in-process", "out-of-process"];

/// `silt data get MODEL NAME ARGS…` with `execution`; its stdout.
fn get(project: &Project, execution: &str, model: &str, name: &str, args: &[&str]) -> String {
    let mut command = vec!["--execution", execution, "data", "get", model, name];
    command.extend_from_slice(args);
    project.ok(&command)
}

fn put(project: &Project, execution: &str, model: &str, name: &str, content: &str) {
    let input = project.write_input(&format!("in-{name}"), content);
    project.ok(&[
        "-q",
        "--execution",
        execution,
        "data",
        "put",
        model,
        name,
        &input,
    ]);
}

#[test]
fn an_extension_of_the_previous_contract_is_a_working_datastore() {
    let old = Project::with_extension(Backend::Dir, "previous-contract", "");
    let inspected = old.json(&["extension", "inspect", "previous-contract"]);
    assert_eq!(inspected["valid"], true, "{inspected}");
    assert_eq!(
        inspected["metadata"]["api"], "silt:datastore@0.6.0",
        "{inspected}"
    );
    let text = old.ok(&["extension", "inspect", "previous-contract"]);
    assert!(
        text.contains("api:          silt:datastore@0.6.0 (the previous contract, still run"),
        "{text}"
    );

    for execution in EXECUTIONS {
        let model = format!("t/{execution}");
        put(&old, execution, &model, "a.txt", "written by 0.6.0");
        let got = get(&old, execution, &model, "a.txt", &["-o", "-"]);
        assert_eq!(got, "written by 0.6.0", "{execution}");
        // A leased run: lease, make present, run, commit, release.
        old.ok(&[
            "-q",
            "--execution",
            execution,
            "run",
            "--model",
            &model,
            "--",
            "sh",
            "-c",
            "cat \"$SILT_MODEL_DIR/a.txt\" > \"$SILT_MODEL_DIR/b.txt\"",
        ]);
        let files = old.file_names(&model);
        assert_eq!(files, ["a.txt", "b.txt"], "{execution}");
    }
    old.assert_no_leases();

    // Another machine pulls what the old build committed.
    let clone = old.another_clone();
    clone.ok(&["-q", "datastore", "sync", "--pull"]);
    let copied = std::fs::read_to_string(clone.model_dir("t/out-of-process").join("b.txt"));
    assert_eq!(copied.unwrap(), "written by 0.6.0");
}

#[test]
fn settings_do_not_reach_an_extension_of_the_previous_contract_and_silt_says_so() {
    let old = Project::with_extension(
        Backend::Dir,
        "previous-contract",
        "[extensions.config.previous-contract]\njournal.full-check-minutes = 0\n",
    );
    let (code, _, stderr) = old.run(&["datastore", "sync", "--pull"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stderr.contains("[extensions.config.previous-contract] is not passed to previous-contract")
            && stderr.contains("silt:datastore@0.6.0"),
        "{stderr}"
    );
    // Its journal keeps the SDK's default: a no-op pull is one request.
    let noop = old.json(&["datastore", "sync", "--pull"]);
    assert_eq!(noop["pulled"]["requests"], 1, "{noop}");
}

#[test]
fn an_extension_of_the_patch_before_runs_as_it_is_with_its_settings() {
    let patch = Project::with_extension(
        Backend::Dir,
        "contract-0-7-0",
        "[extensions.config.contract-0-7-0]\njournal.full-check-minutes = 0\n",
    );
    let inspected = patch.json(&["extension", "inspect", "contract-0-7-0"]);
    assert_eq!(inspected["valid"], true, "{inspected}");
    assert_eq!(
        inspected["metadata"]["api"], "silt:datastore@0.7.0",
        "{inspected}"
    );
    let text = patch.ok(&["extension", "inspect", "contract-0-7-0"]);
    assert!(
        text.contains(
            "api:          silt:datastore@0.7.0 (an earlier patch of this contract, run as it is"
        ),
        "{text}"
    );
    for execution in EXECUTIONS {
        let model = format!("t/{execution}");
        put(&patch, execution, &model, "a.txt", "written by 0.7.0");
        let got = get(&patch, execution, &model, "a.txt", &["-o", "-"]);
        assert_eq!(got, "written by 0.7.0", "{execution}");
        // A version read from the store goes through `get-file`: a 0.7.0
        // extension has no `deliver`, so it writes the cache path the host
        // named a delivery, and the host copies from there.
        let history = patch.json(&["data", "history", &model, "a.txt"]);
        let version = history["versions"][0]["version"].as_str().unwrap();
        let out = patch.path().join(format!("out-{execution}.txt"));
        let out_arg = out.to_str().unwrap();
        get(
            &patch,
            execution,
            &model,
            "a.txt",
            &["--version", version, "-o", out_arg],
        );
        assert_eq!(
            std::fs::read_to_string(&out).unwrap(),
            "written by 0.7.0",
            "{execution}"
        );
        let deliveries = patch.path().join(".silt/local/.silt/deliver");
        assert_eq!(
            std::fs::read_dir(&deliveries).unwrap().count(),
            0,
            "{execution}: the staged copy is removed"
        );
    }
    // Its settings reach it (0.7.0 has `config`): no warning, and a pull
    // lists every partition as `full-check-minutes = 0` asks.
    let (code, _, stderr) = patch.run(&["datastore", "sync", "--pull"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(!stderr.contains("is not passed to"), "{stderr}");
    let pulled = patch.json(&["datastore", "sync", "--pull"]);
    assert!(
        pulled["pulled"]["requests"].as_u64().unwrap() > 1,
        "{pulled}"
    );
}

/// A download's stamp in its model's local state: the landed file's size
/// and time, from `download-landed` (0.7.1: the SDK, and the TypeScript
/// example in a format of its own) or from a `stat` of each file (0.7.0,
/// which has no such function). Either way it is what a `stat` of the
/// untouched file answers, so nothing shows as changed, and an edit of the
/// same size made right after the hydration still does.
#[test]
fn a_download_is_stamped_with_the_size_and_time_it_landed_with() {
    for extension in ["partitioned-datastore", "contract-0-7-0", "ts-datastore"] {
        let writer = Project::with_extension(Backend::Dir, extension, "");
        for name in ["a.txt", "b.txt"] {
            put(&writer, "in-process", "t/m", name, &format!("{name}, v1"));
        }
        for execution in EXECUTIONS {
            let clone = writer.another_clone();
            let hydrate = [
                "-q",
                "--execution",
                execution,
                "--hydration",
                "lazy",
                "datastore",
                "hydrate",
                "--all",
            ];
            clone.ok(&hydrate);
            // The SDK's sidecar, or the TypeScript example's state, whose
            // stamps hold the time as `seconds.nanoseconds`.
            let (state_path, stamps) = if extension == "ts-datastore" {
                (".silt/local/.ts-datastore/models/t/m.json", "files")
            } else {
                (".silt/local/.silt/index/data/t/m.json", "local")
            };
            let state: serde_json::Value =
                serde_json::from_slice(&std::fs::read(clone.path().join(state_path)).unwrap())
                    .unwrap();
            for name in ["a.txt", "b.txt"] {
                let stamp = &state[stamps][name];
                let stat = std::fs::metadata(clone.model_dir("t/m").join(name)).unwrap();
                let since_epoch = stat
                    .modified()
                    .unwrap()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap();
                let what = format!("{extension}, {execution}: {stamp}");
                assert_eq!(stamp["size"].as_u64(), Some(stat.len()), "{what}");
                if extension == "ts-datastore" {
                    let mtime = format!("{}.{}", since_epoch.as_secs(), since_epoch.subsec_nanos());
                    assert_eq!(stamp["mtime"].as_str(), Some(mtime.as_str()), "{what}");
                } else {
                    assert_eq!(
                        stamp["mtime_ns"].as_u64().map(u128::from),
                        Some(since_epoch.as_nanos()),
                        "{what}"
                    );
                }
            }
            let status = clone.json(&["--execution", execution, "datastore", "status"]);
            assert_eq!(
                status["local_changes"],
                serde_json::json!([]),
                "{extension}, {execution}: {status}"
            );
            // Same size, new content: the time tells it apart.
            std::fs::write(clone.model_dir("t/m").join("a.txt"), "a.txt, v2").unwrap();
            let status = clone.json(&["--execution", execution, "datastore", "status"]);
            assert!(
                status["local_changes"].to_string().contains("a.txt"),
                "{extension}, {execution}: {status}"
            );
        }
    }
}

/// A large file given to `put` is sent from where it is only to an
/// extension built for 0.7.4 (the SDK, the TypeScript example), in process
/// or out: one built before it reads the cache path it is handed, so it
/// gets a staged copy there. Either way the commit is the file's bytes.
#[test]
fn a_large_put_is_sent_as_given_only_to_an_extension_of_0_7_4() {
    const SENT_AS_GIVEN: &str = "sent from the file given";
    let size = (64 << 20) + 1;
    let given: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
    for (extension, sent) in [
        ("partitioned-datastore", true),
        ("ts-datastore", true),
        ("contract-0-7-0", false),
    ] {
        let project = Project::with_extension(Backend::Dir, extension, "");
        let input = project.path().join("big.in");
        std::fs::write(&input, &given).unwrap();
        for (round, execution) in EXECUTIONS.into_iter().enumerate() {
            let name = format!("big-{round}.bin");
            let (code, _, stderr) = super::support::output(
                project
                    .silt()
                    .env("RUST_LOG", "silt_runtime=debug")
                    .args(["--execution", execution, "data", "put", "t/m", &name])
                    .arg(&input),
            );
            let what = format!("{extension}, {execution}");
            assert_eq!(code, 0, "{what}: {stderr}");
            assert_eq!(stderr.contains(SENT_AS_GIVEN), sent, "{what}: {stderr}");
            let out = project.path().join("big.out");
            project.ok(&["data", "get", "t/m", &name, "-o", out.to_str().unwrap()]);
            assert!(std::fs::read(&out).unwrap() == given, "{what}: other bytes");
        }
    }
}
