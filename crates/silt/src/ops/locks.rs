//! `silt datastore lock status|release`: who holds which lease, and a
//! lease broken by hand (a holder known to be dead).

use super::Project;
use crate::runtime::bindings::silt::datastore::types::{LockInfo, LockScope};

/// The leases held: on `scope`, or every one when `None`.
///
/// # Errors
/// When the datastore cannot be opened or the extension fails.
pub fn status(project: &Project, scope: Option<&LockScope>) -> anyhow::Result<Vec<LockInfo>> {
    project.with_datastore(async |datastore| match scope {
        Some(scope) => Ok(datastore.inspect(scope).await?.into_iter().collect()),
        None => datastore.list_locks().await,
    })
}

/// Renewals a forced release races before it gives up: one every TTL/3,
/// and a release takes two requests.
const RENEWALS_RACED: usize = 3;

/// True when `a` and `b` describe one holder's lease (renewals apart): a
/// new holder gets a new fencing generation.
fn same_lease(a: &LockInfo, b: &LockInfo) -> bool {
    a.generation == b.generation && a.acquired_at == b.acquired_at
}

/// Releases the lease on `scope` whoever holds it; answers the lease
/// released (`None`: there was none).
///
/// The release is conditional on the version just inspected: a new holder
/// in between makes it fail rather than break a lease it was not aimed at.
/// A renewal by the same holder (every TTL/3) only moves the version: the
/// lease inspected again is the same one, released then.
///
/// # Errors
/// When the lease changed hands meanwhile, or the extension fails.
pub fn release(project: &Project, scope: &LockScope) -> anyhow::Result<Option<LockInfo>> {
    project.with_datastore(async |datastore| {
        let Some(mut info) = datastore.inspect(scope).await? else {
            return anyhow::Ok(None);
        };
        for _ in 0..RENEWALS_RACED {
            let Err(err) = datastore.force_release(&info).await else {
                return Ok(Some(info));
            };
            match datastore.inspect(scope).await? {
                Some(now) if same_lease(&now, &info) && now.version != info.version => info = now,
                _ => return Err(err),
            }
        }
        datastore.force_release(&info).await?;
        Ok(Some(info))
    })
}
