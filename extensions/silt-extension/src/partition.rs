//! One model's slice of the index: every file of the model, with the
//! versions the retention keeps, and the fence that shuts out old lease
//! holders. The partitioned index stores each slice as its own object; the
//! monolithic one holds them all in one.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::exports::silt::datastore::models::FileVersion;
use crate::layout;
use crate::silt::datastore::types::{Error, ModelRef};
use crate::store;

/// One model's slice of the index (the partitioned index stores it at
/// `_index/<area>/<type>/<id>.json`).
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
#[derive(Debug, Clone)]
pub struct Versioned {
    /// The partition (empty when it does not exist yet).
    pub partition: Partition,
    /// Its store version.
    pub version: Option<String>,
}

impl Partition {
    /// An empty partition for `model` in `area`.
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
    pub fn latest(&self, name: &str) -> Option<&Entry> {
        self.files.get(name).and_then(|versions| versions.last())
    }

    /// The latest version of `name`, unless it was removed.
    pub fn live(&self, name: &str) -> Option<&Entry> {
        self.latest(name).filter(|entry| !entry.deleted)
    }

    /// The newest kept version of `name` whose content is `sha256`.
    pub fn version_with_sha256(&self, name: &str, sha256: &str) -> Option<&Entry> {
        self.files
            .get(name)?
            .iter()
            .rev()
            .find(|entry| !entry.deleted && entry.sha256 == sha256)
    }

    /// Every live name with its latest version.
    pub fn live_files(&self) -> impl Iterator<Item = (&String, &Entry)> {
        self.files
            .iter()
            .filter_map(|(name, versions)| versions.last().map(|latest| (name, latest)))
            .filter(|(_, latest)| !latest.deleted)
    }

    /// Appends `entry` as the latest version of `name` and drops versions
    /// beyond `retain`; returns the dropped entries (their objects can go).
    pub fn push_version(&mut self, name: &str, entry: Entry, retain: u32) -> Vec<Entry> {
        let versions = self.files.entry(name.to_owned()).or_default();
        versions.push(entry);
        let excess = versions.len().saturating_sub(retain.max(1) as usize);
        versions.drain(..excess).collect()
    }

    /// Serialized for the store.
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a partition serializes")
    }
}

/// Reads the partition object at `key` for `model`, unless it is still at
/// `known` (one conditional GET): the read of an index that keeps one
/// object per model.
///
/// ```ignore
/// fn read_if_changed(model: &ModelRef, known: Option<&str>) -> Result<Fresh, Error> {
///     partition::read_object(&my_key(model), DATA_AREA, model, known)
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
