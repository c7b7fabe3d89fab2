//! Garbage collection: expire old versions, locking only the models that
//! have some. A dry run (no leases) names them; their leases are taken
//! (sorted, as every command takes them); the extension commits the
//! expiry and deletes the objects.

use std::sync::Arc;

use crate::runtime::bindings::exports::silt::datastore::sync::{GcOptions, GcReport};
use crate::runtime::bindings::silt::datastore::types::{LockScope, Scope};

use super::{Claim, Datastore, LeasePolicy, under_leases};

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
    let scopes = plan.models.iter().cloned().map(LockScope::Model).collect();
    under_leases(datastore, scopes, policy, async |leases| {
        // The expiry rewrites these models' sidecars: leases first, then
        // the working copy (the order every command keeps).
        let _working_copy = datastore
            .working_copy_locks()
            .foreground(Claim::Models(&plan.models))
            .await?;
        leases.check("gc")?;
        datastore
            .gc(&GcOptions {
                scope: Scope::Models(plan.models.clone()),
                keep_versions,
                leases: leases.leases(),
                dry_run: false,
            })
            .await
    })
    .await
}
