//! The datastore through the `silt` command, on both backends: files in and
//! out, two clones of one datastore, `silt run`, and bad input that must be
//! named and must not spread.

use crate::support;

use support::project::{BACKENDS, Backend, EXTENSIONS, Project, combinations};

#[test]
fn put_get_list_history_rm_on_both_backends() {
    for (backend, extension) in combinations() {
        let project = Project::with_extension(backend, extension, "");
        let v1 = project.write_input("v1", "first\n");
        let v2 = project.write_input("v2", "second\n");
        let first = project.json(&["data", "put", "vision/detector/m-1", "weights.bin", &v1]);
        project.ok(&["data", "put", "vision/detector/m-1", "weights.bin", &v2]);
        // A name a working-copy scan would skip (the host's download temps)
        // could be put but never pushed: refused, saying why.
        let (code, _, stderr) = project.run(&[
            "data",
            "put",
            "vision/detector/m-1",
            ".weights.bin.silt-tmp.7.1",
            &v1,
        ]);
        assert!(
            code != 0 && code != 70,
            "{backend:?} {extension}: {code} {stderr}"
        );
        assert!(stderr.contains("temporary download"), "{stderr}");
        let mut stdin_put = project.silt();
        stdin_put.args([
            "data",
            "put",
            "vision/detector/m-1",
            "eval/report.json",
            "-",
        ]);
        stdin_put.stdin(std::process::Stdio::piped());
        stdin_put.stdout(std::process::Stdio::piped());
        let mut child = stdin_put.spawn().unwrap();
        use std::io::Write as _;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(b"{\"f1\": 0.9}\n")
            .unwrap();
        assert!(
            child.wait().unwrap().success(),
            "{backend:?}: put from stdin"
        );

        assert_eq!(
            project.ok(&["data", "get", "vision/detector/m-1", "weights.bin"]),
            "second\n"
        );
        let old_version = first["version"].as_str().unwrap();
        assert_eq!(
            project.ok(&[
                "data",
                "get",
                "vision/detector/m-1",
                "weights.bin",
                "--version",
                old_version
            ]),
            "first\n"
        );
        let out = project.path().join("out.bin");
        project.ok(&[
            "data",
            "get",
            "vision/detector/m-1",
            "weights.bin",
            "-o",
            out.to_str().unwrap(),
        ]);
        assert_eq!(std::fs::read_to_string(&out).unwrap(), "second\n");

        let names = project.file_names("vision/detector/m-1");
        assert_eq!(names, ["eval/report.json", "weights.bin"], "{backend:?}");
        let history =
            project.json(&["data", "history", "vision/detector/m-1", "weights.bin"])["versions"]
                .clone();
        assert_eq!(
            history.as_array().unwrap().len(),
            2,
            "{backend:?}: {history}"
        );

        project.ok(&["data", "rm", "vision/detector/m-1", "weights.bin"]);
        let (code, _, stderr) = project.run(&["data", "get", "vision/detector/m-1", "weights.bin"]);
        assert_eq!(code, 1, "{backend:?}: {stderr}");
        assert!(stderr.contains("was removed"), "{backend:?}: {stderr}");
        let history =
            project.json(&["data", "history", "vision/detector/m-1", "weights.bin"])["versions"]
                .clone();
        assert_eq!(history.as_array().unwrap().last().unwrap()["deleted"], true);
        // The old versions are still readable: removal is a tombstone.
        assert_eq!(
            project.ok(&[
                "data",
                "get",
                "vision/detector/m-1",
                "weights.bin",
                "--version",
                old_version
            ]),
            "first\n"
        );
        project.assert_no_leases();
    }
}

/// A put's bytes are hashed by the host as they are staged, and not again
/// as they are sent: the extension's upload of the staged file answers the
/// staging hash (a file or stdin alike).
#[test]
fn a_put_is_not_hashed_again_as_it_is_sent() {
    const HASHED_ONCE: &str = "the staged file, hashed as the host staged it";
    for backend in [Backend::Dir, Backend::S3] {
        let project = Project::new(backend, "");
        let input = project.write_input("w", "from a file\n");
        let (code, _, stderr) = support::output(
            project
                .silt()
                .env("RUST_LOG", "silt_runtime=debug")
                .args(["data", "put", "t/m", "a.bin", &input]),
        );
        assert_eq!(code, 0, "{backend:?}: {stderr}");
        assert!(stderr.contains(HASHED_ONCE), "{backend:?}: {stderr}");

        let mut from_stdin = project.silt();
        from_stdin
            .env("RUST_LOG", "silt_runtime=debug")
            .args(["data", "put", "t/m", "b.bin", "-"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let mut child = from_stdin.spawn().unwrap();
        use std::io::Write as _;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(b"from stdin\n")
            .unwrap();
        let output = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "{backend:?}: {stderr}");
        assert!(stderr.contains(HASHED_ONCE), "{backend:?}: {stderr}");

        assert_eq!(
            project.ok(&["data", "get", "t/m", "a.bin"]),
            "from a file\n"
        );
        assert_eq!(project.ok(&["data", "get", "t/m", "b.bin"]), "from stdin\n");
    }
}

/// A file given to `put` from 64 MiB on is sent from where it is to an
/// extension of 0.7.4: no copy of it in the local copy (nor in the working
/// copy, which a pull fills if it needs it), hashed as the store sends it
/// (a directory store's copy; S3's multipart parts), and what the index
/// records is what another clone fetches. The same bytes put again are no
/// new version.
#[test]
fn a_large_put_is_sent_from_the_file_given() {
    const SENT_AS_GIVEN: &str = "sent from the file given, hashed as it was sent";
    for backend in [Backend::Dir, Backend::S3] {
        let project = Project::new(backend, "");
        let input = project.path().join("big.in");
        // 64 MiB and a bit, not one byte repeated: a part read at the wrong
        // offset would show.
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        let given: Vec<u8> = (0..(64 << 20) + 4099)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state as u8
            })
            .collect();
        std::fs::write(&input, &given).unwrap();
        let put = |name: &str| {
            support::output(project.silt().env("RUST_LOG", "silt_runtime=debug").args([
                "--json",
                "data",
                "put",
                "t/m",
                name,
                input.to_str().unwrap(),
            ]))
        };
        let (code, stdout, stderr) = put("big.bin");
        assert_eq!(code, 0, "{backend:?}: {stderr}");
        assert!(stderr.contains(SENT_AS_GIVEN), "{backend:?}: {stderr}");
        assert!(!stderr.contains("the staged file"), "{backend:?}: {stderr}");
        let committed: serde_json::Value = serde_json::from_str(&stdout).unwrap();
        assert_eq!(committed["size"], given.len() as u64, "{stdout}");
        assert!(
            !project.model_dir("t/m").join("big.bin").exists(),
            "{backend:?}: the working copy took a copy"
        );

        let clone = project.another_clone();
        let out = clone.path().join("big.out");
        clone.ok(&["data", "get", "t/m", "big.bin", "-o", out.to_str().unwrap()]);
        assert!(
            std::fs::read(&out).unwrap() == given,
            "{backend:?}: another clone fetched other bytes"
        );

        let (code, again, stderr) = put("big.bin");
        assert_eq!(code, 0, "{backend:?}: {stderr}");
        let again: serde_json::Value = serde_json::from_str(&again).unwrap();
        assert_eq!(again["version"], committed["version"], "{backend:?}");
    }
}

