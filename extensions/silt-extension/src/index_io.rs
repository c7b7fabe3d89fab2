//! The index's object I/O beside its plain types: reading partitions
//! from the store (one, or many in one bulk download) and deleting the
//! objects of versions a commit dropped. [`crate::partition`] and
//! [`crate::change`] stay pure data and rules; what touches the store for
//! them is here.

use crate::Fresh;
use crate::cache_file;
use crate::layout::{self, DATA_AREA};
use crate::partition::{Entry, Partition, Versioned};
use crate::silt::datastore::types::{Error, ModelRef};
use crate::store;

/// Reads the partition object at `key` for `model`, unless it is still at
/// `known` (one conditional GET): the read of an index that keeps one
/// object per model.
///
/// ```no_run,standalone_crate
/// use silt_extension::layout::DATA_AREA;
/// use silt_extension::index_io;
/// use silt_extension::silt::datastore::types::{Error, ModelRef};
/// use silt_extension::Fresh;
///
/// fn partition_key(model: &ModelRef) -> String {
///     format!("_my-index/{}/{}.json", model.model_type, model.model_id)
/// }
///
/// // The whole of `Index::read_if_changed` for an index with one object per model.
/// fn read_if_changed(model: &ModelRef, known: Option<&str>) -> Result<Fresh, Error> {
///     index_io::read_object(&partition_key(model), DATA_AREA, model, known)
/// }
/// ```
///
/// # Errors
/// When the store fails or the object is not a partition of `model`.
pub fn read_object(
    key: &str,
    area: &str,
    model: &ModelRef,
    known: Option<&str>,
) -> Result<Fresh, Error> {
    use crate::store::Conditional;
    Ok(match store::get_if_changed(key, known)? {
        Conditional::Unchanged => Fresh::Unchanged,
        Conditional::Changed(found) => Fresh::Changed(Versioned {
            partition: Partition::parse(key, &found.data, area, model)?,
            version: Some(found.version),
        }),
        Conditional::Missing => Fresh::Missing,
    })
}

/// Reads several models' partitions whole — a first read, no version
/// known — at once: one bulk `download` of `(key, model)` pairs into the
/// cache's temporary directory, which the host fetches concurrently (up to
/// its transfer limit), then each file is parsed and removed. A cold
/// clone's hydration reads a batch's partitions this way instead of one GET
/// after another inside the guest. One result per pair, in order.
///
/// ```no_run,standalone_crate
/// use silt_extension::Fresh;
/// use silt_extension::index_io;
/// use silt_extension::silt::datastore::types::ModelRef;
///
/// let m = ModelRef { model_type: "vision/detector".into(), model_id: "m-42".into() };
/// let wanted = vec![("_index/data/vision/detector/m-42.json".to_owned(), m)];
/// for read in index_io::read_objects(&wanted, "data") {
///     match read {
///         Ok(Fresh::Changed(versioned)) => println!("{} names", versioned.partition.files.len()),
///         Ok(_) => println!("no partition yet"),
///         Err(err) => println!("{err:?}"),
///     }
/// }
/// ```
pub fn read_objects(wanted: &[(String, ModelRef)], area: &str) -> Vec<Result<Fresh, Error>> {
    use crate::silt::datastore::object_store::{self, DownloadItem, StoreError};
    if wanted.is_empty() {
        return Vec::new();
    }
    // Unique across concurrent calls sharing this cache.
    let batch = crate::clock::random_hex();
    let items: Vec<DownloadItem> = wanted
        .iter()
        .enumerate()
        .map(|(i, (key, _))| DownloadItem {
            key: key.clone(),
            cache_path: format!("{}/partition-{batch}-{i}.json", cache_file::TEMP_DIR),
            expected_version: None,
            sha256: None,
        })
        .collect();
    let results = object_store::download(&items);
    wanted
        .iter()
        .zip(items.iter().zip(results))
        .map(|((key, model), (item, result))| {
            let meta = match result {
                Ok(meta) => meta,
                Err(StoreError::NotFound) => return Ok(Fresh::Missing),
                Err(err) => return Err(store::error(key, err)),
            };
            let data = cache_file::read_file(&item.cache_path);
            let _ = std::fs::remove_file(layout::in_cache(&item.cache_path));
            let data = data.map_err(|err| {
                Error::InvalidInput(format!(
                    "cannot read the downloaded partition {}: {err}",
                    item.cache_path
                ))
            })?;
            Ok(Fresh::Changed(Versioned {
                partition: Partition::parse(key, &data, area, model)?,
                version: Some(meta.version),
            }))
        })
        .collect()
}

/// Deletes the objects of versions the retention or gc dropped. Best
/// effort: the commit has landed, and an object left behind is only wasted
/// space. Returns the objects deleted and their bytes.
///
/// ```no_run,standalone_crate
/// use silt_extension::change::Applied;
/// use silt_extension::index_io;
/// use silt_extension::silt::datastore::types::ModelRef;
/// use silt_extension::store::Written;
///
/// fn after_write(model: &ModelRef, written: Written, applied: &Applied) -> Option<(u64, u64)> {
///     match written {
///         // Landed: nothing refers to the dropped versions any more.
///         Written::Landed(_) => Some(index_io::delete_dropped(model, &applied.dropped)),
///         // Lost: the slice in the store still lists them; keep their objects.
///         Written::Lost => None,
///     }
/// }
/// ```
pub fn delete_dropped(model: &ModelRef, dropped: &[(String, Entry)]) -> (u64, u64) {
    let mut deleted = (0, 0);
    for (name, entry) in dropped.iter().filter(|(_, entry)| !entry.deleted) {
        let key = layout::object_key(DATA_AREA, model, name, &entry.version);
        match store::delete(&key) {
            Ok(()) => {
                deleted.0 += 1;
                deleted.1 += entry.size;
            }
            Err(err) => crate::log_warn(&format!(
                "could not delete {key} of an expired version (left behind, harmless): {err:?}"
            )),
        }
    }
    deleted
}
