//! Hydration policy: how much of the datastore a clone keeps present, and
//! making models present before a command uses them.
//!
//! - `full` (the default, today's behaviour): setup and every pull also
//!   fetch every model's latest files;
//! - `lazy`: setup and pull fetch index metadata only; a command makes
//!   present exactly the models it works on (`hydrate-scope`), and
//!   `silt datastore hydrate` fetches the rest when asked.
//!
//! An extension without the `lazy-hydration` capability always gets a full
//! pull; so does a command whose `hydrate-scope` failed (and it says so).

use std::cell::{Cell, RefCell};
use std::collections::HashSet;
use std::path::PathBuf;

use serde::Serialize;

use super::leftovers::remove_stale_downloads;
use super::model_ref::model_label;
use super::transfer_marker::LeftoverWalk;
use super::working_copy_lock::{Claim, WorkingCopyGuard};
use super::{Datastore, DatastoreError};
use crate::runtime::bindings::exports::silt::datastore::hydration::{
    HydrateOptions, HydrateReport,
};
use crate::runtime::bindings::exports::silt::datastore::sync::{SyncOptions, SyncReport};
use crate::runtime::bindings::silt::datastore::types::{
    LocalEdits, ModelRef, Scope, TransferStats,
};

/// The capability that says `hydrate-scope` fetches only what it is asked.
pub const LAZY_HYDRATION: &str = "lazy-hydration";

/// Models per `hydrate-scope` call when hydrating many: enough to keep the
/// transfer slots busy, few enough that progress moves and an interrupted
/// run loses little (each call's downloads land whole, and a rerun skips
/// what is present).
const MODELS_PER_CALL: usize = 64;

/// Hydration calls in flight at once: while one call's extension works
/// alone (reading its models' index partitions, planning, saving their
/// sidecars), the other's downloads keep the store busy. Each call's bulk
/// transfers have their own `transfer_concurrency` slots, so up to twice
/// that many downloads are in flight (measured so: see docs/performance.md).
const CALLS_IN_FLIGHT: usize = 2;

/// Files and bytes fetched.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Fetched {
    /// Objects downloaded.
    pub objects: u64,
    /// Bytes downloaded.
    pub bytes: u64,
}

impl From<&TransferStats> for Fetched {
    fn from(stats: &TransferStats) -> Self {
        Self {
            objects: stats.objects_downloaded,
            bytes: stats.bytes_downloaded,
        }
    }
}

/// Progress of hydrating many models, reported after each call.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct HydrationProgress {
    /// Models done so far.
    pub models_done: usize,
    /// Models to do.
    pub models_total: usize,
    /// Fetched so far.
    pub fetched: Fetched,
    /// Files that were already present.
    pub already_present: u64,
    /// Files still missing (only in a dry run, where nothing is fetched).
    pub missing: u64,
}

/// What making models present did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Presence {
    /// What was fetched.
    pub fetched: Fetched,
    /// Set when the scoped path was not taken: why, so the user sees that a
    /// full pull happened instead.
    pub full_pull_because: Option<String>,
    /// Local edits set aside (see [`make_present`]'s `edits`), relative to
    /// the local copy.
    pub set_aside: Vec<String>,
}

