//! The guest's view of the store: keys it may name (valid, and outside the
//! host's own key space), errors without host paths or endpoints, object
//! metadata and put modes in the contract's types. Shared by the
//! `object-store` imports and bulk transfers.

use crate::bindings::silt::datastore::object_store::{ObjectMeta, PutMode, StoreError};
use crate::bindings::silt::datastore::types::BackendFailure;
use crate::store::{self, ObjectKey};

/// Maps a host store error to the guest's view of it.
pub(crate) fn to_guest_error(err: store::StoreError) -> StoreError {
    match err {
        store::StoreError::NotFound { .. } => StoreError::NotFound,
        store::StoreError::AlreadyExists { .. } => StoreError::AlreadyExists,
        store::StoreError::PreconditionFailed { .. } => StoreError::PreconditionFailed,
        store::StoreError::NotSupported { operation, .. } => StoreError::NotSupported(operation),
        store::StoreError::InvalidKey(err) => StoreError::InvalidKey(err.to_string()),
        store::StoreError::InvalidArgument { detail } => StoreError::InvalidArgument(detail),
        // The guest learns what failed, not where: the store's name can
        // carry a host path (a directory store) or an endpoint.
        store::StoreError::Backend {
            retryable,
            detail,
            store,
        } => {
            tracing::debug!("{store}: {detail}");
            StoreError::Backend(BackendFailure { retryable, detail })
        }
        // The guest learns that credentials failed, not which or where;
        // the host reports the cause itself (`credentials_failure`).
        store::StoreError::Credentials { store, detail } => {
            tracing::debug!("{store}: {detail}");
            StoreError::Backend(BackendFailure {
                retryable: false,
                detail: "the store has no usable credentials".to_owned(),
            })
        }
        // A kind of failure newer than this mapping: not retryable, and
        // said in words (which may name the store: logged, not sent).
        other => {
            tracing::debug!("{other}");
            StoreError::Backend(BackendFailure {
                retryable: false,
                detail: "the store failed".to_owned(),
            })
        }
    }
}

pub(crate) fn to_guest_meta(meta: store::ObjectMeta) -> ObjectMeta {
    ObjectMeta {
        key: meta.key.to_string(),
        size: meta.size,
        version: meta.version.0,
        last_modified: meta.last_modified_ms,
    }
}

/// A key the guest named, checked: valid, and outside the host's own key
/// space (where the host keeps records an extension must not forge).
pub(crate) fn guest_key(key: &str) -> Result<ObjectKey, StoreError> {
    let key = ObjectKey::new(key).map_err(|err| StoreError::InvalidKey(err.to_string()))?;
    if key.is_host_reserved() {
        return Err(StoreError::InvalidKey(format!(
            "keys under `{}/` are the host's own",
            store::HOST_SEGMENT
        )));
    }
    Ok(key)
}

pub(crate) fn to_host_mode(mode: PutMode) -> store::PutMode {
    match mode {
        PutMode::Overwrite => store::PutMode::Overwrite,
        PutMode::Create => store::PutMode::Create,
        PutMode::Update(version) => store::PutMode::Update(store::Version(version)),
    }
}
