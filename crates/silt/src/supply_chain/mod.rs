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
/// fresh clone, locking it the first time). Returns what was done, or
/// `None` when the project does not require `name`.
///
/// # Errors
/// As [`install()`].
pub async fn ensure_installed(
    config_file: Option<&Path>,
    extensions_dir: &Path,
    requirements: &BTreeMap<String, Requirement>,
    name: &str,
) -> anyhow::Result<Option<Outcome>> {
    let Some(lock_path) = lock_path(config_file).filter(|_| requirements.contains_key(name)) else {
        return Ok(None);
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
