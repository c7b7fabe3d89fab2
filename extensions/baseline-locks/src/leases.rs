//! The lease policy: model locks and the namespace lock, through the SDK's lease
//! protocol (`silt_extension::lease`: create with `If-None-Match: *`, take
//! a stale lock over by compare-and-swap one generation up, renew and
//! release conditional on the version last written). Generations count
//! takeovers: release deletes the lock object, so a lock created afresh
//! starts again at 1; what fences a commit is the random per-acquisition
//! token (`silt_extension::lease::confirm`).
//!
//! Fencing: a commit, inside its hold of the namespace lock and just before
//! it pushes the index, reads the model's lock object (`silt_extension::lease::confirm`, one GET
//! per model) and commits only if the lock still holds the lease's token and
//! was renewed within 0.75 × TTL. A lease that was taken over, released,
//! force-released or forged gets `lock-lost` and nothing lands. Unlike
//! `partitioned-datastore`, whose takeover raises a fence in the model's
//! partition that a late compare-and-swap then fails on, the baselines write
//! their index without compare-and-swap: the guard is this check under the
//! namespace lock, and the self-fence leaves a quarter of the TTL for the
//! push to land. A push slower than that could land after a takeover; the
//! taker's own commit then waits for the namespace lock and merges on top.
//!
//! Each side writes its own lock and then looks for the other's: model
//! locks re-check the namespace lock after they are created, a structural
//! namespace lease is given up again while a model lock is live.
//! A commit's own hold of the namespace lock (see `namespace_lock`) does not
//! keep model locks out: it is short-lived and per write.

use silt_extension::clock;
use silt_extension::exports::silt::datastore::locks::AcquireOptions;
use silt_extension::layout::{self, MODEL_LOCKS_PREFIX, NAMESPACE_LOCK_KEY};
use silt_extension::lease;
use silt_extension::lock_object::{self, Current, HolderBody, ScopeBody};
use silt_extension::silt::datastore::types::{Error, Lease, LockScope, ModelRef};
use silt_extension::store;

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
    let mut body = lease::new_body(ScopeBody::from_wit(&scope), holder, ttl_ms);
    let version = lease::create_or_take_over(&key, &mut body, 0)?
        .map_err(|current| lock_object::held(&current))?;
    if let Some(namespace) = structural_lock()? {
        // Only our own lock: conditional on the version we wrote.
        store::delete_if(&key, &version)?;
        return Err(lock_object::held(&namespace));
    }
    Ok(body.lease(version))
}

fn acquire_namespace(holder: &HolderBody, ttl_ms: u32) -> Result<Lease, Error> {
    let mut body = lease::new_body(ScopeBody::Namespace, holder, ttl_ms);
    body.token = format!("{STRUCTURAL}{}", body.token);
    let version = lease::create_or_take_over(NAMESPACE_LOCK_KEY, &mut body, 0)?
        .map_err(|current| lock_object::held(&current))?;
    // Then drain: a live model lock keeps the namespace lease out. Writing
    // ours before looking (as model acquirers do) means two racing
    // acquirers cannot both miss each other.
    if let Some(model) = lock_object::first_live(MODEL_LOCKS_PREFIX)? {
        store::delete_if(NAMESPACE_LOCK_KEY, &version)?;
        return Err(lock_object::held(&model));
    }
    Ok(body.lease(version))
}

/// `locks.acquire`: a model lease, or a structural namespace lease.
///
/// # Errors
/// `lock-held` naming the holder; `invalid-input` for a bad model, TTL or
/// the global scope; the store's failure.
pub fn acquire(scope: LockScope, options: AcquireOptions) -> Result<Lease, Error> {
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
