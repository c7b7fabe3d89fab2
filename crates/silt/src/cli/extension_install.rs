//! `silt extension install` and `silt extension update`: the installed
//! extensions as `silt.toml` requires and `silt.lock` pins them.

use std::path::PathBuf;

use serde::Serialize;

use super::Context;
use crate::runtime::Catalog;
use crate::supply_chain::{self, Outcome, Update};

#[derive(Serialize)]
struct InstallReport {
    /// The lockfile read and written.
    lock: PathBuf,
    extensions: Vec<Outcome>,
}

/// Installs what the lock pins, locking what it does not cover; `update`
/// names what to resolve again.
pub(super) fn run(context: &Context, update: Update<'_>) -> anyhow::Result<()> {
    let locations = &context.locations;
    let Some(lock) = supply_chain::lock_path(locations.config_file.as_deref()) else {
        anyhow::bail!(
            "there is no silt.toml here or above: the extensions a project needs are listed in its [extensions.require] (create one with `silt init`)"
        );
    };
    let requirements = &locations.config.extensions.require;
    let catalog = Catalog::new(&locations.extensions_dir);
    let extensions = super::block_on(supply_chain::install(
        &catalog,
        &lock,
        requirements,
        None,
        update,
    ))??;
    let report = InstallReport { lock, extensions };
    context.output.emit(&report, |out| {
        if report.extensions.is_empty() {
            writeln!(
                out,
                "silt.toml requires no extensions ([extensions.require] is empty)"
            )?;
        }
        for outcome in &report.extensions {
            writeln!(out, "{outcome}")?;
        }
        Ok(())
    })
}
