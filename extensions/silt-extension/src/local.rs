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
//! /// The working-copy paths of the model's files changed since the last
//! /// sync (read only: the refreshed stamps are not saved).
//! fn edited(model: &ModelRef) -> Result<Vec<String>, Error> {
//!     let mut sidecar = local::load(DATA_AREA, model);
//!     let changes = local::changes(model, &mut sidecar)?;
//!     Ok(changes.iter().map(|change| layout::working_path(model, change.name())).collect())
//! }
//! ```

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::cache_file;
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
///         LocalChange::Unhashed { name, .. } => format!("touched, perhaps modified: {name}"),
///         LocalChange::Removed { name, .. } => format!("removed: {name}"),
///         other => format!("changed: {}", other.name()),
///     }
/// }
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum LocalChange {
    /// New or modified content.
    Changed {
        /// File name within the model.
        name: String,
        /// Its size.
        size: u64,
        /// Its sha256.
        sha256: String,
        /// Its modification time when hashed, the one its stamp gets after
        /// the commit (0 when it is not known to match the content: the
        /// next scan then looks again).
        mtime_ns: u64,
        /// The version the edit was made from: the stamped one, or
        /// [`Base::Absent`] for a file new here.
        base: Base,
    },
    /// Content on disk that differs from its stamp (or a file new here),
    /// not hashed yet: [`changes_to_upload`] leaves hashing to the upload,
    /// whose answer says whether it is new content ([`resolve_uploaded`]).
    Unhashed {
        /// File name within the model.
        name: String,
        /// Its size when scanned.
        size: u64,
        /// Its modification time when scanned.
        mtime_ns: u64,
        /// As [`LocalChange::Changed`]'s.
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
            LocalChange::Changed { name, .. }
            | LocalChange::Unhashed { name, .. }
            | LocalChange::Removed { name, .. } => name,
        }
    }
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
    match cache_file::read_file(&path) {
        Ok(bytes) => parse_sidecar(&path, &bytes),
        Err(_) => Sidecar::default(),
    }
}

/// The sidecar `bytes` read from `path` hold; an unreadable one is logged
/// and taken as missing.
pub(crate) fn parse_sidecar(path: &str, bytes: &[u8]) -> Sidecar {
    serde_json::from_slice(bytes).unwrap_or_else(|err| {
        log::log(
            log::Level::Warn,
            &format!("ignoring unreadable sidecar {path} ({err}); it will be rebuilt"),
        );
        Sidecar::default()
    })
}

/// Writes `model`'s sidecar atomically (temporary file, then rename) and
/// answers its bytes; `None`, writing nothing, when the file already holds
/// exactly this sidecar (a pull that changed nothing skips the write and its
/// fsync). Saving goes through [`crate::summary::Update::save`], which
/// records what was written in the area's summary.
pub(crate) fn write_sidecar(
    area: &str,
    model: &ModelRef,
    sidecar: &Sidecar,
) -> Result<Option<Vec<u8>>, Error> {
    let path = layout::sidecar_path(area, model);
    let bytes = serde_json::to_vec(sidecar).expect("a sidecar serializes");
    if cache_file::read_file(&path).is_ok_and(|on_disk| on_disk == bytes) {
        return Ok(None);
    }
    cache_file::write_atomic(&path, &bytes)?;
    Ok(Some(bytes))
}

