//! Where everything lives: keys in the store and paths in the cache, and the
//! rules for the names that go into them.

use crate::silt::datastore::types::{Error, LockScope, ModelRef};

/// Datastore metadata (layout version, retention).
pub const META_KEY: &str = "_meta/datastore.json";
/// Prefix of every lock.
pub const LOCKS_PREFIX: &str = "_locks/";
/// The namespace lock.
pub const NAMESPACE_LOCK_KEY: &str = "_locks/namespace.json";
/// Prefix of model locks.
pub const MODEL_LOCKS_PREFIX: &str = "_locks/model/";
/// The area holding model files.
pub const DATA_AREA: &str = "data";
/// The cache directory, as preopened by the host.
pub const CACHE_ROOT: &str = "/cache";
/// silt's own files in the cache (sidecars); never part of a working copy.
pub const CACHE_STATE_DIR: &str = ".silt";

/// Checks one path segment: non-empty, printable, not `.`/`..`, no `\`.
fn check_segment(what: &str, whole: &str, segment: &str) -> Result<(), Error> {
    let bad = segment.is_empty()
        || segment == "."
        || segment == ".."
        || segment.contains('\\')
        || segment.chars().any(char::is_control);
    if bad {
        return Err(Error::InvalidInput(format!(
            "{what} `{whole}`: segments must be non-empty, printable, without `\\`, and not `.` or `..`"
        )));
    }
    Ok(())
}

/// Checks a model reference: a type of one or more `/`-separated segments,
/// an id of exactly one.
pub fn check_model(model: &ModelRef) -> Result<(), Error> {
    let whole = format!("{}/{}", model.model_type, model.model_id);
    for segment in model.model_type.split('/') {
        check_segment("model type", &whole, segment)?;
    }
    if model.model_id.contains('/') {
        return Err(Error::InvalidInput(format!(
            "model `{whole}`: the id (after the last `/`) must be one segment"
        )));
    }
    check_segment("model id", &whole, &model.model_id)?;
    if model.model_type.starts_with(CACHE_STATE_DIR) {
        return Err(Error::InvalidInput(format!(
            "model `{whole}`: `{CACHE_STATE_DIR}` is reserved"
        )));
    }
    Ok(())
}

/// Checks a file name within a model: a relative path.
pub fn check_name(name: &str) -> Result<(), Error> {
    for segment in name.split('/') {
        check_segment("file name", name, segment)?;
    }
    Ok(())
}

/// True when `a` and `b` name the same model.
pub fn same_model(a: &ModelRef, b: &ModelRef) -> bool {
    a.model_type == b.model_type && a.model_id == b.model_id
}

/// `type/id`, as users write it.
pub fn model_label(model: &ModelRef) -> String {
    format!("{}/{}", model.model_type, model.model_id)
}

/// Where one version of a file's content lives. Never overwritten: the
/// version token is fresh for every commit.
pub fn object_key(area: &str, model: &ModelRef, name: &str, version: &str) -> String {
    format!(
        "{area}/{}/{}/{name}/{version}",
        model.model_type, model.model_id
    )
}

/// The lock object of a scope.
pub fn lock_key(scope: &LockScope) -> Result<String, Error> {
    match scope {
        LockScope::Model(model) => {
            check_model(model)?;
            Ok(format!(
                "{MODEL_LOCKS_PREFIX}{}/{}.json",
                model.model_type, model.model_id
            ))
        }
        LockScope::Namespace => Ok(NAMESPACE_LOCK_KEY.to_owned()),
        LockScope::Global => Err(Error::NotSupported(
            "global locks: this extension sees one namespace; use the namespace lock".to_owned(),
        )),
    }
}

/// The model's working directory, relative to the cache.
pub fn working_dir(model: &ModelRef) -> String {
    format!("{DATA_AREA}/{}/{}", model.model_type, model.model_id)
}

/// A file of the model's working copy, relative to the cache.
pub fn working_path(model: &ModelRef, name: &str) -> String {
    format!("{}/{name}", working_dir(model))
}

/// The sidecar of a partition, relative to the cache.
pub fn sidecar_path(area: &str, model: &ModelRef) -> String {
    format!(
        "{CACHE_STATE_DIR}/index/{area}/{}/{}.json",
        model.model_type, model.model_id
    )
}

/// The summary of the sidecars of `area` (model → version), relative to the cache.
pub fn summary_path(area: &str) -> String {
    format!("{CACHE_STATE_DIR}/index/{area}.versions.json")
}

/// An absolute path inside the preopened cache directory.
pub fn in_cache(relative: &str) -> String {
    format!("{CACHE_ROOT}/{relative}")
}

/// True for the host's in-flight download files (`.<name>.silt-tmp.*`).
pub fn is_transfer_temp(file_name: &str) -> bool {
    file_name.starts_with('.') && file_name.contains(".silt-tmp.")
}
