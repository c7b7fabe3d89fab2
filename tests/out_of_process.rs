//! Out-of-process execution: extensions run in sandboxed `silt worker`
//! processes give the same answers as in-process, fail the same typed way,
//! are torn down when they stop answering, and are built and started
//! lazily (the bundle by the first out-of-process call, workers reused).

use crate::support;

use std::path::Path;

use silt::runtime::Runtime;
use std::sync::Arc;
use std::time::{Duration, Instant};

use silt::config::RuntimeConfig;
use silt::runtime::{ExportCall, ExportReply, Grants, RuntimeError, bundle_manifests};
use silt::sandbox::{Driver, Isolation, SandboxConfig};
use silt::worker::WorkerPool;
use support::misbehaving::{hydrate, limits, pool as misbehaving_pool};
use support::project::{Project, combinations};
use support::{component, runtime_with};

const OUT_OF_PROCESS: &str = "[sandbox]\nexecution = \"out-of-process\"\n";

fn sandbox(driver: Driver, pool_size: usize) -> SandboxConfig {
    SandboxConfig {
        driver: Some(driver),
        isolation: Isolation::Strict,
        pool_size,
        ..SandboxConfig::default()
    }
}

/// The compiled artifacts in the cache directory `cache`.
fn artifacts(cache: &Path) -> Vec<std::path::PathBuf> {
    std::fs::read_dir(cache)
        .map(|dir| {
            dir.flatten()
                .map(|entry| entry.path())
                .filter(|path| path.extension().is_some_and(|ext| ext == "cwasm"))
                .collect()
        })
        .unwrap_or_default()
}

/// The misbehaving component's pool with `pool_size` idle workers, its
/// runtime and its artifact cache (a temporary directory).
fn native_fixture(deadline_ms: u64, pool_size: usize) -> (tempfile::TempDir, Runtime, WorkerPool) {
    let cache = tempfile::tempdir().unwrap();
    let config = limits(deadline_ms);
    let runtime = runtime_with(cache.path(), config.clone());
    let pool = misbehaving_pool(
        cache.path(),
        &config,
        sandbox(Driver::Native, pool_size),
        Grants::default(),
    );
    (cache, runtime, pool)
}

#[tokio::test]
async fn misbehaving_guests_get_the_same_answers_in_and_out_of_process() {
    support::misbehaving::assert_answers_as_in_process(sandbox(Driver::Native, 2)).await;
}

