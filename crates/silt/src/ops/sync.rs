//! `silt datastore sync`: a pull (what changed in the store, into the
//! working copy, the working copy claimed against the background hydrator)
//! and a push (local changes committed under the models' leases, refused
//! while a killed `silt run` left uncommitted work unless told `--ours`).

use std::sync::Arc;

use serde::Serialize;

use super::Project;
use crate::datastore::run_marker;
use crate::datastore::{
    Claim, Datastore, LeasePolicy, push_under_leases, remove_leftover_downloads,
};
use crate::exit::KilledRunLeftovers;
use crate::runtime::bindings::exports::silt::datastore::sync::{
    SyncOptions, SyncReport as WitSyncReport,
};
use crate::runtime::bindings::silt::datastore::types::{LocalEdits, Scope};

/// What to sync.
pub struct SyncRequest {
    /// The models (or all).
    pub scope: Scope,
    /// Pull what changed in the store.
    pub pull: bool,
    /// Push what changed here.
    pub push: bool,
    /// Say what would happen; change nothing.
    pub dry_run: bool,
    /// What to do with local edits the store moved past.
    pub edits: LocalEdits,
    /// A full clone's pull also fetches what is not present yet.
    pub fetch_missing: bool,
}

/// What a sync did, by direction.
#[derive(Debug, Serialize, Default)]
pub struct SyncReport {
    /// The pull, if asked for.
    pub pulled: Option<Direction>,
    /// The push, if asked for.
    pub pushed: Option<Direction>,
}

/// One direction of a sync.
#[derive(Debug, Serialize)]
pub struct Direction {
    /// The extension's one-line summary.
    pub summary: String,
    /// Working-copy paths changed (pull) or committed (push).
    pub changed: Vec<String>,
    /// Local edits moved aside: where they are now.
    pub set_aside: Vec<String>,
    /// Objects downloaded.
    pub objects_downloaded: u64,
    /// Bytes downloaded.
    pub bytes_downloaded: u64,
    /// Objects uploaded.
    pub objects_uploaded: u64,
    /// Bytes uploaded.
    pub bytes_uploaded: u64,
    /// Index partitions read.
    pub partitions_read: u64,
    /// Index partitions written.
    pub partitions_written: u64,
    /// Requests to the object store in this direction (leases included).
    pub requests: u64,
}

impl From<WitSyncReport> for Direction {
    fn from(report: WitSyncReport) -> Self {
        Self {
            summary: report.summary,
            changed: report.changed,
            set_aside: report.set_aside,
            objects_downloaded: report.stats.objects_downloaded,
            bytes_downloaded: report.stats.bytes_downloaded,
            objects_uploaded: report.stats.objects_uploaded,
            bytes_uploaded: report.stats.bytes_uploaded,
            partitions_read: report.stats.partitions_read,
            partitions_written: report.stats.partitions_written,
            requests: 0,
        }
    }
}

/// Pulls, then pushes, as asked (see the module's doc).
///
/// # Errors
/// The extension's errors (a conflict among them), a lease that cannot be
/// taken, or [`KilledRunLeftovers`].
pub fn sync(project: &Project, request: &SyncRequest) -> anyhow::Result<SyncReport> {
    let policy = project.lease_policy()?;
    project.with_datastore(async |datastore| {
        let mut report = SyncReport::default();
        if request.pull {
            report.pulled = Some(pull(datastore, request).await?);
        }
        if request.push {
            let before = datastore.traffic().requests();
            let scope = request.scope.clone();
            let mut pushed: Direction =
                push_changes(datastore, scope, &policy, request.dry_run, request.edits)
                    .await?
                    .into();
            pushed.requests = datastore.traffic().requests() - before;
            report.pushed = Some(pushed);
        }
        anyhow::Ok(report)
    })
}

async fn pull(datastore: &Arc<Datastore>, request: &SyncRequest) -> anyhow::Result<Direction> {
    // A pull writes files and sidecars anywhere in its scope: keep the
    // hydrator (and this clone's other commands) out of it.
    let claim = match &request.scope {
        Scope::All => Claim::Everything,
        Scope::Models(models) => Claim::Models(models),
    };
    let _working_copy = datastore.working_copy_locks().foreground(claim).await?;
    if !request.dry_run {
        remove_leftover_downloads(datastore, &request.scope);
    }
    let options = SyncOptions {
        scope: request.scope.clone(),
        leases: Vec::new(),
        dry_run: request.dry_run,
        fetch_missing: request.fetch_missing,
        // `ours` is the push's business: a pull keeps the edits.
        local_edits: request.edits,
    };
    let before = datastore.traffic().requests();
    let mut pulled: Direction = datastore.pull(&options).await?.into();
    pulled.requests = datastore.traffic().requests() - before;
    pulled.set_aside = datastore
        .set_aside_locations(&pulled.set_aside)
        .iter()
        .map(|path| path.display().to_string())
        .collect();
    Ok(pulled)
}

/// Pushes local changes: finds the models that have some, takes their leases
/// (sorted), commits, releases. Models a killed `silt run` left changes in
/// are refused ([`KilledRunLeftovers`]) unless `edits` is `ours`: what such
/// a run wrote may be half done.
async fn push_changes(
    datastore: &Arc<Datastore>,
    scope: Scope,
    policy: &LeasePolicy,
    dry_run: bool,
    edits: LocalEdits,
) -> anyhow::Result<WitSyncReport> {
    let status = datastore.status(&scope).await?;
    let changed_models = status.local_models;
    let host_state = datastore.host_state()?;
    let killed = run_marker::killed_runs(&host_state, &changed_models);
    if !killed.is_empty() && edits != LocalEdits::Ours {
        return Err(KilledRunLeftovers {
            models: killed.iter().map(|run| run.model.clone()).collect(),
            runs: killed
                .iter()
                .map(|run| format!("pid {}", run.pid))
                .collect::<Vec<_>>()
                .join(", "),
        }
        .into());
    }
    if dry_run || changed_models.is_empty() {
        return datastore
            .push(&SyncOptions {
                scope: Scope::Models(changed_models),
                leases: Vec::new(),
                dry_run,
                fetch_missing: false,
                local_edits: edits,
            })
            .await;
    }
    let pushed = push_under_leases(datastore, changed_models, policy, edits).await?;
    // Committed as they were, on the user's word.
    run_marker::clear(&host_state, &killed);
    Ok(pushed)
}
