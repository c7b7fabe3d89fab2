//! One model's slice of the index: every file of the model, with the
//! versions the retention keeps, and the fence that shuts out old lease
//! holders. The partitioned index stores each slice as its own object; the
//! monolithic one holds them all in one.
//!
//! ```no_run,standalone_crate
//! use silt_extension::Index;
//! use silt_extension::silt::datastore::types::{Error, ModelRef};
//!
//! /// `name -> size` of the model's files as last committed.
//! fn sizes<I: Index>(model: &ModelRef) -> Result<Vec<(String, u64)>, Error> {
//!     let slice = I::read(model)?.partition;
//!     Ok(slice.live_files().map(|(name, latest)| (name.clone(), latest.size)).collect())
//! }
//! ```

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::exports::silt::datastore::models::FileVersion;
use crate::layout;
use crate::silt::datastore::types::{Error, ModelRef};
use crate::store;

/// One model's slice of the index (the partitioned index stores it at
/// `_index/<area>/<type>/<id>.json`).
///
/// ```no_run,standalone_crate
/// use silt_extension::partition::Partition;
/// use silt_extension::silt::datastore::types::{Error, Lease};
///
/// /// Refuses a commit under a lease that a newer one has taken over.
/// fn check_fence(slice: &Partition, lease: &Lease) -> Result<(), Error> {
///     let ours = slice.fence == lease.generation && slice.fence_token == lease.token;
///     if slice.fence > lease.generation || (slice.fence == lease.generation && !ours) {
///         return Err(Error::LockLost(format!("taken over at generation {}", slice.fence)));
///     }
///     Ok(())
/// }
/// ```
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Partition {
    /// The layout version (same as the datastore's).
    pub layout: u32,
    /// `data`, `runs`, ...
    pub area: String,
    /// The model's type.
    pub model_type: String,
    /// The model's id.
    pub model_id: String,
    /// The highest lease generation that has taken this model. A commit
    /// fenced by a lower generation is refused (its lease was taken over).
    pub fence: u64,
    /// The owner token of the lease that raised the fence last.
    pub fence_token: String,
    /// Commits so far (diagnostics; the store version is what is compared).
    pub seq: u64,
    /// The token of the last commit that added no entry (a gc), so that
    /// `put-owned` can recognise it. Such a commit is idempotent: if a later
    /// commit overwrote this and ours is re-applied, nothing changes twice.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub last_commit: String,
    /// Versions of each name, oldest first; the last is the latest.
    pub files: BTreeMap<String, Vec<Entry>>,
}

/// One version of one file.
///
/// ```no_run,standalone_crate
/// # use silt_extension::partition::Partition;
/// # fn show(slice: &Partition) {
/// for (name, versions) in &slice.files {
///     for entry in versions {
///         let what = if entry.deleted { "removed" } else { "written" };
///         println!("{name} {}: {what} by {} (generation {})", entry.version, entry.writer, entry.generation);
///     }
/// }
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// Version token (also the last segment of the object key).
    pub version: String,
    /// Size in bytes.
    pub size: u64,
    /// Lowercase hex sha256 of the content.
    pub sha256: String,
    /// Lease generation of the commit.
    pub generation: u64,
    /// `user@host` of the committer.
    pub writer: String,
    /// Commit time, ms since the epoch.
    pub committed_at: u64,
    /// A tombstone: the name was removed by this version.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub deleted: bool,
}

impl Entry {
    /// The WIT view of this entry.
    ///
    /// ```no_run,standalone_crate
    /// use silt_extension::exports::silt::datastore::models::FileVersion;
    /// use silt_extension::partition::Partition;
    ///
    /// // What `models.history` answers.
    /// fn history(slice: &Partition, name: &str) -> Vec<FileVersion> {
    ///     slice.files.get(name).into_iter().flatten().map(|entry| entry.to_wit()).collect()
    /// }
    /// ```
    pub fn to_wit(&self) -> FileVersion {
        FileVersion {
            version: self.version.clone(),
            size: self.size,
            sha256: self.sha256.clone(),
            generation: self.generation,
            writer: self.writer.clone(),
            committed_at: self.committed_at,
            deleted: self.deleted,
        }
    }
}

/// A partition and the store version it was read at (`None`: not in the store yet).
///
/// ```no_run,standalone_crate
/// use silt_extension::Index;
/// use silt_extension::partition::Versioned;
/// use silt_extension::silt::datastore::object_store::PutMode;
/// # use silt_extension::silt::datastore::types::{Error, ModelRef};
/// # fn f<I: Index>(model: &ModelRef) -> Result<(), Error> {
/// let Versioned { partition: mut next, version } = I::read(model)?;
/// next.seq += 1;
/// // Write it back only if nobody else has since.
/// let mode = match version {
///     Some(version) => PutMode::Update(version),
///     None => PutMode::Create,
/// };
/// # let _ = (next, mode);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Versioned {
    /// The partition (empty when it does not exist yet).
    pub partition: Partition,
    /// Its store version.
    pub version: Option<String>,
}

