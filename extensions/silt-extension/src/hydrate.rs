//! Making model files present in the working copy: for `hydrate-scope`,
//! `hydrate-file`, and for pull (which refreshes only files already present).
//!
//! Local edits always win: a file changed locally is never overwritten or
//! removed here; push commits it.
//!
//! Every [`Index`] answers the `hydration` interface through this module;
//! its pieces also serve an extension's own calls:
//!
//! ```no_run,standalone_crate
//! use silt_extension::Index;
//! use silt_extension::hydrate::{self, Planned};
//! use silt_extension::silt::datastore::types::{Error, ModelRef};
//!
//! /// Brings the files of `model` present locally up to date with the store.
//! fn refresh_present<I: Index>(model: &ModelRef) -> Result<Vec<String>, Error> {
//!     let mut stats = hydrate::no_transfers();
//!     let mut planned = Planned::read::<I>(model, true, &mut stats)?;
//!     let mut update = silt_extension::summary::Update::begin(silt_extension::layout::DATA_AREA);
//!     let changed = hydrate::apply_many::<I>(std::slice::from_mut(&mut planned), &mut update, &mut stats)?;
//!     update.finish()?;
//!     Ok(changed)
//! }
//! ```

use crate::cache_file;
use crate::corrupt_models::CorruptModels;
use crate::exports::silt::datastore::hydration::{Guest, HydrateOptions, HydrateReport};
use crate::journal;
use crate::layout::{self, DATA_AREA};
use crate::leased_slice;
use crate::local::{self, Sidecar};
use crate::partition::{Entry, Partition, Versioned};
pub use crate::plan::{Plan, keep_slice_only};
use crate::set_aside::{self, SetAside};
use crate::silt::datastore::object_store::DownloadItem;
use crate::silt::datastore::object_store::StoreError;
use crate::silt::datastore::types::{Error, LocalEdits, ModelRef, TransferStats};
use crate::store;
use crate::summary;
use crate::{Fresh, Index, log_warn};

/// Empty transfer counts.
///
/// ```no_run,standalone_crate
/// use silt_extension::exports::silt::datastore::hydration::HydrateReport;
/// use silt_extension::hydrate;
///
/// // A dry run moves nothing; it only counts.
/// let report = HydrateReport {
///     stats: hydrate::no_transfers(),
///     objects_present: 12,
///     objects_remaining: 3,
///     set_aside: Vec::new(),
/// };
/// ```
pub fn no_transfers() -> TransferStats {
    TransferStats {
        objects_downloaded: 0,
        bytes_downloaded: 0,
        objects_uploaded: 0,
        bytes_uploaded: 0,
        partitions_read: 0,
        partitions_written: 0,
    }
}

/// Brings `sidecar`'s copy of the model's slice up to date with the store
/// (a conditional read). Returns true when it changed.
///
/// Only the slice: the working copy is not touched, and the caller decides
/// which store version the sidecar may claim ([`keep_slice_only`]).
///
/// # Errors
/// As the index's [`Index::read_if_changed`].
///
/// ```no_run,standalone_crate
/// use silt_extension::hydrate;
/// use silt_extension::layout::DATA_AREA;
/// use silt_extension::{local, summary};
/// use silt_extension::silt::datastore::types::{Error, ModelRef};
/// use silt_extension::Index;
///
/// /// Files in the store, counting models never hydrated here.
/// fn files_in_store<I: Index>(model: &ModelRef) -> Result<usize, Error> {
///     let mut update = summary::Update::begin(DATA_AREA);
///     let mut sidecar = local::load(DATA_AREA, model);
///     let prior = sidecar.store_version.clone();
///     let mut stats = hydrate::no_transfers();
///     if hydrate::refresh::<I>(model, &mut sidecar, &mut stats)? {
///         hydrate::keep_slice_only(&mut sidecar, prior);
///         update.save(model, &sidecar)?;
///     }
///     update.finish()?;
///     Ok(sidecar.partition.map_or(0, |slice| slice.live_files().count()))
/// }
/// ```
pub fn refresh<I: Index>(
    model: &ModelRef,
    sidecar: &mut Sidecar,
    stats: &mut TransferStats,
) -> Result<bool, Error> {
    let known = sidecar
        .partition
        .as_ref()
        .and(sidecar.store_version.as_deref());
    Ok(apply_read(
        sidecar,
        I::read_if_changed(model, known)?,
        stats,
    ))
}

/// As [`refresh`] for several models: with two or more, their slices are
/// read together (one bulk download, [`Index::read_many`]: far from the
/// store, one round trip for the lot instead of one per model), and a read
/// that finds the version a sidecar already holds counts as unchanged. One
/// result per model, in order.
pub fn refresh_many<I: Index>(
    stale: &mut [(&ModelRef, &mut Sidecar)],
    stats: &mut TransferStats,
) -> Vec<Result<bool, Error>> {
    if stale.len() < 2 {
        return stale
            .iter_mut()
            .map(|(model, sidecar)| refresh::<I>(model, sidecar, stats))
            .collect();
    }
    let models: Vec<ModelRef> = stale.iter().map(|(model, _)| (*model).clone()).collect();
    stale
        .iter_mut()
        .zip(I::read_many(&models))
        .map(|((_, sidecar), read)| {
            let read = read?;
            let held = sidecar.partition.is_some() && sidecar.store_version.is_some();
            Ok(match read {
                Fresh::Changed(versioned) if held && versioned.version == sidecar.store_version => {
                    false
                }
                read => apply_read(sidecar, read, stats),
            })
        })
        .collect()
}

