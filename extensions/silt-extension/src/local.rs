//! The local side: the working copy under `/cache/data/` and, per partition,
//! a sidecar remembering the partition as last seen and which files are
//! present locally at which version.
//!
//! Sidecars are a cache: a missing or unreadable one only costs re-reading
//! the partition and re-hashing files, never data.
//!
//! ```no_run,standalone_crate
//! use silt_extension::layout::{self, DATA_AREA};
//! use silt_extension::local;
//! use silt_extension::silt::datastore::types::{Error, ModelRef};
//!
//! /// The working-copy paths of the model's files changed since the last sync.
//! fn edited(model: &ModelRef) -> Result<Vec<String>, Error> {
//!     let mut sidecar = local::load(DATA_AREA, model);
//!     let changes = local::changes(model, &mut sidecar)?;
//!     local::save(DATA_AREA, model, &sidecar)?; // keeps the refreshed stamps
//!     local::flush_summary(DATA_AREA)?;
//!     Ok(changes.iter().map(|change| layout::working_path(model, change.name())).collect())
//! }
//! ```

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::change::Base;
use crate::layout;
use crate::partition::Partition;
use crate::silt::datastore::log;
use crate::silt::datastore::object_store::{DownloadItem, ObjectMeta, StoreError};
use crate::silt::datastore::types::{Error, ModelRef};

/// What we know locally about one partition.
///
/// ```no_run,standalone_crate
/// use silt_extension::layout::DATA_AREA;
/// use silt_extension::local;
/// # let model = silt_extension::silt::datastore::types::ModelRef { model_type: "vision/detector".into(), model_id: "m-42".into() };
///
/// let sidecar = local::load(DATA_AREA, &model);
/// match (&sidecar.store_version, &sidecar.partition) {
///     (Some(version), Some(slice)) => println!("last read at {version}: {} names", slice.files.len()),
///     _ => println!("never read here"),
/// }
/// println!("{} files present locally", sidecar.local.len());
/// ```
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Sidecar {
    /// The partition's store version when last read.
    pub store_version: Option<String>,
    /// The partition as last read.
    pub partition: Option<Partition>,
    /// Files present in the working copy, by name, as last synced.
    pub local: BTreeMap<String, Stamp>,
    /// Downloads into the working copy under way, by name: recorded before
    /// they start, removed once each ended. A file a killed pull landed
    /// holds a committed version, perhaps one expired from the index since;
    /// this says which, so it is never taken for an edit
    /// ([`landed_version`]).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub landing: BTreeMap<String, Landing>,
}

/// A download into the working copy under way (see [`Sidecar::landing`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Landing {
    /// The version being fetched.
    pub version: String,
    /// Its sha256 (what the host checks before the file lands).
    pub sha256: String,
    /// Its size.
    pub size: u64,
}

/// The committed version a working-copy file holds because a pull that
/// was killed landed it: its content is what [`Sidecar::landing`]
/// recorded for `name`. The record is consumed.
pub fn landed_version(
    sidecar: &mut Sidecar,
    name: &str,
    sha256: &str,
    size: u64,
) -> Option<String> {
    let landing = sidecar.landing.get(name)?;
    if landing.sha256 != sha256 || landing.size != size {
        return None;
    }
    sidecar.landing.remove(name).map(|landing| landing.version)
}

/// The version of a stamp whose file is being set aside
/// ([`crate::set_aside`]): no commit has it, so an edit stamped so never
/// commits (its base never holds), and a missing file stamped so is no
/// removal: its stamp is simply dropped.
///
/// ```no_run,standalone_crate
/// use silt_extension::local::{self, Sidecar};
///
/// fn being_set_aside(sidecar: &Sidecar) -> usize {
///     sidecar.local.values().filter(|s| s.version == local::SETTING_ASIDE).count()
/// }
/// ```
pub const SETTING_ASIDE: &str = "~setting-aside";

/// A file of the working copy as the datastore last wrote or read it.
///
/// ```no_run,standalone_crate
/// use silt_extension::local::Sidecar;
///
/// /// Bytes of the model present locally, as last synced.
/// fn local_bytes(sidecar: &Sidecar) -> u64 {
///     sidecar.local.values().map(|stamp| stamp.size).sum()
/// }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stamp {
    /// The version it holds.
    pub version: String,
    /// Its sha256.
    pub sha256: String,
    /// Size when stamped.
    pub size: u64,
    /// Modification time when stamped (ns since the epoch).
    pub mtime_ns: u64,
}

/// A difference between the working copy and its sidecar.
///
/// ```no_run,standalone_crate
/// use silt_extension::local::LocalChange;
///
/// fn describe(change: &LocalChange) -> String {
///     match change {
///         LocalChange::Changed { name, size, .. } => format!("modified: {name} ({size} bytes)"),
///         LocalChange::Removed { name, .. } => format!("removed: {name}"),
///     }
/// }
/// ```
#[derive(Debug, Clone)]
pub enum LocalChange {
    /// New or modified content.
    Changed {
        /// File name within the model.
        name: String,
        /// Its size.
        size: u64,
        /// Its sha256.
        sha256: String,
        /// Its modification time when hashed: the upload must send the same.
        mtime_ns: u64,
        /// The version the edit was made from: the stamped one, or
        /// [`Base::Absent`] for a file new here.
        base: Base,
    },
    /// A file that was present is gone.
    Removed {
        /// File name within the model.
        name: String,
        /// The version it held when it was removed here.
        base: Base,
    },
}