#[tokio::test]
async fn the_os_memory_limit_kills_a_worker_and_the_next_call_works() {
    let cache = tempfile::tempdir().unwrap();
    // The wasm limit (256 MiB) is above the worker's OS limit (48 MiB): the
    // cgroup, not wasmtime, stops the guest.
    let config = RuntimeConfig {
        memory_limit_mib: 256,
        ..limits(10_000)
    };
    let mut sandbox = sandbox(Driver::Native, 1);
    sandbox.memory_limit_mib = Some(48);
    let pool = misbehaving_pool(cache.path(), &config, sandbox, Grants::default());
    let runtime = runtime_with(cache.path(), config.clone());
    let err = pool.execute(&runtime, hydrate("alloc")).await.unwrap_err();
    assert!(
        matches!(
            err,
            RuntimeError::WorkerMemoryLimitExceeded { limit_mib: 48, .. }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("48 MiB OS memory limit"), "{err}");
    assert!(
        err.to_string().contains("sandbox.memory_limit_mib"),
        "{err}"
    );
    let reply = pool.execute(&runtime, hydrate("env")).await.unwrap();
    assert!(
        matches!(reply, ExportReply::HydrateFile(Ok(_))),
        "{reply:?}"
    );
}

#[tokio::test]
async fn a_worker_blocked_past_its_deadline_is_torn_down() {
    let (_cache, runtime, pool) = native_fixture(400, 1);
    // Warm: the bundle and a worker exist, so the timing below is the call's.
    pool.execute(&runtime, ExportCall::Describe {})
        .await
        .unwrap();
    let started = Instant::now();
    // A guest asleep in a host call: the worker's epoch deadline cannot
    // stop it; the host's watchdog must.
    let err = pool
        .execute(&runtime, hydrate("sleep:60000"))
        .await
        .unwrap_err();
    let took = started.elapsed();
    assert!(
        matches!(
            err,
            RuntimeError::DeadlineExceeded {
                deadline_ms: 400,
                ..
            }
        ),
        "{err}"
    );
    assert!(took < Duration::from_secs(10), "torn down after {took:?}");
    let reply = pool
        .execute(&runtime, ExportCall::Describe {})
        .await
        .unwrap();
    assert!(matches!(reply, ExportReply::Describe(_)));
    assert_eq!(pool.workers_started(), 2, "the stuck worker was replaced");
}

#[tokio::test]
async fn the_bundle_is_built_by_the_first_execution_and_idle_workers_are_reused() {
    let (cache, runtime, pool) = native_fixture(5_000, 1);
    let config = limits(5_000);
    let bundles = || {
        artifacts(cache.path())
            .iter()
            .filter(|artifact| !bundle_manifests(artifact).is_empty())
            .count()
    };
    assert!(
        artifacts(cache.path()).is_empty(),
        "creating a pool compiles nothing"
    );
    for _ in 0..5 {
        pool.execute(&runtime, ExportCall::Describe {})
            .await
            .unwrap();
    }
    assert_eq!(bundles(), 1);
    assert_eq!(pool.workers_started(), 1, "one worker served every call");

    // With no pool, each call gets a fresh worker.
    let unpooled = misbehaving_pool(
        cache.path(),
        &config,
        sandbox(Driver::Native, 0),
        Grants::default(),
    );
    for _ in 0..3 {
        unpooled
            .execute(&runtime, ExportCall::Describe {})
            .await
            .unwrap();
    }
    assert_eq!(unpooled.workers_started(), 3);

    // A failed call kills its worker: the next call starts another.
    let _ = pool.execute(&runtime, hydrate("trap")).await.unwrap_err();
    pool.execute(&runtime, ExportCall::Describe {})
        .await
        .unwrap();
    assert_eq!(pool.workers_started(), 2);
}

/// Waits (20 s at most) until `pool` has started `count` workers.
async fn until_started(pool: &WorkerPool, count: u64) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while pool.workers_started() < count && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(pool.workers_started(), count);
}

