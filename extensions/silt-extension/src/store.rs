//! The host's object store, with errors turned into the WIT `error` of the
//! exported functions, each naming the object concerned.

use crate::silt::datastore::object_store::{self, ObjectMeta, PutMode, StoreError};
use crate::silt::datastore::types::{BackendFailure, CorruptObject, Error};

/// Objects are read whole; index partitions and locks are small.
pub struct Found {
    /// The content.
    pub data: Vec<u8>,
    /// The store version (for compare-and-swap).
    pub version: String,
}

/// `get`, with `None` for a missing object.
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
pub enum Conditional {
    /// The object is still at the version we have.
    Unchanged,
    /// The object changed (or we had none).
    Changed(Found),
    /// There is no such object.
    Missing,
}

/// `get` unless the object is still at `version`.
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
pub enum Written {
    /// It landed; the new version.
    Landed(String),
    /// Someone else changed (or created) the object first.
    Lost,
}

/// `put-owned`: a conditional write whose body contains `token`, so the host
/// can tell "our retried write already landed" from "we lost the race".
///
/// ```ignore
/// let token = clock::random_hex(); // the owner token, also inside `body`
/// match store::put_owned("_locks/model/a/b.json", &body, &PutMode::Create, &token)? {
///     Written::Landed(version) => { /* ours, at `version` */ }
///     Written::Lost => { /* someone else's: read it, decide */ }
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
pub fn delete_if(key: &str, version: &str) -> Result<bool, Error> {
    match object_store::delete(key, Some(version)) {
        Ok(()) => Ok(true),
        Err(StoreError::PreconditionFailed | StoreError::NotFound) => Ok(false),
        Err(err) => Err(error(key, err)),
    }
}

/// Deletes `key` unconditionally; a missing object is fine.
pub fn delete(key: &str) -> Result<(), Error> {
    match object_store::delete(key, None) {
        Ok(()) | Err(StoreError::NotFound) => Ok(()),
        Err(err) => Err(error(key, err)),
    }
}

/// Every object under `prefix`, one page (up to 1,000) per call to the store.
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
pub fn corrupt(key: &str, detail: impl std::fmt::Display) -> Error {
    Error::Corrupt(CorruptObject {
        object: key.to_owned(),
        detail: detail.to_string(),
    })
}

/// A store error about `key`, as the exported functions report it.
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
/// ```ignore
/// let committed = store::retry_lost("_index/a/b.json", 16, |_| {
///     let found = store::get("_index/a/b.json")?;
///     let next = change(found.as_ref());
///     let mode = match &found {
///         Some(found) => PutMode::Update(found.version.clone()),
///         None => PutMode::Create,
///     };
///     Ok(match store::put_owned("_index/a/b.json", &next, &mode, &token)? {
///         Written::Landed(version) => Some(version),
///         Written::Lost => None,
///     })
/// })?;
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
        crate::clock::backoff(number);
    }
    Err(Error::PreconditionFailed(format!(
        "{key}: changed by others on each of {max_attempts} attempts; try again"
    )))
}
