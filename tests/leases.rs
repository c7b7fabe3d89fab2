//! Leases between real processes, on both backends: writers of different
//! models never wait for each other, writers of one model take turns and
//! lose nothing, a killed holder's lease is taken over after its TTL, and a
//! paused holder whose lease was taken over cannot commit.

mod support;

use std::process::{Child, Command};
use std::time::{Duration, Instant};

use support::child::{self, finish, wait_for_file};
use support::project::{BACKENDS, Project};

fn spawn(mut command: Command) -> Child {
    child::spawn(&mut command)
}

/// Sends the signal of `name` (`KILL`, `STOP`, …), which must arrive.
fn signal(pid: u32, name: &str) {
    let number = match name {
        "KILL" => libc::SIGKILL,
        "TERM" => libc::SIGTERM,
        "INT" => libc::SIGINT,
        "STOP" => libc::SIGSTOP,
        "CONT" => libc::SIGCONT,
        other => panic!("no signal {other} here"),
    };
    assert!(child::signal(pid, number), "kill -{name} {pid}");
}

/// Starts `silt run --model <model> -- sh -c <script> <ready>` and returns
/// once the script has created `ready` (so the lease is held). The script
/// gets the ready file's path as `$0`.
fn start_holder(project: &Project, model: &str, script: &str) -> (Child, std::path::PathBuf) {
    let ready = project
        .path()
        .join(format!("ready-{}", model.replace('/', "-")));
    let mut command = project.silt();
    command
        .args(["run", "--model", model, "--", "sh", "-c", script])
        .arg(&ready);
    let holder = spawn(command);
    wait_for_file(&ready);
    (holder, ready)
}

/// Starts a holder of `model`'s lease, then kills it with SIGKILL (and its
/// command); returns the dead holder's pid.
fn kill_a_holder_of(project: &Project, model: &str) -> u32 {
    let (mut holder, ready) = start_holder(
        project,
        model,
        "echo $$ > \"$0.tmp\"; mv \"$0.tmp\" \"$0\"; exec sleep 60",
    );
    let sleeper: u32 = std::fs::read_to_string(&ready)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    holder.kill().unwrap();
    holder.wait().unwrap();
    signal(sleeper, "KILL");
    holder.id()
}

#[test]
fn sixteen_writers_on_sixteen_models_never_wait() {
    let _alone = support::one_at_a_time();
    for backend in BACKENDS {
        let project = Project::new(backend, "");
        let inputs = tempfile::tempdir().unwrap();
        let started = Instant::now();
        let writers: Vec<Child> = (0..16)
            .map(|i| {
                let input = inputs.path().join(format!("in-{i}"));
                std::fs::write(&input, format!("model {i}\n")).unwrap();
                let mut command = project.silt();
                command
                    .args([
                        "-v",
                        "data",
                        "put",
                        &format!("fleet/m{i:02}"),
                        "weights.bin",
                    ])
                    .arg(&input);
                spawn(command)
            })
            .collect();
        let results: Vec<_> = writers.into_iter().map(finish).collect();
        let wall = started.elapsed();
        for (i, (code, _, stderr)) in results.iter().enumerate() {
            assert_eq!(*code, 0, "{backend:?} writer {i}: {stderr}");
            assert!(
                !stderr.contains("waiting for the lease"),
                "{backend:?} writer {i} waited although no one else writes its model: {stderr}"
            );
        }
        for i in 0..16 {
            let content = project.ok(&["data", "get", &format!("fleet/m{i:02}"), "weights.bin"]);
            assert_eq!(content, format!("model {i}\n"), "{backend:?}");
        }
        eprintln!("{backend:?}: 16 writers on 16 models finished in {wall:.2?}");
    }
}

