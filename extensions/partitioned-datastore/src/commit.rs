//! Commits: compare-and-swap of one partition, fenced by the caller's lease.
//!
//! The new content is already in the store under fresh keys; a commit only
//! makes the partition point at it. On a lost race the partition is re-read
//! and the same changes are applied again (they touch only their own names,
//! so applying them to a newer partition is the merge).
//!
//! In a datastore with a journal (layout 2), each commit is announced there
//! before its first compare-and-swap (`silt_extension::journal`), so that a
//! pull learns of it from one listing of the journal.

use silt_extension::change::{self, Change, Committed};
use silt_extension::journal;
use silt_extension::layout;
use silt_extension::meta;
use silt_extension::partition::Versioned;
use silt_extension::silt::datastore::object_store::PutMode;
use silt_extension::silt::datastore::types::{Error, Lease, ModelRef};
use silt_extension::store::{self, Written};

use crate::{Partitioned, index};
use silt_extension::Index as _;

/// Attempts before a commit gives up on a partition that keeps changing.
const MAX_ATTEMPTS: u32 = 16;

/// The lock-lost error of a fenced commit.
pub fn fenced(model: &ModelRef, ours: u64, fence: u64) -> Error {
    Error::LockLost(format!(
        "the lease on model {} (generation {ours}) was taken over (the model is now at generation {fence}); nothing was committed",
        layout::model_label(model)
    ))
}

/// Applies `changes` to the partition of `model` by compare-and-swap,
/// announced in the journal first when the datastore keeps one.
pub fn commit(model: &ModelRef, lease: &Lease, changes: &[Change]) -> Result<Committed, Error> {
    // Not `check_lease`: the host's copy of the lease dates from the start
    // of the call, and uploads before this commit may have outlasted it;
    // `confirm` below asks the store whether the lease is still ours and fresh.
    change::covers(lease, model)?;
    let meta = meta::read(crate::KIND)?;
    let key = index::partition_key(model);
    let token = change::commit_token(changes)?;
    // Before the compare-and-swap: a commit that lands is always announced.
    let mut announced = match meta.journal() {
        true => Some(journal::announce(model, &token)?),
        false => None,
    };
    // Set once a compare-and-swap was sent and its outcome is unknown.
    let mut maybe_landed = false;
    let result = store::retry_lost(&key, MAX_ATTEMPTS, |_| {
        let Versioned {
            partition: mut next,
            version,
        } = Partitioned::read(model)?;
        // A newer generation, or the same generation raised by another
        // holder (possible only after a force-release), shuts us out.
        let ours = next.fence == lease.generation && next.fence_token == lease.token;
        if next.fence > lease.generation || (next.fence == lease.generation && !ours) {
            return Err(fenced(model, lease.generation, next.fence));
        }
        // Announced within the window, before the lease is confirmed: a
        // slow announcement must not come between the two.
        if let Some(announced) = announced.as_mut() {
            announced.keep_fresh()?;
        }
        // The lock object says whether the lease is still ours and was
        // renewed recently enough to commit under (the self-fence).
        silt_extension::lease::confirm(lease)?;
        next.fence = lease.generation;
        next.fence_token = lease.token.clone();
        next.seq += 1;
        next.last_commit = token.clone();
        let applied = change::apply(model, &mut next, lease, changes, meta.retain_versions)?;
        let mode = match &version {
            Some(version) => PutMode::Update(version.clone()),
            None => PutMode::Create,
        };
        let written = store::put_owned(&key, &next.to_bytes(), &mode, &token);
        maybe_landed |= written.is_err();
        Ok(match written? {
            Written::Landed(new_version) => {
                let deleted = change::delete_dropped(model, &applied.dropped);
                Some(Committed {
                    partition: next,
                    version: new_version,
                    entries: applied.entries,
                    expired: applied.dropped,
                    deleted,
                })
            }
            Written::Lost => None,
        })
    });
    // Refused for sure (a conflict, a lost lease, every race lost): readers
    // need not wait for this commit.
    if let (Err(_), Some(announced), false) = (&result, announced, maybe_landed) {
        announced.withdraw();
    }
    result
}
