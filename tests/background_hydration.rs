//! Background hydration on a real S3-compatible server: killed at random
//! points it leaves no partial file and resumes to completion; a foreground
//! command racing it on the same model is never lost or overwritten; and
//! `background = "after-command"` starts it detached after a command.

use crate::support;

use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use support::project::{Backend, Project};

/// Deterministic content of a file, `size` bytes, so any reader can tell a
/// whole file from a partial or foreign one.
fn content(model: &str, name: &str, size: usize) -> Vec<u8> {
    let pattern = format!("{model}/{name};");
    pattern.bytes().cycle().take(size).collect()
}

/// A datastore whose models hold `files` files of `size` bytes each, each
/// model committed by one `silt run` that copies them in.
fn datastore_with(models: &[&str], files: usize, size: usize) -> Project {
    let writer = Project::new(Backend::S3, "");
    for model in models {
        let staged = writer.path().join("staged").join(model);
        std::fs::create_dir_all(&staged).unwrap();
        for n in 0..files {
            let name = format!("f{n:04}.bin");
            std::fs::write(staged.join(&name), content(model, &name, size)).unwrap();
        }
        let copy = format!("cp \"{}\"/* \"$SILT_MODEL_DIR\"/", staged.display());
        writer.ok(&["-q", "run", "--model", model, "--", "sh", "-c", &copy]);
    }
    writer
}

/// A lazy clone of `writer`'s datastore whose hydrator moves one file at a
/// time (slow enough to be caught in the middle); `extra` goes in
/// `[datastore]`.
fn lazy_clone(writer: &Project, extra: &str) -> Project {
    let clone = writer.another_clone();
    let config = clone.path().join("silt.toml");
    let text = std::fs::read_to_string(&config).unwrap().replacen(
        "[datastore]\n",
        &format!("[datastore]\nhydration = \"lazy\"\nbackground_concurrency = 1\n{extra}"),
        1,
    );
    std::fs::write(&config, text).unwrap();
    clone.ok(&["-q", "datastore", "setup"]);
    clone
}

/// Checks every file under the working copy that has a real name holds the
/// whole content `expected` gives for it; returns how many there are.
/// Temporary download files (`.<name>.silt-tmp.…`) are not visible files.
fn check_visible_files(
    project: &Project,
    expected: &dyn Fn(&str, &str) -> Vec<u8>,
    allow_temporary: bool,
) -> usize {
    let data = project.path().join(".silt/local/data");
    let mut count = 0;
    let mut stack = vec![data.clone()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries {
            let entry = entry.unwrap();
            let path = entry.path();
            if entry.file_type().unwrap().is_dir() {
                stack.push(path);
                continue;
            }
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.contains(".silt-tmp.") {
                assert!(allow_temporary, "temporary file left: {}", path.display());
                continue;
            }
            let model = dir
                .strip_prefix(&data)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            let actual = std::fs::read(&path).unwrap();
            assert!(
                actual == expected(&model, &name),
                "{} is not the whole committed file ({} bytes)",
                path.display(),
                actual.len()
            );
            count += 1;
        }
    }
    count
}

fn count_files(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter(|e| {
                    let name = e.as_ref().unwrap().file_name();
                    !name.to_string_lossy().contains(".silt-tmp.")
                })
                .count()
        })
        .unwrap_or(0)
}

