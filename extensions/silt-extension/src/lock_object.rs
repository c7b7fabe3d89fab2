//! Lock objects as stored: one JSON body per lock (scope, holder, owner
//! token, generation, times, TTL). Every lock protocol built on the kit
//! writes this body; the protocols differ in how they write it.

use serde::{Deserialize, Serialize};

use crate::clock;
use crate::silt::datastore::types::{Error, Holder, Lease, LockInfo, LockScope, ModelRef};
use crate::store;

/// A lock object's body.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LockBody {
    /// What it locks.
    pub scope: ScopeBody,
    /// Who holds it.
    pub holder: HolderBody,
    /// Random per acquisition: proves ownership.
    pub token: String,
    /// Lease generation (0 where a protocol does not fence).
    pub generation: u64,
    /// When it was acquired, ms since the epoch.
    pub acquired_at: u64,
    /// When it was last renewed, ms since the epoch.
    pub renewed_at: u64,
    /// Stale when not renewed for this long.
    pub ttl_ms: u32,
    /// Random per write (for `put-owned`).
    pub nonce: String,
}

/// The scope as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum ScopeBody {
    /// One model.
    Model {
        /// Its type.
        model_type: String,
        /// Its id.
        model_id: String,
    },
    /// The whole namespace.
    Namespace,
}

/// The holder as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HolderBody {
    /// `user@host`.
    pub name: String,
    /// The host name.
    pub host: String,
    /// The holder's process id.
    pub pid: u32,
}

impl ScopeBody {
    /// From the WIT scope (global is stored as namespace).
    pub fn from_wit(scope: &LockScope) -> Self {
        match scope {
            LockScope::Model(model) => ScopeBody::Model {
                model_type: model.model_type.clone(),
                model_id: model.model_id.clone(),
            },
            LockScope::Namespace | LockScope::Global => ScopeBody::Namespace,
        }
    }

    /// The WIT scope.
    pub fn to_wit(&self) -> LockScope {
        match self {
            ScopeBody::Model {
                model_type,
                model_id,
            } => LockScope::Model(ModelRef {
                model_type: model_type.clone(),
                model_id: model_id.clone(),
            }),
            ScopeBody::Namespace => LockScope::Namespace,
        }
    }
}

impl HolderBody {
    /// From the WIT holder.
    pub fn from_wit(holder: &Holder) -> Self {
        Self {
            name: holder.name.clone(),
            host: holder.host.clone(),
            pid: holder.pid,
        }
    }

    /// The WIT holder.
    pub fn to_wit(&self) -> Holder {
        Holder {
            name: self.name.clone(),
            host: self.host.clone(),
            pid: self.pid,
        }
    }
}

impl LockBody {
    /// True when not renewed within its TTL at `now`.
    pub fn stale(&self, now: u64) -> bool {
        now > self.renewed_at.saturating_add(u64::from(self.ttl_ms))
    }

    /// The WIT view, as `lock status` shows it.
    pub fn info(&self, version: &str, now: u64) -> LockInfo {
        LockInfo {
            scope: self.scope.to_wit(),
            holder: self.holder.to_wit(),
            generation: self.generation,
            acquired_at: self.acquired_at,
            renewed_at: self.renewed_at,
            ttl_ms: self.ttl_ms,
            stale: self.stale(now),
            version: version.to_owned(),
        }
    }

    /// The lease handed to the holder.
    pub fn lease(&self, version: String) -> Lease {
        Lease {
            scope: self.scope.to_wit(),
            token: self.token.clone(),
            generation: self.generation,
            version,
            acquired_at: self.acquired_at,
            renewed_at: self.renewed_at,
            ttl_ms: self.ttl_ms,
            holder: self.holder.to_wit(),
        }
    }

    /// The body `lease` describes, renewed now (fresh `renewed_at` and
    /// nonce): what a renewal writes without reading the lock first.
    pub fn renewed_from(lease: &Lease) -> Self {
        Self {
            scope: ScopeBody::from_wit(&lease.scope),
            holder: HolderBody::from_wit(&lease.holder),
            token: lease.token.clone(),
            generation: lease.generation,
            acquired_at: lease.acquired_at,
            renewed_at: clock::now_ms(),
            ttl_ms: lease.ttl_ms,
            nonce: clock::random_hex(),
        }
    }

    /// Serialized for the store.
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec_pretty(self).expect("a lock serializes")
    }
}

/// A lock and its store version.
pub struct Current {
    /// The body.
    pub body: LockBody,
    /// Its store version.
    pub version: String,
}

/// Reads the lock object at `key`, if any.
pub fn read_lock(key: &str) -> Result<Option<Current>, Error> {
    let Some(found) = store::get(key)? else {
        return Ok(None);
    };
    let body: LockBody = serde_json::from_slice(&found.data).map_err(|err| {
        store::corrupt(
            key,
            format!("{err}; remove it with `silt datastore lock release --force`"),
        )
    })?;
    Ok(Some(Current {
        body,
        version: found.version,
    }))
}

/// `lock-held`, describing `current`.
pub fn held(current: &Current) -> Error {
    Error::LockHeld(current.body.info(&current.version, clock::now_ms()))
}

/// After losing the race to write `key`: `lock-held` by the winner, or, if
/// the lock is already gone again, `precondition-failed` (the host retries).
pub fn lost_race(key: &str) -> Result<Error, Error> {
    Ok(match read_lock(key)? {
        Some(current) => held(&current),
        None => Error::PreconditionFailed(format!("{key} changed hands while we wrote it")),
    })
}

/// Refuses a lease TTL too short to renew in time.
pub fn check_ttl(ttl_ms: u32) -> Result<(), Error> {
    if ttl_ms < 100 {
        return Err(Error::InvalidInput(format!(
            "lease TTL {ttl_ms} ms is too short (at least 100 ms)"
        )));
    }
    Ok(())
}

/// The lock of `scope`, as `lock status` shows it.
pub fn inspect(scope: &LockScope) -> Result<Option<LockInfo>, Error> {
    let key = crate::layout::lock_key(scope)?;
    let now = clock::now_ms();
    Ok(read_lock(&key)?.map(|current| current.body.info(&current.version, now)))
}

/// Every lock in the store (one LIST, then one GET per lock).
pub fn list_all() -> Result<Vec<LockInfo>, Error> {
    let now = clock::now_ms();
    let mut locks = Vec::new();
    for meta in store::list_all(crate::layout::LOCKS_PREFIX)? {
        // A lock released between LIST and GET is simply not listed.
        if let Some(current) = read_lock(&meta.key)? {
            locks.push(current.body.info(&current.version, now));
        }
    }
    Ok(locks)
}

/// The first live (not stale) lock under `prefix`, if any: what keeps a
/// namespace lease out while model holders drain.
pub fn first_live(prefix: &str) -> Result<Option<Current>, Error> {
    let now = clock::now_ms();
    for meta in store::list_all(prefix)? {
        if let Some(current) = read_lock(&meta.key)?
            && !current.body.stale(now)
        {
            return Ok(Some(current));
        }
    }
    Ok(None)
}

/// `locks.force-release`: deletes the lock `expected` describes, only if it
/// is still that version (one conditional DELETE); a renewal or a new holder
/// since it was inspected makes it `precondition-failed`.
pub fn force_release(expected: &LockInfo) -> Result<(), Error> {
    let key = crate::layout::lock_key(&expected.scope)?;
    if store::delete_if(&key, &expected.version)? {
        Ok(())
    } else {
        Err(Error::PreconditionFailed(format!(
            "{key} changed since it was inspected (new holder or renewal); inspect it again"
        )))
    }
}