/// A worker reserved for one caller (a lease set's renewals) is started
/// ahead of its calls, once: a call that finds the start under way takes
/// an idle pooled worker rather than wait for it; with none idle, a call
/// that gave up while it was starting leaves the start to finish for the
/// next call, and a call on it while the pooled worker is busy with a long
/// call starts no worker. A failed call's worker is replaced at once, in
/// the background. (One thread: the test decides when the start runs.)
#[tokio::test]
async fn a_reserved_worker_is_started_ahead_once_and_replaced_after_a_failure() {
    let (_cache, runtime, pool) = native_fixture(10_000, 1);
    let pool = Arc::new(pool);
    let reserved = pool.reserve(1).expect("a pool keeps workers");
    // No call has built the bundle: nothing starts (the caller never
    // waits for a compile).
    // (`start_reserved` decides at once, and without a bundle spawns none.)
    pool.start_reserved(&reserved);
    assert_eq!(pool.workers_started(), 0);
    pool.execute(&runtime, ExportCall::Describe {})
        .await
        .unwrap();
    assert_eq!(pool.workers_started(), 1, "the pooled worker, idle now");
    // Started ahead, with no call.
    pool.start_reserved(&reserved);
    until_started(&pool, 2).await;
    // A call that finds its slot's start under way and a pooled worker
    // idle takes the idle one, and the start goes on. (The start is only
    // spawned here: on one thread, nothing runs it before the call.)
    let third = pool.reserve(1).expect("a pool keeps workers");
    pool.start_reserved(&third);
    let (reply, idle_during_the_call) = tokio::join!(
        pool.execute_reserved(&runtime, &third, hydrate("sleep:300")),
        async {
            tokio::time::sleep(Duration::from_millis(150)).await;
            pool.idle_workers()
        }
    );
    reply.unwrap();
    assert_eq!(
        idle_during_the_call, 0,
        "the call waited for the start while the pooled worker sat idle"
    );
    assert_eq!(pool.idle_workers(), 1, "the pooled worker went back");
    until_started(&pool, 3).await;
    third.settle(Duration::from_secs(10)).await;
    // Another reservation, and a call on it that gives up as soon as its
    // worker's start is under way (the process spawned, not yet ready),
    // while the pooled worker is in a long call.
    let other = pool.reserve(1).expect("a pool keeps workers");
    let (long, ()) = tokio::join!(pool.execute(&runtime, hydrate("sleep:1500")), async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(
            pool.idle_workers(),
            0,
            "the long call holds the pooled worker"
        );
        pool.start_reserved(&other);
        {
            let impatient = pool.execute_reserved(&runtime, &other, ExportCall::Describe {});
            tokio::pin!(impatient);
            while pool.workers_started() == 3 {
                tokio::select! {
                    biased;
                    _ = &mut impatient => panic!("answered before its worker started"),
                    () = tokio::task::yield_now() => {}
                }
            }
        }
        pool.execute_reserved(&runtime, &other, ExportCall::Describe {})
            .await
            .unwrap();
    });
    long.unwrap();
    assert_eq!(
        pool.workers_started(),
        4,
        "the start the impatient call left went on and served the next"
    );
    other.settle(Duration::from_secs(10)).await;
    let (long, quick) = tokio::join!(pool.execute(&runtime, hydrate("sleep:1500")), async {
        // The long call holds the pooled worker by now.
        tokio::time::sleep(Duration::from_millis(300)).await;
        pool.execute_reserved(&runtime, &reserved, ExportCall::Describe {})
            .await
    });
    long.unwrap();
    assert!(matches!(quick.unwrap(), ExportReply::Describe(_)));
    assert_eq!(
        pool.workers_started(),
        4,
        "the pooled worker took the long call, the reserved one the quick"
    );
    // From here the pool keeps no idle worker (a failed call's worker is
    // killed), so the slot's own worker serves each call below, whether
    // its start has finished or not.
    let _ = pool.execute(&runtime, hydrate("trap")).await.unwrap_err();
    assert_eq!(pool.idle_workers(), 0);
    assert_eq!(pool.workers_started(), 4, "the idle pooled worker took it");
    // A failed call kills its worker, and its successor starts right away.
    let _ = pool
        .execute_reserved(&runtime, &reserved, hydrate("trap"))
        .await
        .unwrap_err();
    // The successor starts unasked.
    until_started(&pool, 5).await;
    pool.execute_reserved(&runtime, &reserved, ExportCall::Describe {})
        .await
        .unwrap();
    assert_eq!(pool.workers_started(), 5);
    // So does a call dropped mid-call (a renewal's timeout).
    let dropped = tokio::time::timeout(
        Duration::from_millis(300),
        pool.execute_reserved(&runtime, &reserved, hydrate("sleep:5000")),
    )
    .await;
    assert!(dropped.is_err(), "the call was not dropped");
    until_started(&pool, 6).await;
    pool.execute_reserved(&runtime, &reserved, ExportCall::Describe {})
        .await
        .unwrap();
    assert_eq!(pool.workers_started(), 6);
    // Once the caller is ending, nothing starts: not even a successor.
    reserved.close();
    let _ = pool
        .execute_reserved(&runtime, &reserved, hydrate("trap"))
        .await
        .unwrap_err();
    // Settling waits for every start under way: a successor begun by the
    // failed call would be counted by then.
    reserved.settle(Duration::from_secs(10)).await;
    assert_eq!(
        pool.workers_started(),
        6,
        "a closed reservation started one"
    );
    // With no pool, nothing is kept: every call has a fresh worker.
    let (_cache, _runtime, unpooled) = native_fixture(10_000, 0);
    assert!(unpooled.reserve(1).is_none());
}

