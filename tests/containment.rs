//! Containment of the working copy: links planted there (by a guest that
//! escaped its wasm sandbox, a worker, or anyone with write access to the
//! extension's `/cache`) never redirect a host read, write or delete, and
//! `silt run` never hands a command a directory that leads elsewhere.
//!
//! Every test keeps a directory *outside* the project with a secret in it,
//! plants links towards it at the paths the host touches, runs the real
//! `silt` command (the suite also runs out of process under `cargo xtask
//! test`), and checks the command's answer and that nothing outside
//! changed.

use crate::support;

use std::collections::BTreeMap;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

use support::project::{Backend, Project};

/// Exit code for a refused link (invalid input).
const DATA_ERROR: i32 = 65;

/// A directory outside the project, with what it held at the start.
struct Outside {
    dir: tempfile::TempDir,
    before: BTreeMap<PathBuf, Vec<u8>>,
}

impl Outside {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("secret"), b"the user's secret\n").unwrap();
        std::fs::create_dir(dir.path().join("nested")).unwrap();
        std::fs::write(dir.path().join("nested/keep.txt"), b"keep me\n").unwrap();
        // Shaped like a dead process's download temp: cleaning must not reach it.
        std::fs::write(dir.path().join(".a.bin.silt-tmp.4194305.0"), b"x").unwrap();
        let before = snapshot(dir.path());
        Self { dir, before }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Nothing outside was created, changed or removed.
    fn assert_untouched(&self, what: &str) {
        assert_eq!(
            snapshot(self.path()),
            self.before,
            "{what}: the directory outside the project changed"
        );
    }
}

/// Every file under `dir` with its content (links listed as their target).
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut files = BTreeMap::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(current) = stack.pop() {
        for entry in std::fs::read_dir(&current).unwrap() {
            let entry = entry.unwrap();
            let path = entry.path();
            let kind = entry.file_type().unwrap();
            let relative = path.strip_prefix(dir).unwrap().to_owned();
            if kind.is_dir() {
                stack.push(path);
            } else if kind.is_symlink() {
                let target = std::fs::read_link(&path).unwrap();
                files.insert(relative, target.into_os_string().into_encoded_bytes());
            } else {
                files.insert(relative, std::fs::read(&path).unwrap());
            }
        }
    }
    files
}

/// Replaces `path` (file, directory or nothing) with a link to `target`.
fn plant(path: &Path, target: &Path) {
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        if meta.is_dir() {
            std::fs::remove_dir_all(path).unwrap();
        } else {
            std::fs::remove_file(path).unwrap();
        }
    }
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    symlink(target, path).unwrap();
}

fn local(project: &Project) -> PathBuf {
    project.path().join(".silt/local")
}

#[test]
fn put_refuses_a_staging_area_that_is_a_link() {
    let project = Project::new(Backend::Dir, "");
    let outside = Outside::new();
    let input = project.write_input("input", "user data\n");
    // Absolute and relative links, at the staging directory and its parent.
    let relative_target = Path::new("../../../..").join(outside.path().file_name().unwrap());
    for (at, target) in [
        (".silt/staging", outside.path().to_owned()),
        (".silt", outside.path().to_owned()),
        (".silt/staging", relative_target.clone()),
    ] {
        plant(&local(&project).join(at), &target);
        let (code, _, stderr) = project.run(&["data", "put", "t/m", "a.txt", &input]);
        assert_eq!(code, DATA_ERROR, "{at} -> {}: {stderr}", target.display());
        assert!(stderr.contains("symbolic link"), "{stderr}");
        outside.assert_untouched(&format!("put with {at} planted"));
        std::fs::remove_file(local(&project).join(at)).unwrap();
    }
    // With the links gone, the same put works.
    project.ok(&["data", "put", "t/m", "a.txt", &input]);
}

#[test]
fn get_never_delivers_a_file_through_a_link() {
    let project = Project::new(Backend::Dir, "");
    let outside = Outside::new();
    let input = project.write_input("input", "committed\n");
    project.ok(&["data", "put", "t/m", "a.txt", &input]);
    project.ok(&["data", "get", "t/m", "a.txt"]);
    let working = project.model_dir("t/m").join("a.txt");
    assert!(working.is_file(), "get made the file present");

    // The working copy's file is a link to the secret: get reads the
    // committed version from the store, never the secret.
    plant(&working, &outside.path().join("secret"));
    let stdout = project.ok(&["data", "get", "t/m", "a.txt"]);
    assert_eq!(stdout, "committed\n");
    let delivered = project.path().join("delivered.txt");
    project.ok(&[
        "data",
        "get",
        "t/m",
        "a.txt",
        "-o",
        delivered.to_str().unwrap(),
    ]);
    assert_eq!(std::fs::read(&delivered).unwrap(), b"committed\n");
    outside.assert_untouched("get with the working file planted");

    // The model directory itself, then the staging area, as links.
    plant(&project.model_dir("t/m"), outside.path());
    assert_eq!(project.ok(&["data", "get", "t/m", "a.txt"]), "committed\n");
    plant(&local(&project).join(".silt/staging"), outside.path());
    let (code, stdout, stderr) = project.run(&["data", "get", "t/m", "a.txt"]);
    assert_eq!(code, DATA_ERROR, "{stderr}");
    assert!(stdout.is_empty(), "nothing unverified reaches stdout");
    outside.assert_untouched("get with the staging area planted");
}

