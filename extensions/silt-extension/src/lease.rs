//! The lease protocol on one lock object (see [`lock_object`] for the
//! object): what every datastore's `locks` interface does whatever its
//! policy.
//!
//! - acquire: create with `If-None-Match: *`; a stale lock (not renewed
//!   within its TTL) is taken over by compare-and-swap on its version, never
//!   by delete-then-create, one generation above it
//!   ([`create_or_take_over`]);
//! - renew and release: compare-and-swap / delete on the version the holder
//!   last wrote, so a holder whose lock was taken over cannot write it back
//!   ([`renew`], [`release`]);
//! - commit: confirm from the lock object that the lease is still the
//!   holder's and was renewed recently ([`confirm`]).
//!
//! What stays the datastore's own is policy: where generations come from
//! (a floor such as a partition's fence), how model and namespace leases
//! exclude each other, and what fences a commit. The protocol alone does
//! not fence: a holder that looked at its lock object ([`confirm`]) and
//! stopped before its write (a pause, `SIGSTOP`, a closed lid) still writes
//! when it wakes, after its lease was taken over. What stops it is a fence
//! in what the commit compares and swaps, raised by each acquisition:
//!
//! ```no_run,standalone_crate
//! use silt_extension::{layout, lease, lock_object::{self, HolderBody, ScopeBody}, store, Index};
//! use silt_extension::silt::datastore::types::{Error, Lease, LockScope, ModelRef};
//!
//! /// Raises the model slice's fence to `generation` by compare-and-swap.
//! fn raise_fence(model: &ModelRef, generation: u64, token: &str) -> Result<(), Error> {
//! #   let _ = (model, generation, token);
//! #   todo!()
//! }
//!
//! /// A model lease: generations above the slice's fence, which is raised
//! /// to the new one before the lease is handed out.
//! fn acquire<I: Index>(model: &ModelRef, holder: &HolderBody, ttl_ms: u32) -> Result<Lease, Error> {
//!     let scope = LockScope::Model(model.clone());
//!     let key = layout::lock_key(&scope)?;
//!     let mut body = lease::new_body(ScopeBody::from_wit(&scope), holder, ttl_ms);
//!     let fence = I::read(model)?.partition.fence;
//!     let version = match lease::create_or_take_over(&key, &mut body, fence)? {
//!         Ok(version) => version,
//!         Err(current) => return Err(lock_object::held(&current)),
//!     };
//!     if let Err(err) = raise_fence(model, body.generation, &body.token) {
//!         store::delete_if(&key, &version)?;
//!         return Err(err);
//!     }
//!     Ok(body.lease(version))
//! }
//! ```

use crate::change;
use crate::clock;
use crate::layout;
use crate::lock_object::{self, Current, HolderBody, LockBody, ScopeBody};
use crate::silt::datastore::object_store::PutMode;
use crate::silt::datastore::types::{Error, Lease};
use crate::store::{self, Written};

/// Attempts at creating or taking over a lock that keeps changing hands
/// (without sleeping: `locks` calls never sleep, the host waits).
const ATTEMPTS: u32 = 8;

/// A fresh lock body for `scope`: a new random token and nonce, renewed
/// now, generation 1 (what [`create_or_take_over`] raises).
///
/// ```no_run,standalone_crate
/// use silt_extension::lease;
/// use silt_extension::lock_object::{HolderBody, ScopeBody};
///
/// # fn body(holder: &HolderBody) {
/// let body = lease::new_body(ScopeBody::Namespace, holder, 30_000);
/// assert_eq!(body.generation, 1);
/// assert_eq!(body.renewed_at, body.acquired_at);
/// # }
/// ```
pub fn new_body(scope: ScopeBody, holder: &HolderBody, ttl_ms: u32) -> LockBody {
    let now = clock::now_ms();
    LockBody {
        scope,
        holder: holder.clone(),
        token: clock::random_hex(),
        generation: 1,
        acquired_at: now,
        renewed_at: now,
        ttl_ms,
        nonce: clock::random_hex(),
    }
}

/// Writes `body` at `key` through `put-owned` (its nonce is the owner
/// token): create when `previous` is none, else compare-and-swap on
/// `previous`'s version.
///
/// # Errors
/// The store's failures other than a lost race ([`Written::Lost`]).
///
/// ```no_run,standalone_crate
/// use silt_extension::{clock, lease};
/// use silt_extension::lock_object::{self, LockBody};
/// use silt_extension::silt::datastore::types::Error;
/// use silt_extension::store::Written;
///
/// /// Refreshes our own lock from an earlier attempt.
/// fn refresh(key: &str) -> Result<bool, Error> {
///     let Some(current) = lock_object::read_lock(key)? else { return Ok(false) };
///     let body = LockBody { renewed_at: clock::now_ms(), nonce: clock::random_hex(), ..current.body.clone() };
///     Ok(matches!(lease::write(key, &body, Some(&current))?, Written::Landed(_)))
/// }
/// ```
pub fn write(key: &str, body: &LockBody, previous: Option<&Current>) -> Result<Written, Error> {
    let mode = match previous {
        Some(previous) => PutMode::Update(previous.version.clone()),
        None => PutMode::Create,
    };
    store::put_owned(key, &body.to_bytes(), &mode, &body.nonce)
}

