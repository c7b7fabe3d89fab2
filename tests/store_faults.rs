//! Faults beneath the retry layer: 409s, 5xx and timeouts are retried away;
//! a conditional write whose response was lost is resolved by re-reading its
//! owner token (`put_owned`), where a plain `put` would be fooled; an
//! upload the server did not keep as sent is never acknowledged.

use crate::support;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use silt::store::{
    FaultInjecting, FaultRates, GetOutcome, MemoryStore, ObjectKey, ObjectStore, PutMode,
    RetryPolicy, Retrying, StoreError, conformance, put_owned,
};

fn fast_retries() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 12,
        base_delay: Duration::from_millis(1),
        max_delay: Duration::from_millis(5),
        ..RetryPolicy::default()
    }
}

fn faulty(
    rates: FaultRates,
    seed: u64,
) -> (Arc<FaultInjecting<MemoryStore>>, Arc<dyn ObjectStore>) {
    let faults = Arc::new(FaultInjecting::new(MemoryStore::new(), rates, seed));
    let retrying: Arc<dyn ObjectStore> = Arc::new(Retrying::new(
        faults.clone() as Arc<dyn ObjectStore>,
        fast_retries(),
    ));
    (faults, retrying)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn transient_faults_are_retried_away() {
    let rates = FaultRates {
        conflict: 0.1,
        server_error: 0.1,
        timeout: 0.1,
        lost_response: 0.0,
    };
    let (faults, store) = faulty(rates, 7);
    conformance::put_modes(&*store, "modes").await;
    conformance::cas_counter(store.clone(), "counter", 8, 50).await;
    conformance::racing_creates(store.clone(), "creates", 8, 20).await;
    let injected = faults.counts.failed_before.load(Ordering::Relaxed);
    assert!(injected > 50, "only {injected} faults were injected");
}

#[tokio::test]
async fn retries_are_bounded() {
    let rates = FaultRates {
        server_error: 1.0,
        ..FaultRates::default()
    };
    let (faults, store) = faulty(rates, 1);
    let err = store.head(&ObjectKey::new("x").unwrap()).await.unwrap_err();
    assert!(
        matches!(&err, StoreError::Backend { retryable: true, detail, .. } if detail.contains("gave up after 12 attempts")),
        "{err:?}"
    );
    assert_eq!(faults.counts.requests.load(Ordering::Relaxed), 12);
}

/// A counter whose body keeps the owner token of every write it contains,
/// as `put_owned` requires (like an index partition whose entries each carry
/// their commit token): a writer whose response was lost recognises its
/// write even after others have built on it. A bounded window of recent
/// tokens is not enough — others can make any number of writes while one
/// writer backs off.
async fn owned_increment(store: &dyn ObjectStore, key: &ObjectKey, writer: usize, step: usize) {
    loop {
        let (value, recent, version) = match store.get(key, None).await {
            Ok(GetOutcome::Found(meta, data)) => {
                let text = String::from_utf8(data).unwrap();
                let mut words = text.split(' ');
                let value = words.next().unwrap().parse::<u64>().unwrap();
                let recent: Vec<String> = words.map(str::to_owned).collect();
                (value, recent, meta.version)
            }
            Ok(GetOutcome::NotModified) => unreachable!(),
            Err(err) => panic!("{err}"),
        };
        // Delimited, so no token is a substring of another.
        let token = format!("[writer-{writer}-step-{step}]");
        let mut tokens: Vec<&str> = recent.iter().map(String::as_str).collect();
        tokens.push(&token);
        let body = format!("{} {}", value + 1, tokens.join(" ")).into_bytes();
        match put_owned(store, key, body, PutMode::Update(version), &token).await {
            Ok(_) => return,
            Err(StoreError::PreconditionFailed { .. }) => continue,
            Err(err) => panic!("{err}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn lost_responses_are_resolved_by_the_owner_token() {
    let rates = FaultRates {
        lost_response: 0.2,
        ..FaultRates::default()
    };
    let (faults, store) = faulty(rates, 42);
    let key = ObjectKey::new("owned/counter").unwrap();
    store
        .put(&key, b"0 [start]".to_vec(), PutMode::Overwrite)
        .await
        .unwrap();
    let mut tasks = tokio::task::JoinSet::new();
    for writer in 0..8 {
        let (store, key) = (store.clone(), key.clone());
        tasks.spawn(async move {
            for step in 0..50 {
                owned_increment(&*store, &key, writer, step).await;
            }
        });
    }
    while let Some(result) = tasks.join_next().await {
        result.unwrap();
    }
    let (value, _) = match store.get(&key, None).await.unwrap() {
        GetOutcome::Found(meta, data) => (String::from_utf8(data).unwrap(), meta.version),
        GetOutcome::NotModified => unreachable!(),
    };
    assert!(
        value.starts_with("400 "),
        "lost or doubled increments: {value}"
    );
    assert!(
        faults.counts.lost_responses.load(Ordering::Relaxed) > 20,
        "too few lost responses were injected"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_owned_creates_have_exactly_one_winner_despite_lost_responses() {
    for round in 0..50u64 {
        let rates = FaultRates {
            lost_response: 0.3,
            conflict: 0.1,
            ..FaultRates::default()
        };
        let (_faults, store) = faulty(rates, round + 1);
        let key = ObjectKey::new("lock").unwrap();
        let mut tasks = tokio::task::JoinSet::new();
        for writer in 0..8 {
            let (store, key) = (store.clone(), key.clone());
            tasks.spawn(async move {
                let token = format!("owner-{writer:04}");
                let won = put_owned(
                    &*store,
                    &key,
                    token.clone().into_bytes(),
                    PutMode::Create,
                    &token,
                )
                .await;
                (token, won)
            });
        }
        let mut winners = Vec::new();
        while let Some(result) = tasks.join_next().await {
            let (token, won) = result.unwrap();
            match won {
                Ok(_) => winners.push(token),
                Err(StoreError::AlreadyExists { .. }) => {}
                Err(err) => panic!("{err}"),
            }
        }
        assert_eq!(winners.len(), 1, "round {round}: winners {winners:?}");
        let GetOutcome::Found(_, body) = store.get(&key, None).await.unwrap() else {
            unreachable!()
        };
        assert_eq!(
            String::from_utf8(body).unwrap(),
            winners[0],
            "round {round}: the winner is the one in the store"
        );
    }
}

#[tokio::test]
async fn a_plain_put_is_fooled_by_a_lost_response() {
    // The reason put_owned exists: the first attempt lands, its response is
    // lost, and the retry reports that someone else already created the key.
    let rates = FaultRates {
        lost_response: 1.0,
        ..FaultRates::default()
    };
    // One lost response, then one retry.
    let lose_one_response = || -> Arc<dyn ObjectStore> {
        let faults = FaultInjecting::new(MemoryStore::new(), rates, 3).with_budget(1);
        Arc::new(Retrying::new(
            Arc::new(faults) as Arc<dyn ObjectStore>,
            RetryPolicy {
                max_attempts: 2,
                ..fast_retries()
            },
        ))
    };
    let once = lose_one_response();
    let key = ObjectKey::new("k").unwrap();
    let result = once.put(&key, b"mine".to_vec(), PutMode::Create).await;
    assert!(
        matches!(result, Err(StoreError::AlreadyExists { .. })),
        "{result:?}"
    );
    // The same situation through put_owned is recognised as a win.
    let once = lose_one_response();
    let won = put_owned(
        &*once,
        &key,
        b"mine: token-0001".to_vec(),
        PutMode::Create,
        "token-0001",
    )
    .await;
    assert!(won.is_ok(), "{won:?}");
}

/// An S3 store on the SeaweedFS test server reached through a proxy that
/// spoils uploads of at least 1 MiB; and the same prefix reached directly.
async fn spoiled_s3(
    mangle: support::mangling_proxy::Mangle,
    prefix: &str,
) -> (Arc<dyn ObjectStore>, silt::store::S3Store) {
    let (spoiled, direct, _) = spoiled_s3_proxy(mangle, prefix).await;
    (spoiled, direct)
}

/// [`spoiled_s3`] and its proxy (which counts `HEAD` requests).
async fn spoiled_s3_proxy(
    mangle: support::mangling_proxy::Mangle,
    prefix: &str,
) -> (
    Arc<dyn ObjectStore>,
    silt::store::S3Store,
    support::mangling_proxy::Proxy,
) {
    let direct = support::seaweed::store("silt-landed", prefix).await;
    let proxy =
        support::mangling_proxy::start(&support::seaweed::server().endpoint, mangle, 1 << 20);
    let mut config = support::seaweed::config("silt-landed", prefix);
    config.endpoint = Some(proxy.endpoint.clone());
    let spoiled: Arc<dyn ObjectStore> = Arc::new(silt::store::S3Store::new(&config).unwrap());
    (spoiled, direct, proxy)
}

fn scratch_file(bytes: usize) -> std::fs::File {
    use std::io::Write;
    let mut file = tempfile::tempfile().unwrap();
    file.write_all(&vec![7u8; bytes]).unwrap();
    file
}

/// A server that keeps the aws-chunked framing answers 200 for an object
/// of another size: silt refuses the upload, removes what landed, and says
/// what to do; small writes it kept as sent are acknowledged as before.
#[tokio::test]
async fn an_upload_stored_with_another_size_is_refused_and_removed() {
    use support::mangling_proxy::Mangle;
    let (spoiled, direct, proxy) = spoiled_s3_proxy(Mangle::ForgeStoredSize, "forged-size").await;
    let key = ObjectKey::new("data/blob").unwrap();
    for mode in [PutMode::Create, PutMode::Overwrite] {
        let refused = spoiled
            .put_file(&key, scratch_file(3 << 19), mode.clone())
            .await
            .expect_err("an upload stored with another size was acknowledged");
        let text = refused.to_string();
        assert!(
            text.contains("did not land as sent")
                && text.contains("kept 1573157 bytes where 1572864 were sent")
                && text.contains("the object was removed again")
                && text.contains("silt datastore doctor"),
            "{text}"
        );
        assert!(matches!(
            refused,
            StoreError::Backend {
                retryable: false,
                ..
            }
        ));
        assert!(matches!(
            direct.head(&key).await,
            Err(StoreError::NotFound { .. })
        ));
    }
    // Below the proxy's threshold nothing is spoiled: acknowledged, kept,
    // and checked by the SHA-256 SeaweedFS echoes, with no `HEAD`.
    let heads_before = proxy.heads();
    let small = ObjectKey::new("data/small").unwrap();
    spoiled
        .put(&small, b"123456789".to_vec(), PutMode::Create)
        .await
        .unwrap();
    spoiled
        .put_file(&small, scratch_file(1000), PutMode::Overwrite)
        .await
        .unwrap();
    assert_eq!(
        proxy.heads(),
        heads_before,
        "checking an echoed upload cost a HEAD"
    );
    assert_eq!(direct.head(&small).await.unwrap().size, 1000);
}

/// A server whose answer to an upload echoes another SHA-256 than was
/// sent says it stored other bytes: refused and removed, although its size
/// is right (no `HEAD` is needed to see it).
#[tokio::test]
async fn an_upload_answered_with_another_checksum_is_refused() {
    use support::mangling_proxy::Mangle;
    let (spoiled, direct) = spoiled_s3(Mangle::EchoOtherChecksum, "other-echo").await;
    let key = ObjectKey::new("data/echoed").unwrap();
    let refused = spoiled
        .put_file(&key, scratch_file(1 << 20), PutMode::Create)
        .await
        .expect_err("an upload answered with another checksum was acknowledged");
    let text = refused.to_string();
    assert!(
        text.contains("did not land as sent") && text.contains("SHA-256"),
        "{text}"
    );
    assert!(matches!(
        direct.head(&key).await,
        Err(StoreError::NotFound { .. })
    ));
}

/// The SHA-256 silt sends with every upload lets a server that checks it
/// refuse bytes changed on the way: refused, nothing stored.
#[tokio::test]
async fn an_upload_changed_on_the_way_is_refused_by_its_checksum() {
    use support::mangling_proxy::Mangle;
    let (spoiled, direct) = spoiled_s3(Mangle::FlipBody, "flipped").await;
    let from_file = ObjectKey::new("data/from-file").unwrap();
    let refused = spoiled
        .put_file(&from_file, scratch_file(1 << 20), PutMode::Create)
        .await
        .expect_err("an upload changed on the way was acknowledged");
    assert!(refused.to_string().contains("BadDigest"), "{refused}");
    let in_memory = ObjectKey::new("data/in-memory").unwrap();
    let refused = spoiled
        .put(&in_memory, vec![1; 1 << 20], PutMode::Overwrite)
        .await
        .expect_err("an upload changed on the way was acknowledged");
    assert!(refused.to_string().contains("BadDigest"), "{refused}");
    for key in [from_file, in_memory] {
        assert!(matches!(
            direct.head(&key).await,
            Err(StoreError::NotFound { .. })
        ));
    }
}

/// `doctor` tries a bulk upload from a file and reads it back: a store
/// that spoils large uploads is not trustworthy, although its conditional
/// writes (small objects) are right.
#[tokio::test]
async fn doctor_fails_a_store_that_spoils_bulk_uploads() {
    use support::mangling_proxy::Mangle;
    let (direct_report, spoiled_report) = {
        let (spoiled, direct) = spoiled_s3(Mangle::ForgeStoredSize, "doctor-bulk").await;
        let direct: Arc<dyn ObjectStore> = Arc::new(direct);
        (
            silt::store::doctor::diagnose(direct).await.unwrap(),
            silt::store::doctor::diagnose(spoiled).await.unwrap(),
        )
    };
    assert!(direct_report.trustworthy, "{direct_report:?}");
    assert!(!spoiled_report.trustworthy);
    assert_eq!(spoiled_report.failed_checks(), ["bulk upload round trip"]);
    let bulk = spoiled_report
        .checks
        .iter()
        .find(|check| check.name == "bulk upload round trip")
        .unwrap();
    assert!(
        bulk.detail.contains("did not land as sent"),
        "{}",
        bulk.detail
    );
}
