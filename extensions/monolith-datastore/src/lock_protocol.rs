//! Today's lock protocol, on any one lock object: create with
//! `If-None-Match: *`; a stale lock is broken by an unconditional DELETE
//! and 200–500 ms of settling; renew and release read the lock, compare the
//! token, then PUT or DELETE without a condition. The check-then-act races
//! are kept on purpose: this is the baseline, and its behaviour under
//! contention is what is measured. Model locks (`leases`) and the namespace
//! lock (`namespace_lock`) both go through here.

use std::time::Duration;

use silt_extension::clock;
use silt_extension::lock_object::{self, Current, HolderBody, LockBody, ScopeBody};
use silt_extension::silt::datastore::object_store::{self, PutMode, StoreError};
use silt_extension::silt::datastore::types::Error;
use silt_extension::store;

/// Create attempts before giving up on a lock that keeps changing hands.
const CREATE_ATTEMPTS: u32 = 8;

/// A fresh lock body (generation 0: this protocol does not fence).
pub fn new_body(scope: ScopeBody, holder: &HolderBody, token: String, ttl_ms: u32) -> LockBody {
    let now = clock::now_ms();
    LockBody {
        scope,
        holder: holder.clone(),
        token,
        generation: 0,
        acquired_at: now,
        renewed_at: now,
        ttl_ms,
        nonce: clock::random_hex(),
    }
}

/// Sleeps 200–500 ms after breaking a stale lock, as today's datastores do.
fn settle() {
    let random = u64::from_str_radix(&clock::random_hex()[..8], 16).unwrap_or(0);
    std::thread::sleep(Duration::from_millis(200 + random % 300));
}

/// Creates the lock at `key` (its version), breaking it first when stale;
/// else the live lock someone else holds (the caller decides whether to wait).
pub fn create(key: &str, body: &LockBody) -> Result<Result<String, Current>, Error> {
    for _ in 0..CREATE_ATTEMPTS {
        match object_store::put(key, &body.to_bytes(), &PutMode::Create) {
            Ok(version) => return Ok(Ok(version)),
            Err(StoreError::AlreadyExists) => {}
            Err(err) => return Err(store::error(key, err)),
        }
        match lock_object::read_lock(key)? {
            Some(current) if current.body.stale(clock::now_ms()) => {
                // Unconditional: whoever renewed it meanwhile loses it.
                store::delete(key)?;
                settle();
            }
            Some(current) => return Ok(Err(current)),
            None => {}
        }
    }
    Err(Error::PreconditionFailed(format!(
        "{key} changed hands on every attempt to take it; try again"
    )))
}

/// The lock at `key` if it still holds `token`; `lock-lost` otherwise.
fn ours(key: &str, token: &str) -> Result<Current, Error> {
    match lock_object::read_lock(key)? {
        Some(current) if current.body.token == token => Ok(current),
        _ => Err(Error::LockLost(format!(
            "{key}: the lock is no longer ours (broken as stale by another writer, or force-released)"
        ))),
    }
}

/// Renews the lock at `key` held with `token`: read, compare, plain PUT.
/// Returns the body written and its version.
pub fn renew(key: &str, token: &str) -> Result<(LockBody, String), Error> {
    let current = ours(key, token)?;
    let body = LockBody {
        renewed_at: clock::now_ms(),
        nonce: clock::random_hex(),
        ..current.body
    };
    let version = object_store::put(key, &body.to_bytes(), &PutMode::Overwrite)
        .map_err(|err| store::error(key, err))?;
    Ok((body, version))
}

/// Releases the lock at `key` held with `token`: read, compare, plain DELETE.
pub fn release(key: &str, token: &str) -> Result<(), Error> {
    ours(key, token)?;
    store::delete(key)
}
