//! Conflicts by base version: an edit made from a version the store has
//! moved on from is never committed on top silently. Real clones, real
//! processes (a `kill -9` of a running `silt run`), both backends, every
//! datastore we ship (the Rust ones and the TypeScript example).

use crate::support;

use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use support::project::{BACKENDS, Backend, EXTENSIONS, Project, combinations};

/// The datastores with base versions: the Rust ones and the TypeScript example.
fn every_datastore() -> impl Iterator<Item = (Backend, &'static str)> {
    combinations().chain(
        BACKENDS
            .into_iter()
            .map(|backend| (backend, "ts-datastore")),
    )
}

/// The latest version token of `name`, from `data history --json`.
fn latest_version(project: &Project, model: &str, name: &str) -> String {
    let history = project.json(&["data", "history", model, name])["versions"].clone();
    history.as_array().unwrap().last().unwrap()["version"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// Every file under `dir`, recursively.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return found;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            found.extend(files_under(&path));
        } else {
            found.push(path);
        }
    }
    found
}

/// `silt run --model t/m -- sh -c SCRIPT` in `project`.
fn run_script(project: &Project, script: &str) -> (i32, String, String) {
    project.run(&["run", "--model", "t/m", "--", "sh", "-c", script])
}

/// Two clones of a new datastore on `backend`: A committed `t/m f.txt`
/// ("v1\n"), B synced it.
fn clones_at_v1(backend: Backend, extension: &'static str) -> (Project, Project) {
    let a = Project::with_extension(backend, extension, "");
    let b = a.another_clone();
    a.ok(&["data", "put", "t/m", "f.txt", &a.write_input("v1", "v1\n")]);
    b.ok(&["datastore", "sync"]);
    (a, b)
}

/// What the local copy set aside under `.silt/conflicts/`.
fn set_aside(project: &Project) -> Vec<PathBuf> {
    files_under(&project.path().join(".silt/local/.silt/conflicts"))
}

#[test]
fn a_stale_edit_is_refused_as_a_conflict_and_resolved_by_theirs_or_ours() {
    for (backend, extension) in every_datastore() {
        let (a, b) = clones_at_v1(backend, extension);
        let what = format!("{backend:?} {extension}");
        let v1 = latest_version(&a, "t/m", "f.txt");
        let working = b.model_dir("t/m").join("f.txt");
        std::fs::write(&working, "b's edit of v1\n").unwrap();
        a.ok(&[
            "data",
            "put",
            "t/m",
            "f.txt",
            &a.write_input("v2", "v2, acknowledged\n"),
        ]);
        let v2 = latest_version(&a, "t/m", "f.txt");

        // What the lock-lost message suggests, and a plain sync: refused.
        for args in [
            &["datastore", "sync", "--push"][..],
            &["datastore", "sync"][..],
        ] {
            let (code, _, stderr) = b.run(args);
            assert_eq!(code, 3, "{what} {args:?}: {stderr}");
            assert!(stderr.contains("conflict"), "{what}: {stderr}");
            assert!(stderr.contains("f.txt"), "{what}: {stderr}");
            assert!(
                stderr.contains(&v1) && stderr.contains(&v2),
                "{what}: names both versions: {stderr}"
            );
            assert!(
                stderr.contains("--theirs") && stderr.contains("--ours"),
                "{what}: {stderr}"
            );
            assert_eq!(
                a.ok(&["data", "get", "t/m", "f.txt"]),
                "v2, acknowledged\n",
                "{what}"
            );
        }
        b.assert_no_leases();

        // --theirs: the store's version in the working copy, b's edit aside.
        let out = b.ok(&["datastore", "sync", "--theirs"]);
        assert!(out.contains("moved 1 local edits aside"), "{what}: {out}");
        assert_eq!(
            std::fs::read_to_string(&working).unwrap(),
            "v2, acknowledged\n",
            "{what}"
        );
        let aside = set_aside(&b);
        assert_eq!(aside.len(), 1, "{what}: {aside:?}");
        assert_eq!(
            std::fs::read_to_string(&aside[0]).unwrap(),
            "b's edit of v1\n"
        );
        assert!(aside[0].ends_with("data/t/m/f.txt"), "{aside:?}");
        assert_eq!(
            a.ok(&["data", "get", "t/m", "f.txt"]),
            "v2, acknowledged\n",
            "{what}"
        );

        // --ours: commits on top; the acknowledged version stays in history.
        std::fs::write(&working, "b's edit of v2\n").unwrap();
        a.ok(&[
            "data",
            "put",
            "t/m",
            "f.txt",
            &a.write_input("v3", "v3, acknowledged\n"),
        ]);
        let v3 = latest_version(&a, "t/m", "f.txt");
        let (code, _, stderr) = b.run(&["datastore", "sync", "--push"]);
        assert_eq!(code, 3, "{what}: {stderr}");
        b.ok(&["datastore", "sync", "--ours"]);
        assert_eq!(
            a.ok(&["data", "get", "t/m", "f.txt"]),
            "b's edit of v2\n",
            "{what}"
        );
        assert_eq!(
            a.ok(&["data", "get", "t/m", "f.txt", "--version", &v3]),
            "v3, acknowledged\n",
            "{what}: the overwritten version stays in history"
        );
        b.assert_no_leases();
    }
}

