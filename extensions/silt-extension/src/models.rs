//! The `models` interface: one file of one model at a time (`silt data`).
//! Reads go to the store's index, so they see the latest commit.
//!
//! Every [`Index`] implements it (and [`crate::export!`] exports it); an
//! extension can also call it, e.g. from its own checks:
//!
//! ```no_run,standalone_crate
//! use silt_extension::Index;
//! use silt_extension::exports::silt::datastore::models::Guest as _;
//! use silt_extension::silt::datastore::types::{Error, ModelRef};
//!
//! /// The model's files, as `silt data ls` lists them.
//! fn ls<I: Index>(model: ModelRef) -> Result<Vec<String>, Error> {
//!     Ok(I::list_files(model)?
//!         .into_iter()
//!         .map(|file| format!("{} ({} bytes, {} versions)", file.name, file.latest.size, file.versions))
//!         .collect())
//! }
//! ```

use crate::cache_file;
use crate::change::{self, Change, Committed};
use crate::clock;
use crate::exports::silt::datastore::models::{FileEntry, FileVersion, Guest};
use crate::layout::{self, DATA_AREA};
use crate::partition;
use crate::silt::datastore::object_store::{self, DownloadItem, PutMode, StoreError, UploadItem};
use crate::silt::datastore::types::{Base as WitBase, Committer, Error, Holder, Lease, ModelRef};
use crate::store;
use crate::{Index, hydrate, journal, local, log_warn, meta, summary, written_here};

/// The kept versions of `name`, oldest first, read from the store.
fn versions_of<I: Index>(model: &ModelRef, name: &str) -> Result<Vec<partition::Entry>, Error> {
    layout::check_model(model)?;
    let mut partition = I::read(model)?.partition;
    partition.files.remove(name).ok_or_else(|| {
        Error::NotFound(format!(
            "model {} has no file `{name}`",
            layout::model_label(model)
        ))
    })
}

/// Uploads the cache file at `cache_path` to `key`; returns the sha256
/// and size the commit records, which must be those of what was sent. The
/// host hashes what it sends (`object-store.upload-hashed`, 0.7.2) and
/// fails the upload if the file changed meanwhile. A `put-file` path under
/// `.silt/send/` (0.7.4) holds no file: only this reads it, and the host
/// sends the file the user gave.
#[cfg(not(any(feature = "contract-0-6", feature = "contract-0-7-0")))]
fn upload_version(key: &str, cache_path: &str) -> Result<(String, u64), Error> {
    let item = UploadItem {
        cache_path: cache_path.to_owned(),
        key: key.to_owned(),
        mode: PutMode::Create,
    };
    match object_store::upload_hashed(&[item]).pop() {
        Some(Ok(uploaded)) => Ok((uploaded.sha256, uploaded.size)),
        Some(Err(err)) => Err(store::error(key, err)),
        None => Err(Error::Backend(
            crate::silt::datastore::types::BackendFailure {
                retryable: false,
                detail: format!("{key}: the host answered no result for an upload"),
            },
        )),
    }
}

/// Uploads the cache file at `cache_path` to `key`; returns its sha256
/// and size, hashed here (a contract before 0.7.2 has no host hash) and
/// checked unchanged after the upload (the commit records the checksum the
/// upload must have read).
#[cfg(any(feature = "contract-0-6", feature = "contract-0-7-0"))]
fn upload_version(key: &str, cache_path: &str) -> Result<(String, u64), Error> {
    let (sha256, size, mtime_ns) = crate::cache_file::hash_stable(cache_path)?;
    let item = UploadItem {
        cache_path: cache_path.to_owned(),
        key: key.to_owned(),
        mode: PutMode::Create,
    };
    for result in object_store::upload(&[item]) {
        result.map_err(|err| store::error(key, err))?;
    }
    crate::cache_file::check_unchanged(cache_path, size, mtime_ns)?;
    Ok((sha256, size))
}

