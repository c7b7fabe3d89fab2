//! `silt datastore verify`: every indexed object present with its size
//! (the extension's check), and, for the whole datastore, the backend's
//! leftovers of interrupted writes.

use serde::Serialize;

use super::Project;
use crate::datastore::now_ms;
use crate::runtime::bindings::silt::datastore::types::Scope;
use crate::store::{LeftoverKind, Sweep};
use crate::text::human_bytes;

/// One problem found.
#[derive(Debug, Serialize)]
pub struct Finding {
    /// The object (or the store's file) it is about.
    pub object: String,
    /// What is wrong, and what to do.
    pub problem: String,
}

/// The problems in `scope` (none: everything checked is as indexed).
///
/// # Errors
/// When the datastore cannot be opened or the check itself fails.
pub fn verify(project: &Project, scope: &Scope) -> anyhow::Result<Vec<Finding>> {
    let whole_datastore = matches!(scope, Scope::All);
    let (findings, leftovers) = project.with_datastore(async |datastore| {
        // A model the index does not hold has nothing to verify: saying
        // "every object is present" of it would be a wrong answer.
        if let Scope::Models(asked) = scope
            && let Some(unknown) = super::unindexed_models(datastore, asked).await?.first()
        {
            anyhow::bail!(
                "the datastore has no model {}: nothing to verify (`silt datastore status` counts what it holds)",
                crate::datastore::model_label(unknown)
            );
        }
        let findings = datastore.verify(scope).await?;
        let leftovers = if whole_datastore {
            datastore
                .store_leftovers(Sweep {
                    older_than: std::time::Duration::ZERO,
                    remove: false,
                })
                .await?
        } else {
            Vec::new()
        };
        anyhow::Ok((findings, leftovers))
    })?;
    let now = now_ms();
    // An upload active within the hour may be a writer's under way: not a
    // problem yet (gc's default floor too).
    let leftovers = leftovers.into_iter().filter(|leftover| {
        leftover.kind != LeftoverKind::IncompleteUpload
            || now.saturating_sub(leftover.modified_ms)
                >= super::gc::DEFAULT_ORPHAN_MIN_AGE_SECS * 1000
    });
    Ok(findings
        .into_iter()
        .map(|f| Finding {
            object: f.object,
            problem: f.problem,
        })
        .chain(leftovers.map(|leftover| {
            let age_s = now.saturating_sub(leftover.modified_ms) / 1000;
            let size = human_bytes(leftover.size);
            Finding {
                problem: match leftover.kind {
                    LeftoverKind::TemporaryFile => format!(
                        "a temporary file of an interrupted write to the store ({size}, last written {age_s} s ago); `silt datastore gc` removes it"
                    ),
                    LeftoverKind::IncompleteUpload => format!(
                        "a multipart upload never completed ({size} in its parts, idle for {age_s} s): a killed command's; `silt datastore gc` aborts it"
                    ),
                },
                object: leftover.path,
            }
        }))
        .collect())
}
