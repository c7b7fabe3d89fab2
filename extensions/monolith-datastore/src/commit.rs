//! Commits as today's datastores make them: under the namespace lock, pull
//! the whole index, merge, push the whole index, release. The hold grows
//! with the size of the index, not with the size of the change. Unlike
//! today's datastores, a commit is fenced: just before the push, still
//! under the namespace lock, each model's lock object is read to confirm
//! that the caller's lease is still the current holder's (see
//! `silt_extension::lease::confirm`).

use baseline_locks::locked_commit::{self, Merged, Work};
use baseline_locks::namespace_lock::{self, Held};
use silt_extension::change::{self, Change, Committed};
use silt_extension::layout::{self, DATA_AREA};
use silt_extension::partition::Partition;
use silt_extension::silt::datastore::types::{Error, Lease, ModelRef};

use crate::index;

/// Applies `changes` to `model` inside one namespace-lock hold.
pub fn commit(model: &ModelRef, lease: &Lease, changes: &[Change]) -> Result<Committed, Error> {
    commit_many(&[(model, lease, changes)])
        .pop()
        .expect("one result per model")
}

/// Applies every model's changes inside one namespace-lock hold: one pull
/// and one push of the whole index for the whole batch, as a push does
/// today. A model whose lease is no longer its caller's gets `lock-lost`
/// and is left out; the others land together or not at all.
pub fn commit_many(batch: &[Work<'_>]) -> Vec<Result<Committed, Error>> {
    locked_commit::commit_under_lock(crate::KIND, batch, merge_and_push)
}

fn merge_and_push(batch: &[Work<'_>], retain: u32, held: &Held) -> Result<Vec<Merged>, Error> {
    let mut whole = index::pull()?;
    // A long pull may have outlived part of the TTL: renew before pushing.
    namespace_lock::heartbeat(held)?;
    let mut merged = Vec::new();
    for (model, lease, changes) in batch {
        // The fence: one GET of the model's lock object, as late as can be.
        // `covers` (checked before the lock) made sure the lease is this model's.
        if let Err(err) = silt_extension::lease::confirm(lease) {
            merged.push(Err(err));
            continue;
        }
        let slice = whole
            .models
            .entry(layout::model_label(model))
            .or_insert_with(|| Partition::empty(DATA_AREA, model));
        // A model whose bases moved on is left out, like a lost lease; the
        // others still land.
        if let Err(err) = change::check_bases(model, slice, changes) {
            merged.push(Err(err));
            continue;
        }
        slice.seq += 1;
        let applied = change::apply(model, slice, lease, changes, retain)?;
        // A slice's version is its commit count.
        merged.push(Ok((slice.clone(), slice.seq.to_string(), applied)));
    }
    if merged.iter().any(Result::is_ok) {
        whole.seq += 1;
        index::push(&whole)?;
    }
    Ok(merged)
}
