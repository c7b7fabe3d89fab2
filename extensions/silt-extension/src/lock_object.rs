//! Lock objects as stored: one JSON body per lock (scope, holder, owner
//! token, generation, times, TTL). Every lock protocol built on the SDK
//! writes this body; the protocols differ in how they write it.
//!
//! The read-only half of the `locks` interface is the same for every
//! protocol and can be delegated whole:
//!
//! ```no_run,standalone_crate
//! use silt_extension::lock_object;
//! use silt_extension::silt::datastore::types::{Error, LockInfo, LockScope};
//!
//! fn inspect(scope: LockScope) -> Result<Option<LockInfo>, Error> {
//!     lock_object::inspect(&scope)
//! }
//! fn list() -> Result<Vec<LockInfo>, Error> {
//!     lock_object::list_all()
//! }
//! fn force_release(expected: LockInfo) -> Result<(), Error> {
//!     lock_object::force_release(&expected)
//! }
//! ```

use serde::{Deserialize, Serialize};

use crate::clock;
use crate::silt::datastore::types::{Error, Holder, Lease, LockInfo, LockScope, ModelRef};
use crate::store;

/// A lock object's body.
///
///
/// Acquiring a lock that nobody holds: create its object, then hand out
/// the lease.
///
/// ```no_run,standalone_crate
/// use silt_extension::lock_object::{self, HolderBody, LockBody, ScopeBody};
/// use silt_extension::silt::datastore::object_store::PutMode;
/// use silt_extension::silt::datastore::types::{Error, Holder, Lease, LockScope};
/// use silt_extension::store::{self, Written};
/// use silt_extension::{clock, layout};
///
/// fn acquire(scope: LockScope, holder: &Holder, ttl_ms: u32, generation: u64) -> Result<Lease, Error> {
///     let key = layout::lock_key(&scope)?;
///     let now = clock::now_ms();
///     let body = LockBody {
///         scope: ScopeBody::from_wit(&scope),
///         holder: HolderBody::from_wit(holder),
///         token: clock::random_hex(),
///         generation,
///         acquired_at: now,
///         renewed_at: now,
///         ttl_ms,
///         nonce: clock::random_hex(),
///     };
///     match store::put_owned(&key, &body.to_bytes(), &PutMode::Create, &body.nonce)? {
///         Written::Landed(version) => Ok(body.lease(version)),
///         Written::Lost => Err(lock_object::lost_race(&key)?),
///     }
/// }
/// ```
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

impl LockBody {
    /// Parses the lock object stored at `key`; a malformed one is
    /// `corrupt`, saying how to clear it.
    ///
    /// ```no_run,standalone_crate
    /// use silt_extension::lock_object::LockBody;
    ///
    /// let err = LockBody::parse("_locks/model/t/m.json", b"{\"scope\": 7}").unwrap_err();
    /// println!("{err:?}");
    /// ```
    ///
    /// # Errors
    /// `corrupt` when `data` is not a lock object.
    pub fn parse(key: &str, data: &[u8]) -> Result<Self, Error> {
        serde_json::from_slice(data).map_err(|err| {
            store::corrupt(
                key,
                format!("{err}; remove it with `silt datastore lock release --force`"),
            )
        })
    }
}

