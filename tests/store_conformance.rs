//! The object-store conformance suite against every backend available
//! without a server: in-memory and the local directory (also with several
//! processes racing on one directory).

mod support;

use std::sync::Arc;

use silt::store::{
    DirStore, MemoryStore, ObjectKey, ObjectStore, PutMode, StoreError, conformance,
};

fn dir_store(dir: &std::path::Path) -> Arc<dyn ObjectStore> {
    Arc::new(DirStore::open(dir, true).unwrap())
}

async fn whole_suite(store: Arc<dyn ObjectStore>) {
    conformance::put_modes(&*store, "modes").await;
    conformance::pagination(store.clone(), "pages", 1050).await;
    conformance::racing_creates(store.clone(), "creates", 8, 50).await;
    conformance::racing_updates(store.clone(), "updates", 8, 50).await;
    conformance::cas_counter(store.clone(), "counter", 8, 50).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn memory_store_conforms() {
    whole_suite(Arc::new(MemoryStore::new())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn directory_store_conforms() {
    let dir = tempfile::tempdir().unwrap();
    whole_suite(dir_store(dir.path())).await;
    let leftovers: Vec<_> = walk(dir.path())
        .into_iter()
        .filter(|name| name.contains("~l") || name.contains("~t."))
        .collect();
    assert!(
        leftovers.is_empty(),
        "lock or temporary files left behind: {leftovers:?}"
    );
}

fn walk(dir: &std::path::Path) -> Vec<String> {
    let mut names = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_dir() {
            names.extend(walk(&entry.path()));
        } else {
            names.push(entry.path().display().to_string());
        }
    }
    names
}

#[tokio::test]
async fn directory_keys_cannot_escape_the_root() {
    let parent = tempfile::tempdir().unwrap();
    let root = parent.path().join("store");
    let store = dir_store(&root);
    // Keys are validated before any backend sees them...
    for bad in ["../outside", "/etc/passwd", "a/../../b"] {
        assert!(ObjectKey::new(bad).is_err(), "{bad}");
    }
    // ...and a symlink planted inside the store does not lead out of it.
    std::fs::create_dir_all(&root).unwrap();
    std::os::unix::fs::symlink(parent.path(), root.join("link")).unwrap();
    let through_link = ObjectKey::new("link/escaped").unwrap();
    let result = store
        .put(&through_link, b"x".to_vec(), PutMode::Overwrite)
        .await;
    assert!(
        matches!(result, Err(StoreError::Backend { .. })),
        "{result:?}"
    );
    assert!(
        !parent.path().join("escaped~o").exists(),
        "a write escaped the store"
    );
}

/// Worker for [`directory_cas_across_processes`]: run only as a child process.
#[tokio::test]
#[ignore = "run by directory_cas_across_processes as a child process"]
async fn cas_worker() {
    let Some(dir) = std::env::var_os("SILT_CAS_WORKER_DIR") else {
        return;
    };
    let store = dir_store(std::path::Path::new(&dir));
    let k = ObjectKey::new("shared/counter").unwrap();
    for _ in 0..50 {
        loop {
            let (value, version) = conformance::read_counter(&*store, &k).await;
            match store
                .put(
                    &k,
                    (value + 1).to_string().into_bytes(),
                    PutMode::Update(version),
                )
                .await
            {
                Ok(_) => break,
                Err(StoreError::PreconditionFailed { .. }) => continue,
                Err(other) => panic!("{other}"),
            }
        }
    }
}

#[tokio::test]
async fn directory_cas_across_processes() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir_store(dir.path());
    let k = ObjectKey::new("shared/counter").unwrap();
    store.put(&k, b"0".to_vec(), PutMode::Create).await.unwrap();
    let me = std::env::current_exe().unwrap();
    let children: Vec<_> = (0..8)
        .map(|_| {
            std::process::Command::new(&me)
                .args(["cas_worker", "--exact", "--ignored", "--quiet"])
                .env("SILT_CAS_WORKER_DIR", dir.path())
                .stdout(std::process::Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    for mut child in children {
        assert!(child.wait().unwrap().success(), "a worker process failed");
    }
    let (value, _) = conformance::read_counter(&*store, &k).await;
    assert_eq!(value, 400, "increments were lost between processes");
}