impl LocalChange {
    /// The file name.
    ///
    /// ```no_run,standalone_crate
    /// use silt_extension::layout;
    /// use silt_extension::local::LocalChange;
    /// use silt_extension::silt::datastore::types::ModelRef;
    ///
    /// // What a dry-run push lists.
    /// fn paths(model: &ModelRef, changes: &[LocalChange]) -> Vec<String> {
    ///     changes.iter().map(|change| layout::working_path(model, change.name())).collect()
    /// }
    /// ```
    pub fn name(&self) -> &str {
        match self {
            LocalChange::Changed { name, .. } | LocalChange::Removed { name, .. } => name,
        }
    }
}

fn io_error(path: &str, err: std::io::Error) -> Error {
    Error::InvalidInput(format!("cache {path}: {err}"))
}

/// Loads the sidecar of `model` in `area` (empty when there is none).
///
/// An unreadable sidecar is logged and treated as missing.
///
/// ```no_run,standalone_crate
/// use silt_extension::layout::DATA_AREA;
/// use silt_extension::local;
/// # let model = silt_extension::silt::datastore::types::ModelRef { model_type: "vision/detector".into(), model_id: "m-42".into() };
///
/// let sidecar = local::load(DATA_AREA, &model);
/// let seen_here = sidecar.partition.is_some();
/// ```
pub fn load(area: &str, model: &ModelRef) -> Sidecar {
    let path = layout::sidecar_path(area, model);
    match read_file(&path) {
        Ok(bytes) => parse_sidecar(&path, &bytes),
        Err(_) => Sidecar::default(),
    }
}

/// The sidecar `bytes` read from `path` hold; an unreadable one is logged
/// and taken as missing.
fn parse_sidecar(path: &str, bytes: &[u8]) -> Sidecar {
    serde_json::from_slice(bytes).unwrap_or_else(|err| {
        log::log(
            log::Level::Warn,
            &format!("ignoring unreadable sidecar {path} ({err}); it will be rebuilt"),
        );
        Sidecar::default()
    })
}

/// Saves a sidecar atomically (temporary file, then rename), and notes its
/// version for the summary ([`flush_summary`]); nothing when the file
/// already holds exactly this sidecar.
///
/// # Errors
/// `invalid-input` naming the sidecar when the cache cannot be written.
///
/// ```no_run,standalone_crate
/// use silt_extension::Index;
/// use silt_extension::layout::DATA_AREA;
/// use silt_extension::local;
/// use silt_extension::silt::datastore::types::{Error, ModelRef};
///
/// /// Remembers the model's slice as the store has it now.
/// fn remember<I: Index>(model: &ModelRef) -> Result<(), Error> {
///     let mut sidecar = local::load(DATA_AREA, model);
///     let read = I::read(model)?;
///     // Files present here were not brought to this version: keep the old one.
///     if sidecar.local.is_empty() {
///         sidecar.store_version = read.version;
///     }
///     sidecar.partition = Some(read.partition);
///     local::save(DATA_AREA, model, &sidecar)?;
///     local::flush_summary(DATA_AREA)
/// }
/// ```
pub fn save(area: &str, model: &ModelRef, sidecar: &Sidecar) -> Result<(), Error> {
    let path = layout::sidecar_path(area, model);
    let bytes = serde_json::to_vec(sidecar).expect("a sidecar serializes");
    // A pull that changed nothing saves what is on disk already: skip the
    // write and its fsync, and the summary's flush with them. (A summary
    // left stale meanwhile is repaired by the next listing pull: see
    // [`note_current`].)
    if read_file(&path).is_ok_and(|on_disk| on_disk == bytes) {
        return Ok(());
    }
    write_atomic(&path, &bytes)?;
    let written = Written {
        store_version: sidecar.store_version.clone(),
        complete: all_stamped(sidecar),
        bytes,
    };
    SAVED.with_borrow_mut(|saved| saved.note(area, model, Some(written)));
    Ok(())
}

/// Writes `model`'s sidecar without syncing it, and without noting it for
/// the summary: a record of work under way (see [`Sidecar::landing`]),
/// which the call's final [`save`] replaces.
///
/// # Errors
/// When the sidecar cannot be written.
pub fn save_unsynced(area: &str, model: &ModelRef, sidecar: &Sidecar) -> Result<(), Error> {
    let path = layout::sidecar_path(area, model);
    let bytes = serde_json::to_vec(sidecar).expect("a sidecar serializes");
    write_atomic_unsynced(&path, &bytes)
}

/// Notes that `model`'s sidecar, as it is on disk, belongs in the summary:
/// for a pull that found the summary behind a sidecar that is current (a
/// call killed between saving the sidecar and flushing, or two calls
/// flushing at once), so that [`flush_summary`] repairs the entry.
///
/// ```no_run,standalone_crate
/// use silt_extension::layout::DATA_AREA;
/// use silt_extension::local;
/// # let model = silt_extension::silt::datastore::types::ModelRef { model_type: "t".into(), model_id: "m".into() };
///
/// local::note_current(DATA_AREA, &model);
/// local::flush_summary(DATA_AREA)?;
/// # Ok::<(), silt_extension::silt::datastore::types::Error>(())
/// ```
pub fn note_current(area: &str, model: &ModelRef) {
    SAVED.with_borrow_mut(|saved| saved.note(area, model, None));
}

/// The most memory the saved sidecars' bytes kept for [`flush_summary`]
/// may take (their buffers' capacity); sidecars saved beyond it are parsed
/// again instead. Bounds a call's memory on a pull of many models; a hydration
/// call's batch (64 models of a few dozen files) fits many times over.
const KEPT_FOR_FLUSH: usize = 16 << 20;

