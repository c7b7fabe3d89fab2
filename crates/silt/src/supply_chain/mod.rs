//! The extension supply chain of a project: what `silt.toml` requires
//! ([`requirement`]), what `silt.lock` pins ([`lockfile`]), and bringing the
//! installed extensions in line with both ([`install`](install())).
//!
//! Fetching and digest checks are `silt-registry`'s; validation and the
//! catalog are the runtime's. This module decides what to fetch and when a
//! fetched component may replace what is installed.

mod install;
pub mod lockfile;
pub mod requirement;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub use install::{Action, LockMismatch, Outcome, Update, install};
pub use lockfile::{LOCK_FILE_NAME, Lockfile};
pub use requirement::{Requirement, Source};

use crate::runtime::Catalog;

/// `silt.lock` beside the project's `silt.toml` (`config_file`), if there
/// is a project.
#[must_use]
pub fn lock_path(config_file: Option<&Path>) -> Option<PathBuf> {
    Some(config_file?.with_file_name(LOCK_FILE_NAME))
}

/// Before a command uses extension `name`: when the project's `silt.toml`
/// (`config_file`) requires it (`requirements`), makes the one installed
/// in `extensions_dir` exactly what `silt.lock` pins (installing it on a
/// fresh clone, locking it the first time). When nothing requires it and
/// the project lacks it, the user's own install in
/// `user_extensions_dir` (`silt extension add` outside a project) is
/// copied in, so a new project works with what the user installed.
/// Returns what was done, or `None` when there was nothing to do.
///
/// # Errors
/// As [`install()`]; a user's install that no longer validates.
pub async fn ensure_installed(
    config_file: Option<&Path>,
    extensions_dir: &Path,
    user_extensions_dir: Option<&Path>,
    requirements: &BTreeMap<String, Requirement>,
    name: &str,
) -> anyhow::Result<Option<Outcome>> {
    let Some(lock_path) = lock_path(config_file).filter(|_| requirements.contains_key(name)) else {
        return adopt_users_install(extensions_dir, user_extensions_dir, name);
    };
    let catalog = Catalog::new(extensions_dir);
    let mut outcomes = install(
        &catalog,
        &lock_path,
        requirements,
        Some(&[name.to_owned()]),
        Update::Nothing,
    )
    .await?;
    Ok(outcomes.pop())
}

/// Copies the user's install of `name` into `extensions_dir` when that
/// lacks it (see [`ensure_installed`]).
///
/// # Errors
/// A user's install that no longer validates, or cannot be copied.
pub fn adopt_users_install(
    extensions_dir: &Path,
    user_extensions_dir: Option<&Path>,
    name: &str,
) -> anyhow::Result<Option<Outcome>> {
    let project = Catalog::new(extensions_dir);
    let Some(user_dir) = user_extensions_dir.filter(|_| project.get(name).is_err()) else {
        return Ok(None);
    };
    let Ok(users) = Catalog::new(user_dir).get(name) else {
        return Ok(None);
    };
    let installed = project.add(&users.component_path(), false)?;
    Ok(Some(Outcome {
        name: installed.name().to_owned(),
        version: installed.manifest.metadata.version.clone(),
        sha256: installed.manifest.component.sha256.clone(),
        source: user_dir.display().to_string(),
        action: Action::FromUser,
        previous_version: None,
    }))
}