/// What a call knows of a model's slice before planning it.
#[derive(Default)]
struct Slice {
    /// The slice a live lease of this cache wrote ([`leased_slice`]): the
    /// latest, without a read.
    leased: Option<Versioned>,
    /// Already read ([`Index::read_many`]) or vouched for by the journal;
    /// `None`: the model's own conditional read.
    read: Option<Result<Fresh, Error>>,
}

/// Takes what a read of the model's slice found into `sidecar`; true when
/// that changed the slice it holds.
fn apply_read(sidecar: &mut Sidecar, read: Fresh, stats: &mut TransferStats) -> bool {
    match read {
        Fresh::Unchanged => false,
        Fresh::Changed(versioned) => {
            stats.partitions_read += 1;
            sidecar.partition = Some(versioned.partition);
            sidecar.store_version = versioned.version;
            true
        }
        Fresh::Missing => {
            let changed = sidecar.partition.is_some();
            sidecar.partition = None;
            sidecar.store_version = None;
            changed
        }
    }
}

/// True when the working file still holds what `sidecar` stamped for `name`
/// (size and mtime, else by hash); refreshes a stale stamp.
pub(crate) fn unmodified(
    sidecar: &mut Sidecar,
    model: &ModelRef,
    name: &str,
) -> Result<bool, Error> {
    let path = layout::working_path(model, name);
    let (Some(stamp), Some((size, mtime_ns))) = (sidecar.local.get(name), cache_file::stat(&path))
    else {
        return Ok(false);
    };
    if stamp.size == size && stamp.mtime_ns == mtime_ns {
        return Ok(true);
    }
    let (sha256, _) = cache_file::hash_file(&path)?;
    if sha256 != stamp.sha256 {
        return Ok(false);
    }
    // Stamped with the size and time seen before hashing, not a `stat`
    // after it: an edit meanwhile leaves the stamp behind the file, so it
    // shows as one.
    let version = stamp.version.clone();
    local::stamp_as_hashed(sidecar, name, &version, &sha256, size, mtime_ns);
    Ok(true)
}

/// Adopts the working-copy file `name` when its content is a committed
/// version: stamps it at that version and plans bringing it up to date
/// (nothing to fetch when it is the latest). False when its content is no
/// committed version: a local edit.
fn adopt_if_committed(
    sidecar: &mut Sidecar,
    model: &ModelRef,
    name: &str,
    partition: &Partition,
    plan: &mut Plan,
) -> Result<bool, Error> {
    let path = layout::working_path(model, name);
    // Seen before hashing, for the stamp (as in `unmodified`).
    let before = cache_file::stat(&path);
    let (sha256, hashed_size) = cache_file::hash_file(&path)?;
    // A version the index still has, or the one a killed pull was landing
    // (perhaps expired from the index since).
    let version = match partition.version_with_sha256(name, &sha256) {
        Some(entry) => entry.version.clone(),
        None => match local::landed_version(sidecar, name, &sha256, hashed_size) {
            Some(version) => version,
            None => return Ok(false),
        },
    };
    match before {
        Some((size, mtime_ns)) => {
            local::stamp_as_hashed(sidecar, name, &version, &sha256, size, mtime_ns);
        }
        None => local::stamp(sidecar, model, name, &version, &sha256),
    }
    let latest = partition
        .latest(name)
        .expect("a committed name has versions");
    if version == latest.version {
        plan.present += 1;
    } else {
        plan.downloads.push((name.to_owned(), latest.clone()));
    }
    Ok(true)
}

/// Plans the working copy of `model` against `sidecar.partition`. With
/// `only_present`, files that are not in the working copy stay absent.
///
/// May stamp files in `sidecar` that turn out to hold a committed version.
///
/// # Errors
/// `invalid-input` when a working-copy file cannot be hashed.
///
/// ```no_run,standalone_crate
/// use silt_extension::hydrate;
/// use silt_extension::layout::{self, DATA_AREA};
/// use silt_extension::local;
/// # fn main() -> Result<(), silt_extension::silt::datastore::types::Error> {
/// # let model = silt_extension::silt::datastore::types::ModelRef { model_type: "vision/detector".into(), model_id: "m-42".into() };
/// // A dry run: what a pull would fetch, from the slice the sidecar holds.
/// let mut sidecar = local::load(DATA_AREA, &model);
/// let plan = hydrate::plan(&model, &mut sidecar, true)?;
/// for (name, _entry) in &plan.downloads {
///     println!("would refresh {}", layout::working_path(&model, name));
/// }
/// # Ok(()) }
/// ```
pub fn plan(model: &ModelRef, sidecar: &mut Sidecar, only_present: bool) -> Result<Plan, Error> {
    // Lent out of the sidecar while its stamps change, and put back on
    // every path: no copy of a partition (every version of every name) a
    // model.
    let Some(partition) = sidecar.partition.take() else {
        return Ok(Plan::default());
    };
    let planned = plan_against(model, sidecar, &partition, only_present);
    sidecar.partition = Some(partition);
    planned
}