#[test]
fn put_never_reads_a_given_file_through_a_link_in_the_working_copy() {
    let project = Project::new(Backend::Dir, "");
    let outside = Outside::new();
    let input = project.write_input("input", "committed\n");
    project.ok(&["data", "put", "t/m", "a.txt", &input]);
    project.ok(&["data", "get", "t/m", "a.txt"]);
    let working = project.model_dir("t/m").join("a.txt");
    // A real file of the working copy is given as it is.
    project.ok(&["data", "put", "t/m", "copy.txt", working.to_str().unwrap()]);

    let secret = outside.path().join("secret");
    let mine = project.path().join("mine");
    symlink(&working, &mine).unwrap();
    plant(&working, &secret);
    let planted_dir = project.model_dir("t/d");
    plant(&planted_dir, outside.path());
    // The planted file, a planted directory on the way, and the user's own
    // link (outside the working copy) to the planted file.
    for given in [working.clone(), planted_dir.join("secret"), mine] {
        let (code, _, stderr) =
            project.run(&["data", "put", "t/m", "b.txt", given.to_str().unwrap()]);
        assert_eq!(code, DATA_ERROR, "{}: {stderr}", given.display());
        assert!(stderr.contains("symbolic link"), "{stderr}");
    }
    let (code, _, stderr) = project.run(&["data", "get", "t/m", "b.txt"]);
    assert_ne!(code, 0, "nothing was committed: {stderr}");
    outside.assert_untouched("put of planted links");
}

#[test]
fn get_refuses_an_output_in_the_working_copy() {
    let project = Project::new(Backend::Dir, "");
    let outside = Outside::new();
    let input = project.write_input("input", "committed\n");
    project.ok(&["data", "put", "t/m", "a.txt", &input]);
    let planted_dir = project.model_dir("t/d");
    plant(&planted_dir, outside.path());
    for output in [
        planted_dir.join("delivered"),
        planted_dir.join("secret"),
        project.model_dir("t/m").join("copy.txt"),
    ] {
        let (code, stdout, stderr) = project.run(&[
            "data",
            "get",
            "t/m",
            "a.txt",
            "-o",
            output.to_str().unwrap(),
        ]);
        assert_eq!(code, 2, "{}: {stderr}", output.display());
        assert!(stderr.contains("in the working copy"), "{stderr}");
        assert!(stdout.is_empty());
    }
    assert!(!project.model_dir("t/m").join("copy.txt").exists());
    outside.assert_untouched("get into planted links");
}

#[test]
fn run_refuses_a_model_directory_that_leads_elsewhere() {
    let project = Project::new(Backend::Dir, "");
    let outside = Outside::new();
    let input = project.write_input("input", "v1\n");
    project.ok(&["data", "put", "t/m", "a.txt", &input]);
    let marker = project.path().join("command-ran");
    let command = format!(
        "touch {} && touch \"$SILT_MODEL_DIR/landed\" && rm -f \"$SILT_MODEL_DIR/secret\"",
        marker.display()
    );
    let data = local(&project).join("data");
    for (at, target) in [
        (data.join("t/m"), outside.path().to_owned()),
        (data.join("t"), outside.path().to_owned()),
        (data.clone(), outside.path().to_owned()),
        // A link within the working copy is refused too: the command would
        // write another model's files.
        (data.join("t/m"), PathBuf::from("other")),
    ] {
        plant(&at, &target);
        let (code, _, stderr) = project.run(&["run", "--model", "t/m", "--", "sh", "-c", &command]);
        assert_eq!(code, DATA_ERROR, "{}: {stderr}", at.display());
        assert!(stderr.contains("not a real directory"), "{stderr}");
        assert!(!marker.exists(), "the command ran");
        outside.assert_untouched(&format!("run with {} planted", at.display()));
        std::fs::remove_file(&at).unwrap();
    }
    // With the links gone, the same run works and commits.
    let (code, _, stderr) = project.run(&["run", "--model", "t/m", "--", "sh", "-c", &command]);
    assert_eq!(code, 0, "{stderr}");
    assert!(marker.exists());
    assert!(project.file_names("t/m").contains(&"landed".to_owned()));
}

