//! Commits as today's datastores make them: under the namespace lock, pull
//! the whole index, merge, push the whole index, release. The hold grows
//! with the size of the index, not with the size of the change.

use silt_datastore_kit::change::{self, Change, Committed};
use silt_datastore_kit::layout::{self, DATA_AREA};
use silt_datastore_kit::meta;
use silt_datastore_kit::partition::Partition;
use silt_datastore_kit::silt::datastore::types::{Error, Lease, ModelRef};

use crate::index;
use crate::namespace_lock;

/// Applies `changes` to `model` inside one namespace-lock hold.
pub fn commit(model: &ModelRef, lease: &Lease, changes: &[Change]) -> Result<Committed, Error> {
    change::check_lease(lease, model)?;
    change::commit_token(changes)?;
    let retain = meta::read(crate::KIND)?.retain_versions;
    let mut held = namespace_lock::acquire_for_push(&lease.holder, lease.ttl_ms)?;
    let result = merge_and_push(model, lease, changes, retain, &mut held);
    namespace_lock::release(&held);
    let (partition, applied) = result?;
    let deleted = change::delete_dropped(model, &applied.dropped);
    Ok(Committed {
        version: partition.seq.to_string(),
        partition,
        entries: applied.entries,
        expired: applied.dropped,
        deleted,
    })
}

fn merge_and_push(
    model: &ModelRef,
    lease: &Lease,
    changes: &[Change],
    retain: u32,
    held: &mut namespace_lock::Held,
) -> Result<(Partition, change::Applied), Error> {
    let mut whole = index::pull()?.whole;
    // A long pull may have outlived part of the TTL: renew before pushing.
    namespace_lock::heartbeat(held)?;
    whole.seq += 1;
    let slice = whole
        .models
        .entry(layout::model_label(model))
        .or_insert_with(|| Partition::empty(DATA_AREA, model));
    slice.seq += 1;
    let applied = change::apply(model, slice, lease, changes, retain)?;
    let partition = slice.clone();
    index::push(&whole)?;
    Ok((partition, applied))
}