/// [`plan`] against `partition`, the slice lent out of `sidecar`.
fn plan_against(
    model: &ModelRef,
    sidecar: &mut Sidecar,
    partition: &Partition,
    only_present: bool,
) -> Result<Plan, Error> {
    let mut plan = Plan::default();
    // A model whose working directory does not exist has no file on disk:
    // one look instead of one per name (a cold clone's hydration; each look
    // is a hand-off to a host thread).
    let dir_absent = matches!(
        std::fs::metadata(layout::in_cache(&layout::working_dir(model))),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound
    );
    for (name, versions) in &partition.files {
        let latest = versions.last().expect("partitions never hold empty names");
        let path = layout::working_path(model, name);
        let on_disk = !dir_absent && cache_file::stat(&path).is_some();
        let stamped = sidecar.local.get(name).map(|s| s.version.clone());
        if latest.deleted {
            if stamped.is_some() && on_disk {
                if unmodified(sidecar, model, name)? {
                    plan.removals.push(name.clone());
                } else {
                    plan.conflicts.push(name.clone());
                }
            }
            continue;
        }
        match (stamped, on_disk) {
            (Some(version), true) => {
                if !unmodified(sidecar, model, name)? {
                    // Content equal to a committed version is never an edit
                    // (a pull killed after the file landed but before its
                    // stamp was saved leaves exactly that).
                    let adopted = adopt_if_committed(sidecar, model, name, partition, &mut plan)?;
                    if !adopted && version != latest.version {
                        plan.conflicts.push(name.clone());
                    }
                } else if version == latest.version {
                    plan.present += 1;
                } else {
                    plan.downloads.push((name.clone(), latest.clone()));
                }
            }
            // Set aside by a call killed before it saved: forgotten.
            (Some(version), false) if version == local::SETTING_ASIDE => {
                sidecar.local.remove(name);
                if !only_present {
                    plan.downloads.push((name.clone(), latest.clone()));
                }
            }
            // Removed locally and not pushed yet: keep it removed.
            (Some(_), false) => {}
            (None, true) => {
                // Not stamped (new here, or the sidecar was lost): adopt it
                // if it is a committed version — refreshing it when it is an
                // older one — else it is a local edit.
                if !adopt_if_committed(sidecar, model, name, partition, &mut plan)? {
                    plan.conflicts.push(name.clone());
                }
            }
            (None, false) if !only_present => plan.downloads.push((name.clone(), latest.clone())),
            (None, false) => {}
        }
    }
    // Every name the index has was looked at, a killed pull's landed file
    // adopted: its record is spent. One for a name the index no longer
    // has stays while its file is unstamped (see `local::changes`).
    sidecar
        .landing
        .retain(|name, _| !partition.files.contains_key(name) && !sidecar.local.contains_key(name));
    Ok(plan)
}

/// Downloads a pull gathers across models before it applies them: enough
/// to keep every transfer slot busy, few enough to bound memory.
///
/// ```no_run,standalone_crate
/// use silt_extension::hydrate::{self, Planned, DOWNLOADS_PER_BATCH};
/// use silt_extension::layout::DATA_AREA;
/// use silt_extension::silt::datastore::types::{Error, ModelRef};
/// use silt_extension::{Index, summary};
///
/// fn hydrate_all<I: Index>(models: &[ModelRef]) -> Result<(), Error> {
///     let mut stats = hydrate::no_transfers();
///     // Records what did land even when a batch fails (its drop).
///     let mut update = summary::Update::begin(DATA_AREA);
///     let mut work: Vec<Planned> = Vec::new();
///     let mut pending = 0;
///     for model in models {
///         let planned = Planned::read::<I>(model, false, &mut stats)?;
///         pending += planned.plan.downloads.len().max(1); // a held sidecar counts too
///         work.push(planned);
///         if pending >= DOWNLOADS_PER_BATCH {
///             let applied = hydrate::apply_many::<I>(&mut work, &mut update, &mut stats);
///             work.clear();
///             pending = 0;
///             applied?;
///         }
///     }
///     hydrate::apply_many::<I>(&mut work, &mut update, &mut stats)?;
///     update.finish()
/// }
/// ```
pub const DOWNLOADS_PER_BATCH: usize = 4096;

/// What a read does with the model's local edits (see
/// [`SetAside::apply`]): the policy, where the edits set aside are listed,
/// and the update their sidecar is saved through.
struct EditHandling<'a> {
    edits: LocalEdits,
    aside: &'a mut SetAside,
    update: &'a mut summary::Update,
}

