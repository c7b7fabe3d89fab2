//! monolith-datastore: the design silt is measured against, built faithfully
//! and for real (a working datastore; the contract suite passes it but for
//! the held commit, which a lease check without a fence in the index cannot
//! pass).
//!
//! It is how the datastores in use today work (see the field notes): one
//! index object per namespace holding every entry of every model, and one
//! namespace lock that every write takes. One thing today's datastores lack
//! is added, because the contract asks for it: commits are fenced by the
//! caller's model lease.
//!
//! ```text
//! _meta/datastore.json                 index kind, layout version, retention
//! _index/index.json                    THE index: every model's entries, all versions
//! _locks/model/<type>/<id>.json        a model's lock
//! _locks/namespace.json                the namespace lock (pushes and structural commands)
//! data/<type>/<id>/<name>/<version>    file content; never overwritten
//! ```
//!
//! - A write (put, remove, push) takes the namespace lock (create with
//!   `If-None-Match: *`; retry every second; give up after twice the TTL,
//!   60 s at the default), pulls the whole index, reads each written
//!   model's lock object to confirm the caller still holds its lease (the
//!   fence: `lock-lost` otherwise), merges its changes, pushes the whole
//!   index back unconditionally, and releases the lock. Every writer, of
//!   any model, is serialized on that one lock.
//! - Model locks are taken first (the host does, for `silt run` and
//!   `silt data put`), but the commit still takes the namespace lock.
//! - A stale lock is taken over by compare-and-swap on its version, one
//!   generation up; heartbeat and release read the lock, compare the token,
//!   then PUT or DELETE conditional on the version read.
//! - A no-op sync is one HEAD of the index: its version is remembered
//!   locally with the listing of every model's version.
//! - Lazy hydration is metadata-first: the whole index is fetched, then only
//!   the files a command touches.
//!
//! The working copy, sidecars, hydration and sync come from
//! `silt-extension`, shared with `partitioned-datastore`; the leases from
//! `baseline-locks`, shared with `sharded-datastore`: only the index and the
//! locks differ, so the benchmarks compare exactly those.

mod commit;
mod index;

use silt_extension::change::{Change, Committed};
use silt_extension::silt::datastore::types::{Error, Lease, ModelRef};
use silt_extension::{Fresh, Index, Listed};

// The metadata the host reads without compiling this component.
silt_extension::metadata! {
    extension: Monolith,
    description: "The baseline: one index object per namespace, pulled, merged and pushed whole under the namespace lock by every write",
    capabilities: ["scoped-sync", "model-locks", "namespace-locks", "lazy-hydration"],
}

/// The index kind this extension writes into `_meta/datastore.json`.
pub(crate) const KIND: &str = "monolith";

/// The extension.
pub struct Monolith;

impl Index for Monolith {
    const KIND: &'static str = KIND;

    fn read_if_changed(model: &ModelRef, known: Option<&str>) -> Result<Fresh, Error> {
        let versioned = index::read(model)?;
        Ok(match versioned.version.as_deref() {
            None => Fresh::Missing,
            Some(version) if Some(version) == known => Fresh::Unchanged,
            Some(_) => Fresh::Changed(versioned),
        })
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
baseline_locks::implement_locks!(Monolith);

silt_extension::export!(Monolith);
