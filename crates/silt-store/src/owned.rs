//! Winning a conditional write for sure.
//!
//! A conditional write that was retried can report "precondition failed"
//! although an earlier attempt landed (its response was lost). Anything that
//! relies on winning — lock objects, index commits — writes a random owner
//! token into the body and calls [`put_owned`]: on a lost race it re-reads
//! the object, and if the object carries its token, the write was its own.
//!
//! The contract callers keep:
//! - tokens are unique and delimited (e.g. 32 random hex digits), so no token
//!   is a substring of another;
//! - an object that others update on top of ours keeps the token of every
//!   write whose effect it still contains (a lock keeps its holder's token;
//!   an index partition's entries each keep their commit's token), so a
//!   writer whose response was lost still finds its token after others
//!   built on its write. A bounded window of "recent" tokens is not enough:
//!   others can make any number of writes while one writer backs off, and
//!   the writer would then conclude it lost and apply its change twice
//!   (`tests/store_faults.rs` shows both).

use super::{GetOutcome, ObjectKey, ObjectStore, PutMode, StoreError, Version};

/// Writes `data` (which must contain `owner_token`) with `mode`; a
/// precondition failure or lost create is resolved by re-reading: if the
/// object now holds `owner_token`, our write landed and its version is
/// returned.
///
/// # Errors
/// The store's error, when the write really lost or failed;
/// [`StoreError::InvalidArgument`] when `data` does not contain `owner_token`.
pub async fn put_owned(
    store: &dyn ObjectStore,
    key: &ObjectKey,
    data: Vec<u8>,
    mode: PutMode,
    owner_token: &str,
) -> Result<Version, StoreError> {
    if owner_token.len() < 8 || !contains(&data, owner_token.as_bytes()) {
        return Err(StoreError::InvalidArgument {
            detail: "put-owned needs an owner token of at least 8 bytes that the data contains"
                .to_owned(),
        });
    }
    match store.put(key, data, mode).await {
        Err(lost @ (StoreError::AlreadyExists { .. } | StoreError::PreconditionFailed { .. })) => {
            match store.get(key, None).await {
                Ok(GetOutcome::Found(meta, current))
                    if contains(&current, owner_token.as_bytes()) =>
                {
                    tracing::debug!(%key, "conditional write reported lost but landed (response lost on retry)");
                    Ok(meta.version)
                }
                _ => Err(lost),
            }
        }
        other => other,
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}
