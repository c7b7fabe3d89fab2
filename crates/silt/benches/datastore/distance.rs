//! Scenarios 1–6 again on the datastore the others left, each run twice in
//! a row: near (straight to the store, about 1 ms a request here) and far
//! (the same server through the latency proxy, at
//! [`support::distance::far`]: 20 ms a round trip unless set otherwise). For each: time, requests, and requests in
//! sequence (the critical path, from the timeline of every request). Far
//! from the store, no client can finish in less than its requests in
//! sequence × the round trip: that is the scenario's physical limit, and
//! the ratio to it says what the rest costs. Scenarios 1, 4 and 5 are the
//! median of several runs at each distance (one run moves by a few ms).

use std::time::Instant;

use serde::Serialize;

use crate::fixture::{Clone, model};
use crate::scenarios::{
    self, DISTINCT_FROM, Floor, GC_ENTRIES, WRITE_TARGET, ms, percentile, put, stage,
};
use crate::support::distance;
use crate::support::latency_proxy::Distance;
use crate::{Shared, Sizes, Traffic};

/// One scenario at one distance.
#[derive(Serialize)]
pub struct Measured {
    /// Wall time (a write, a no-op sync, a cold clone: the p50 of
    /// `Sizes::writes` runs).
    pub ms: f64,
    /// Requests of every kind (a write: per write; a no-op sync, a cold
    /// clone: p50).
    pub requests: u64,
    /// Requests one after another (a write, a no-op sync, a cold clone:
    /// p50).
    pub in_sequence: usize,
    /// Bytes each way, together (a write: per write; a no-op sync, a cold
    /// clone: p50).
    pub bytes: u64,
    /// What else must hold (writers landed, lost updates, versions expired).
    pub outcome: String,
}

impl Measured {
    /// One run of a scenario.
    fn new(ms: f64, traffic: &Traffic, in_sequence: usize, outcome: String) -> Self {
        Self {
            ms,
            requests: traffic.requests,
            in_sequence,
            bytes: traffic.bytes_down + traffic.bytes_up,
            outcome,
        }
    }

    /// The median of several runs of one scenario, each figure on its own
    /// (time, requests and requests in sequence need not come from one run).
    fn p50(runs: &[Self]) -> Self {
        let median =
            |of: &dyn Fn(&Self) -> f64| percentile(&runs.iter().map(of).collect::<Vec<f64>>(), 0.5);
        Self {
            ms: median(&|m| m.ms),
            requests: median(&|m| m.requests as f64) as u64,
            in_sequence: median(&|m| m.in_sequence as f64) as usize,
            bytes: median(&|m| m.bytes as f64) as u64,
            outcome: String::new(),
        }
    }

    /// Scenario 2 or 3: the writers' wall time, and `N/M landed, L lost, T
    /// lock timeouts`.
    fn of_writers(c: &scenarios::Concurrent) -> Self {
        let mut outcome = format!("{}/{} landed", c.succeeded, c.writers);
        if let Some(lost) = c.lost_updates {
            outcome += &format!(", {lost} lost");
        }
        if c.lock_timeouts > 0 {
            outcome += &format!(", {} lock timeouts", c.lock_timeouts);
        }
        if let Some(first) = c.other_errors.first() {
            outcome += &format!(", {} failed (the first: {first})", c.other_errors.len());
        }
        Self::new(c.wall_ms, &c.traffic, c.in_sequence, outcome)
    }
}

/// One scenario near the store and far from it.
#[derive(Serialize)]
pub struct NearAndFar {
    /// Which, as the report names it.
    pub scenario: String,
    /// Straight to the store.
    pub near: Measured,
    /// Through the proxy.
    pub far: Measured,
    /// The far round trip.
    pub rtt_ms: f64,
    /// Far, the least time any client could take: its requests in
    /// sequence × the round trip (or its bytes at a capped bandwidth).
    pub limit_ms: f64,
}

impl NearAndFar {
    /// Far time over the limit.
    pub fn ratio(&self) -> f64 {
        self.far.ms / self.limit_ms
    }
}

