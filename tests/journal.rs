//! The change journal (partitioned-datastore, layout 2): a pull of
//! everything learns what changed from one listing of `_journal/` — one
//! request when nothing did — and never misses an acknowledged commit, nor
//! one whose writer was killed at its compare-and-swap; a commit that was
//! never announced is found by the periodic full check.

use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::time::Duration;

use super::support::pausing_proxy::{self, Hold, Trap, trapped_clone};
use super::support::project::{BACKENDS, Backend, Project};

/// `silt datastore sync --pull`'s report of the pull.
fn pull(project: &Project) -> serde_json::Value {
    project.json(&["datastore", "sync", "--pull"])["pulled"].clone()
}

/// The models whose store version this clone's pulls have not caught up with.
fn remote_changes(project: &Project) -> Vec<String> {
    serde_json::from_value(project.json(&["datastore", "status"])["remote_changes"].clone())
        .unwrap()
}

/// The working-copy file `name` of model `t/m`.
fn local_file(project: &Project, name: &str) -> String {
    std::fs::read_to_string(project.model_dir("t/m").join(name)).unwrap_or_default()
}

/// Where a clone keeps its progress through the journal.
fn progress_file(project: &Project) -> PathBuf {
    project.path().join(".silt/local/.silt/journal/data.json")
}

/// Pulls, and checks that the pull's summary starts with `summary`.
fn pull_saying(project: &Project, summary: &str, what: &str) -> serde_json::Value {
    let pulled = pull(project);
    assert!(
        pulled["summary"].as_str().unwrap().starts_with(summary),
        "{what}: {pulled}"
    );
    pulled
}

/// Pulls, and checks that the pull found nothing: one request, no read.
fn assert_noop_pull(project: &Project, what: &str) {
    let noop = pull_saying(project, "0 models changed (0 read", what);
    assert_eq!(noop["requests"], 1, "{what}: {noop}");
}

fn put(project: &Project, model: &str, name: &str, content: &str) {
    let input = project.write_input(&format!("in-{name}"), content);
    project.ok(&["-q", "data", "put", model, name, &input]);
}

#[test]
fn a_pull_after_each_acknowledged_commit_shows_it_and_a_noop_pull_is_one_request() {
    for backend in BACKENDS {
        let reader = Project::new(backend, "");
        let writers = [reader.another_clone(), reader.another_clone()];
        put(&reader, "t/m", "f.txt", "r0");
        // The first pull lists every partition (a full check) and starts
        // the progress; the next one reads the journal only.
        let first = pull(&reader);
        assert!(
            first["summary"].as_str().unwrap().contains(" of "),
            "{backend:?}: {first}"
        );
        assert_noop_pull(&reader, &format!("{backend:?}"));
        for i in 0..6 {
            let content = format!("w{i}");
            put(&writers[i % 2], "t/m", "f.txt", &content);
            let pulled = pull(&reader);
            assert!(
                pulled["summary"]
                    .as_str()
                    .unwrap()
                    .starts_with("1 model changed (1 read"),
                "{backend:?} write {i}: {pulled}"
            );
            assert_eq!(
                local_file(&reader, "f.txt"),
                content,
                "{backend:?} write {i}"
            );
            assert!(remote_changes(&reader).is_empty(), "{backend:?} write {i}");
        }
        // Settled: nothing left to read.
        assert_eq!(pull(&reader)["requests"], 1, "{backend:?}");
        // Every commit announced itself (the first, and one per write).
        assert_eq!(reader.keys("_journal/").len(), 7, "{backend:?}");
    }
}

/// Starts `silt data put` in `writer` in a process group of its own, waits
/// until the proxy caught the trapped request, and kills the group.
fn put_killed_at_the_trap(
    writer: &Project,
    proxy: &pausing_proxy::Proxy,
    model: &str,
    content: &str,
) {
    let input = writer.write_input("in-killed", content);
    let mut child = writer
        .silt()
        .args(["-q", "data", "put", model, "f.txt", &input])
        .process_group(0)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let caught = proxy.wait_caught(Duration::from_secs(60));
    assert!(caught.contains("/_index/"), "{caught}");
    assert!(super::support::child::signal_group(
        child.id(),
        libc::SIGKILL
    ));
    child.wait().unwrap();
}