/// Creates the lock at `key` with `body`, at generation `floor + 1`, or
/// takes over a stale one by compare-and-swap on its version, at one above
/// both `floor` and the stale lock's generation (a taker always outranks
/// the lease it replaces). Returns the version written, or the live lock
/// someone else holds (the caller answers `lock-held` or waits).
///
/// `floor` is the datastore's own record of the highest generation used
/// (e.g. a partition's fence), or 0.
///
/// # Errors
/// `precondition-failed` when the lock changed hands on every attempt;
/// the store's failures.
///
/// ```no_run,standalone_crate
/// use silt_extension::{lease, lock_object::{self, HolderBody, ScopeBody}};
/// use silt_extension::silt::datastore::types::{Error, Lease};
///
/// fn acquire_namespace(holder: &HolderBody, fence: u64) -> Result<Lease, Error> {
///     let key = "_locks/namespace.json";
///     let mut body = lease::new_body(ScopeBody::Namespace, holder, 30_000);
///     match lease::create_or_take_over(key, &mut body, fence)? {
///         Ok(version) => Ok(body.lease(version)), // body.generation > fence
///         Err(live) => Err(lock_object::held(&live)),
///     }
/// }
/// ```
pub fn create_or_take_over(
    key: &str,
    body: &mut LockBody,
    floor: u64,
) -> Result<Result<String, Current>, Error> {
    body.generation = floor + 1;
    for _ in 0..ATTEMPTS {
        // The common case first: no lock, one request.
        if let Written::Landed(version) = write(key, body, None)? {
            return Ok(Ok(version));
        }
        match lock_object::read_lock(key)? {
            Some(current) if current.body.stale(clock::now_ms()) => {
                body.generation = floor.max(current.body.generation) + 1;
                body.nonce = clock::random_hex();
                match write(key, body, Some(&current))? {
                    Written::Landed(version) => return Ok(Ok(version)),
                    // Renewed, released or taken by another taker: look again.
                    Written::Lost => {}
                }
            }
            Some(current) => return Ok(Err(current)),
            // Released between our create and our read: create again.
            None => {}
        }
    }
    Err(Error::PreconditionFailed(format!(
        "{key} changed hands on every attempt to take it; try again"
    )))
}