/// Makes the latest files of `models` present in the working copy before a
/// command uses them: `hydrate-scope` when the extension fetches lazily;
/// otherwise, or when that fails, a full pull (and `full_pull_because` says
/// why). `edits` says what becomes of the models' local edits first
/// (`set-aside`: `silt run` starts from the latest committed state).
/// Returns the working-copy locks on `models`: hold them while the
/// command works, so the background hydrator stays out of those models.
/// The caller must hold no working-copy lock.
///
/// # Errors
/// When the full pull fails too.
pub async fn make_present(
    datastore: &Datastore,
    models: &[ModelRef],
    edits: LocalEdits,
) -> anyhow::Result<(Presence, WorkingCopyGuard)> {
    let locks = datastore.working_copy_locks();
    let reason = if datastore.supports(LAZY_HYDRATION) {
        let held = locks.foreground(Claim::Models(models)).await?;
        // Downloads a killed command left in these models.
        remove_leftovers(datastore, models);
        let options = HydrateOptions {
            local_edits: edits,
            ..latest_only(false)
        };
        match datastore.hydrate_scope(models, options).await {
            Ok(report) => {
                let presence = Presence {
                    fetched: Fetched::from(&report.stats),
                    full_pull_because: None,
                    set_aside: report.set_aside,
                };
                return Ok((presence, held));
            }
            Err(err) => format!(
                "hydrating {} failed ({err:#}); fell back to a full pull",
                models
                    .iter()
                    .map(model_label)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    } else {
        format!(
            "the `{}` extension does not fetch lazily (no `{LAZY_HYDRATION}` capability); did a full pull",
            datastore.extension_name()
        )
    };
    tracing::debug!("{reason}");
    // A full pull writes into any model: it needs the whole working copy
    // (the models' locks, if taken above, are gone: a lock cannot be
    // upgraded in place); then the models' locks for the command.
    let (pulled, set_aside) = {
        let _everything = locks.foreground(Claim::Everything).await?;
        // The models' edits first, in their scope only: the rest of the
        // working copy keeps its edits.
        let set_aside = if edits == LocalEdits::Keep {
            Vec::new()
        } else {
            datastore
                .pull(&SyncOptions {
                    scope: Scope::Models(models.to_vec()),
                    leases: Vec::new(),
                    dry_run: false,
                    fetch_missing: true,
                    local_edits: edits,
                })
                .await?
                .set_aside
        };
        (full_pull(datastore, &Scope::All).await?, set_aside)
    };
    let held = locks.foreground(Claim::Models(models)).await?;
    let presence = Presence {
        fetched: Fetched::from(&pulled.stats),
        full_pull_because: Some(reason),
        set_aside,
    };
    Ok((presence, held))
}

/// A full pull of `scope`: refreshes what is present and fetches the latest
/// files of its models that are not present yet — one `pull-changed` with
/// `fetch-missing`, which skips, without a request, every model the local
/// summary shows current and complete (so a full clone's no-op sync costs
/// what a lazy one's does).
///
/// Takes no working-copy lock: the caller holds [`Claim::Everything`] (or
/// the scope's models).
///
/// # Errors
/// When the pull fails; what landed stays (a rerun resumes).
pub async fn full_pull(datastore: &Datastore, scope: &Scope) -> anyhow::Result<SyncReport> {
    datastore
        .pull(&SyncOptions {
            scope: scope.clone(),
            leases: Vec::new(),
            dry_run: false,
            fetch_missing: true,
            local_edits: LocalEdits::Keep,
        })
        .await
}

/// A first full hydration (setup of a `full` clone): every model's latest
/// files, `MODELS_PER_CALL` models at a time so progress moves; an
/// extension without `lazy-hydration` gets its (full) pull instead.
///
/// # Errors
/// When listing or a fetch fails; what landed stays (a rerun resumes).
pub async fn hydrate_everything(
    datastore: &Datastore,
    on_progress: &mut dyn FnMut(&HydrationProgress),
) -> anyhow::Result<Fetched> {
    if !datastore.supports(LAZY_HYDRATION) {
        let _everything = datastore
            .working_copy_locks()
            .foreground(Claim::Everything)
            .await?;
        let pulled = full_pull(datastore, &Scope::All).await?;
        return Ok(Fetched::from(&pulled.stats));
    }
    Ok(hydrate_models(datastore, &Scope::All, false, on_progress)
        .await?
        .fetched)
}

/// Makes the latest files of the models in `scope` (every model the store
/// lists, for [`Scope::All`]) present, `MODELS_PER_CALL` at a time,
/// reporting after each call. With `dry_run`, fetches index metadata only
/// and counts what is present and missing. Each call holds the working-copy
/// locks of its models; the caller must hold none.
///
/// # Errors
/// When listing the models or a call fails; what landed before stays.
pub async fn hydrate_models(
    datastore: &Datastore,
    scope: &Scope,
    dry_run: bool,
    on_progress: &mut dyn FnMut(&HydrationProgress),
) -> anyhow::Result<HydrationProgress> {
    let listed;
    let models = match scope {
        Scope::Models(models) => models.as_slice(),
        Scope::All => {
            listed = datastore.list_models().await?;
            listed.as_slice()
        }
    };
    let progress = HydrationProgress {
        models_total: models.len(),
        ..HydrationProgress::default()
    };
    on_progress(&progress);
    // Named models: their directories, each time. Every model: the walk
    // of the whole working copy a pull of everything makes, only when due
    // (walking each model's directory would read every file of a hydrated
    // working copy each time).
    if !dry_run {
        remove_leftover_downloads(datastore, scope);
    }
    let locks = datastore.working_copy_locks();
    let batches = RefCell::new(staggered(models));
    // A corrupt model fails its call at the end, its batch's other models
    // done; the next batches go on, and the first such error ends the whole.
    let corrupt = RefCell::new(None);
    let failed = Cell::new(false);
    let progress = RefCell::new(progress);
    let on_progress = RefCell::new(on_progress);
    // One lane: batches one after another, until none is left or another
    // lane failed. Lanes share the batches and run in this one task (no
    // borrow is held across an await).
    let lane = || async {
        loop {
            let Some(batch) = batches.borrow_mut().next().filter(|_| !failed.get()) else {
                return Ok(());
            };
            let held = locks.foreground(Claim::Models(batch)).await;
            let result = match held {
                Ok(_held) => datastore.hydrate_scope(batch, latest_only(dry_run)).await,
                Err(err) => Err(err),
            };
            let mut progress = progress.borrow_mut();
            progress.models_done += batch.len();
            match result {
                Ok(report) => progress.add(&report),
                Err(err) if is_corrupt(&err) => {
                    corrupt.borrow_mut().get_or_insert(err);
                }
                Err(err) => {
                    failed.set(true);
                    return Err(err);
                }
            }
            (on_progress.borrow_mut())(&progress);
        }
    };
    let lanes: [anyhow::Result<()>; CALLS_IN_FLIGHT] = tokio::join!(lane(), lane()).into();
    for lane in lanes {
        lane?;
    }
    match corrupt.into_inner() {
        Some(err) => Err(err),
        None => Ok(progress.into_inner()),
    }
}

/// `models` in batches of `MODELS_PER_CALL`, the first of half that size.
/// Lanes that started together would stay in step, both planning or both
/// saving while the store waits; one half a batch behind the other keeps
/// downloads in flight throughout.
fn staggered(models: &[ModelRef]) -> impl Iterator<Item = &[ModelRef]> {
    let (first, rest) = models.split_at(models.len().min(MODELS_PER_CALL / 2));
    std::iter::once(first)
        .filter(|first| !first.is_empty())
        .chain(rest.chunks(MODELS_PER_CALL))
}

impl HydrationProgress {
    /// Counts what one call did.
    fn add(&mut self, report: &HydrateReport) {
        self.fetched.objects = self
            .fetched
            .objects
            .saturating_add(report.stats.objects_downloaded);
        self.fetched.bytes = self
            .fetched
            .bytes
            .saturating_add(report.stats.bytes_downloaded);
        self.already_present = self.already_present.saturating_add(report.objects_present);
        self.missing = self.missing.saturating_add(report.objects_remaining);
    }
}

fn is_corrupt(err: &anyhow::Error) -> bool {
    matches!(
        err.downcast_ref::<DatastoreError>(),
        Some(DatastoreError::Corrupt { .. })
    )
}

/// Best effort: a hydration that was killed and is now resumed leaves no
/// temporary download files behind in the models it covers.
pub(super) fn remove_leftovers(datastore: &Datastore, models: &[ModelRef]) {
    let dirs = models
        .iter()
        .map(|model| (model_label(model), datastore.model_path(model)));
    remove_stale_downloads_in(datastore, dirs, &HashSet::new());
}

/// Best effort, before a pull writes into `scope`: the temporary download
/// files a killed command left there are removed. For every model, the
/// working copy is walked only when a walk is due ([`LeftoverWalk::due`]:
/// a command was killed, or the last walk is a day old): on a hydrated
/// working copy the walk costs far more than the no-op pull it precedes.
pub fn remove_leftover_downloads(datastore: &Datastore, scope: &Scope) {
    match scope {
        Scope::Models(models) => remove_leftovers(datastore, models),
        Scope::All => {
            let walk = match datastore
                .host_state()
                .and_then(|state| LeftoverWalk::due(&state))
            {
                Ok(None) => return,
                Ok(Some(walk)) => Some(walk),
                // Said at every pull of everything while it lasts: until
                // the markers can be read, each such pull walks the whole
                // working copy (costlier than the pull on a large one).
                Err(err) => {
                    tracing::warn!(
                        "cannot read the transfer markers ({err}); walking the whole working copy \
                         for leftover downloads, as every pull of everything will until they can \
                         be read: check that silt may read and write the host's state beside the \
                         working copy (`<local>-host/transfers/`)"
                    );
                    None
                }
            };
            let none_known_gone = HashSet::new();
            let walked = remove_stale_downloads_in(
                datastore,
                std::iter::once(("the working copy".to_owned(), PathBuf::from("data"))),
                walk.as_ref().map_or(&none_known_gone, |walk| &walk.gone),
            );
            // After a failed walk, the markers stay and the next pull of
            // everything walks again.
            if walked
                && let Some(walk) = walk
                && let Err(err) = walk.done()
            {
                tracing::warn!("cannot record the working copy's clean-up: {err}");
            }
        }
    }
}

/// Walks `dirs` (see [`remove_stale_downloads`]); true when every one was
/// walked without error.
fn remove_stale_downloads_in(
    datastore: &Datastore,
    dirs: impl IntoIterator<Item = (String, PathBuf)>,
    gone: &HashSet<String>,
) -> bool {
    let local = match datastore.local() {
        Ok(local) => local,
        Err(err) => {
            tracing::warn!("cannot clean up the working copy: {err}");
            return false;
        }
    };
    let mut walked = true;
    for (label, dir) in dirs {
        match remove_stale_downloads(&local, &dir, gone) {
            Ok(0) => {}
            Ok(removed) => tracing::info!(
                "{label}: removed {removed} temporary files of an interrupted download"
            ),
            Err(err) => {
                walked = false;
                tracing::warn!("{label}: cannot clean up all of it: {err}");
            }
        }
    }
    walked
}

fn latest_only(dry_run: bool) -> HydrateOptions {
    HydrateOptions {
        include_history: false,
        dry_run,
        max_objects: None,
        local_edits: LocalEdits::Keep,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn models(count: usize) -> Vec<ModelRef> {
        (0..count)
            .map(|n| ModelRef {
                model_type: "t".to_owned(),
                model_id: format!("m{n}"),
            })
            .collect()
    }

    #[test]
    fn batches_take_every_model_once_in_order_the_first_half_sized() {
        for count in [0, 1, 31, 32, 33, 96, 97, 300] {
            let all = models(count);
            let batches: Vec<&[ModelRef]> = staggered(&all).collect();
            let ids = |models: &[ModelRef]| -> Vec<String> {
                models.iter().map(|model| model.model_id.clone()).collect()
            };
            let flat: Vec<String> = batches.iter().flat_map(|batch| ids(batch)).collect();
            assert_eq!(flat, ids(&all), "{count} models");
            assert!(batches.iter().all(|batch| !batch.is_empty()), "{count}");
            assert!(batches.iter().all(|batch| batch.len() <= MODELS_PER_CALL));
            if count > MODELS_PER_CALL {
                assert_eq!(batches[0].len(), MODELS_PER_CALL / 2, "{count}");
                assert_eq!(batches[1].len(), MODELS_PER_CALL, "{count}");
            }
        }
    }
}