/// One model's planned work, for [`apply_many`].
///
/// ```no_run,standalone_crate
/// use silt_extension::hydrate::Planned;
///
/// /// Drops the removals of a plan: the sidecar must then not claim the new version.
/// fn keep_files(planned: &mut Planned) {
///     if !planned.plan.removals.is_empty() {
///         planned.plan.removals.clear();
///         planned.settles = false;
///     }
/// }
/// ```
pub struct Planned {
    /// The model.
    pub model: ModelRef,
    /// Its sidecar (stamped as downloads land, then saved).
    pub sidecar: Sidecar,
    /// What to do.
    pub plan: Plan,
    /// The store version the sidecar held before this call read the
    /// model's slice: put back when files present locally were not all
    /// brought to the new one (see [`keep_slice_only`]).
    pub prior_version: Option<String>,
    /// False once a caller dropped part of the plan (a download of a
    /// present file, a removal): the sidecar then keeps `prior_version`.
    pub settles: bool,
}

impl Planned {
    /// `model`'s sidecar, its slice refreshed from the store, and the plan
    /// that brings its working copy to it (`only_present`: files not in the
    /// working copy stay absent).
    ///
    /// # Errors
    /// As [`refresh`] and [`plan`].
    ///
    /// ```no_run,standalone_crate
    /// use silt_extension::hydrate::{self, Planned};
    /// use silt_extension::silt::datastore::types::{Error, ModelRef};
    /// use silt_extension::Index;
    ///
    /// /// How many files of the model are not present locally yet.
    /// fn missing<I: Index>(model: &ModelRef) -> Result<usize, Error> {
    ///     let mut stats = hydrate::no_transfers();
    ///     let planned = Planned::read::<I>(model, false, &mut stats)?;
    ///     Ok(planned.plan.downloads.len())
    /// }
    /// ```
    pub fn read<I: Index>(
        model: &ModelRef,
        only_present: bool,
        stats: &mut TransferStats,
    ) -> Result<Self, Error> {
        // Keeping every edit moves and saves nothing: the update stays empty.
        Self::read_with_edits::<I>(
            model,
            only_present,
            LocalEdits::Keep,
            &mut SetAside::default(),
            &mut summary::Update::begin(DATA_AREA),
            stats,
        )
    }

    /// As [`Planned::read`], applying `edits` to the model's local edits
    /// first (see [`SetAside::apply`]): those set aside are planned back at
    /// their latest version.
    ///
    /// # Errors
    /// As [`Planned::read`] and [`SetAside::apply`].
    ///
    /// ```no_run,standalone_crate
    /// use silt_extension::hydrate::{self, Planned};
    /// use silt_extension::set_aside::SetAside;
    /// use silt_extension::silt::datastore::types::{Error, LocalEdits, ModelRef};
    /// use silt_extension::Index;
    ///
    /// /// What `silt run` starts from: the latest state, leftovers set aside.
    /// fn clean_start<I: Index>(model: &ModelRef) -> Result<Vec<String>, Error> {
    ///     let mut stats = hydrate::no_transfers();
    ///     let mut aside = SetAside::default();
    ///     let mut update = silt_extension::summary::Update::begin(silt_extension::layout::DATA_AREA);
    ///     let mut planned =
    ///         Planned::read_with_edits::<I>(model, false, LocalEdits::SetAside, &mut aside, &mut update, &mut stats)?;
    ///     hydrate::apply_many::<I>(std::slice::from_mut(&mut planned), &mut update, &mut stats)?;
    ///     update.finish()?;
    ///     Ok(aside.moved)
    /// }
    /// ```
    pub fn read_with_edits<I: Index>(
        model: &ModelRef,
        only_present: bool,
        edits: LocalEdits,
        aside: &mut SetAside,
        update: &mut summary::Update,
        stats: &mut TransferStats,
    ) -> Result<Self, Error> {
        let sidecar = local::load(DATA_AREA, model);
        let handling = EditHandling {
            edits,
            aside,
            update,
        };
        let slice = Slice {
            leased: leased_slice::current(DATA_AREA, model),
            read: None,
        };
        Self::plan_read::<I>(model, sidecar, slice, only_present, handling, stats)
    }

    /// [`Planned::read_with_edits`] from a sidecar already loaded and what
    /// is already known of its slice.
    fn plan_read<I: Index>(
        model: &ModelRef,
        mut sidecar: Sidecar,
        slice: Slice,
        only_present: bool,
        handling: EditHandling,
        stats: &mut TransferStats,
    ) -> Result<Self, Error> {
        let prior_version = sidecar.store_version.clone();
        match (slice.leased, slice.read) {
            (Some(leased), _) => leased_slice::take(&mut sidecar, leased),
            (None, Some(read)) => {
                apply_read(&mut sidecar, read?, stats);
            }
            (None, None) => {
                refresh::<I>(model, &mut sidecar, stats)?;
            }
        }
        let EditHandling {
            edits,
            aside,
            update,
        } = handling;
        let restored = aside.apply(model, &mut sidecar, edits, prior_version.clone(), update)?;
        let mut plan = plan(model, &mut sidecar, only_present)?;
        set_aside::restore(&mut plan, &sidecar, &restored);
        Ok(Self {
            model: model.clone(),
            sidecar,
            plan,
            prior_version,
            settles: true,
        })
    }

