//! Leases as today's datastores keep them: model locks and the namespace
//! lock, through `lock_protocol` (create with `If-None-Match: *`, renew and
//! release without conditions). No fencing: a holder whose lock was broken
//! is not stopped from committing.
//!
//! Each side writes its own lock and then looks for the other's: model
//! locks re-check the namespace lock after they are created, a structural
//! namespace lease is given up again while a model lock is live.
//! A commit's own hold of the namespace lock (see `namespace_lock`) does not
//! keep model locks out: it is short-lived and per write.

use silt_extension::clock;
use silt_extension::exports::silt::datastore::locks::{AcquireOptions, Guest};
use silt_extension::layout::{self, MODEL_LOCKS_PREFIX, NAMESPACE_LOCK_KEY};
use silt_extension::lock_object::{self, Current, HolderBody, ScopeBody};
use silt_extension::silt::datastore::types::{Error, Lease, LockInfo, LockScope, ModelRef};
use silt_extension::store;

use crate::Monolith;
use crate::lock_protocol;
use crate::namespace_lock::STRUCTURAL;

/// A live structural namespace lease, if any.
fn structural_lock() -> Result<Option<Current>, Error> {
    let now = clock::now_ms();
    Ok(lock_object::read_lock(NAMESPACE_LOCK_KEY)?
        .filter(|current| current.body.token.starts_with(STRUCTURAL))
        .filter(|current| !current.body.stale(now)))
}

fn acquire_model(model: &ModelRef, holder: &HolderBody, ttl_ms: u32) -> Result<Lease, Error> {
    let scope = LockScope::Model(model.clone());
    let key = layout::lock_key(&scope)?;
    if let Some(namespace) = structural_lock()? {
        return Err(lock_object::held(&namespace));
    }
    let body = lock_protocol::new_body(
        ScopeBody::from_wit(&scope),
        holder,
        clock::random_hex(),
        ttl_ms,
    );
    let version =
        lock_protocol::create(&key, &body)?.map_err(|current| lock_object::held(&current))?;
    if let Some(namespace) = structural_lock()? {
        store::delete(&key)?;
        return Err(lock_object::held(&namespace));
    }
    Ok(body.lease(version))
}

fn acquire_namespace(holder: &HolderBody, ttl_ms: u32) -> Result<Lease, Error> {
    let token = format!("{STRUCTURAL}{}", clock::random_hex());
    let body = lock_protocol::new_body(ScopeBody::Namespace, holder, token, ttl_ms);
    let version = lock_protocol::create(NAMESPACE_LOCK_KEY, &body)?
        .map_err(|current| lock_object::held(&current))?;
    // Then drain: a live model lock keeps the namespace lease out. Writing
    // ours before looking (as model acquirers do) means two racing
    // acquirers cannot both miss each other.
    if let Some(model) = lock_object::first_live(MODEL_LOCKS_PREFIX)? {
        store::delete(NAMESPACE_LOCK_KEY)?;
        return Err(lock_object::held(&model));
    }
    Ok(body.lease(version))
}

impl Guest for Monolith {
    fn acquire(scope: LockScope, options: AcquireOptions) -> Result<Lease, Error> {
        lock_object::check_ttl(options.ttl_ms)?;
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
        let key = layout::lock_key(&lease.scope)?;
        let (body, version) = lock_protocol::renew(&key, &lease.token)?;
        Ok(body.lease(version))
    }

    fn release(lease: Lease) -> Result<(), Error> {
        lock_protocol::release(&layout::lock_key(&lease.scope)?, &lease.token)
    }

    fn inspect(scope: LockScope) -> Result<Option<LockInfo>, Error> {
        lock_object::inspect(&scope)
    }

    fn list() -> Result<Vec<LockInfo>, Error> {
        lock_object::list_all()
    }

    fn force_release(expected: LockInfo) -> Result<(), Error> {
        lock_object::force_release(&expected)
    }
}