/// A file a run wrote is hashed by the store from the bytes it sends (a
/// directory store's copy; an S3 multipart upload's parts, read once and
/// in order), not in a pass of its own; and what the index records is
/// what another clone fetches and checks.
#[test]
fn a_file_a_run_wrote_is_hashed_as_the_store_sends_it() {
    const HASHED_AS_SENT: &str = "hashed by the store as it was sent";
    // S3 in 5 MiB parts (added to its `[datastore.s3]`), and a file of
    // three parts and a bit.
    let in_parts = "multipart_threshold_mib = 5\npart_size_mib = 5\n";
    for (backend, extra) in [(Backend::Dir, ""), (Backend::S3, in_parts)] {
        let project = Project::new(backend, extra);
        let script = "head -c 16000000 /dev/urandom > \"$SILT_MODEL_DIR/big.bin\"";
        let (code, _, stderr) = support::output(
            project
                .silt()
                .env("RUST_LOG", "silt_runtime=debug")
                .args(["run", "--model", "t/m", "--", "sh", "-c", script]),
        );
        assert_eq!(code, 0, "{backend:?}: {stderr}");
        assert!(stderr.contains(HASHED_AS_SENT), "{backend:?}: {stderr}");
        let written = std::fs::read(project.model_dir("t/m").join("big.bin")).unwrap();
        let clone = project.another_clone();
        let out = clone.path().join("big.out");
        clone.ok(&["data", "get", "t/m", "big.bin", "-o", out.to_str().unwrap()]);
        assert!(
            std::fs::read(&out).unwrap() == written,
            "{backend:?}: another clone fetched other bytes"
        );
    }
}

/// A push sends a file whose stamp is stale without hashing it first; one
/// touched or rewritten with the same bytes turns out, by its upload's
/// hash, to hold its committed version: nothing is committed, and its
/// upload is deleted. Other bytes of the same size are an edit.
#[test]
fn a_touched_file_is_not_committed_again() {
    let project = Project::new(Backend::Dir, "");
    let objects = || {
        let dir = project.path().join(".silt/store/data/t/m/f.bin");
        std::fs::read_dir(dir).map_or(0, |entries| entries.count())
    };
    // Each commit is announced in the journal first.
    let journal = project.path().join(".silt/store/_journal");
    let announced = || std::fs::read_dir(&journal).unwrap().count();
    let versions = || {
        project.json(&["data", "history", "t/m", "f.bin"])["versions"]
            .as_array()
            .unwrap()
            .len()
    };
    let run = |script: &str| {
        project.ok(&["run", "--model", "t/m", "--", "sh", "-c", script]);
    };
    run("printf 'first' > \"$SILT_MODEL_DIR/f.bin\"");
    assert_eq!((versions(), objects()), (1, 1));
    // Stamped as sent: a run that changes nothing uploads nothing.
    let (code, _, stderr) = support::output(
        project
            .silt()
            .args(["-vv", "run", "--model", "t/m", "--", "true"]),
    );
    assert_eq!(code, 0, "{stderr}");
    assert!(!stderr.contains("op=put key_prefix=data"), "{stderr}");
    let commits = announced();
    // Touched: sent for the host to hash (not hashed in the guest), then
    // its upload deleted; the stamp then holds, and nothing is sent again.
    let (code, _, stderr) = support::output(project.silt().args([
        "-vv",
        "run",
        "--model",
        "t/m",
        "--",
        "sh",
        "-c",
        "sleep 0.02; touch \"$SILT_MODEL_DIR/f.bin\"",
    ]));
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stderr.contains("op=put key_prefix=data") && stderr.contains("op=delete key_prefix=data"),
        "{stderr}"
    );
    let (code, _, stderr) =
        support::output(project.silt().args(["-vv", "datastore", "sync", "--push"]));
    assert_eq!(code, 0, "{stderr}");
    assert!(!stderr.contains("op=put key_prefix=data"), "{stderr}");
    // Rewritten with the same bytes (a later time).
    run("sleep 0.02; printf 'first' > \"$SILT_MODEL_DIR/f.bin\"");
    assert_eq!(
        (versions(), objects()),
        (1, 1),
        "no version, no object left"
    );
    assert_eq!(announced(), commits, "no commit");
    // The same size, other bytes: an edit.
    run("sleep 0.02; printf 'other' > \"$SILT_MODEL_DIR/f.bin\"");
    assert_eq!((versions(), objects()), (2, 2));
    assert_eq!(project.ok(&["data", "get", "t/m", "f.bin"]), "other");
}