/// The hydrator, in the foreground of a child process (what `--background`
/// and `after-command` start detached).
fn start_worker(project: &Project) -> Child {
    project
        .silt()
        .args(["datastore", "hydrate", "--worker"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// Waits until `ready` or the child exits; panics after a minute.
fn wait_until(child: &mut Child, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !ready() {
        if child.try_wait().unwrap().is_some() {
            return;
        }
        assert!(Instant::now() < deadline, "timed out");
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// A small xorshift generator: no dependency, seed printed for replays.
struct Random(u64);

impl Random {
    fn seeded() -> Self {
        let seed = std::env::var("SILT_TEST_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_nanos() as u64
                    | 1
            });
        eprintln!("random seed {seed} (SILT_TEST_SEED replays it)");
        Self(seed)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n.max(1)
    }
}

#[test]
fn background_hydration_killed_at_random_points_leaves_no_partial_file_and_resumes() {
    const MODELS: [&str; 6] = ["t/m0", "t/m1", "t/m2", "t/m3", "t/m4", "t/m5"];
    const FILES: usize = 60;
    const SIZE: usize = 48 * 1024;
    let total = MODELS.len() * FILES;
    let writer = datastore_with(&MODELS, FILES, SIZE);
    let clone = lazy_clone(&writer, "");
    let expected = |model: &str, name: &str| content(model, name, SIZE);
    let mut random = Random::seeded();
    let mut present = 0;
    let mut interrupted_midway = 0;
    for round in 0..10 {
        let mut worker = start_worker(&clone);
        if round % 3 == 0 {
            // Any moment, start-up and listing included.
            std::thread::sleep(Duration::from_millis(random.below(400)));
        } else {
            // In the middle of the downloads: once a random number more
            // files have landed.
            let target = present + 1 + random.below((total - present) as u64 / 2) as usize;
            wait_until(&mut worker, || {
                MODELS
                    .iter()
                    .map(|m| count_files(&clone.model_dir(m)))
                    .sum::<usize>()
                    >= target
            });
        }
        let finished = worker.try_wait().unwrap().is_some();
        worker.kill().unwrap();
        worker.wait().unwrap();
        let now = check_visible_files(&clone, &expected, true);
        assert!(now >= present, "round {round}: files disappeared");
        if !finished && now > present && now < total {
            interrupted_midway += 1;
        }
        present = now;
    }
    assert!(
        interrupted_midway >= 3,
        "only {interrupted_midway} rounds were killed in the middle of downloading"
    );

    // Resumed, it completes: everything present and whole, nothing temporary.
    let status = start_worker(&clone).wait().unwrap();
    assert!(status.success());
    assert_eq!(check_visible_files(&clone, &expected, false), total);
    let report = clone.json(&["datastore", "hydrate", "--status"]);
    assert_eq!(report["missing"], 0, "{report}");
    assert_eq!(report["already_present"], total, "{report}");
    assert_eq!(report["background"]["running"], false, "{report}");
    assert_eq!(report["background"]["last"]["phase"], "done", "{report}");
    assert_eq!(report["background"]["last"]["models_done"], MODELS.len());
    let status = clone.json(&["datastore", "status"]);
    assert_eq!(status["local_changes"], serde_json::json!([]), "{status}");
    assert_eq!(status["objects_local"], total, "{status}");
    assert_eq!(status["objects_total"], total, "{status}");
}

#[test]
fn a_foreground_write_racing_background_hydration_is_never_lost() {
    const FILES: usize = 1000;
    const SIZE: usize = 4 * 1024;
    let writer = datastore_with(&["t/hot"], FILES, SIZE);
    let mut random = Random::seeded();
    for round in 0..3 {
        let clone = lazy_clone(&writer, "");
        let mut worker = start_worker(&clone);
        let target = 1 + random.below(200) as usize;
        wait_until(&mut worker, || {
            count_files(&clone.model_dir("t/hot")) >= target
        });
        assert!(
            worker.try_wait().unwrap().is_none(),
            "round {round}: the hydrator finished before the race"
        );
        // The foreground command rewrites every file of the model the
        // hydrator is fetching, and adds one.
        // As large as the files it replaces, so later rounds' hydrators
        // move as slowly as the first's.
        let marker = format!("{:<SIZE$}", format!("round {round}"));
        let script = format!(
            "c='{marker}'; for f in \"$SILT_MODEL_DIR\"/*.bin; do printf '%s' \"$c\" > \"$f\"; done; printf '%s' \"$c\" > \"$SILT_MODEL_DIR/new.txt\""
        );
        let run = clone.json(&["run", "--model", "t/hot", "--", "sh", "-c", &script]);
        assert_eq!(
            run["committed"].as_array().unwrap().len(),
            FILES + 1,
            "{run}"
        );
        assert!(worker.wait().unwrap().success());

        // Nothing of the foreground's work was overwritten, locally...
        let expected = |_: &str, _: &str| marker.clone().into_bytes();
        assert_eq!(check_visible_files(&clone, &expected, false), FILES + 1);
        let status = clone.json(&["datastore", "status"]);
        assert_eq!(status["local_changes"], serde_json::json!([]), "{status}");
        // ...or in the store.
        writer.ok(&["-q", "datastore", "sync", "--pull"]);
        assert_eq!(
            std::fs::read(writer.model_dir("t/hot").join("f0999.bin")).unwrap(),
            marker.as_bytes()
        );
        let state = clone.json(&["datastore", "hydrate", "--status"]);
        let last = &state["background"]["last"];
        assert_eq!(last["phase"], "done", "{state}");
        // The two really overlapped: the hydrator stepped aside for the
        // command, or the command fetched what the hydrator had not.
        assert!(
            last["yielded"].as_u64().unwrap() > 0
                || last["files_fetched"].as_u64().unwrap() < FILES as u64,
            "round {round}: no overlap: {state}"
        );
    }
}

#[test]
fn after_command_starts_a_detached_hydrator_that_fetches_the_rest() {
    const MODELS: [&str; 3] = ["t/a", "t/b", "t/c"];
    let writer = datastore_with(&MODELS, 20, 1024);
    let clone = lazy_clone(&writer, "");
    let config = clone.path().join("silt.toml");
    let text = std::fs::read_to_string(&config).unwrap().replacen(
        "[datastore]\n",
        "[datastore]\nbackground = \"after-command\"\n",
        1,
    );
    std::fs::write(&config, text).unwrap();
    let before = clone.json(&["datastore", "hydrate", "--status"]);
    assert_eq!(before["background"]["running"], false, "{before}");
    assert_eq!(before["background"]["last"], serde_json::Value::Null);
    // The command returns at once; a detached hydrator fetches the rest.
    let run = clone.json(&["run", "--model", "t/a", "--", "true"]);
    assert_eq!(run["exit_code"], 0);
    let deadline = Instant::now() + Duration::from_secs(60);
    let log_path = clone
        .path()
        .join(".silt/local-host/background-hydration.log");
    loop {
        let status = clone.json(&["datastore", "hydrate", "--status"]);
        // The hydrator logs its last line after it let go of its lock.
        let log = std::fs::read_to_string(&log_path).unwrap_or_default();
        if status["missing"] == 0
            && status["background"]["running"] == false
            && log.contains("background hydration finished")
        {
            assert_eq!(status["background"]["last"]["phase"], "done", "{status}");
            break;
        }
        assert!(Instant::now() < deadline, "never finished: {status}\n{log}");
        std::thread::sleep(Duration::from_millis(100));
    }
    let expected = |model: &str, name: &str| content(model, name, 1024);
    assert_eq!(
        check_visible_files(&clone, &expected, false),
        MODELS.len() * 20
    );
}
