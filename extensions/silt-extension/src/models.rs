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

use crate::change::{self, Change};
use crate::clock;
use crate::exports::silt::datastore::models::{FileEntry, FileVersion, Guest};
use crate::layout::{self, DATA_AREA};
use crate::partition;
use crate::silt::datastore::object_store::{self, DownloadItem, PutMode, UploadItem};
use crate::silt::datastore::types::{Base as WitBase, Error, Lease, ModelRef};
use crate::store;
use crate::{Index, local};

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
        lease: Lease,
    ) -> Result<FileVersion, Error> {
        layout::check_model(&model)?;
        layout::check_name(&name)?;
        change::check_lease(&lease, &model)?;
        let (sha256, size, mtime_ns) = local::hash_stable(&cache_path)?;
        let version = clock::version_token();
        let key = layout::object_key(DATA_AREA, &model, &name, &version);
        let item = UploadItem {
            cache_path: cache_path.clone(),
            key: key.clone(),
            mode: PutMode::Create,
        };
        for result in object_store::upload(&[item]) {
            result.map_err(|err| store::error(&key, err))?;
        }
        // Committed under the checksum it was hashed with: the upload must
        // have read the same bytes.
        local::check_unchanged(&cache_path, size, mtime_ns)?;
        let change = Change::Put {
            name: name.clone(),
            version,
            size,
            sha256,
            base: base.into(),
        };
        let committed = T::commit(&model, &lease, &[change])?;
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
        for result in object_store::download(&[item]) {
            result.map_err(|err| store::error(&key, err))?;
        }
        Ok(entry.to_wit())
    }

    fn remove_file(
        model: ModelRef,
        name: String,
        base: WitBase,
        lease: Lease,
    ) -> Result<FileVersion, Error> {
        layout::check_model(&model)?;
        change::check_lease(&lease, &model)?;
        let change = Change::Remove {
            name,
            version: clock::version_token(),
            base: base.into(),
        };
        let committed = T::commit(&model, &lease, &[change])?;
        Ok(committed.entries[0].1.to_wit())
    }
}
