//! `silt datastore status`: what the index holds, what is present locally,
//! what changed in the store since the last pull and here since the last
//! push.

use serde::Serialize;

use super::Project;
use crate::runtime::bindings::silt::datastore::types::Scope;

/// The datastore as this clone sees it.
#[derive(Debug, Serialize)]
pub struct StatusReport {
    /// Files in the index (latest versions).
    pub objects_total: u64,
    /// Their bytes.
    pub bytes_total: u64,
    /// Files present in the working copy.
    pub objects_local: u64,
    /// Their bytes.
    pub bytes_local: u64,
    /// Working-copy paths changed here since the last push.
    pub local_changes: Vec<String>,
    /// Models changed in the store since the last pull.
    pub remote_changes: Vec<String>,
}

/// The status of the models in `scope`.
///
/// # Errors
/// When the datastore cannot be opened or the extension fails.
pub fn status(project: &Project, scope: &Scope) -> anyhow::Result<StatusReport> {
    let status = project.with_datastore(async |datastore| {
        let status = datastore.status(scope).await?;
        // A model neither the index nor the working copy holds: counting
        // nothing of it would answer a typo with "all is well".
        if let Scope::Models(asked) = scope {
            let unindexed = super::unindexed_models(datastore, asked).await?;
            if let Some(unknown) = unindexed
                .iter()
                .find(|model| !status.local_models.iter().any(|local| super::same_model(local, model)))
            {
                anyhow::bail!(
                    "the datastore has no model {}, and this working copy holds none of its files (`silt datastore status` without --model counts what it holds)",
                    crate::datastore::model_label(unknown)
                );
            }
        }
        anyhow::Ok(status)
    })?;
    Ok(StatusReport {
        objects_total: status.objects_total,
        bytes_total: status.bytes_total,
        objects_local: status.objects_local,
        bytes_local: status.bytes_local,
        local_changes: status.local_changes,
        remote_changes: status.remote_changes,
    })
}