/// A file whose stamp's base the last pull moved past (a local edit kept
/// over another clone's commit) is hashed by the push before it sends
/// anything: an edit is refused as a conflict with nothing uploaded; put
/// back to the bytes it was stamped with, it is no edit and no conflict.
#[test]
fn a_file_over_a_moved_base_is_judged_before_it_is_sent() {
    let a = Project::new(Backend::Dir, "");
    a.ok(&[
        "run",
        "--model",
        "t/m",
        "--",
        "sh",
        "-c",
        "printf one > \"$SILT_MODEL_DIR/f\"",
    ]);
    let b = a.another_clone();
    b.ok(&[
        "run",
        "--model",
        "t/m",
        "--",
        "sh",
        "-c",
        "printf two-longer > \"$SILT_MODEL_DIR/f\"",
    ]);
    let file = a.model_dir("t/m").join("f");
    std::fs::write(&file, "edited").unwrap();
    // Kept over b's commit: the slice now says two-longer, the stamp one.
    a.ok(&["datastore", "sync", "--pull"]);
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "edited");
    let objects = || {
        std::fs::read_dir(a.path().join(".silt/store/data/t/m/f"))
            .unwrap()
            .count()
    };
    assert_eq!(objects(), 2);
    let (code, _, stderr) = support::output(a.silt().args(["datastore", "sync", "--push"]));
    assert_ne!(code, 0, "a conflict: {stderr}");
    assert!(stderr.contains("conflict"), "{stderr}");
    assert_eq!(objects(), 2, "refused before anything was sent");
    std::fs::write(&file, "one").unwrap();
    let (code, _, stderr) = support::output(a.silt().args(["datastore", "sync", "--push"]));
    assert_eq!(code, 0, "{stderr}");
    let history = a.json(&["data", "history", "t/m", "f"])["versions"].clone();
    assert_eq!(
        history.as_array().unwrap().len(),
        2,
        "nothing committed: {history}"
    );
}

/// `data get -o` creates its output as `cp` would, 0666 less the user's
/// umask: delivered from the store (`--version`) and copied from the
/// working copy (the latest, present after the put) alike.
#[test]
fn an_output_is_created_as_the_umask_says() {
    use std::os::unix::fs::PermissionsExt as _;
    let project = Project::new(Backend::Dir, "");
    let input = project.write_input("w", "bytes\n");
    let put = project.json(&["data", "put", "t/m", "f", &input]);
    let version = put["version"].as_str().unwrap().to_owned();
    for umask in [0o022, 0o077, 0o002] {
        for from_store in [true, false] {
            let out = project.path().join(format!("out-{umask:o}-{from_store}"));
            let mut args = vec!["data", "get", "t/m", "f", "-o", out.to_str().unwrap()];
            if from_store {
                args.extend(["--version", &version]);
            }
            let mut silt = project.silt();
            silt.env("RUST_LOG", "silt=debug").args(&args);
            let mut get = support::under_umask(&silt, umask);
            let (code, _, stderr) = support::output(&mut get);
            assert_eq!(code, 0, "umask {umask:03o}: {stderr}");
            let path_taken = if from_store {
                "delivered by the host beside the output"
            } else {
                "from the working copy"
            };
            assert!(stderr.contains(path_taken), "{path_taken}: {stderr}");
            assert_eq!(std::fs::read_to_string(&out).unwrap(), "bytes\n");
            let mode = std::fs::metadata(&out).unwrap().permissions().mode() & 0o777;
            assert_eq!(
                mode,
                0o666 & !umask,
                "umask {umask:03o}, from the store: {from_store}"
            );
        }
    }
}

#[test]
fn retention_keeps_the_last_versions_and_deletes_the_rest() {
    for extension in EXTENSIONS {
        let project = Project::with_extension(Backend::Dir, extension, "");
        project.ok(&["-q", "datastore", "setup", "--retain-versions", "3"]);
        for i in 0..5 {
            let input = project.write_input("in", &format!("v{i}\n"));
            project.ok(&["data", "put", "t/m", "f", &input]);
        }
        let history = project.json(&["data", "history", "t/m", "f"])["versions"].clone();
        assert_eq!(history.as_array().unwrap().len(), 3, "{history}");
        assert_eq!(
            project.keys("data/t/m/f/").len(),
            3,
            "dropped versions' objects must go"
        );
        assert_eq!(project.ok(&["data", "get", "t/m", "f"]), "v4\n");
    }
}

#[test]
fn two_clones_see_each_others_commits() {
    for (backend, extension) in combinations() {
        let alice = Project::with_extension(backend, extension, "");
        let bob = alice.another_clone();
        let input = alice.write_input("in", "from alice\n");
        alice.ok(&["data", "put", "shared/m", "notes.txt", &input]);

        // Bob's status sees a change in the store; a lazy pull fetches index only.
        let status = bob.json(&["datastore", "status"]);
        assert_eq!(
            status["remote_changes"],
            serde_json::json!(["shared/m"]),
            "{backend:?}"
        );
        bob.ok(&["--hydration", "lazy", "datastore", "sync", "--pull"]);
        assert!(
            !bob.model_dir("shared/m").join("notes.txt").exists(),
            "a lazy pull fetches no data"
        );
        let status = bob.json(&["datastore", "status"]);
        assert_eq!(
            status["remote_changes"],
            serde_json::json!([]),
            "{backend:?}"
        );
        assert_eq!(status["objects_total"], 1);

        // Bob works on the model: its data is made present, his edit committed.
        bob.ok(&[
            "run", "--model", "shared/m", "--", "sh", "-c",
            "cat \"$SILT_MODEL_DIR/notes.txt\" > \"$SILT_MODEL_DIR/copy.txt\"; echo 'and bob' >> \"$SILT_MODEL_DIR/notes.txt\"",
        ]);
        assert_eq!(
            alice.ok(&["data", "get", "shared/m", "copy.txt"]),
            "from alice\n"
        );

        // Alice has notes.txt present locally after a run; a pull refreshes it.
        alice.ok(&["run", "--model", "shared/m", "--", "true"]);
        let local = alice.model_dir("shared/m").join("notes.txt");
        assert_eq!(
            std::fs::read_to_string(&local).unwrap(),
            "from alice\nand bob\n"
        );

        // A local edit, pushed by sync.
        std::fs::write(&local, "edited by alice\n").unwrap();
        let status = alice.json(&["datastore", "status"]);
        assert_eq!(
            status["local_changes"].as_array().unwrap().len(),
            1,
            "{status}"
        );
        alice.ok(&["datastore", "sync", "--push"]);
        assert_eq!(
            bob.ok(&["data", "get", "shared/m", "notes.txt"]),
            "edited by alice\n"
        );
        bob.ok(&["datastore", "sync"]);
        assert_eq!(
            std::fs::read_to_string(bob.model_dir("shared/m").join("notes.txt")).unwrap(),
            "edited by alice\n",
            "{backend:?}: a pull refreshes files present locally"
        );
    }
}

