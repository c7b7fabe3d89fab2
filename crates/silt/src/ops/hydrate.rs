//! `silt datastore hydrate`: models' latest files fetched now (or only
//! counted), in this process or by the background hydrator — a detached,
//! low-priority process with its own transfer limit — and that hydrator
//! started after a command in a lazy clone that asks for it.

use std::time::Instant;

use serde::Serialize;

use super::Project;
use crate::config::{Background, Hydration};
use crate::datastore::{
    BackgroundHydration, BackgroundState, BackgroundStatus, Datastore, Fetched, HydrationProgress,
    LAZY_HYDRATION, Runtimes, hydrate_models, lower_priority,
};
use crate::locations::Locations;
use crate::runtime::bindings::silt::datastore::types::Scope;

/// What a hydration (or `--status`) found and did.
#[derive(Debug, Serialize)]
pub struct HydrateReport {
    /// True when only counted (`--status`): nothing was fetched.
    pub status_only: bool,
    /// Models looked at.
    pub models: usize,
    /// Files fetched.
    pub fetched: Fetched,
    /// Files already present.
    pub already_present: u64,
    /// Files still missing.
    pub missing: u64,
    /// How long it took.
    pub seconds: f64,
    /// Requests to the store.
    pub requests: u64,
    /// With `--status`: the background hydrator.
    pub background: Option<BackgroundStatus>,
}

/// Hydrates the models of `scope` here, or with `status_only` counts what
/// is present and missing (and reads the background hydrator's state);
/// `on_progress` hears each step.
///
/// # Errors
/// An extension without lazy hydration (its pull fetches everything), or
/// the extension's and the store's errors.
pub fn hydrate(
    project: &Project,
    scope: &Scope,
    status_only: bool,
    on_progress: &mut dyn FnMut(&HydrationProgress),
) -> anyhow::Result<HydrateReport> {
    let started = Instant::now();
    let mut report = project.with_datastore(async |datastore| {
        refuse_without_lazy_hydration(datastore)?;
        let progress = hydrate_models(datastore, scope, status_only, on_progress).await?;
        anyhow::Ok(HydrateReport {
            status_only,
            models: progress.models_total,
            fetched: progress.fetched,
            already_present: progress.already_present,
            missing: progress.missing,
            seconds: started.elapsed().as_secs_f64(),
            requests: datastore.traffic().requests(),
            background: None,
        })
    })?;
    if status_only {
        report.background = Some(background(project.locations).status()?);
    }
    Ok(report)
}

fn refuse_without_lazy_hydration(datastore: &Datastore) -> anyhow::Result<()> {
    if datastore.supports(LAZY_HYDRATION) {
        return Ok(());
    }
    anyhow::bail!(
        "the `{}` extension does not hydrate by model (no `{LAZY_HYDRATION}` capability): its pull fetches everything; use `silt datastore sync --pull`",
        datastore.extension_name()
    )
}

/// The background hydrator of this working copy.
pub fn background(locations: &Locations) -> BackgroundHydration {
    BackgroundHydration::new(&locations.local_dir)
}

/// The background hydrator started.
#[derive(Debug, Serialize)]
pub struct BackgroundStarted {
    /// Its process (`None`: one already runs here).
    pub pid: Option<u32>,
    /// Its log.
    pub log: String,
}

/// Starts the background hydrator, unless one runs here.
///
/// # Errors
/// When it cannot be started.
pub fn start_background(locations: &Locations) -> anyhow::Result<BackgroundStarted> {
    let background = background(locations);
    let pid = background.spawn(locations)?;
    Ok(BackgroundStarted {
        pid,
        log: background.log_path().display().to_string(),
    })
}

/// Is the background hydrator: low priority, its own transfer limit.
/// `None` when there is nothing for it to do (another runs here, or the
/// extension's pulls fetch everything already).
///
/// # Errors
/// The extension's and the store's errors.
pub fn run_background(
    locations: &Locations,
    runtimes: &std::sync::Arc<Runtimes>,
) -> anyhow::Result<Option<BackgroundState>> {
    // Before the async runtime starts its threads, so they inherit it.
    lower_priority();
    let mut locations = locations.clone();
    locations.config.datastore.transfer_concurrency =
        locations.config.datastore.background_concurrency;
    let background = background(&locations);
    let marker = super::session::mark_transfers(&locations.local_dir);
    let state = super::session::block_on(async {
        let datastore = Datastore::open(&locations, runtimes, None).await?;
        if !datastore.supports(LAZY_HYDRATION) {
            tracing::info!(
                "the `{}` extension does not hydrate by model; no background hydration",
                datastore.extension_name()
            );
            return Ok(None);
        }
        background.run(&datastore).await
    });
    super::session::release_transfers(marker);
    state?
}

/// After a command that used the datastore: in a lazy clone configured with
/// `background = "after-command"`, starts the background hydrator (unless
/// one runs). Never fails the command: a hydrator that cannot start is a
/// warning in the log.
pub fn after_command(locations: &Locations, hydration: Hydration) {
    if locations.config.datastore.background != Background::AfterCommand
        || hydration != Hydration::Lazy
    {
        return;
    }
    match background(locations).spawn(locations) {
        Ok(Some(pid)) => tracing::info!("background hydration started (pid {pid})"),
        Ok(None) => {}
        Err(err) => tracing::warn!("could not start background hydration: {err:#}"),
    }
}
