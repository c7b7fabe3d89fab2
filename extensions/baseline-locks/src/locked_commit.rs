//! A commit as the baselines make it: under the namespace lock, read the
//! whole index, merge, write, release. Each baseline supplies the read,
//! merge and write (`merge`); the lock, the checks and the bookkeeping
//! around it are the same.

use silt_extension::change::{self, Applied, Change, Committed};
use silt_extension::index_io;
use silt_extension::meta;
use silt_extension::partition::Partition;
use silt_extension::silt::datastore::types::{Error, Lease, ModelRef};

use crate::namespace_lock::{self, Held};

/// One model's changes in a commit.
pub type Work<'a> = (&'a ModelRef, &'a Lease, &'a [Change]);

/// One model's outcome of a merge: its slice and the version it now has,
/// and what the changes did; or why the model was left out (a lost lease,
/// a base that moved on).
pub type Merged = Result<(Partition, String, Applied), Error>;

/// Commits every model's changes inside one hold of the namespace lock:
/// checks that each lease covers its model and each model has changes,
/// reads the datastore's retention (of index kind `kind`), takes the lock,
/// runs `merge` (given the batch, the retention and the hold, to renew it
/// after a long read), releases the lock, and deletes the objects of the
/// versions the retention dropped. One result per model, in order.
pub fn commit_under_lock(
    kind: &str,
    batch: &[Work<'_>],
    merge: impl FnOnce(&[Work<'_>], u32, &Held) -> Result<Vec<Merged>, Error>,
) -> Vec<Result<Committed, Error>> {
    match commit_all(kind, batch, merge) {
        Ok(committed) => committed,
        Err(err) => batch.iter().map(|_| Err(err.clone())).collect(),
    }
}

fn commit_all(
    kind: &str,
    batch: &[Work<'_>],
    merge: impl FnOnce(&[Work<'_>], u32, &Held) -> Result<Vec<Merged>, Error>,
) -> Result<Vec<Result<Committed, Error>>, Error> {
    let Some((_, first_lease, _)) = batch.first() else {
        return Ok(Vec::new());
    };
    for (model, lease, changes) in batch {
        // Only coverage here: the lease copy dates from the start of the
        // call (uploads may have outlasted it); the lock object is
        // consulted under the namespace lock, just before the write.
        change::covers(lease, model)?;
        change::commit_token(changes)?;
    }
    let retain = meta::read(kind)?.retain_versions;
    let held = namespace_lock::acquire_for_push(&first_lease.holder, first_lease.ttl_ms)?;
    let result = merge(batch, retain, &held);
    namespace_lock::release(&held);
    Ok(result?
        .into_iter()
        .zip(batch)
        .map(|(merged, (model, _, _))| {
            let (partition, version, applied) = merged?;
            let deleted = index_io::delete_dropped(model, &applied.dropped);
            Ok(Committed {
                version,
                partition,
                entries: applied.entries,
                expired: applied.dropped,
                deleted,
            })
        })
        .collect())
}
