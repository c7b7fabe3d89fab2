//! The on-disk artifact cache with a real engine: bad entries are misses,
//! other engines' artifacts are never loaded, concurrent fills from several
//! processes succeed, and the size cap evicts least recently used entries.

use crate::support;

use silt::config::RuntimeConfig;
use silt::runtime::{ArtifactCache, Grants, Origin, Runtime};
use support::{component, output, runtime, silt};

async fn load_origin(runtime: &Runtime, name: &str) -> Origin {
    let loaded = runtime.load(&component(name)).await.unwrap();
    let mut instance = runtime
        .instantiate(&loaded, Grants::default())
        .await
        .unwrap();
    instance.call_describe().await.expect("the extension runs");
    loaded.origin.clone()
}

fn only_artifact(cache: &std::path::Path) -> std::path::PathBuf {
    let entries = ArtifactCache::new(cache, u64::MAX).entries().unwrap();
    assert_eq!(entries.len(), 1, "{entries:?}");
    entries[0].path.clone()
}

#[tokio::test]
async fn a_corrupt_artifact_is_recompiled_and_replaced() {
    let cache = tempfile::tempdir().unwrap();
    load_origin(&runtime(cache.path()), "hello-extension").await;
    let artifact = only_artifact(cache.path());
    std::fs::write(&artifact, b"this is not an artifact").unwrap();

    let origin = load_origin(&runtime(cache.path()), "hello-extension").await;
    assert!(
        matches!(
            origin,
            Origin::Compiled {
                artifact: Some(_),
                ..
            }
        ),
        "{origin:?}"
    );
    let origin = load_origin(&runtime(cache.path()), "hello-extension").await;
    assert!(
        matches!(origin, Origin::Cached { .. }),
        "the replacement is used: {origin:?}"
    );
}

#[tokio::test]
async fn a_truncated_artifact_is_recompiled() {
    let cache = tempfile::tempdir().unwrap();
    load_origin(&runtime(cache.path()), "hello-extension").await;
    let artifact = only_artifact(cache.path());
    let bytes = std::fs::read(&artifact).unwrap();
    std::fs::write(&artifact, &bytes[..bytes.len() / 3]).unwrap();
    let origin = load_origin(&runtime(cache.path()), "hello-extension").await;
    assert!(matches!(origin, Origin::Compiled { .. }), "{origin:?}");
}

#[tokio::test]
async fn an_artifact_from_another_engine_configuration_is_never_loaded() {
    let cache = tempfile::tempdir().unwrap();
    load_origin(&runtime(cache.path()), "hello-extension").await;
    let artifact = only_artifact(cache.path());

    // Put an artifact compiled by a differently configured engine (no epoch
    // interruption: it could not be stopped at a deadline) under our key.
    let mut config = wasmtime::Config::new();
    config.wasm_component_model(true).epoch_interruption(false);
    let other = wasmtime::Engine::new(&config).unwrap();
    let bytes = std::fs::read(component("hello-extension")).unwrap();
    let foreign = wasmtime::component::Component::new(&other, &bytes)
        .unwrap()
        .serialize()
        .unwrap();
    std::fs::write(&artifact, foreign).unwrap();

    let origin = load_origin(&runtime(cache.path()), "hello-extension").await;
    assert!(
        matches!(origin, Origin::Compiled { .. }),
        "a foreign artifact was loaded: {origin:?}"
    );
}

#[tokio::test]
async fn pooling_and_on_demand_engines_share_artifacts() {
    let cache = tempfile::tempdir().unwrap();
    load_origin(&runtime(cache.path()), "hello-extension").await;
    let on_demand = support::runtime_with(
        cache.path(),
        RuntimeConfig {
            pooling: false,
            ..RuntimeConfig::default()
        },
    );
    let origin = load_origin(&on_demand, "hello-extension").await;
    assert!(matches!(origin, Origin::Cached { .. }), "{origin:?}");
}

#[test]
fn concurrent_processes_filling_one_entry_all_succeed() {
    let home = tempfile::tempdir().unwrap();
    let (code, _, stderr) = output(
        silt(home.path())
            .args(["extension", "add"])
            .arg(component("hello-extension")),
    );
    assert_eq!(code, 0, "{stderr}");
    let children: Vec<_> = (0..4)
        .map(|_| {
            silt(home.path())
                .args(["extension", "verify", "hello-extension"])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for child in children {
        let result = child.wait_with_output().unwrap();
        assert!(
            result.status.success(),
            "{}",
            String::from_utf8_lossy(&result.stderr)
        );
    }
    let names: Vec<String> = std::fs::read_dir(home.path().join("cache"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        names.len(),
        1,
        "one artifact and no temporary files: {names:?}"
    );
    assert!(names[0].ends_with(".cwasm"));
}

#[tokio::test]
async fn the_size_cap_evicts_the_least_recently_used_artifact() {
    let cache = tempfile::tempdir().unwrap();
    load_origin(&runtime(cache.path()), "hello-extension").await;
    let hello_size = only_artifact(cache.path()).metadata().unwrap().len();
    // Room for one artifact, not two.
    let capped = Runtime::new(
        RuntimeConfig::default(),
        ArtifactCache::new(cache.path(), hello_size + 1000),
    );
    load_origin(&capped, "misbehaving").await;
    let entries = capped.cache().entries().unwrap();
    assert_eq!(entries.len(), 1, "{entries:?}");
    // The survivor is the one just written; hello was evicted and recompiles.
    let origin = load_origin(&runtime(cache.path()), "hello-extension").await;
    assert!(matches!(origin, Origin::Compiled { .. }), "{origin:?}");
}

/// The fingerprint memo: a settled component validated once is loaded from
/// its artifact without being read again; a component changed since (same
/// path) is read and validated again, and refused when it is not valid.
#[tokio::test]
async fn a_changed_component_is_validated_again_despite_its_memo() {
    let cache = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("component.wasm");
    std::fs::copy(component("hello-extension"), &path).unwrap();
    // Remembered only once its ctime is 2 s old.
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let first = runtime(cache.path()).load(&path).await.unwrap();
    assert!(
        matches!(first.origin, Origin::Compiled { .. }),
        "{:?}",
        first.origin
    );
    let memos = std::fs::read_dir(cache.path().join("fingerprints"))
        .unwrap()
        .count();
    assert_eq!(memos, 1);
    let again = runtime(cache.path()).load(&path).await.unwrap();
    assert!(
        matches!(again.origin, Origin::Cached { .. }),
        "{:?}",
        again.origin
    );
    assert_eq!(again.sha256, first.sha256);

    // Rewritten in place: another identity, so the bytes are checked.
    std::fs::write(&path, b"\0asm but not a component").unwrap();
    let refused = runtime(cache.path()).load(&path).await;
    assert!(refused.is_err(), "a changed file was taken from the memo");
}