#[test]
fn sixteen_writers_on_one_model_take_turns_and_lose_nothing() {
    let _alone = support::one_at_a_time();
    for backend in BACKENDS {
        let project = Project::new(backend, "");
        project.ok(&["-q", "datastore", "setup", "--retain-versions", "20"]);
        let inputs = tempfile::tempdir().unwrap();
        let started = Instant::now();
        // Half put a file of their own; half run a command that appends a
        // line to a shared log. A run that did not see the previous run's
        // commit would drop its line.
        let writers: Vec<Child> = (0..16)
            .map(|i| {
                let mut command = project.silt();
                command.arg("-v");
                if i % 2 == 0 {
                    let input = inputs.path().join(format!("in-{i}"));
                    std::fs::write(&input, format!("writer {i}\n")).unwrap();
                    command
                        .args(["data", "put", "shared/model", &format!("put-{i:02}.txt")])
                        .arg(&input);
                } else {
                    command.args([
                        "run",
                        "--model",
                        "shared/model",
                        "--",
                        "sh",
                        "-c",
                        &format!("echo 'run {i}' >> \"$SILT_MODEL_DIR/log.txt\""),
                    ]);
                }
                spawn(command)
            })
            .collect();
        let results: Vec<_> = writers.into_iter().map(finish).collect();
        let wall = started.elapsed();
        for (i, (code, _, stderr)) in results.iter().enumerate() {
            assert_eq!(*code, 0, "{backend:?} writer {i}: {stderr}");
        }
        // The control for the test above: writers of one model do log their wait.
        assert!(
            results
                .iter()
                .any(|(_, _, stderr)| stderr.contains("waiting for the lease")),
            "{backend:?}: no writer of a shared model reported waiting"
        );
        let log = project.ok(&["data", "get", "shared/model", "log.txt"]);
        let mut lines: Vec<&str> = log.lines().collect();
        lines.sort_unstable();
        let expected: Vec<String> = (0..16)
            .filter(|i| i % 2 == 1)
            .map(|i| format!("run {i}"))
            .collect();
        let mut expected: Vec<&str> = expected.iter().map(String::as_str).collect();
        expected.sort_unstable();
        assert_eq!(lines, expected, "{backend:?}: a run lost another's line");
        let listing = project.json(&["data", "list", "shared/model"])["files"].clone();
        let entries = listing.as_array().unwrap();
        assert_eq!(entries.len(), 9, "{backend:?}: {listing}");
        let versions: u64 = entries
            .iter()
            .map(|e| e["versions"].as_u64().unwrap())
            .sum();
        assert_eq!(
            versions, 16,
            "{backend:?}: the history must hold all 16 writes: {listing}"
        );
        let generations = project.generations("shared/model", "log.txt");
        assert!(
            generations.windows(2).all(|w| w[0] < w[1]),
            "{backend:?}: each writer had its own lease generation: {generations:?}"
        );
        eprintln!("{backend:?}: 16 writers on one model finished in {wall:.2?}");
    }
}

#[test]
fn a_killed_holder_is_taken_over_after_its_ttl() {
    let _alone = support::one_at_a_time();
    let ttl = support::lease_ttl_ms(1500);
    for backend in BACKENDS {
        let project = Project::new(backend, &format!("[locks]\nttl_ms = {ttl}\n"));
        let holder = kill_a_holder_of(&project, "jobs/j1");

        let status =
            project.json(&["datastore", "lock", "status", "--model", "jobs/j1"])["locks"].clone();
        assert_eq!(
            status[0]["pid"].as_u64(),
            Some(u64::from(holder)),
            "{backend:?}: the killed holder's lease is still there: {status}"
        );
        let input = project.path().join("after.txt");
        std::fs::write(&input, "after\n").unwrap();
        project.ok(&[
            "data",
            "put",
            "jobs/j1",
            "after.txt",
            input.to_str().unwrap(),
        ]);
        let history =
            project.json(&["data", "history", "jobs/j1", "after.txt"])["versions"].clone();
        assert_eq!(history.as_array().unwrap().len(), 1, "{backend:?}");
        project.assert_no_leases();
    }
}

