//! Execution of real components: calls work, and a misbehaving guest (trap,
//! infinite loop, memory bomb, escape attempts, floods of output) becomes a
//! typed error naming the extension and the function, while the host
//! carries on.

use crate::support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use silt::capabilities::Settings;
use silt::capabilities::progress::LogProgress;
use silt::config::RuntimeConfig;
use silt::runtime::bindings::ExtensionError;
use silt::runtime::bindings::exports::silt::datastore::sync::{SetupOptions, SyncOptions};
use silt::runtime::bindings::silt::datastore::types::{LocalEdits, Scope};
use silt::runtime::{ExtensionInstance, Grants, Origin, Runtime, RuntimeError};
use silt::store::{MemoryStore, ObjectKey, ObjectStore};
use support::{component, runtime, runtime_with};

async fn misbehaving(runtime: &Runtime, grants: Grants) -> ExtensionInstance {
    let loaded = runtime.load(&component("misbehaving")).await.unwrap();
    runtime.instantiate(&loaded, grants).await.unwrap()
}

#[tokio::test]
async fn describe_compiles_once_then_reuses_the_artifact() {
    let cache = tempfile::tempdir().unwrap();
    let first = runtime(cache.path());
    let loaded = first.load(&component("hello-extension")).await.unwrap();
    assert!(
        matches!(
            loaded.origin,
            Origin::Compiled {
                artifact: Some(_),
                ..
            }
        ),
        "{:?}",
        loaded.origin
    );
    let description = first
        .instantiate(&loaded, Grants::default())
        .await
        .unwrap()
        .call_describe()
        .await
        .unwrap();
    assert_eq!(description.name, "hello-extension");

    // A second runtime (as in another process) maps the artifact instead.
    let second = runtime(cache.path());
    let loaded = second.load(&component("hello-extension")).await.unwrap();
    assert!(
        matches!(loaded.origin, Origin::Cached { .. }),
        "{:?}",
        loaded.origin
    );
    let description = second
        .instantiate(&loaded, Grants::default())
        .await
        .unwrap()
        .call_describe()
        .await
        .unwrap();
    assert_eq!(description.version, "0.1.0");
}

#[tokio::test]
async fn concurrent_first_executions_share_one_compile() {
    let cache = tempfile::tempdir().unwrap();
    let runtime = Arc::new(runtime(cache.path()));
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let runtime = runtime.clone();
        tasks.push(tokio::spawn(async move {
            runtime.load(&component("hello-extension")).await.unwrap()
        }));
    }
    let mut loaded = Vec::new();
    for task in tasks {
        loaded.push(task.await.unwrap());
    }
    assert!(
        loaded.iter().all(|l| Arc::ptr_eq(l, &loaded[0])),
        "more than one compile"
    );
    assert_eq!(runtime.cache().entries().unwrap().len(), 1);
}

#[tokio::test]
async fn a_trap_is_reported_with_extension_function_and_panic_message() {
    let cache = tempfile::tempdir().unwrap();
    let runtime = runtime(cache.path());
    let mut instance = misbehaving(&runtime, Grants::default()).await;
    let err = instance.call_hydrate_file("trap".into()).await.unwrap_err();
    match &err {
        RuntimeError::Trap {
            extension,
            function,
            stderr,
            ..
        } => {
            assert_eq!(extension, "misbehaving");
            assert_eq!(*function, "hydration.hydrate-file");
            assert!(stderr.contains("deliberate trap"), "stderr tail: {stderr}");
        }
        other => panic!("expected a trap, got {other}"),
    }
    // The failed instance refuses further calls; a fresh one works.
    assert!(matches!(
        instance.call_describe().await,
        Err(RuntimeError::Poisoned { .. })
    ));
    let mut fresh = misbehaving(&runtime, Grants::default()).await;
    assert_eq!(fresh.call_describe().await.unwrap().name, "misbehaving");
}

