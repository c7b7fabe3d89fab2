//! Garbage collection: expire old versions, locking only the models that
//! have some. A dry run (no leases) names them; their leases are taken
//! in steps of at most [`LEASES_PER_STEP`] (sorted, as every command takes
//! them); the extension commits each step's expiry and deletes the objects.

use std::sync::Arc;

use crate::runtime::bindings::exports::silt::datastore::sync::{GcOptions, GcReport};
use crate::runtime::bindings::silt::datastore::types::{LockScope, ModelRef, Scope};

use super::{Claim, Datastore, LeasePolicy, under_leases};

/// Leases one gc step holds at most: a datastore of thousands of models is
/// collected in steps, so that no command holds (or renews) an unbounded
/// number of leases, and each model is locked only for its own step.
pub const LEASES_PER_STEP: usize = 64;

/// Expires every version beyond the newest `keep_versions` of each file in
/// `scope`. With `dry_run`, only reports what would go (and takes no lease).
pub async fn collect_garbage(
    datastore: &Arc<Datastore>,
    scope: Scope,
    keep_versions: u32,
    policy: &LeasePolicy,
    dry_run: bool,
) -> anyhow::Result<GcReport> {
    let plan = datastore
        .gc(&GcOptions {
            scope,
            keep_versions,
            leases: Vec::new(),
            dry_run: true,
        })
        .await?;
    if dry_run || plan.models.is_empty() {
        return Ok(plan);
    }
    let mut total = GcReport {
        models: Vec::new(),
        entries_expired: 0,
        objects_deleted: 0,
        bytes_freed: 0,
    };
    let steps = plan.models.len().div_ceil(LEASES_PER_STEP);
    for (n, step) in plan.models.chunks(LEASES_PER_STEP).enumerate() {
        let done = match collect_step(datastore, step, keep_versions, policy).await {
            Ok(done) => done,
            // What the steps before it did stays done: say so.
            Err(err) if n > 0 => {
                return Err(err.context(format!(
                    "gc step {} of {steps} (the steps before it expired {} versions in {} models; a gc again goes on)",
                    n + 1,
                    total.entries_expired,
                    total.models.len()
                )));
            }
            Err(err) => return Err(err),
        };
        total.models.extend(done.models);
        total.entries_expired = total.entries_expired.saturating_add(done.entries_expired);
        total.objects_deleted = total.objects_deleted.saturating_add(done.objects_deleted);
        total.bytes_freed = total.bytes_freed.saturating_add(done.bytes_freed);
    }
    Ok(total)
}

/// One step: the leases of `models` (sorted, as every command takes them),
/// then the expiry of those models alone.
async fn collect_step(
    datastore: &Arc<Datastore>,
    models: &[ModelRef],
    keep_versions: u32,
    policy: &LeasePolicy,
) -> anyhow::Result<GcReport> {
    let scopes = models.iter().cloned().map(LockScope::Model).collect();
    under_leases(datastore, scopes, policy, async |leases| {
        // The expiry rewrites these models' sidecars: leases first, then
        // the working copy (the order every command keeps).
        let _working_copy = datastore
            .working_copy_locks()
            .foreground(Claim::Models(models))
            .await?;
        leases.check("gc")?;
        datastore
            .gc(&GcOptions {
                scope: Scope::Models(models.to_vec()),
                keep_versions,
                leases: leases.leases(),
                dry_run: false,
            })
            .await
    })
    .await
}