#[test]
fn a_paused_holder_whose_lease_was_taken_over_cannot_commit() {
    let _alone = support::one_at_a_time();
    let ttl = support::lease_ttl_ms(1500);
    for backend in BACKENDS {
        let project = Project::new(backend, &format!("[locks]\nttl_ms = {ttl}\n"));
        let (paused, ready) = start_holder(
            &project,
            "jobs/j2",
            // Waits for a gate, not a time: however late the STOP comes,
            // the command has not ended (and `silt run` not committed).
            // (At most 2 minutes: a test that failed before the gate
            // leaves no shell polling for good.)
            "echo paused > \"$SILT_MODEL_DIR/a.txt\"; touch \"$0\"; i=0; \
             while [ ! -e \"$0.go\" ] && [ $i -lt 2400 ]; do sleep 0.05; i=$((i+1)); done",
        );
        signal(paused.id(), "STOP");
        // The next writer waits until the paused holder's lease is stale
        // (a TTL after its last renewal), then takes it over.
        let input = project.path().join("b.txt");
        std::fs::write(&input, "taker\n").unwrap();
        project.ok(&["data", "put", "jobs/j2", "b.txt", input.to_str().unwrap()]);
        let mut gate = ready.into_os_string();
        gate.push(".go");
        std::fs::write(gate, b"").unwrap();
        signal(paused.id(), "CONT");
        let (code, _, stderr) = finish(paused);
        assert_eq!(code, 75, "{backend:?}: {stderr}");
        assert!(stderr.contains("lock lost"), "{backend:?}: {stderr}");

        let names = project.file_names("jobs/j2");
        assert_eq!(names, ["b.txt"], "{backend:?}: the paused holder committed");
        assert_eq!(project.ok(&["data", "get", "jobs/j2", "b.txt"]), "taker\n");
        // Its work is not lost: it stays in the working copy.
        let kept = std::fs::read_to_string(project.model_dir("jobs/j2").join("a.txt")).unwrap();
        assert_eq!(kept, "paused\n");
    }
}

#[test]
fn force_release_removes_a_lease_and_the_next_writer_proceeds() {
    let _alone = support::one_at_a_time();
    for backend in BACKENDS {
        let project = Project::new(backend, "");
        let holder = kill_a_holder_of(&project, "jobs/j3");

        // Without --force, nothing happens.
        let (code, _, stderr) =
            project.run(&["datastore", "lock", "release", "--model", "jobs/j3"]);
        assert_eq!(
            code, 2,
            "{backend:?}: release without --force must be refused"
        );
        assert!(stderr.contains("--force"), "{backend:?}: {stderr}");
        let (code, _, stderr) = {
            let mut command = project.silt();
            command
                .env("SILT_LOCK_MAX_WAIT", "0.3")
                .args(["data", "rm", "jobs/j3", "nothing"]);
            support::output(&mut command)
        };
        assert_eq!(code, 75, "{backend:?}: {stderr}");
        assert!(
            stderr.contains(&format!("pid {holder}")) && stderr.contains("--model jobs/j3"),
            "{backend:?}: the timeout must name the holder and the way out: {stderr}"
        );
        let released = project.ok(&[
            "datastore",
            "lock",
            "release",
            "--force",
            "--model",
            "jobs/j3",
        ]);
        assert!(released.contains("released"), "{released}");
        project.assert_no_leases();
    }
}

#[test]
fn sigterm_stops_the_command_and_releases_the_lease() {
    let _alone = support::one_at_a_time();
    let project = Project::new(support::project::Backend::Dir, "");
    let (holder, _) = start_holder(&project, "jobs/j4", "touch \"$0\"; exec sleep 60");
    signal(holder.id(), "TERM");
    let (code, _, stderr) = finish(holder);
    assert_eq!(code, 143, "{stderr}");
    assert!(stderr.contains("SIGTERM"), "{stderr}");
    project.assert_no_leases();
}

/// Model and namespace leases exclude each other, through the extension's
/// lock protocol (the CLI takes only model leases).
#[test]
fn namespace_and_model_leases_exclude_each_other() {
    let _alone = support::one_at_a_time();
    use silt::datastore::{Datastore, DatastoreError};
    use silt::runtime::bindings::silt::datastore::types::{LockScope, ModelRef};

    let project = Project::new(support::project::Backend::Dir, "");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let locations = silt::locations::Locations::discover(project.path()).unwrap();
        let open = || async {
            let store =
                silt::store::root::open(&locations.config.datastore.root(&locations.store_dir))
                    .unwrap();
            let component = support::component("partitioned-datastore");
            Datastore::open_with_store(&locations, &component, store, None)
                .await
                .unwrap()
        };
        // Two holders, as two processes would be.
        let structural = open().await;
        let mut other_process = structural.holder().clone();
        other_process.pid += 1;
        let writer = open().await.with_holder(other_process);
        let model = LockScope::Model(ModelRef {
            model_type: "t".into(),
            model_id: "m".into(),
        });
        let held = |result: anyhow::Result<_>| {
            matches!(
                result
                    .err()
                    .and_then(|e| e.downcast::<DatastoreError>().ok()),
                Some(DatastoreError::LockHeld { .. })
            )
        };
        let namespace = structural
            .acquire(&LockScope::Namespace, 30_000)
            .await
            .unwrap();
        assert!(
            held(writer.acquire(&model, 30_000).await),
            "a model lease while the namespace is held"
        );
        structural.release(&namespace).await.unwrap();

        let lease = writer.acquire(&model, 30_000).await.unwrap();
        assert!(
            held(structural.acquire(&LockScope::Namespace, 30_000).await),
            "the namespace while a model is held"
        );
        // The waiting namespace claim keeps new model leases out (no starvation) ...
        let other = LockScope::Model(ModelRef {
            model_type: "t".into(),
            model_id: "other".into(),
        });
        assert!(
            held(writer.acquire(&other, 30_000).await),
            "a new model lease while the namespace waits"
        );
        // ... and once the model holder leaves, the namespace gets its turn.
        writer.release(&lease).await.unwrap();
        let namespace = structural
            .acquire(&LockScope::Namespace, 30_000)
            .await
            .unwrap();
        structural.release(&namespace).await.unwrap();
        writer.acquire(&other, 30_000).await.unwrap();
    });
}

