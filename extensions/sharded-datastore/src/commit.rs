//! Commits as the peer makes them: the content is already uploaded; under
//! the global lock, read `_index/_meta.json` and every shard (the push
//! rebuilds the whole index), merge the changes into the dirty shards,
//! write them and then `_index/_meta.json` with `commitSeq + 1`, all with
//! plain PUTs, and release. The cost of a write grows with the number of
//! models; every writer of every model waits for the one lock.
//!
//! As in the monolith baseline (and unlike the peer), each model's lease is
//! confirmed from its lock object under the global lock, just before the
//! shards are written: the contract refuses commits under a lost lease.

use std::collections::BTreeMap;

use baseline_locks::locked_commit::{self, Merged, Work};
use baseline_locks::namespace_lock::{self, Held};
use silt_extension::change::{self, Change, Committed};
use silt_extension::layout::{self, DATA_AREA};
use silt_extension::partition::Partition;
use silt_extension::silt::datastore::types::{Error, Lease, ModelRef};

use crate::index::{self, IndexMeta};

/// Applies `changes` to `model` inside one hold of the global lock.
pub fn commit(model: &ModelRef, lease: &Lease, changes: &[Change]) -> Result<Committed, Error> {
    commit_many(&[(model, lease, changes)])
        .pop()
        .expect("one result per model")
}

/// Applies every model's changes inside one hold of the global lock: one
/// read of the whole index and one write of each dirty shard and of the
/// metadata for the whole batch, as a push does. A model whose lease is
/// no longer its caller's, or whose bases moved on, is left out.
pub fn commit_many(batch: &[Work<'_>]) -> Vec<Result<Committed, Error>> {
    locked_commit::commit_under_lock(crate::KIND, batch, merge_and_write)
}

/// Reads every shard listed in the metadata, as the peer's push does.
fn read_every_shard(meta: &IndexMeta) -> Result<BTreeMap<String, Partition>, Error> {
    let mut shards = BTreeMap::new();
    for label in &meta.partitions {
        let Some(model) = index::model_of(label) else {
            continue;
        };
        let read = index::read_if_changed(&model, None)?.or_empty(&model);
        shards.insert(label.clone(), read.partition);
    }
    Ok(shards)
}

fn merge_and_write(batch: &[Work<'_>], retain: u32, held: &Held) -> Result<Vec<Merged>, Error> {
    let mut meta = index::read_meta()?;
    let mut shards = read_every_shard(&meta)?;
    // A long read may have used part of the TTL: renew before writing.
    namespace_lock::heartbeat(held)?;
    let mut merged = Vec::new();
    for (model, lease, changes) in batch {
        if let Err(err) = silt_extension::lease::confirm(lease) {
            merged.push(Err(err));
            continue;
        }
        let label = layout::model_label(model);
        let shard = shards
            .entry(label.clone())
            .or_insert_with(|| Partition::empty(DATA_AREA, model));
        if let Err(err) = change::check_bases(model, shard, changes) {
            merged.push(Err(err));
            continue;
        }
        shard.seq += 1;
        let applied = change::apply(model, shard, lease, changes, retain)?;
        let version = index::write_shard(model, shard)?;
        meta.partitions.insert(label);
        merged.push(Ok((shard.clone(), version, applied)));
    }
    if merged.iter().any(Result::is_ok) {
        meta.version = 2;
        meta.commit_seq += 1;
        index::write_meta(&meta)?;
    }
    Ok(merged)
}
