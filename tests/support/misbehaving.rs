//! The `misbehaving` test component's calls (traps, loops, allocations,
//! floods, escapes from its cache directory, the host's downloads), and the
//! check that a worker pool answers each as an in-process instance does.

use std::path::Path;
use std::sync::Arc;

use silt::config::RuntimeConfig;
use silt::runtime::{ExportCall, ExportReply, Grants, RuntimeError};
use silt::sandbox::SandboxConfig;
use silt::store::{MemoryStore, ObjectKey, ObjectStore};
use silt::worker::WorkerPool;

/// Test-sized limits: `deadline_ms`, 64 MiB of wasm memory.
pub fn limits(deadline_ms: u64) -> RuntimeConfig {
    RuntimeConfig {
        deadline_ms,
        memory_limit_mib: 64,
        ..RuntimeConfig::default()
    }
}

/// A pool running the component, with its artifact cache (and so its
/// bundle) in `cache`.
pub fn pool(
    cache: &Path,
    config: &RuntimeConfig,
    sandbox: SandboxConfig,
    grants: Grants,
) -> WorkerPool {
    WorkerPool::new(
        "misbehaving",
        &super::component("misbehaving"),
        grants,
        config.clone(),
        sandbox,
        cache,
    )
}

/// `hydrate-file` with `command` (the component's misbehaviour).
pub fn hydrate(command: &str) -> ExportCall {
    ExportCall::HydrateFile {
        path: command.to_owned(),
    }
}

/// The outcome of a call as a comparable string: the reply, or the kind of
/// runtime error (the message names the process it ran in).
pub fn outcome(result: &Result<ExportReply, RuntimeError>) -> String {
    match result {
        Ok(reply) => format!("{reply:?}"),
        Err(RuntimeError::Trap { function, .. }) => format!("trap in {function}"),
        Err(RuntimeError::DeadlineExceeded { function, .. }) => format!("deadline in {function}"),
        Err(RuntimeError::MemoryLimitExceeded { function, .. }) => format!("memory in {function}"),
        Err(other) => format!("other: {other}"),
    }
}

/// Grants of a memory store holding `blobs/one` and of `scratch` as the
/// cache directory, with `present.txt` in it.
async fn grants(scratch: &Path) -> Grants {
    let store: Arc<dyn ObjectStore> = Arc::new(MemoryStore::new());
    store
        .put(
            &ObjectKey::new("blobs/one").unwrap(),
            b"payload".to_vec(),
            silt::store::PutMode::Overwrite,
        )
        .await
        .unwrap();
    std::fs::write(scratch.join("present.txt"), b"12345").unwrap();
    Grants {
        store: Some(store),
        cache_dir: Some(scratch.to_owned()),
        ..Grants::default()
    }
}

/// Every misbehaviour answers in a pool of `sandbox`'s workers as it does
/// in process: a trap, a deadline (2 s), the wasm memory limit, the
/// environment, a 1 MiB flood of output, reads and writes in and outside
/// the cache directory, links out of it, the host's downloads, an unknown
/// command, a listing. Each side has its own cache directory, so what
/// lands in the pool's was written through the pool's workers.
pub async fn assert_answers_as_in_process(sandbox: SandboxConfig) {
    let cache = tempfile::tempdir().unwrap();
    let (in_process_dir, pool_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let config = limits(2_000);
    let in_process_grants = grants(in_process_dir.path()).await;
    let pool_grants = grants(pool_dir.path()).await;
    let runtime = super::runtime_with(cache.path(), config.clone());
    let loaded = runtime
        .load(&super::component("misbehaving"))
        .await
        .unwrap();
    let pool = pool(cache.path(), &config, sandbox, pool_grants);
    let calls = [
        ExportCall::Describe {},
        hydrate("trap"),
        hydrate("loop"),
        hydrate("alloc"),
        hydrate("env"),
        hydrate("chatty"),
        hydrate("read:/cache/present.txt"),
        hydrate("read:/etc/passwd"),
        hydrate("write:/cache/written.txt"),
        hydrate("write:/elsewhere.txt"),
        hydrate("symlink:..>/cache/up"),
        hydrate("hardlink:/cache/present.txt>/cache/hard.txt"),
        hydrate("download:blobs/one>fetched/one.bin"),
        hydrate("download:blobs/missing>fetched/two.bin"),
        hydrate("no-such-command"),
        ExportCall::ListModels {},
    ];
    for call in calls {
        let label = format!("{call:?}");
        let mut instance = runtime
            .instantiate(&loaded, in_process_grants.clone())
            .await
            .unwrap();
        let in_process = call.clone().invoke(&mut instance).await;
        let in_a_worker = pool.execute(&runtime, call).await;
        assert_eq!(
            outcome(&in_process),
            outcome(&in_a_worker),
            "{label}: in-process and worker answers differ"
        );
    }
    for scratch in [in_process_dir.path(), pool_dir.path()] {
        assert_eq!(
            std::fs::read(scratch.join("fetched/one.bin")).unwrap(),
            b"payload"
        );
        assert!(scratch.join("written.txt").is_file());
        assert!(std::fs::symlink_metadata(scratch.join("up")).is_err());
        assert!(std::fs::symlink_metadata(scratch.join("hard.txt")).is_err());
    }
}
