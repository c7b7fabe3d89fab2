//! The host's object store, with errors turned into the WIT `error` of the
//! exported functions, each naming the object concerned.
//!
//! ```no_run,standalone_crate
//! use silt_extension::store;
//! # fn main() -> Result<(), silt_extension::silt::datastore::types::Error> {
//! // A missing object is `None`, not an error; a failure names the key.
//! if let Some(found) = store::get("_meta/datastore.json")? {
//!     println!("{} bytes at version {}", found.data.len(), found.version);
//! }
//! # Ok(()) }
//! ```

use crate::silt::datastore::object_store::{self, ObjectMeta, PutMode, StoreError};
use crate::silt::datastore::types::{BackendFailure, Error};

/// Objects are read whole; index partitions and locks are small.
///
/// ```no_run,standalone_crate
/// use silt_extension::store::{self, Found};
/// # fn main() -> Result<(), silt_extension::silt::datastore::types::Error> {
/// if let Some(Found { data, version }) = store::get("_index/data/vision/detector/m-42.json")? {
///     // `version` is what a compare-and-swap of this object is conditional on.
///     println!("{} bytes at {version}", data.len());
/// }
/// # Ok(()) }
/// ```
pub struct Found {
    /// The content.
    pub data: Vec<u8>,
    /// The store version (for compare-and-swap).
    pub version: String,
}

/// `get`, with `None` for a missing object.
///
/// # Errors
/// The store's failure, naming `key` (see [`error`]).
///
/// ```no_run,standalone_crate
/// use silt_extension::store;
/// use silt_extension::silt::datastore::types::Error;
///
/// fn retention() -> Result<u64, Error> {
///     const KEY: &str = "_meta/datastore.json";
///     let Some(found) = store::get(KEY)? else {
///         return Err(Error::NotFound(format!("{KEY}: run `silt datastore setup`")));
///     };
///     let meta: serde_json::Value =
///         serde_json::from_slice(&found.data).map_err(|err| store::corrupt(KEY, err))?;
///     Ok(meta["retain_versions"].as_u64().unwrap_or(10))
/// }
/// ```
pub fn get(key: &str) -> Result<Option<Found>, Error> {
    match get_if_changed(key, None)? {
        Conditional::Changed(found) => Ok(Some(found)),
        Conditional::Missing => Ok(None),
        Conditional::Unchanged => Err(Error::Backend(BackendFailure {
            retryable: true,
            detail: format!("{key}: the store answered not-modified to an unconditional get"),
        })),
    }
}

/// What a conditional get found.
///
/// ```no_run,standalone_crate
/// use silt_extension::store::{self, Conditional};
/// # fn main() -> Result<(), silt_extension::silt::datastore::types::Error> {
/// # let (key, cached_version) = ("_index/index.json", Some("v1"));
/// match store::get_if_changed(key, cached_version)? {
///     Conditional::Unchanged => { /* keep using the local copy */ }
///     Conditional::Changed(found) => { /* parse `found.data`, remember `found.version` */ }
///     Conditional::Missing => { /* nothing committed yet */ }
/// }
/// # Ok(()) }
/// ```
pub enum Conditional {
    /// The object is still at the version we have.
    Unchanged,
    /// The object changed (or we had none).
    Changed(Found),
    /// There is no such object.
    Missing,
}

/// `get` unless the object is still at `version`.
///
/// One conditional GET: the way to keep a local copy of an object current.
///
/// # Errors
/// The store's failure, naming `key`.
///
/// ```no_run,standalone_crate
/// use silt_extension::store::{self, Conditional};
/// use silt_extension::silt::datastore::types::Error;
///
/// /// The object at `key`, from `cache` (data, version) unless it changed.
/// fn current(key: &str, cache: &mut Option<(Vec<u8>, String)>) -> Result<(), Error> {
///     let known = cache.as_ref().map(|(_, version)| version.as_str());
///     match store::get_if_changed(key, known)? {
///         Conditional::Unchanged => {}
///         Conditional::Changed(found) => *cache = Some((found.data, found.version)),
///         Conditional::Missing => *cache = None,
///     }
///     Ok(())
/// }
/// ```
pub fn get_if_changed(key: &str, version: Option<&str>) -> Result<Conditional, Error> {
    match object_store::get(key, version) {
        Ok(object_store::GetOutcome::Found(object)) => Ok(Conditional::Changed(Found {
            data: object.data,
            version: object.meta.version,
        })),
        Ok(object_store::GetOutcome::NotModified) => Ok(Conditional::Unchanged),
        Err(StoreError::NotFound) => Ok(Conditional::Missing),
        Err(err) => Err(error(key, err)),
    }
}

/// The outcome of a conditional write.
///
/// ```no_run,standalone_crate
/// use silt_extension::silt::datastore::object_store::PutMode;
/// use silt_extension::silt::datastore::types::Error;
/// use silt_extension::store::{self, Written};
/// # fn main() -> Result<(), silt_extension::silt::datastore::types::Error> {
/// # let (key, body, token) = ("_locks/model/vision/detector/m-42.json", b"{}".to_vec(), "t");
/// let version = match store::put_owned(key, &body, &PutMode::Create, token)? {
///     Written::Landed(version) => version,
///     Written::Lost => return Err(Error::PreconditionFailed(key.to_owned())),
/// };
/// # Ok(()) }
/// ```
pub enum Written {
    /// It landed; the new version.
    Landed(String),
    /// Someone else changed (or created) the object first.
    Lost,
}