/// What fences a commit about to be made: the caller's lease, or (unleased)
/// the commit's announcement, made before anything is uploaded.
enum Fence<'a> {
    Lease(&'a Lease),
    Unleased(&'a Holder, journal::Announcement),
}

impl<'a> Fence<'a> {
    /// Checks the lease, or announces an unleased commit of `token` after
    /// checking that the index and the datastore take one (an index with a
    /// journal, in a datastore that keeps one; the metadata as cached here).
    fn prepare<T: Index>(model: &ModelRef, by: &'a Committer, token: &str) -> Result<Self, Error> {
        match by {
            Committer::Leased(lease) => {
                change::check_lease(lease, model)?;
                Ok(Self::Lease(lease))
            }
            Committer::Unleased(holder) => {
                if !T::UNLEASED || !meta::read_cached(T::KIND)?.journal() {
                    return Err(Error::NotSupported(format!(
                        "{}: this datastore commits only under the model's lease",
                        layout::model_label(model)
                    )));
                }
                Ok(Self::Unleased(holder, journal::announce(model, token)?))
            }
        }
    }

    /// Nothing will be committed: readers need not wait for the announcement.
    fn abandon(self) {
        if let Self::Unleased(_, announced) = self {
            announced.withdraw();
        }
    }

    /// Commits `change`, whose content (if any) was uploaded to
    /// `uploaded`; an unleased commit then remembers the slice it wrote, so
    /// the next one from here need not read it first.
    fn commit<T: Index>(
        self,
        model: &ModelRef,
        change: Change,
        uploaded: Option<&str>,
    ) -> Result<Committed, Error> {
        let committed = match self {
            Self::Lease(lease) => T::commit(model, lease, &[change])?,
            Self::Unleased(holder, announced) => {
                let known = written_here::known_slice(DATA_AREA, model);
                let committed = T::commit_unleased(model, holder, &[change], announced, known)
                    .inspect_err(|refused| {
                        // Refused for sure (only a store failure can leave a
                        // compare-and-swap's outcome unknown): the upload
                        // would be an orphan. The host may try again under
                        // the model's lease, with an upload of its own.
                        if let (Some(key), false) = (uploaded, matches!(refused, Error::Backend(_)))
                        {
                            let _ = store::delete(key);
                        }
                    })?;
                let written = partition::Versioned {
                    partition: committed.partition.clone(),
                    version: Some(committed.version.clone()),
                };
                written_here::remember(DATA_AREA, model, &written);
                committed
            }
        };
        Ok(committed)
    }
}

impl<T: Index> Guest for T {
    fn list_models() -> Result<Vec<ModelRef>, Error> {
        Ok(T::list()?.into_values().map(|(model, _)| model).collect())
    }

    fn list_files(model: ModelRef) -> Result<Vec<FileEntry>, Error> {
        layout::check_model(&model)?;
        let partition = T::read(&model)?.partition;
        Ok(partition
            .live_files()
            .map(|(name, latest)| FileEntry {
                name: name.clone(),
                latest: latest.to_wit(),
                versions: partition.files[name].len() as u32,
            })
            .collect())
    }

    fn history(model: ModelRef, name: String) -> Result<Vec<FileVersion>, Error> {
        let versions = versions_of::<T>(&model, &name)?;
        Ok(versions.iter().map(partition::Entry::to_wit).collect())
    }

    fn put_file(
        model: ModelRef,
        name: String,
        cache_path: String,
        base: WitBase,
        by: Committer,
    ) -> Result<FileVersion, Error> {
        layout::check_model(&model)?;
        layout::check_name(&name)?;
        let version = clock::version_token();
        // An unleased commit is announced before its upload: the
        // announcement is what keeps the upload from `collect-orphans`.
        let fence = Fence::prepare::<T>(&model, &by, &version)?;
        let key = layout::object_key(DATA_AREA, &model, &name, &version);
        let (sha256, size) = match upload_version(&key, &cache_path) {
            Ok(uploaded) => uploaded,
            Err(err) => {
                fence.abandon();
                return Err(err);
            }
        };
        let change = Change::Put {
            name,
            version: version.clone(),
            size,
            sha256,
            base: base.into(),
        };
        let committed = fence.commit::<T>(&model, change, Some(&key))?;
        if let Some((name, latest)) = committed.entries.first()
            && latest.version != version
        {
            // The latest version's content again: no new version, and this
            // upload is nobody's. Should the latest's object be missing,
            // this content (the same) restores it.
            restore_if_missing(
                &layout::object_key(DATA_AREA, &model, name, &latest.version),
                &cache_path,
                latest,
            );
            let _ = store::delete(&key);
        }
        if cache_path.starts_with(LENT_STAGING) {
            settle_put(&model, &cache_path, &committed);
        }
        Ok(committed.entries[0].1.to_wit())
    }

    fn get_file(
        model: ModelRef,
        name: String,
        version: Option<String>,
        cache_path: String,
    ) -> Result<FileVersion, Error> {
        let versions = versions_of::<T>(&model, &name)?;
        let entry = match &version {
            None => versions.last().expect("partitions never hold empty names"),
            Some(wanted) => versions
                .iter()
                .find(|entry| &entry.version == wanted)
                .ok_or_else(|| {
                    Error::NotFound(format!(
                        "{}: `{name}` has no version {wanted} (see its history; versions beyond the retention are dropped)",
                        layout::model_label(&model)
                    ))
                })?,
        };
        if entry.deleted {
            return Err(Error::NotFound(format!(
                "{}: `{name}` was removed in version {} by {}",
                layout::model_label(&model),
                entry.version,
                entry.writer
            )));
        }
        let key = layout::object_key(DATA_AREA, &model, &name, &entry.version);
        let item = DownloadItem {
            key: key.clone(),
            cache_path,
            expected_version: None,
            sha256: Some(entry.sha256.clone()),
        };
        if delivered(&item).map_err(|err| store::error(&key, err))? {
            return Ok(entry.to_wit());
        }
        for result in object_store::download(&[item]) {
            result.map_err(|err| store::error(&key, err))?;
        }
        Ok(entry.to_wit())
    }

    fn remove_file(
        model: ModelRef,
        name: String,
        base: WitBase,
        by: Committer,
    ) -> Result<FileVersion, Error> {
        layout::check_model(&model)?;
        let version = clock::version_token();
        let fence = Fence::prepare::<T>(&model, &by, &version)?;
        let change = Change::Remove {
            name,
            version,
            base: base.into(),
        };
        Ok(fence.commit::<T>(&model, change, None)?.entries[0]
            .1
            .to_wit())
    }
}

/// Where the host names a `get-file` it delivers itself (0.7.3).
const DELIVERY_DIR: &str = ".silt/deliver/";

/// Hands `item` to the host's `deliver` when its cache path names a
/// delivery: the bytes go where the user asked, never into the cache.
/// `false` when it is not one, or the host is not waiting for it
/// (`invalid-path`): the caller downloads into the cache path then.
#[cfg(not(any(feature = "contract-0-6", feature = "contract-0-7-0")))]
fn delivered(item: &DownloadItem) -> Result<bool, object_store::StoreError> {
    if !item.cache_path.starts_with(DELIVERY_DIR) {
        return Ok(false);
    }
    match object_store::deliver(item) {
        Ok(_) => Ok(true),
        Err(object_store::StoreError::InvalidPath(_)) => Ok(false),
        Err(err) => Err(err),
    }
}

/// Contracts before 0.7.3 have no `deliver`: always into the cache.
#[cfg(any(feature = "contract-0-6", feature = "contract-0-7-0"))]
fn delivered(item: &DownloadItem) -> Result<bool, object_store::StoreError> {
    let _ = (item, DELIVERY_DIR);
    Ok(false)
}

/// Where silt lends a `put-file` its staged file while it holds the
/// model's working copy for the call: only then does the SDK bring the
/// working copy along with the commit, as nothing else of this working
/// copy touches the model meanwhile.
pub const LENT_STAGING: &str = ".silt/staging/lent/";

/// After a `put-file` committed as `committed`: when the working copy was
/// at the slice this cache holds and that commit is the only change since,
/// the sidecar moves to it, so that `status` does not report one's own
/// commit as the store's. The committed content is moved from `staged`
/// into the working copy when the file there is the version it replaces
/// (or absent and never here, in a model whose files are all present); a
/// file edited or deleted here is left alone, and so is the sidecar (a
/// pull settles it). Only for a file lent under [`LENT_STAGING`]. Never
/// fails the put: the commit landed, and the next pull does whatever this
/// did not.
fn settle_put(model: &ModelRef, staged: &str, committed: &Committed) {
    let [(name, entry)] = committed.entries.as_slice() else {
        return;
    };
    let mut sidecar = local::load(DATA_AREA, model);
    let prior = sidecar
        .partition
        .clone()
        .unwrap_or_else(|| partition::Partition::empty(DATA_AREA, model));
    // Every other file here at its latest version in `prior` (a sidecar may
    // hold a newer slice than its files: see `hydrate::keep_slice_only`).
    let at_prior = sidecar.local.iter().all(|(stamped, stamp)| {
        stamped == name
            || prior
                .live(stamped)
                .is_some_and(|latest| latest.version == stamp.version)
    });
    if !at_prior || !only_this_commit(&prior, committed) {
        return;
    }
    let path = layout::working_path(model, name);
    let place = match (cache_file::stat(&path), sidecar.local.contains_key(name)) {
        (None, false) => local::all_stamped(&sidecar),
        // Deleted here: a removal to push, not a file to bring back.
        (None, true) => return,
        // Replaced only when it is the version the commit replaced.
        (Some(_), true) if matches!(hydrate::unmodified(&mut sidecar, model, name), Ok(true)) => {
            true
        }
        // Edited here, or a file of this name nobody committed from here.
        (Some(_), _) => return,
    };
    if place && !place_committed(&mut sidecar, model, name, entry, staged) {
        return;
    }
    sidecar.partition = Some(committed.partition.clone());
    sidecar.store_version = Some(committed.version.clone());
    let mut update = summary::Update::begin(DATA_AREA);
    if update
        .save(model, &sidecar)
        .and_then(|()| update.finish())
        .is_err()
    {
        log_warn(&format!(
            "{}: committed, but this cache's record of it could not be saved; the next pull settles it",
            layout::model_label(model)
        ));
    }
}

/// Uploads `cache_path` (the content of `latest`) to `key` when the store
/// has no object there: a put of the latest content repairs what `verify`
/// reports missing instead of answering the broken entry. Best effort.
fn restore_if_missing(key: &str, cache_path: &str, latest: &partition::Entry) {
    if !matches!(object_store::head(key), Err(StoreError::NotFound)) {
        return;
    }
    match upload_version(key, cache_path) {
        Ok((sha256, size)) if sha256 == latest.sha256 && size == latest.size => {
            log_warn(&format!(
                "{key} was missing; restored from the content put again"
            ));
        }
        Ok(_) => {
            let _ = store::delete(key);
        }
        Err(_) => {}
    }
}

/// True when `committed` is `prior` with this commit's entries added and
/// the versions it expired dropped: nobody else committed in between.
fn only_this_commit(prior: &partition::Partition, committed: &Committed) -> bool {
    let mut expected = prior.files.clone();
    for (name, entry) in &committed.entries {
        let versions = expected.entry(name.clone()).or_default();
        // A put of the latest content again added nothing.
        if versions.last() != Some(entry) {
            versions.push(entry.clone());
        }
    }
    for (name, gone) in &committed.expired {
        if let Some(versions) = expected.get_mut(name) {
            versions.retain(|entry| entry != gone);
            if versions.is_empty() {
                expected.remove(name);
            }
        }
    }
    expected == committed.partition.files
}

/// Moves the staged file into the working copy as `name` at `entry`,
/// recorded as landing first (a put killed after the move leaves a file
/// the next command knows for this version) and stamped after. False when
/// it could not be moved (the file there is then as it was).
fn place_committed(
    sidecar: &mut local::Sidecar,
    model: &ModelRef,
    name: &str,
    entry: &partition::Entry,
    staged: &str,
) -> bool {
    let path = layout::working_path(model, name);
    sidecar.landing.insert(
        name.to_owned(),
        local::Landing {
            version: entry.version.clone(),
            sha256: entry.sha256.clone(),
            size: entry.size,
        },
    );
    if local::save_unsynced(DATA_AREA, model, sidecar).is_err() {
        sidecar.landing.remove(name);
        return false;
    }
    let target = layout::in_cache(&path);
    let moved = std::path::Path::new(&target)
        .parent()
        .map_or(Ok(()), std::fs::create_dir_all)
        .and_then(|()| std::fs::rename(layout::in_cache(staged), &target));
    if moved.is_err() {
        sidecar.landing.remove(name);
        return false;
    }
    // Moved: the landing record (saved) says what the file is until stamped.
    match cache_file::stat(&path) {
        Some((size, mtime_ns)) => {
            local::stamp_as_hashed(sidecar, name, &entry.version, &entry.sha256, size, mtime_ns);
            true
        }
        None => false,
    }
}