#[test]
fn renewal_keeps_a_long_command_lease_alive_past_many_ttls() {
    let _alone = support::one_at_a_time();
    // Longer under containers, where a renewal may wait for a worker's
    // container to start; the command always outlives more than three.
    let ttl = support::lease_ttl_ms(1500);
    let script = format!(
        "sleep {:.1}; echo done > \"$SILT_MODEL_DIR/result.txt\"",
        ttl as f64 * 3.4 / 1000.0
    );
    for backend in BACKENDS {
        let project = Project::new(backend, &format!("[locks]\nttl_ms = {ttl}\n"));
        project.ok(&["run", "--model", "jobs/long", "--", "sh", "-c", &script]);
        assert_eq!(
            project.ok(&["data", "get", "jobs/long", "result.txt"]),
            "done\n"
        );
        let history =
            project.json(&["data", "history", "jobs/long", "result.txt"])["versions"].clone();
        assert_eq!(history.as_array().unwrap().len(), 1, "{backend:?}");
    }
}

/// An upload that outlasts most of the lease's TTL does not lose the lease:
/// the host renews it meanwhile, and the commit asks the store, not the
/// copy of the lease the call started with. (Both extensions.)
#[test]
fn a_commit_after_a_long_upload_keeps_its_renewed_lease() {
    let _alone = support::one_at_a_time();
    use std::sync::Arc;

    use silt::datastore::{LeasePolicy, LeaseSet, Signals};
    use silt::runtime::bindings::silt::datastore::types::{LockScope, ModelRef};
    use silt::store::MemoryStore;

    for extension in support::project::EXTENSIONS {
        // A renewal has a third of the TTL to answer (its timeout): 200 ms
        // at a 600 ms TTL was thin on a loaded machine; the upload scales
        // with the TTL.
        let ttl = support::lease_ttl_ms(1500);
        let project = Project::with_extension(
            support::project::Backend::Dir,
            extension,
            &format!("[locks]\nttl_ms = {ttl}\n"),
        );
        let runtime = tokio::runtime::Runtime::new().unwrap();
        runtime.block_on(async {
            let locations = silt::locations::Locations::discover(project.path()).unwrap();
            // Each upload takes 2.5 TTLs (3.75 s in process).
            let store = Arc::new(support::slow_store::SlowStore(
                MemoryStore::new(),
                support::slow_store::Slow::Transfers(Duration::from_millis(ttl * 5 / 2)),
            ));
            let datastore = open_set_up(&locations, extension, store).await;
            let staged = ".silt/big-input";
            std::fs::write(locations.local_dir.join(staged), b"large enough").unwrap();
            let model = ModelRef {
                model_type: "t".into(),
                model_id: "big".into(),
            };
            let policy = LeasePolicy::from_config(&locations.config.locks).unwrap();
            let mut signals = Signals::listen().unwrap();
            let leases = LeaseSet::acquire(
                datastore.clone(),
                vec![LockScope::Model(model.clone())],
                &policy,
                &mut signals,
            )
            .await
            .unwrap();
            let put = datastore
                .put_file(
                    &model,
                    "weights.bin",
                    staged,
                    &silt::runtime::bindings::silt::datastore::types::Base::Any,
                    &silt::runtime::bindings::silt::datastore::types::Committer::Leased(
                        leases.leases()[0].clone(),
                    ),
                )
                .await;
            leases.release().await;
            let version = put.unwrap_or_else(|err| panic!("{extension}: {err:#}"));
            assert_eq!(version.size, 12, "{extension}");
            let files = datastore.list_files(&model).await.unwrap();
            assert_eq!(files.len(), 1, "{extension}");
        });
    }
}