#[tokio::test]
async fn an_infinite_loop_is_stopped_at_the_deadline() {
    let cache = tempfile::tempdir().unwrap();
    let config = RuntimeConfig {
        deadline_ms: 300,
        ..RuntimeConfig::default()
    };
    let runtime = runtime_with(cache.path(), config);
    let mut instance = misbehaving(&runtime, Grants::default()).await;
    let started = Instant::now();
    let err = instance.call_hydrate_file("loop".into()).await.unwrap_err();
    let took = started.elapsed();
    assert!(
        matches!(
            err,
            RuntimeError::DeadlineExceeded {
                deadline_ms: 300,
                function: "hydration.hydrate-file",
                ..
            }
        ),
        "{err}"
    );
    assert!(
        took >= Duration::from_millis(250) && took < Duration::from_secs(10),
        "took {took:?}"
    );
    assert!(
        err.to_string().contains("runtime.deadline_ms"),
        "message says what to do: {err}"
    );
}

#[tokio::test]
async fn unbounded_allocation_hits_the_memory_limit() {
    let cache = tempfile::tempdir().unwrap();
    let config = RuntimeConfig {
        memory_limit_mib: 64,
        ..RuntimeConfig::default()
    };
    let runtime = runtime_with(cache.path(), config);
    let mut instance = misbehaving(&runtime, Grants::default()).await;
    let err = instance
        .call_hydrate_file("alloc".into())
        .await
        .unwrap_err();
    assert!(
        matches!(err, RuntimeError::MemoryLimitExceeded { limit_mib: 64, .. }),
        "{err}"
    );
    // The host is fine and the next operation runs normally.
    let mut fresh = misbehaving(&runtime, Grants::default()).await;
    assert!(fresh.call_describe().await.is_ok());
}

#[tokio::test]
async fn the_guest_sees_only_its_cache_directory() {
    let cache = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("secret"), "host secret").unwrap();
    std::fs::write(data.path().join("mine"), "12345").unwrap();
    // A symlink planted in the cache directory must not lead out of it.
    std::os::unix::fs::symlink(outside.path(), data.path().join("outside")).unwrap();
    let runtime = runtime(cache.path());
    let grants = Grants {
        cache_dir: Some(data.path().to_owned()),
        ..Grants::default()
    };

    let mut instance = misbehaving(&runtime, grants.clone()).await;
    let own = instance
        .call_hydrate_file("read:/cache/mine".into())
        .await
        .unwrap();
    assert_eq!(
        own.unwrap().objects_present,
        5,
        "the guest can read its own cache"
    );

    let secret = outside.path().join("secret");
    let attempts = [
        format!("read:{}", secret.display()),
        "read:/etc/passwd".to_owned(),
        "read:/cache/../../../../etc/passwd".to_owned(),
        "read:/cache/outside/secret".to_owned(),
        format!("write:{}", outside.path().join("planted").display()),
        "write:/cache/outside/planted".to_owned(),
        // No links at all, pointing out or within: the working copy is
        // handed to the user's commands, which would follow them.
        "symlink:../../etc>/cache/escape".to_owned(),
        "symlink:mine>/cache/alias".to_owned(),
        "hardlink:/cache/mine>/cache/hard".to_owned(),
    ];
    for attempt in attempts {
        let mut instance = misbehaving(&runtime, grants.clone()).await;
        let result = instance
            .call_hydrate_file(attempt.clone())
            .await
            .expect("the host survives");
        assert!(
            matches!(result, Err(ExtensionError::NotFound(_))),
            "{attempt} was not refused: {result:?}"
        );
    }
    assert!(
        !outside.path().join("planted").exists(),
        "the guest wrote outside its cache"
    );
    for link in ["escape", "alias", "hard"] {
        assert!(
            std::fs::symlink_metadata(data.path().join(link)).is_err(),
            "the guest made the link {link}"
        );
    }
}

