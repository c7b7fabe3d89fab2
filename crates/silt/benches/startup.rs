//! In-process execution cost: fresh store + instantiate + one `describe`
//! call, on an already loaded component. Run by `cargo xtask bench startup`;
//! prints `key=value` lines.
//!
//! Usage: `cargo bench --bench startup -- COMPONENT.wasm [ITERATIONS]`

use silt::config::RuntimeConfig;
use silt::runtime::{ArtifactCache, ExportCall, Grants, Runtime};

#[path = "common/mod.rs"]
mod common;

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let Some(path) = args.first() else {
        eprintln!("usage: startup COMPONENT.wasm [ITERATIONS]");
        std::process::exit(2);
    };
    let iterations: usize = args.get(1).and_then(|n| n.parse().ok()).unwrap_or(10_000);
    let cache_dir = std::env::temp_dir().join(format!("silt-bench-{}", std::process::id()));
    let runtime = Runtime::new(
        RuntimeConfig::default(),
        ArtifactCache::new(&cache_dir, 1 << 30),
    );
    let tokio = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio");
    tokio.block_on(async {
        let loaded = runtime.load(path.as_ref()).await.expect("load");
        let mut samples = common::time_in_process(
            &runtime,
            &loaded,
            &Grants::default(),
            &ExportCall::Describe {},
            100,
            iterations,
        )
        .await;
        samples.sort();
        let median = samples[samples.len() / 2];
        let p99 = samples[samples.len() * 99 / 100];
        println!("in_process_us={:.2}", median.as_secs_f64() * 1e6);
        println!("in_process_p99_us={:.2}", p99.as_secs_f64() * 1e6);
        let pooling = runtime.engine().await.expect("engine").pooling;
        println!("pooling={}", u8::from(pooling));
    });
    let _ = std::fs::remove_dir_all(&cache_dir);
}