impl Partition {
    /// An empty partition for `model` in `area`.
    ///
    /// ```no_run,standalone_crate
    /// use silt_extension::layout::DATA_AREA;
    /// use silt_extension::partition::Partition;
    /// use std::collections::BTreeMap;
    /// # let model = silt_extension::silt::datastore::types::ModelRef { model_type: "vision/detector".into(), model_id: "m-42".into() };
    ///
    /// // A whole-index kind (one object for all models): each model's slice, by label.
    /// let mut models: BTreeMap<String, Partition> = BTreeMap::new();
    /// let slice = models
    ///     .entry(silt_extension::layout::model_label(&model))
    ///     .or_insert_with(|| Partition::empty(DATA_AREA, &model));
    /// assert!(slice.files.is_empty() && slice.fence == 0);
    /// ```
    pub fn empty(area: &str, model: &ModelRef) -> Self {
        Self {
            layout: crate::meta::LAYOUT_VERSION,
            area: area.to_owned(),
            model_type: model.model_type.clone(),
            model_id: model.model_id.clone(),
            fence: 0,
            fence_token: String::new(),
            seq: 0,
            last_commit: String::new(),
            files: BTreeMap::new(),
        }
    }

    /// Parses a partition read from `key`, checking it describes `area`/`model`.
    ///
    /// # Errors
    /// `corrupt` naming `key` when it does not parse, describes another
    /// model or area, or holds a name without versions.
    ///
    /// ```no_run,standalone_crate
    /// use silt_extension::layout::DATA_AREA;
    /// use silt_extension::partition::Partition;
    /// use silt_extension::store;
    /// # fn main() -> Result<(), silt_extension::silt::datastore::types::Error> {
    /// # let model = silt_extension::silt::datastore::types::ModelRef { model_type: "vision/detector".into(), model_id: "m-42".into() };
    /// let key = "_my-index/vision/detector/m-42.json";
    /// let slice = match store::get(key)? {
    ///     Some(found) => Partition::parse(key, &found.data, DATA_AREA, &model)?,
    ///     None => Partition::empty(DATA_AREA, &model),
    /// };
    /// # let _ = slice;
    /// # Ok(()) }
    /// ```
    pub fn parse(key: &str, data: &[u8], area: &str, model: &ModelRef) -> Result<Self, Error> {
        let partition: Partition =
            serde_json::from_slice(data).map_err(|err| store::corrupt(key, err))?;
        if partition.area != area
            || partition.model_type != model.model_type
            || partition.model_id != model.model_id
        {
            return Err(store::corrupt(
                key,
                format!(
                    "describes {}/{}/{} instead of {area}/{}",
                    partition.area,
                    partition.model_type,
                    partition.model_id,
                    layout::model_label(model)
                ),
            ));
        }
        if partition.files.values().any(Vec::is_empty) {
            return Err(store::corrupt(key, "a name with no versions"));
        }
        Ok(partition)
    }

    /// The latest version of `name`, tombstone or not.
    ///
    /// ```no_run,standalone_crate
    /// # use silt_extension::partition::Partition;
    /// # fn f(slice: &Partition) {
    /// match slice.latest("weights.bin") {
    ///     Some(entry) if entry.deleted => println!("removed in {}", entry.version),
    ///     Some(entry) => println!("at {}", entry.version),
    ///     None => println!("never committed (or expired)"),
    /// }
    /// # }
    /// ```
    pub fn latest(&self, name: &str) -> Option<&Entry> {
        self.files.get(name).and_then(|versions| versions.last())
    }

    /// The latest version of `name`, unless it was removed.
    ///
    /// ```no_run,standalone_crate
    /// use silt_extension::partition::Partition;
    /// use silt_extension::silt::datastore::types::Error;
    ///
    /// // A removal needs something to remove.
    /// fn check_removable(slice: &Partition, name: &str) -> Result<(), Error> {
    ///     match slice.live(name) {
    ///         Some(_) => Ok(()),
    ///         None => Err(Error::NotFound(format!("no file `{name}`"))),
    ///     }
    /// }
    /// ```
    pub fn live(&self, name: &str) -> Option<&Entry> {
        self.latest(name).filter(|entry| !entry.deleted)
    }

    /// The newest kept version of `name` whose content is `sha256`.
    ///
    /// ```no_run,standalone_crate
    /// use silt_extension::{layout, local};
    /// use silt_extension::partition::Partition;
    /// use silt_extension::silt::datastore::types::{Error, ModelRef};
    ///
    /// /// The committed version a working-copy file holds, if it holds one.
    /// fn version_on_disk(slice: &Partition, model: &ModelRef, name: &str) -> Result<Option<String>, Error> {
    ///     let (sha256, _size) = local::hash_file(&layout::working_path(model, name))?;
    ///     Ok(slice.version_with_sha256(name, &sha256).map(|entry| entry.version.clone()))
    /// }
    /// ```
    pub fn version_with_sha256(&self, name: &str, sha256: &str) -> Option<&Entry> {
        self.files
            .get(name)?
            .iter()
            .rev()
            .find(|entry| !entry.deleted && entry.sha256 == sha256)
    }