/// Writes `model`'s sidecar without syncing it, and without noting it for
/// the summary: a record of work under way (see [`Sidecar::landing`]),
/// which the call's final [`crate::summary::Update::save`] replaces.
///
/// # Errors
/// When the sidecar cannot be written.
pub fn save_unsynced(area: &str, model: &ModelRef, sidecar: &Sidecar) -> Result<(), Error> {
    let path = layout::sidecar_path(area, model);
    let bytes = serde_json::to_vec(sidecar).expect("a sidecar serializes");
    cache_file::write_atomic_unsynced(&path, &bytes)
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
            Err(err) => return Err(cache_file::io_error(&dir, err)),
        };
        for entry in entries {
            let entry = entry.map_err(|err| cache_file::io_error(&dir, err))?;
            let file_name = entry.file_name().to_string_lossy().into_owned();
            if layout::is_transfer_temp(&file_name) {
                continue;
            }
            let name = if relative.is_empty() {
                file_name
            } else {
                format!("{relative}/{file_name}")
            };
            let kind = entry
                .file_type()
                .map_err(|err| cache_file::io_error(&dir, err))?;
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
/// As [`scan`] and [`cache_file::hash_stable`].
///
/// ```no_run,standalone_crate
/// use silt_extension::layout::DATA_AREA;
/// use silt_extension::local::{self, LocalChange};
/// use silt_extension::summary;
/// # fn main() -> Result<(), silt_extension::silt::datastore::types::Error> {
/// # let model = silt_extension::silt::datastore::types::ModelRef { model_type: "vision/detector".into(), model_id: "m-42".into() };
/// let mut update = summary::Update::begin(DATA_AREA);
/// let mut sidecar = local::load(DATA_AREA, &model);
/// for change in local::changes(&model, &mut sidecar)? {
///     match change {
///         LocalChange::Changed { name, size, .. } => println!("to upload: {name} ({size} bytes)"),
///         LocalChange::Removed { name, .. } => println!("to remove: {name}"),
///         // Only `changes_to_upload` leaves files unhashed.
///         _ => {}
///     }
/// }
/// update.save(&model, &sidecar)?; // the refreshed stamps save re-hashing next time
/// update.finish()
/// # }
/// ```
pub fn changes(model: &ModelRef, sidecar: &mut Sidecar) -> Result<Vec<LocalChange>, Error> {
    scan_changes(model, sidecar, HashHere::Yes)
}

/// [`changes`] for a push, which sends what changed anyway: a file whose
/// stamp is stale is not hashed here but left [`LocalChange::Unhashed`], and
/// its upload answers the hash (`object-store.upload-hashed`: the host
/// hashes what it sends, natively, instead of reading the file in the
/// guest first). A file touched but not changed is then uploaded for
/// nothing; [`resolve_uploaded`] tells it from an edit. Before contract
/// 0.7.2 (no `upload-hashed`), the same as [`changes`].
///
/// # Errors
/// As [`changes`].
pub fn changes_to_upload(
    model: &ModelRef,
    sidecar: &mut Sidecar,
) -> Result<Vec<LocalChange>, Error> {
    #[cfg(not(any(feature = "contract-0-6", feature = "contract-0-7-0")))]
    let hash = HashHere::No;
    #[cfg(any(feature = "contract-0-6", feature = "contract-0-7-0"))]
    let hash = HashHere::Yes;
    scan_changes(model, sidecar, hash)
}

/// Whether [`scan_changes`] hashes a file whose stamp is stale.
#[derive(Clone, Copy, PartialEq, Eq)]
enum HashHere {
    Yes,
    #[cfg_attr(
        any(feature = "contract-0-6", feature = "contract-0-7-0"),
        allow(dead_code)
    )]
    No,
}