#[test]
fn run_passes_the_exit_code_and_commits_only_on_success() {
    for extension in EXTENSIONS {
        let project = Project::with_extension(Backend::Dir, extension, "");
        let (code, _, stderr) = project.run(&[
            "run",
            "--model",
            "t/m",
            "--",
            "sh",
            "-c",
            "echo partial > \"$SILT_MODEL_DIR/out\"; exit 3",
        ]);
        assert_eq!(code, 3, "{stderr}");
        assert!(stderr.contains("nothing was committed"), "{stderr}");
        assert_eq!(
            project.json(&["data", "list", "t/m"])["files"].clone(),
            serde_json::json!([])
        );
        // The output is kept locally, and a push commits it.
        project.ok(&["datastore", "sync", "--push"]);
        assert_eq!(project.ok(&["data", "get", "t/m", "out"]), "partial\n");

        let (code, _, stderr) = project.run(&["run", "--model", "t/m", "--", "/no/such/command"]);
        assert_eq!(code, 127, "{stderr}");
        assert!(stderr.contains("cannot run `/no/such/command`"), "{stderr}");
        project.assert_no_leases();
    }
}

#[test]
fn a_corrupt_partition_is_named_and_nothing_else_is_touched() {
    for backend in BACKENDS {
        let project = Project::new(backend, "");
        let input = project.write_input("in", "data\n");
        project.ok(&["data", "put", "t/broken", "f", &input]);
        project.ok(&["data", "put", "t/healthy", "f", &input]);
        let key = "_index/data/t/broken.json";
        project.overwrite_object(key, b"{\"layout\": 1, \"files\": [tru");
        let objects_before = project.keys("");

        for args in [
            &["data", "list", "t/broken"][..],
            &["data", "put", "t/broken", "g", &input],
            &["run", "--model", "t/broken", "--", "true"],
        ] {
            let (code, _, stderr) = project.run(args);
            assert_eq!(code, 65, "{backend:?} {args:?}: {stderr}");
            assert!(
                stderr.contains(key),
                "{backend:?} {args:?}: must name {key}: {stderr}"
            );
        }
        assert_eq!(project.read_object(key), b"{\"layout\": 1, \"files\": [tru");
        assert_eq!(
            project.keys(""),
            objects_before,
            "{backend:?}: something was written"
        );
        // Other models are unaffected.
        assert_eq!(project.ok(&["data", "get", "t/healthy", "f"]), "data\n");
        project.ok(&["data", "put", "t/healthy", "g", &input]);
        let (code, stdout, _) = project.run(&["datastore", "verify"]);
        assert_eq!(code, 1);
        assert!(
            stdout.contains(key),
            "verify lists the corrupt partition: {stdout}"
        );
        // A full pull and `hydrate --all` of other clones: every other model
        // syncs, the corrupt one is named, and the command fails at the end.
        for args in [
            &["datastore", "sync", "--pull"][..],
            &["--hydration", "lazy", "datastore", "hydrate", "--all"],
        ] {
            let clone = project.another_clone();
            let (code, _, stderr) = clone.run(args);
            assert_eq!(code, 65, "{backend:?} {args:?}: {stderr}");
            assert!(stderr.contains(key), "{backend:?} {args:?}: {stderr}");
            assert!(
                stderr.contains("t/broken"),
                "{backend:?} {args:?}: {stderr}"
            );
            assert_eq!(
                std::fs::read_to_string(clone.model_dir("t/healthy").join("g")).ok(),
                Some("data\n".to_owned()),
                "{backend:?} {args:?}: the healthy model was not synced: {stderr}"
            );
        }
    }
}

#[test]
fn malformed_configuration_names_line_and_column() {
    let project = Project::new(Backend::Dir, "");
    std::fs::write(
        project.path().join("silt.toml"),
        "[datastore]\nbackend = \"dir\"\n[locks]\nttl_ms = \"soon\"\n",
    )
    .unwrap();
    let (code, _, stderr) = project.run(&["data", "list", "t/m"]);
    assert_eq!(code, 78, "{stderr}");
    assert!(stderr.contains("line 4, column 10"), "{stderr}");
}

/// An empty directory where `silt extension add` installed the partitioned
/// datastore (what `silt init` sets up with).
fn home_with_the_datastore_extension() -> tempfile::TempDir {
    let home = tempfile::tempdir().unwrap();
    let (code, _, stderr) = support::output(
        support::silt(home.path())
            .args(["-q", "extension", "add"])
            .arg(support::component("partitioned-datastore")),
    );
    assert_eq!(code, 0, "{stderr}");
    home
}

#[test]
fn init_sets_up_an_embedded_datastore() {
    let home = home_with_the_datastore_extension();
    let (code, stdout, stderr) = support::output(support::silt(home.path()).arg("init"));
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("datastore ready"), "{stdout}");
    let (code, _, stderr) = support::output(support::silt(home.path()).arg("init"));
    assert_eq!(
        code, 1,
        "a second init must not clobber silt.toml: {stderr}"
    );
    let input = home.path().join("in");
    std::fs::write(&input, "x").unwrap();
    let (code, _, stderr) = support::output(
        support::silt(home.path())
            .args(["data", "put", "a/b", "x"])
            .arg(&input),
    );
    assert_eq!(code, 0, "{stderr}");
    assert!(home.path().join(".silt/store/_index").is_dir());
}

