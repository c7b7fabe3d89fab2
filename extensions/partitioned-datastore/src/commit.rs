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
//!
//! A single-file write may commit with no lease ([`commit_unleased`]),
//! fenced by the partition as `silt_extension::unleased` describes.

use silt_extension::change::{self, Change, Committed};
use silt_extension::index_io;
use silt_extension::journal::{self, Announcement};
use silt_extension::layout::{self, DATA_AREA};
use silt_extension::leased_slice;
use silt_extension::meta;
use silt_extension::partition::Versioned;
use silt_extension::silt::datastore::object_store::PutMode;
use silt_extension::silt::datastore::types::{BackendFailure, Error, Holder, Lease, ModelRef};
use silt_extension::store::{self, Written};
use silt_extension::{clock, unleased};

use crate::{Partitioned, index};
use silt_extension::Index as _;

/// Attempts before a commit gives up on a partition that keeps changing.
const MAX_ATTEMPTS: u32 = 16;

/// The jitter of a lease-free commit's retry after a lost swap: 2, 4, 8,
/// 16, then at most 25 ms (see `clock::backoff_within`). Every loser reads
/// the partition again and one of them wins each round, so a short wait
/// keeps the rounds coming.
const UNLEASED_BACKOFF_BASE_MS: u64 = 2;
const UNLEASED_BACKOFF_CAP_MS: u64 = 25;

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
    // The slice our lease's fence raise wrote stops being the latest once
    // this lands (`leased_slice`): forgotten before anything is sent.
    leased_slice::forget(DATA_AREA, model)?;
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
        unleased::prune_revoked(&mut next, clock::now_ms());
        next.seq += 1;
        journal::record_commit(&mut next, &token, clock::now_ms());
        let applied = change::apply(model, &mut next, lease, changes, meta.retain_versions)?;
        let mode = match &version {
            Some(version) => PutMode::Update(version.clone()),
            None => PutMode::Create,
        };
        let written = store::put_owned(&key, &next.to_bytes(), &mode, &token);
        maybe_landed |= written.is_err();
        Ok(match written? {
            Written::Landed(new_version) => {
                let deleted = index_io::delete_dropped(model, &applied.dropped);
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

/// Applies `changes` to the partition of `model` with no lease (see
/// `silt_extension::unleased`), announced already by `announced` (before
/// the upload). The first compare-and-swap goes on `known` when this cache
/// knows the partition; a refusal decided on it (a base conflict, a name
/// not there) is checked again on a fresh read before it is answered.
pub fn commit_unleased(
    model: &ModelRef,
    holder: &Holder,
    changes: &[Change],
    mut announced: Announcement,
    known: Option<Versioned>,
) -> Result<Committed, Error> {
    let token = change::commit_token(changes)?;
    // Set once a compare-and-swap was sent and its outcome is unknown.
    let mut maybe_landed = false;
    // As in [`commit`]; a record left by a killed lease holder of this cache.
    let result = leased_slice::forget(DATA_AREA, model).and_then(|()| {
        unleased_attempts(
            model,
            holder,
            changes,
            &token,
            &mut announced,
            known,
            &mut maybe_landed,
        )
    });
    // Refused for sure: readers need not wait for this commit.
    if result.is_err() && !maybe_landed {
        announced.withdraw();
    }
    result
}

fn unleased_attempts(
    model: &ModelRef,
    holder: &Holder,
    changes: &[Change],
    token: &str,
    announced: &mut Announcement,
    mut known: Option<Versioned>,
    maybe_landed: &mut bool,
) -> Result<Committed, Error> {
    let key = index::partition_key(model);
    let started = announced.entry().at_ms;
    let mut meta = meta::read_cached(crate::KIND)?;
    let mut retention_fresh = false;
    let mut lost = 0;
    while lost < MAX_ATTEMPTS {
        let (read, cached) = match known.take() {
            Some(known) => (known, true),
            None => (Partitioned::read(model)?, false),
        };
        let mut next = read.partition.clone();
        unleased::check_not_revoked(model, &next, token)?;
        unleased::clear_ended_holder(model, &mut next)?;
        unleased::prune_revoked(&mut next, clock::now_ms());
        next.seq += 1;
        journal::record_commit(&mut next, token, clock::now_ms());
        let author = unleased::author(&next, holder);
        let applied =
            match change::apply_as(model, &mut next, &author, changes, meta.retain_versions) {
                Ok(applied) => applied,
                // Decided on what this cache knew: ask the store before answering.
                Err(_) if cached => continue,
                Err(refused) => return Err(refused),
            };
        // Versions go only by the retention in force now: the cached one
        // may be lower than what `setup` has set since.
        if !applied.dropped.is_empty() && !retention_fresh {
            meta = meta::refresh_cached(crate::KIND)?;
            retention_fresh = true;
            known = Some(read);
            continue;
        }
        // The collector spares an upload only while its commit may land.
        if clock::now_ms().saturating_sub(started) > unleased::UPLOAD_WINDOW_MS {
            return Err(Error::Backend(BackendFailure {
                retryable: true,
                detail: format!(
                    "{}: more than {} s passed between this write's upload and its commit; nothing was committed, try again",
                    layout::model_label(model),
                    unleased::UPLOAD_WINDOW_MS / 1000
                ),
            }));
        }
        announced.keep_fresh()?;
        let mode = match &read.version {
            Some(version) => PutMode::Update(version.clone()),
            None => PutMode::Create,
        };
        let written = store::put_owned(&key, &next.to_bytes(), &mode, token);
        *maybe_landed |= written.is_err();
        match written? {
            Written::Landed(version) => {
                let deleted = index_io::delete_dropped(model, &applied.dropped);
                return Ok(Committed {
                    partition: next,
                    version,
                    entries: applied.entries,
                    expired: applied.dropped,
                    deleted,
                });
            }
            // A version this cache knew and the store moved on from is no
            // race: read at once. A race lost on a fresh read backs off.
            Written::Lost if cached => {}
            Written::Lost => {
                clock::backoff_within(lost, UNLEASED_BACKOFF_BASE_MS, UNLEASED_BACKOFF_CAP_MS);
                lost += 1;
            }
        }
    }
    Err(Error::PreconditionFailed(format!(
        "{key}: changed by others on each of {MAX_ATTEMPTS} attempts; try again"
    )))
}
