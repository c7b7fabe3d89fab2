//! What a killed command leaves in the working copy: at most temporary
//! download files (`.<name>.silt-tmp.…`), never a partial file under a
//! real name. The next pull of everything removes them, and it walks the
//! working copy for them only when a command was killed (its marker in
//! the host's state outlived it: nobody holds its lock) or the last walk
//! is a day old: a no-op sync on a hydrated working copy reads no
//! directory of it.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use super::support::pausing_proxy::{Hold, Trap, route_through};
use super::support::project::{Backend, Project};

/// The host's record of commands that may download (`transfers/`).
fn transfers(project: &Project) -> PathBuf {
    project.transfers_dir()
}

/// The markers there (the last walk's stamp is not one).
fn markers(project: &Project) -> Vec<String> {
    names_in(&transfers(project))
        .into_iter()
        .filter(|name| name != "swept")
        .collect()
}

fn names_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .map(|entry| entry.unwrap().file_name().into_string().unwrap())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

fn temp_files(dir: &Path) -> Vec<String> {
    names_in(dir)
        .into_iter()
        .filter(|name| name.contains(".silt-tmp."))
        .collect()
}

/// A directory datastore with one file in model `t/m`.
fn project_with_one_file() -> Project {
    let project = Project::new(Backend::Dir, "");
    let input = project.write_input("input", "v1\n");
    project.ok(&["-q", "data", "put", "t/m", "a.txt", &input]);
    project
}

/// What a download killed mid-way leaves: a temporary file of a process
/// that is gone (a pid above Linux's maximum never runs).
fn plant_leftover(project: &Project) -> PathBuf {
    let leftover = project.model_dir("t/m").join(".a.txt.silt-tmp.4194305.0");
    std::fs::write(&leftover, "half").unwrap();
    leftover
}

#[test]
fn a_no_op_sync_walks_the_working_copy_only_after_a_killed_command_or_a_day() {
    let project = project_with_one_file();
    // The first pull of everything walks (nothing says when the last
    // walk was) and records it. Every command removed its marker.
    project.ok(&["-q", "datastore", "sync"]);
    assert!(transfers(&project).join("swept").is_file());
    assert_eq!(markers(&project), Vec::<String>::new());

    // A leftover nothing announced is not looked for...
    let leftover = plant_leftover(&project);
    project.ok(&["-q", "datastore", "sync"]);
    assert!(leftover.exists(), "the no-op sync walked the working copy");

    // ...until a command's marker outlives its process (it was killed).
    std::fs::write(transfers(&project).join(".command.silt-tmp.4194305.0"), "").unwrap();
    project.ok(&["-q", "datastore", "sync"]);
    assert!(!leftover.exists(), "the killed command's leftover was kept");
    assert_eq!(markers(&project), Vec::<String>::new());

    // ...or the last walk is a day old.
    let leftover = plant_leftover(&project);
    let stamp = transfers(&project).join("swept");
    age_last_walk(&project);
    project.ok(&["-q", "datastore", "sync"]);
    assert!(!leftover.exists(), "the daily walk did not run");
    let walked = std::fs::metadata(&stamp).unwrap().modified().unwrap();
    assert!(walked.elapsed().unwrap() < Duration::from_secs(3600));
    // The file itself is untouched throughout.
    assert_eq!(
        std::fs::read_to_string(project.model_dir("t/m").join("a.txt")).unwrap(),
        "v1\n"
    );
}

/// Where this machine's pids mean something, as temporary names say it
/// (the test and the silt it starts share it).
fn this_place() -> String {
    let name = silt::process::temp_name(std::ffi::OsStr::new("x"));
    let name = name.to_str().unwrap();
    let (_, mark) = name.rsplit_once(".silt-tmp.").unwrap();
    mark.split('.').next().unwrap().to_owned()
}

fn age_last_walk(project: &Project) {
    std::fs::File::options()
        .write(true)
        .open(transfers(project).join("swept"))
        .unwrap()
        .set_modified(SystemTime::now() - Duration::from_secs(25 * 3600))
        .unwrap();
}