/// The scope as stored.
///
/// ```no_run,standalone_crate
/// use silt_extension::lock_object::ScopeBody;
/// use silt_extension::silt::datastore::types::LockScope;
///
/// // One namespace per extension: a global scope is stored as the namespace.
/// assert_eq!(ScopeBody::from_wit(&LockScope::Global), ScopeBody::Namespace);
/// let stored = serde_json::to_string(&ScopeBody::Namespace).unwrap();
/// assert_eq!(stored, r#"{"kind":"namespace"}"#);
/// ```
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
///
/// ```no_run,standalone_crate
/// use silt_extension::lock_object::{HolderBody, LockBody};
/// use silt_extension::silt::datastore::types::Holder;
///
/// /// True when the stored lock is the asker's own (from an earlier attempt).
/// fn ours(lock: &LockBody, asker: &Holder) -> bool {
///     lock.holder == HolderBody::from_wit(asker)
/// }
/// ```
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
    ///
    /// ```no_run,standalone_crate
    /// use silt_extension::lock_object::ScopeBody;
    /// use silt_extension::silt::datastore::types::{LockScope, ModelRef};
    ///
    /// let model = ModelRef { model_type: "vision/detector".into(), model_id: "m-42".into() };
    /// let stored = ScopeBody::from_wit(&LockScope::Model(model));
    /// assert_eq!(
    ///     stored,
    ///     ScopeBody::Model { model_type: "vision/detector".into(), model_id: "m-42".into() },
    /// );
    /// ```
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
    ///
    /// ```no_run,standalone_crate
    /// use silt_extension::lock_object::LockBody;
    /// use silt_extension::silt::datastore::types::LockScope;
    ///
    /// fn describe(lock: &LockBody) -> String {
    ///     match lock.scope.to_wit() {
    ///         LockScope::Model(model) => silt_extension::layout::model_label(&model),
    ///         LockScope::Namespace | LockScope::Global => "the namespace".to_owned(),
    ///     }
    /// }
    /// ```
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
    ///
    /// ```no_run,standalone_crate
    /// use silt_extension::lock_object::HolderBody;
    /// use silt_extension::silt::datastore::types::Holder;
    ///
    /// let asker = Holder { name: "ana@build-1".into(), host: "build-1".into(), pid: 4242 };
    /// let stored = HolderBody::from_wit(&asker);
    /// assert_eq!(stored.pid, 4242);
    /// ```
    pub fn from_wit(holder: &Holder) -> Self {
        Self {
            name: holder.name.clone(),
            host: holder.host.clone(),
            pid: holder.pid,
        }
    }

    /// The WIT holder.
    ///
    /// ```no_run,standalone_crate
    /// use silt_extension::lock_object::Current;
    /// use silt_extension::silt::datastore::types::Error;
    ///
    /// fn taken_over(key: &str, current: &Current) -> Error {
    ///     let holder = current.body.holder.to_wit();
    ///     Error::LockLost(format!("{key} was taken over by {} (pid {})", holder.name, holder.pid))
    /// }
    /// ```
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
    ///
    /// ```no_run,standalone_crate
    /// use silt_extension::{clock, lock_object};
    /// use silt_extension::lock_object::Current;
    /// use silt_extension::silt::datastore::types::Error;
    ///
    /// /// A lock found where we wanted to create ours: refuse a live one, take over a stale one.
    /// fn may_take_over(existing: &Current) -> Result<(), Error> {
    ///     if existing.body.stale(clock::now_ms()) {
    ///         Ok(())
    ///     } else {
    ///         Err(lock_object::held(existing))
    ///     }
    /// }
    /// ```
    pub fn stale(&self, now: u64) -> bool {
        now > self.renewed_at.saturating_add(u64::from(self.ttl_ms))
    }

    /// The WIT view, as `lock status` shows it.
    ///
    /// ```no_run,standalone_crate
    /// use silt_extension::{clock, lock_object};
    /// use silt_extension::silt::datastore::types::{Error, LockInfo};
    ///
    /// fn namespace_lock() -> Result<Option<LockInfo>, Error> {
    ///     let now = clock::now_ms();
    ///     Ok(lock_object::read_lock(silt_extension::layout::NAMESPACE_LOCK_KEY)?
    ///         .map(|current| current.body.info(&current.version, now)))
    /// }
    /// ```
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
    ///
    /// `version` is the store version the body was written at: renewal and
    /// release are conditional on it.
    ///
    /// ```no_run,standalone_crate
    /// use silt_extension::lock_object::LockBody;
    /// use silt_extension::silt::datastore::object_store::PutMode;
    /// use silt_extension::silt::datastore::types::{Error, Lease};
    /// use silt_extension::store::{self, Written};
    ///
    /// fn write_lock(key: &str, body: &LockBody, mode: PutMode) -> Result<Option<Lease>, Error> {
    ///     Ok(match store::put_owned(key, &body.to_bytes(), &mode, &body.nonce)? {
    ///         Written::Landed(version) => Some(body.lease(version)),
    ///         Written::Lost => None,
    ///     })
    /// }
    /// ```
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
    ///
    /// ```no_run,standalone_crate
    /// use silt_extension::layout;
    /// use silt_extension::lock_object::LockBody;
    /// use silt_extension::silt::datastore::object_store::PutMode;
    /// use silt_extension::silt::datastore::types::{Error, Lease};
    /// use silt_extension::store::{self, Written};
    ///
    /// /// Renews `lease` with one request when nobody touched the lock since.
    /// fn renew(lease: &Lease) -> Result<Option<Lease>, Error> {
    ///     let key = layout::lock_key(&lease.scope)?;
    ///     let body = LockBody::renewed_from(lease);
    ///     let mode = PutMode::Update(lease.version.clone());
    ///     Ok(match store::put_owned(&key, &body.to_bytes(), &mode, &body.nonce)? {
    ///         Written::Landed(version) => Some(body.lease(version)),
    ///         Written::Lost => None, // changed since: read it and decide
    ///     })
    /// }
    /// ```
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
    ///
    /// ```no_run,standalone_crate
    /// use silt_extension::lock_object::{Current, LockBody};
    /// use silt_extension::silt::datastore::object_store::PutMode;
    /// use silt_extension::silt::datastore::types::Error;
    /// use silt_extension::store::{self, Written};
    /// use silt_extension::clock;
    ///
    /// /// Takes over a stale lock by compare-and-swap on its version, never delete-then-create.
    /// fn take_over(key: &str, stale: &Current, mut ours: LockBody) -> Result<Written, Error> {
    ///     ours.generation = stale.body.generation + 1;
    ///     ours.nonce = clock::random_hex();
    ///     let mode = PutMode::Update(stale.version.clone());
    ///     store::put_owned(key, &ours.to_bytes(), &mode, &ours.nonce)
    /// }
    /// ```
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec_pretty(self).expect("a lock serializes")
    }
}

