//! `silt datastore setup` and `doctor`: the store's checks (and the
//! recorded decision to use a store that fails them), then the datastore
//! created or found, and in a full clone everything fetched.

use serde::Serialize;

use super::Project;
use crate::beneath::Beneath;
use crate::config::Hydration;
use crate::datastore::{
    Fetched, HydrationProgress, host_state_dir, hydrate_everything, now_ms, trust,
};
use crate::exit::UntrustworthyStore;
use crate::runtime::bindings::exports::silt::datastore::sync::SetupOptions;
use crate::store::{doctor, root};

/// What `setup` did.
#[derive(Debug, Serialize)]
pub struct SetupReport {
    /// The store, as the doctor names it.
    pub store: String,
    /// True when this setup created the datastore (else it found one).
    pub created: bool,
    /// The datastore's layout version.
    pub layout_version: u32,
    /// The extension's own words on what it set up.
    pub detail: String,
    /// The local copy's directory.
    pub local_dir: String,
    /// How this clone hydrates.
    pub hydration: Hydration,
    /// Data files fetched (none when lazy).
    pub fetched: Fetched,
    /// Every request of the setup, metadata included.
    pub requests: u64,
    /// The bytes those requests read.
    pub bytes_read: u64,
}

/// How to set up.
pub struct SetupRequest {
    /// Versions of each file to keep (`None`: silt.toml's, else the
    /// extension's default).
    pub retain_versions: Option<u32>,
    /// Use a store that fails the doctor's checks (the decision is
    /// recorded in the store for every clone to see).
    pub allow_unsafe_store: bool,
    /// How this clone hydrates.
    pub hydration: Hydration,
}

/// Runs the doctor's checks; an untrustworthy store is an error unless
/// allowed (here or in silt.toml), and then the decision is recorded in the
/// store for every clone to see ([`trust`]) and said as a warning; a store
/// that passes loses any such record.
///
/// # Errors
/// [`UntrustworthyStore`] for a store that fails and is not allowed; a
/// store that cannot be reached or the decision not recorded.
pub fn check_store(project: &Project, allow: bool) -> anyhow::Result<doctor::DoctorReport> {
    let locations = project.locations;
    let config = &locations.config.datastore;
    let allow = allow || config.allow_unsafe_store;
    let store = root::open(&config.root(&locations.store_dir))?;
    let report = super::session::block_on(doctor::diagnose(store.clone()))??;
    let failed = report.failed_checks().join(", ");
    if !report.trustworthy && !allow {
        return Err(UntrustworthyStore {
            store: report.store,
            failed,
        }
        .into());
    }
    let host_state = Beneath::create(&host_state_dir(&locations.local_dir))?;
    super::session::block_on(async {
        if report.trustworthy {
            trust::clear(&store, &host_state).await
        } else {
            let decision = trust::UnsafeStore {
                failed,
                allowed_by: crate::datastore::current_holder().name,
                allowed_at_ms: now_ms(),
            };
            project.events.warning(&decision.warning());
            trust::record(&store, &host_state, &decision).await
        }
    })?
    .map_err(|err| anyhow::anyhow!("cannot record the store's check in the store: {err}"))?;
    Ok(report)
}

/// Sets the datastore up (see the module's doc); `on_progress` hears a full
/// clone's hydration.
///
/// # Errors
/// As [`check_store`]; the extension's setup, or a hydration that fails.
pub fn setup(
    project: &Project,
    request: &SetupRequest,
    on_progress: &mut dyn FnMut(&HydrationProgress),
) -> anyhow::Result<SetupReport> {
    let checked = check_store(project, request.allow_unsafe_store)?;
    let locations = project.locations;
    let retain_versions = request
        .retain_versions
        .or(locations.config.datastore.retain_versions);
    let hydration = request.hydration;
    let (report, fetched, traffic) = project.with_datastore(async |datastore| {
        let report = datastore
            .setup(SetupOptions {
                create: true,
                retain_versions,
            })
            .await?;
        datastore.record_identity().await?;
        let fetched = match hydration {
            Hydration::Lazy => Fetched::default(),
            Hydration::Full => hydrate_everything(datastore, on_progress).await?,
        };
        anyhow::Ok((report, fetched, datastore.traffic()))
    })?;
    Ok(SetupReport {
        store: checked.store,
        created: report.created,
        layout_version: report.layout_version,
        detail: report.detail,
        local_dir: locations.local_dir.display().to_string(),
        hydration,
        fetched,
        requests: traffic.requests(),
        bytes_read: traffic.get_bytes,
    })
}