/// A sidecar as [`save`] wrote it: its bytes and what the summary takes
/// from it.
struct Written {
    bytes: Vec<u8>,
    store_version: Option<String>,
    complete: bool,
}

impl Written {
    /// The memory its bytes take.
    fn size(&self) -> usize {
        self.bytes.capacity()
    }
}

/// Sidecars saved (or noted current) by this call, not yet in the summary.
#[derive(Default)]
struct Saved {
    /// (area, label) → the model and, when kept, what was written.
    models: BTreeMap<(String, String), (ModelRef, Option<Written>)>,
    /// The memory the bytes kept in `models` take.
    kept: usize,
}

impl Saved {
    /// Notes `model`'s sidecar for the next flush, keeping what was
    /// `written` while the bound allows (replacing what an earlier save of
    /// it kept).
    fn note(&mut self, area: &str, model: &ModelRef, written: Option<Written>) {
        let key = (area.to_owned(), layout::model_label(model));
        if let Some((_, Some(earlier))) = self.models.remove(&key) {
            self.kept -= earlier.size();
        }
        let written = written.filter(|w| self.kept + w.size() <= KEPT_FOR_FLUSH);
        self.kept += written.as_ref().map_or(0, Written::size);
        self.models.insert(key, (model.clone(), written));
    }

    /// Takes the entries of `area`, leaving the others.
    fn take_area(&mut self, area: &str) -> Vec<(ModelRef, Option<Written>)> {
        let (mine, others) = std::mem::take(&mut self.models)
            .into_iter()
            .partition(|((saved_area, _), _)| saved_area == area);
        self.models = others;
        self.kept = self
            .models
            .values()
            .filter_map(|(_, written)| written.as_ref().map(Written::size))
            .sum();
        mine.into_values().collect()
    }
}

thread_local! {
    static SAVED: RefCell<Saved> = RefCell::new(Saved::default());
}

/// The summary of an area: each model's store version as its sidecar holds
/// it, and which models have every live file stamped (present or
/// deliberately removed here), in one small file — so that a no-op sync
/// reads one file instead of a sidecar per model. A hint only: a model
/// whose entry differs from the store is checked against its sidecar, so a
/// stale entry costs a read, never a missed change (see [`flush_summary`]
/// for why it is never ahead).
///
/// ```no_run,standalone_crate
/// use silt_extension::layout::{self, DATA_AREA};
/// use silt_extension::local;
/// use silt_extension::Listed;
///
/// /// The models whose sidecars are behind the store's listing.
/// fn behind(listed: &Listed) -> usize {
///     let summary = local::summary(DATA_AREA);
///     listed
///         .values()
///         .filter(|(model, version)| !summary.is_current(&layout::model_label(model), version, false))
///         .count()
/// }
/// ```
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Summary {
    /// Model label → the store version its sidecar holds.
    pub versions: BTreeMap<String, String>,
    /// Labels of the models whose every live file is stamped.
    pub complete: BTreeSet<String>,
}

impl Summary {
    /// True when the summary says `label`'s sidecar is at `version` and,
    /// with `need_complete`, that every live file of it is stamped.
    ///
    /// ```no_run,standalone_crate
    /// use silt_extension::layout::DATA_AREA;
    /// use silt_extension::local;
    ///
    /// let summary = local::summary(DATA_AREA);
    /// // A pull that fetches missing files needs every file present, too.
    /// let skip = summary.is_current("vision/detector/m-42", "1767225600000-9f2c4e1a7b3d5c60", true);
    /// ```
    pub fn is_current(&self, label: &str, version: &str, need_complete: bool) -> bool {
        self.versions.get(label).is_some_and(|v| v == version)
            && (!need_complete || self.complete.contains(label))
    }
}

/// The summary of `area` (empty when missing or unreadable).
///
/// ```no_run,standalone_crate
/// use silt_extension::layout::DATA_AREA;
/// use silt_extension::local;
///
/// let summary = local::summary(DATA_AREA);
/// println!("{} models seen here, {} of them complete", summary.versions.len(), summary.complete.len());
/// ```
pub fn summary(area: &str) -> Summary {
    read_file(&layout::summary_path(area))
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .unwrap_or_default()
}

/// True when every live file of the sidecar's partition is stamped: the
/// working copy holds it (or removed it on purpose), so a pull that fetches
/// missing files has nothing to fetch for this model at this version.
///
/// ```no_run,standalone_crate
/// use silt_extension::layout::DATA_AREA;
/// use silt_extension::local;
/// # let model = silt_extension::silt::datastore::types::ModelRef { model_type: "vision/detector".into(), model_id: "m-42".into() };
///
/// let sidecar = local::load(DATA_AREA, &model);
/// if !local::all_stamped(&sidecar) {
///     println!("some files of the model are not present locally (fetched on use)");
/// }
/// ```
pub fn all_stamped(sidecar: &Sidecar) -> bool {
    sidecar.partition.as_ref().is_none_or(|partition| {
        partition
            .live_files()
            .all(|(name, _)| sidecar.local.contains_key(name))
    })
}

