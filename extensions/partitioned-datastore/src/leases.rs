//! Leases: lock objects in the store, one per model and one for the namespace.
//!
//! The protocol on each lock object is the SDK's (`silt_extension::lease`:
//! create, or take a stale lock over by compare-and-swap one generation up;
//! renew and release on the version we wrote). The policy is this module's:
//! - a model lease's generation starts above the model partition's fence,
//!   and the fence is raised to it before the lease is handed out, so an
//!   old holder can never commit again;
//! - model and namespace leases exclude each other: each side writes its own
//!   lock first and then looks for the other's (so at least one of two racing
//!   acquirers sees the other). A namespace acquirer keeps its lock while it
//!   waits for model holders to drain, which stops new model leases: neither
//!   side starves.

use serde::{Deserialize, Serialize};

use silt_extension::Index as _;
use silt_extension::clock;
use silt_extension::exports::silt::datastore::locks::{AcquireOptions, Guest};
use silt_extension::layout::{self, DATA_AREA, MODEL_LOCKS_PREFIX, NAMESPACE_LOCK_KEY};
use silt_extension::lease;
use silt_extension::leased_slice;
use silt_extension::lock_object::{
    self, Current, HolderBody, LockBody, ScopeBody, held, lost_race, read_lock,
};
use silt_extension::partition;
use silt_extension::silt::datastore::object_store::PutMode;
use silt_extension::silt::datastore::types::{Error, Lease, LockInfo, LockScope, ModelRef};
use silt_extension::store::{self, Written};

use crate::Partitioned;
use crate::index::{self, NAMESPACE_FENCE_KEY};

/// The live namespace lock, if any.
fn live_namespace_lock() -> Result<Option<Current>, Error> {
    let now = clock::now_ms();
    Ok(read_lock(NAMESPACE_LOCK_KEY)?.filter(|current| !current.body.stale(now)))
}

/// Raises the model partition's fence to `generation` (creating the
/// partition if needed), starting from `read` (the partition as just read;
/// re-read only after a lost race), and returns the partition as it now
/// stands in the store. `precondition-failed` if another lease got there
/// first.
fn raise_fence(
    model: &ModelRef,
    read: partition::Versioned,
    generation: u64,
    token: &str,
) -> Result<partition::Versioned, Error> {
    let key = index::partition_key(model);
    let mut read = Some(read);
    for _ in 0..16 {
        let partition::Versioned {
            partition: mut next,
            version,
        } = match read.take() {
            Some(read) => read,
            None => Partitioned::read(model)?,
        };
        if next.fence == generation && next.fence_token == token {
            return Ok(partition::Versioned {
                partition: next,
                version,
            });
        }
        // We hold the lock, so a fence at or above our generation was raised
        // by a holder that came and went after we read the partition (or was
        // force-released mid-acquisition): a lost race, which the host retries
        // with a fresh read.
        if next.fence >= generation {
            return Err(Error::PreconditionFailed(format!(
                "{key}: fence raised to generation {} by another holder while acquiring generation {generation}",
                next.fence
            )));
        }
        next.fence = generation;
        next.fence_token = token.to_owned();
        let mode = match version {
            Some(version) => PutMode::Update(version),
            None => PutMode::Create,
        };
        match store::put_owned(&key, &next.to_bytes(), &mode, token)? {
            Written::Landed(version) => {
                return Ok(partition::Versioned {
                    partition: next,
                    version: Some(version),
                });
            }
            // Lost a race: read again at once (`locks` calls never sleep).
            Written::Lost => {}
        }
    }
    Err(Error::PreconditionFailed(format!(
        "{key}: kept changing while raising its fence; try again"
    )))
}

/// The next namespace generation: a counter object raised by compare-and-swap.
fn next_namespace_generation(at_least: u64) -> Result<u64, Error> {
    #[derive(Serialize, Deserialize)]
    struct Counter {
        generation: u64,
        nonce: String,
    }
    for _ in 0..16 {
        let (current, mode) = match store::get(NAMESPACE_FENCE_KEY)? {
            Some(found) => {
                let counter: Counter = serde_json::from_slice(&found.data)
                    .map_err(|err| store::corrupt(NAMESPACE_FENCE_KEY, err))?;
                (counter.generation, PutMode::Update(found.version))
            }
            None => (0, PutMode::Create),
        };
        let next = Counter {
            generation: current.max(at_least) + 1,
            nonce: clock::random_hex(),
        };
        let body = serde_json::to_vec(&next).expect("a counter serializes");
        match store::put_owned(NAMESPACE_FENCE_KEY, &body, &mode, &next.nonce)? {
            Written::Landed(_) => return Ok(next.generation),
            // Lost a race: read again at once (`locks` calls never sleep).
            Written::Lost => {}
        }
    }
    Err(Error::PreconditionFailed(format!(
        "{NAMESPACE_FENCE_KEY}: kept changing; try again"
    )))
}

