//! Object-store throughput against a real S3-compatible server (SeaweedFS,
//! started here), measured side by side in one run:
//!
//! 1. small put, get and conditional put (create) through the host's store
//!    trait (with its retry layer, as silt uses it) vs aws-sdk-s3 called
//!    directly, alternating operation by operation so drift hits both alike;
//! 2. bulk download of N × 4 KB objects into a cache directory through the
//!    host's transfer path at concurrency 1, 8, 32 and 64.
//!
//! Run by `cargo xtask bench store [--quick]`; prints a markdown table and
//! writes `target/bench/store.json` (path from the first argument).

#[path = "../../../tests/support/mod.rs"]
mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_s3::primitives::ByteStream;
use silt::capabilities::transfer::{Transfer, download};
use silt::runtime::bindings::silt::datastore::object_store::DownloadItem;
use silt::store::{ObjectKey, ObjectStore, PutMode, RetryPolicy, Retrying};

const ROUNDS: usize = 6;

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let support::bench_args::BenchArgs { quick, out, .. } =
        support::bench_args::BenchArgs::from_env();
    let ops_per_round = if quick { 40 } else { 200 };
    let objects = if quick { 1_000 } else { 10_000 };

    let s3 = support::seaweed::store("bench", "").await;
    let client = s3.client().clone();
    let host: Arc<dyn ObjectStore> = Arc::new(Retrying::new(s3, RetryPolicy::default()));
    let body = vec![0x5Au8; 1024];

    // A fresh SeaweedFS allocates its first volumes on the first writes
    // (≈ 200 ms once); keep that out of either side's numbers.
    for i in 0..32 {
        let key = format!("warmup/{}/object-{i}", i % 4);
        client
            .put_object()
            .bucket("bench")
            .key(&key)
            .body(ByteStream::from(body.clone()))
            .send()
            .await
            .unwrap();
        host.get(&ObjectKey::new(&key).unwrap(), None)
            .await
            .unwrap();
    }

    // 1. Small operations, host trait vs SDK direct, alternating operation by
    // operation so that drift and server state hit both sides alike.
    let mut host_time = [Duration::ZERO; 3];
    let mut sdk_time = [Duration::ZERO; 3];
    let mut latencies: [[Vec<Duration>; 2]; 3] = Default::default();
    for (slot, op) in ["put", "get", "create"].iter().enumerate() {
        for i in 0..ROUNDS * ops_per_round {
            for side in if i % 2 == 0 { [0, 1] } else { [1, 0] } {
                let key = match *op {
                    "create" => format!("small/{side}/create-{i}"),
                    _ => format!("small/{side}/object-{}", i % 16),
                };
                let started = Instant::now();
                if side == 0 {
                    let key = ObjectKey::new(&key).unwrap();
                    match *op {
                        "put" => drop(
                            host.put(&key, body.clone(), PutMode::Overwrite)
                                .await
                                .unwrap(),
                        ),
                        "get" => drop(host.get(&key, None).await.unwrap()),
                        _ => drop(host.put(&key, body.clone(), PutMode::Create).await.unwrap()),
                    }
                    host_time[slot] += started.elapsed();
                    latencies[slot][0].push(started.elapsed());
                } else {
                    let request = client.put_object().bucket("bench").key(&key);
                    match *op {
                        "put" => drop(
                            request
                                .body(ByteStream::from(body.clone()))
                                .send()
                                .await
                                .unwrap(),
                        ),
                        "get" => {
                            let output = client
                                .get_object()
                                .bucket("bench")
                                .key(&key)
                                .send()
                                .await
                                .unwrap();
                            drop(output.body.collect().await.unwrap());
                        }
                        _ => drop(
                            request
                                .if_none_match("*")
                                .body(ByteStream::from(body.clone()))
                                .send()
                                .await
                                .unwrap(),
                        ),
                    }
                    sdk_time[slot] += started.elapsed();
                    latencies[slot][1].push(started.elapsed());
                }
            }
        }
    }
    let total_ops = (ROUNDS * ops_per_round) as f64;
    let rate = |d: Duration| total_ops / d.as_secs_f64();

    // 2. Bulk download through the transfer path.
    let mut uploads = tokio::task::JoinSet::new();
    let limit = Arc::new(tokio::sync::Semaphore::new(64));
    for i in 0..objects {
        let (client, limit) = (client.clone(), limit.clone());
        uploads.spawn(async move {
            let _permit = limit.acquire_owned().await.unwrap();
            client
                .put_object()
                .bucket("bench")
                .key(format!("bulk/{i:06}"))
                .body(ByteStream::from(vec![(i % 251) as u8; 4096]))
                .send()
                .await
                .unwrap();
        });
    }
    while let Some(done) = uploads.join_next().await {
        done.unwrap();
    }
    let mut bulk = Vec::new();
    for concurrency in [1usize, 8, 32, 64] {
        let cache = tempfile::tempdir().unwrap();
        let transfer =
            Transfer::between(host.clone(), cache.path(), concurrency, None).expect("transfer");
        let items: Vec<DownloadItem> = (0..objects)
            .map(|i| DownloadItem {
                key: format!("bulk/{i:06}"),
                cache_path: format!("objects/{:03}/{i:06}", i % 100),
                expected_version: None,
                sha256: None,
            })
            .collect();
        let started = Instant::now();
        let results = download(Ok(transfer), items).await;
        let took = started.elapsed();
        let failed = results.iter().filter(|r| r.is_err()).count();
        assert_eq!(
            failed, 0,
            "{failed} downloads failed at concurrency {concurrency}"
        );
        bulk.push((
            concurrency,
            objects as f64 / took.as_secs_f64(),
            (objects * 4096) as f64 / took.as_secs_f64() / 1e6,
        ));
    }

    println!(
        "\n| operation ({} each, alternating op by op) | host trait ops/s | aws-sdk-s3 direct ops/s | ratio | host p50 | direct p50 |",
        ROUNDS * ops_per_round
    );
    println!("|---|---:|---:|---:|---:|---:|");
    let mut small_json = Vec::new();
    for (slot, name) in ["put 1 KiB", "get 1 KiB", "conditional put (create) 1 KiB"]
        .iter()
        .enumerate()
    {
        let (h, d) = (rate(host_time[slot]), rate(sdk_time[slot]));
        let p50 = |side: usize| {
            let mut v = latencies[slot][side].clone();
            v.sort();
            v[v.len() / 2].as_secs_f64() * 1e3
        };
        println!(
            "| {name} | {h:.0} | {d:.0} | {:.2} | {:.2} ms | {:.2} ms |",
            h / d,
            p50(0),
            p50(1)
        );
        small_json.push(format!(
            "{{\"op\":\"{name}\",\"host_ops\":{h:.1},\"sdk_ops\":{d:.1},\"ratio\":{:.3}}}",
            h / d
        ));
    }
    println!("\n| bulk download, {objects} × 4 KB | objects/s | MB/s |");
    println!("|---|---:|---:|");
    let mut bulk_json = Vec::new();
    for (concurrency, objects_per_s, mb_per_s) in &bulk {
        println!("| concurrency {concurrency} | {objects_per_s:.0} | {mb_per_s:.1} |");
        bulk_json.push(format!("{{\"concurrency\":{concurrency},\"objects_per_s\":{objects_per_s:.1},\"mb_per_s\":{mb_per_s:.2}}}"));
    }
    if let Some(out) = out {
        let json = format!(
            "{{\"small\":[{}],\"bulk\":[{}]}}\n",
            small_json.join(","),
            bulk_json.join(",")
        );
        std::fs::write(&out, json).expect("write json");
        println!("\nwrote {out}");
    }
}