/// Writes the versions of the sidecars this call saved into the summary.
///
/// Each entry is taken from the sidecar as it is on disk now: another
/// process may have saved the sidecar since, and the summary must never
/// claim a version the sidecar does not hold (a pull would then skip a
/// model whose working copy is behind). When the file still holds exactly
/// the bytes this call saved, the entry is what was saved, without parsing
/// the file again.
///
/// Call it once at the end of a call that saved sidecars; also when the
/// call fails, so that what was saved before the failure is recorded.
///
/// # Errors
/// `invalid-input` naming the summary when the cache cannot be written.
///
/// ```no_run,standalone_crate
/// use silt_extension::layout::DATA_AREA;
/// use silt_extension::local;
/// use silt_extension::silt::datastore::types::{Error, ModelRef};
///
/// fn refresh_all(models: &[ModelRef], mut each: impl FnMut(&ModelRef) -> Result<(), Error>) -> Result<(), Error> {
///     let result = models.iter().try_for_each(|model| each(model));
///     let flushed = local::flush_summary(DATA_AREA);
///     result?; // the first error wins, but what was saved is recorded
///     flushed
/// }
/// ```
pub fn flush_summary(area: &str) -> Result<(), Error> {
    let mine = SAVED.with_borrow_mut(|saved| saved.take_area(area));
    if mine.is_empty() {
        return Ok(());
    }
    let mut summary = summary(area);
    for (model, written) in &mine {
        let label = layout::model_label(model);
        let (store_version, complete) = on_disk_for_summary(area, model, written.as_ref());
        match store_version {
            Some(version) => summary.versions.insert(label.clone(), version),
            None => summary.versions.remove(&label),
        };
        if complete {
            summary.complete.insert(label);
        } else {
            summary.complete.remove(&label);
        }
    }
    let bytes = serde_json::to_vec(&summary).expect("a summary serializes");
    write_atomic(&layout::summary_path(area), &bytes)?;
    sweep_temporaries_once();
    Ok(())
}

/// What the summary takes from `model`'s sidecar as it is on disk now: its
/// store version, and whether it is complete (a version and every live file
/// stamped). When the file still holds exactly what this call `written`,
/// that is taken as written, without parsing the file again (a sidecar is
/// tens of KiB of JSON, and a pull saves one a model).
fn on_disk_for_summary(
    area: &str,
    model: &ModelRef,
    written: Option<&Written>,
) -> (Option<String>, bool) {
    let path = layout::sidecar_path(area, model);
    let Ok(bytes) = read_file(&path) else {
        return (None, false);
    };
    if let Some(written) = written.filter(|w| w.bytes == bytes) {
        let complete = written.store_version.is_some() && written.complete;
        return (written.store_version.clone(), complete);
    }
    let on_disk = parse_sidecar(&path, &bytes);
    let complete = on_disk.store_version.is_some() && all_stamped(&on_disk);
    (on_disk.store_version, complete)
}

/// [`sweep_temporaries`] once per instance: a summary is flushed many times
/// in one call, and one sweep a call is enough (an instance serves one).
fn sweep_temporaries_once() {
    static SWEPT: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    if !SWEPT.swap(true, std::sync::atomic::Ordering::Relaxed) {
        sweep_temporaries();
    }
}

/// Where [`write_atomic`] writes before its rename, relative to the cache.
/// The cache's directory of temporary files (swept of old ones by
/// [`sweep_temporaries`]), relative to the cache.
pub const TEMP_DIR: &str = ".silt/tmp";

/// A temporary file older than this was left by a call that was killed (a
/// write takes milliseconds).
const TEMP_MAX_AGE: std::time::Duration = std::time::Duration::from_secs(600);

/// Removes the temporary files of [`write_atomic`] that killed calls left
/// (older than ten minutes). Best effort; returns how many went.
///
/// ```no_run,standalone_crate
/// let removed = silt_extension::local::sweep_temporaries();
/// println!("{removed} leftovers of killed calls removed");
/// ```
pub fn sweep_temporaries() -> usize {
    let Ok(entries) = std::fs::read_dir(layout::in_cache(TEMP_DIR)) else {
        return 0;
    };
    let now = std::time::SystemTime::now();
    let mut removed = 0;
    for entry in entries.flatten() {
        let old = entry
            .metadata()
            .and_then(|meta| meta.modified())
            .ok()
            .and_then(|modified| now.duration_since(modified).ok())
            .is_some_and(|age| age > TEMP_MAX_AGE);
        if old && std::fs::remove_file(entry.path()).is_ok() {
            removed += 1;
        }
    }
    removed
}

/// Writes a cache file atomically: the file is the old one or the new one, never partial.
///
/// `path` is relative to the cache; missing directories are created.
///
/// # Errors
/// `invalid-input` naming `path` when the cache cannot be written.
///
/// ```no_run,standalone_crate
/// use silt_extension::local;
/// # fn main() -> Result<(), silt_extension::silt::datastore::types::Error> {
/// // An index kind's own local state, next to silt's sidecars.
/// let state = serde_json::json!({ "version": "1767225600000-9f2c4e1a7b3d5c60" });
/// local::write_atomic(".silt/my-index/state.json", state.to_string().as_bytes())?;
/// # Ok(()) }
/// ```
pub fn write_atomic(path: &str, bytes: &[u8]) -> Result<(), Error> {
    write_replacing(path, bytes, true)
}

/// [`write_atomic`] without waiting for the disk: for state that only saves
/// work, where losing the newest copy in a power failure costs a
/// recomputation and nothing else (an old copy, or none, is still correct).
/// A sync waits for every dirty file of the file system on some (ext4's
/// ordered mode): tens of milliseconds after a large pull.
///
/// # Errors
/// As [`write_atomic`].
///
/// ```no_run,standalone_crate
/// use silt_extension::local;
/// # fn main() -> Result<(), silt_extension::silt::datastore::types::Error> {
/// local::write_atomic_unsynced(".silt/my-index/hint.json", b"{}")?;
/// # Ok(()) }
/// ```
pub fn write_atomic_unsynced(path: &str, bytes: &[u8]) -> Result<(), Error> {
    write_replacing(path, bytes, false)
}

