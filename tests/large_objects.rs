//! Objects larger than one part on S3 (SeaweedFS, started by the harness):
//! uploads go as multipart uploads, downloads as ranged GETs, with every
//! guarantee of a single PUT (create-only, checked landing), and what a
//! killed upload leaves is found by `verify` and aborted by `gc`.
//!
//! Sizes are a few parts of S3's smallest part (5 MiB), so the suite stays
//! fast; the 6 GiB round trip runs in the benchmark.

use crate::support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use sha2::{Digest as _, Sha256};
use silt::store::{
    LeftoverKind, ObjectKey, ObjectStore, PartSettings, PutMode, S3Config, S3Store, StoreError,
    Sweep, UploadDigest,
};
use support::project::{Backend, Project};
use support::seaweed;

const MIB: usize = 1 << 20;

/// Incompressible bytes, different for each `seed`.
fn random_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        out.extend_from_slice(&state.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// A store on the test server whose parts are S3's smallest (5 MiB).
async fn store_in_parts(prefix: &str, in_flight: usize) -> S3Store {
    seaweed::store("silt-large-objects", prefix).await;
    let config = S3Config {
        multipart_threshold_mib: Some(5),
        part_size_mib: Some(5),
        parts_in_flight: Some(in_flight),
        ..seaweed::config("silt-large-objects", prefix)
    };
    assert_eq!(
        config.part_settings(),
        PartSettings {
            threshold: 5 << 20,
            part_size: 5 << 20,
            in_flight
        }
    );
    S3Store::new(&config).unwrap()
}

fn file_with(data: &[u8]) -> std::fs::File {
    let mut file = tempfile::tempfile().unwrap();
    std::io::Write::write_all(&mut file, data).unwrap();
    file
}

async fn download(store: &S3Store, key: &ObjectKey) -> Result<Vec<u8>, StoreError> {
    let mut sink = Vec::new();
    let meta = store.get_into(key, &mut sink).await?;
    assert_eq!(meta.size, sink.len() as u64);
    Ok(sink)
}

/// Waits (up to 10 s) until no multipart upload is open under the store's
/// prefix: an aborted one goes in the background.
async fn no_upload_left(store: &S3Store) {
    let started = Instant::now();
    loop {
        let open = store.leftovers("", sweep_all(false)).await.unwrap();
        if open.is_empty() {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "uploads left open: {open:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn sweep_all(remove: bool) -> Sweep {
    Sweep {
        older_than: Duration::ZERO,
        remove,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_large_object_goes_up_in_parts_and_comes_down_in_ranges() {
    let store = store_in_parts("round-trip", 3).await;
    // Sizes around the part boundaries: one byte short of a part (one
    // request each way), exactly two parts, and 4 parts and a bit.
    for (name, size) in [
        ("under", 5 * MIB - 1),
        ("two", 10 * MIB),
        ("many", 20 * MIB + 123),
    ] {
        let key = ObjectKey::new(&format!("data/{name}")).unwrap();
        let data = random_bytes(size, size as u64);
        let (version, digest) = store
            .put_file_hashed(&key, file_with(&data), PutMode::Create)
            .await
            .unwrap();
        // In parts, the digest is of the parts as they were sent (hashed
        // in order); one PUT's is the SHA-256 its header carried.
        let sha256: [u8; 32] = Sha256::digest(&data).into();
        let expected = if size >= 5 * MIB {
            UploadDigest::OfSent {
                sha256,
                len: size as u64,
            }
        } else {
            UploadDigest::OfFileBeside {
                sha256,
                len: size as u64,
            }
        };
        assert_eq!(digest, expected, "{name}");
        let parts = size.div_ceil(5 * MIB);
        if size >= 5 * MIB {
            assert!(
                version.0.trim_matches('"').ends_with(&format!("-{parts}")),
                "{name}: a multipart ETag names its {parts} parts: {version:?}"
            );
        }
        assert_eq!(store.head(&key).await.unwrap().version, version);
        let back = download(&store, &key).await.unwrap();
        assert!(back == data, "{name}: {} bytes came back differently", size);

        // A create over it is refused, and the refused upload is aborted.
        let again = store
            .put_file(&key, file_with(&random_bytes(size, 7)), PutMode::Create)
            .await;
        assert!(
            matches!(again, Err(StoreError::AlreadyExists { .. })),
            "{name}: {again:?}"
        );
        assert_eq!(download(&store, &key).await.unwrap(), data, "{name}");
    }
    no_upload_left(&store).await;

    // An empty object and a small one come down too (the empty one has no
    // byte 0 to ask a range of).
    for (name, data) in [("empty", Vec::new()), ("small", b"hello".to_vec())] {
        let key = ObjectKey::new(&format!("data/{name}")).unwrap();
        store
            .put(&key, data.clone(), PutMode::Create)
            .await
            .unwrap();
        assert_eq!(download(&store, &key).await.unwrap(), data, "{name}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn many_large_transfers_at_once_share_the_parts_bound() {
    // One part in memory at a time across eight transfers: each still
    // finishes (no transfer waits on another's parts for good).
    let store = Arc::new(store_in_parts("shared-bound", 1).await);
    let mut tasks = Vec::new();
    for i in 0..8u64 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let key = ObjectKey::new(&format!("data/{i}")).unwrap();
            let data = random_bytes(11 * MIB, i + 100);
            // Half of them hashed as they are sent (parts read ahead in
            // order, then hashed, then sent), half not.
            if i % 2 == 0 {
                let (_, digest) = store
                    .put_file_hashed(&key, file_with(&data), PutMode::Create)
                    .await
                    .unwrap();
                let sha256: [u8; 32] = Sha256::digest(&data).into();
                let len = data.len() as u64;
                assert_eq!(digest, UploadDigest::OfSent { sha256, len }, "{i}");
            } else {
                store
                    .put_file(&key, file_with(&data), PutMode::Create)
                    .await
                    .unwrap();
            }
            assert!(download(&store, &key).await.unwrap() == data, "{i}");
        }));
    }
    let all = futures_join(tasks);
    tokio::time::timeout(Duration::from_secs(120), all)
        .await
        .expect("transfers sharing one part slot all finish");
}

async fn futures_join(tasks: Vec<tokio::task::JoinHandle<()>>) {
    for task in tasks {
        task.await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_upload_a_killed_writer_left_is_found_by_age_and_aborted() {
    let store = store_in_parts("left-open", 2).await;
    // What a writer killed between its parts leaves: an upload with a part.
    let client = store.client();
    let full = "left-open/data/half";
    let upload = client
        .create_multipart_upload()
        .bucket(store.bucket())
        .key(full)
        .send()
        .await
        .unwrap();
    let id = upload.upload_id().unwrap();
    client
        .upload_part()
        .bucket(store.bucket())
        .key(full)
        .upload_id(id)
        .part_number(1)
        .body(random_bytes(5 * MIB, 3).into())
        .send()
        .await
        .unwrap();

    let found = store.leftovers("", sweep_all(false)).await.unwrap();
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].path, "data/half");
    assert_eq!(found[0].kind, LeftoverKind::IncompleteUpload);
    assert_eq!(found[0].size, 5 << 20, "the bytes in its parts");
    // Younger than the floor: maybe a writer still at it; left alone.
    let young = Sweep {
        older_than: Duration::from_secs(3600),
        remove: true,
    };
    assert!(store.leftovers("", young).await.unwrap().is_empty());
    assert_eq!(
        store.leftovers("", sweep_all(false)).await.unwrap().len(),
        1
    );

    let removed = store.leftovers("", sweep_all(true)).await.unwrap();
    assert_eq!(removed.len(), 1);
    no_upload_left(&store).await;
    // Aborted, its key never existed.
    let key = ObjectKey::new("data/half").unwrap();
    assert!(matches!(
        store.head(&key).await,
        Err(StoreError::NotFound { .. })
    ));
}

/// The project's `[datastore.s3]` in 5 MiB parts.
const IN_PARTS: &str = "multipart_threshold_mib = 5\npart_size_mib = 5\nparts_in_flight = 2\n";

#[test]
fn a_file_above_the_threshold_is_committed_and_fetched_by_another_clone() {
    committed_in_parts_and_fetched_by_another_clone(&Project::new(Backend::S3, IN_PARTS));
}

#[test]
fn on_moto_too_a_file_above_the_threshold_is_committed_and_fetched_by_another_clone() {
    support::moto::create_bucket("silt-large-objects");
    let project = Project::on_s3_endpoint(
        &support::moto::server().endpoint,
        "silt-large-objects",
        "us-east-1",
        IN_PARTS,
    );
    committed_in_parts_and_fetched_by_another_clone(&project);
}

/// A file of five parts put in `project`, its object checked to be a
/// multipart one, then fetched by another clone byte for byte.
fn committed_in_parts_and_fetched_by_another_clone(project: &Project) {
    let data = random_bytes(23 * MIB + 5, 11);
    let input = project.path().join("weights.bin");
    std::fs::write(&input, &data).unwrap();
    project.ok(&[
        "data",
        "put",
        "vision/detector",
        "weights.bin",
        input.to_str().unwrap(),
    ]);
    std::fs::remove_file(&input).unwrap();

    let store = project.root_store();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let keys = project.keys("data/");
    assert_eq!(keys.len(), 1, "{keys:?}");
    let meta = runtime
        .block_on(store.head(&ObjectKey::new(&keys[0]).unwrap()))
        .unwrap();
    assert!(
        meta.version.0.trim_matches('"').ends_with("-5"),
        "uploaded in five parts: {meta:?}"
    );

    let clone = project.another_clone();
    let out = clone.path().join("out.bin");
    clone.ok(&[
        "data",
        "get",
        "vision/detector",
        "weights.bin",
        "-o",
        out.to_str().unwrap(),
    ]);
    let back = std::fs::read(&out).unwrap();
    assert!(back == data, "{} bytes came back differently", back.len());
    clone.ok(&["datastore", "verify"]);
}

#[test]
fn a_large_put_killed_mid_upload_leaves_an_upload_verify_names_and_gc_aborts() {
    let project = Project::new(
        Backend::S3,
        "multipart_threshold_mib = 5\npart_size_mib = 5\nparts_in_flight = 1\n",
    );
    let input = project.path().join("big.bin");
    std::fs::write(&input, random_bytes(400 * MIB, 5)).unwrap();
    let store = project.root_store();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let mut caught = false;
    for _attempt in 0..5 {
        let mut put = project.silt();
        put.args(["data", "put", "t/m", "big.bin"])
            .arg(&input)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        let mut child = put.spawn().unwrap();
        let started = Instant::now();
        while child.try_wait().unwrap().is_none() && started.elapsed() < Duration::from_secs(120) {
            let open = runtime.block_on(store.leftovers("", sweep_all(false)));
            // Caught once a part has landed (an upload without parts has
            // no age on SeaweedFS, and holds nothing).
            if open.is_ok_and(|open| open.iter().any(|upload| upload.size > 0)) {
                caught = child.try_wait().unwrap().is_none();
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        child.wait().unwrap();
        if caught {
            break;
        }
    }
    assert!(caught, "no put was caught mid-upload");

    // Idle for less than the default hour, it may be a writer's under way:
    // verify does not call it a problem, gc leaves it.
    project.ok(&["datastore", "verify"]);
    let report = project.json(&["datastore", "gc", "--keep", "10"]);
    assert_eq!(report["leftovers_removed"], 0, "{report}");
    let all = ["datastore", "gc", "--keep", "10", "--orphan-min-age", "0"];
    let report = project.json(&all);
    assert_eq!(report["leftovers_removed"], 1, "{report}");
    assert!(
        runtime
            .block_on(store.leftovers("", sweep_all(false)))
            .unwrap()
            .is_empty()
    );
    project.ok(&["datastore", "verify"]);
    // And the next put of the same file goes through.
    project.ok(&["data", "put", "t/m", "big.bin", input.to_str().unwrap()]);
}

/// A datastore that is a whole bucket (no prefix, no namespace) cannot
/// tell its uploads from other tools' in that bucket: gc leaves every one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_datastore_that_is_the_whole_bucket_leaves_other_tools_uploads_alone() {
    let bucket = "silt-whole-bucket";
    let store = seaweed::store(bucket, "").await;
    let client = store.client();
    let upload = client
        .create_multipart_upload()
        .bucket(bucket)
        .key("backups/nightly.tar")
        .send()
        .await
        .unwrap();
    let id = upload.upload_id().unwrap();
    client
        .upload_part()
        .bucket(bucket)
        .key("backups/nightly.tar")
        .upload_id(id)
        .part_number(1)
        .body(random_bytes(1024, 9).into())
        .send()
        .await
        .unwrap();
    assert!(
        store
            .leftovers("", sweep_all(true))
            .await
            .unwrap()
            .is_empty()
    );
    let open = client
        .list_multipart_uploads()
        .bucket(bucket)
        .send()
        .await
        .unwrap();
    assert_eq!(
        open.uploads().len(),
        1,
        "the other tool's upload is still there"
    );
    client
        .abort_multipart_upload()
        .bucket(bucket)
        .key("backups/nightly.tar")
        .upload_id(id)
        .send()
        .await
        .unwrap();
}