/// `put-owned`: a conditional write whose body contains `token`, so the host
/// can tell "our retried write already landed" from "we lost the race".
///
/// `mode` says what must hold for the write to land: [`PutMode::Create`]
/// (no object yet), [`PutMode::Update`] (still at that version) or
/// [`PutMode::Overwrite`] (unconditional).
///
/// # Errors
/// The store's failure, naming `key`; a lost race is [`Written::Lost`], not
/// an error.
///
/// ```no_run,standalone_crate
/// use silt_extension::layout;
/// use silt_extension::lock_object::LockBody;
/// use silt_extension::silt::datastore::object_store::PutMode;
/// use silt_extension::silt::datastore::types::{Error, Lease};
/// use silt_extension::store::{self, Written};
///
/// /// Renews `lease`: one compare-and-swap on the version we last wrote.
/// fn renew(lease: &Lease) -> Result<Lease, Error> {
///     let key = layout::lock_key(&lease.scope)?;
///     let body = LockBody::renewed_from(lease); // its fresh nonce is the owner token
///     let mode = PutMode::Update(lease.version.clone());
///     match store::put_owned(&key, &body.to_bytes(), &mode, &body.nonce)? {
///         Written::Landed(version) => Ok(body.lease(version)),
///         Written::Lost => Err(Error::LockLost(format!("{key} changed since we last wrote it"))),
///     }
/// }
/// ```
pub fn put_owned(key: &str, data: &[u8], mode: &PutMode, token: &str) -> Result<Written, Error> {
    match object_store::put_owned(key, data, mode, token) {
        Ok(version) => Ok(Written::Landed(version)),
        Err(StoreError::PreconditionFailed | StoreError::AlreadyExists) => Ok(Written::Lost),
        // Updating an object that vanished is a lost race too.
        Err(StoreError::NotFound) if matches!(mode, PutMode::Update(_)) => Ok(Written::Lost),
        Err(err) => Err(error(key, err)),
    }
}

/// Deletes `key` if it is still at `version`; `false` when it changed or vanished.
///
/// # Errors
/// The store's failure, naming `key`.
///
/// ```no_run,standalone_crate
/// use silt_extension::store;
/// use silt_extension::silt::datastore::types::{Error, Lease};
///
/// // Release a lock we wrote, unless someone has changed it since.
/// fn release(key: &str, lease: &Lease) -> Result<(), Error> {
///     if store::delete_if(key, &lease.version)? {
///         Ok(())
///     } else {
///         Err(Error::LockLost(format!("{key} changed since we wrote it; nothing was deleted")))
///     }
/// }
/// ```
pub fn delete_if(key: &str, version: &str) -> Result<bool, Error> {
    match object_store::delete(key, Some(version)) {
        Ok(()) => Ok(true),
        Err(StoreError::PreconditionFailed | StoreError::NotFound) => Ok(false),
        Err(err) => Err(error(key, err)),
    }
}

/// Deletes `key` unconditionally; a missing object is fine.
///
/// # Errors
/// The store's failure, naming `key`.
///
/// ```no_run,standalone_crate
/// use silt_extension::layout::{self, DATA_AREA};
/// use silt_extension::store;
/// # fn main() -> Result<(), silt_extension::silt::datastore::types::Error> {
/// # let model = silt_extension::silt::datastore::types::ModelRef { model_type: "vision/detector".into(), model_id: "m-42".into() };
/// // An expired version's content: nothing refers to it any more.
/// store::delete(&layout::object_key(DATA_AREA, &model, "weights.bin", "1767225600000-9f2c4e1a7b3d5c60"))?;
/// # Ok(()) }
/// ```
pub fn delete(key: &str) -> Result<(), Error> {
    match object_store::delete(key, None) {
        Ok(()) | Err(StoreError::NotFound) => Ok(()),
        Err(err) => Err(error(key, err)),
    }
}

/// Every object under `prefix`, one page (up to 1,000) per call to the store.
///
/// # Errors
/// The store's failure, naming `prefix`.
///
/// ```no_run,standalone_crate
/// use silt_extension::silt::datastore::types::ModelRef;
/// use silt_extension::{Listed, store};
/// # fn main() -> Result<(), silt_extension::silt::datastore::types::Error> {
/// // List a per-model index kept at `_my-index/<type>/<id>.json`.
/// let mut listed = Listed::new();
/// for meta in store::list_all("_my-index/")? {
///     let Some(label) = meta.key.strip_prefix("_my-index/").and_then(|k| k.strip_suffix(".json")) else {
///         continue;
///     };
///     if let Some((model_type, model_id)) = label.rsplit_once('/') {
///         let model = ModelRef { model_type: model_type.into(), model_id: model_id.into() };
///         listed.insert((model_type.into(), model_id.into()), (model, meta.version));
///     }
/// }
/// # Ok(()) }
/// ```
pub fn list_all(prefix: &str) -> Result<Vec<ObjectMeta>, Error> {
    let mut all = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page =
            object_store::list(prefix, after.as_deref(), 1000).map_err(|err| error(prefix, err))?;
        all.extend(page.items);
        match page.next_start_after {
            Some(next) => after = Some(next),
            None => return Ok(all),
        }
    }
}

