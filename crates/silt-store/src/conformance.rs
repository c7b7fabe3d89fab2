//! The conformance suite every backend must pass: the same cases run against
//! every backend (in tests: in memory, a local directory, SeaweedFS,
//! fake-gcs-server and Azurite).
//!
//! Each case takes a store and a key prefix of its own (so cases can share a
//! store) and panics with a message naming the store when it fails.

use std::sync::Arc;

use super::{GetOutcome, ObjectKey, ObjectStore, PutMode, StoreError, UploadDigest, Version};

fn key(prefix: &str, name: &str) -> ObjectKey {
    ObjectKey::new(&format!("{prefix}/{name}")).expect("test keys are valid")
}

/// The longest keys work on every backend, or are refused as invalid keys
/// (never a backend error, never a panic): 1,024 bytes counting the
/// store's own prefix, segments of 200 bytes, and segments of `~` and `%`
/// (which the directory store escapes to three bytes each).
pub async fn longest_keys(store: &dyn ObjectStore, prefix: &str) {
    let segment = "s".repeat(super::MAX_SEGMENT_LEN);
    let key_of = |len: usize| {
        let mut key = format!("{prefix}/");
        while key.len() + segment.len() < len {
            key.push_str(&segment);
            key.push('/');
        }
        key.push_str(&"e".repeat(len - key.len()));
        key
    };
    let escaped = format!(
        "{prefix}/{}/{}",
        "~".repeat(super::MAX_SEGMENT_LEN / 3),
        "%".repeat(super::MAX_SEGMENT_LEN / 3)
    );
    // Room for the test stores' own prefixes (at most 128 bytes).
    let fits = [key_of(super::MAX_KEY_LEN - 128), escaped];
    for name in &fits {
        let k = ObjectKey::new(name).expect("valid keys");
        store
            .put(&k, b"long".to_vec(), PutMode::Create)
            .await
            .unwrap_or_else(|err| panic!("{store}: put of a {}-byte key: {err}", name.len()));
        match store.get(&k, None).await {
            Ok(GetOutcome::Found(_, data)) => assert_eq!(data, b"long", "{store}"),
            other => panic!("{store}: get of a {}-byte key: {other:?}", name.len()),
        }
        let page = store.list(prefix, None, 1000).await.expect("list");
        assert!(
            page.items.iter().any(|item| item.key == k),
            "{store}: the long key is not listed"
        );
    }
    let longest = ObjectKey::new(&key_of(super::MAX_KEY_LEN)).expect("a valid key alone");
    match store.put(&longest, b"x".to_vec(), PutMode::Create).await {
        Ok(_) | Err(StoreError::InvalidKey(_)) => {}
        Err(other) => panic!("{store}: a 1,024-byte key failed otherwise than as invalid: {other}"),
    }
}

/// `put_file_hashed` answers the SHA-256 of what the object holds (and,
/// hashed beside the send, the length hashed), and refuses a create over
/// an object as `put_file` does: an empty file, a small one, and one of a
/// few MiB.
pub async fn hashed_uploads(store: &dyn ObjectStore, prefix: &str) {
    use sha2::{Digest as _, Sha256};
    use std::io::Write as _;
    for (name, size) in [("empty", 0), ("small", 5), ("mib", (3 << 20) + 3)] {
        let data: Vec<u8> = (0..size).map(|i: usize| (i * 7 + i / 251) as u8).collect();
        let file_with = |data: &[u8]| {
            let mut file = tempfile::tempfile().expect("a temporary file");
            file.write_all(data).expect("write it");
            file
        };
        let k = key(prefix, name);
        let (version, digest) = store
            .put_file_hashed(&k, file_with(&data), PutMode::Create)
            .await
            .expect("hashed upload");
        let expected: [u8; 32] = Sha256::digest(&data).into();
        match digest {
            UploadDigest::OfSent { sha256, len } | UploadDigest::OfFileBeside { sha256, len } => {
                assert_eq!((sha256, len), (expected, size as u64), "{store}: {name}");
            }
        }
        match store.get(&k, None).await.expect("get") {
            GetOutcome::Found(meta, got) => {
                assert!(got == data, "{store}: {name}: other bytes came back");
                assert_eq!(meta.version, version, "{store}: {name}");
            }
            GetOutcome::NotModified => unreachable!("no if-none-match was given"),
        }
        let again = store
            .put_file_hashed(&k, file_with(b"other"), PutMode::Create)
            .await;
        assert!(
            matches!(again, Err(StoreError::AlreadyExists { .. })),
            "{store}: {name}: second create: {again:?}"
        );
    }
}