/// A reserved slot with no worker takes an idle pooled one. While every
/// reserved worker is in a call, another call takes an idle pooled
/// worker, or else waits for a reserved one: it never starts a worker on
/// its own deadline.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_finding_the_reserved_workers_busy_never_starts_one() {
    let (_cache, runtime, pool) = native_fixture(10_000, 1);
    let pool = Arc::new(pool);
    pool.execute(&runtime, ExportCall::Describe {})
        .await
        .unwrap();
    let reserved = pool.reserve(1).expect("a pool keeps workers");
    pool.execute_reserved(&runtime, &reserved, ExportCall::Describe {})
        .await
        .unwrap();
    assert_eq!(pool.workers_started(), 1, "the idle pooled worker taken in");
    // A slow call on the reserved worker and, 200 ms in, a quick one:
    // whether the quick one ended first. (Slow enough that a quick call on
    // an idle worker ends first however loaded the machine.)
    let quick_ended_first = || async {
        let (slow, quick) = tokio::join!(
            async {
                let reply = pool
                    .execute_reserved(&runtime, &reserved, hydrate("sleep:3000"))
                    .await;
                (reply, Instant::now())
            },
            async {
                tokio::time::sleep(Duration::from_millis(200)).await;
                let reply = pool
                    .execute_reserved(&runtime, &reserved, ExportCall::Describe {})
                    .await;
                (reply, Instant::now())
            }
        );
        slow.0.unwrap();
        assert!(matches!(quick.0.unwrap(), ExportReply::Describe(_)));
        quick.1 < slow.1
    };
    // No idle pooled worker: the quick call waits for the reserved one.
    assert!(!quick_ended_first().await);
    assert_eq!(
        pool.workers_started(),
        1,
        "the waiting call started nothing"
    );
    // An idle pooled worker: the quick call takes it.
    pool.execute(&runtime, ExportCall::Describe {})
        .await
        .unwrap();
    assert_eq!(pool.workers_started(), 2);
    assert!(quick_ended_first().await);
    assert_eq!(
        pool.workers_started(),
        2,
        "the idle pooled worker served it"
    );
    reserved.settle(Duration::from_secs(10)).await;
}

#[tokio::test]
async fn concurrent_first_executions_share_one_bundle_and_a_failed_build_is_retried() {
    let cache = tempfile::tempdir().unwrap();
    let config = limits(5_000);
    let runtime = Arc::new(runtime_with(cache.path(), config.clone()));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ext.wasm");
    std::fs::write(&path, b"not a component").unwrap();
    let pool = Arc::new(WorkerPool::new(
        "misbehaving",
        &path,
        Grants::default(),
        config.clone(),
        sandbox(Driver::Native, 4),
        cache.path(),
    ));
    let err = pool
        .execute(&runtime, ExportCall::Describe {})
        .await
        .unwrap_err();
    assert!(matches!(err, RuntimeError::Invalid(_)), "{err}");
    assert_eq!(pool.workers_started(), 0);

    std::fs::copy(component("misbehaving"), &path).unwrap();
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let (pool, runtime) = (pool.clone(), runtime.clone());
        tasks.push(tokio::spawn(async move {
            pool.execute(&runtime, ExportCall::Describe {}).await
        }));
    }
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    assert_eq!(
        pool.bundles_built(),
        1,
        "concurrent first calls share one build"
    );
    let artifacts = artifacts(cache.path());
    assert_eq!(artifacts.len(), 1, "{artifacts:?}");
    assert_eq!(bundle_manifests(&artifacts[0]).len(), 1);
}

#[tokio::test]
async fn a_damaged_bundle_is_refused_by_the_worker_with_a_reason() {
    let (cache, runtime, pool) = native_fixture(5_000, 0);
    pool.execute(&runtime, ExportCall::Describe {})
        .await
        .unwrap();
    let artifact = artifacts(cache.path()).pop().unwrap();
    let bytes = std::fs::read(&artifact).unwrap();
    // Replaced by rename, as the cache does: the worker maps whole files.
    let damaged = artifact.with_extension("damaged");
    std::fs::write(&damaged, &bytes[..bytes.len() / 2]).unwrap();
    std::fs::rename(&damaged, &artifact).unwrap();
    let err = pool
        .execute(&runtime, ExportCall::Describe {})
        .await
        .unwrap_err();
    let message = err.to_string();
    assert!(matches!(err, RuntimeError::Worker { .. }), "{message}");
    assert!(message.contains("damaged"), "{message}");
}