#[test]
fn a_lost_sidecar_never_pushes_a_stale_copy_over_newer_work() {
    for extension in EXTENSIONS {
        let alice = Project::with_extension(Backend::Dir, extension, "");
        let bob = alice.another_clone();
        let v1 = alice.write_input("v1", "v1\n");
        alice.ok(&["data", "put", "t/m", "f", &v1]);
        alice.ok(&["run", "--model", "t/m", "--", "true"]);
        let v2 = bob.write_input("v2", "v2\n");
        bob.ok(&["data", "put", "t/m", "f", &v2]);
        // Alice's sidecars are gone (a cache, after all); her copy is still v1.
        std::fs::remove_dir_all(alice.path().join(".silt/local/.silt/index")).unwrap();
        alice.ok(&["datastore", "sync"]);
        assert_eq!(
            alice.ok(&["data", "get", "t/m", "f"]),
            "v2\n",
            "a stale copy was pushed"
        );
        let history = alice.json(&["data", "history", "t/m", "f"])["versions"].clone();
        assert_eq!(history.as_array().unwrap().len(), 2, "{history}");
        alice.ok(&["run", "--model", "t/m", "--", "true"]);
        assert_eq!(
            std::fs::read_to_string(alice.model_dir("t/m").join("f")).unwrap(),
            "v2\n",
            "the stale copy is refreshed"
        );
    }
}

#[test]
fn gc_expires_old_versions_of_only_the_models_that_have_them() {
    for extension in EXTENSIONS {
        let project = Project::with_extension(Backend::Dir, extension, "");
        for i in 0..3 {
            let input = project.write_input("in", &format!("v{i}\n"));
            project.ok(&["data", "put", "t/a", "f", &input]);
        }
        let input = project.write_input("in", "once\n");
        project.ok(&["data", "put", "t/a", "g", &input]);
        project.ok(&["data", "put", "t/b", "f", &input]);

        // Without --keep, no version expires (commits keep the retention).
        let untouched = project.json(&["datastore", "gc"]);
        assert_eq!(untouched["entries_expired"], 0, "{extension}: {untouched}");
        assert_eq!(project.keys("data/t/a/f/").len(), 3, "{untouched}");
        let said = project.ok(&["datastore", "gc"]);
        assert!(said.starts_with("no version expired"), "{said}");

        let plan = project.json(&["datastore", "gc", "--keep", "1", "--dry-run"]);
        assert_eq!(
            plan["models"],
            serde_json::json!(["t/a"]),
            "{extension}: {plan}"
        );
        assert_eq!(plan["entries_expired"], 2, "{plan}");
        assert_eq!(
            project.keys("data/t/a/f/").len(),
            3,
            "a dry run deletes nothing"
        );

        let done = project.json(&["datastore", "gc", "--keep", "1"]);
        assert_eq!(done["entries_expired"], 2, "{extension}: {done}");
        assert_eq!(done["objects_deleted"], 2, "{done}");
        assert_eq!(done["bytes_freed"], 6, "{done}");
        assert_eq!(project.keys("data/t/a/f/").len(), 1);
        assert_eq!(project.ok(&["data", "get", "t/a", "f"]), "v2\n");
        let history = project.json(&["data", "history", "t/a", "f"])["versions"].clone();
        assert_eq!(history.as_array().unwrap().len(), 1, "{history}");
        assert_eq!(project.file_names("t/b"), ["f"]);
        project.assert_no_leases();

        let again = project.json(&["datastore", "gc", "--keep", "1"]);
        assert_eq!(again["entries_expired"], 0, "{again}");
        let (code, _, stderr) = project.run(&["datastore", "gc", "--keep", "0"]);
        assert_ne!(code, 0);
        assert!(stderr.contains("at least 1"), "{stderr}");
    }
}

