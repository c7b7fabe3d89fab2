//! Scenario 1's ratio, measured so that it can be trusted: silt's one write
//! at the largest namespace against one at the smallest, **interleaved**.
//!
//! Scenario 1 measures each size's writes after growing the fixture to it,
//! minutes apart, and this machine's speed drifts by a third within an
//! hour: a ratio of two p50s of 5 taken that far apart says more about the
//! hour than about the namespace. Here two datastores of silt's extension
//! sit on the same server, one indexing the smallest size and one the
//! largest (written through the store, as `at_scale` does: partitions and
//! journal entries, no data objects, which no write reads or lists). Each
//! writer is a clone that has pulled the whole index (every partition,
//! into its local index), as a lazy clone that has synced has: its data
//! files are not present. The same model (128 files) is written in both,
//! alternately, in ABBA order over an even number of rounds, so drift
//! falls on both sides alike. What it does not measure: a writer holding
//! every file of the namespace locally (scenario 1's writer pushed them).

use std::time::Instant;

use serde::Serialize;

use crate::fixture::{Clone, model};
use crate::scenarios::{mib, ms, percentile, put, stage};
use crate::{Shared, Traffic};

/// The model written: one the fixture fills in both datastores.
const TARGET: usize = 1;

/// One side of the comparison.
#[derive(Serialize)]
pub struct Side {
    /// Files the datastore indexes.
    pub objects: usize,
    /// Models.
    pub models: usize,
    /// Every write's wall time, in the order made.
    pub write_ms: Vec<f64>,
    /// Their median.
    pub write_ms_p50: f64,
    /// Requests and bytes of all the writes together.
    pub traffic: Traffic,
}

/// Both sides and their ratio.
#[derive(Serialize)]
pub struct WriteRatio {
    /// Writes per side.
    pub writes: usize,
    /// The smallest namespace.
    pub small: Side,
    /// The largest.
    pub large: Side,
    /// `large.write_ms_p50 / small.write_ms_p50` (goal ≤ 1.05).
    pub ratio_of_p50s: f64,
    /// The median of each pair's `large / small` (a pair: the two writes of
    /// one round, made back to back).
    pub ratio_p50_of_pairs: f64,
}

/// One datastore and the clone that writes into it.
struct Writer<'a> {
    shared: &'a Shared,
    clone: Clone,
    staged: String,
    models: usize,
    objects: usize,
    write_ms: Vec<f64>,
}

impl<'a> Writer<'a> {
    async fn new(shared: &'a Shared, models: usize, files: usize) -> Self {
        let (clone, _, (pull, _)) =
            crate::at_scale::indexed_clone(shared, models, files, "write ratio").await;
        eprintln!(
            "write ratio: the writer pulled the index in {:.0} ms, {} requests",
            pull.ms, pull.traffic.requests
        );
        let staged = stage(&clone, 0);
        // Not measured: the clone's first write also reads the datastore's
        // metadata and the model's partition.
        put(&clone, &model(TARGET), "warm", &staged).await.unwrap();
        Self {
            shared,
            clone,
            staged,
            models,
            objects: models * files,
            write_ms: Vec::new(),
        }
    }

    async fn write(&mut self, name: &str) {
        let started = Instant::now();
        put(&self.clone, &model(TARGET), name, &self.staged)
            .await
            .unwrap();
        self.write_ms.push(ms(started));
    }

    /// This side's result, with the traffic of all its writes.
    fn side(self, traffic: Traffic) -> Side {
        Side {
            objects: self.objects,
            models: self.models,
            write_ms_p50: percentile(&self.write_ms, 0.5),
            write_ms: self.write_ms,
            traffic,
        }
    }
}

/// The two datastores' sizes and the writes into each.
pub struct RatioSizes {
    /// Models of the small datastore.
    pub small_models: usize,
    /// Models of the large one.
    pub large_models: usize,
    /// Files per model, in both.
    pub files: usize,
    /// Writes into each (even: ABBA).
    pub writes: usize,
}

/// Writes into two datastores of `sizes`, alternating.
pub async fn run(small: &Shared, large: &Shared, sizes: &RatioSizes) -> WriteRatio {
    let writes = sizes.writes;
    assert!(
        writes.is_multiple_of(2),
        "ABBA needs an even number of rounds"
    );
    let mut a = Writer::new(small, sizes.small_models, sizes.files).await;
    let mut b = Writer::new(large, sizes.large_models, sizes.files).await;
    let (a_before, b_before) = (a.shared.counts(), b.shared.counts());
    for round in 0..writes {
        let name = format!("w-{round}");
        // ABBA: whichever goes second in a round goes first in the next.
        if round % 2 == 0 {
            a.write(&name).await;
            b.write(&name).await;
        } else {
            b.write(&name).await;
            a.write(&name).await;
        }
    }
    let a_traffic = Traffic::between(a_before, a.shared.counts());
    let b_traffic = Traffic::between(b_before, b.shared.counts());
    let pairs: Vec<f64> = a
        .write_ms
        .iter()
        .zip(&b.write_ms)
        .map(|(small, large)| large / small)
        .collect();
    let (small, large) = (a.side(a_traffic), b.side(b_traffic));
    WriteRatio {
        writes,
        ratio_of_p50s: large.write_ms_p50 / small.write_ms_p50,
        ratio_p50_of_pairs: percentile(&pairs, 0.5),
        small,
        large,
    }
}

/// Prints its rows.
pub fn print(result: &WriteRatio) {
    // Per write, from the totals: the request count exactly.
    let writes = result.writes as u64;
    let side = |s: &Side| {
        format!(
            "{:.1} ms; {:.2} req, ↓{} ↑{} per write",
            s.write_ms_p50,
            s.traffic.requests as f64 / writes as f64,
            mib(s.traffic.bytes_down / writes),
            mib(s.traffic.bytes_up / writes)
        )
    };
    println!(
        "\n| scenario 1, interleaved (p50 of {} writes each, ABBA) | silt (partitioned) |",
        result.writes
    );
    println!("|---|---|");
    println!(
        "| one write, {} objects / {} models | {} |",
        result.small.objects,
        result.small.models,
        side(&result.small)
    );
    println!(
        "| one write, {} objects / {} models | {} |",
        result.large.objects,
        result.large.models,
        side(&result.large)
    );
    println!(
        "| write time, largest / smallest: ratio of p50s; p50 of pairs | {:.3}; {:.3} |",
        result.ratio_of_p50s, result.ratio_p50_of_pairs
    );
}
