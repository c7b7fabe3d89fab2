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

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "_locks/model/vision/detector/m-42.json";
    const TOKEN: &str = "0f1e2d3c4b5a69788796a5b4c3d2e1f0";

    fn model() -> ModelRef {
        ModelRef {
            model_type: "vision/detector".to_owned(),
            model_id: "m-42".to_owned(),
        }
    }

    fn body(scope: ScopeBody) -> LockBody {
        LockBody {
            scope,
            holder: HolderBody {
                name: "ana@build-1".to_owned(),
                host: "build-1".to_owned(),
                pid: 4242,
            },
            token: TOKEN.to_owned(),
            generation: 7,
            acquired_at: 1_000,
            renewed_at: 2_000,
            ttl_ms: 30_000,
            nonce: "a55a".to_owned(),
        }
    }

    /// `(type, id)` of a model scope; panics on any other.
    fn model_of(scope: &LockScope) -> (&str, &str) {
        match scope {
            LockScope::Model(model) => (model.model_type.as_str(), model.model_id.as_str()),
            other => panic!("expected a model scope, got {other:?}"),
        }
    }

    #[test]
    fn a_lock_body_round_trips_through_its_encoding() {
        let mut original = body(ScopeBody::Model {
            model_type: "vision/détecteur".to_owned(),
            model_id: "m-42 \"β\"".to_owned(),
        });
        // Every integer at its maximum: JSON must carry them exactly.
        original.generation = u64::MAX;
        original.acquired_at = u64::MAX - 1;
        original.renewed_at = u64::MAX;
        original.ttl_ms = u32::MAX;
        original.holder.pid = u32::MAX;

        let bytes = original.to_bytes();
        let parsed = LockBody::parse(KEY, &bytes).unwrap();
        assert_eq!(parsed.scope, original.scope);
        assert_eq!(parsed.holder, original.holder);
        assert_eq!(
            (
                parsed.token.as_str(),
                parsed.generation,
                parsed.acquired_at,
                parsed.renewed_at,
                parsed.ttl_ms,
                parsed.nonce.as_str(),
            ),
            (TOKEN, u64::MAX, u64::MAX - 1, u64::MAX, u32::MAX, "a55a"),
        );
        assert_eq!(parsed.to_bytes(), bytes);
    }

    #[test]
    fn the_stored_scope_is_tagged_by_kind_with_the_model_fields_as_named() {
        // Every writer of a lock, whatever its SDK version, reads this form.
        assert_eq!(
            serde_json::to_string(&ScopeBody::Namespace).unwrap(),
            r#"{"kind":"namespace"}"#
        );
        assert_eq!(
            serde_json::to_string(&ScopeBody::from_wit(&LockScope::Model(model()))).unwrap(),
            r#"{"kind":"model","model_type":"vision/detector","model_id":"m-42"}"#
        );
        let stored: ScopeBody = serde_json::from_str(
            r#"{"model_id":"m-42","kind":"model","model_type":"vision/detector"}"#,
        )
        .unwrap();
        assert_eq!(
            stored,
            ScopeBody::Model {
                model_type: "vision/detector".to_owned(),
                model_id: "m-42".to_owned(),
            }
        );
        // Global is never stored, so it is no kind; nor is a capitalised one.
        assert!(serde_json::from_str::<ScopeBody>(r#"{"kind":"global"}"#).is_err());
        assert!(serde_json::from_str::<ScopeBody>(r#"{"kind":"Namespace"}"#).is_err());
        assert!(serde_json::from_str::<ScopeBody>(r#"{"kind":"model"}"#).is_err());
    }

    #[test]
    fn global_is_stored_as_the_namespace_and_the_rest_converts_back_unchanged() {
        assert_eq!(
            ScopeBody::from_wit(&LockScope::Global),
            ScopeBody::Namespace
        );
        assert_eq!(
            ScopeBody::from_wit(&LockScope::Namespace),
            ScopeBody::Namespace
        );
        assert!(matches!(
            ScopeBody::Namespace.to_wit(),
            LockScope::Namespace
        ));
        let back = ScopeBody::from_wit(&LockScope::Model(model())).to_wit();
        assert_eq!(model_of(&back), ("vision/detector", "m-42"));

        let holder = Holder {
            name: "ana@build-1".to_owned(),
            host: "build-1".to_owned(),
            pid: u32::MAX,
        };
        let back = HolderBody::from_wit(&holder).to_wit();
        assert_eq!(
            (back.name.as_str(), back.host.as_str(), back.pid),
            ("ana@build-1", "build-1", u32::MAX)
        );
    }

    #[test]
    fn parsing_refuses_a_malformed_lock_as_corrupt_saying_how_to_clear_it() {
        let whole = body(ScopeBody::Namespace).to_bytes();
        let truncated = &whole[..whole.len() / 2];
        let mut without_nonce: serde_json::Value = serde_json::from_slice(&whole).unwrap();
        without_nonce.as_object_mut().unwrap().remove("nonce");
        let without_nonce = serde_json::to_vec(&without_nonce).unwrap();

        let malformed: [&[u8]; 6] = [
            b"",
            b"null",
            b"{\"scope\": 7}",
            br#"{"scope":{"kind":"global"}}"#,
            truncated,
            without_nonce.as_slice(),
        ];
        for data in malformed {
            match LockBody::parse(KEY, data) {
                Err(Error::Corrupt(found)) => {
                    assert_eq!(found.object, KEY);
                    assert!(
                        found
                            .detail
                            .ends_with("; remove it with `silt datastore lock release --force`"),
                        "{}",
                        found.detail
                    );
                }
                other => panic!(
                    "expected corrupt for {:?}, got {other:?}",
                    String::from_utf8_lossy(data)
                ),
            }
        }
    }

    #[test]
    fn a_lock_is_stale_only_once_its_ttl_has_fully_passed() {
        // Renewed at 2 000 ms for 30 000 ms.
        let lock = body(ScopeBody::Namespace);
        // A clock behind the writer's sees it live, not stale.
        assert!(!lock.stale(0));
        assert!(!lock.stale(2_000));
        assert!(!lock.stale(32_000));
        assert!(lock.stale(32_001));
        assert!(lock.stale(u64::MAX));

        // Near the end of time the deadline saturates instead of wrapping
        // round to a small number (which would make a live lock stale).
        let mut late = body(ScopeBody::Namespace);
        late.renewed_at = u64::MAX - 1;
        late.ttl_ms = u32::MAX;
        assert!(!late.stale(u64::MAX));
    }

    #[test]
    fn info_and_lease_carry_the_body_with_the_given_store_version() {
        let lock = body(ScopeBody::from_wit(&LockScope::Model(model())));

        let info = lock.info("store-v9", 32_000);
        assert_eq!(model_of(&info.scope), ("vision/detector", "m-42"));
        assert_eq!(
            (
                info.holder.name.as_str(),
                info.holder.host.as_str(),
                info.holder.pid,
            ),
            ("ana@build-1", "build-1", 4242),
        );
        assert_eq!(
            (
                info.generation,
                info.acquired_at,
                info.renewed_at,
                info.ttl_ms,
                info.stale,
                info.version.as_str(),
            ),
            (7, 1_000, 2_000, 30_000, false, "store-v9"),
        );
        assert!(lock.info("store-v9", 32_001).stale);

        let lease = lock.lease("store-v10".to_owned());
        assert_eq!(model_of(&lease.scope), ("vision/detector", "m-42"));
        assert_eq!(
            (
                lease.token.as_str(),
                lease.generation,
                lease.version.as_str(),
                lease.acquired_at,
                lease.renewed_at,
                lease.ttl_ms,
            ),
            (TOKEN, 7, "store-v10", 1_000, 2_000, 30_000),
        );
        assert_eq!(
            (lease.holder.name.as_str(), lease.holder.pid),
            ("ana@build-1", 4242)
        );
        // A namespace lock hands out a namespace lease, never a global one.
        assert!(matches!(
            body(ScopeBody::Namespace).lease("v".to_owned()).scope,
            LockScope::Namespace
        ));
    }

    #[test]
    fn the_ttl_must_be_at_least_100_ms() {
        assert!(check_ttl(100).is_ok());
        assert!(check_ttl(30_000).is_ok());
        assert!(check_ttl(u32::MAX).is_ok());
        for ttl in [0, 1, 99] {
            match check_ttl(ttl) {
                Err(Error::InvalidInput(message)) => assert_eq!(
                    message,
                    format!("lease TTL {ttl} ms is too short (at least 100 ms)")
                ),
                other => panic!("expected invalid-input for {ttl}, got {other:?}"),
            }
        }
    }
}