    /// Keeps at most `budget` downloads, present files' refreshes first;
    /// dropping one of those unsettles the model.
    ///
    /// ```no_run,standalone_crate
    /// use silt_extension::hydrate::{self, Planned};
    /// use silt_extension::silt::datastore::types::{Error, ModelRef};
    /// use silt_extension::Index;
    ///
    /// /// Hydrates at most `max_objects` files of the model; returns how many are left.
    /// fn hydrate_some<I: Index>(model: &ModelRef, max_objects: usize) -> Result<usize, Error> {
    ///     let mut stats = hydrate::no_transfers();
    ///     let mut planned = Planned::read::<I>(model, false, &mut stats)?;
    ///     let wanted = planned.plan.downloads.len();
    ///     planned.keep_downloads(max_objects);
    ///     let left = wanted - planned.plan.downloads.len();
    ///     let mut update = silt_extension::summary::Update::begin(silt_extension::layout::DATA_AREA);
    ///     hydrate::apply_many::<I>(std::slice::from_mut(&mut planned), &mut update, &mut stats)?;
    ///     update.finish()?;
    ///     Ok(left)
    /// }
    /// ```
    pub fn keep_downloads(&mut self, budget: usize) {
        let local = &self.sidecar.local;
        self.plan
            .downloads
            .sort_by_key(|(name, _)| !local.contains_key(name));
        let dropped = self
            .plan
            .downloads
            .split_off(budget.min(self.plan.downloads.len()));
        if dropped.iter().any(|(name, _)| local.contains_key(name)) {
            self.settles = false;
        }
    }
}

/// Download rounds one call makes at most: a version that vanished from
/// the store between reading a slice and fetching it (a `gc` expired it
/// meanwhile) is fetched again at what the slice names now.
const VANISHED_ROUNDS: usize = 3;

/// One download of a round: the index into the work, the name, the entry.
type Wanted = (usize, String, Entry);

/// Carries out many models' plans with ONE bulk download, so every
/// transfer slot stays busy across model boundaries (a model of a few
/// files alone would leave most idle); then removals, and each sidecar
/// stamped and saved — also when some download failed, so what landed is
/// kept. Returns the cache paths that changed.
///
/// A version the store no longer holds was expired by a `gc` after the
/// slice was read: its model's slice is read again and the file fetched at
/// its latest version (the model then keeps its prior store version, as
/// its other files stay at the slice read first). Only a slice that still
/// names the missing version is an error.
///
/// The sidecars are saved through `update`, which records them in the
/// summary when it ends (after an error too).
///
/// # Errors
/// The first failed download, else the first sidecar that could not be
/// saved; everything else is still carried out.
///
/// ```no_run,standalone_crate
/// use silt_extension::hydrate::{self, Planned};
/// use silt_extension::layout::DATA_AREA;
/// use silt_extension::silt::datastore::types::{Error, ModelRef};
/// use silt_extension::{Index, summary};
///
/// /// Hydrates every file of these models: one bulk download for all of them.
/// fn hydrate<I: Index>(models: &[ModelRef]) -> Result<Vec<String>, Error> {
///     let mut stats = hydrate::no_transfers();
///     let mut work = models
///         .iter()
///         .map(|model| Planned::read::<I>(model, false, &mut stats))
///         .collect::<Result<Vec<_>, _>>()?;
///     let mut update = summary::Update::begin(DATA_AREA); // records what landed, even on error
///     let changed = hydrate::apply_many::<I>(&mut work, &mut update, &mut stats)?;
///     update.finish()?;
///     Ok(changed)
/// }
/// ```
pub fn apply_many<I: Index>(
    work: &mut [Planned],
    update: &mut summary::Update,
    stats: &mut TransferStats,
) -> Result<Vec<String>, Error> {
    let mut wanted: Vec<Wanted> = work
        .iter()
        .enumerate()
        .flat_map(|(w, planned)| {
            planned
                .plan
                .downloads
                .iter()
                .map(move |(name, entry)| (w, name.clone(), entry.clone()))
        })
        .collect();
    let mut changed = Vec::new();
    let mut first_error = None;
    for round in 1..=VANISHED_ROUNDS {
        if wanted.is_empty() {
            break;
        }
        let vanished = download_round(work, &wanted, &mut changed, &mut first_error, stats);
        wanted = if round < VANISHED_ROUNDS {
            fetch_again::<I>(work, vanished, &mut first_error, stats)
        } else {
            for (_, _, key, _) in vanished {
                first_error.get_or_insert_with(|| {
                    Error::NotFound(format!(
                        "{key}: expired from the store by a gc while this command fetched it, \
                         {VANISHED_ROUNDS} times; run the command again"
                    ))
                });
            }
            Vec::new()
        };
    }
    for planned in work.iter_mut() {
        for name in &planned.plan.removals {
            let path = layout::working_path(&planned.model, name);
            match std::fs::remove_file(layout::in_cache(&path)) {
                Ok(()) => {
                    planned.sidecar.local.remove(name);
                    changed.push(path);
                }
                Err(err) => log_warn(&format!("could not remove {path}: {err}")),
            }
        }
        for name in &planned.plan.conflicts {
            log_warn(&format!(
                "{}: kept the local edit, but the store has a newer version: a push refuses it as a conflict. \
                 `silt datastore sync --theirs` sets yours aside and takes the latest, `--ours` commits yours on top",
                layout::working_path(&planned.model, name)
            ));
        }
        if !planned.settles {
            keep_slice_only(&mut planned.sidecar, planned.prior_version.clone());
        }
        // Stamps of what did land are worth keeping even when something failed.
        if let Err(err) = update.save(&planned.model, &planned.sidecar) {
            first_error.get_or_insert(err);
        }
    }
    match first_error {
        Some(err) => Err(err),
        None => Ok(changed),
    }
}