fn write_replacing(path: &str, bytes: &[u8], sync: bool) -> Result<(), Error> {
    let full = layout::in_cache(path);
    // In one directory of their own, where what a killed call left is
    // found without walking the cache (see [`sweep_temporaries`]).
    let temps = layout::in_cache(TEMP_DIR);
    let temp_name = format!("{TEMP_DIR}/{}", &crate::clock::random_hex()[..16]);
    let temp = layout::in_cache(&temp_name);
    // Directories are made only when missing: each `create_dir_all` of an
    // existing one is three host calls (`mkdir`, then a `stat` of two), and
    // a pull saves a sidecar for every model it touches.
    let result =
        with_parent_made(&temps, || write_whole_file(&temp_name, bytes, sync)).and_then(|()| {
            // `in_cache` paths always have a directory: the cache's at least.
            let dir = full
                .rsplit_once('/')
                .map_or(layout::CACHE_ROOT, |(dir, _)| dir);
            with_parent_made(dir, || std::fs::rename(&temp, &full))
        });
    if let Err(err) = result {
        let _ = std::fs::remove_file(&temp);
        return Err(io_error(path, err));
    }
    Ok(())
}

/// The whole content of the cache file `path` (relative to the cache), as
/// `std::fs::read` answers it, in fewer host calls ([`crate::wasi_file`]).
pub(crate) fn read_file(path: &str) -> std::io::Result<Vec<u8>> {
    crate::wasi_file::read(path).unwrap_or_else(|| std::fs::read(layout::in_cache(path)))
}

/// Creates (or truncates) the cache file `path` (relative to the cache)
/// holding `bytes`, synced to the disk when `sync`.
fn write_whole_file(path: &str, bytes: &[u8], sync: bool) -> std::io::Result<()> {
    crate::wasi_file::write(path, bytes, sync).unwrap_or_else(|| {
        let mut file = std::fs::File::create(layout::in_cache(path))?;
        file.write_all(bytes)?;
        if sync { file.sync_all() } else { Ok(()) }
    })
}

/// `step`, and once more after creating `dir` (and its parents) when it
/// failed for want of them.
fn with_parent_made<T>(
    dir: &str,
    mut step: impl FnMut() -> std::io::Result<T>,
) -> std::io::Result<T> {
    match step() {
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            std::fs::create_dir_all(dir)?;
            step()
        }
        done => done,
    }
}

/// Size and modification time of a cache file, if it is a file.
///
/// The modification time is in nanoseconds since the epoch.
///
/// ```no_run,standalone_crate
/// use silt_extension::layout;
/// use silt_extension::local::{self, Sidecar};
/// use silt_extension::silt::datastore::types::ModelRef;
///
/// /// True when the file is as it was stamped, without hashing it.
/// fn untouched(sidecar: &Sidecar, model: &ModelRef, name: &str) -> bool {
///     let stamp = sidecar.local.get(name);
///     let on_disk = local::stat(&layout::working_path(model, name));
///     matches!((stamp, on_disk), (Some(s), Some((size, mtime_ns))) if s.size == size && s.mtime_ns == mtime_ns)
/// }
/// ```
pub fn stat(path: &str) -> Option<(u64, u64)> {
    match crate::wasi_stat::stat(path) {
        crate::wasi_stat::Stat::File { size, mtime_ns } => return Some((size, mtime_ns)),
        crate::wasi_stat::Stat::NotAFile => return None,
        crate::wasi_stat::Stat::Unavailable => {}
    }
    let meta = std::fs::metadata(layout::in_cache(path)).ok()?;
    if !meta.is_file() {
        return None;
    }
    let mtime_ns = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos() as u64);
    Some((meta.len(), mtime_ns))
}

/// sha256 (hex) and size of a cache file.
///
/// # Errors
/// `invalid-input` naming `path` when it cannot be read.
///
/// ```no_run,standalone_crate
/// use silt_extension::layout;
/// use silt_extension::local::{self, Sidecar};
/// use silt_extension::silt::datastore::types::{Error, ModelRef};
///
/// /// True when the working file still holds the content it was stamped with.
/// fn unmodified(sidecar: &Sidecar, model: &ModelRef, name: &str) -> Result<bool, Error> {
///     let Some(stamp) = sidecar.local.get(name) else { return Ok(false) };
///     let (sha256, _size) = local::hash_file(&layout::working_path(model, name))?;
///     Ok(sha256 == stamp.sha256)
/// }
/// ```
pub fn hash_file(path: &str) -> Result<(String, u64), Error> {
    let mut file =
        std::fs::File::open(layout::in_cache(path)).map_err(|err| io_error(path, err))?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 256 * 1024];
    let mut size = 0u64;
    loop {
        let read = file.read(&mut buffer).map_err(|err| io_error(path, err))?;
        if read == 0 {
            break;
        }
        hasher.update(&buffer[..read]);
        size += read as u64;
    }
    Ok((hex(&hasher.finalize()), size))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Names of the files under the model's working directory (relative to it),