/// A `silt run` whose command writes 80 MB keeps its 2 s lease while the
/// output is hashed and uploaded (renewal never waits behind that work).
#[test]
fn a_large_run_output_commits_under_a_short_ttl() {
    let _alone = support::one_at_a_time();
    a_large_run_output_commits_under_a_2_s_ttl("");
}

/// The same in podman's and docker's containers, whose workers start
/// slowest: a renewal that had to start one behind the busy commit's
/// worker would lose the lease (the reserved worker is the cure).
#[test]
fn a_large_run_output_commits_under_a_short_ttl_in_containers() {
    let _alone = support::one_at_a_time();
    let _containers = support::CONTAINER_TESTS
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    for variable in ["SILT_PODMAN", "SILT_DOCKER"] {
        let Some(runtime) = support::containers::ContainerRuntime::from_env(variable) else {
            continue;
        };
        a_large_run_output_commits_under_a_2_s_ttl(&runtime.settings());
    }
}

/// `silt run` writing 80 MB under a 2 s TTL, with `settings` in
/// `silt.toml`. 2 s in containers too: a renewal's worker starts in a few
/// hundred ms, and a longer TTL would hide renewal waiting behind the
/// hashing and upload.
fn a_large_run_output_commits_under_a_2_s_ttl(settings: &str) {
    let project = Project::new(
        support::project::Backend::S3,
        &format!("{settings}[locks]\nttl_ms = 2000\n"),
    );
    let (code, _, stderr) = project.run(&[
        "run",
        "--model",
        "t/big",
        "--",
        "sh",
        "-c",
        "head -c 80000000 /dev/urandom > \"$SILT_MODEL_DIR/one.bin\"",
    ]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(project.file_names("t/big"), ["one.bin"]);
    project.assert_no_leases();
}

/// A `silt run` whose lease is taken from it (here: released by force)
/// notices at its next renewal (every TTL/3) and ends its command and
/// itself within a second of noticing: exit 75 within TTL/3 + 1 s of the
/// release (plus 2 s for the renewal's own requests and a loaded 2-core
/// machine), long before its 60 s command would end.
#[test]
fn a_run_exits_within_a_second_of_noticing_its_lease_is_lost() {
    let _alone = support::one_at_a_time();
    let ttl_ms = 3000u64;
    for backend in BACKENDS {
        let project = Project::new(backend, &format!("[locks]\nttl_ms = {ttl_ms}\n"));
        let (holder, _) = start_holder(&project, "jobs/lost", "touch \"$0\"; exec sleep 60");
        project.ok(&[
            "datastore",
            "lock",
            "release",
            "--force",
            "--model",
            "jobs/lost",
        ]);
        let released = Instant::now();
        let (code, _, stderr) = finish(holder);
        let took = released.elapsed();
        assert_eq!(code, 75, "{backend:?}: {stderr}");
        assert!(stderr.contains("lock lost"), "{backend:?}: {stderr}");
        // With containers, the exit also removes the command's workers
        // (`docker rm --force` each, seconds on a loaded machine): the
        // command's end is what is bounded, not the runtime's clean-up.
        let teardown = if support::in_containers() { 5000 } else { 0 };
        let bound = Duration::from_millis(ttl_ms / 3 + 1000 + 2000 + teardown);
        assert!(
            took < bound,
            "{backend:?}: exited {took:?} after its lease was released (bound {bound:?})"
        );
    }
}

/// `extension`'s datastore at `locations`, opened on `store` and set up.
async fn open_set_up(
    locations: &silt::locations::Locations,
    extension: &str,
    store: std::sync::Arc<dyn silt::store::ObjectStore>,
) -> std::sync::Arc<silt::datastore::Datastore> {
    use silt::runtime::bindings::exports::silt::datastore::sync::SetupOptions;

    let component = support::component(extension);
    let datastore = std::sync::Arc::new(
        silt::datastore::Datastore::open_with_store(locations, &component, store, None)
            .await
            .unwrap(),
    );
    datastore
        .setup(SetupOptions {
            create: true,
            retain_versions: None,
        })
        .await
        .unwrap();
    datastore
}

/// A project on the partitioned datastore with a lease TTL of `ttl_ms`,
/// its datastore opened on `store` and set up, its calls run in this
/// process (the host's scheduling of renewals is what this helper's users
/// test, not workers), with leases held on `scopes`.
async fn leases_in_process(
    ttl_ms: u64,
    store: std::sync::Arc<dyn silt::store::ObjectStore>,
    scopes: Vec<silt::runtime::bindings::silt::datastore::types::LockScope>,
) -> (
    Project,
    std::sync::Arc<silt::datastore::Datastore>,
    silt::datastore::LeaseSet,
) {
    use silt::datastore::{LeasePolicy, LeaseSet, Signals};

    let project = Project::with_extension(
        support::project::Backend::Dir,
        "partitioned-datastore",
        &format!("[locks]\nttl_ms = {ttl_ms}\n"),
    );
    let mut locations = silt::locations::Locations::discover(project.path()).unwrap();
    locations
        .config
        .sandbox
        .force_execution(silt::sandbox::Execution::InProcess);
    let datastore = open_set_up(&locations, "partitioned-datastore", store).await;
    let policy = LeasePolicy::from_config(&locations.config.locks).unwrap();
    let mut signals = Signals::listen().unwrap();
    let leases = LeaseSet::acquire(datastore.clone(), scopes, &policy, &mut signals)
        .await
        .unwrap();
    (project, datastore, leases)
}

/// Renewal rounds begin a third of the TTL after the previous round
/// *began*: on a store that takes most of that third to answer each
/// renewal, the lease is kept round after round. (With the pause counted
/// from a round's end, two such rounds in a row outlasted the 0.75 TTL a
/// lease may go unrenewed: here 2 × 1.4 s + 2 s from the first round's
/// start against 4.5 s.)
#[test]
fn slow_renewals_one_after_another_keep_the_lease() {
    let _alone = support::one_at_a_time();
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};

    use silt::runtime::bindings::silt::datastore::types::{LockScope, ModelRef};
    use silt::store::MemoryStore;

    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let delay_ms = Arc::new(AtomicU64::new(0));
        let store = support::slow_store::SlowStore(
            MemoryStore::new(),
            support::slow_store::Slow::LockWrites(delay_ms.clone()),
        );
        let scopes = vec![LockScope::Model(ModelRef {
            model_type: "t".into(),
            model_id: "m".into(),
        })];
        let (_project, _datastore, leases) = leases_in_process(6000, Arc::new(store), scopes).await;
        // Each renewal now takes 1.4 s of its 2 s.
        delay_ms.store(1400, Ordering::Relaxed);
        // Past the point where the second round ended too late before.
        tokio::select! {
            lost = leases.lost() => panic!("the lease was lost: {lost}"),
            () = tokio::time::sleep(Duration::from_millis(7500)) => {}
        }
        leases.check("commit").unwrap();
        delay_ms.store(0, Ordering::Relaxed);
        leases.release().await;
    });
}

