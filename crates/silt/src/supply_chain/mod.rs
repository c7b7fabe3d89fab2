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

use std::path::PathBuf;

pub use install::{Action, LockMismatch, Outcome, Update, install};
pub use lockfile::{LOCK_FILE_NAME, Lockfile};
pub use requirement::{Requirement, Source};

use crate::locations::Locations;
use crate::runtime::Catalog;

/// `silt.lock` beside the project's `silt.toml`, if there is a project.
#[must_use]
pub fn lock_path(locations: &Locations) -> Option<PathBuf> {
    let config = locations.config_file.as_deref()?;
    Some(config.with_file_name(LOCK_FILE_NAME))
}

/// Before a command uses extension `name`: when `silt.toml` requires it,
/// makes the installed one exactly what `silt.lock` pins (installing it on
/// a fresh clone, locking it the first time). Returns what was done, or
/// `None` when the project does not require `name`.
///
/// # Errors
/// As [`install()`].
pub async fn ensure_installed(
    locations: &Locations,
    name: &str,
) -> anyhow::Result<Option<Outcome>> {
    let requirements = &locations.config.extensions.require;
    let Some(lock_path) = lock_path(locations).filter(|_| requirements.contains_key(name)) else {
        return Ok(None);
    };
    let catalog = Catalog::new(&locations.extensions_dir);
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
