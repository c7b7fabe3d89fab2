//! Every extension call ends within its deadline, whatever the guest does:
//! compute, sleep through WASI clocks, block in a poll, or loop on any
//! import — in process and in a sandboxed worker.
//!
//! The bound is `deadline + store budget + grace` (the grace is a tenth of
//! the deadline, at least 1 s): store time is excluded from the deadline
//! only up to the store budget. The store here is a real directory store.

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use silt::config::RuntimeConfig;
use silt::runtime::{ExportCall, Grants, RuntimeError, grace};
use silt::sandbox::{Driver, Isolation, SandboxConfig};
use silt::store::DirStore;
use silt::store::ObjectStore;
use silt::worker::WorkerPool;
use support::{component, runtime_with};

const DEADLINE_MS: u64 = 500;
const STORE_BUDGET_MS: u64 = 300;

/// Held by each test: one at a time, so a bound is not measured beside
/// the other test's processes (as `support::one_at_a_time`, for async
/// tests, which hold it across awaits).
static ALONE: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// What the misbehaving component is asked to do: each never ends by itself.
const MISBEHAVIOURS: [&str; 12] = [
    "loop",
    // A WASI sleep: the guest waits in a host poll for an hour.
    "sleep:3600000",
    "loop-import:get",
    "loop-import:head",
    "loop-import:list",
    "loop-import:put",
    "loop-import:delete",
    "loop-import:download",
    "loop-import:upload",
    "loop-import:log",
    "loop-import:progress",
    // One more compute loop after the imports: the pool recovered.
    "loop",
];

fn config() -> RuntimeConfig {
    RuntimeConfig {
        deadline_ms: DEADLINE_MS,
        store_budget_ms: STORE_BUDGET_MS,
        memory_limit_mib: 64,
        ..RuntimeConfig::default()
    }
}

/// The longest a call may take.
fn bound() -> Duration {
    let deadline = Duration::from_millis(DEADLINE_MS);
    deadline + Duration::from_millis(STORE_BUDGET_MS) + grace(deadline)
}

struct Fixture {
    cache: tempfile::TempDir,
    _store_dir: tempfile::TempDir,
    scratch: tempfile::TempDir,
    grants: Grants,
}

fn fixture() -> Fixture {
    let cache = tempfile::tempdir().unwrap();
    let store_dir = tempfile::tempdir().unwrap();
    let scratch = tempfile::tempdir().unwrap();
    let store: Arc<dyn ObjectStore> = Arc::new(DirStore::open(store_dir.path(), false).unwrap());
    let grants = Grants {
        store: Some(store),
        cache_dir: Some(scratch.path().to_owned()),
        ..Grants::default()
    };
    Fixture {
        cache,
        _store_dir: store_dir,
        scratch,
        grants,
    }
}

/// When the call should end: at its deadline, plus the store budget for a
/// guest that spends its time in the store.
fn expected_end(what: &str) -> Duration {
    let deadline = Duration::from_millis(DEADLINE_MS);
    let in_store =
        what.starts_with("loop-import:") && !what.ends_with(":log") && !what.ends_with(":progress");
    if in_store {
        deadline + Duration::from_millis(STORE_BUDGET_MS)
    } else {
        deadline
    }
}

fn assert_stopped_in_time(what: &str, started: Instant, result: Result<(), RuntimeError>) {
    let took = started.elapsed();
    eprintln!("{what}: stopped after {took:?}");
    assert!(
        matches!(result, Err(RuntimeError::DeadlineExceeded { .. })),
        "{what}: not stopped by its deadline: {result:?}"
    );
    // The promise: within the bound. What the watchdog does: stop it within
    // a few tens of ms of its expected end (600 ms of slack for a loaded
    // machine, less than the 1 s grace), so a regression to the grace
    // would show.
    assert!(
        took <= bound(),
        "{what}: took {took:?}, more than the bound {:?}",
        bound()
    );
    let expected = expected_end(what);
    assert!(
        took <= expected + Duration::from_millis(600),
        "{what}: took {took:?}, expected to end near {expected:?}"
    );
}

#[tokio::test]
async fn in_process_every_call_ends_within_its_deadline() {
    let _alone = ALONE.lock().await;
    let fixture = fixture();
    let runtime = runtime_with(fixture.cache.path(), config());
    let loaded = runtime.load(&component("misbehaving")).await.unwrap();
    for command in MISBEHAVIOURS {
        let mut instance = runtime
            .instantiate(&loaded, fixture.grants.clone())
            .await
            .unwrap();
        let started = Instant::now();
        let result = instance
            .call_hydrate_file(command.to_owned())
            .await
            .map(drop);
        assert_stopped_in_time(command, started, result);
    }
    // The host is fine afterwards.
    let mut instance = runtime
        .instantiate(&loaded, Grants::default())
        .await
        .unwrap();
    assert!(instance.call_describe().await.is_ok());
    assert!(fixture.scratch.path().is_dir());
}

#[tokio::test]
async fn out_of_process_every_call_ends_within_its_deadline() {
    let _alone = ALONE.lock().await;
    let fixture = fixture();
    let runtime = runtime_with(fixture.cache.path(), config());
    let sandbox = SandboxConfig {
        driver: Some(Driver::Native),
        isolation: Isolation::Strict,
        pool_size: 1,
        ..SandboxConfig::default()
    };
    let pool = WorkerPool::new(
        "misbehaving",
        &component("misbehaving"),
        fixture.grants.clone(),
        config(),
        sandbox,
        fixture.cache.path(),
    );
    for command in MISBEHAVIOURS {
        // A worker waits idle before each timed call: the first call builds
        // the bundle, and a misbehaving call's worker is killed, so each
        // timed call would otherwise include a sandbox's start.
        pool.execute(&runtime, ExportCall::Describe {})
            .await
            .unwrap();
        let started = Instant::now();
        let call = ExportCall::HydrateFile {
            path: command.to_owned(),
        };
        let result = pool.execute(&runtime, call).await.map(drop);
        assert_stopped_in_time(command, started, result);
    }
    assert!(
        pool.execute(&runtime, ExportCall::Describe {})
            .await
            .is_ok()
    );
}
