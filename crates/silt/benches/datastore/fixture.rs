//! Clones of one datastore and the fixture they share: models of 1 KiB
//! files, written into a working copy and pushed through the extension
//! itself (leases, uploads, commits), so that each extension builds its own
//! index its own way.

use std::sync::Arc;
use std::time::Instant;

use silt::datastore::{Datastore, LeasePolicy, push_under_leases};
use silt::locations::Locations;
use silt::runtime::bindings::exports::silt::datastore::sync::SetupOptions;
use silt::runtime::bindings::silt::datastore::types::{LocalEdits, ModelRef};

use crate::Shared;

/// Models pushed per push (per lease set) while populating.
const MODELS_PER_PUSH: usize = 128;

/// One machine's view of the datastore: its own directory and local copy.
pub struct Clone {
    _dir: tempfile::TempDir,
    /// Its locations (local copy under `.silt/local`).
    pub locations: Locations,
    /// The extension, on the shared store.
    pub datastore: Arc<Datastore>,
    /// Lease TTL and wait, from `[locks]` (defaults: 30 s, 60 s).
    pub policy: LeasePolicy,
}

/// A fresh clone of `extension`'s datastore.
pub async fn clone(extension: &str, shared: &Shared) -> Clone {
    clone_with(extension, shared, "").await
}

/// A fresh clone of `extension`'s datastore, with `extra` added to its
/// `silt.toml`.
pub async fn clone_with(extension: &str, shared: &Shared, extra: &str) -> Clone {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("silt.toml"),
        format!("{}\n{extra}", shared.toml),
    )
    .unwrap();
    let locations = Locations::discover(dir.path()).unwrap();
    let component = crate::support::component(extension);
    let datastore =
        Datastore::open_with_store(&locations, &component, shared.counting.clone(), None)
            .await
            .unwrap();
    let policy = LeasePolicy::from_config(&locations.config.locks).unwrap();
    Clone {
        _dir: dir,
        locations,
        datastore: Arc::new(datastore),
        policy,
    }
}

/// A fresh clone that acts as writer `writer` of several in this process:
/// its own holder name, as separate machines (or processes) have, so that
/// leases and lease-free commits tell the writers apart.
pub async fn writer_clone(extension: &str, shared: &Shared, writer: usize) -> Clone {
    let mut clone = clone(extension, shared).await;
    let datastore = Arc::into_inner(clone.datastore).expect("a fresh clone is not shared");
    let mut holder = datastore.holder().clone();
    holder.name = format!("{}#writer-{writer}", holder.name);
    clone.datastore = Arc::new(datastore.with_holder(holder));
    clone
}

/// A fresh clone of `extension`'s datastore that sets the datastore up.
pub async fn first_clone(extension: &str, shared: &Shared) -> Clone {
    let first = clone(extension, shared).await;
    first
        .datastore
        .setup(SetupOptions {
            create: true,
            retain_versions: None,
        })
        .await
        .unwrap();
    first
}

/// Fixture model `i`.
pub fn model(i: usize) -> ModelRef {
    ModelRef {
        model_type: "bench".to_owned(),
        model_id: format!("m{i:05}"),
    }
}

/// 1 KiB, different for every (model, file, version).
pub fn content(model: usize, file: usize, version: usize) -> Vec<u8> {
    let mut data = vec![0x5a; 1024];
    data[..8].copy_from_slice(&(model as u64).to_le_bytes());
    data[8..16].copy_from_slice(&(file as u64).to_le_bytes());
    data[16..24].copy_from_slice(&(version as u64).to_le_bytes());
    data
}

impl Clone {
    /// The working directory of fixture model `i`.
    fn model_dir(&self, i: usize) -> std::path::PathBuf {
        let m = model(i);
        self.locations
            .local_dir
            .join("data")
            .join(m.model_type)
            .join(m.model_id)
    }

    /// Pushes the local changes of `models` under their leases.
    pub async fn push(&self, models: Vec<ModelRef>) {
        push_under_leases(&self.datastore, models, &self.policy, LocalEdits::Keep)
            .await
            .unwrap();
    }

    /// Adds models `from..to`, `files` files each; returns the seconds taken.
    pub async fn grow(&self, from: usize, to: usize, files: usize) -> f64 {
        let started = Instant::now();
        let all: Vec<usize> = (from..to).collect();
        for batch in all.chunks(MODELS_PER_PUSH) {
            for &i in batch {
                let dir = self.model_dir(i);
                std::fs::create_dir_all(&dir).unwrap();
                for f in 0..files {
                    std::fs::write(dir.join(format!("f{f:03}")), content(i, f, 0)).unwrap();
                }
            }
            self.push(batch.iter().map(|&i| model(i)).collect()).await;
        }
        started.elapsed().as_secs_f64()
    }

    /// Writes version `round` (from 1) of file `f000` in models `0..count`
    /// (so gc with `--keep 1` then expires the one before).
    pub async fn plant_old_versions(&self, count: usize, round: usize) {
        for i in 0..count {
            std::fs::write(self.model_dir(i).join("f000"), content(i, 0, round)).unwrap();
        }
        self.push((0..count).map(model).collect()).await;
    }
}
