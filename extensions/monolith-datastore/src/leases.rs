//! Leases as today's datastores keep them: model locks and the namespace
//! lock, created with `If-None-Match: *`, renewed and released without
//! conditions (read, compare the token, plain PUT or DELETE). No fencing:
//! a holder whose lock was broken is not stopped from committing.
//!
//! Model locks re-check the namespace lock after they are created; a
//! structural namespace lease is taken only once no model lock is live.
//! A commit's own hold of the namespace lock (see `namespace_lock`) does not
//! keep model locks out: it is short-lived and per write.

use silt_datastore_kit::clock;
use silt_datastore_kit::exports::silt::datastore::locks::{AcquireOptions, Guest};
use silt_datastore_kit::layout::{self, LOCKS_PREFIX, MODEL_LOCKS_PREFIX, NAMESPACE_LOCK_KEY};
use silt_datastore_kit::lock_object::{self, Current, HolderBody, LockBody, ScopeBody};
use silt_datastore_kit::silt::datastore::object_store::{self, PutMode, StoreError};
use silt_datastore_kit::silt::datastore::types::{Error, Lease, LockInfo, LockScope, ModelRef};
use silt_datastore_kit::store;

use crate::Monolith;
use crate::namespace_lock::{self, STRUCTURAL};

/// A live structural namespace lease, if any.
fn structural_lock() -> Result<Option<Current>, Error> {
    let now = clock::now_ms();
    Ok(lock_object::read_lock(NAMESPACE_LOCK_KEY)?
        .filter(|current| current.body.token.starts_with(STRUCTURAL))
        .filter(|current| !current.body.stale(now)))
}

/// Creates the lock at `key`, breaking it once if stale (unconditional
/// delete, then 200–500 ms); `lock-held` when someone holds it.
fn create(key: &str, body: &LockBody) -> Result<String, Error> {
    for _ in 0..2 {
        match object_store::put(key, &body.to_bytes(), &PutMode::Create) {
            Ok(version) => return Ok(version),
            Err(StoreError::AlreadyExists) => {}
            Err(err) => return Err(store::error(key, err)),
        }
        match lock_object::read_lock(key)? {
            Some(current) if current.body.stale(clock::now_ms()) => {
                store::delete(key)?;
                std::thread::sleep(std::time::Duration::from_millis(
                    200 + u64::from_str_radix(&clock::random_hex()[..4], 16).unwrap_or(0) % 300,
                ));
            }
            Some(current) => return Err(lock_object::held(&current)),
            None => {}
        }
    }
    Err(Error::PreconditionFailed(format!(
        "{key} changed hands while we took it; try again"
    )))
}

fn new_body(scope: &LockScope, holder: &HolderBody, token: String, ttl_ms: u32) -> LockBody {
    let now = clock::now_ms();
    LockBody {
        scope: ScopeBody::from_wit(scope),
        holder: holder.clone(),
        token,
        generation: 0,
        acquired_at: now,
        renewed_at: now,
        ttl_ms,
        nonce: clock::random_hex(),
    }
}

fn acquire_model(model: &ModelRef, holder: &HolderBody, ttl_ms: u32) -> Result<Lease, Error> {
    let scope = LockScope::Model(model.clone());
    let key = layout::lock_key(&scope)?;
    if let Some(namespace) = structural_lock()? {
        return Err(lock_object::held(&namespace));
    }
    let body = new_body(&scope, holder, clock::random_hex(), ttl_ms);
    let version = create(&key, &body)?;
    if let Some(namespace) = structural_lock()? {
        store::delete(&key)?;
        return Err(lock_object::held(&namespace));
    }
    Ok(body.lease(version))
}

fn acquire_namespace(holder: &HolderBody, ttl_ms: u32) -> Result<Lease, Error> {
    // Drain first: a live model lock keeps the namespace lease out.
    let now = clock::now_ms();
    for meta in store::list_all(MODEL_LOCKS_PREFIX)? {
        if let Some(current) = lock_object::read_lock(&meta.key)?
            && !current.body.stale(now)
        {
            return Err(lock_object::held(&current));
        }
    }
    let token = format!("{STRUCTURAL}{}", clock::random_hex());
    let body = new_body(&LockScope::Namespace, holder, token, ttl_ms);
    match namespace_lock::try_create(&body)? {
        Ok(version) => Ok(body.lease(version)),
        Err(current) => Err(lock_object::held(&current)),
    }
}

/// The lock of `lease` if it still holds the lease's token.
fn still_ours(lease: &Lease) -> Result<(String, Current), Error> {
    let key = layout::lock_key(&lease.scope)?;
    match lock_object::read_lock(&key)? {
        Some(current) if current.body.token == lease.token => Ok((key, current)),
        _ => Err(Error::LockLost(format!(
            "{key}: the lock is no longer ours (broken as stale, or force-released)"
        ))),
    }
}

impl Guest for Monolith {
    fn acquire(scope: LockScope, options: AcquireOptions) -> Result<Lease, Error> {
        if options.ttl_ms < 100 {
            return Err(Error::InvalidInput(format!(
                "lease TTL {} ms is too short (at least 100 ms)",
                options.ttl_ms
            )));
        }
        let holder = HolderBody::from_wit(&options.holder);
        match &scope {
            LockScope::Model(model) => {
                layout::check_model(model)?;
                acquire_model(model, &holder, options.ttl_ms)
            }
            LockScope::Namespace => acquire_namespace(&holder, options.ttl_ms),
            LockScope::Global => Err(layout::lock_key(&scope).unwrap_err()),
        }
    }

    fn renew(lease: Lease) -> Result<Lease, Error> {
        let (key, current) = still_ours(&lease)?;
        let body = LockBody {
            renewed_at: clock::now_ms(),
            nonce: clock::random_hex(),
            ..current.body
        };
        let version = object_store::put(&key, &body.to_bytes(), &PutMode::Overwrite)
            .map_err(|err| store::error(&key, err))?;
        Ok(body.lease(version))
    }

    fn release(lease: Lease) -> Result<(), Error> {
        let (key, _) = still_ours(&lease)?;
        store::delete(&key)
    }

    fn inspect(scope: LockScope) -> Result<Option<LockInfo>, Error> {
        let key = layout::lock_key(&scope)?;
        let now = clock::now_ms();
        Ok(lock_object::read_lock(&key)?.map(|current| current.body.info(&current.version, now)))
    }

    fn list() -> Result<Vec<LockInfo>, Error> {
        let now = clock::now_ms();
        let mut locks = Vec::new();
        for meta in store::list_all(LOCKS_PREFIX)? {
            if let Some(current) = lock_object::read_lock(&meta.key)? {
                locks.push(current.body.info(&current.version, now));
            }
        }
        Ok(locks)
    }

    fn force_release(expected: LockInfo) -> Result<(), Error> {
        let key = layout::lock_key(&expected.scope)?;
        match lock_object::read_lock(&key)? {
            Some(current) if current.version == expected.version => store::delete(&key),
            Some(_) => Err(Error::PreconditionFailed(format!(
                "{key} changed since it was inspected (new holder or renewal); inspect it again"
            ))),
            None => Ok(()),
        }
    }
}