/// A download whose version the store did not hold: the index into the
/// work, the name, the key, and the version tried.
type Vanished = (usize, String, String, String);

/// Downloads `wanted` in one bulk call and stamps what landed. Returns the
/// downloads whose version the store did not hold.
fn download_round(
    work: &mut [Planned],
    wanted: &[Wanted],
    changed: &mut Vec<String>,
    first_error: &mut Option<Error>,
    stats: &mut TransferStats,
) -> Vec<Vanished> {
    if let Err(err) = record_landings(work, wanted) {
        // Nothing downloads unrecorded; removals and saves still go on.
        for (w, name, _) in wanted {
            let planned = &mut work[*w];
            planned.sidecar.landing.remove(name);
            if planned.sidecar.local.contains_key(name) {
                planned.settles = false;
            }
        }
        first_error.get_or_insert(err);
        return Vec::new();
    }
    let items: Vec<DownloadItem> = wanted
        .iter()
        .map(|(w, name, entry)| DownloadItem {
            key: layout::object_key(DATA_AREA, &work[*w].model, name, &entry.version),
            cache_path: layout::working_path(&work[*w].model, name),
            expected_version: None,
            sha256: Some(entry.sha256.clone()),
        })
        .collect();
    // Each file's stamp from its landing: no `stat` of each afterwards.
    let results = local::download_landed(&items);
    let mut vanished = Vec::new();
    for ((w, name, entry), (item, result)) in wanted.iter().zip(items.into_iter().zip(results)) {
        let planned = &mut work[*w];
        // Landed (and stamped below) or not replaced: either way over.
        planned.sidecar.landing.remove(name);
        match result {
            Ok((meta, landed_ns)) => {
                stats.objects_downloaded += 1;
                stats.bytes_downloaded += meta.size;
                match landed_ns {
                    Some(mtime_ns) => local::stamp_as_hashed(
                        &mut planned.sidecar,
                        name,
                        &entry.version,
                        &entry.sha256,
                        meta.size,
                        mtime_ns,
                    ),
                    None => local::stamp(
                        &mut planned.sidecar,
                        &planned.model,
                        name,
                        &entry.version,
                        &entry.sha256,
                    ),
                }
                changed.push(item.cache_path);
            }
            Err(err) => {
                // A present file left at its old version unsettles the
                // model (an absent one stays absent: no harm).
                if planned.sidecar.local.contains_key(name) {
                    planned.settles = false;
                }
                match err {
                    StoreError::NotFound => {
                        vanished.push((*w, name.clone(), item.key, entry.version.clone()));
                    }
                    err => {
                        first_error.get_or_insert_with(|| store::error(&item.key, err));
                    }
                }
            }
        }
    }
    vanished
}

/// For downloads whose version vanished: reads each model's slice again
/// and returns what to fetch now, each file at the version the slice names
/// now. A file removed meanwhile is left to the next pull; a slice that
/// still names the missing version is an error (the store lost it). The
/// sidecar keeps the slice it had: its other files are at that one, and a
/// journal pass must not take the commits of the newer slice as seen.
fn fetch_again<I: Index>(
    work: &mut [Planned],
    vanished: Vec<Vanished>,
    first_error: &mut Option<Error>,
    stats: &mut TransferStats,
) -> Vec<Wanted> {
    let mut by_model: std::collections::BTreeMap<usize, Vec<(String, String, String)>> =
        std::collections::BTreeMap::new();
    for (w, name, key, tried) in vanished {
        by_model.entry(w).or_default().push((name, key, tried));
    }
    let mut again = Vec::new();
    for (w, names) in by_model {
        let planned = &mut work[w];
        // Its other files stay at the slice read first.
        planned.settles = false;
        let kept = (
            planned.sidecar.partition.clone(),
            planned.sidecar.store_version.clone(),
        );
        match refresh::<I>(&planned.model, &mut planned.sidecar, stats) {
            Ok(true) => {
                for (name, key, tried) in names {
                    let latest = planned
                        .sidecar
                        .partition
                        .as_ref()
                        .and_then(|partition| partition.live(&name));
                    match latest {
                        Some(entry) if entry.version == tried => {
                            first_error.get_or_insert_with(|| lost(&key));
                        }
                        Some(entry) => again.push((w, name, entry.clone())),
                        None => {}
                    }
                }
            }
            Ok(false) => {
                if let Some((_, key, _)) = names.first() {
                    first_error.get_or_insert_with(|| lost(key));
                }
            }
            Err(err) => {
                first_error.get_or_insert(err);
            }
        }
        (planned.sidecar.partition, planned.sidecar.store_version) = kept;
    }
    again
}