/// Every put mode, `get` with `if-none-match`, `head`, conditional and
/// unconditional delete.
pub async fn put_modes(store: &dyn ObjectStore, prefix: &str) {
    let k = key(prefix, "object");
    assert!(
        matches!(store.head(&k).await, Err(StoreError::NotFound { .. })),
        "{store}: head of a missing key"
    );
    assert!(
        matches!(store.get(&k, None).await, Err(StoreError::NotFound { .. })),
        "{store}: get of a missing key"
    );

    let v1 = store
        .put(&k, b"one".to_vec(), PutMode::Create)
        .await
        .expect("create");
    let again = store.put(&k, b"two".to_vec(), PutMode::Create).await;
    assert!(
        matches!(again, Err(StoreError::AlreadyExists { .. })),
        "{store}: second create: {again:?}"
    );

    let v2 = store
        .put(&k, b"two".to_vec(), PutMode::Update(v1.clone()))
        .await
        .expect("update on the current version");
    assert_ne!(v1, v2, "{store}: an update must produce a new version");
    let stale = store
        .put(&k, b"three".to_vec(), PutMode::Update(v1.clone()))
        .await;
    assert!(
        matches!(stale, Err(StoreError::PreconditionFailed { .. })),
        "{store}: stale update: {stale:?}"
    );

    match store.get(&k, None).await.expect("get") {
        GetOutcome::Found(meta, data) => {
            assert_eq!(data, b"two", "{store}");
            assert_eq!(meta.version, v2, "{store}: get reports the current version");
            assert_eq!(meta.size, 3, "{store}");
        }
        GetOutcome::NotModified => {
            panic!("{store}: get without if-none-match returned not-modified")
        }
    }
    assert_eq!(
        store.get(&k, Some(&v2)).await.expect("get"),
        GetOutcome::NotModified,
        "{store}"
    );
    assert!(
        matches!(store.get(&k, Some(&v1)).await, Ok(GetOutcome::Found(..))),
        "{store}"
    );
    assert_eq!(store.head(&k).await.expect("head").version, v2, "{store}");

    let v3 = store
        .put(&k, b"four".to_vec(), PutMode::Overwrite)
        .await
        .expect("overwrite");
    assert_ne!(v3, v2, "{store}");

    let missing = key(prefix, "never-written");
    let update_missing = store
        .put(&missing, b"x".to_vec(), PutMode::Update(v3.clone()))
        .await;
    assert!(
        matches!(update_missing, Err(StoreError::PreconditionFailed { .. })),
        "{store}: update of a missing key: {update_missing:?}"
    );

    let wrong = store.delete(&k, Some(&v2)).await;
    assert!(
        matches!(wrong, Err(StoreError::PreconditionFailed { .. })),
        "{store}: delete with a stale version: {wrong:?}"
    );
    store
        .delete(&k, Some(&v3))
        .await
        .expect("delete with the current version");
    assert!(
        matches!(store.head(&k).await, Err(StoreError::NotFound { .. })),
        "{store}: deleted"
    );
    store
        .delete(&k, None)
        .await
        .expect("deleting a missing key without if-match succeeds");
}

/// Listing: prefix filtering, order, `start-after`, pages of at most 1000
/// over more than 1000 keys.
pub async fn pagination(store: Arc<dyn ObjectStore>, prefix: &str, count: usize) {
    let items: Vec<ObjectKey> = (0..count)
        .map(|i| key(prefix, &format!("p/{i:05}")))
        .collect();
    let limit = Arc::new(tokio::sync::Semaphore::new(32));
    let mut writes = tokio::task::JoinSet::new();
    for k in items.clone() {
        let (store, limit) = (store.clone(), limit.clone());
        writes.spawn(async move {
            let _permit = limit.acquire_owned().await.expect("never closed");
            store.put(&k, vec![1], PutMode::Overwrite).await
        });
    }
    while let Some(result) = writes.join_next().await {
        result.expect("task").expect("put");
    }
    store
        .put(&key(prefix, "q/other"), vec![], PutMode::Overwrite)
        .await
        .expect("put");

    let list_prefix = format!("{prefix}/p/");
    let mut seen = Vec::new();
    let mut after: Option<ObjectKey> = None;
    let mut pages = 0;
    loop {
        let page = store
            .list(&list_prefix, after.as_ref(), 1000)
            .await
            .expect("list");
        pages += 1;
        assert!(
            page.items.len() <= 1000,
            "{store}: page of {}",
            page.items.len()
        );
        seen.extend(page.items.iter().map(|m| m.key.clone()));
        match page.next_start_after {
            Some(next) => after = Some(next),
            None => break,
        }
        assert!(pages < count, "{store}: pagination does not end");
    }
    assert_eq!(seen, items, "{store}: every key once, in order");
    let page = store
        .list(&list_prefix, Some(&items[count - 3]), 1000)
        .await
        .expect("list");
    assert_eq!(page.items.len(), 2, "{store}: start-after");
    let small = store.list(&list_prefix, None, 7).await.expect("list");
    assert_eq!(small.items.len(), 7, "{store}: limit");
    assert_eq!(
        small.next_start_after.as_ref(),
        Some(&items[6]),
        "{store}: next page marker"
    );
}

