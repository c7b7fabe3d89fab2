//! `examples/ts-datastore`, the TypeScript datastore, through `silt` as a
//! user drives it: what the contract suite does not reach. Its working copy
//! keeps local work (an edit is never overwritten, a removal never fetched
//! back), stale copies are refreshed, user-chosen names are only names, and
//! what it cannot do gets a typed error.

use crate::support;

use support::project::{Backend, Project};

const EXTENSION: &str = "ts-datastore";

fn read(project: &Project, model: &str, name: &str) -> Option<String> {
    std::fs::read_to_string(project.model_dir(model).join(name)).ok()
}

/// Alice commits `version` of each of t/m's three files.
fn put_version(alice: &Project, version: &str) {
    for name in ["edited", "removed", "stale"] {
        let input = alice.write_input("in", &format!("{version} {name}"));
        alice.ok(&["data", "put", "t/m", &format!("{name}.txt"), &input]);
    }
}

#[test]
fn local_work_survives_hydration_and_stale_copies_are_refreshed() {
    let alice = Project::with_extension(Backend::Dir, EXTENSION, "");
    let bob = alice.another_clone();
    put_version(&alice, "v1");
    bob.ok(&["--hydration", "lazy", "datastore", "setup"]);
    bob.ok(&["--hydration", "lazy", "run", "--model", "t/m", "--", "true"]);
    assert_eq!(read(&bob, "t/m", "stale.txt").as_deref(), Some("v1 stale"));

    // Bob edits one file and removes another; Alice commits new versions of all three.
    std::fs::write(bob.model_dir("t/m").join("edited.txt"), "bob's edit").unwrap();
    std::fs::remove_file(bob.model_dir("t/m").join("removed.txt")).unwrap();
    put_version(&alice, "v2");

    // hydrate-file (`data get`) refreshes the untouched file and leaves
    // Bob's work alone.
    let got = bob.ok(&["--hydration", "lazy", "data", "get", "t/m", "stale.txt"]);
    assert_eq!(got, "v2 stale");
    bob.ok(&["--hydration", "lazy", "data", "get", "t/m", "edited.txt"]);
    assert_eq!(
        read(&bob, "t/m", "edited.txt").as_deref(),
        Some("bob's edit"),
        "an edit was overwritten"
    );
    assert_eq!(
        read(&bob, "t/m", "removed.txt"),
        None,
        "a local removal was fetched back"
    );
    // Made from v1, which Alice replaced: a push refuses both as conflicts.
    let (code, _, stderr) = bob.run(&["datastore", "sync", "--push"]);
    assert_eq!(code, 3, "{stderr}");
    assert_eq!(alice.ok(&["data", "get", "t/m", "edited.txt"]), "v2 edited");
    // `run` starts from the latest committed state: the edit is set aside,
    // the removal undone.
    let (code, _, stderr) =
        bob.run(&["--hydration", "lazy", "run", "--model", "t/m", "--", "true"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stderr.contains("moved 1 uncommitted local edit aside"),
        "{stderr}"
    );
    assert_eq!(
        read(&bob, "t/m", "edited.txt").as_deref(),
        Some("v2 edited")
    );
    assert_eq!(
        read(&bob, "t/m", "removed.txt").as_deref(),
        Some("v2 removed")
    );
    assert_eq!(read(&bob, "t/m", "stale.txt").as_deref(), Some("v2 stale"));
    assert_eq!(alice.ok(&["data", "get", "t/m", "edited.txt"]), "v2 edited");

    // A model nobody wrote: nothing to fetch, and no full download instead
    // (which would bring t/other, a model Bob never used).
    let other = alice.write_input("in", "other");
    alice.ok(&["data", "put", "t/other", "x", &other]);
    let report = bob.ok(&["--hydration", "lazy", "data", "list", "t/never-written"]);
    assert!(report.contains("no files"), "{report}");
    assert_eq!(
        read(&bob, "t/other", "x"),
        None,
        "an unknown model made the clone fetch everything"
    );

    // Alice loses her local state (a cache); her copy of stale.txt is v1.
    // A sync must not push that old copy over v2.
    alice.ok(&["--hydration", "lazy", "run", "--model", "t/m", "--", "true"]);
    std::fs::write(alice.model_dir("t/m").join("stale.txt"), "v1 stale").unwrap();
    std::fs::remove_dir_all(alice.path().join(".silt/local/.ts-datastore")).unwrap();
    alice.ok(&["datastore", "sync"]);
    assert_eq!(
        alice.ok(&["data", "get", "t/m", "stale.txt"]),
        "v2 stale",
        "a stale copy was pushed"
    );
    assert_eq!(
        read(&alice, "t/m", "stale.txt").as_deref(),
        Some("v2 stale"),
        "the stale copy was not refreshed"
    );
}

#[test]
fn names_retention_and_limits() {
    let project = Project::with_extension(Backend::Dir, EXTENSION, "");
    // Names that are properties of every JavaScript object are only names.
    for name in ["constructor", "__proto__", "toString", "run.tmp"] {
        let input = project.write_input("in", name);
        project.ok(&["data", "put", "t/names", name, &input]);
        assert_eq!(project.ok(&["data", "get", "t/names", name]), name);
    }
    let input = project.write_input("in", "temp");
    let (code, _, stderr) = project.run(&["data", "put", "t/names", ".x.silt-tmp.1.2", &input]);
    assert!(code != 0 && code != 70, "{code} {stderr}");
    assert!(stderr.contains("temporary download"), "{stderr}");
    let (code, _, stderr) = project.run(&["data", "history", "t/names", "valueOf"]);
    assert_ne!(code, 0);
    assert!(stderr.contains("never written"), "{stderr}");
    // A sync with all of them present keeps them all (none looks removed).
    project.ok(&["run", "--model", "t/names", "--", "true"]);
    project.ok(&["datastore", "sync"]);
    let mut names = project.file_names("t/names");
    names.sort();
    assert_eq!(names, ["__proto__", "constructor", "run.tmp", "toString"]);

    // Retention 2: older versions leave the index and their content goes.
    project.ok(&["datastore", "setup", "--retain-versions", "2"]);
    for round in 0..4 {
        let input = project.write_input("in", &format!("round {round}"));
        project.ok(&["data", "put", "t/kept", "f", &input]);
    }
    let history = project.json(&["data", "history", "t/kept", "f"])["versions"].clone();
    assert_eq!(history.as_array().unwrap().len(), 2, "{history}");
    let blobs = std::fs::read_dir(project.path().join(".silt/store/blobs/t/kept"))
        .unwrap()
        .count();
    assert_eq!(blobs, 2, "expired versions' content is deleted");

    // Past what it can hash within a call: a typed error naming the limit.
    let big = project.path().join("big.bin");
    std::fs::write(&big, vec![0u8; 17 << 20]).unwrap();
    let (code, _, stderr) =
        project.run(&["data", "put", "t/big", "big.bin", big.to_str().unwrap()]);
    assert_ne!(code, 0);
    assert_ne!(code, 70, "a limit is not a crash: {stderr}");
    assert!(stderr.contains("MAX_FILE_BYTES"), "{stderr}");
    project.assert_no_leases();
}