#[test]
fn a_pull_fetches_the_latest_version_when_a_gc_expired_the_one_it_read() {
    use std::time::Duration;
    use support::pausing_proxy::{Hold, Trap, route_through};

    let writer = Project::new(Backend::S3, "");
    let put_as = |name: &str, content: &str| {
        let input = writer.write_input("in", content);
        writer.ok(&["-q", "data", "put", "t/m", name, &input]);
    };
    let put = |content: &str| put_as("f.txt", content);
    put("v1\n");
    put_as("g.txt", "g1\n");
    let reader = writer.another_clone();
    reader.ok(&["-q", "datastore", "hydrate", "--model", "t/m"]);
    put("v2\n");

    // The reader's pull reads the slice naming v2, and its GET of v2
    // waits while a third commit and a gc expire v2 from the store.
    let proxy = route_through(
        &reader,
        Trap {
            method: "GET",
            path_contains: "/data/t/m/f.txt/".to_owned(),
            armed_by: String::new(),
            hold: Hold::UntilReleased,
            later_ones_wait: false,
        },
        "",
    );
    let pull = reader
        .silt()
        .args(["--json", "datastore", "sync", "--pull"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    proxy.wait_caught(Duration::from_secs(60));
    put("v3\n");
    put_as("g.txt", "g2\n");
    let gc = writer.json(&["datastore", "gc", "--keep", "1"]);
    assert_eq!(gc["objects_deleted"], 3, "v1, v2 and g1 are gone: {gc}");
    proxy.release();

    let pulled = pull.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&pulled.stderr);
    assert!(pulled.status.success(), "{stderr}");
    assert_eq!(
        std::fs::read_to_string(reader.model_dir("t/m").join("f.txt")).unwrap(),
        "v3\n"
    );
    // The model settles on the next pull (its other file too), and
    // nothing is amiss.
    reader.ok(&["-q", "datastore", "sync", "--pull"]);
    assert_eq!(
        std::fs::read_to_string(reader.model_dir("t/m").join("g.txt")).unwrap(),
        "g2\n"
    );
    let status = reader.json(&["datastore", "status"]);
    assert_eq!(status["remote_changes"], serde_json::json!([]), "{status}");
    assert_eq!(status["local_changes"], serde_json::json!([]), "{status}");
    reader.ok(&["datastore", "verify"]);
}

/// `silt data put MODEL NAME -` with `content` on stdin.
fn put_stdin(project: &Project, model: &str, name: &str, content: &str) {
    use std::io::Write as _;
    let mut child = project
        .silt()
        .args(["-q", "data", "put", model, name, "-"])
        .stdin(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(content.as_bytes()).unwrap();
    drop(stdin);
    let done = child.wait_with_output().unwrap();
    assert!(
        done.status.success(),
        "{}",
        String::from_utf8_lossy(&done.stderr)
    );
}

#[test]
fn ones_own_put_leaves_the_working_copy_at_it_and_status_clean() {
    for backend in BACKENDS {
        let project = Project::new(backend, "");
        let status = || project.json(&["datastore", "status"]);
        let working = || std::fs::read_to_string(project.model_dir("repro/m").join("a.txt")).ok();

        // A new model, from stdin: in the working copy, nothing to pull.
        put_stdin(&project, "repro/m", "a.txt", "fresh\n");
        let seen = status();
        assert_eq!(
            seen["remote_changes"],
            serde_json::json!([]),
            "{backend:?}: {seen}"
        );
        assert_eq!(seen["local_changes"], serde_json::json!([]), "{seen}");
        assert_eq!(working().as_deref(), Some("fresh\n"));

        // A new version over the unmodified one: replaced.
        put_stdin(&project, "repro/m", "a.txt", "second\n");
        let seen = status();
        assert_eq!(
            seen["remote_changes"],
            serde_json::json!([]),
            "{backend:?}: {seen}"
        );
        assert_eq!(seen["local_changes"], serde_json::json!([]), "{seen}");
        assert_eq!(working().as_deref(), Some("second\n"));

        // A local edit is never overwritten: the put commits, the edit
        // stays, and the model is the store's change until a pull.
        std::fs::write(project.model_dir("repro/m").join("a.txt"), "mine\n").unwrap();
        put_stdin(&project, "repro/m", "a.txt", "third\n");
        assert_eq!(working().as_deref(), Some("mine\n"));
        let seen = status();
        assert_eq!(
            seen["remote_changes"],
            serde_json::json!(["repro/m"]),
            "{seen}"
        );
        assert_eq!(
            project.ok(&["data", "get", "repro/m", "a.txt", "-o", "-"]),
            "third\n"
        );

        // Someone else's commit in between is not taken for ours.
        let other = project.another_clone();
        put_stdin(&other, "repro/n", "b.txt", "theirs\n");
        put_stdin(&project, "repro/n", "c.txt", "ours\n");
        let seen = status();
        let remote = seen["remote_changes"].as_array().unwrap();
        assert!(
            remote.contains(&serde_json::json!("repro/n")),
            "{backend:?}: {seen}"
        );
        project.ok(&["-q", "datastore", "sync", "--pull"]);
        let seen = status();
        assert_eq!(seen["remote_changes"], serde_json::json!([]), "{seen}");
        project.ok(&["datastore", "verify"]);
    }
}

#[test]
fn a_put_after_a_one_file_refresh_leaves_the_other_files_to_the_next_pull() {
    // `data get` of one file reads the newer slice but brings only that
    // file to it; a put then must not claim the whole model current.
    let a = Project::new(Backend::S3, "");
    put_stdin(&a, "t/m", "a.txt", "a1\n");
    put_stdin(&a, "t/m", "b.txt", "b1\n");
    let b = a.another_clone();
    b.ok(&["-q", "datastore", "sync", "--pull"]);
    put_stdin(&b, "t/m", "b.txt", "b2\n");
    assert_eq!(a.ok(&["data", "get", "t/m", "a.txt", "-o", "-"]), "a1\n");
    put_stdin(&a, "t/m", "a.txt", "a2\n");
    let seen = a.json(&["datastore", "status"]);
    assert_eq!(seen["remote_changes"], serde_json::json!(["t/m"]), "{seen}");
    a.ok(&["-q", "datastore", "sync", "--pull"]);
    assert_eq!(
        std::fs::read_to_string(a.model_dir("t/m").join("b.txt")).unwrap(),
        "b2\n"
    );
    let seen = a.json(&["datastore", "status"]);
    assert_eq!(seen["remote_changes"], serde_json::json!([]), "{seen}");
}

#[test]
fn a_push_of_content_another_clone_committed_leaves_no_orphan() {
    let a = Project::new(Backend::Dir, "");
    put_stdin(&a, "t/m", "f.txt", "one\n");
    let b = a.another_clone();
    b.ok(&["-q", "datastore", "sync", "--pull"]);
    put_stdin(&a, "t/m", "f.txt", "same\n");
    // B, not having pulled, makes the same edit and pushes it over.
    std::fs::write(b.model_dir("t/m").join("f.txt"), "same\n").unwrap();
    b.ok(&["-q", "datastore", "sync", "--push", "--ours"]);
    let history = b.json(&["data", "history", "t/m", "f.txt"])["versions"].clone();
    assert_eq!(history.as_array().unwrap().len(), 2, "{history}");
    assert_eq!(a.keys("data/t/m/f.txt/").len(), 2, "no upload left behind");
    b.ok(&["datastore", "verify"]);
}

#[test]
fn putting_the_latest_content_again_makes_no_new_version() {
    for backend in BACKENDS {
        let project = Project::new(backend, "");
        let put = |content: &str| {
            let input = project.write_input("in", content);
            project.ok(&["data", "put", "t/m", "f.txt", &input])
        };
        let history = || project.json(&["data", "history", "t/m", "f.txt"])["versions"].clone();
        assert!(put("same\n").contains("committed version"));
        let again = put("same\n");
        assert!(again.contains("unchanged"), "{backend:?}: {again}");
        assert_eq!(history().as_array().unwrap().len(), 1, "{}", history());
        assert_eq!(
            project.keys("data/t/m/f.txt/").len(),
            1,
            "{backend:?}: the second upload is deleted"
        );
        // The latest's object lost behind silt's back: the same content put
        // again restores it.
        let keys = project.keys("data/t/m/f.txt/");
        project.delete_object(&keys[0]);
        let (code, _, _) = project.run(&["datastore", "verify"]);
        assert_ne!(code, 0, "verify reports the missing object");
        assert!(put("same\n").contains("unchanged"));
        project.ok(&["datastore", "verify"]);
        assert_eq!(
            project.ok(&["data", "get", "t/m", "f.txt", "-o", "-"]),
            "same\n"
        );
        // Content of an older version is a new version: it brings it back.
        put("other\n");
        assert!(put("same\n").contains("committed version"));
        assert_eq!(history().as_array().unwrap().len(), 3, "{}", history());
        project.ok(&["datastore", "verify"]);
    }
}

/// A project whose `silt.toml` names an S3 endpoint and bucket as given
/// (nothing is created), with partitioned-datastore installed.
fn s3_project_at(endpoint: &str, bucket: &str) -> (tempfile::TempDir, std::process::Command) {
    s3_project_with(endpoint, bucket, "partitioned-datastore")
}

/// [`s3_project_at`] with another datastore extension.
fn s3_project_with(
    endpoint: &str,
    bucket: &str,
    extension: &str,
) -> (tempfile::TempDir, std::process::Command) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("silt.toml"),
        format!(
            "[datastore]\nextension = \"{extension}\"\nbackend = \"s3\"\n[datastore.s3]\nbucket = \"{bucket}\"\nendpoint = \"{endpoint}\"\n"
        ),
    )
    .unwrap();
    let (code, _, stderr) = support::output(
        support::silt(dir.path())
            .args(["-q", "extension", "add"])
            .arg(support::component(extension)),
    );
    assert_eq!(code, 0, "{stderr}");
    let mut command = support::silt(dir.path());
    command
        .env("AWS_ACCESS_KEY_ID", support::seaweed::ACCESS_KEY)
        .env("AWS_SECRET_ACCESS_KEY", support::seaweed::SECRET_KEY);
    (dir, command)
}