/// Every request from now on near the store (`far: false`) or far.
fn go(shared: &Shared, far: bool) {
    shared.switch.set(if far {
        distance::far()
    } else {
        Distance::default()
    });
}

/// Runs the scenarios near and far for `extension`, on the datastore
/// `main` (a clone holding every file) and the others share.
pub async fn run(extension: &str, shared: &Shared, main: &Clone, sizes: &Sizes) -> Vec<NearAndFar> {
    if distance::far() == Distance::default() {
        // No distance asked (`SILT_BENCH_RTT_MS=0`, no bandwidth cap).
        return Vec::new();
    }
    let largest = *sizes.models.last().unwrap();
    let mut rows = Vec::new();
    let mut pair = |scenario: &str, near: Measured, far: Measured| {
        eprintln!("{extension}: {scenario}, near and far, done");
        let distance = distance::far();
        rows.push(NearAndFar {
            scenario: scenario.to_owned(),
            limit_ms: distance::limit_ms(distance, far.in_sequence, far.bytes),
            near,
            far,
            rtt_ms: distance.rtt.as_secs_f64() * 1e3,
        });
    };
    let at = |far: bool| {
        go(shared, far);
        if far { "far" } else { "near" }
    };

    let write = |tag: &'static str| one_write(shared, main, sizes.writes, tag);
    let near = {
        at(false);
        write("near").await
    };
    let far = {
        at(true);
        write("far").await
    };
    pair(
        &format!(
            "1. one 1 KiB write, {} objects",
            largest * sizes.files_per_model
        ),
        near,
        far,
    );

    // Before the concurrent writers, whose journal entries a pull right
    // after them reads again (a lost compare-and-swap's announcement stays
    // pending until settled). Up to date first, at each distance: then the
    // pulls that find nothing.
    let runs = sizes.writes;
    let noop = async || {
        scenarios::timed_pull(main, shared).await;
        let mut each = Vec::new();
        for _ in 0..runs {
            let (t, _) = scenarios::timed_pull(main, shared).await;
            each.push(Measured::new(
                t.ms,
                &t.traffic,
                t.in_sequence,
                String::new(),
            ));
        }
        Measured::p50(&each)
    };
    at(false);
    let near = noop().await;
    at(true);
    let far = noop().await;
    pair("4. no-op sync", near, far);

    let data_bytes = (largest * sizes.files_per_model * 1024) as u64;
    // A fresh clone each run, near on even models from the middle on, far
    // on odd ones (none of them another scenario's).
    let cold = async |first_model: usize| {
        let mut each = Vec::new();
        for run in 0..runs {
            let target = model(first_model + 2 * run);
            let c = scenarios::cold_clone_one_model(extension, shared, target, data_bytes).await;
            each.push(Measured::new(
                c.ms,
                &c.traffic,
                c.in_sequence,
                String::new(),
            ));
        }
        Measured::p50(&each)
    };
    at(false);
    let near = cold(largest / 2).await;
    at(true);
    let far = cold(largest / 2 + 1).await;
    pair("5. cold clone, make one model present", near, far);

    let distinct = async |tag: &str| {
        let c = scenarios::concurrent(
            extension,
            shared,
            16,
            |i| model(DISTINCT_FROM + i),
            &format!("d16-{tag}"),
            Floor::Skip,
        )
        .await;
        Measured::of_writers(&c)
    };
    let near = distinct(at(false)).await;
    let far = distinct(at(true)).await;
    pair("2. 16 concurrent writers, distinct models", near, far);

    let same = async |tag: &str| {
        let c = scenarios::same_model(extension, shared, main, &format!("same-{tag}")).await;
        Measured::of_writers(&c)
    };
    let near = same(at(false)).await;
    let far = same(at(true)).await;
    pair("3. 16 concurrent writers, one model", near, far);

    // The versions gc expires are planted near the store, untimed; the
    // scenario's first round planted version 1.
    let gc = async |round: usize, far: bool| {
        go(shared, false);
        main.plant_old_versions(GC_ENTRIES, round).await;
        go(shared, far);
        let g = scenarios::gc(main, shared).await;
        Measured::new(
            g.ms,
            &g.traffic,
            g.in_sequence,
            format!("expired {}", g.entries_expired),
        )
    };
    let near = gc(2, false).await;
    let far = gc(3, true).await;
    pair(&format!("6. gc of {GC_ENTRIES} versions"), near, far);

    go(shared, false);
    rows
}

