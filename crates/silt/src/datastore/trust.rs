//! The decision to use a store that failed `silt datastore doctor`, kept
//! where every clone finds it.
//!
//! `silt datastore setup` (and `doctor`) with `--allow-unsafe-store` on a
//! store that fails the conditional-write checks writes
//! `_silt/unsafe-store.json` at the store's root: which checks failed, who
//! allowed it and when. Every command then warns once on stderr — also on a
//! clone that never passed the flag. A clone reads the marker at most once
//! a day (its answer is kept beside the working copy, in the host's state),
//! so a command on a trusted store costs no request. Setting up on a store
//! that passes removes the marker.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::beneath::Beneath;
use crate::store::{GetOutcome, ObjectKey, ObjectStore, PutMode, StoreError};

/// The marker's key, relative to the store's root.
pub const MARKER_KEY: &str = "_silt/unsafe-store.json";

/// How long a clone trusts what it last read of the marker.
const RECHECK_MS: u64 = 24 * 60 * 60 * 1000;

/// The host-state file keeping the last answer.
const LOCAL_RECORD: &str = "store-trust.json";

/// The recorded decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnsafeStore {
    /// The checks the store failed.
    pub failed: String,
    /// Who allowed it (`user@host`).
    pub allowed_by: String,
    /// When (ms since the epoch).
    pub allowed_at_ms: u64,
}

impl UnsafeStore {
    /// The line every command prints on stderr.
    pub fn warning(&self) -> String {
        format!(
            "warning: this store failed silt's conditional-write checks ({}) and was allowed anyway by {} (--allow-unsafe-store); \
             concurrent writers can silently lose updates. `silt datastore doctor` checks it again",
            crate::runtime::guest_text(&self.failed),
            crate::runtime::guest_text(&self.allowed_by)
        )
    }
}

/// What a clone last read of the marker.
#[derive(Debug, Serialize, Deserialize)]
struct LocalRecord {
    checked_at_ms: u64,
    unsafe_store: Option<UnsafeStore>,
}

fn marker_key() -> ObjectKey {
    ObjectKey::new(MARKER_KEY).expect("a valid key")
}

/// Writes the marker (and this clone's record).
///
/// # Errors
/// When the store refuses the write.
pub async fn record(
    store: &Arc<dyn ObjectStore>,
    host_state: &Beneath,
    decision: &UnsafeStore,
) -> Result<(), StoreError> {
    let body = serde_json::to_vec_pretty(decision).expect("a decision serializes");
    store.put(&marker_key(), body, PutMode::Overwrite).await?;
    remember(host_state, Some(decision.clone()));
    Ok(())
}

/// Removes the marker of a store that passes the checks now.
///
/// # Errors
/// When the store refuses the delete.
pub async fn clear(store: &Arc<dyn ObjectStore>, host_state: &Beneath) -> Result<(), StoreError> {
    store.delete(&marker_key(), None).await?;
    remember(host_state, None);
    Ok(())
}

/// What this clone last read of the marker, if that was less than a day
/// ago: `Some(None)` for a trusted store, `None` when the store must be
/// asked ([`read`]).
pub fn remembered(host_state: &Beneath) -> Option<Option<UnsafeStore>> {
    let record: LocalRecord = host_state
        .read(LOCAL_RECORD, 1 << 16)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())?;
    let age = super::now_ms().saturating_sub(record.checked_at_ms);
    (age < RECHECK_MS).then_some(record.unsafe_store)
}

/// The recorded decision, read from the store (one GET) and remembered. A
/// store that cannot be read gives `None`, remembered for nothing (the
/// command itself will say why it cannot reach the store).
pub async fn read(store: &Arc<dyn ObjectStore>, host_state: &Beneath) -> Option<UnsafeStore> {
    let found = match store.get(&marker_key(), None).await {
        Ok(GetOutcome::Found(_, body)) => {
            Some(serde_json::from_slice(&body).unwrap_or(UnsafeStore {
                failed: "unknown (the record is unreadable)".to_owned(),
                allowed_by: "unknown".to_owned(),
                allowed_at_ms: 0,
            }))
        }
        Ok(GetOutcome::NotModified) | Err(StoreError::NotFound { .. }) => None,
        Err(err) => {
            tracing::debug!("cannot read {MARKER_KEY}: {err}");
            return None;
        }
    };
    remember(host_state, found.clone());
    found
}

/// Best effort: the record only saves a request.
fn remember(host_state: &Beneath, unsafe_store: Option<UnsafeStore>) {
    let record = LocalRecord {
        checked_at_ms: super::now_ms(),
        unsafe_store,
    };
    let bytes = serde_json::to_vec(&record).expect("a record serializes");
    if let Err(err) = host_state.write_atomic(LOCAL_RECORD, &bytes) {
        tracing::debug!("cannot remember the store's trust: {err}");
    }
}