/// A command on many models keeps every lease: the host renews them
/// together, so a round of renewals stays well within the TTL even when
/// each request is slow (one after another, 120 leases × 2 requests × 6 ms
/// would take 1.4 s, past the 1.1 s a lease may go unrenewed here).
#[test]
fn many_leases_on_a_slow_store_are_all_kept_alive() {
    let _alone = support::one_at_a_time();
    use std::sync::Arc;

    use silt::runtime::bindings::silt::datastore::types::{LockScope, ModelRef};
    use silt::store::MemoryStore;

    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        // Out of process each renewal would also be a worker call (a pool
        // of 2, more started on demand), which does not fit 120 renewals
        // in 1.1 s: in process, as every test of this helper.
        let store = support::slow_store::SlowStore(
            MemoryStore::new(),
            support::slow_store::Slow::Requests(Duration::from_millis(6)),
        );
        let scopes = (0..120)
            .map(|i| {
                LockScope::Model(ModelRef {
                    model_type: "t".into(),
                    model_id: format!("m{i:03}"),
                })
            })
            .collect();
        let (_project, _datastore, leases) = leases_in_process(1500, Arc::new(store), scopes).await;
        // Three TTLs: several rounds of renewals.
        tokio::select! {
            lost = leases.lost() => panic!("a lease was lost: {lost}"),
            () = tokio::time::sleep(Duration::from_millis(4500)) => {}
        }
        leases.check("commit").unwrap();
        leases.release().await;
    });
}