/// A lock and its store version.
///
/// ```no_run,standalone_crate
/// use silt_extension::lock_object::{self, Current};
/// # fn main() -> Result<(), silt_extension::silt::datastore::types::Error> {
/// if let Some(Current { body, version }) = lock_object::read_lock("_locks/model/vision/detector/m-42.json")? {
///     println!("held by {} at generation {} (store version {version})", body.holder.name, body.generation);
/// }
/// # Ok(()) }
/// ```
pub struct Current {
    /// The body.
    pub body: LockBody,
    /// Its store version.
    pub version: String,
}

/// Reads the lock object at `key`, if any.
///
/// # Errors
/// The store's failure; `corrupt` naming `key` (and how to remove it) when
/// the body does not parse.
///
/// ```no_run,standalone_crate
/// use silt_extension::{layout, lock_object};
/// use silt_extension::silt::datastore::types::{Error, Lease};
///
/// /// The lock of `lease`, if it is still ours.
/// fn still_ours(lease: &Lease) -> Result<lock_object::Current, Error> {
///     let key = layout::lock_key(&lease.scope)?;
///     match lock_object::read_lock(&key)? {
///         Some(current) if current.body.token == lease.token => Ok(current),
///         Some(current) => Err(Error::LockLost(format!("{key} was taken over by {}", current.body.holder.name))),
///         None => Err(Error::LockLost(format!("{key} was removed"))),
///     }
/// }
/// ```
pub fn read_lock(key: &str) -> Result<Option<Current>, Error> {
    let Some(found) = store::get(key)? else {
        return Ok(None);
    };
    Ok(Some(Current {
        body: LockBody::parse(key, &found.data)?,
        version: found.version,
    }))
}

/// `lock-held`, describing `current`.
///
/// The host waits and retries on `lock-held`, showing who holds the lock.
///
/// ```no_run,standalone_crate
/// use silt_extension::{clock, lock_object};
/// use silt_extension::silt::datastore::types::Error;
///
/// fn refuse_if_held(key: &str) -> Result<(), Error> {
///     match lock_object::read_lock(key)? {
///         Some(current) if !current.body.stale(clock::now_ms()) => Err(lock_object::held(&current)),
///         _ => Ok(()),
///     }
/// }
/// ```
pub fn held(current: &Current) -> Error {
    Error::LockHeld(current.body.info(&current.version, clock::now_ms()))
}

/// After losing the race to write `key`: `lock-held` by the winner, or, if
/// the lock is already gone again, `precondition-failed` (the host retries).
///
/// # Errors
/// The store's failure while reading the winner's lock.
///
/// ```no_run,standalone_crate
/// use silt_extension::lock_object::{self, LockBody};
/// use silt_extension::silt::datastore::object_store::PutMode;
/// use silt_extension::silt::datastore::types::{Error, Lease};
/// use silt_extension::store::{self, Written};
///
/// fn create_lock(key: &str, body: &LockBody) -> Result<Lease, Error> {
///     match store::put_owned(key, &body.to_bytes(), &PutMode::Create, &body.nonce)? {
///         Written::Landed(version) => Ok(body.lease(version)),
///         Written::Lost => Err(lock_object::lost_race(key)?),
///     }
/// }
/// ```
pub fn lost_race(key: &str) -> Result<Error, Error> {
    Ok(match read_lock(key)? {
        Some(current) => held(&current),
        None => Error::PreconditionFailed(format!("{key} changed hands while we wrote it")),
    })
}