fn scan_changes(
    model: &ModelRef,
    sidecar: &mut Sidecar,
    hash: HashHere,
) -> Result<Vec<LocalChange>, Error> {
    let present = scan(model)?;
    let mut changes = Vec::new();
    for name in &present {
        let path = layout::working_path(model, name);
        let Some((size, mtime_ns)) = cache_file::stat(&path) else {
            continue;
        };
        let stamp = sidecar.local.get(name);
        if stamp.is_some_and(|s| s.size == size && s.mtime_ns == mtime_ns) {
            continue;
        }
        let base = stamp.map_or(Base::Absent, |s| Base::Version(s.version.clone()));
        // A base the slice last read no longer holds is hashed here: its
        // content may be a committed version (restored bytes, a partial
        // pull), which is no conflict, and only its hash can say so before
        // anything is sent. Every file left unhashed is then an edit
        // of a base that holds, or no edit at all.
        let latest = sidecar.partition.as_ref().and_then(|p| p.latest(name));
        if hash == HashHere::No && base.holds(latest) {
            changes.push(LocalChange::Unhashed {
                name: name.clone(),
                size,
                mtime_ns,
                base,
            });
            continue;
        }
        let (sha256, size, mtime_ns) = cache_file::hash_stable(&path)?;
        match known_version(sidecar, name, &sha256, size) {
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

/// The committed version whose content `name` holds, hashed to `sha256`:
/// the stamped one, any the slice lists (the latest, or an older one a lost
/// sidecar or a killed pull left unstamped), or the one a killed pull's
/// record names even when it has expired from the index since. Such
/// content is never an edit, only a stamp to refresh: hydration then brings
/// an older version up to date instead of pushing it back over newer ones
/// (to bring an old version back, commit it with `silt data put`).
fn known_version(sidecar: &mut Sidecar, name: &str, sha256: &str, size: u64) -> Option<String> {
    let known = match sidecar.local.get(name) {
        Some(stamp) if stamp.sha256 == sha256 => Some(stamp.version.clone()),
        _ => sidecar
            .partition
            .as_ref()
            .and_then(|p| p.version_with_sha256(name, sha256))
            .map(|entry| entry.version.clone()),
    };
    known.or_else(|| landed_version(sidecar, name, sha256, size))
}

/// What an [`LocalChange::Unhashed`] file turned out to be, once its
/// upload answered its `sha256` and `size`: an edit
/// ([`LocalChange::Changed`], to commit), or the content of a committed
/// version (`None`: stamped so in `sidecar`, its upload nobody's). The
/// stamp keeps the scan's modification time only if the file still has
/// it, at the size sent: else 0, so the next scan looks again (the file
/// may have been rewritten between the scan and the upload).
///
/// ```no_run,standalone_crate
/// use silt_extension::local::{self, LocalChange, Sidecar};
/// use silt_extension::silt::datastore::types::ModelRef;
///
/// fn after_upload(model: &ModelRef, sidecar: &mut Sidecar, change: LocalChange, sha256: &str, size: u64) -> Option<LocalChange> {
///     local::resolve_uploaded(model, sidecar, change, sha256, size)
/// }
/// ```
pub fn resolve_uploaded(
    model: &ModelRef,
    sidecar: &mut Sidecar,
    change: LocalChange,
    sha256: &str,
    size: u64,
) -> Option<LocalChange> {
    let LocalChange::Unhashed {
        name,
        mtime_ns,
        base,
        ..
    } = change
    else {
        return Some(change);
    };
    let path = layout::working_path(model, &name);
    let mtime_ns = match cache_file::stat(&path) {
        Some(now) if now == (size, mtime_ns) => mtime_ns,
        _ => 0,
    };
    match known_version(sidecar, &name, sha256, size) {
        Some(version) => {
            stamp_as_hashed(sidecar, &name, &version, sha256, size, mtime_ns);
            None
        }
        None => Some(LocalChange::Changed {
            name,
            size,
            sha256: sha256.to_owned(),
            mtime_ns,
            base,
        }),
    }
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
/// use silt_extension::{local, summary};
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
///     let mut update = summary::Update::begin(DATA_AREA);
///     let mut sidecar = local::load(DATA_AREA, model);
///     local::stamp(&mut sidecar, model, name, &entry.version, &entry.sha256);
///     update.save(model, &sidecar)?;
///     update.finish()
/// }
/// ```
pub fn stamp(sidecar: &mut Sidecar, model: &ModelRef, name: &str, version: &str, sha256: &str) {
    let path = layout::working_path(model, name);
    if let Some((size, mtime_ns)) = cache_file::stat(&path) {
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

    fn model() -> ModelRef {
        ModelRef {
            model_type: "t".into(),
            model_id: "m".into(),
        }
    }

    fn unhashed(name: &str, base: Base) -> LocalChange {
        LocalChange::Unhashed {
            name: name.to_owned(),
            size: 3,
            mtime_ns: 42,
            base,
        }
    }

    fn stamped(version: &str, sha256: &str) -> Stamp {
        Stamp {
            version: version.to_owned(),
            sha256: sha256.to_owned(),
            size: 3,
            mtime_ns: 1,
        }
    }

    #[test]
    fn an_uploaded_file_with_its_stamps_content_is_restamped_not_committed() {
        let mut sidecar = Sidecar::default();
        sidecar.local.insert("f".into(), stamped("v1", "aaa"));
        let base = Base::Version("v1".into());
        assert!(resolve_uploaded(&model(), &mut sidecar, unhashed("f", base), "aaa", 3).is_none());
        let stamp = &sidecar.local["f"];
        // No such file here: not known to be as scanned, looked at again.
        assert_eq!((stamp.version.as_str(), stamp.mtime_ns), ("v1", 0));
    }

    #[test]
    fn an_uploaded_file_a_killed_pull_landed_is_that_version() {
        let mut sidecar = Sidecar::default();
        let landing = Landing {
            version: "v0".into(),
            sha256: "bbb".into(),
            size: 3,
        };
        sidecar.landing.insert("f".into(), landing);
        let change = unhashed("f", Base::Absent);
        assert!(resolve_uploaded(&model(), &mut sidecar, change, "bbb", 3).is_none());
        assert_eq!(sidecar.local["f"].version, "v0");
        assert!(sidecar.landing.is_empty(), "the record is consumed");
    }

    #[test]
    fn an_uploaded_file_with_new_content_is_an_edit_of_its_base() {
        let mut sidecar = Sidecar::default();
        sidecar.local.insert("f".into(), stamped("v1", "aaa"));
        let base = Base::Version("v1".into());
        let edit = resolve_uploaded(
            &model(),
            &mut sidecar,
            unhashed("f", base.clone()),
            "ccc",
            3,
        );
        match edit {
            Some(LocalChange::Changed {
                name,
                sha256,
                size,
                mtime_ns,
                base: edited,
            }) => {
                assert_eq!(
                    (name.as_str(), sha256.as_str(), size, mtime_ns),
                    ("f", "ccc", 3, 0)
                );
                assert_eq!(edited, base);
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            sidecar.local["f"].sha256, "aaa",
            "the stamp waits for the commit"
        );
    }
}