/// The commit's compare-and-swap: the first partition write after the
/// content's upload (the lease's fence write comes before the upload).
fn the_compare_and_swap(hold: Hold) -> Trap {
    Trap {
        method: "PUT",
        path_contains: "/_index/".to_owned(),
        armed_by: "/data/t/m/".to_owned(),
        hold,
        later_ones_wait: false,
    }
}

#[test]
fn a_commit_whose_writer_was_killed_before_hearing_it_landed_is_pulled() {
    let reader = Project::new(Backend::S3, "");
    put(&reader, "t/m", "f.txt", "r0");
    pull(&reader);
    pull(&reader);

    // The server applies the compare-and-swap; the writer is killed before
    // the answer reaches it: a commit nobody acknowledged, in the store.
    let (writer, proxy) = trapped_clone(&reader, the_compare_and_swap(Hold::AfterServer));
    put_killed_at_the_trap(&writer, &proxy, "t/m", "landed, unacknowledged");

    let pulled = pull(&reader);
    assert!(
        pulled["summary"]
            .as_str()
            .unwrap()
            .starts_with("1 model changed"),
        "{pulled}"
    );
    assert_eq!(local_file(&reader, "f.txt"), "landed, unacknowledged");
    assert!(remote_changes(&reader).is_empty());
}

#[test]
fn an_announced_commit_that_never_landed_costs_a_read_until_settled_and_hides_nothing() {
    let reader = Project::new(Backend::S3, "");
    put(&reader, "t/m", "f.txt", "r0");
    pull(&reader);
    assert_eq!(pull(&reader)["requests"], 1);

    // Killed after announcing, before its compare-and-swap left.
    let (writer, proxy) = trapped_clone(&reader, the_compare_and_swap(Hold::BeforeServer));
    put_killed_at_the_trap(&writer, &proxy, "t/m", "never committed");
    assert_eq!(reader.keys("_journal/").len(), 2);

    // The entry is pending: its model is read on each pull (a conditional
    // read: nothing changed) until the commit shows or the entry is
    // SETTLE_MS old.
    for _ in 0..2 {
        let pulled = pull(&reader);
        assert_eq!(
            pulled["requests"], 2,
            "a listing and one conditional read: {pulled}"
        );
        assert!(
            pulled["summary"].as_str().unwrap().contains(" (1 read"),
            "{pulled}"
        );
        assert_eq!(pulled["changed"], serde_json::json!([]), "{pulled}");
        assert_eq!(local_file(&reader, "f.txt"), "r0");
    }
    assert!(
        pull(&reader)["summary"]
            .as_str()
            .unwrap()
            .starts_with("0 models changed (1 read"),
        "unchanged since"
    );
    // A pending entry holds back nothing else: another model's commit shows.
    let other = reader.another_clone();
    put(&other, "t/n", "g.txt", "n0");
    pull_saying(&reader, "1 model changed (2 read", "another model's commit");
    assert!(remote_changes(&reader).is_empty());
}

#[test]
fn a_pending_entry_older_than_the_lag_is_listed_again_from_the_middle_of_its_key() {
    for backend in BACKENDS {
        let reader = Project::new(backend, "");
        put(&reader, "t/m", "f.txt", "r0");
        // An announcement two minutes old (beyond the 90 s lag, within the
        // 5 minutes an entry may stay pending) whose commit never showed,
        // there when the first pull (a full check) lists the last 5 minutes.
        let stamped = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64
            - 120_000;
        let planted = format!("_journal/{stamped:013}.{stamped:013}-00000000deadbeef.t%2Fm");
        reader.overwrite_object(&planted, b"");
        pull(&reader);
        for round in 0..2 {
            let pulled = pull(&reader);
            assert_eq!(
                pulled["requests"], 2,
                "{backend:?} round {round}: the listing (start-after the middle of the key) and t/m: {pulled}"
            );
            let progress: serde_json::Value =
                serde_json::from_slice(&std::fs::read(progress_file(&reader)).unwrap()).unwrap();
            let horizon = progress["horizon"].as_str().unwrap();
            assert!(
                horizon < planted.as_str() && planted.starts_with(horizon),
                "{backend:?}: {horizon}"
            );
        }
    }
}