/// skipping the host's in-flight downloads.
///
/// # Errors
/// `invalid-input` naming a directory that cannot be read (a missing
/// working directory is no files).
///
/// ```no_run,standalone_crate
/// use silt_extension::layout::DATA_AREA;
/// use silt_extension::local;
/// # fn main() -> Result<(), silt_extension::silt::datastore::types::Error> {
/// # let model = silt_extension::silt::datastore::types::ModelRef { model_type: "vision/detector".into(), model_id: "m-42".into() };
/// let sidecar = local::load(DATA_AREA, &model);
/// let untracked: Vec<String> = local::scan(&model)?
///     .into_iter()
///     .filter(|name| !sidecar.local.contains_key(name))
///     .collect();
/// # Ok(()) }
/// ```
pub fn scan(model: &ModelRef) -> Result<BTreeSet<String>, Error> {
    let root = layout::working_dir(model);
    let mut names = BTreeSet::new();
    let mut pending = vec![String::new()];
    while let Some(relative) = pending.pop() {
        let dir = if relative.is_empty() {
            root.clone()
        } else {
            format!("{root}/{relative}")
        };
        let entries = match std::fs::read_dir(layout::in_cache(&dir)) {
            Ok(entries) => entries,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => continue,
            Err(err) => return Err(io_error(&dir, err)),
        };
        for entry in entries {
            let entry = entry.map_err(|err| io_error(&dir, err))?;
            let file_name = entry.file_name().to_string_lossy().into_owned();
            if layout::is_transfer_temp(&file_name) {
                continue;
            }
            let name = if relative.is_empty() {
                file_name
            } else {
                format!("{relative}/{file_name}")
            };
            let kind = entry.file_type().map_err(|err| io_error(&dir, err))?;
            if kind.is_dir() {
                pending.push(name);
            } else if kind.is_file() {
                names.insert(name);
            }
        }
    }
    Ok(names)
}

/// What changed in the model's working copy since its sidecar was written.
/// Unchanged files whose stamps were stale get fresh stamps in `sidecar`.
///
/// A file whose content is that of a committed version is not a change
/// (it is adopted, stamped at that version).
///
/// # Errors
/// As [`scan`] and [`hash_stable`].
///
/// ```no_run,standalone_crate
/// use silt_extension::layout::DATA_AREA;
/// use silt_extension::local::{self, LocalChange};
/// # fn main() -> Result<(), silt_extension::silt::datastore::types::Error> {
/// # let model = silt_extension::silt::datastore::types::ModelRef { model_type: "vision/detector".into(), model_id: "m-42".into() };
/// let mut sidecar = local::load(DATA_AREA, &model);
/// for change in local::changes(&model, &mut sidecar)? {
///     match change {
///         LocalChange::Changed { name, size, .. } => println!("to upload: {name} ({size} bytes)"),
///         LocalChange::Removed { name, .. } => println!("to remove: {name}"),
///     }
/// }
/// local::save(DATA_AREA, &model, &sidecar)?; // the refreshed stamps save re-hashing next time
/// # Ok(()) }
/// ```
pub fn changes(model: &ModelRef, sidecar: &mut Sidecar) -> Result<Vec<LocalChange>, Error> {
    let present = scan(model)?;
    let mut changes = Vec::new();
    for name in &present {
        let path = layout::working_path(model, name);
        let Some((size, mtime_ns)) = stat(&path) else {
            continue;
        };
        let stamp = sidecar.local.get(name);
        if stamp.is_some_and(|s| s.size == size && s.mtime_ns == mtime_ns) {
            continue;
        }
        let (sha256, size, mtime_ns) = hash_stable(&path)?;
        // Same content as what we last synced, or as any committed version
        // (the latest, or an older one a lost sidecar or a killed pull left
        // unstamped): nothing to commit, only the stamp to refresh.
        // Hydration then brings an older version up to date instead of
        // pushing it back over newer ones. Content equal to a committed
        // version is never an edit (to bring an old version back, commit it
        // with `silt data put`).
        // A killed pull's landed file is known by its record even when its
        // version has expired from the index since.
        let partition = sidecar.partition.as_ref();
        let base = stamp.map_or(Base::Absent, |s| Base::Version(s.version.clone()));
        let known = match stamp {
            Some(s) if s.sha256 == sha256 => Some(s.version.clone()),
            _ => partition
                .and_then(|p| p.version_with_sha256(name, &sha256))
                .map(|entry| entry.version.clone()),
        };
        let known = known.or_else(|| landed_version(sidecar, name, &sha256, size));
        match known {
            Some(version) => stamp_as_hashed(sidecar, name, &version, &sha256, size, mtime_ns),
            None => changes.push(LocalChange::Changed {
                name: name.clone(),
                size,
                sha256,
                mtime_ns,
                base,
            }),
        }
    }
    // Moved aside by a call killed before it saved: gone, and no removal.
    sidecar
        .local
        .retain(|name, stamp| present.contains(name) || stamp.version != SETTING_ASIDE);
    for (name, stamp) in &sidecar.local {
        if !present.contains(name) {
            changes.push(LocalChange::Removed {
                name: name.clone(),
                base: Base::Version(stamp.version.clone()),
            });
        }
    }
    Ok(changes)
}

/// Hashes a cache file and returns (sha256, size, mtime), refusing a file
/// that changed while it was read (its hash would describe neither version).
///
/// # Errors
/// `invalid-input` when the file cannot be read or changed while it was.
///
/// ```no_run,standalone_crate
/// use silt_extension::change::{Base, Change};
/// use silt_extension::{clock, layout, local};
/// use silt_extension::silt::datastore::types::{Error, ModelRef};
///
/// fn put_change(model: &ModelRef, name: &str) -> Result<(Change, u64), Error> {
///     let (sha256, size, mtime_ns) = local::hash_stable(&layout::working_path(model, name))?;
///     let change = Change::Put { name: name.to_owned(), version: clock::version_token(), size, sha256, base: Base::Any };
///     // Upload it, then `local::check_unchanged(path, size, mtime_ns)` before committing.
///     Ok((change, mtime_ns))
/// }
/// ```
pub fn hash_stable(path: &str) -> Result<(String, u64, u64), Error> {
    let before = stat(path);
    let (sha256, size) = hash_file(path)?;
    match (before, stat(path)) {
        (Some((size_before, mtime_ns)), Some(after))
            if after == (size_before, mtime_ns) && size == size_before =>
        {
            Ok((sha256, size, mtime_ns))
        }
        _ => Err(changed_while_reading(path)),
    }
}