/// The lock at `key` if it still holds `token`; `lock-lost` saying who
/// holds it now, or that it is gone.
///
/// # Errors
/// `lock-lost`; the store's failures.
///
/// ```no_run,standalone_crate
/// use silt_extension::lease;
/// # fn main() -> Result<(), silt_extension::silt::datastore::types::Error> {
/// let current = lease::held_with("_locks/namespace.json", "3f2a…")?;
/// println!("still ours at version {}", current.version);
/// # Ok(()) }
/// ```
pub fn held_with(key: &str, token: &str) -> Result<Current, Error> {
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

/// The lock of `lease` (its key and current state) if the lease still
/// holds it; `lock-lost` otherwise.
///
/// # Errors
/// `invalid-input` for a scope with no lock key; as [`held_with`].
///
/// ```no_run,standalone_crate
/// use silt_extension::lease;
/// use silt_extension::silt::datastore::types::{Error, Lease};
///
/// fn generation_now(lease: &Lease) -> Result<u64, Error> {
///     let (_key, current) = lease::still_ours(lease)?;
///     Ok(current.body.generation)
/// }
/// ```
pub fn still_ours(lease: &Lease) -> Result<(String, Current), Error> {
    let key = layout::lock_key(&lease.scope)?;
    let current = held_with(&key, &lease.token)?;
    Ok((key, current))
}

/// Confirms from the lock object that `lease` is still the holder's and
/// was renewed within 0.75 × TTL. A holder past that stops (self-fencing):
/// by the time its write lands, someone may have taken the lease over. Call
/// it right before a commit; the host's copy of the lease dates from the
/// start of the call.
///
/// # Errors
/// `lock-lost` saying why; as [`still_ours`].
///
/// ```no_run,standalone_crate
/// use silt_extension::lease;
/// use silt_extension::silt::datastore::types::{Error, Lease};
///
/// fn commit(lease: &Lease, push: impl FnOnce() -> Result<(), Error>) -> Result<(), Error> {
///     lease::confirm(lease)?; // one GET of the lock object
///     push()
/// }
/// ```
pub fn confirm(lease: &Lease) -> Result<(), Error> {
    let (key, current) = still_ours(lease)?;
    if let Some(silent) = change::silent_too_long(current.body.renewed_at, current.body.ttl_ms) {
        return Err(Error::LockLost(format!(
            "{key} was last renewed {silent} ms ago (TTL {} ms); stopped before committing so that a new holder cannot be overwritten",
            current.body.ttl_ms
        )));
    }
    Ok(())
}

/// Renews the lock at `key` held with `token`: read, compare the token,
/// compare-and-swap on the version read. Returns the body written and its
/// version. (For holds that are not a host's [`Lease`], such as a commit's
/// own short hold of a lock.)
///
/// # Errors
/// `lock-lost` when the lock is no longer ours or changed while we wrote.
///
/// ```no_run,standalone_crate
/// use silt_extension::lease;
/// # fn main() -> Result<(), silt_extension::silt::datastore::types::Error> {
/// let (body, version) = lease::renew_held("_locks/namespace.json", "3f2a…")?;
/// assert!(body.renewed_at >= body.acquired_at);
/// # let _ = version; Ok(()) }
/// ```
pub fn renew_held(key: &str, token: &str) -> Result<(LockBody, String), Error> {
    let current = held_with(key, token)?;
    let body = LockBody {
        renewed_at: clock::now_ms(),
        nonce: clock::random_hex(),
        ..current.body.clone()
    };
    match write(key, &body, Some(&current))? {
        Written::Landed(version) => Ok((body, version)),
        Written::Lost => Err(changed(key)),
    }
}

/// Releases the lock at `key` held with `token`: read, compare the token,
/// delete if still at the version read.
///
/// # Errors
/// `lock-lost` when the lock is no longer ours or changed meanwhile
/// (nothing is deleted then).
///
/// ```no_run,standalone_crate
/// use silt_extension::lease;
/// # fn main() -> Result<(), silt_extension::silt::datastore::types::Error> {
/// lease::release_held("_locks/namespace.json", "3f2a…")?;
/// # Ok(()) }
/// ```
pub fn release_held(key: &str, token: &str) -> Result<(), Error> {
    let current = held_with(key, token)?;
    if store::delete_if(key, &current.version)? {
        Ok(())
    } else {
        Err(changed(key))
    }
}

/// Renews `lease`. The lease carries the version its holder last wrote, so
/// this is usually one compare-and-swap with no read; when the lock changed
/// since (an older copy of the lease), it is read and renewed if still ours.
///
/// A lease that went a whole TTL without renewal is dead even if nobody
/// took it over: renewing it is refused. (Its holder was stalled; anyone
/// may since have judged it gone — `gc` deletes uploads only a live lease
/// could still commit — so it must never commit again.)
///
/// # Errors
/// `lock-lost` when the lease was taken over, removed or expired.
///
/// ```no_run,standalone_crate
/// use silt_extension::lease;
/// use silt_extension::silt::datastore::types::{Error, Lease};
///
/// struct MyDatastore;
/// impl MyDatastore {
///     fn renew(lease: Lease) -> Result<Lease, Error> {
///         lease::renew(&lease)
///     }
/// }
/// ```
pub fn renew(lease: &Lease) -> Result<Lease, Error> {
    let silent = clock::now_ms().saturating_sub(lease.renewed_at);
    if silent > u64::from(lease.ttl_ms) {
        return Err(Error::LockLost(format!(
            "the lease on {} expired {} ms ago (not renewed for {silent} ms, TTL {} ms); an expired lease is never revived",
            layout::lock_key(&lease.scope).unwrap_or_default(),
            silent - u64::from(lease.ttl_ms),
            lease.ttl_ms
        )));
    }
    let key = layout::lock_key(&lease.scope)?;
    let body = LockBody::renewed_from(lease);
    let mode = PutMode::Update(lease.version.clone());
    if let Written::Landed(version) = store::put_owned(&key, &body.to_bytes(), &mode, &body.nonce)?
    {
        return Ok(body.lease(version));
    }
    let (body, version) = renew_held(&key, &lease.token)?;
    Ok(body.lease(version))
}

/// Releases `lease`: usually one conditional DELETE on the version it
/// carries; when the lock changed since, it is read and deleted if still
/// ours.
///
/// # Errors
/// `lock-lost` when the lease was no longer the holder (nothing is deleted).
///
/// ```no_run,standalone_crate
/// use silt_extension::lease;
/// use silt_extension::silt::datastore::types::{Error, Lease};
///
/// struct MyDatastore;
/// impl MyDatastore {
///     fn release(lease: Lease) -> Result<(), Error> {
///         lease::release(&lease)
///     }
/// }
/// ```
pub fn release(lease: &Lease) -> Result<(), Error> {
    let key = layout::lock_key(&lease.scope)?;
    if store::delete_if(&key, &lease.version)? {
        return Ok(());
    }
    release_held(&key, &lease.token)
}

/// The `lock-lost` of a conditional write or delete that found the lock
/// changed between our read and our write.
fn changed(key: &str) -> Error {
    Error::LockLost(format!(
        "{key} changed while we wrote it (taken over or force-released); nothing was written"
    ))
}