/// The error for an object the index names and the store does not hold.
fn lost(key: &str) -> Error {
    Error::NotFound(format!(
        "{key}: the index names this version and the store does not hold it; \
         `silt datastore verify` lists every such object"
    ))
}

/// Records the downloads `wanted` in their models' sidecars, on disk,
/// before any starts: a pull killed after a file landed and before the
/// final save leaves a file whose version the sidecar's stamp does not
/// say, and which may expire from the index before the next pull; the
/// record says what it is (see [`local::landed_version`]). The sidecar is
/// saved with the store version it had before this call, as the final save
/// would when not everything landed. Not synced: it guards against a
/// killed process, and the files it describes are not synced either.
fn record_landings(work: &mut [Planned], wanted: &[Wanted]) -> Result<(), Error> {
    let mut models = std::collections::BTreeSet::new();
    for (w, name, entry) in wanted {
        work[*w].sidecar.landing.insert(
            name.clone(),
            local::Landing {
                version: entry.version.clone(),
                sha256: entry.sha256.clone(),
                size: entry.size,
            },
        );
        models.insert(*w);
    }
    for w in models {
        let planned = &work[w];
        let mut recorded = planned.sidecar.clone();
        recorded.store_version = planned.prior_version.clone();
        local::save_unsynced(DATA_AREA, &planned.model, &recorded)?;
    }
    Ok(())
}

/// What a call on `models` (with their `sidecars`) knows of their slices
/// before planning, one per model in order; `read: None` leaves the
/// model's own conditional read to [`Planned::plan_read`].
///
/// - A slice a live lease of this cache wrote is the latest
///   ([`leased_slice`]): nothing is read (`silt run` after its leases).
/// - Slices this cache has never read are read together (a cold clone's
///   batch: one bulk download, instead of one request after another). One
///   alone is one plain read: that is also what ends a command on a
///   stalled store within one retry budget (a bulk download does not trip
///   the host's "stopped answering" guard, so a command's fallback would
///   wait out a second budget).
/// - A slice the sidecar holds is current when the journal vouches for it
///   ([`journal::possibly_changed`]: one LIST for the call instead of one
///   conditional read a model), as a pull's journal pass concludes; the
///   periodic full check of pulls bounds what the journal cannot see.
///   Asked when two or more sidecars hold a slice (for one, its own read
///   costs the same request), and not while edits are being resolved
///   (`theirs`, `set-aside`: `silt run` starts from each model's slice as
///   the store holds it now, as a pull that resolves edits does).
fn reads_before_planning<T: Index>(
    models: &[ModelRef],
    sidecars: &[Sidecar],
    resolving: bool,
) -> Result<Vec<Slice>, Error> {
    let mut slices: Vec<Slice> = if leased_slice::any() {
        models
            .iter()
            .map(|model| Slice {
                leased: leased_slice::current(DATA_AREA, model),
                read: None,
            })
            .collect()
    } else {
        models.iter().map(|_| Slice::default()).collect()
    };
    let unknown = |i: usize| slices[i].leased.is_none();
    let held = (0..models.len())
        .filter(|&i| unknown(i) && sidecars[i].partition.is_some())
        .count();
    let possibly_changed = if T::JOURNAL && held >= 2 && !resolving {
        journal::possibly_changed()?
    } else {
        None
    };
    let cold: Vec<usize> = (0..models.len())
        .filter(|&i| unknown(i) && sidecars[i].partition.is_none())
        .collect();
    for (i, (model, sidecar)) in models.iter().zip(sidecars).enumerate() {
        let vouched = sidecar.partition.is_some()
            && possibly_changed
                .as_ref()
                .is_some_and(|named| !named.contains(&layout::model_label(model)));
        if vouched && slices[i].leased.is_none() {
            slices[i].read = Some(Ok(Fresh::Unchanged));
        }
    }
    if cold.len() >= 2 {
        let batch: Vec<ModelRef> = cold.iter().map(|&i| models[i].clone()).collect();
        for (&i, read) in cold.iter().zip(T::read_many(&batch)) {
            slices[i].read = Some(read);
        }
    }
    Ok(slices)
}

