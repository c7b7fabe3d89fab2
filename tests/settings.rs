//! `[extensions.config.<name>]`: the project's settings reach the
//! extension through its `config` import, in process and in a worker; the
//! SDK's `journal.full-check-minutes` changes what a pull does; a value out
//! of range is the extension's typed error; a credential, an array or a
//! malformed key is refused when `silt.toml` is read, naming it.

use super::support::project::{Backend, Project};

/// `silt datastore sync --pull`'s requests, as `execution` runs it.
fn pull_requests(project: &Project, execution: &str) -> u64 {
    let report = project.json(&["--execution", execution, "datastore", "sync", "--pull"]);
    report["pulled"]["requests"].as_u64().unwrap()
}

#[test]
fn a_setting_reaches_the_extension_in_and_out_of_process() {
    // Every pull a full check: the setting is read by the guest itself.
    let every_pull = Project::new(
        Backend::Dir,
        "[extensions.config.partitioned-datastore]\njournal.full-check-minutes = 0\n",
    );
    // The default: the first pull is a full check, then the journal alone.
    let default = Project::new(Backend::Dir, "");
    for execution in ["in-process", "out-of-process"] {
        pull_requests(&default, execution);
        assert_eq!(pull_requests(&default, execution), 1, "{execution}");
        pull_requests(&every_pull, execution);
        let full = pull_requests(&every_pull, execution);
        assert!(
            full >= 3,
            "{execution}: a full check lists the index: {full}"
        );
    }
}

#[test]
fn a_setting_out_of_range_is_the_extensions_typed_error() {
    let project = Project::new(Backend::Dir, "");
    let config = project.path().join("silt.toml");
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str("[extensions.config.partitioned-datastore.journal]\nfull-check-minutes = 99\n");
    std::fs::write(&config, text).unwrap();
    let (code, _, stderr) = project.run(&["datastore", "sync", "--pull"]);
    assert_ne!(code, 0);
    assert!(
        stderr.contains("journal.full-check-minutes = \"99\"") && stderr.contains("from 0 to 50"),
        "{stderr}"
    );
}

#[test]
fn credentials_arrays_and_bad_keys_are_refused_when_silt_toml_is_read() {
    let project = Project::new(Backend::Dir, "");
    let config = project.path().join("silt.toml");
    let original = std::fs::read_to_string(&config).unwrap();
    for (table, expected) in [
        (
            "[extensions.config.partitioned-datastore]\naws_secret_access_key = \"x\"\n",
            "names a credential",
        ),
        (
            "[extensions.config.partitioned-datastore]\nregions = [\"a\", \"b\"]\n",
            "\"regions\" is an array",
        ),
        (
            "[extensions.config.partitioned-datastore]\n\"Bad Key\" = 1\n",
            "is not a setting name",
        ),
        (
            "[extensions.config.\"Not_An_Extension\"]\nx = 1\n",
            "is not an extension name",
        ),
    ] {
        std::fs::write(&config, format!("{original}{table}")).unwrap();
        let (code, _, stderr) = project.run(&["datastore", "status"]);
        assert_eq!(code, 78, "{table}: {stderr}");
        assert!(stderr.contains(expected), "{table}: {stderr}");
        assert!(stderr.contains("silt.toml"), "{table}: {stderr}");
    }
}