/// A JSON object in the store that does not parse: corrupt, named.
///
/// ```no_run,standalone_crate
/// use silt_extension::store;
/// use silt_extension::silt::datastore::types::Error;
///
/// fn parse(key: &str, data: &[u8]) -> Result<serde_json::Value, Error> {
///     serde_json::from_slice(data).map_err(|err| store::corrupt(key, err))
/// }
/// ```
pub fn corrupt(key: &str, detail: impl std::fmt::Display) -> Error {
    crate::corrupt_object(key, detail)
}

/// A store error about `key`, as the exported functions report it.
///
/// For calls to [`object_store`] made directly (a HEAD, a bulk transfer).
///
/// ```no_run,standalone_crate
/// use silt_extension::silt::datastore::object_store::{self, StoreError};
/// use silt_extension::silt::datastore::types::Error;
/// use silt_extension::store;
///
/// /// The store version of `key`, or `None` when there is no such object.
/// fn head(key: &str) -> Result<Option<String>, Error> {
///     match object_store::head(key) {
///         Ok(meta) => Ok(Some(meta.version)),
///         Err(StoreError::NotFound) => Ok(None),
///         Err(err) => Err(store::error(key, err)),
///     }
/// }
/// ```
pub fn error(key: &str, err: StoreError) -> Error {
    match err {
        StoreError::NotFound => Error::NotFound(key.to_owned()),
        StoreError::AlreadyExists | StoreError::PreconditionFailed => {
            Error::PreconditionFailed(key.to_owned())
        }
        StoreError::Backend(failure) => Error::Backend(BackendFailure {
            retryable: failure.retryable,
            detail: format!("{key}: {}", failure.detail),
        }),
        StoreError::ChecksumMismatch(detail) => corrupt(key, detail),
        StoreError::InvalidKey(detail) | StoreError::InvalidArgument(detail) => {
            Error::InvalidInput(format!("{key}: {detail}"))
        }
        StoreError::InvalidPath(detail) => Error::InvalidInput(format!("cache path: {detail}")),
        StoreError::NotSupported(detail) => Error::NotSupported(format!("{key}: {detail}")),
    }
}

/// Runs `attempt` until it lands, at most `max_attempts` times, sleeping
/// [`crate::clock::backoff`] after each lost race: the loop of every
/// compare-and-swap (read, change, write if unchanged). `attempt` gets the
/// 0-based attempt number and returns `Ok(Some(value))` when its write
/// landed, `Ok(None)` when it lost and should start over from a fresh read.
///
/// ```no_run,standalone_crate
/// use silt_extension::clock;
/// use silt_extension::silt::datastore::object_store::PutMode;
/// use silt_extension::store::{self, Written};
/// # fn main() -> Result<(), silt_extension::silt::datastore::types::Error> {
/// #[derive(Default, serde::Serialize, serde::Deserialize)]
/// struct Tags {
///     names: Vec<String>,
///     nonce: String, // the owner token of the write that made this body
/// }
///
/// // Add a tag to a shared object, on top of whatever others wrote meanwhile.
/// let key = "_meta/tags.json";
/// let version = store::retry_lost(key, 16, |_attempt| {
///     let found = store::get(key)?;
///     let mut tags: Tags = match &found {
///         Some(found) => serde_json::from_slice(&found.data).map_err(|err| store::corrupt(key, err))?,
///         None => Tags::default(),
///     };
///     tags.names.push("release-7".to_owned());
///     tags.nonce = clock::random_hex();
///     let mode = match found {
///         Some(found) => PutMode::Update(found.version),
///         None => PutMode::Create,
///     };
///     let body = serde_json::to_vec(&tags).expect("tags serialize");
///     Ok(match store::put_owned(key, &body, &mode, &tags.nonce)? {
///         Written::Landed(version) => Some(version),
///         Written::Lost => None, // changed since we read it: read again
///     })
/// })?;
/// # Ok(()) }
/// ```
///
/// # Errors
/// `attempt`'s own errors, or `precondition-failed` naming `key` when every
/// attempt lost.
pub fn retry_lost<T>(
    key: &str,
    max_attempts: u32,
    mut attempt: impl FnMut(u32) -> Result<Option<T>, Error>,
) -> Result<T, Error> {
    for number in 0..max_attempts {
        if let Some(value) = attempt(number)? {
            return Ok(value);
        }
        // Back off before the next attempt, not after the last.
        if number + 1 < max_attempts {
            crate::clock::backoff(number);
        }
    }
    Err(Error::PreconditionFailed(format!(
        "{key}: changed by others on each of {max_attempts} attempts; try again"
    )))
}