#[test]
fn a_killed_commands_leftovers_go_even_when_its_pid_runs_again() {
    let project = project_with_one_file();
    project.ok(&["-q", "datastore", "sync"]);
    // A killed command's download whose pid now belongs to a process
    // that runs (pid 1 always does): by its name alone it may be live.
    let writer = format!("{}.1.7", this_place());
    let leftover = project
        .model_dir("t/m")
        .join(format!(".a.txt.silt-tmp.{writer}.0"));
    std::fs::write(&leftover, "half").unwrap();
    age_last_walk(&project);
    project.ok(&["-q", "datastore", "sync"]);
    assert!(leftover.exists(), "a file of a running pid was removed");
    // Its command's marker, which nobody holds: that process is gone.
    std::fs::write(
        transfers(&project).join(format!(".command.silt-tmp.{writer}.3")),
        "",
    )
    .unwrap();
    project.ok(&["-q", "datastore", "sync"]);
    assert!(!leftover.exists(), "the killed command's leftover was kept");
    assert_eq!(markers(&project), Vec::<String>::new());
}

/// Starts `reader`'s `datastore sync --pull` (in a process group of its
/// own, to be killed whole) through a proxy that holds its GET of
/// `t/m/big.bin` half-way, and its retries; returns once it is held.
fn pull_held_in_big_bin(
    reader: &Project,
) -> (super::support::pausing_proxy::Proxy, std::process::Child) {
    let proxy = route_through(
        reader,
        Trap {
            method: "GET",
            path_contains: "/data/t/m/big.bin/".to_owned(),
            armed_by: String::new(),
            hold: Hold::MidAnswer,
            later_ones_wait: true,
        },
        "",
    );
    let child = reader
        .silt()
        .args(["-q", "datastore", "sync", "--pull"])
        .process_group(0)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    proxy.wait_caught(Duration::from_secs(60));
    (proxy, child)
}