/// Finds the model and name of a working-copy path `data/<type>/<id>/<name>`.
/// The type may contain `/`, so each split is tried, preferring models this
/// cache knows, then models the store has.
fn resolve<I: Index>(path: &str) -> Result<(ModelRef, String), Error> {
    let rest = path
        .trim_start_matches('/')
        .strip_prefix("data/")
        .ok_or_else(|| Error::InvalidInput(format!("{path}: not under data/")))?;
    let segments: Vec<&str> = rest.split('/').collect();
    let candidates: Vec<(ModelRef, String)> = (1..segments.len().saturating_sub(1))
        .map(|id_at| {
            (
                ModelRef {
                    model_type: segments[..id_at].join("/"),
                    model_id: segments[id_at].to_owned(),
                },
                segments[id_at + 1..].join("/"),
            )
        })
        .collect();
    for (model, name) in &candidates {
        let sidecar = local::load(DATA_AREA, model);
        if sidecar
            .partition
            .is_some_and(|p| p.files.contains_key(name))
        {
            return Ok((model.clone(), name.clone()));
        }
    }
    for (model, name) in candidates {
        if I::read(&model)?.partition.files.contains_key(&name) {
            return Ok((model, name));
        }
    }
    Err(Error::NotFound(format!("{path}: no model has this file")))
}

impl<T: Index> Guest for T {
    fn hydrate_scope(
        models: Vec<ModelRef>,
        options: HydrateOptions,
    ) -> Result<HydrateReport, Error> {
        let mut stats = no_transfers();
        let mut present = 0;
        let mut remaining = 0;
        let mut budget = options.max_objects.unwrap_or(u64::MAX);
        let mut work = Vec::new();
        let mut aside = SetAside::default();
        // A dry run moves nothing.
        let edits = if options.dry_run {
            LocalEdits::Keep
        } else {
            options.local_edits
        };
        let mut corrupt = CorruptModels::default();
        for model in &models {
            layout::check_model(model)?;
        }
        let mut update = summary::Update::begin(DATA_AREA);
        let sidecars: Vec<Sidecar> = models.iter().map(|m| local::load(DATA_AREA, m)).collect();
        let resolving = set_aside::resolves(edits);
        let mut slices = reads_before_planning::<T>(&models, &sidecars, resolving)?.into_iter();
        for (model, sidecar) in models.iter().zip(sidecars) {
            let read = Planned::plan_read::<T>(
                model,
                sidecar,
                slices.next().unwrap_or_default(),
                false,
                EditHandling {
                    edits,
                    aside: &mut aside,
                    update: &mut update,
                },
                &mut stats,
            );
            let Some(mut planned) = corrupt.skip(model, read)? else {
                continue;
            };
            present += planned.plan.present;
            let wanted = planned.plan.downloads.len() as u64;
            if options.dry_run {
                remaining += wanted;
                // Keep the slice read (status can then count the model).
                keep_slice_only(&mut planned.sidecar, planned.prior_version);
                update.save(model, &planned.sidecar)?;
                continue;
            }
            planned.keep_downloads(budget.min(wanted) as usize);
            let kept = planned.plan.downloads.len() as u64;
            budget -= kept;
            remaining += wanted - kept;
            work.push(planned);
        }
        // What landed is recorded either way (the update's drop), and a
        // download's error comes first.
        apply_many::<T>(&mut work, &mut update, &mut stats)?;
        update.finish()?;
        corrupt.finish(models.len())?;
        Ok(HydrateReport {
            stats,
            objects_present: present,
            objects_remaining: remaining,
            set_aside: aside.moved,
        })
    }

    fn hydrate_file(path: String) -> Result<HydrateReport, Error> {
        let (model, name) = resolve::<T>(&path)?;
        let mut stats = no_transfers();
        let mut planned = Planned::read::<T>(&model, false, &mut stats)?;
        let present = planned.plan.present;
        // Only this file: what else the model needs waits, and the sidecar
        // keeps its prior version unless that leaves nothing behind.
        let local = &planned.sidecar.local;
        let others_present = planned
            .plan
            .downloads
            .iter()
            .any(|(n, _)| n != &name && local.contains_key(n));
        if others_present || !planned.plan.removals.is_empty() {
            planned.settles = false;
        }
        planned.plan.downloads.retain(|(n, _)| n == &name);
        planned.plan.removals.clear();
        planned.plan.conflicts.retain(|n| n == &name);
        if planned.plan.downloads.is_empty()
            && planned
                .sidecar
                .partition
                .as_ref()
                .and_then(|p| p.live(&name))
                .is_none()
        {
            return Err(Error::NotFound(format!("{path}: removed from the model")));
        }
        let mut update = summary::Update::begin(DATA_AREA);
        apply_many::<T>(std::slice::from_mut(&mut planned), &mut update, &mut stats)?;
        update.finish()?;
        Ok(HydrateReport {
            stats,
            objects_present: present,
            objects_remaining: 0,
            set_aside: Vec::new(),
        })
    }
}