/// Errors when `path` no longer has the `size` and `mtime_ns` it had when
/// it was hashed: what was uploaded since may not be what was hashed.
///
/// # Errors
/// `invalid-input` saying to run the command again once the file is written.
///
/// ```no_run,standalone_crate
/// use silt_extension::silt::datastore::object_store::{self, PutMode, UploadItem};
/// use silt_extension::silt::datastore::types::Error;
/// use silt_extension::{local, store};
///
/// /// Uploads a cache file to `key`; the checksum it is committed under must be its own.
/// fn upload_hashed(path: &str, key: &str) -> Result<(String, u64), Error> {
///     let (sha256, size, mtime_ns) = local::hash_stable(path)?;
///     let item = UploadItem { cache_path: path.to_owned(), key: key.to_owned(), mode: PutMode::Create };
///     for result in object_store::upload(&[item]) {
///         result.map_err(|err| store::error(key, err))?;
///     }
///     local::check_unchanged(path, size, mtime_ns)?;
///     Ok((sha256, size))
/// }
/// ```
pub fn check_unchanged(path: &str, size: u64, mtime_ns: u64) -> Result<(), Error> {
    if stat(path) == Some((size, mtime_ns)) {
        Ok(())
    } else {
        Err(changed_while_reading(path))
    }
}

/// The error for a working-copy file written to while silt read it.
fn changed_while_reading(path: &str) -> Error {
    Error::InvalidInput(format!(
        "{path} changed while silt was reading it; nothing was committed — run the command again once it is written"
    ))
}

/// Stamps `name` as holding `version` with `sha256`, as it was when hashed
/// (`size`, `mtime_ns`): an edit made since then still shows as a change.
///
/// Use it after a commit of what was hashed before the upload; [`stamp`]
/// would take the file's current size and time, hiding an edit made
/// meanwhile.
///
/// ```no_run,standalone_crate
/// use silt_extension::change::Committed;
/// use silt_extension::local::{self, LocalChange, Sidecar};
///
/// fn stamp_committed(sidecar: &mut Sidecar, pushed: &[LocalChange], committed: &Committed) {
///     for change in pushed {
///         if let LocalChange::Changed { name, size, sha256, mtime_ns, .. } = change
///             && let Some((_, entry)) = committed.entries.iter().find(|(n, _)| n == name)
///         {
///             local::stamp_as_hashed(sidecar, name, &entry.version, sha256, *size, *mtime_ns);
///         }
///     }
/// }
/// ```
pub fn stamp_as_hashed(
    sidecar: &mut Sidecar,
    name: &str,
    version: &str,
    sha256: &str,
    size: u64,
    mtime_ns: u64,
) {
    // What a killed pull was landing under this name is settled now.
    sidecar.landing.remove(name);
    sidecar.local.insert(
        name.to_owned(),
        Stamp {
            version: version.to_owned(),
            sha256: sha256.to_owned(),
            size,
            mtime_ns,
        },
    );
}

/// Downloads `items` into the cache (`object-store.download-landed`) and
/// answers each file's object metadata and the modification time it landed
/// with, to stamp it by [`stamp_as_hashed`] without a `stat` (a host call
/// each). Built for a contract before 0.7.1 (features `contract-0-6`,
/// `contract-0-7-0`), the time is `None`: stamp such a file by [`stamp`].
///
/// ```no_run,standalone_crate
/// use silt_extension::local::{self, Sidecar};
/// use silt_extension::silt::datastore::object_store::DownloadItem;
///
/// fn fetch(sidecar: &mut Sidecar, item: DownloadItem, name: &str, version: &str, sha256: &str) {
///     if let Some(Ok((meta, Some(mtime_ns)))) = local::download_landed(&[item]).pop() {
///         local::stamp_as_hashed(sidecar, name, version, sha256, meta.size, mtime_ns);
///     }
/// }
/// ```
pub fn download_landed(
    items: &[DownloadItem],
) -> Vec<Result<(ObjectMeta, Option<u64>), StoreError>> {
    #[cfg(not(any(feature = "contract-0-6", feature = "contract-0-7-0")))]
    {
        crate::silt::datastore::object_store::download_landed(items)
            .into_iter()
            .map(|result| result.map(|landed| (landed.meta, Some(landed.mtime_ns))))
            .collect()
    }
    #[cfg(any(feature = "contract-0-6", feature = "contract-0-7-0"))]
    {
        crate::silt::datastore::object_store::download(items)
            .into_iter()
            .map(|result| result.map(|meta| (meta, None)))
            .collect()
    }
}

