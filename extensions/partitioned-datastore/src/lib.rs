//! partitioned-datastore: silt's datastore extension.
//!
//! The layout of a datastore root (every key relative to it):
//!
//! ```text
//! _meta/datastore.json                 layout version and retention (written by setup)
//! _meta/namespace-fence.json           the namespace lease's generation counter
//! _index/<area>/<type>/<id>.json       one index partition per model and area
//! _locks/model/<type>/<id>.json        a model's lease
//! _locks/namespace.json                the namespace (structural) lease
//! _journal/<ms>.<token>.<type%2Fid>   a commit's announcement (empty; layout 2)
//! data/<type>/<id>/<name>/<version>    file content; never overwritten
//! ```
//!
//! Why it scales with the work and not with the datastore:
//! - a commit uploads its new objects under fresh keys, then compare-and-swaps
//!   the one partition it touches; writers of different models share nothing;
//! - a lease is one small object per model, and every lease acquisition
//!   raises the partition's fence, so an old holder can never commit again;
//! - a single-file write takes no lease at all: it announces, uploads and
//!   compare-and-swaps (three requests), refused while anyone holds the
//!   model's lease (`silt_extension::unleased`);
//! - a pull lists the journal after the last entry it reconciled and reads
//!   only the models named since (one LIST when nothing changed); every ten
//!   minutes it compares a LIST of `_index/` with the local sidecars instead.
//!
//! The working copy, sidecars, hydration and sync come from
//! `silt-extension`; this crate is the index (`index`, `commit`) and the
//! lease protocol (`leases`).

mod commit;
mod index;
mod leases;

use silt_extension::change::{Change, Committed};
use silt_extension::journal::Announcement;
use silt_extension::partition::Versioned;
use silt_extension::silt::datastore::types::{Error, Holder, Lease, ModelRef};
use silt_extension::{Fresh, Index, Listed};

// The metadata the host reads without compiling this component, and `describe`.
silt_extension::metadata! {
    extension: Partitioned,
    description: "silt's datastore: one index partition per model, compare-and-swap commits, leases with fencing, lazy hydration",
    layout: "silt-partitioned/2",
    capabilities: ["scoped-sync", "partitioned-index", "model-locks", "namespace-locks", "lazy-hydration", "lease-free-commits", "gc"],
}

/// The extension: each interface is implemented in the module named after it.
pub struct Partitioned;

/// The index kind this extension writes into `_meta/datastore.json`.
pub(crate) const KIND: &str = "partitioned";

impl Index for Partitioned {
    const KIND: &'static str = KIND;
    const JOURNAL: bool = true;
    const CHECKPOINT: bool = true;

    fn read_if_changed(model: &ModelRef, known: Option<&str>) -> Result<Fresh, Error> {
        index::read_if_changed(model, known)
    }

    fn read_many(models: &[ModelRef]) -> Vec<Result<Fresh, Error>> {
        index::read_many(models)
    }

    fn list() -> Result<Listed, Error> {
        index::list()
    }

    fn commit(model: &ModelRef, lease: &Lease, changes: &[Change]) -> Result<Committed, Error> {
        commit::commit(model, lease, changes)
    }

    const UNLEASED: bool = true;

    fn commit_unleased(
        model: &ModelRef,
        holder: &Holder,
        changes: &[Change],
        announced: Announcement,
        known: Option<Versioned>,
    ) -> Result<Committed, Error> {
        commit::commit_unleased(model, holder, changes, announced, known)
    }
}

silt_extension::export!(Partitioned);