#[test]
fn a_commit_missing_from_the_journal_is_found_by_the_full_check() {
    for backend in BACKENDS {
        let reader = Project::new(backend, "");
        let writer = reader.another_clone();
        put(&reader, "t/m", "f.txt", "r0");
        pull(&reader);
        // A commit whose entry is gone (as if its writer never announced).
        put(&writer, "t/m", "f.txt", "unannounced");
        let entries = reader.keys("_journal/");
        reader.delete_object(entries.last().unwrap());

        pull(&reader);
        assert_eq!(
            local_file(&reader, "f.txt"),
            "r0",
            "{backend:?}: not in the journal"
        );
        assert_eq!(remote_changes(&reader), ["t/m"], "{backend:?}");

        // The full check is due (as it is every ten minutes): it finds it.
        let path = progress_file(&reader);
        let mut progress: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        progress["full_check_ms"] = 0.into();
        std::fs::write(&path, progress.to_string()).unwrap();
        let pulled = pull(&reader);
        assert!(
            pulled["summary"]
                .as_str()
                .unwrap()
                .starts_with("1 of 1 model changed"),
            "{backend:?}: {pulled}"
        );
        assert_eq!(local_file(&reader, "f.txt"), "unannounced", "{backend:?}");
        assert!(remote_changes(&reader).is_empty(), "{backend:?}");
    }
}

#[test]
fn a_datastore_of_layout_1_keeps_working_without_a_journal() {
    let reader = Project::new(Backend::Dir, "");
    let meta = String::from_utf8(reader.read_object("_meta/datastore.json")).unwrap();
    assert!(meta.contains("\"layout\": 2"), "{meta}");
    reader.overwrite_object(
        "_meta/datastore.json",
        meta.replace("\"layout\": 2", "\"layout\": 1").as_bytes(),
    );
    let writer = reader.another_clone();
    put(&writer, "t/m", "f.txt", "w0");
    assert!(
        reader.keys("_journal/").is_empty(),
        "no announcement in layout 1"
    );
    for _ in 0..2 {
        let pulled = pull(&reader);
        assert!(
            pulled["summary"]
                .as_str()
                .unwrap()
                .contains(" of 1 model changed"),
            "every pull lists the partitions: {pulled}"
        );
    }
    assert_eq!(local_file(&reader, "f.txt"), "w0");
    assert!(!progress_file(&reader).exists());
}

#[test]
fn gc_prunes_journal_entries_no_reader_lists_any_more() {
    let project = Project::new(Backend::Dir, "");
    put(&project, "t/m", "f.txt", "a");
    let ancient = "_journal/0000000000001.0000000000001-00.t%2Fm";
    project.overwrite_object(ancient, b"");
    assert_eq!(project.keys("_journal/").len(), 2);
    project.ok(&["-q", "datastore", "gc", "--keep", "10"]);
    let left = project.keys("_journal/");
    assert_eq!(left.len(), 1, "{left:?}");
    assert_ne!(left[0], ancient);
}

#[test]
fn a_commit_without_entries_followed_by_another_is_settled_by_the_pull_that_reads_both() {
    // A gc's expiry adds no entry of its own version, and the next commit
    // replaces the partition's last commit: a reader that reads the two at
    // once must still see that the gc's commit landed, or it would read the
    // model again on every pull until the entry is SETTLE_MS (5 min) old.
    let reader = Project::new(Backend::S3, "");
    let writer = reader.another_clone();
    put(&reader, "t/m", "f.txt", "r0");
    pull(&reader);
    assert_noop_pull(&reader, "before");
    put(&writer, "t/m", "f.txt", "w1");
    let before = reader.keys("_journal/").len();
    writer.ok(&["-q", "datastore", "gc", "--keep", "1"]);
    assert_eq!(
        reader.keys("_journal/").len(),
        before + 1,
        "the gc's expiry is a commit, announced"
    );
    put(&writer, "t/m", "g.txt", "w2");
    pull_saying(&reader, "1 model changed (1 read", "a gc and a write");
    assert_noop_pull(&reader, "after a gc and a write");
}
