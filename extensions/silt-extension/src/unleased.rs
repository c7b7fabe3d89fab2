//! Unleased commits: one `put-file` or `remove-file` with no lease object
//! of its own (the `lease-free-commits` feature), fenced by the model's
//! partition alone.
//!
//! A lease costs a commit four requests of its own (create the lock, look
//! for the namespace lock, raise the partition's fence, delete the lock)
//! and a fifth to confirm it; a single-file write needs none of them if the
//! partition carries what the lease protects. What a lease gives a commit,
//! and how an unleased one gets it:
//!
//! - **Exclusion of lease holders.** A holder records itself in the
//!   partition when it raises the fence (`fence_token`). An unleased commit
//!   that finds a holder recorded asks its lock object (one GET) and is
//!   refused with `lock-held` while any lease on the model is live; the
//!   host then waits for the model's lease like any writer. A recorded
//!   holder whose lease has ended (released, or expired: an expired lease
//!   is never renewed, and a holder's commit confirms its lease from the
//!   store) is cleared by the commit, so the next one does not ask again.
//! - **A holder that comes after** raises the fence by compare-and-swap of
//!   the partition: either the unleased commit landed first (and the
//!   holder's base checks see it), or its compare-and-swap fails, it reads
//!   the partition again, finds the holder and is refused.
//! - **The upload is safe from `collect-orphans`.** The commit is
//!   announced in the journal before it uploads, under the token that ends
//!   its content key ([`crate::change::commit_token`] is the new version's
//!   token). A collector that would delete the upload of an announced
//!   commit first revokes the token in the partition ([`revoke`]); the
//!   commit, should it come after all, is refused ([`check_not_revoked`]),
//!   and one that landed meanwhile is seen and its upload spared. The
//!   collector sees every announcement younger than the journal keeps
//!   them ([`crate::journal::PRUNE_AFTER_MS`]); a commit still not landed
//!   [`UPLOAD_WINDOW_MS`] after its first announcement gives up, well
//!   before its announcement can be pruned. No age of the upload matters,
//!   so `gc --orphan-min-age 0` is safe while writers are at work.
//! - **Fencing stays a lease's.** An unleased commit records the model's
//!   generation as it stands and never raises it; a holder's commit is
//!   fenced exactly as before.
//!
//! On the common path a commit costs three requests: the announcement,
//! the upload and the compare-and-swap, on the partition version this cache
//! last read or wrote ([`crate::written_here::known_slice`]); the
//! metadata comes from the cache ([`crate::meta::read_cached`]). A lost
//! race costs a read and another compare-and-swap.
//!
//! ```no_run,standalone_crate
//! use silt_extension::partition::Partition;
//! use silt_extension::silt::datastore::types::{Error, ModelRef};
//! use silt_extension::unleased;
//!
//! /// What an unleased commit checks on the slice it is about to write.
//! fn may_commit(model: &ModelRef, slice: &mut Partition, token: &str) -> Result<(), Error> {
//!     unleased::check_not_revoked(model, slice, token)?;
//!     unleased::clear_ended_holder(model, slice)?; // `lock-held` while a lease is live
//!     unleased::prune_revoked(slice, silt_extension::clock::now_ms());
//!     Ok(())
//! }
//! ```

use crate::change::Author;
use crate::clock;
use crate::journal;
use crate::layout;
use crate::lock_object;
use crate::partition::Partition;
use crate::silt::datastore::types::{BackendFailure, Error, Holder, LockScope, ModelRef};
use crate::store;

/// How long after its first announcement an unleased commit may still land
/// (by its writer's clock): the upload of the largest file a single put
/// takes; past it, the commit gives up (nothing committed). Shorter than
/// the journal keeps an announcement, with the clock skew allowed between
/// the writer and the pruner on both sides.
///
/// ```no_run,standalone_crate
/// use silt_extension::journal::{CLOCK_SKEW_MS, PRUNE_AFTER_MS};
/// use silt_extension::unleased::UPLOAD_WINDOW_MS;
/// assert!(UPLOAD_WINDOW_MS + 2 * CLOCK_SKEW_MS < PRUNE_AFTER_MS);
/// ```
pub const UPLOAD_WINDOW_MS: u64 = 50 * 60_000;