/// Whichever request a datastore makes first — a listing, a `GET`, or a
/// `HEAD`, whose 404 carries no error code (the monolith's first read is a
/// `HEAD` of its index) — a missing bucket is named, exit 69.
#[test]
fn a_missing_bucket_is_named_not_taken_for_an_empty_datastore() {
    let endpoint = &support::seaweed::server().endpoint;
    for extension in EXTENSIONS {
        let (_dir, mut silt) = s3_project_with(endpoint, "no-such-bucket-for-silt", extension);
        let (code, stdout, stderr) = support::output(silt.args(["data", "list", "t/m"]));
        assert_eq!(code, 69, "{extension}: {stdout}{stderr}");
        assert!(
            stderr.contains("bucket `no-such-bucket-for-silt` does not exist"),
            "{extension}: {stderr}"
        );
    }
}

/// Through a server that answers as one that kept aws-chunked framing
/// with the data (the object is 293 bytes longer than sent), `data put`
/// is refused, exit 69, and nothing is committed or left behind.
#[test]
fn a_put_the_store_did_not_keep_as_sent_is_never_acknowledged() {
    use support::mangling_proxy::{Mangle, start};
    let project = Project::new(Backend::S3, "");
    let config = project.path().join("silt.toml");
    let direct = std::fs::read_to_string(&config).unwrap();
    let endpoint = &support::seaweed::server().endpoint;
    let proxy = start(endpoint, Mangle::ForgeStoredSize, 1 << 20);
    std::fs::write(&config, direct.replace(endpoint.as_str(), &proxy.endpoint)).unwrap();
    let input = project.path().join("big.bin");
    std::fs::write(&input, vec![5u8; 3 << 19]).unwrap();
    let (code, stdout, stderr) =
        project.run(&["data", "put", "t/m", "big.bin", input.to_str().unwrap()]);
    assert_eq!(code, 69, "{stdout}{stderr}");
    assert!(stderr.contains("did not land as sent"), "{stderr}");
    assert!(stderr.contains("silt datastore doctor"), "{stderr}");
    std::fs::write(&config, direct).unwrap();
    assert!(project.file_names("t/m").is_empty());
    project.ok(&["datastore", "verify"]);
    project.assert_no_leases();
}

#[test]
fn an_unreachable_server_is_said_in_words() {
    // A port nothing listens on.
    let port = support::seaweed::free_port();
    let (_dir, mut silt) = s3_project_at(&format!("http://127.0.0.1:{port}"), "bucket");
    let (code, _, stderr) = support::output(silt.args(["data", "list", "t/m"]));
    assert_eq!(code, 69, "{stderr}");
    assert!(stderr.contains("cannot reach the server"), "{stderr}");
    assert!(
        !stderr.contains("ConnectorError") && !stderr.contains("Some("),
        "a debug dump: {stderr}"
    );
}