#[test]
fn a_new_local_file_whose_name_someone_committed_is_a_conflict() {
    for (backend, extension) in every_datastore() {
        let a = Project::with_extension(backend, extension, "");
        let b = a.another_clone();
        let what = format!("{backend:?} {extension}");
        // B makes a file of a model it never synced; A commits the same name.
        std::fs::create_dir_all(b.model_dir("t/m")).unwrap();
        std::fs::write(b.model_dir("t/m").join("new.txt"), "b's new file\n").unwrap();
        a.ok(&[
            "data",
            "put",
            "t/m",
            "new.txt",
            &a.write_input("a", "a's, acknowledged\n"),
        ]);
        let (code, _, stderr) = b.run(&["datastore", "sync"]);
        assert_eq!(code, 3, "{what}: {stderr}");
        assert!(stderr.contains("yours is new here"), "{what}: {stderr}");
        assert_eq!(
            a.ok(&["data", "get", "t/m", "new.txt"]),
            "a's, acknowledged\n",
            "{what}"
        );
    }
}

#[test]
fn data_put_and_rm_with_a_base_commit_only_if_it_is_still_the_latest() {
    for (backend, extension) in every_datastore() {
        let project = Project::with_extension(backend, extension, "");
        let what = format!("{backend:?} {extension}");
        let input = project.write_input("in", "one\n");
        let other = project.write_input("other", "other\n");
        project.ok(&["data", "put", "t/m", "f.txt", "--base", "none", &input]);
        // (The same content again would be no conflict: nothing is lost.)
        let (code, _, stderr) =
            project.run(&["data", "put", "t/m", "f.txt", "--base", "none", &other]);
        assert_eq!(code, 3, "{what}: {stderr}");
        assert!(stderr.contains("silt data history"), "{what}: {stderr}");
        let v1 = latest_version(&project, "t/m", "f.txt");
        let two = project.write_input("two", "two\n");
        project.ok(&["data", "put", "t/m", "f.txt", "--base", &v1, &two]);
        let (code, _, stderr) =
            project.run(&["data", "put", "t/m", "f.txt", "--base", &v1, &other]);
        assert_eq!(code, 3, "{what}: {stderr}");
        let (code, _, stderr) = project.run(&["data", "rm", "t/m", "f.txt", "--base", &v1]);
        assert_eq!(code, 3, "{what}: {stderr}");
        assert_eq!(
            project.ok(&["data", "get", "t/m", "f.txt"]),
            "two\n",
            "{what}"
        );
        let v2 = latest_version(&project, "t/m", "f.txt");
        project.ok(&["data", "rm", "t/m", "f.txt", "--base", &v2]);
        // Removed: `none` holds again.
        project.ok(&["data", "put", "t/m", "f.txt", "--base", "none", &input]);
        project.assert_no_leases();
    }
}

