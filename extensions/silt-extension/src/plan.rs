//! What bringing one model's working copy up to date would do, and the
//! rule a sidecar keeps when it is not done: below both hydration and the
//! setting aside of local edits, which each plan and save.

use crate::local::Sidecar;
use crate::partition::Entry;

/// What bringing one model's working copy up to date would do.
///
/// ```no_run,standalone_crate
/// use silt_extension::hydrate::Plan;
///
/// fn report(plan: &Plan) -> String {
///     let bytes: u64 = plan.downloads.iter().map(|(_, entry)| entry.size).sum();
///     format!(
///         "{} to fetch ({bytes} bytes), {} to remove, {} present; local edits kept: {:?}",
///         plan.downloads.len(),
///         plan.removals.len(),
///         plan.present,
///         plan.conflicts,
///     )
/// }
/// ```
#[derive(Default)]
pub struct Plan {
    /// Files to download: name and the version to fetch.
    pub downloads: Vec<(String, Entry)>,
    /// Files removed in the store and unchanged locally: delete them.
    pub removals: Vec<String>,
    /// Files edited locally that the store has moved on from: left alone.
    pub conflicts: Vec<String>,
    /// Files already present at their latest version.
    pub present: u64,
}

/// Keeps a slice read into `sidecar` without bringing the files present
/// locally to it: the store version goes back to `prior` unless nothing of
/// the model is present. The one rule for every partial path (a trimmed or
/// failed hydration, `hydrate-file`, gc, dry runs, status): a sidecar never
/// claims a version its present files were not refreshed to — pull trusts
/// that claim to skip the model.
///
/// ```no_run,standalone_crate
/// use silt_extension::change::Committed;
/// use silt_extension::hydrate;
/// use silt_extension::layout::DATA_AREA;
/// use silt_extension::{local, summary};
/// use silt_extension::silt::datastore::types::{Error, ModelRef};
///
/// /// After a gc commit: keep the new slice, but the files here are not at it.
/// fn keep_gc(model: &ModelRef, committed: Committed) -> Result<(), Error> {
///     let mut update = summary::Update::begin(DATA_AREA);
///     let mut sidecar = local::load(DATA_AREA, model);
///     sidecar.partition = Some(committed.partition);
///     let prior = sidecar.store_version.replace(committed.version);
///     hydrate::keep_slice_only(&mut sidecar, prior);
///     update.save(model, &sidecar)?;
///     update.finish()
/// }
/// ```
pub fn keep_slice_only(sidecar: &mut Sidecar, prior: Option<String>) {
    if !sidecar.local.is_empty() {
        sidecar.store_version = prior;
    }
}