/// A pull killed after a file landed but before its stamp was saved leaves
/// the newer content under an older stamp. That is not an edit: the next
/// sync must neither commit it over a newer acknowledged version nor call
/// it a conflict. (The state is made exactly: the file replaced, the
/// sidecar left as it was.)
#[test]
fn a_killed_pull_never_commits_its_landed_file_over_newer_work() {
    for (backend, extension) in combinations() {
        let a = Project::with_extension(backend, extension, "");
        let b = a.another_clone();
        let v1 = a.write_input("v1", "version 1\n");
        let v2 = a.write_input("v2", "version 2\n");
        let v3 = a.write_input("v3", "version 3, acknowledged\n");
        a.ok(&["data", "put", "t/m", "f.txt", &v1]);
        b.ok(&["datastore", "sync"]);
        let working = b.model_dir("t/m").join("f.txt");
        assert_eq!(std::fs::read_to_string(&working).unwrap(), "version 1\n");
        a.ok(&["data", "put", "t/m", "f.txt", &v2]);
        // B's pull of version 2 was killed after the rename: the content
        // landed, the sidecar still says version 1.
        std::fs::write(&working, "version 2\n").unwrap();
        // Meanwhile A commits version 3 (acknowledged).
        a.ok(&["data", "put", "t/m", "f.txt", &v3]);
        let (code, _, stderr) = b.run(&["datastore", "sync"]);
        assert_eq!(code, 0, "{backend:?} {extension}: {stderr}");
        assert!(!stderr.contains("kept the local edit"), "{stderr}");
        let latest = a.ok(&["data", "get", "t/m", "f.txt"]);
        assert_eq!(
            latest, "version 3, acknowledged\n",
            "{backend:?} {extension}: an acknowledged write was overwritten"
        );
        assert_eq!(
            std::fs::read_to_string(&working).unwrap(),
            "version 3, acknowledged\n",
            "{backend:?} {extension}: B was not brought up to date"
        );
    }
}

#[test]
fn a_failed_init_leaves_no_silt_toml_and_init_takes_allow_unsafe_store() {
    let home = home_with_the_datastore_extension();
    // A store nobody serves: init fails, and leaves the directory as it was.
    let port = support::seaweed::free_port();
    let endpoint = format!("http://127.0.0.1:{port}");
    let init = |extra: &[&str]| {
        let mut command = support::silt(home.path());
        command
            .args([
                "init",
                "--backend",
                "s3",
                "--bucket",
                "b",
                "--endpoint",
                &endpoint,
            ])
            .args(extra)
            .env("AWS_ACCESS_KEY_ID", support::seaweed::ACCESS_KEY)
            .env("AWS_SECRET_ACCESS_KEY", support::seaweed::SECRET_KEY);
        support::output(&mut command)
    };
    let (code, _, stderr) = init(&[]);
    assert_eq!(code, 69, "{stderr}");
    assert!(
        !home.path().join("silt.toml").exists(),
        "a failed init left silt.toml behind"
    );
    // The retry meets the same cause, not "already exists".
    let (code, _, stderr) = init(&["--allow-unsafe-store"]);
    assert_eq!(code, 69, "{stderr}");
    assert!(!stderr.contains("already exists"), "{stderr}");
    // On a store that works, the decision is written down in silt.toml.
    let (code, _, stderr) =
        support::output(support::silt(home.path()).args(["init", "--allow-unsafe-store"]));
    assert_eq!(code, 0, "{stderr}");
    let written = std::fs::read_to_string(home.path().join("silt.toml")).unwrap();
    assert!(written.contains("allow_unsafe_store = true"), "{written}");
}

#[test]
fn an_unsafe_store_decision_is_recorded_in_the_store_and_every_clone_warns() {
    const WARNING: &str = "warning: this store failed silt's conditional-write checks";
    for backend in BACKENDS {
        let project = Project::new(backend, "");
        let (_, _, stderr) = project.run(&["data", "list", "t/m"]);
        assert!(!stderr.contains(WARNING), "{backend:?}: {stderr}");
        // What `silt datastore setup --allow-unsafe-store` records on a store
        // that fails the checks (SeaweedFS and the directory store pass them).
        project.overwrite_object(
            "_silt/unsafe-store.json",
            br#"{"failed":"create-if-absent","allowed_by":"alice@ci-7","allowed_at_ms":1}"#,
        );
        // A clone that never passed the flag warns, once per command.
        let clone = project.another_clone();
        for _ in 0..2 {
            let (code, _, stderr) = clone.run(&["data", "list", "t/m"]);
            assert_eq!(code, 0, "{stderr}");
            assert_eq!(stderr.matches(WARNING).count(), 1, "{backend:?}: {stderr}");
            assert!(stderr.contains("alice@ci-7"), "{stderr}");
        }
        // Checked again on a store that passes: the record goes, for all.
        clone.ok(&["datastore", "doctor"]);
        let (_, _, stderr) = clone.run(&["data", "list", "t/m"]);
        assert!(!stderr.contains(WARNING), "{backend:?}: {stderr}");
        assert!(project.keys("_silt/unsafe").is_empty());
    }
}

/// The extension's `describe` runs only to check it against the metadata
/// section, and a build's answer never changes: a clone asks once per
/// component and remembers it, so a command runs no extra instance.
#[test]
fn describe_is_asked_once_per_component_not_per_command() {
    let project = Project::new(Backend::Dir, "");
    let describes = |args: &[&str]| -> usize {
        let trace = project.path().join("trace.jsonl");
        let _ = std::fs::remove_file(&trace);
        let mut all = vec!["-q", "--trace-file", trace.to_str().unwrap()];
        all.extend_from_slice(args);
        project.ok(&all);
        let spans = support::otlp::spans(&std::fs::read_to_string(&trace).unwrap());
        assert!(spans.iter().any(|s| s.name == "extension.call"));
        spans
            .iter()
            .filter(|s| s.name == "extension.call")
            .filter(|s| s.attr("silt.export") == "capabilities.describe")
            .count()
    };
    // `silt init` asked (and set the datastore up).
    assert_eq!(describes(&["data", "list", "t/m"]), 0);
    assert_eq!(describes(&["data", "list", "t/m"]), 0);
    // The record gone (or another build installed): asked once again.
    // (The host's state is beside the working copy `.silt/local`.)
    let record = project
        .path()
        .join(".silt/local-host/extension-description.json");
    std::fs::remove_file(&record).expect("the host's state remembers the answer");
    assert_eq!(describes(&["data", "list", "t/m"]), 1);
    assert!(record.is_file());
    assert_eq!(describes(&["data", "list", "t/m"]), 0);
}
