//! What several benchmarks time the same way: medians, and one in-process
//! call on a fresh instance (what every datastore call costs in process).
//! Included by `#[path]` (a directory, so cargo does not take it for a
//! benchmark of its own).

#![allow(dead_code)] // each benchmark uses what it needs

use std::sync::Arc;
use std::time::{Duration, Instant};

use silt::runtime::{ExportCall, Grants, LoadedExtension, Runtime};

/// The median of `samples`.
pub fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

/// `rounds` timings of a fresh instance of `loaded` answering `call`, after
/// `warm_up` untimed ones (allocator slots, caches), in the order measured.
pub async fn time_in_process(
    runtime: &Runtime,
    loaded: &Arc<LoadedExtension>,
    grants: &Grants,
    call: &ExportCall,
    warm_up: usize,
    rounds: usize,
) -> Vec<Duration> {
    let mut samples = Vec::with_capacity(rounds);
    for round in 0..warm_up + rounds {
        let started = Instant::now();
        let mut instance = runtime
            .instantiate(loaded, grants.clone())
            .await
            .expect("instantiate");
        call.clone().invoke(&mut instance).await.expect("call");
        drop(instance);
        if round >= warm_up {
            samples.push(started.elapsed());
        }
    }
    samples
}