/// Starts `silt run` in `project` with `script` as its command, in a
/// process group of its own, and waits until the command touched `ready`.
fn start_run(project: &Project, script: &str, ready: &Path) -> std::process::Child {
    let mut command = project.silt();
    command
        .args(["run", "--model", "t/m", "--", "sh", "-c", script])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .process_group(0);
    let child = command.spawn().unwrap();
    let started = Instant::now();
    while !ready.exists() {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the command never started"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child
}

#[test]
fn a_killed_run_leaves_its_edit_aside_and_never_commits_it_over_acknowledged_work() {
    // A short TTL: the killed run's lease is taken over soon (A's run
    // waits for it on each of the six datastores).
    let locks = format!("[locks]\nttl_ms = {}\n", support::lease_ttl_ms(1500));
    for (backend, extension) in every_datastore() {
        let a = Project::with_extension(backend, extension, &locks);
        let b = a.another_clone();
        let what = format!("{backend:?} {extension}");
        a.ok(&["data", "put", "t/m", "log.txt", &a.write_input("l", "a0\n")]);

        // B's run appends, then silt is killed before its commit.
        let ready = b.path().join("ready");
        let script = format!(
            "echo b-killed >> \"$SILT_MODEL_DIR/log.txt\"; touch {}; sleep 60",
            ready.display()
        );
        let mut child = start_run(&b, &script, &ready);
        assert!(support::child::signal_group(child.id(), libc::SIGKILL));
        child.wait().unwrap();

        // A push does not commit what the killed run left either.
        let (code, _, stderr) = b.run(&["datastore", "sync", "--push"]);
        assert_eq!(code, 3, "{what}: {stderr}");
        assert!(stderr.contains("was killed"), "{what}: {stderr}");
        assert!(stderr.contains("--ours --model t/m"), "{what}: {stderr}");

        // A's run commits (acknowledged).
        let (code, _, stderr) = run_script(&a, "echo a1 >> \"$SILT_MODEL_DIR/log.txt\"");
        assert_eq!(code, 0, "{what}: {stderr}");

        // B's next run starts from A's commit; the killed run's edit is set aside.
        let (code, _, stderr) = run_script(&b, "echo b2 >> \"$SILT_MODEL_DIR/log.txt\"");
        assert_eq!(code, 0, "{what}: {stderr}");
        assert!(
            stderr.contains("moved 1 uncommitted local edit aside"),
            "{what}: {stderr}"
        );
        assert_eq!(
            a.ok(&["data", "get", "t/m", "log.txt"]),
            "a0\na1\nb2\n",
            "{what}: the latest holds every acknowledged line and not the killed run's"
        );
        let aside = set_aside(&b);
        assert_eq!(aside.len(), 1, "{what}: {aside:?}");
        assert_eq!(
            std::fs::read_to_string(&aside[0]).unwrap(),
            "a0\nb-killed\n",
            "{what}"
        );
        b.assert_no_leases();
    }
}

#[test]
fn a_run_never_carries_a_failed_runs_output_into_its_commit() {
    for extension in EXTENSIONS {
        let project = Project::with_extension(Backend::Dir, extension, "");
        let (code, _, _) = run_script(&project, "echo partial > \"$SILT_MODEL_DIR/out\"; exit 3");
        assert_eq!(code, 3);
        let (code, _, stderr) = run_script(&project, "echo done > \"$SILT_MODEL_DIR/other\"");
        assert_eq!(code, 0, "{stderr}");
        assert!(
            stderr.contains("moved 1 uncommitted local edit aside"),
            "{stderr}"
        );
        let listed = project.json(&["data", "list", "t/m"])["files"].clone();
        let names: Vec<&str> = listed
            .as_array()
            .unwrap()
            .iter()
            .map(|file| file["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["other"], "{extension}");
    }
}

/// Rewrites the stamp (the version the local copy holds) of `name` in the
/// local state of `project`'s datastore, as a kill would leave it.
fn restamp(project: &Project, name: &str, version: &str) {
    let (path, files) = if project.extension == "ts-datastore" {
        (".silt/local/.ts-datastore/models/t/m.json", "files")
    } else {
        (".silt/local/.silt/index/data/t/m.json", "local")
    };
    let path = project.path().join(path);
    let mut state: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    state[files][name]["version"] = serde_json::Value::from(version);
    std::fs::write(&path, serde_json::to_vec(&state).unwrap()).unwrap();
}

#[test]
fn setting_aside_killed_at_any_step_commits_nothing_and_loses_nothing() {
    for (backend, extension) in every_datastore() {
        let (a, b) = clones_at_v1(backend, extension);
        let what = format!("{backend:?} {extension}");
        let working = b.model_dir("t/m").join("f.txt");
        std::fs::write(&working, "b's edit\n").unwrap();
        // Someone removes the name: an unstamped edit would now look new.
        a.ok(&["data", "rm", "t/m", "f.txt"]);

        // Killed after marking the file, before moving it: a conflict.
        restamp(&b, "f.txt", "~setting-aside");
        let (code, _, stderr) = b.run(&["datastore", "sync", "--push"]);
        assert_eq!(code, 3, "{what}: {stderr}");
        assert!(
            a.json(&["data", "list", "t/m"])["files"]
                .clone()
                .as_array()
                .unwrap()
                .is_empty(),
            "{what}"
        );

        // Killed after moving it: no change at all (not a removal).
        let aside = b.path().join("moved-f.txt");
        std::fs::rename(&working, &aside).unwrap();
        let (code, _, stderr) = b.run(&["datastore", "sync", "--push"]);
        assert_eq!(code, 0, "{what}: {stderr}");
        let status = b.json(&["datastore", "status"]);
        assert_eq!(
            status["local_changes"],
            serde_json::json!([]),
            "{what}: {status}"
        );
        assert_eq!(std::fs::read_to_string(&aside).unwrap(), "b's edit\n");
    }
}

#[test]
fn uploads_whose_commit_never_came_are_reported_by_verify_and_collected_by_gc() {
    for backend in BACKENDS {
        // A short TTL: a lease the holder had no time to release after
        // its SIGTERM (it tries for 0.7 s) goes stale soon.
        let ttl = support::lease_ttl_ms(3000);
        let project = Project::new(backend, &format!("[locks]\nttl_ms = {ttl}\n"));
        let what = format!("{backend:?}");
        let input = project.write_input("in", "one\n");
        project.ok(&["data", "put", "t/m", "f.txt", &input]);
        // Refused as a conflict after its upload: a put takes its upload
        // back, and leaves nothing behind.
        let other = project.write_input("other", "never committed\n");
        let (code, _, stderr) =
            project.run(&["data", "put", "t/m", "f.txt", "--base", "none", &other]);
        assert_eq!(code, 3, "{what}: {stderr}");
        project.ok(&["datastore", "verify"]);
        // What a writer killed between its upload and its commit leaves
        // (tests/chaos.rs kills real ones): an upload no entry references,
        // under a fresh version token that no commit announced.
        let token = format!(
            "{}-00000000000000aa",
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_millis()
        );
        project.overwrite_object(&format!("data/t/m/f.txt/{token}"), b"never committed\n");
        let (code, stdout, _) = project.run(&["datastore", "verify"]);
        assert_eq!(code, 1, "{what}: {stdout}");
        assert!(
            stdout.contains("unreferenced by the index (16 bytes"),
            "{what}: {stdout}"
        );

        // Younger than the window: kept.
        let report = project.json(&["datastore", "gc", "--keep", "10"]);
        assert_eq!(report["orphans_found"], 1, "{what}: {report}");
        assert_eq!(report["orphans_kept"], 1, "{what}: {report}");

        // Someone holds the model's lease: kept, whatever its age.
        let ready = project.path().join("ready");
        let script = format!("touch {}; sleep 30", ready.display());
        let mut holder = start_run(&project, &script, &ready);
        let report = project.json(&["datastore", "gc", "--keep", "10", "--orphan-min-age", "0"]);
        assert_eq!(report["orphans_kept"], 1, "{what}: {report}");
        support::child::signal_group(holder.id(), libc::SIGTERM);
        holder.wait().unwrap();
        wait_until_no_live_lease(&project, ttl);

        // Old enough and nobody writes the model: deleted; verify is clean.
        let report = project.json(&["datastore", "gc", "--keep", "10", "--orphan-min-age", "0"]);
        assert_eq!(report["orphans_deleted"], 1, "{what}: {report}");
        assert_eq!(report["orphan_bytes_deleted"], 16, "{what}: {report}");
        project.ok(&["datastore", "verify"]);
        assert_eq!(
            project.ok(&["data", "get", "t/m", "f.txt"]),
            "one\n",
            "{what}"
        );
    }
}

/// Waits until no lease is live: released, or left stale (within three
/// TTLs).
fn wait_until_no_live_lease(project: &Project, ttl_ms: u64) {
    let none = support::poll_until(Duration::from_millis(3 * ttl_ms), || {
        project.live_leases().is_empty().then_some(())
    });
    assert!(
        none.is_some(),
        "a lease stays live: {:?}",
        project.live_leases()
    );
}

/// A `data put` killed (`kill -9`) while the directory store writes its
/// temporary copy leaves that file behind, which no listing shows:
/// `verify` names it with its size (and changes nothing), `gc` removes it
/// with the dead writer's lock file, and nothing else is touched.
#[test]
fn a_killed_writes_temporary_in_the_directory_store_is_reported_and_collected() {
    let project = Project::new(Backend::Dir, "");
    let store = project.path().join(".silt/store");
    let input = project.path().join("big.bin");
    std::fs::write(&input, vec![3u8; 64 << 20]).unwrap();
    let named = |pattern: &str| {
        files_under(&store)
            .into_iter()
            .filter(|path| path.to_string_lossy().contains(pattern))
            .collect::<Vec<_>>()
    };
    let mut killed_mid_write = false;
    for _attempt in 0..10 {
        let mut put = project.silt();
        put.args(["data", "put", "t/m", "big.bin"])
            .arg(&input)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        let mut child = put.spawn().unwrap();
        let started = Instant::now();
        while child.try_wait().unwrap().is_none()
            && named("~t.").is_empty()
            && started.elapsed() < Duration::from_secs(60)
        {
            std::thread::sleep(Duration::from_millis(1));
        }
        if child.try_wait().unwrap().is_none() {
            // Stopped, the writer cannot finish its rename between the
            // look and the kill; a put stopped past its temporary is
            // killed with nothing of it left half-written.
            support::procfs::stop_every_thread(child.id());
            killed_mid_write = !named("~t.").is_empty();
        }
        let _ = child.kill();
        child.wait().unwrap();
        if killed_mid_write {
            break;
        }
    }
    assert!(killed_mid_write, "no put was caught writing its temporary");
    let left = named("~t.");
    assert_eq!(left.len(), 1, "{left:?}");

    let (code, stdout, _) = project.run(&["datastore", "verify"]);
    assert_eq!(code, 1, "{stdout}");
    assert!(
        stdout.contains("a temporary file of an interrupted write to the store"),
        "{stdout}"
    );
    assert_eq!(named("~t."), left, "verify changed it");
    // Younger than the default hour: a gc leaves it (another host's
    // writer on a shared directory may still be at it).
    let report = project.json(&["datastore", "gc", "--keep", "10"]);
    assert_eq!(report["leftovers_removed"], 0, "{report}");
    let all = ["datastore", "gc", "--keep", "10", "--orphan-min-age", "0"];
    let dry = project.json(&[&all[..], &["--dry-run"]].concat());
    assert_eq!(dry["leftovers_removed"], 1, "{dry}");
    assert_eq!(named("~t."), left, "a dry run removed it");
    let report = project.json(&all);
    assert_eq!(report["leftovers_removed"], 1, "{report}");
    assert!(named("~t.").is_empty());
    assert!(named("~l").is_empty(), "{:?}", named("~l"));
    // Nothing the killed put wrote had landed: no orphan, verify is clean.
    project.ok(&["datastore", "verify"]);
}
