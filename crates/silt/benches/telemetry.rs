//! What a store operation costs through `Traced`: beside the bare store,
//! with nothing recording spans (no OTLP endpoint, no trace file: the
//! span and counter callsites are disabled), and with spans recorded
//! (a trace file at /dev/null). Run by `cargo xtask bench telemetry`;
//! prints `key=value` lines.
//!
//! Usage: `cargo bench --bench telemetry -- [OPERATIONS]`

use std::sync::Arc;
use std::time::{Duration, Instant};

use silt::store::{MemoryStore, ObjectKey, ObjectStore, PutMode, Traced};

/// Batches each measurement is split into; the median batch is reported.
const BATCHES: usize = 20;

fn main() {
    let operations: usize = std::env::args()
        .skip(1)
        .find_map(|arg| arg.parse().ok())
        .unwrap_or(400_000);
    let per_batch = (operations / BATCHES).max(1);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("tokio");
    let key = ObjectKey::new("index/bench/m-1/partition").expect("key");
    let bare: Arc<dyn ObjectStore> = Arc::new(MemoryStore::default());
    runtime
        .block_on(bare.put(&key, vec![1; 64], PutMode::Overwrite))
        .expect("put");
    let traced: Arc<dyn ObjectStore> = Arc::new(Traced::new(bare.clone()));

    let measure = |store: &Arc<dyn ObjectStore>| -> f64 {
        let mut batches: Vec<Duration> = (0..BATCHES)
            .map(|_| {
                let started = Instant::now();
                runtime.block_on(async {
                    for _ in 0..per_batch {
                        store.head(&key).await.expect("head");
                    }
                });
                started.elapsed()
            })
            .collect();
        batches.sort();
        batches[BATCHES / 2].as_secs_f64() * 1e9 / per_batch as f64
    };
    // Warm up, then bare and traced interleaved while nothing records.
    measure(&bare);
    let (mut bare_ns, mut off_ns) = (Vec::new(), Vec::new());
    for _ in 0..3 {
        bare_ns.push(measure(&bare));
        off_ns.push(measure(&traced));
    }
    // Now a subscriber that records every span (and its counters' events
    // go nowhere: no meter without an endpoint).
    let telemetry = silt_telemetry::init_with(
        &silt_telemetry::Options {
            log_level: tracing::level_filters::LevelFilter::WARN,
            ansi: false,
            trace_file: Some("/dev/null".into()),
            version: "bench",
        },
        &silt_telemetry::ExportSettings::none(),
    )
    .expect("telemetry");
    let on_ns: Vec<f64> = (0..3).map(|_| measure(&traced)).collect();
    let _ = telemetry.shutdown();
    let middle = |mut values: Vec<f64>| {
        values.sort_by(f64::total_cmp);
        values[values.len() / 2]
    };
    println!("batches={BATCHES}");
    println!("bare_ns={:.0}", middle(bare_ns));
    println!("traced_off_ns={:.0}", middle(off_ns));
    println!("traced_on_ns={:.0}", middle(on_ns));
}