/// How old (by the token's time, on any machine's clock) the token of an
/// unleased commit must be before the commit can no longer land: the window
/// plus the clock skew the journal allows between machines, plus a margin.
/// A revocation is kept that long.
///
/// ```no_run,standalone_crate
/// use silt_extension::journal::CLOCK_SKEW_MS;
/// use silt_extension::unleased::{COMMITTABLE_MS, UPLOAD_WINDOW_MS};
/// assert_eq!(COMMITTABLE_MS, UPLOAD_WINDOW_MS + CLOCK_SKEW_MS + 60_000);
/// ```
pub const COMMITTABLE_MS: u64 = UPLOAD_WINDOW_MS + journal::CLOCK_SKEW_MS + 60_000;

/// Version tokens are the clock's; a revocation is how a partition keeps one.
pub use crate::clock::token_ms;
pub use crate::partition::revocation;

/// The author an unleased commit records: `holder`, at the model's
/// generation as it stands.
///
/// ```no_run,standalone_crate
/// use silt_extension::partition::Partition;
/// use silt_extension::silt::datastore::types::Holder;
/// use silt_extension::unleased;
///
/// fn generation_recorded(slice: &Partition, holder: &Holder) -> u64 {
///     unleased::author(slice, holder).generation // == slice.fence
/// }
/// ```
pub fn author(slice: &Partition, holder: &Holder) -> Author {
    Author {
        generation: slice.fence,
        writer: holder.name.clone(),
    }
}

/// Refuses a commit whose token a collector revoked (its upload was
/// deleted as an orphan before the commit landed).
///
/// # Errors
/// A retryable backend failure saying so; nothing may be committed.
///
/// ```no_run,standalone_crate
/// use silt_extension::partition::Partition;
/// use silt_extension::unleased;
/// # let model = silt_extension::silt::datastore::types::ModelRef { model_type: "vision/detector".into(), model_id: "m-42".into() };
/// let mut slice = Partition::empty("data", &model);
/// unleased::revoke(&mut slice, "1767225600000-9f2c4e1a7b3d5c60");
/// assert!(unleased::check_not_revoked(&model, &slice, "1767225600000-9f2c4e1a7b3d5c60").is_err());
/// ```
pub fn check_not_revoked(model: &ModelRef, slice: &Partition, token: &str) -> Result<(), Error> {
    let Some(kept) = revocation(token) else {
        return Ok(());
    };
    if !slice.revoked.contains(&kept) {
        return Ok(());
    }
    Err(Error::Backend(BackendFailure {
        retryable: true,
        detail: format!(
            "{}: this write took so long that `gc` collected its upload as an orphan before it was committed; nothing was committed, try again",
            layout::model_label(model)
        ),
    }))
}

/// Refuses a commit while a lease on `model` is live; clears from `slice`
/// a recorded holder whose lease has ended (and deletes its lock object
/// if it expired). Asks the lock object only when a holder is recorded.
///
/// # Errors
/// `lock-held` naming the live holder; the store's failures.
///
/// ```no_run,standalone_crate
/// use silt_extension::partition::Partition;
/// use silt_extension::silt::datastore::types::{Error, ModelRef};
/// use silt_extension::unleased;
///
/// fn free(model: &ModelRef, slice: &mut Partition) -> Result<bool, Error> {
///     match unleased::clear_ended_holder(model, slice) {
///         Ok(()) => Ok(true),
///         Err(Error::LockHeld(_)) => Ok(false),
///         Err(err) => Err(err),
///     }
/// }
/// ```
pub fn clear_ended_holder(model: &ModelRef, slice: &mut Partition) -> Result<(), Error> {
    if slice.fence_token.is_empty() {
        return Ok(());
    }
    let key = layout::lock_key(&LockScope::Model(model.clone()))?;
    match lock_object::read_lock(&key)? {
        // Any live lease: its holder, or one taking the model over, is
        // about to write (its fence raise would race this commit).
        Some(current) if !current.body.stale(clock::now_ms()) => {
            return Err(lock_object::held(&current));
        }
        // Expired, never to be renewed: removed on the version read (a
        // takeover since is left alone), so that it is not listed as a
        // lease left behind. Best effort: a takeover would replace it.
        Some(stale) => {
            let _ = store::delete_if(&key, &stale.version);
        }
        None => {}
    }
    // Released or expired: the holder can no longer commit, and nobody
    // need ask again.
    slice.fence_token.clear();
    Ok(())
}

