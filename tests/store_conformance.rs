//! The object-store conformance suite against every backend: S3 the real S3-compatible server (SeaweedFS, started by the harness),
//! GCS on fake-gcs-server (behind the gate that applies conditional deletes,
//! see `support::fake_gcs`), Azure on Azurite,
//! in-memory and the local directory (also with several processes racing on
//! one directory).

use crate::support;

use std::sync::Arc;

use silt::store::{
    DirStore, MemoryStore, ObjectKey, ObjectStore, Prefixed, PutMode, RetryPolicy, Retrying,
    S3Config, S3Store, StoreError, conformance,
};
use support::{azurite, fake_gcs, seaweed};

fn dir_store(dir: &std::path::Path) -> Arc<dyn ObjectStore> {
    Arc::new(DirStore::open(dir, true).unwrap())
}

async fn whole_suite(store: Arc<dyn ObjectStore>) {
    conformance::put_modes(&*store, "modes").await;
    conformance::hashed_uploads(&*store, "hashed").await;
    conformance::longest_keys(&*store, "long").await;
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
async fn s3_store_conforms() {
    let store = seaweed::store("conformance", "ns/one").await;
    whole_suite(Arc::new(Retrying::new(store, RetryPolicy::default()))).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn gcs_store_conforms() {
    let store = fake_gcs::store("conformance", "ns/one");
    whole_suite(Arc::new(Retrying::new(store, RetryPolicy::default()))).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn gcs_prefixes_isolate_datastores_and_names_travel_intact() {
    let a = fake_gcs::store("isolation", "team/a");
    let b = fake_gcs::store("isolation", "team/b");
    // Characters a URL must encode, in a name and a prefix.
    let k = ObjectKey::new("shared name/with+plus&amp?q=1#frag%41").unwrap();
    a.put(&k, b"a".to_vec(), PutMode::Create).await.unwrap();
    b.put(&k, b"b".to_vec(), PutMode::Create)
        .await
        .expect("another prefix is another key space");
    let listed = a.list("", None, 1000).await.unwrap();
    let keys: Vec<&str> = listed.items.iter().map(|m| m.key.as_str()).collect();
    assert_eq!(keys, [k.as_str()], "keys come back relative to the prefix");
    let listed = a.list("shared name/", None, 1000).await.unwrap();
    assert_eq!(listed.items.len(), 1, "a prefix with a space lists its key");
    match b.get(&k, None).await.unwrap() {
        silt::store::GetOutcome::Found(meta, data) => {
            assert_eq!(
                (meta.key.as_str(), data.as_slice()),
                (k.as_str(), &b"b"[..])
            );
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn gcs_large_files_stream_both_ways_and_are_checked() {
    // Five parts of 16 MiB composed on the way up (64 MiB and more go in
    // parts), five ranges on the way down, the last ones short.
    let store = fake_gcs::store("streams", "");
    large_file_round_trip(store.as_ref()).await;
    let parts = store.list("_silt/uploads/", None, 100).await.unwrap();
    assert!(
        parts.items.is_empty(),
        "the parts were deleted: {:?}",
        parts.items
    );
}

/// A 70 MiB file (and 17 bytes) put create-only from a file, put again
/// (refused), and streamed back whole.
async fn large_file_round_trip(store: &dyn ObjectStore) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big");
    let data: Vec<u8> = (0..(70u32 << 20) + 17)
        .map(|i| (i * 7 % 251) as u8)
        .collect();
    std::fs::write(&path, &data).unwrap();
    let k = ObjectKey::new("big/file").unwrap();
    let version = store
        .put_file(&k, std::fs::File::open(&path).unwrap(), PutMode::Create)
        .await
        .unwrap();
    let again = store
        .put_file(&k, std::fs::File::open(&path).unwrap(), PutMode::Create)
        .await;
    assert!(
        matches!(again, Err(StoreError::AlreadyExists { .. })),
        "a streamed create is create-only: {again:?}"
    );
    let mut fetched = Vec::new();
    let meta = store.get_into(&k, &mut fetched).await.unwrap();
    assert_eq!(meta.version, version);
    assert_eq!(meta.size, data.len() as u64);
    assert!(fetched == data, "the bytes came back as sent");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn gcs_parts_a_killed_upload_left_are_found_and_collected() {
    let store = fake_gcs::store("leftover-parts", "ns");
    let part = ObjectKey::new("_silt/uploads/m/data.0123456789abcdef.00000").unwrap();
    store
        .put(&part, vec![1u8; 1000], PutMode::Create)
        .await
        .unwrap();
    let young = silt::store::Sweep {
        older_than: std::time::Duration::from_secs(3600),
        remove: true,
    };
    assert!(
        store.leftovers("", young).await.unwrap().is_empty(),
        "a live upload's parts are left alone"
    );
    let look = silt::store::Sweep {
        older_than: std::time::Duration::ZERO,
        remove: false,
    };
    let found = store.leftovers("", look).await.unwrap();
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(
        (found[0].path.as_str(), found[0].size),
        (part.as_str(), 1000)
    );
    let sweep = silt::store::Sweep {
        older_than: std::time::Duration::ZERO,
        remove: true,
    };
    assert_eq!(store.leftovers("", sweep).await.unwrap().len(), 1);
    assert!(matches!(
        store.head(&part).await,
        Err(StoreError::NotFound { .. })
    ));
}

#[tokio::test]
async fn gcs_doctor_refuses_a_server_that_ignores_conditional_deletes() {
    // fake-gcs-server itself, without the gate: a stale conditional delete
    // removes the object, which would let a stale lease holder delete
    // another's lease.
    let raw = silt::store::GcsStore::new(
        &fake_gcs::config(fake_gcs::raw(), "doctor-raw", ""),
        std::time::Duration::from_secs(10),
    )
    .unwrap();
    let report = silt::store::doctor::diagnose(Arc::new(raw)).await.unwrap();
    assert!(!report.trustworthy, "{report:#?}");
    assert_eq!(
        report.failed_checks(),
        ["delete-if-match (If-Match)"],
        "{report:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn azure_store_conforms() {
    let store = azurite::store("conformance", "ns/one");
    whole_suite(Arc::new(Retrying::new(store, RetryPolicy::default()))).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn azure_prefixes_isolate_datastores_and_names_travel_intact() {
    let a = azurite::store("isolation", "team/a");
    let b = azurite::store("isolation", "team/b");
    let k = ObjectKey::new("shared name/with+plus&amp?q=1#frag%41").unwrap();
    a.put(&k, b"a".to_vec(), PutMode::Create).await.unwrap();
    b.put(&k, b"b".to_vec(), PutMode::Create)
        .await
        .expect("another prefix is another key space");
    let listed = a.list("", None, 1000).await.unwrap();
    let keys: Vec<&str> = listed.items.iter().map(|m| m.key.as_str()).collect();
    assert_eq!(keys, [k.as_str()], "keys come back relative to the prefix");
    match b.get(&k, None).await.unwrap() {
        silt::store::GetOutcome::Found(meta, data) => {
            assert_eq!(
                (meta.key.as_str(), data.as_slice()),
                (k.as_str(), &b"b"[..])
            );
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn azure_listings_continue_from_any_key() {
    // The Blob service lists only from a marker: a listing from a key this
    // store did not end a page on pages from the prefix's start.
    let store = azurite::store("listings", "");
    for i in 0..30 {
        let k = ObjectKey::new(&format!("k/{i:03}")).unwrap();
        store.put(&k, vec![b'x'], PutMode::Create).await.unwrap();
    }
    let from = ObjectKey::new("k/011").unwrap();
    let page = store.list("k/", Some(&from), 5).await.unwrap();
    let keys: Vec<&str> = page.items.iter().map(|m| m.key.as_str()).collect();
    assert_eq!(keys, ["k/012", "k/013", "k/014", "k/015", "k/016"]);
    assert_eq!(
        page.next_start_after.as_ref().map(|k| k.as_str()),
        Some("k/016")
    );
    let next = store
        .list("k/", page.next_start_after.as_ref(), 100)
        .await
        .unwrap();
    assert_eq!(next.items.len(), 13, "{:?}", next.items);
    assert_eq!(next.next_start_after, None);

    // Paging through goes on from each page's cursor: one listing request
    // for the whole listing (the service's page holds all 30), not one scan
    // a page. Counted on the wire, by a proxy.
    let mut config = azurite::config("listings", "");
    let endpoint = config.endpoint.clone().unwrap();
    let (host, account) = endpoint.rsplit_once('/').unwrap();
    let proxy = support::recording_proxy::start(host);
    config.endpoint = Some(format!("{}/{account}", proxy.endpoint));
    let store = silt::store::AzureStore::new(&config, std::time::Duration::from_secs(10)).unwrap();
    let mut after: Option<ObjectKey> = None;
    let mut listed = Vec::new();
    loop {
        let page = store.list("k/", after.as_ref(), 4).await.unwrap();
        listed.extend(page.items.into_iter().map(|m| m.key.as_str().to_owned()));
        match page.next_start_after {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    let expected: Vec<String> = (0..30).map(|i| format!("k/{i:03}")).collect();
    assert_eq!(listed, expected);
    let listings = proxy
        .exchanges()
        .iter()
        .filter(|exchange| exchange.line.contains("comp=list"))
        .count();
    assert_eq!(listings, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn azure_large_files_stream_both_ways_and_are_checked() {
    // Five blocks of 16 MiB on the way up (64 MiB and more go in
    // blocks), five ranges on the way down, the last ones short.
    large_file_round_trip(azurite::store("streams", "").as_ref()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn azure_racing_block_uploads_never_mix_their_blocks() {
    // Two writers create one blob from 70 MiB files at once: one wins, the
    // other is told it exists, and the blob is the winner's file whole.
    let store = azurite::store("block-races", "");
    let dir = tempfile::tempdir().unwrap();
    let contents: Vec<Vec<u8>> = (0..2u32)
        .map(|writer| {
            (0..(70u32 << 20))
                .map(|i| (i.wrapping_mul(31).wrapping_add(writer * 101) % 253) as u8)
                .collect()
        })
        .collect();
    let k = ObjectKey::new("raced/blob").unwrap();
    let mut racers = tokio::task::JoinSet::new();
    for (writer, data) in contents.iter().enumerate() {
        let path = dir.path().join(format!("file-{writer}"));
        std::fs::write(&path, data).unwrap();
        let (store, k) = (store.clone(), k.clone());
        racers.spawn(async move {
            let file = std::fs::File::open(&path).unwrap();
            (writer, store.put_file(&k, file, PutMode::Create).await)
        });
    }
    let mut winners = Vec::new();
    while let Some(joined) = racers.join_next().await {
        match joined.unwrap() {
            (writer, Ok(_)) => winners.push(writer),
            (_, Err(StoreError::AlreadyExists { .. })) => {}
            (writer, Err(other)) => panic!("writer {writer}: {other}"),
        }
    }
    assert_eq!(winners.len(), 1, "exactly one create wins");
    let mut fetched = Vec::new();
    store.get_into(&k, &mut fetched).await.unwrap();
    assert!(
        fetched == contents[winners[0]],
        "the blob is the winner's file, whole"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_refused_azure_block_fails_the_upload_at_once() {
    // The third block is refused (400): the upload must end with that
    // error, not wait on the blocks still being read.
    use std::io::{BufReader, Write as _};
    use std::sync::atomic::{AtomicUsize, Ordering};
    let mut config = azurite::config("refused-blocks", "");
    let endpoint = config.endpoint.clone().unwrap();
    let (host, account) = endpoint.rsplit_once('/').unwrap();
    let blocks = Arc::new(AtomicUsize::new(0));
    let counted = blocks.clone();
    let proxy = support::http_head::listen(host, move |client, upstream| {
        let (head, body) =
            support::http_head::read_request(&mut BufReader::new(client.try_clone()?))?;
        let mut client = client;
        if head[0].contains("comp=block&") && counted.fetch_add(1, Ordering::SeqCst) == 2 {
            return write!(
                client,
                "HTTP/1.1 400 Bad Request\r\nx-ms-error-code: InvalidBlockId\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
            );
        }
        let mut server = support::http_head::forward(upstream, &head, &body)?;
        std::io::copy(&mut server, &mut client)?;
        Ok(())
    });
    config.endpoint = Some(format!("{proxy}/{account}"));
    let store = silt::store::AzureStore::new(&config, std::time::Duration::from_secs(10)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big");
    std::fs::write(&path, vec![3u8; 200 << 20]).unwrap();
    let k = ObjectKey::new("refused/blob").unwrap();
    let put = store.put_file(&k, std::fs::File::open(&path).unwrap(), PutMode::Create);
    let result = tokio::time::timeout(std::time::Duration::from_secs(60), put)
        .await
        .expect("the upload ends");
    assert!(
        matches!(
            result,
            Err(StoreError::Backend {
                retryable: false,
                ..
            })
        ),
        "{result:?}"
    );
    assert!(matches!(
        store.head(&k).await,
        Err(StoreError::NotFound { .. })
    ));
}

#[tokio::test]
async fn a_missing_azure_container_is_named_not_read_as_empty() {
    let mut config = azurite::config("exists", "");
    config.container = "no-such-container".to_owned();
    let store = silt::store::AzureStore::new(&config, std::time::Duration::from_secs(10)).unwrap();
    let err = store.head(&ObjectKey::new("x").unwrap()).await.unwrap_err();
    assert!(
        err.to_string()
            .contains("container `no-such-container` does not exist"),
        "{err}"
    );
}

/// A GCS and an Azure store on their emulators, reached through `proxy`.
fn through_proxies(start: impl Fn(&str) -> String) -> Vec<(&'static str, Arc<dyn ObjectStore>)> {
    let gcs = silt::store::GcsStore::new(
        &fake_gcs::config(&start(fake_gcs::gated()), "spoiled", ""),
        std::time::Duration::from_secs(10),
    )
    .unwrap();
    let mut azure_config = azurite::config("spoiled", "");
    let endpoint = azure_config.endpoint.clone().unwrap();
    let (host, account) = endpoint.rsplit_once('/').unwrap();
    azure_config.endpoint = Some(format!("{}/{account}", start(host)));
    let azure =
        silt::store::AzureStore::new(&azure_config, std::time::Duration::from_secs(10)).unwrap();
    vec![("gcs", Arc::new(gcs)), ("azure", Arc::new(azure))]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn gcs_and_azure_never_acknowledge_an_upload_that_did_not_land_as_sent() {
    use support::flipping_proxy::{self, Spoil};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data");
    std::fs::write(&path, vec![7u8; 1 << 20]).unwrap();
    for (name, store) in
        through_proxies(|upstream| flipping_proxy::start(upstream, Spoil::Uploads, 1 << 19))
    {
        let k = ObjectKey::new(&format!("spoiled/{}", std::process::id())).unwrap();
        let file = std::fs::File::open(&path).unwrap();
        let err = store.put_file(&k, file, PutMode::Create).await.unwrap_err();
        assert!(
            err.to_string().contains("did not land as sent")
                || matches!(
                    err,
                    StoreError::Backend {
                        retryable: false,
                        ..
                    }
                ),
            "{name}: {err}"
        );
        assert!(
            matches!(store.head(&k).await, Err(StoreError::NotFound { .. })),
            "{name}: the spoiled object was removed"
        );
        let err = store
            .put(&k, vec![9u8; 1 << 20], PutMode::Create)
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::Backend { .. }), "{name}: {err}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn gcs_and_azure_never_take_a_download_that_did_not_arrive_as_stored() {
    use support::flipping_proxy::{self, Spoil};
    for (name, store) in
        through_proxies(|upstream| flipping_proxy::start(upstream, Spoil::Downloads, 1 << 19))
    {
        let k = ObjectKey::new(&format!("spoiled-down/{}", std::process::id())).unwrap();
        store
            .put(&k, vec![5u8; 1 << 20], PutMode::Create)
            .await
            .unwrap();
        let mut sink = Vec::new();
        let err = store.get_into(&k, &mut sink).await.unwrap_err();
        assert!(
            matches!(
                err,
                StoreError::Backend {
                    retryable: true,
                    ..
                }
            ),
            "{name}: {err}"
        );
        let err = store.get(&k, None).await.unwrap_err();
        assert!(matches!(err, StoreError::Backend { .. }), "{name}: {err}");
    }
}

#[tokio::test]
async fn a_missing_gcs_bucket_is_named_not_read_as_empty() {
    let store = silt::store::GcsStore::new(
        &silt::store::GcsConfig {
            bucket: "no-such-bucket".to_owned(),
            prefix: String::new(),
            endpoint: Some(fake_gcs::gated().to_owned()),
            credentials: silt::store::GcsCredentialSources::None,
        },
        std::time::Duration::from_secs(10),
    )
    .unwrap();
    let err = store.head(&ObjectKey::new("x").unwrap()).await.unwrap_err();
    assert!(
        err.to_string()
            .contains("bucket `no-such-bucket` does not exist"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn s3_prefixes_isolate_datastores() {
    let a = seaweed::store("isolation", "team/a").await;
    let b = seaweed::store("isolation", "team/b").await;
    let k = ObjectKey::new("shared-name").unwrap();
    a.put(&k, b"a".to_vec(), PutMode::Create).await.unwrap();
    b.put(&k, b"b".to_vec(), PutMode::Create)
        .await
        .expect("another prefix is another key space");
    let listed = a.list("", None, 1000).await.unwrap();
    let keys: Vec<&str> = listed.items.iter().map(|m| m.key.as_str()).collect();
    assert_eq!(
        keys,
        ["shared-name"],
        "keys come back relative to the prefix"
    );
}

#[tokio::test]
async fn a_dead_server_is_a_clear_retryable_error() {
    seaweed::use_test_credentials();
    let port = seaweed::free_port();
    let store = S3Store::new(&S3Config {
        bucket: "nowhere".to_owned(),
        prefix: String::new(),
        region: None,
        endpoint: Some(format!("http://127.0.0.1:{port}")),
        path_style: None,
        profile: None,
        credentials: Default::default(),
        multipart_threshold_mib: None,
        part_size_mib: None,
        parts_in_flight: None,
    })
    .unwrap();
    let err = store.head(&ObjectKey::new("x").unwrap()).await.unwrap_err();
    match &err {
        StoreError::Backend {
            retryable: true,
            detail,
            ..
        } => {
            assert!(detail.contains("cannot reach the server"), "{detail}")
        }
        other => panic!("expected a retryable backend error, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn prefixed_store_conforms() {
    let store: Arc<dyn ObjectStore> = Arc::new(MemoryStore::new());
    whole_suite(Arc::new(Prefixed::new(store, "team/namespace").unwrap())).await;
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
        conformance::increment(&*store, &k).await;
    }
}

/// The name libtest knows this module's test `name` by: its module path
/// without the crate (`store_conformance::cas_worker` in the binary of all
/// suites, `cas_worker` in a binary of its own).
fn own_test(name: &str) -> String {
    match module_path!().split_once("::") {
        Some((_, module)) => format!("{module}::{name}"),
        None => name.to_owned(),
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
                .args([&own_test("cas_worker"), "--exact", "--ignored", "--quiet"])
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

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn doctor_trusts_stores_that_honour_conditions() {
    let dir = tempfile::tempdir().unwrap();
    let s3: Arc<dyn ObjectStore> = Arc::new(Retrying::new(
        seaweed::store("doctor", "ns").await,
        RetryPolicy::default(),
    ));
    let gcs: Arc<dyn ObjectStore> = Arc::new(Retrying::new(
        fake_gcs::store("doctor", "ns"),
        RetryPolicy::default(),
    ));
    let azure: Arc<dyn ObjectStore> = Arc::new(Retrying::new(
        azurite::store("doctor", "ns"),
        RetryPolicy::default(),
    ));
    for store in [
        dir_store(dir.path()),
        Arc::new(MemoryStore::new()) as Arc<dyn ObjectStore>,
        s3,
        gcs,
        azure,
    ] {
        let report = silt::store::doctor::diagnose(store.clone()).await.unwrap();
        assert!(report.trustworthy, "{report:#?}");
        assert_eq!(report.checks.len(), 5);
        assert!(report.round_trip_ms > 0.0);
        let leftovers = store.list("_silt/doctor/", None, 10).await.unwrap();
        assert!(
            leftovers.items.is_empty(),
            "doctor left objects behind: {:?}",
            leftovers.items
        );
    }
}

#[tokio::test]
async fn doctor_refuses_a_store_that_ignores_conditions() {
    let store: Arc<dyn ObjectStore> = Arc::new(support::lying_store::IgnoresConditions::default());
    let report = silt::store::doctor::diagnose(store).await.unwrap();
    assert!(!report.trustworthy);
    assert_eq!(report.failed_checks().len(), 4, "{report:#?}");
}