#[test]
fn datastore_commands_work_out_of_process_on_both_backends() {
    for (backend, extension) in combinations() {
        let project = Project::with_extension(backend, extension, OUT_OF_PROCESS);
        let v1 = project.write_input("v1", "first\n");
        let v2 = project.write_input("v2", "second\n");
        project.ok(&["data", "put", "vision/detector/m-1", "weights.bin", &v1]);
        project.ok(&["data", "put", "vision/detector/m-1", "weights.bin", &v2]);
        assert_eq!(
            project.ok(&["data", "get", "vision/detector/m-1", "weights.bin"]),
            "second\n"
        );
        let (code, _, stderr) = project.run(&[
            "run",
            "--model",
            "vision/detector/m-1",
            "--",
            "sh",
            "-c",
            "echo third > \"$SILT_MODEL_DIR/weights.bin\"",
        ]);
        assert_eq!(code, 0, "{backend:?} {extension}: {stderr}");
        let history =
            project.json(&["data", "history", "vision/detector/m-1", "weights.bin"])["versions"]
                .clone();
        assert_eq!(history.as_array().unwrap().len(), 3, "{history}");
        project.ok(&["datastore", "gc", "--keep", "1"]);
        project.ok(&["datastore", "sync"]);
        project.ok(&["data", "rm", "vision/detector/m-1", "weights.bin"]);
        project.ok(&["datastore", "verify"]);
        project.assert_no_leases();

        // A second clone reading in-process sees what the workers wrote.
        let clone = project.another_clone();
        clone.ok(&["--execution", "in-process", "datastore", "sync", "--pull"]);
        let (code, _, _) = clone.run(&["data", "get", "vision/detector/m-1", "weights.bin"]);
        assert_ne!(code, 0, "{backend:?} {extension}: the file was removed");
    }
}

#[test]
fn read_only_answers_are_identical_in_and_out_of_process() {
    let project = Project::new(support::project::Backend::Dir, "");
    for (model, name, content) in [
        ("vision/detector/m-1", "weights.bin", "one\n"),
        ("vision/detector/m-1", "eval.json", "{}\n"),
        ("nlp/tagger/t-9", "vocab.txt", "a b c\n"),
    ] {
        let input = project.write_input(name, content);
        project.ok(&["data", "put", model, name, &input]);
    }
    let commands: [&[&str]; 6] = [
        &["--json", "data", "list", "vision/detector/m-1"],
        &[
            "--json",
            "data",
            "history",
            "vision/detector/m-1",
            "weights.bin",
        ],
        &["--json", "datastore", "status"],
        &["--json", "datastore", "verify"],
        &["--json", "datastore", "lock", "status"],
        &["data", "get", "nlp/tagger/t-9", "vocab.txt"],
    ];
    for command in commands {
        let run = |execution: &str| {
            let mut args = vec!["--execution", execution];
            args.extend_from_slice(command);
            project.ok(&args)
        };
        // The first run may index what it had not read yet; compare the second.
        run("in-process");
        assert_eq!(
            run("in-process"),
            run("out-of-process"),
            "silt {command:?} answers differently out of process"
        );
    }
}

#[test]
fn strict_isolation_refuses_a_missing_driver_and_auto_steps_down() {
    let with_sandbox = |sandbox: &str| {
        let project = Project::new(support::project::Backend::Dir, "");
        let config = project.path().join("silt.toml");
        let mut text = std::fs::read_to_string(&config).unwrap();
        text.push_str(sandbox);
        std::fs::write(&config, text).unwrap();
        project
    };
    let strict = with_sandbox(&format!(
        "{OUT_OF_PROCESS}driver = \"container\"\nisolation = \"strict\"\n[sandbox.container]\nruntime = \"/nonexistent/runc\"\n"
    ));
    let input = strict.write_input("w", "x\n");
    let (code, _, stderr) = strict.run(&["data", "put", "vision/detector/m-1", "w.bin", &input]);
    assert_eq!(code, 69, "{stderr}");
    assert!(stderr.contains("silt sandbox check"), "{stderr}");
    assert!(stderr.contains("/nonexistent/runc"), "{stderr}");

    let auto = with_sandbox(&format!(
        "{OUT_OF_PROCESS}driver = \"container\"\n[sandbox.container]\nruntime = \"/nonexistent/runc\"\n"
    ));
    let input = auto.write_input("w", "x\n");
    let (code, _, stderr) = auto.run(&["data", "put", "vision/detector/m-1", "w.bin", &input]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stderr.contains("using the native driver instead"),
        "{stderr}"
    );
}
