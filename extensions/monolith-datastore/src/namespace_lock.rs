//! The namespace lock as today's datastores take it: create with
//! `If-None-Match: *`, retry every second up to a maximum wait; heartbeat,
//! release and stale-break unconditional (read, compare the token, then a
//! plain PUT or DELETE). The check-then-act races are kept on purpose: this
//! is the baseline, and its behaviour under contention is what is measured.
//!
//! One lock object serves two purposes, told apart by the token's prefix:
//! `push-` for a commit (held for one pull-merge-push of the index) and
//! `ns-` for a structural namespace lease (held by the host).

use std::time::Duration;

use silt_datastore_kit::clock;
use silt_datastore_kit::layout::NAMESPACE_LOCK_KEY;
use silt_datastore_kit::lock_object::{self, Current, HolderBody, LockBody, ScopeBody};
use silt_datastore_kit::silt::datastore::object_store::{self, PutMode, StoreError};
use silt_datastore_kit::silt::datastore::types::{Error, Holder};
use silt_datastore_kit::store;

/// Token prefix of a commit's hold.
pub const PUSH: &str = "push-";
/// Token prefix of a structural namespace lease.
pub const STRUCTURAL: &str = "ns-";

/// How long to wait between attempts (today's datastores: 1 s).
const RETRY: Duration = Duration::from_secs(1);

/// A namespace lock this call holds.
pub struct Held {
    body: LockBody,
}

/// A fresh lock body for `holder`.
pub fn body(prefix: &str, holder: &HolderBody, ttl_ms: u32) -> LockBody {
    let now = clock::now_ms();
    LockBody {
        scope: ScopeBody::Namespace,
        holder: holder.clone(),
        token: format!("{prefix}{}", clock::random_hex()),
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

/// One attempt: create the lock (its version), breaking it first when
/// stale; else the live lock someone else holds (the caller decides
/// whether to wait).
pub fn try_create(body: &LockBody) -> Result<Result<String, Current>, Error> {
    loop {
        match object_store::put(NAMESPACE_LOCK_KEY, &body.to_bytes(), &PutMode::Create) {
            Ok(version) => return Ok(Ok(version)),
            Err(StoreError::AlreadyExists) => {}
            Err(err) => return Err(store::error(NAMESPACE_LOCK_KEY, err)),
        }
        match lock_object::read_lock(NAMESPACE_LOCK_KEY)? {
            Some(current) if current.body.stale(clock::now_ms()) => {
                // Unconditional: whoever renewed it meanwhile loses it.
                store::delete(NAMESPACE_LOCK_KEY)?;
                settle();
            }
            Some(current) => return Ok(Err(current)),
            None => {}
        }
    }
}

/// Takes the namespace lock for a commit, waiting (retry every second) up
/// to twice the TTL (60 s at the default 30 s); `lock-held` naming the
/// holder after that.
pub fn acquire_for_push(holder: &Holder, ttl_ms: u32) -> Result<Held, Error> {
    let holder = HolderBody::from_wit(holder);
    let started = clock::now_ms();
    let max_wait = 2 * u64::from(ttl_ms);
    loop {
        let body = body(PUSH, &holder, ttl_ms);
        match try_create(&body)? {
            Ok(_) => return Ok(Held { body }),
            Err(current) if clock::now_ms().saturating_sub(started) >= max_wait => {
                return Err(lock_object::held(&current));
            }
            Err(_) => std::thread::sleep(RETRY),
        }
    }
}

/// Renews the hold: read, compare the token, plain PUT.
pub fn heartbeat(held: &mut Held) -> Result<(), Error> {
    match lock_object::read_lock(NAMESPACE_LOCK_KEY)? {
        Some(current) if current.body.token == held.body.token => {
            held.body.renewed_at = clock::now_ms();
            object_store::put(
                NAMESPACE_LOCK_KEY,
                &held.body.to_bytes(),
                &PutMode::Overwrite,
            )
            .map_err(|err| store::error(NAMESPACE_LOCK_KEY, err))?;
            Ok(())
        }
        _ => Err(Error::LockLost(format!(
            "{NAMESPACE_LOCK_KEY}: the namespace lock was broken by another writer while this commit held it; nothing was committed"
        ))),
    }
}

/// Releases the hold: read, compare the token, plain DELETE. Best effort
/// (a lock left behind goes stale after its TTL).
pub fn release(held: &Held) {
    if let Ok(Some(current)) = lock_object::read_lock(NAMESPACE_LOCK_KEY)
        && current.body.token == held.body.token
    {
        let _ = store::delete(NAMESPACE_LOCK_KEY);
    }
}