/// Refuses a lease TTL too short to renew in time.
///
/// # Errors
/// `invalid-input` below 100 ms.
///
/// ```no_run,standalone_crate
/// use silt_extension::lock_object;
/// use silt_extension::silt::datastore::types::{Error, Lease, LockScope};
/// use silt_extension::exports::silt::datastore::locks::AcquireOptions;
///
/// fn acquire(scope: LockScope, options: AcquireOptions) -> Result<Lease, Error> {
///     lock_object::check_ttl(options.ttl_ms)?; // first, before touching the store
///     // ...
/// #   todo!()
/// }
/// assert!(lock_object::check_ttl(30_000).is_ok());
/// assert!(lock_object::check_ttl(50).is_err());
/// ```
pub fn check_ttl(ttl_ms: u32) -> Result<(), Error> {
    if ttl_ms < 100 {
        return Err(Error::InvalidInput(format!(
            "lease TTL {ttl_ms} ms is too short (at least 100 ms)"
        )));
    }
    Ok(())
}

/// The lock of `scope`, as `lock status` shows it.
///
/// # Errors
/// As [`crate::layout::lock_key`] and [`read_lock`].
///
/// ```no_run,standalone_crate
/// use silt_extension::lock_object;
/// use silt_extension::silt::datastore::types::{LockScope, ModelRef};
/// # fn main() -> Result<(), silt_extension::silt::datastore::types::Error> {
/// let model = ModelRef { model_type: "vision/detector".into(), model_id: "m-42".into() };
/// match lock_object::inspect(&LockScope::Model(model))? {
///     Some(info) if info.stale => println!("stale: anyone may take it over"),
///     Some(info) => println!("held by {} since {}", info.holder.name, info.acquired_at),
///     None => println!("free"),
/// }
/// # Ok(()) }
/// ```
pub fn inspect(scope: &LockScope) -> Result<Option<LockInfo>, Error> {
    let key = crate::layout::lock_key(scope)?;
    let now = clock::now_ms();
    Ok(read_lock(&key)?.map(|current| current.body.info(&current.version, now)))
}

/// Every lock in the store (one LIST, then one GET per lock).
///
/// # Errors
/// As [`read_lock`].
///
/// ```no_run,standalone_crate
/// use silt_extension::lock_object;
/// # fn main() -> Result<(), silt_extension::silt::datastore::types::Error> {
/// let stale: Vec<_> = lock_object::list_all()?.into_iter().filter(|info| info.stale).collect();
/// println!("{} stale locks", stale.len());
/// # Ok(()) }
/// ```
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
///
/// # Errors
/// As [`read_lock`].
///
/// ```no_run,standalone_crate
/// use silt_extension::layout::MODEL_LOCKS_PREFIX;
/// use silt_extension::lock_object;
/// use silt_extension::silt::datastore::types::Error;
///
/// /// After writing the namespace lock: model holders already inside finish first.
/// fn wait_for_model_holders() -> Result<(), Error> {
///     match lock_object::first_live(MODEL_LOCKS_PREFIX)? {
///         Some(model) => Err(lock_object::held(&model)), // the host retries
///         None => Ok(()),
///     }
/// }
/// ```
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
///
/// # Errors
/// `precondition-failed` as said; as [`crate::layout::lock_key`] for the
/// scope; the store's failure.
///
/// ```no_run,standalone_crate
/// use silt_extension::lock_object;
/// use silt_extension::silt::datastore::types::{LockScope, ModelRef};
/// # fn main() -> Result<(), silt_extension::silt::datastore::types::Error> {
/// let model = ModelRef { model_type: "vision/detector".into(), model_id: "m-42".into() };
/// // What `silt datastore lock release --force` does: inspect, then delete what was seen.
/// if let Some(info) = lock_object::inspect(&LockScope::Model(model))? {
///     lock_object::force_release(&info)?;
/// }
/// # Ok(()) }
/// ```
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
