//! Commits as today's datastores make them: under the namespace lock, pull
//! the whole index, merge, push the whole index, release. The hold grows
//! with the size of the index, not with the size of the change. Unlike
//! today's datastores, a commit is fenced: just before the push, still
//! under the namespace lock, each model's lock object is read to confirm
//! that the caller's lease is still the current holder's (see
//! `silt_extension::lease::confirm`).

use silt_extension::change::{self, Change, Committed};
use silt_extension::layout::{self, DATA_AREA};
use silt_extension::meta;
use silt_extension::partition::Partition;
use silt_extension::silt::datastore::types::{Error, Lease, ModelRef};

use crate::index;
use crate::namespace_lock;

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
pub fn commit_many(batch: &[(&ModelRef, &Lease, &[Change])]) -> Vec<Result<Committed, Error>> {
    match commit_all(batch) {
        Ok(committed) => committed,
        Err(err) => batch.iter().map(|_| Err(err.clone())).collect(),
    }
}

fn commit_all(
    batch: &[(&ModelRef, &Lease, &[Change])],
) -> Result<Vec<Result<Committed, Error>>, Error> {
    let Some((_, first_lease, _)) = batch.first() else {
        return Ok(Vec::new());
    };
    for (model, lease, changes) in batch {
        // Only coverage here: the lease copy dates from the start of the
        // call (uploads may have outlasted it); the lock object is
        // consulted under the namespace lock, just before the push.
        change::covers(lease, model)?;
        change::commit_token(changes)?;
    }
    let retain = meta::read(crate::KIND)?.retain_versions;
    let held = namespace_lock::acquire_for_push(&first_lease.holder, first_lease.ttl_ms)?;
    let result = merge_and_push(batch, retain, &held);
    namespace_lock::release(&held);
    let merged = result?;
    Ok(merged
        .into_iter()
        .zip(batch)
        .map(|(merged, (model, _, _))| {
            let (partition, applied) = merged?;
            let deleted = change::delete_dropped(model, &applied.dropped);
            Ok(Committed {
                version: partition.seq.to_string(),
                partition,
                entries: applied.entries,
                expired: applied.dropped,
                deleted,
            })
        })
        .collect())
}

type Merged = Result<(Partition, change::Applied), Error>;

fn merge_and_push(
    batch: &[(&ModelRef, &Lease, &[Change])],
    retain: u32,
    held: &namespace_lock::Held,
) -> Result<Vec<Merged>, Error> {
    let mut whole = index::pull()?;
    // A long pull may have outlived part of the TTL: renew before pushing.
    namespace_lock::heartbeat(held)?;
    let mut merged = Vec::new();
    for (model, lease, changes) in batch {
        // The fence: one GET of the model's lock object, as late as can be.
        // `covers` (above) made sure the lease is this model's.
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
        merged.push(Ok((slice.clone(), applied)));
    }
    if merged.iter().any(Result::is_ok) {
        whole.seq += 1;
        index::push(&whole)?;
    }
    Ok(merged)
}