    /// Every live name with its latest version.
    ///
    /// ```no_run,standalone_crate
    /// # use silt_extension::partition::Partition;
    /// # fn f(slice: &Partition) {
    /// let (files, bytes) = slice
    ///     .live_files()
    ///     .fold((0, 0), |(files, bytes), (_name, latest)| (files + 1, bytes + latest.size));
    /// println!("{files} files, {bytes} bytes");
    /// # }
    /// ```
    pub fn live_files(&self) -> impl Iterator<Item = (&String, &Entry)> {
        self.files
            .iter()
            .filter_map(|(name, versions)| versions.last().map(|latest| (name, latest)))
            .filter(|(_, latest)| !latest.deleted)
    }

    /// Appends `entry` as the latest version of `name` and drops versions
    /// beyond `retain`; returns the dropped entries (their objects can go).
    ///
    /// [`crate::change::apply`] does this for each change of a commit.
    ///
    /// ```no_run,standalone_crate
    /// use silt_extension::clock;
    /// use silt_extension::layout::DATA_AREA;
    /// use silt_extension::partition::{Entry, Partition};
    /// # let model = silt_extension::silt::datastore::types::ModelRef { model_type: "vision/detector".into(), model_id: "m-42".into() };
    ///
    /// let mut slice = Partition::empty(DATA_AREA, &model);
    /// let entry = |version: &str| Entry {
    ///     version: version.to_owned(),
    ///     size: 4,
    ///     sha256: "88d4266fd4e6338d13b845fcf289579d209c897823b9217da3e161936f031589".to_owned(),
    ///     generation: 1,
    ///     writer: "ana@build-1".to_owned(),
    ///     committed_at: clock::now_ms(),
    ///     deleted: false,
    /// };
    /// assert!(slice.push_version("notes.txt", entry("v1"), 2).is_empty());
    /// assert!(slice.push_version("notes.txt", entry("v2"), 2).is_empty());
    /// let dropped = slice.push_version("notes.txt", entry("v3"), 2);
    /// assert_eq!(dropped[0].version, "v1");
    /// assert_eq!(slice.live("notes.txt").unwrap().version, "v3");
    /// ```
    pub fn push_version(&mut self, name: &str, entry: Entry, retain: u32) -> Vec<Entry> {
        let versions = self.files.entry(name.to_owned()).or_default();
        versions.push(entry);
        let excess = versions.len().saturating_sub(retain.max(1) as usize);
        versions.drain(..excess).collect()
    }

    /// Serialized for the store.
    ///
    /// ```no_run,standalone_crate
    /// use silt_extension::partition::Versioned;
    /// use silt_extension::silt::datastore::object_store::PutMode;
    /// use silt_extension::silt::datastore::types::Error;
    /// use silt_extension::store::{self, Written};
    ///
    /// /// Writes a slice back unless it changed since it was read.
    /// fn write_back(key: &str, read: Versioned, token: &str) -> Result<Written, Error> {
    ///     let mut next = read.partition;
    ///     next.seq += 1;
    ///     next.last_commit = token.to_owned(); // the owner token is in the body
    ///     let mode = read.version.map_or(PutMode::Create, PutMode::Update);
    ///     store::put_owned(key, &next.to_bytes(), &mode, token)
    /// }
    /// ```
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a partition serializes")
    }
}

/// Reads the partition object at `key` for `model`, unless it is still at
/// `known` (one conditional GET): the read of an index that keeps one
/// object per model.
///
/// ```no_run,standalone_crate
/// use silt_extension::layout::DATA_AREA;
/// use silt_extension::partition;
/// use silt_extension::silt::datastore::types::{Error, ModelRef};
/// use silt_extension::Fresh;
///
/// fn partition_key(model: &ModelRef) -> String {
///     format!("_my-index/{}/{}.json", model.model_type, model.model_id)
/// }
///
/// // The whole of `Index::read_if_changed` for an index with one object per model.
/// fn read_if_changed(model: &ModelRef, known: Option<&str>) -> Result<Fresh, Error> {
///     partition::read_object(&partition_key(model), DATA_AREA, model, known)
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
) -> Result<crate::Fresh, Error> {
    use crate::store::{self, Conditional};
    Ok(match store::get_if_changed(key, known)? {
        Conditional::Unchanged => crate::Fresh::Unchanged,
        Conditional::Changed(found) => crate::Fresh::Changed(Versioned {
            partition: Partition::parse(key, &found.data, area, model)?,
            version: Some(found.version),
        }),
        Conditional::Missing => crate::Fresh::Missing,
    })
}