fn acquire_model(model: &ModelRef, holder: HolderBody, ttl_ms: u32) -> Result<Lease, Error> {
    let scope = LockScope::Model(model.clone());
    let key = layout::lock_key(&scope)?;
    let partition = Partitioned::read(model)?;
    // Generations start above the partition's fence: a stale lock's holder
    // may have stopped before raising the fence to its own generation.
    let mut body = lease::new_body(ScopeBody::from_wit(&scope), &holder, ttl_ms);
    let version = match lease::create_or_take_over(&key, &mut body, partition.partition.fence)? {
        Ok(version) => version,
        Err(live) => return Err(held(&live)),
    };
    // We hold the model lock; if structural work holds or waits for the
    // namespace, let it go first. (This check after writing our own lock is
    // what makes the two kinds of lease exclude each other.)
    if let Some(namespace) = live_namespace_lock()? {
        store::delete_if(&key, &version)?;
        return Err(held(&namespace));
    }
    match raise_fence(model, partition, body.generation, &body.token) {
        // Nobody else writes the partition while the lock lives: the slice
        // just written is the latest until our own next commit (which
        // forgets it); trusted for half the lock's TTL.
        Ok(fenced) => leased_slice::remember(
            DATA_AREA,
            model,
            &fenced,
            leased_slice::until_ms(body.renewed_at, ttl_ms),
        ),
        Err(err) => {
            store::delete_if(&key, &version)?;
            return Err(err);
        }
    }
    Ok(body.lease(version))
}

fn acquire_namespace(holder: HolderBody, ttl_ms: u32) -> Result<Lease, Error> {
    let now = clock::now_ms();
    let existing = read_lock(NAMESPACE_LOCK_KEY)?;
    let ours = existing
        .as_ref()
        .is_some_and(|current| current.body.holder == holder);
    if let Some(current) = existing.as_ref().filter(|c| !c.body.stale(now) && !ours) {
        return Err(held(current));
    }
    // Our own lock from an earlier attempt (still draining model holders) is
    // refreshed; anything else is replaced with a new generation.
    let body = match existing.as_ref().filter(|_| ours) {
        Some(current) => LockBody {
            renewed_at: now,
            ttl_ms,
            nonce: clock::random_hex(),
            ..current.body.clone()
        },
        None => LockBody {
            generation: next_namespace_generation(
                existing.as_ref().map_or(0, |c| c.body.generation),
            )?,
            ..lease::new_body(ScopeBody::Namespace, &holder, ttl_ms)
        },
    };
    let version = match lease::write(NAMESPACE_LOCK_KEY, &body, existing.as_ref())? {
        Written::Landed(version) => version,
        Written::Lost => return Err(lost_race(NAMESPACE_LOCK_KEY)?),
    };
    // Model holders already inside finish first; our lock keeps new ones out.
    if let Some(model) = lock_object::first_live(MODEL_LOCKS_PREFIX)? {
        return Err(held(&model));
    }
    Ok(body.lease(version))
}

impl Guest for Partitioned {
    fn acquire(scope: LockScope, options: AcquireOptions) -> Result<Lease, Error> {
        lock_object::check_ttl(options.ttl_ms)?;
        let holder = HolderBody::from_wit(&options.holder);
        match &scope {
            LockScope::Model(model) => {
                layout::check_model(model)?;
                acquire_model(model, holder, options.ttl_ms)
            }
            LockScope::Namespace => acquire_namespace(holder, options.ttl_ms),
            LockScope::Global => Err(layout::lock_key(&scope).unwrap_err()),
        }
    }

    fn renew(lease: Lease) -> Result<Lease, Error> {
        lease::renew(&lease)
    }

    fn release(lease: Lease) -> Result<(), Error> {
        // Before the lock goes, when others may write the partition; a
        // record that cannot be removed keeps the lock until its TTL,
        // which outlasts the record's trust.
        if let LockScope::Model(model) = &lease.scope {
            leased_slice::forget(DATA_AREA, model)?;
        }
        lease::release(&lease)
    }

    fn inspect(scope: LockScope) -> Result<Option<LockInfo>, Error> {
        lock_object::inspect(&scope)
    }

    fn list() -> Result<Vec<LockInfo>, Error> {
        lock_object::list_all()
    }

    fn force_release(expected: LockInfo) -> Result<(), Error> {
        // A lease of this cache's own (a killed `silt run`): its record
        // goes first, as at release.
        if let LockScope::Model(model) = &expected.scope {
            leased_slice::forget(DATA_AREA, model)?;
        }
        lock_object::force_release(&expected)
    }
}