/// Stamps the working copy's `name` as holding `version` with `sha256`.
///
/// For a file the datastore has just written (a download): it takes the
/// file's size and time as they are now. Nothing is stamped when the file
/// is missing.
///
/// ```no_run,standalone_crate
/// use silt_extension::layout::{self, DATA_AREA};
/// use silt_extension::local;
/// use silt_extension::partition::Entry;
/// use silt_extension::silt::datastore::object_store::{self, DownloadItem};
/// use silt_extension::silt::datastore::types::{Error, ModelRef};
/// use silt_extension::store;
///
/// fn fetch(model: &ModelRef, name: &str, entry: &Entry) -> Result<(), Error> {
///     let key = layout::object_key(DATA_AREA, model, name, &entry.version);
///     let item = DownloadItem {
///         key: key.clone(),
///         cache_path: layout::working_path(model, name),
///         expected_version: None,
///         sha256: Some(entry.sha256.clone()),
///     };
///     for result in object_store::download(&[item]) {
///         result.map_err(|err| store::error(&key, err))?;
///     }
///     let mut sidecar = local::load(DATA_AREA, model);
///     local::stamp(&mut sidecar, model, name, &entry.version, &entry.sha256);
///     local::save(DATA_AREA, model, &sidecar)
/// }
/// ```
pub fn stamp(sidecar: &mut Sidecar, model: &ModelRef, name: &str, version: &str, sha256: &str) {
    let path = layout::working_path(model, name);
    if let Some((size, mtime_ns)) = stat(&path) {
        stamp_as_hashed(sidecar, name, version, sha256, size, mtime_ns);
    }
}

/// Every model with a sidecar in `area` (models this cache has seen).
///
/// Sorted by type, then id.
///
/// ```no_run,standalone_crate
/// use silt_extension::layout::DATA_AREA;
/// use silt_extension::local;
/// # fn main() -> Result<(), silt_extension::silt::datastore::types::Error> {
/// // What a push looks at: only models this cache has seen can have local edits.
/// for model in local::known_models(DATA_AREA) {
///     let mut sidecar = local::load(DATA_AREA, &model);
///     let edits = local::changes(&model, &mut sidecar)?.len();
///     println!("{}: {edits} local changes", silt_extension::layout::model_label(&model));
/// }
/// # Ok(()) }
/// ```
pub fn known_models(area: &str) -> Vec<ModelRef> {
    let root = format!("{}/index/{area}", layout::CACHE_STATE_DIR);
    let mut models = Vec::new();
    let mut pending = vec![String::new()];
    while let Some(relative) = pending.pop() {
        let dir = format!("{root}/{relative}");
        let Ok(entries) = std::fs::read_dir(layout::in_cache(&dir)) else {
            continue;
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let path = if relative.is_empty() {
                name.clone()
            } else {
                format!("{relative}/{name}")
            };
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                pending.push(path);
            } else if let Some(stem) = path.strip_suffix(".json")
                && let Some((model_type, model_id)) = stem.rsplit_once('/')
            {
                models.push(ModelRef {
                    model_type: model_type.to_owned(),
                    model_id: model_id.to_owned(),
                });
            }
        }
    }
    models.sort_by(|a, b| (&a.model_type, &a.model_id).cmp(&(&b.model_type, &b.model_id)));
    models
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model(id: &str) -> ModelRef {
        ModelRef {
            model_type: "vision/detector".to_owned(),
            model_id: id.to_owned(),
        }
    }

    fn written(len: usize) -> Written {
        Written {
            bytes: vec![b'x'; len],
            store_version: Some("v1".to_owned()),
            complete: true,
        }
    }

    fn kept_bytes(saved: &Saved, area: &str, id: &str) -> Option<usize> {
        let key = (area.to_owned(), layout::model_label(&model(id)));
        saved.models[&key].1.as_ref().map(|w| w.bytes.len())
    }

    #[test]
    fn a_later_save_or_note_replaces_what_an_earlier_save_kept() {
        let mut saved = Saved::default();
        saved.note("data", &model("a"), Some(written(100)));
        saved.note("data", &model("b"), Some(written(50)));
        assert_eq!(saved.kept, 150);
        // Saved again: the newer bytes replace the older.
        saved.note("data", &model("a"), Some(written(70)));
        assert_eq!(saved.kept, 120);
        assert_eq!(kept_bytes(&saved, "data", "a"), Some(70));
        // Noted current afterwards: nothing of it is kept, so the flush parses it.
        saved.note("data", &model("a"), None);
        assert_eq!(saved.kept, 50);
        assert_eq!(kept_bytes(&saved, "data", "a"), None);
        assert_eq!(saved.models.len(), 2);
    }

    #[test]
    fn the_bound_keeps_the_model_but_not_its_bytes() {
        let mut saved = Saved::default();
        saved.note("data", &model("a"), Some(written(KEPT_FOR_FLUSH - 10)));
        saved.note("data", &model("b"), Some(written(20)));
        assert_eq!(saved.kept, KEPT_FOR_FLUSH - 10);
        assert_eq!(kept_bytes(&saved, "data", "b"), None, "over the bound");
        // Replacing the large one frees its share first.
        saved.note("data", &model("a"), Some(written(KEPT_FOR_FLUSH - 5)));
        assert_eq!(saved.kept, KEPT_FOR_FLUSH - 5);
        assert_eq!(saved.models.len(), 2);
    }

    #[test]
    fn a_flush_takes_its_own_area_only() {
        let mut saved = Saved::default();
        saved.note("data", &model("a"), Some(written(10)));
        saved.note("runs", &model("a"), Some(written(20)));
        saved.note("data", &model("b"), None);
        let taken = saved.take_area("data");
        assert_eq!(taken.len(), 2);
        assert_eq!(saved.kept, 20);
        assert_eq!(kept_bytes(&saved, "runs", "a"), Some(20));
        assert!(saved.take_area("data").is_empty());
    }
}
