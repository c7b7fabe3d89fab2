//! sharded-datastore: the S3 datastore our users run today, in its current
//! sharded design (see `../shared/notes/peer.md`), built faithfully and for
//! real so that silt's benchmarks show silt beside it in one run. (The
//! monolith baseline is the same tool's design of May 2026.)
//!
//! ```text
//! _meta/datastore.json                 index kind, layout version, retention
//! _index/_meta.json                    {version: 2, partitions: [type/id...], commitSeq}
//! _index/shards/<type>/<id>.json       one shard per model: its slice of the index
//! _locks/model/<type>/<id>.json        a model's lock
//! _locks/namespace.json                the global lock (commits and structural commands)
//! data/<type>/<id>/<name>/<version>    file content; never overwritten
//! ```
//!
//! - **No-op sync**: one GET of `_index/_meta.json`; the local state holds
//!   the last `commitSeq` seen and the listing it went with.
//! - **Commit**: the content is uploaded first (outside the lock); then
//!   under the global lock (create-if-absent, retried every second, 60 s
//!   at most) the push rebuilds the index: it reads `_index/_meta.json` and
//!   every shard, merges the changes into the dirty shards, writes them with
//!   plain PUTs and writes `_index/_meta.json` with `commitSeq + 1` (plain
//!   PUT). There is no compare-and-swap on the index: the global lock is
//!   what protects it. As in the monolith baseline, one thing the peer
//!   lacks is added because the contract asks for it: the commit confirms
//!   each model's lease under the global lock (`baseline-locks`).
//! - **Leases**: per-model lock objects; the global lock drains
//!   symmetrically against them for structural commands (`baseline-locks`).
//!
//! The working copy, sidecars, hydration and sync come from
//! `silt-extension` as for every datastore we ship.

mod commit;
mod index;

use silt_extension::change::{Change, Committed};
use silt_extension::silt::datastore::types::{Error, Lease, ModelRef};
use silt_extension::{Fresh, Index, Listed};

// The metadata the host reads without compiling this component.
silt_extension::metadata! {
    extension: Sharded,
    description: "The baseline users run today: a shard per model, a commit sequence read on every sync, shards and sequence written under a global lock",
    capabilities: ["scoped-sync", "model-locks", "namespace-locks", "lazy-hydration"],
}

/// The index kind this extension writes into `_meta/datastore.json`.
pub(crate) const KIND: &str = "sharded";

/// The extension.
pub struct Sharded;

impl Index for Sharded {
    const KIND: &'static str = KIND;

    fn read_if_changed(model: &ModelRef, known: Option<&str>) -> Result<Fresh, Error> {
        index::read_if_changed(model, known)
    }

    fn list() -> Result<Listed, Error> {
        index::list()
    }

    fn commit(model: &ModelRef, lease: &Lease, changes: &[Change]) -> Result<Committed, Error> {
        commit::commit(model, lease, changes)
    }

    fn commit_many(batch: &[(&ModelRef, &Lease, &[Change])]) -> Vec<Result<Committed, Error>> {
        commit::commit_many(batch)
    }
}

// Leases: the baselines' policy (`baseline-locks`).
baseline_locks::implement_locks!(Sharded);

silt_extension::export!(Sharded);
