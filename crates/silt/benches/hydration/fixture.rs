//! The fixture generator: fills a datastore with a realistic shape — many
//! models, several names each, several versions per name, sizes spread
//! around 1 KiB — through the datastore extension itself, so the index is
//! the extension's own. Each version round writes every model's files into
//! a writer's working copy and pushes them in large batches: one lease set
//! and ONE bulk upload per batch (`transfer_concurrency` PUTs in flight).

use std::sync::Arc;
use std::time::Instant;

use silt::datastore::{Datastore, LeasePolicy, push_under_leases};
use silt::runtime::bindings::silt::datastore::types::{LocalEdits, ModelRef, TransferStats};

/// Models per push: one lease set and one bulk upload each.
const MODELS_PER_PUSH: usize = 500;

/// The shape of a fixture.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct Shape {
    /// Models.
    pub models: usize,
    /// File names per model.
    pub names: usize,
    /// Versions of every name (each a separate commit).
    pub versions: usize,
}

impl Shape {
    /// Objects in the store once filled (every version of every name).
    pub fn objects(&self) -> usize {
        self.models * self.names * self.versions
    }

    /// Bytes of every version of every file.
    pub fn bytes(&self) -> u64 {
        let per_version: u64 = (0..self.models)
            .flat_map(|m| (0..self.names).map(move |n| size(m, n) as u64))
            .sum();
        per_version * self.versions as u64
    }
}

/// Fixture model `i`.
pub fn model(i: usize) -> ModelRef {
    ModelRef {
        model_type: "fixture".to_owned(),
        model_id: format!("m{i:05}"),
    }
}

/// Name `n` of every model.
pub fn name(n: usize) -> String {
    format!("run/{n:03}.bin")
}

/// Size of name `n` of model `m`: 256 B to 1,655 B, about 956 B on average.
fn size(m: usize, n: usize) -> usize {
    let mix = (m as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ (n as u64).wrapping_mul(0xc2b2_ae35);
    256 + (mix % 1400) as usize
}

/// Content of version `v` of name `n` of model `m`: distinct for each.
pub fn content(m: usize, n: usize, v: usize) -> Vec<u8> {
    let mut data = vec![(m ^ n ^ v) as u8; size(m, n)];
    let stamp = format!("{m}/{n}/{v};");
    let len = stamp.len().min(data.len());
    data[..len].copy_from_slice(&stamp.as_bytes()[..len]);
    data
}

/// What filling took.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct Filled {
    /// Objects written.
    pub objects: usize,
    /// Bytes written.
    pub bytes: u64,
    /// Seconds, all rounds.
    pub seconds: f64,
}

/// Fills `writer`'s datastore (an empty one, set up) with `shape`.
pub async fn fill(writer: &Arc<Datastore>, policy: &LeasePolicy, shape: Shape) -> Filled {
    let started = Instant::now();
    let mut uploaded = (0, 0);
    let all: Vec<usize> = (0..shape.models).collect();
    for version in 0..shape.versions {
        for batch in all.chunks(MODELS_PER_PUSH) {
            for &m in batch {
                let dir = writer.model_dir(&model(m));
                for n in 0..shape.names {
                    let path = dir.join(name(n));
                    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
                    std::fs::write(&path, content(m, n, version)).unwrap();
                }
            }
            let models: Vec<ModelRef> = batch.iter().map(|&m| model(m)).collect();
            let stats = push(writer, policy, models).await;
            uploaded.0 += stats.objects_uploaded;
            uploaded.1 += stats.bytes_uploaded;
        }
        eprintln!(
            "fixture: version {}/{} of {} models committed ({:.0} s)",
            version + 1,
            shape.versions,
            shape.models,
            started.elapsed().as_secs_f64()
        );
    }
    // What the pushes say they uploaded, checked against the shape.
    assert_eq!(uploaded.0, shape.objects() as u64, "objects uploaded");
    assert_eq!(uploaded.1, shape.bytes(), "bytes uploaded");
    Filled {
        objects: uploaded.0 as usize,
        bytes: uploaded.1,
        seconds: started.elapsed().as_secs_f64(),
    }
}

async fn push(
    writer: &Arc<Datastore>,
    policy: &LeasePolicy,
    models: Vec<ModelRef>,
) -> TransferStats {
    let report = push_under_leases(writer, models, policy, LocalEdits::Keep)
        .await
        .expect("the fixture push failed");
    assert!(
        !report.changed.is_empty(),
        "the fixture push committed nothing"
    );
    report.stats
}