/// Revokes the unleased commit of `token` (a collector is about to delete
/// its upload): the commit is refused if it comes. Idempotent; nothing for
/// a string that is not a version token.
///
/// ```no_run,standalone_crate
/// use silt_extension::partition::Partition;
/// use silt_extension::unleased;
/// # let model = silt_extension::silt::datastore::types::ModelRef { model_type: "vision/detector".into(), model_id: "m-42".into() };
/// let mut slice = Partition::empty("data", &model);
/// unleased::revoke(&mut slice, "1767225600000-9f2c4e1a7b3d5c60");
/// unleased::revoke(&mut slice, "1767225600000-9f2c4e1a7b3d5c60");
/// assert_eq!(slice.revoked.len(), 1);
/// ```
pub fn revoke(slice: &mut Partition, token: &str) {
    slice.revoke(token);
}

/// Drops revoked tokens whose commits can no longer land at `now`: every
/// writer of the partition calls it, so the list stays short.
///
/// ```no_run,standalone_crate
/// use silt_extension::partition::Partition;
/// use silt_extension::unleased::{self, COMMITTABLE_MS};
/// # let model = silt_extension::silt::datastore::types::ModelRef { model_type: "vision/detector".into(), model_id: "m-42".into() };
/// let mut slice = Partition::empty("data", &model);
/// unleased::revoke(&mut slice, "1767225600000-9f2c4e1a7b3d5c60");
/// unleased::prune_revoked(&mut slice, 1_767_225_600_000 + COMMITTABLE_MS);
/// assert!(slice.revoked.is_empty());
/// ```
pub fn prune_revoked(slice: &mut Partition, now: u64) {
    slice.revoked.retain(|kept| {
        kept.split_once('.')
            .and_then(|(at, _)| at.parse::<u64>().ok())
            .is_some_and(|at| now.saturating_sub(at) < COMMITTABLE_MS)
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model() -> ModelRef {
        ModelRef {
            model_type: "vision/detector".to_owned(),
            model_id: "m-42".to_owned(),
        }
    }

    #[test]
    fn a_token_tells_its_time_and_only_a_version_token_does() {
        assert_eq!(token_ms("0000000000042-00"), Some(42));
        for not_a_token in [
            "",
            "-",
            "42-abc",
            "17672256000001-ab",
            "176722560000x-ab",
            "v1",
        ] {
            assert_eq!(token_ms(not_a_token), None, "{not_a_token:?}");
        }
        let fresh = clock::version_token();
        let at = token_ms(&fresh).expect("a version token");
        assert!(clock::now_ms().abs_diff(at) < 60_000);
    }

    #[test]
    fn a_revoked_token_is_refused_until_it_can_no_longer_land() {
        let token = "1767225600000-9f2c4e1a7b3d5c60";
        let mut slice = Partition::empty("data", &model());
        check_not_revoked(&model(), &slice, token).expect("not revoked yet");
        revoke(&mut slice, token);
        revoke(&mut slice, "not-a-version-token");
        let refused = check_not_revoked(&model(), &slice, token).unwrap_err();
        assert!(
            matches!(&refused, Error::Backend(failure) if failure.retryable && failure.detail.contains("collected")),
            "{refused:?}"
        );
        // Never the token itself (see `revocation`), and nothing for a
        // string that is no version token.
        assert_eq!(slice.revoked.len(), 1);
        assert!(
            !slice.revoked[0].contains(token)
                && !slice
                    .to_bytes()
                    .windows(token.len())
                    .any(|w| w == token.as_bytes())
        );
        // Still committable a moment before the bound: kept.
        prune_revoked(&mut slice, 1_767_225_600_000 + COMMITTABLE_MS - 1);
        assert_eq!(slice.revoked.len(), 1);
        prune_revoked(&mut slice, 1_767_225_600_000 + COMMITTABLE_MS);
        assert!(slice.revoked.is_empty());
    }

    #[test]
    fn an_unleased_author_is_the_holder_at_the_generation_standing() {
        let mut slice = Partition::empty("data", &model());
        slice.fence = 7;
        let holder = Holder {
            name: "ana@build-1".to_owned(),
            host: "build-1".to_owned(),
            pid: 42,
        };
        assert_eq!(
            author(&slice, &holder),
            Author {
                generation: 7,
                writer: "ana@build-1".to_owned()
            }
        );
    }
}