#[test]
fn hydration_and_sync_never_walk_or_clean_through_a_link() {
    let project = Project::new(Backend::Dir, "");
    let outside = Outside::new();
    let input = project.write_input("input", "v1\n");
    project.ok(&["data", "put", "t/m", "a.txt", &input]);
    plant(&project.model_dir("t/m"), outside.path());
    // A killed command's marker, planted before each command: the walk
    // for leftovers of `hydrate --all`, `sync` and the background hydrator
    // is due every time (a walk that succeeds removes the marker).
    // Whatever each command answers, nothing outside is read into the
    // store, written or removed (the dead-pid temp file is a bait for the
    // leftover cleaning).
    for args in [
        &["datastore", "hydrate", "--model", "t/m"][..],
        &["datastore", "hydrate", "--all"],
        &["datastore", "sync"],
        &["datastore", "gc", "--keep", "1"],
        &["datastore", "status"],
        &["datastore", "verify"],
        &["data", "list", "t/m"],
        &["data", "rm", "t/m", "a.txt"],
    ] {
        project.mark_a_killed_command();
        let (code, _, stderr) = project.run(args);
        assert_ne!(code, 70, "{args:?}: the extension failed: {stderr}");
        outside.assert_untouched(&format!("{args:?}"));
    }
    // The background hydrator, too (it runs detached: wait for it).
    project.mark_a_killed_command();
    project.ok(&["datastore", "hydrate", "--background"]);
    wait_for_background_hydrator(&project);
    outside.assert_untouched("background hydration");
    // Nothing from outside was committed.
    let names = project.file_names("t/m");
    assert!(
        !names
            .iter()
            .any(|name| name.contains("secret") || name.contains("keep")),
        "{names:?}"
    );
}

/// Waits (up to 30 s) until the background hydrator has run and ended.
fn wait_for_background_hydrator(project: &Project) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let status = project.json(&["datastore", "hydrate", "--status"]);
        // Not running *and* a run on record: `--background` returns once
        // the hydrator is spawned, before it has taken its lock, so
        // "not running" alone can be seen before it ever ran.
        let background = &status["background"];
        if background["running"] == serde_json::json!(false) && background["last"].is_object() {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the hydrator has not run and ended within 30 s: {status}"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

#[test]
fn the_hosts_own_state_is_out_of_the_extensions_reach() {
    let project = Project::new(Backend::Dir, "");
    let input = project.write_input("input", "v1\n");
    project.ok(&["data", "put", "t/m", "a.txt", &input]);
    project.ok(&["data", "get", "t/m", "a.txt"]);
    // Locks live beside the working copy, not in the extension's /cache.
    assert!(project.path().join(".silt/local-host/locks").is_dir());
    assert!(!local(&project).join(".silt-host").exists());
}

/// A FIFO planted where the extension reads (its index sidecar for the
/// model): the guest's open waits for a writer that never comes. The call
/// is stopped at its deadline and the command ends with the deadline's
/// error: in process, the thread stuck in `open` is left to the process's
/// exit (the runtime's shutdown waits a bounded time for it); out of
/// process, the worker is killed.
#[test]
fn a_fifo_in_the_working_copy_never_holds_a_command_past_its_deadline() {
    use std::time::{Duration, Instant};
    let project = Project::new(
        Backend::Dir,
        "[runtime]\ndeadline_ms = 1000\nstore_budget_ms = 1000\n",
    );
    let input = project.write_input("input", "v1\n");
    project.ok(&["data", "put", "t/m", "a.txt", &input]);
    project.ok(&["data", "list", "t/m"]);
    let sidecar = local(&project).join(".silt/index/data/t/m.json");
    assert!(
        sidecar.is_file(),
        "the extension's index sidecar moved: {}",
        sidecar.display()
    );
    std::fs::remove_file(&sidecar).unwrap();
    let made = std::process::Command::new("mkfifo")
        .arg(&sidecar)
        .status()
        .unwrap();
    assert!(made.success(), "mkfifo failed");

    let started = Instant::now();
    let mut child = project
        .silt()
        .args(["data", "list", "t/m"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Two calls may block (making the model present, then the full pull it
    // falls back to), each within deadline + store budget + grace (3 s);
    // then the runtime's bounded wait (10 s) and start-up.
    let bound = Duration::from_secs(35);
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > bound {
            let _ = child.kill();
            let output = child.wait_with_output().unwrap();
            panic!(
                "`silt data list` still ran after {bound:?}: {}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(70), "{stderr}");
    assert!(stderr.contains("deadline"), "{stderr}");
    // In process, the thread still in `open` is left behind, and said so.
    if std::env::var("SILT_EXECUTION").as_deref() != Ok("out-of-process") {
        assert!(stderr.contains("exiting without it"), "{stderr}");
    }
    // Once the FIFO is gone, the next command works again.
    std::fs::remove_file(&sidecar).unwrap();
    project.ok(&["data", "list", "t/m"]);
}