#[test]
fn a_file_a_killed_pull_landed_is_no_edit_after_its_version_expired() {
    // A file landed (renamed into place) by a pull killed before it saved
    // its stamps holds a committed version; newer commits and a gc may
    // expire that version from the index before the next sync, which must
    // still know the file for what it is, not refuse it as a conflict.
    let writer = Project::new(Backend::S3, "");
    let size = 4 << 20;
    let put = |name: &str, content: &str| {
        let input = writer.write_input("input", content);
        writer.ok(&["-q", "data", "put", "t/m", name, &input]);
    };
    put("a.txt", "a, first\n");
    put("big.bin", &"1".repeat(size));
    let reader = writer.another_clone();
    reader.ok(&["-q", "datastore", "sync", "--pull"]);
    put("a.txt", "a, second\n");
    put("big.bin", &"2".repeat(size));

    // The pull downloads both at once: big.bin is held half-way, a.txt
    // lands, and the pull is killed.
    let (proxy, mut child) = pull_held_in_big_bin(&reader);
    let a = reader.model_dir("t/m").join("a.txt");
    let started = Instant::now();
    while std::fs::read_to_string(&a).unwrap() != "a, second\n" {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "a.txt never landed"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(super::support::child::signal_group(
        child.id(),
        libc::SIGKILL
    ));
    child.wait().unwrap();

    // Three newer commits, and the landed version expires.
    for n in 3..=5 {
        put("a.txt", &format!("a, number {n}\n"));
    }
    writer.ok(&["-q", "datastore", "gc", "--keep", "1"]);
    let history = writer.json(&["data", "history", "t/m", "a.txt"])["versions"].clone();
    assert_eq!(history.as_array().unwrap().len(), 1, "{history}");

    proxy.release();
    let (code, _, stderr) = reader.run(&["datastore", "sync"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(!stderr.contains("local edit"), "{stderr}");
    assert_eq!(std::fs::read_to_string(&a).unwrap(), "a, number 5\n");
    assert_eq!(
        std::fs::read(reader.model_dir("t/m").join("big.bin")).unwrap(),
        "2".repeat(size).as_bytes()
    );
    let status = reader.json(&["datastore", "status"]);
    assert_eq!(status["local_changes"], serde_json::json!([]), "{status}");
    // Nothing of the reader's went to the store.
    let history = writer.json(&["data", "history", "t/m", "a.txt"])["versions"].clone();
    assert_eq!(history.as_array().unwrap().len(), 1, "{history}");
}

#[test]
fn a_sync_killed_mid_download_leaves_a_temporary_file_the_next_sync_removes() {
    let writer = Project::new(Backend::S3, "");
    let size = 4 << 20;
    let first = "1".repeat(size);
    let second = "2".repeat(size);
    let input = writer.write_input("big", &first);
    writer.ok(&["-q", "data", "put", "t/m", "big.bin", &input]);
    let reader = writer.another_clone();
    reader.ok(&["-q", "datastore", "sync", "--pull"]);
    let big = reader.model_dir("t/m").join("big.bin");
    assert_eq!(std::fs::read_to_string(&big).unwrap(), first);
    let input = writer.write_input("big", &second);
    writer.ok(&["-q", "data", "put", "t/m", "big.bin", &input]);

    // The reader's pull stops half-way through the new version's body;
    // its retries wait, so it is still mid-download when killed.
    let (proxy, mut child) = pull_held_in_big_bin(&reader);
    let model_dir = reader.model_dir("t/m");
    let started = Instant::now();
    while temp_files(&model_dir).is_empty() {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "no temporary file appeared: {:?}",
            names_in(&model_dir)
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(super::support::child::signal_group(
        child.id(),
        libc::SIGKILL
    ));
    child.wait().unwrap();

    // Left: the old file whole, a temporary file, the command's marker.
    assert_eq!(std::fs::read_to_string(&big).unwrap(), first);
    assert_eq!(
        temp_files(&model_dir).len(),
        1,
        "{:?}",
        names_in(&model_dir)
    );
    assert_eq!(markers(&reader).len(), 1, "{:?}", markers(&reader));

    // The next sync removes the temporary file and the marker, and lands
    // the new version.
    proxy.release();
    reader.ok(&["-q", "datastore", "sync", "--pull"]);
    assert_eq!(temp_files(&model_dir), Vec::<String>::new());
    assert_eq!(markers(&reader), Vec::<String>::new());
    assert_eq!(std::fs::read_to_string(&big).unwrap(), second);
    let status = reader.json(&["datastore", "status"]);
    assert_eq!(status["local_changes"], serde_json::json!([]), "{status}");
}

#[test]
fn a_get_to_a_file_removes_what_a_killed_get_left_beside_it() {
    let project = project_with_one_file();
    let out_dir = tempfile::tempdir().unwrap();
    let out = out_dir.path().join("a-copy.txt");
    // What a `get -o` killed mid-copy leaves beside its output: the
    // temporary file of a process that is gone (a pid above Linux's
    // maximum never runs), in the current shape of name and the older one.
    let killed = out_dir
        .path()
        .join(format!(".a-copy.txt.silt-tmp.{}.4194305.9.0", this_place()));
    let killed_older = out_dir.path().join(".a-copy.txt.silt-tmp.4194305.0");
    // A running process's (pid 1 always runs), and another name's.
    let running = out_dir
        .path()
        .join(format!(".a-copy.txt.silt-tmp.{}.1.9.0", this_place()));
    let another = out_dir
        .path()
        .join(format!(".b.txt.silt-tmp.{}.4194305.9.0", this_place()));
    for path in [&killed, &killed_older, &running, &another] {
        std::fs::write(path, "half").unwrap();
    }
    project.ok(&[
        "-q",
        "data",
        "get",
        "t/m",
        "a.txt",
        "-o",
        out.to_str().unwrap(),
    ]);
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "v1\n");
    assert!(!killed.exists() && !killed_older.exists());
    assert!(running.exists() && another.exists());
    assert_eq!(temp_files(out_dir.path()).len(), 2);
}