#[tokio::test]
async fn the_guest_has_no_environment_and_no_arguments() {
    // The host has an environment (PATH at least, under cargo test); none
    // of it may reach the guest. (Not set here: setting variables while
    // other tests' threads read them is a data race.)
    assert!(std::env::vars_os().next().is_some());
    let cache = tempfile::tempdir().unwrap();
    let runtime = runtime(cache.path());
    let mut instance = misbehaving(&runtime, Grants::default()).await;
    let report = instance
        .call_hydrate_file("env".into())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        report.objects_present, 0,
        "environment variables leaked into the guest"
    );
    assert_eq!(
        report.objects_remaining, 0,
        "arguments leaked into the guest"
    );
}

#[tokio::test]
async fn a_flood_of_output_is_not_fatal() {
    let cache = tempfile::tempdir().unwrap();
    let runtime = runtime(cache.path());
    let mut instance = misbehaving(&runtime, Grants::default()).await;
    let result = instance
        .call_hydrate_file("chatty".into())
        .await
        .expect("1 MiB of output must not trap");
    assert!(result.is_ok());
}

#[tokio::test]
async fn hello_syncs_through_the_object_store_and_bulk_transfers() {
    let cache = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    let store = Arc::new(MemoryStore::new());
    let runtime = runtime(cache.path());
    let loaded = runtime.load(&component("hello-extension")).await.unwrap();
    let grants = Grants {
        store: Some(store.clone() as Arc<dyn ObjectStore>),
        cache_dir: Some(data.path().to_owned()),
        progress: Some(Arc::new(LogProgress::default())),
        transfer_concurrency: Some(4),
        // `[extensions.config.hello-extension] label = "team-a"`.
        settings: Arc::new(
            Settings::new([("label".to_owned(), "team-a".to_owned())].into()).unwrap(),
        ),
        ..Grants::default()
    };
    let options = |dry_run| SyncOptions {
        scope: Scope::All,
        leases: Vec::new(),
        dry_run,
        fetch_missing: false,
        local_edits: LocalEdits::Keep,
    };

    let mut instance = runtime.instantiate(&loaded, grants.clone()).await.unwrap();
    let setup = instance
        .call_setup(SetupOptions {
            create: true,
            retain_versions: None,
        })
        .await
        .unwrap()
        .unwrap();
    assert!(setup.created);

    std::fs::create_dir_all(data.path().join("data/vision/m1")).unwrap();
    std::fs::write(
        data.path().join("data/vision/m1/weights"),
        vec![7u8; 100_000],
    )
    .unwrap();
    std::fs::write(data.path().join("data/readme"), "hello").unwrap();
    let mut instance = runtime.instantiate(&loaded, grants.clone()).await.unwrap();
    let pushed = instance
        .call_push_changed(options(false))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(pushed.stats.objects_uploaded, 2);
    assert_eq!(pushed.stats.bytes_uploaded, 100_005);
    let key = ObjectKey::new("data/vision/m1/weights").unwrap();
    assert_eq!(store.head(&key).await.unwrap().size, 100_000);

    // A fresh clone: an empty cache directory pulls everything back.
    let clone = tempfile::tempdir().unwrap();
    let grants = Grants {
        cache_dir: Some(clone.path().to_owned()),
        ..grants
    };
    let mut instance = runtime.instantiate(&loaded, grants).await.unwrap();
    let pulled = instance
        .call_pull_changed(options(false))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(pulled.stats.objects_downloaded, 2);
    // The settings reached the guest through its `config` import.
    assert_eq!(pulled.summary, "2 objects for team-a");
    let pulled_weights = std::fs::read(clone.path().join("data/vision/m1/weights")).unwrap();
    assert!(
        pulled_weights == vec![7u8; 100_000],
        "pulled {} bytes",
        pulled_weights.len()
    );
    assert_eq!(
        std::fs::read_to_string(clone.path().join("data/readme")).unwrap(),
        "hello"
    );
}

#[tokio::test]
async fn without_a_granted_store_calls_fail_cleanly() {
    let cache = tempfile::tempdir().unwrap();
    let runtime = runtime(cache.path());
    let loaded = runtime.load(&component("hello-extension")).await.unwrap();
    let mut instance = runtime
        .instantiate(&loaded, Grants::default())
        .await
        .unwrap();
    let result = instance
        .call_setup(SetupOptions {
            create: true,
            retain_versions: None,
        })
        .await
        .expect("no trap");
    assert!(
        matches!(result, Err(ExtensionError::Backend(_))),
        "{result:?}"
    );
}