/// `writers` tasks race to create one key; `rounds` such races run at once
/// on distinct keys (a store may be slow to settle a race, so rounds do not
/// wait for one another). Exactly one writer wins each race.
pub async fn racing_creates(
    store: Arc<dyn ObjectStore>,
    prefix: &str,
    writers: usize,
    rounds: usize,
) {
    let mut tasks = tokio::task::JoinSet::new();
    for round in 0..rounds {
        let k = key(prefix, &format!("race-create/{round}"));
        for writer in 0..writers {
            let (store, k) = (store.clone(), k.clone());
            tasks.spawn(async move {
                let result = store
                    .put(&k, format!("writer {writer}").into_bytes(), PutMode::Create)
                    .await;
                (round, result)
            });
        }
    }
    let mut winners = vec![0; rounds];
    while let Some(joined) = tasks.join_next().await {
        match joined.expect("task") {
            (round, Ok(_)) => winners[round] += 1,
            (_, Err(StoreError::AlreadyExists { .. })) => {}
            (_, Err(other)) => panic!("{store}: racing create failed unexpectedly: {other}"),
        }
    }
    for (round, count) in winners.iter().enumerate() {
        assert_eq!(
            *count, 1,
            "{store}: race {round}: {count} racing creates won"
        );
    }
}

/// `writers` tasks race to update the same version of a key; `rounds` such
/// races run at once on distinct keys. Exactly one writer wins each race,
/// and the store then holds the winner's body.
pub async fn racing_updates(
    store: Arc<dyn ObjectStore>,
    prefix: &str,
    writers: usize,
    rounds: usize,
) {
    let mut tasks = tokio::task::JoinSet::new();
    for round in 0..rounds {
        let k = key(prefix, &format!("race-update/{round}"));
        let base = store
            .put(&k, b"start".to_vec(), PutMode::Overwrite)
            .await
            .expect("put");
        for writer in 0..writers {
            let (store, k, base) = (store.clone(), k.clone(), base.clone());
            tasks.spawn(async move {
                let body = format!("round {round} writer {writer}");
                let result = store
                    .put(&k, body.clone().into_bytes(), PutMode::Update(base))
                    .await;
                (round, body, result)
            });
        }
    }
    let mut winners: Vec<Vec<String>> = vec![Vec::new(); rounds];
    while let Some(joined) = tasks.join_next().await {
        match joined.expect("task") {
            (round, body, Ok(_)) => winners[round].push(body),
            (_, _, Err(StoreError::PreconditionFailed { .. })) => {}
            (_, _, Err(other)) => panic!("{store}: racing update failed unexpectedly: {other}"),
        }
    }
    for (round, won) in winners.iter().enumerate() {
        assert_eq!(
            won.len(),
            1,
            "{store}: race {round}: {} racing updates won",
            won.len()
        );
        let k = key(prefix, &format!("race-update/{round}"));
        match store.get(&k, None).await.expect("get") {
            GetOutcome::Found(_, data) => {
                assert_eq!(data, won[0].as_bytes(), "{store}: race {round}")
            }
            GetOutcome::NotModified => unreachable!("no if-none-match"),
        }
    }
}

/// A counter incremented by compare-and-swap from `tasks` tasks, `increments`
/// times each: no increment may be lost.
pub async fn cas_counter(
    store: Arc<dyn ObjectStore>,
    prefix: &str,
    tasks: usize,
    increments: usize,
) {
    let k = key(prefix, "counter");
    store
        .put(&k, b"0".to_vec(), PutMode::Overwrite)
        .await
        .expect("put");
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..tasks {
        let (store, k) = (store.clone(), k.clone());
        workers.spawn(async move {
            for _ in 0..increments {
                increment(&*store, &k).await;
            }
        });
    }
    while let Some(result) = workers.join_next().await {
        result.expect("worker");
    }
    let (value, _) = read_counter(&*store, &k).await;
    assert_eq!(
        value,
        (tasks * increments) as u64,
        "{store}: lost increments"
    );
}

/// Adds 1 to the counter at `k` by compare-and-swap, retrying lost races.
pub async fn increment(store: &dyn ObjectStore, k: &ObjectKey) {
    loop {
        let (value, version) = read_counter(store, k).await;
        match store
            .put(
                k,
                (value + 1).to_string().into_bytes(),
                PutMode::Update(version),
            )
            .await
        {
            Ok(_) => return,
            Err(StoreError::PreconditionFailed { .. }) => {}
            Err(other) => panic!("{store}: counter update failed: {other}"),
        }
    }
}

/// Reads the counter written by [`cas_counter`].
pub async fn read_counter(store: &dyn ObjectStore, k: &ObjectKey) -> (u64, Version) {
    match store.get(k, None).await.expect("get") {
        GetOutcome::Found(meta, data) => {
            let value = std::str::from_utf8(&data)
                .expect("utf-8")
                .parse()
                .expect("a number");
            (value, meta.version)
        }
        GetOutcome::NotModified => unreachable!("no if-none-match"),
    }
}
