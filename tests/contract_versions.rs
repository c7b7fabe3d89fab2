//! Two contract versions side by side: an extension built for the
//! previous contract (`silt:datastore@0.6.0`: `tests/components/previous-contract`,
//! silt's datastore on the SDK's `contract-0-6`) is inspected as such and
//! is a working datastore in and out of process, beside clones running the
//! current build; and settings, which 0.6.0 has no import for, never reach
//! it (silt says so). The contract suite's run on it is in `contract`.

use super::support::project::{Backend, Project};

/// Both ways an extension runs.
const EXECUTIONS: [&str; 2] = ["in-process", "out-of-process"];

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
        let got = old.ok(&[
            "--execution",
            execution,
            "data",
            "get",
            &model,
            "a.txt",
            "-o",
            "-",
        ]);
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
