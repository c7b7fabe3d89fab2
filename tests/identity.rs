//! A datastore knows which extension it belongs to (`_silt/datastore.json`,
//! written by setup): another extension, or a build declaring another
//! layout, is refused before it runs, instead of reading the datastore as
//! empty and offering to set a second one up over it. Nothing is written
//! by a refused command.

use crate::support::project::{Backend, Project};
use crate::support::{self, output};

/// Every key of the store with its bytes: what a refused command must not
/// change.
fn snapshot(project: &Project) -> Vec<(String, Vec<u8>)> {
    let mut keys = project.keys("");
    keys.sort();
    keys.into_iter()
        .map(|key| {
            let bytes = project.read_object(&key);
            (key, bytes)
        })
        .collect()
}

/// Points `project`'s silt.toml at `extension` (installed from `component`).
fn switch_to(project: &Project, extension: &str, component: &std::path::Path) {
    let (code, _, stderr) = output(
        project
            .silt()
            .args(["-q", "extension", "add", "--force"])
            .arg(component),
    );
    assert_eq!(code, 0, "{stderr}");
    let config = std::fs::read_to_string(project.path().join("silt.toml")).unwrap();
    let start = config.find("extension = \"").unwrap();
    let end = start + config[start..].find('\n').unwrap();
    let config = format!(
        "{}extension = \"{extension}\"{}",
        &config[..start],
        &config[end..]
    );
    std::fs::write(project.path().join("silt.toml"), config).unwrap();
}

#[test]
fn another_extension_on_a_set_up_datastore_is_refused_and_changes_nothing() {
    for backend in [Backend::Dir, Backend::S3] {
        let project = Project::new(backend, "");
        let input = project.write_input("a.txt", "kept\n");
        project.ok(&["data", "put", "t/m", "a.txt", &input]);
        let record: serde_json::Value =
            serde_json::from_slice(&project.read_object("_silt/datastore.json")).unwrap();
        assert_eq!(record["extension"], "partitioned-datastore");
        assert_eq!(record["layout"], "silt-partitioned/2");
        let before = snapshot(&project);

        switch_to(
            &project,
            "monolith-datastore",
            &support::component("monolith-datastore"),
        );
        for args in [
            &["data", "list", "t/m"][..],
            &["datastore", "setup"],
            &["data", "put", "t/m", "b.txt", &input],
        ] {
            let (code, _, stderr) = project.run(args);
            assert_eq!(code, 78, "{backend:?} {args:?}: {stderr}");
            assert!(
                stderr.contains("set up by `partitioned-datastore`")
                    && stderr.contains("the configured extension is `monolith-datastore`"),
                "{stderr}"
            );
        }
        assert_eq!(
            snapshot(&project),
            before,
            "{backend:?}: a refused command changed the store"
        );

        // Back to the datastore's own extension: everything is there.
        switch_to(
            &project,
            "partitioned-datastore",
            &support::component("partitioned-datastore"),
        );
        assert!(project.ok(&["data", "list", "t/m"]).contains("a.txt"));
    }
}

#[test]
fn a_build_declaring_another_layout_is_refused_and_another_build_is_named_once() {
    let project = Project::new(Backend::Dir, "");
    let original = std::fs::read(support::component("partitioned-datastore")).unwrap();
    let scratch = tempfile::tempdir().unwrap();

    // The same extension, its metadata declaring layout 9 (same length, so
    // the component stays valid).
    let needle = b"silt-partitioned/2";
    let mut relayout = original.clone();
    let mut patched = 0;
    for at in 0..relayout.len() - needle.len() {
        if &relayout[at..at + needle.len()] == needle {
            relayout[at + needle.len() - 1] = b'9';
            patched += 1;
        }
    }
    assert!(patched > 0, "the metadata declares its layout");
    let relayout_path = scratch.path().join("relayout.wasm");
    std::fs::write(&relayout_path, &relayout).unwrap();
    switch_to(&project, "partitioned-datastore", &relayout_path);
    let (code, _, stderr) = project.run(&["data", "list", "t/m"]);
    assert_eq!(code, 78, "{stderr}");
    assert!(
        stderr.contains("declares layout silt-partitioned/9")
            && stderr.contains("holds silt-partitioned/2"),
        "{stderr}"
    );
    // The same extension: install the build that reads the datastore, not
    // "set [datastore] extension" to the extension already set.
    assert!(
        stderr.contains("Install the build of the extension that reads this datastore's layout")
            && !stderr.contains("Set [datastore] extension"),
        "{stderr}"
    );

    // Another build, same version and layout (one more custom section):
    // allowed, named once.
    let mut rebuilt = original.clone();
    let name = b"silt-test-build";
    rebuilt.extend_from_slice(&[0, (name.len() + 2) as u8, name.len() as u8]);
    rebuilt.extend_from_slice(name);
    rebuilt.push(b'2');
    let rebuilt_path = scratch.path().join("rebuilt.wasm");
    std::fs::write(&rebuilt_path, &rebuilt).unwrap();
    switch_to(&project, "partitioned-datastore", &rebuilt_path);
    let (code, _, stderr) = project.run(&["data", "list", "t/m"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stderr.contains("set up by another build of `partitioned-datastore`"),
        "{stderr}"
    );
    let (code, _, stderr) = project.run(&["data", "list", "t/m"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(!stderr.contains("another build"), "named twice: {stderr}");
}

#[test]
fn another_index_kind_is_refused_with_the_same_advice_as_another_layout() {
    let project = Project::new(Backend::Dir, "");
    let input = project.write_input("a.txt", "a\n");
    project.ok(&["-q", "data", "put", "t/m", "a.txt", &input]);
    // The SDK's own record names another index kind, as a build whose
    // `Index::KIND` changed would find it.
    let meta: serde_json::Value =
        serde_json::from_slice(&project.read_object("_meta/datastore.json")).unwrap();
    let kind = meta["index"].as_str().unwrap().to_owned();
    let mut other = meta.clone();
    other["index"] = serde_json::json!("another-kind");
    project.overwrite_object("_meta/datastore.json", other.to_string().as_bytes());

    let (code, _, stderr) = project.run(&["datastore", "verify"]);
    assert_ne!(code, 0, "{stderr}");
    assert!(
        stderr.contains("index is of kind `another-kind`")
            && stderr.contains(&format!("reads kind `{kind}`"))
            && stderr.contains("Install the build of the extension that reads it")
            && !stderr.contains("Set [datastore] extension"),
        "{stderr}"
    );
}