async fn bulk_download_lands_whole_and_verified(store: Arc<dyn ObjectStore>) {
    let cache = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    let runtime = runtime(cache.path());
    let body: Vec<u8> = (0..(8u32 << 20))
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    let sha = silt::runtime::sha256_hex(&body);
    let key = ObjectKey::new("data/vision/m1/weights/1").unwrap();
    store
        .put(&key, body.clone(), silt::store::PutMode::Overwrite)
        .await
        .unwrap();
    let grants = Grants {
        store: Some(store.clone()),
        cache_dir: Some(data.path().to_owned()),
        ..Grants::default()
    };

    let mut instance = misbehaving(&runtime, grants.clone()).await;
    let command = format!("download:{key}>models/m1/weights#{sha}");
    let report = instance
        .call_hydrate_file(command.clone())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(report.objects_present, body.len() as u64);
    let landed = std::fs::read(data.path().join("models/m1/weights")).unwrap();
    assert!(
        landed == body,
        "landed {} of {} bytes",
        landed.len(),
        body.len()
    );

    // A wrong checksum writes nothing, and leaves no temporary file behind.
    let mut instance = misbehaving(&runtime, grants).await;
    let wrong = format!("download:{key}>models/m1/other#{}", "0".repeat(64));
    let result = instance.call_hydrate_file(wrong.clone()).await.unwrap();
    assert!(
        matches!(&result, Err(ExtensionError::Backend(f)) if f.detail.contains("ChecksumMismatch")),
        "{result:?}"
    );
    let names: Vec<String> = std::fs::read_dir(data.path().join("models/m1"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["weights"], "partial or temporary files are visible");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bulk_download_streams_from_a_directory_store() {
    let dir = tempfile::tempdir().unwrap();
    bulk_download_lands_whole_and_verified(Arc::new(
        silt::store::DirStore::open(dir.path(), true).unwrap(),
    ))
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bulk_download_streams_from_s3() {
    let store = support::seaweed::store("transfers", "ns").await;
    bulk_download_lands_whole_and_verified(Arc::new(store)).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn time_in_bulk_transfers_does_not_count_against_the_deadline() {
    let cache = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    let store = support::slow_store::SlowStore(
        MemoryStore::new(),
        support::slow_store::Slow::Transfers(Duration::from_millis(300)),
    );
    for i in 0..4 {
        let key = ObjectKey::new(&format!("data/m/file-{i}")).unwrap();
        store
            .0
            .put(&key, vec![1u8; 10], silt::store::PutMode::Overwrite)
            .await
            .unwrap();
    }
    let runtime = runtime_with(
        cache.path(),
        RuntimeConfig {
            // Room for the guest's own work on a loaded machine; the
            // transfers take twice the deadline.
            deadline_ms: 600,
            ..RuntimeConfig::default()
        },
    );
    let loaded = runtime.load(&component("hello-extension")).await.unwrap();
    let grants = Grants {
        store: Some(Arc::new(store) as Arc<dyn ObjectStore>),
        cache_dir: Some(data.path().to_owned()),
        progress: None,
        transfer_concurrency: Some(1),
        ..Grants::default()
    };
    let mut instance = runtime.instantiate(&loaded, grants).await.unwrap();
    let started = Instant::now();
    let pulled = instance
        .call_pull_changed(SyncOptions {
            scope: Scope::All,
            leases: Vec::new(),
            dry_run: false,
            fetch_missing: false,
            local_edits: LocalEdits::Keep,
        })
        .await
        .expect("a 1.2 s download inside a 600 ms deadline: transfer time is the host's")
        .unwrap();
    assert!(started.elapsed() >= Duration::from_millis(1200));
    assert_eq!(pulled.stats.objects_downloaded, 4);
}
