//! `silt datastore gc`: objects no index entry references (orphans, no
//! lease needed) deleted once old enough; for the whole datastore, the
//! backend's leftovers of interrupted writes removed; and, when asked for
//! with `keep`, versions beyond the newest `keep` of each file expired
//! under the models' leases (their objects deleted). Without `keep` no
//! version expires here: every commit keeps the datastore's retention.

use std::time::Duration;

use serde::Serialize;

use super::Project;
use crate::datastore::{DatastoreError, collect_garbage, model_label};
use crate::runtime::bindings::exports::silt::datastore::sync::{
    GcReport as Expired, OrphanOptions,
};
use crate::runtime::bindings::silt::datastore::types::Scope;
use crate::store::Sweep;

/// The default of `--orphan-min-age`, in seconds: an unreferenced object,
/// or an incomplete multipart upload, idle for less may still be another
/// writer's work under way.
pub const DEFAULT_ORPHAN_MIN_AGE_SECS: u64 = 3600;

/// What to collect.
pub struct GcRequest {
    /// The models (or all).
    pub scope: Scope,
    /// Versions of each file to keep (at least 1); `None` expires none.
    pub keep: Option<u32>,
    /// Say what would go; delete nothing.
    pub dry_run: bool,
    /// Orphans and leftovers younger than this are kept: a writer may still
    /// be about to reference them.
    pub orphan_min_age: Duration,
}

/// What a gc did (or, dry, would do).
#[derive(Debug, Serialize)]
pub struct GcReport {
    /// True for a dry run.
    pub dry_run: bool,
    /// The models with versions expired, as `type/id`.
    pub models: Vec<String>,
    /// Versions expired.
    pub entries_expired: u64,
    /// Their objects deleted.
    pub objects_deleted: u64,
    /// Their bytes.
    pub bytes_freed: u64,
    /// Orphans found (0 when the extension cannot collect them).
    pub orphans_found: u64,
    /// Orphans deleted.
    pub orphans_deleted: u64,
    /// Their bytes.
    pub orphan_bytes_deleted: u64,
    /// Orphans kept: too young, or of a model someone holds a lease on.
    pub orphans_kept: u64,
    /// The store's leftovers of interrupted writes removed.
    pub leftovers_removed: u64,
    /// Their bytes.
    pub leftover_bytes_removed: u64,
}

/// Collects garbage (see the module's doc).
///
/// # Errors
/// A lease that cannot be taken, or the extension's or the store's errors
/// (an extension that does not collect orphans is not one).
pub fn gc(project: &Project, request: &GcRequest) -> anyhow::Result<GcReport> {
    let policy = project.lease_policy()?;
    let dry_run = request.dry_run;
    project.with_datastore(async |datastore| {
        let expired = match request.keep {
            Some(keep) => {
                collect_garbage(datastore, request.scope.clone(), keep, &policy, dry_run).await?
            }
            None => Expired {
                models: Vec::new(),
                entries_expired: 0,
                objects_deleted: 0,
                bytes_freed: 0,
            },
        };
        // Unreferenced objects: no lease taken, none needed (see the
        // contract's `collect-orphans`).
        let collected = datastore
            .collect_orphans(&OrphanOptions {
                scope: request.scope.clone(),
                min_age_ms: request.orphan_min_age.as_millis() as u64,
                dry_run,
            })
            .await;
        let orphans = match collected {
            Ok(report) => Some(report),
            Err(err)
                if matches!(
                    err.downcast_ref::<DatastoreError>(),
                    Some(DatastoreError::NotSupported { .. })
                ) =>
            {
                None
            }
            Err(err) => return Err(err),
        };
        // The backend's own leftovers (a directory store's temporaries of
        // killed writes) belong to no model: collected by a whole-datastore
        // gc. The same age floor as orphans: on a shared directory whose
        // locks may not reach every host, a writer elsewhere is left alone.
        let leftovers = if matches!(request.scope, Scope::All) {
            datastore
                .store_leftovers(Sweep {
                    older_than: request.orphan_min_age,
                    remove: !dry_run,
                })
                .await?
        } else {
            Vec::new()
        };
        let (found, deleted, bytes_deleted, kept) = orphans.map_or((0, 0, 0, 0), |o| {
            (o.found, o.deleted, o.bytes_deleted, o.kept)
        });
        anyhow::Ok(GcReport {
            dry_run,
            models: expired.models.iter().map(model_label).collect(),
            entries_expired: expired.entries_expired,
            objects_deleted: expired.objects_deleted,
            bytes_freed: expired.bytes_freed,
            orphans_found: found,
            orphans_deleted: deleted,
            orphan_bytes_deleted: bytes_deleted,
            orphans_kept: kept,
            leftovers_removed: leftovers.len() as u64,
            leftover_bytes_removed: leftovers.iter().map(|leftover| leftover.size).sum(),
        })
    })
}
