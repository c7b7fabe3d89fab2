//! The lock protocol, on any one lock object: create with
//! `If-None-Match: *`; a stale lock is taken over by compare-and-swap on
//! the version read, one generation up (so a taker always gets a higher
//! generation than the lock it replaced); renew and release read the lock,
//! compare the token, then PUT or DELETE conditional on the version read
//! (a holder whose lock was taken over meanwhile cannot write it back).
//! Model locks (`leases`) and the namespace lock (`namespace_lock`) both go
//! through here.
//!
//! Generations count takeovers: a lock object created afresh (after a
//! release) starts again at 1, because release deletes it. What fences a
//! commit is the owner token (see `leases::confirm`), random per
//! acquisition; the generation tells a taker from the lease it replaced.

use silt_extension::clock;
use silt_extension::lock_object::{self, Current, HolderBody, LockBody, ScopeBody};
use silt_extension::silt::datastore::object_store::{self, PutMode, StoreError};
use silt_extension::silt::datastore::types::Error;
use silt_extension::store::{self, Written};

/// Create attempts before giving up on a lock that keeps changing hands.
const CREATE_ATTEMPTS: u32 = 8;

/// A fresh lock body, generation 1 (a takeover raises it: see [`create`]).
pub fn new_body(scope: ScopeBody, holder: &HolderBody, token: String, ttl_ms: u32) -> LockBody {
    let now = clock::now_ms();
    LockBody {
        scope,
        holder: holder.clone(),
        token,
        generation: 1,
        acquired_at: now,
        renewed_at: now,
        ttl_ms,
        nonce: clock::random_hex(),
    }
}

/// Creates the lock at `key` (its version), taking it over when stale: by
/// compare-and-swap on the stale lock's version, with `body`'s generation
/// raised to one above the stale lock's. Else the live lock someone else
/// holds (the caller decides whether to wait).
pub fn create(key: &str, body: &mut LockBody) -> Result<Result<String, Current>, Error> {
    for attempt in 0..CREATE_ATTEMPTS {
        match object_store::put(key, &body.to_bytes(), &PutMode::Create) {
            Ok(version) => return Ok(Ok(version)),
            Err(StoreError::AlreadyExists) => {}
            Err(err) => return Err(store::error(key, err)),
        }
        match lock_object::read_lock(key)? {
            Some(current) if current.body.stale(clock::now_ms()) => {
                body.generation = current.body.generation + 1;
                body.nonce = clock::random_hex();
                let mode = PutMode::Update(current.version);
                match store::put_owned(key, &body.to_bytes(), &mode, &body.nonce)? {
                    Written::Landed(version) => return Ok(Ok(version)),
                    // Renewed, released or taken by another taker: look again.
                    Written::Lost => clock::backoff(attempt),
                }
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
pub fn ours(key: &str, token: &str) -> Result<Current, Error> {
    match lock_object::read_lock(key)? {
        Some(current) if current.body.token == token => Ok(current),
        Some(current) => Err(Error::LockLost(format!(
            "{key} was taken over by {} on {} (pid {}, generation {})",
            current.body.holder.name,
            current.body.holder.host,
            current.body.holder.pid,
            current.body.generation
        ))),
        None => Err(Error::LockLost(format!(
            "{key} was removed (expired and released by another holder, or force-released)"
        ))),
    }
}

/// The `lock-lost` of a conditional write or delete that found the lock
/// changed between our read and our write.
fn changed(key: &str) -> Error {
    Error::LockLost(format!(
        "{key} changed while we wrote it (taken over or force-released); nothing was written"
    ))
}

/// Renews the lock at `key` held with `token`: read, compare, PUT if still
/// at the version read. Returns the body written and its version.
pub fn renew(key: &str, token: &str) -> Result<(LockBody, String), Error> {
    let current = ours(key, token)?;
    let body = LockBody {
        renewed_at: clock::now_ms(),
        nonce: clock::random_hex(),
        ..current.body
    };
    let mode = PutMode::Update(current.version);
    match store::put_owned(key, &body.to_bytes(), &mode, &body.nonce)? {
        Written::Landed(version) => Ok((body, version)),
        Written::Lost => Err(changed(key)),
    }
}

/// Releases the lock at `key` held with `token`: read, compare, DELETE if
/// still at the version read.
pub fn release(key: &str, token: &str) -> Result<(), Error> {
    let current = ours(key, token)?;
    if store::delete_if(key, &current.version)? {
        Ok(())
    } else {
        Err(changed(key))
    }
}