/// Scenario 1 at one distance: `writes` writes into one model by `main`,
/// each timed and its requests in sequence counted; p50s.
async fn one_write(shared: &Shared, main: &Clone, writes: usize, tag: &str) -> Measured {
    let target = model(WRITE_TARGET);
    let staged = stage(main, 0);
    // The first after the switch opens the way (a connection, a token).
    put(main, &target, &format!("warm-{tag}"), &staged)
        .await
        .unwrap();
    let before = shared.counts();
    let (mut times, mut chains) = (Vec::new(), Vec::new());
    for i in 0..writes {
        shared.timeline.take();
        let started = Instant::now();
        put(main, &target, &format!("{tag}-{i}"), &staged)
            .await
            .unwrap();
        times.push(ms(started));
        chains.push(shared.timeline.take_in_sequence() as f64);
    }
    let traffic = crate::Traffic::between(before, shared.counts());
    let n = writes as u64;
    Measured {
        ms: percentile(&times, 0.5),
        requests: traffic.requests / n,
        in_sequence: percentile(&chains, 0.5) as usize,
        bytes: (traffic.bytes_down + traffic.bytes_up) / n,
        outcome: String::new(),
    }
}

/// Panics unless silt's writers all landed, with nothing lost, at both
/// distances, and every extension's gc expired what was planted.
pub fn check(results: &[&[NearAndFar]], extensions: &[&str]) {
    for (rows, extension) in results.iter().zip(extensions) {
        for row in rows.iter() {
            for measured in [&row.near, &row.far] {
                let outcome = &measured.outcome;
                if row.scenario.starts_with("6.") {
                    assert_eq!(
                        outcome,
                        &format!("expired {GC_ENTRIES}"),
                        "{extension}: {}",
                        row.scenario
                    );
                }
                let failed = outcome.contains("failed")
                    || (outcome.contains("lost") && !outcome.contains(", 0 lost"));
                assert!(!failed, "{extension}: {}: {outcome}", row.scenario);
                if *extension == crate::EXTENSIONS[0] && outcome.contains("landed") {
                    assert!(
                        outcome.starts_with("16/16 landed") && !outcome.contains("timeouts"),
                        "{extension}: {}: {outcome}",
                        row.scenario
                    );
                }
            }
        }
    }
}

/// Prints the side-by-side table: one column per extension, silt's first.
pub fn print(results: &[&[NearAndFar]], extensions: &[&str]) {
    let Some(first) = results.first().filter(|rows| !rows.is_empty()) else {
        return;
    };
    let rtt = first.first().map_or(0.0, |row| row.rtt_ms);
    println!(
        "\n| near (straight to the store) / far ({rtt:.0} ms round trip): time; requests, in sequence; far's limit (in sequence × {rtt:.0} ms) and the ratio to it | {} |",
        extensions.join(" | ")
    );
    println!("|---|{}", "---|".repeat(extensions.len()));
    for (i, row) in first.iter().enumerate() {
        let cells: Vec<String> = results
            .iter()
            .map(|rows| {
                let row = &rows[i];
                let one = |m: &Measured| {
                    let outcome = if m.outcome.is_empty() {
                        String::new()
                    } else {
                        format!("; {}", m.outcome)
                    };
                    format!(
                        "{:.1} ms; {} req, {} in sequence{outcome}",
                        m.ms, m.requests, m.in_sequence
                    )
                };
                format!(
                    "near {} / **far {}**; limit {:.0} ms, {:.2}×",
                    one(&row.near),
                    one(&row.far),
                    row.limit_ms,
                    row.ratio()
                )
            })
            .collect();
        println!("| {} | {} |", row.scenario, cells.join(" | "));
    }
}
