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
// A field added here (or to `Entry`) needs `checkpoint::FORMAT` bumped:
// checkpoints hold partitions as a build parsed and wrote them again.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Partition {
    /// The newest layout of the SDK that wrote it (informational: the
    /// datastore's layout is in its metadata; not checked on read).
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
    /// The tokens of the commits of the last few minutes, oldest first
    /// (see `journal::record_commit`): a reader that saw a commit
    /// announced in the journal learns here that it landed, also when a
    /// later commit replaced `last_commit` and the commit added no entry of
    /// its own version (a gc's expiry) or its entry was expired since.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub recent_commits: Vec<String>,
    /// The unleased commits whose uploads `collect-orphans` deleted before
    /// they landed, each as [`revocation`] keeps it (never
    /// the token itself): such a commit is refused if it comes after all.
    /// Each is dropped once older than an unleased commit can take.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub revoked: Vec<String>,
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
            layout: crate::layout::LAYOUT_VERSION,
            area: area.to_owned(),
            model_type: model.model_type.clone(),
            model_id: model.model_id.clone(),
            fence: 0,
            fence_token: String::new(),
            seq: 0,
            last_commit: String::new(),
            recent_commits: Vec::new(),
            revoked: Vec::new(),
            files: BTreeMap::new(),
        }
    }

    /// True when this is the slice of `model` in `area` (what a cache
    /// file that claims to hold it is checked against).
    ///
    /// ```no_run,standalone_crate
    /// use silt_extension::partition::Partition;
    /// # let model = silt_extension::silt::datastore::types::ModelRef { model_type: "vision/detector".into(), model_id: "m-42".into() };
    /// assert!(Partition::empty("data", &model).is_of("data", &model));
    /// ```
    pub fn is_of(&self, area: &str, model: &ModelRef) -> bool {
        self.area == area && self.model_type == model.model_type && self.model_id == model.model_id
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
            serde_json::from_slice(data).map_err(|err| crate::corrupt_object(key, err))?;
        partition.checked(key, area, model)
    }

    /// This partition, if it is a well-formed slice of `model` in `area`
    /// (what [`Partition::parse`] checks once the JSON has parsed); `key`
    /// names the object it came from.
    ///
    /// # Errors
    /// `corrupt` for a slice of another model or a name with no versions.
    pub(crate) fn checked(self, key: &str, area: &str, model: &ModelRef) -> Result<Self, Error> {
        let partition = self;
        if partition.area != area
            || partition.model_type != model.model_type
            || partition.model_id != model.model_id
        {
            return Err(crate::corrupt_object(
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
            return Err(crate::corrupt_object(key, "a name with no versions"));
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
    /// use silt_extension::{cache_file, layout};
    /// use silt_extension::partition::Partition;
    /// use silt_extension::silt::datastore::types::{Error, ModelRef};
    ///
    /// /// The committed version a working-copy file holds, if it holds one.
    /// fn version_on_disk(slice: &Partition, model: &ModelRef, name: &str) -> Result<Option<String>, Error> {
    ///     let (sha256, _size) = cache_file::hash_file(&layout::working_path(model, name))?;
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

    /// Keeps `token` revoked in this partition, as [`revocation`] keeps it
    /// (once; nothing for a string that is not a version token): an
    /// unleased commit with that token is then refused
    /// ([`crate::unleased::check_not_revoked`]).
    pub fn revoke(&mut self, token: &str) {
        if let Some(kept) = revocation(token).filter(|kept| !self.revoked.contains(kept)) {
            self.revoked.push(kept);
        }
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

/// How a revoked token is kept in a partition: its time and a digest of
/// it, `<ms>.<32 hex>`, never the token itself. A partition written on a
/// race must not contain the token of a commit it did not make: the host
/// tells a lost compare-and-swap from its own whose answer was lost by
/// looking for the writer's token in the object (`put-owned`), and a
/// version token has a `-`, which this form has not. `None` for a string
/// that is not a version token (no unleased commit has it).
///
/// ```no_run,standalone_crate
/// use silt_extension::partition::revocation;
/// let kept = revocation("1767225600000-9f2c4e1a7b3d5c60").unwrap();
/// assert!(kept.starts_with("1767225600000.") && !kept.contains("9f2c4e1a7b3d5c60"));
/// assert_eq!(revocation("v1"), None);
/// ```
pub fn revocation(token: &str) -> Option<String> {
    use sha2::{Digest, Sha256};
    let at = crate::clock::token_ms(token)?;
    let digest = Sha256::digest(token.as_bytes());
    let hex: String = digest[..16]
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect();
    Some(format!("{at:013}.{hex}"))
}
#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "_index/data/vision/detector/m-42.json";
    const SHA_A: &str = "88d4266fd4e6338d13b845fcf289579d209c897823b9217da3e161936f031589";
    const SHA_B: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    fn model() -> ModelRef {
        ModelRef {
            model_type: "vision/detector".to_owned(),
            model_id: "m-42".to_owned(),
        }
    }

    fn put(version: &str, sha256: &str) -> Entry {
        Entry {
            version: version.to_owned(),
            size: 4,
            sha256: sha256.to_owned(),
            generation: 3,
            writer: "ana@build-1".to_owned(),
            committed_at: 1_767_225_600_000,
            deleted: false,
        }
    }

    fn tombstone(version: &str) -> Entry {
        Entry {
            size: 0,
            sha256: String::new(),
            deleted: true,
            ..put(version, "")
        }
    }

    /// The error of a parse that must fail, as `corrupt`.
    fn corrupt(data: &[u8], model: &ModelRef) -> (String, String) {
        match Partition::parse(KEY, data, layout::DATA_AREA, model) {
            Err(Error::Corrupt(found)) => (found.object, found.detail),
            other => panic!("expected corrupt, got {other:?}"),
        }
    }

    #[test]
    fn a_partition_round_trips_through_its_encoding() {
        let mut slice = Partition::empty(layout::DATA_AREA, &model());
        slice.fence = u64::MAX;
        slice.fence_token = "0f1e2d3c4b5a69788796a5b4c3d2e1f0".to_owned();
        slice.seq = 7;
        slice.last_commit = "1767225600000-9f2c4e1a7b3d5c60".to_owned();
        // JSON numbers must carry the whole u64 range, and names any
        // printable text (quotes and non-ASCII included), unchanged.
        let extreme = Entry {
            size: u64::MAX,
            generation: u64::MAX,
            committed_at: u64::MAX,
            ..put("v1", SHA_A)
        };
        slice.files.insert(
            "eval/Überblick \"☃\".json".to_owned(),
            vec![extreme, tombstone("v2")],
        );
        slice
            .files
            .insert("weights.bin".to_owned(), vec![put("v3", SHA_B)]);

        let bytes = slice.to_bytes();
        let parsed = Partition::parse(KEY, &bytes, layout::DATA_AREA, &model()).unwrap();

        assert_eq!(parsed.layout, crate::layout::LAYOUT_VERSION);
        assert_eq!(parsed.area, "data");
        assert_eq!(parsed.model_type, "vision/detector");
        assert_eq!(parsed.model_id, "m-42");
        assert_eq!(parsed.fence, u64::MAX);
        assert_eq!(parsed.fence_token, slice.fence_token);
        assert_eq!(parsed.seq, 7);
        assert_eq!(parsed.last_commit, slice.last_commit);
        assert_eq!(parsed.files, slice.files);
        // Encoding is deterministic: what was read writes back byte for byte.
        assert_eq!(parsed.to_bytes(), bytes);
    }

    #[test]
    fn recent_commits_are_kept_through_the_encoding() {
        let mut slice = Partition::empty(layout::DATA_AREA, &model());
        slice.recent_commits = vec![
            "1767225600000-9f2c4e1a7b3d5c60".to_owned(),
            "1767225600001-0a1b2c3d4e5f6071".to_owned(),
        ];
        let parsed = Partition::parse(KEY, &slice.to_bytes(), layout::DATA_AREA, &model()).unwrap();
        assert_eq!(parsed.recent_commits, slice.recent_commits);
    }

    #[test]
    fn the_encoding_leaves_out_an_empty_last_commit_and_a_false_deleted_flag() {
        let slice = Partition::empty("runs", &model());
        assert_eq!(
            String::from_utf8(slice.to_bytes()).unwrap(),
            format!(
                r#"{{"layout":{},"area":"runs","model_type":"vision/detector","model_id":"m-42","fence":0,"fence_token":"","seq":0,"files":{{}}}}"#,
                crate::layout::LAYOUT_VERSION
            ),
        );
        assert_eq!(
            serde_json::to_string(&put("v1", SHA_A)).unwrap(),
            format!(
                r#"{{"version":"v1","size":4,"sha256":"{SHA_A}","generation":3,"writer":"ana@build-1","committed_at":1767225600000}}"#
            ),
        );
        assert_eq!(
            serde_json::to_string(&tombstone("v2")).unwrap(),
            r#"{"version":"v2","size":0,"sha256":"","generation":3,"writer":"ana@build-1","committed_at":1767225600000,"deleted":true}"#,
        );
        // And what was left out reads back as its default.
        let written = format!(
            r#"{{"layout":1,"area":"data","model_type":"vision/detector","model_id":"m-42","fence":2,"fence_token":"t","seq":1,"files":{{"w.bin":[{{"version":"v1","size":4,"sha256":"{SHA_A}","generation":3,"writer":"ana@build-1","committed_at":1767225600000}}]}}}}"#
        );
        let parsed =
            Partition::parse(KEY, written.as_bytes(), layout::DATA_AREA, &model()).unwrap();
        assert_eq!(parsed.last_commit, "");
        assert_eq!(parsed.files["w.bin"], vec![put("v1", SHA_A)]);
    }

    #[test]
    fn parsing_refuses_a_slice_of_another_model_or_area_as_corrupt_naming_the_key() {
        let other = ModelRef {
            model_type: "vision/detector".to_owned(),
            model_id: "m-43".to_owned(),
        };
        let (object, detail) = corrupt(
            &Partition::empty(layout::DATA_AREA, &other).to_bytes(),
            &model(),
        );
        assert_eq!(object, KEY);
        assert_eq!(
            detail,
            "describes data/vision/detector/m-43 instead of data/vision/detector/m-42"
        );

        let (_, detail) = corrupt(&Partition::empty("runs", &model()).to_bytes(), &model());
        assert_eq!(
            detail,
            "describes runs/vision/detector/m-42 instead of data/vision/detector/m-42"
        );

        // Type and id are compared apart, not as the label `type/id`, which
        // these two share.
        let split_elsewhere = ModelRef {
            model_type: "vision".to_owned(),
            model_id: "detector/m-42".to_owned(),
        };
        corrupt(
            &Partition::empty(layout::DATA_AREA, &split_elsewhere).to_bytes(),
            &model(),
        );
    }

    #[test]
    fn parsing_refuses_malformed_bytes_and_a_name_without_versions() {
        let whole = Partition::empty(layout::DATA_AREA, &model()).to_bytes();
        let truncated = &whole[..whole.len() - 1];
        let malformed: [&[u8]; 5] = [b"", b"null", b"{}", b"\xff\xfe", truncated];
        for data in malformed {
            let (object, _) = corrupt(data, &model());
            assert_eq!(object, KEY);
        }

        let mut hollow = Partition::empty(layout::DATA_AREA, &model());
        hollow
            .files
            .insert("w.bin".to_owned(), vec![put("v1", SHA_A)]);
        hollow.files.insert("gone.bin".to_owned(), Vec::new());
        let (object, detail) = corrupt(&hollow.to_bytes(), &model());
        assert_eq!(object, KEY);
        assert_eq!(detail, "a name with no versions");
    }

    #[test]
    fn pushing_a_version_keeps_the_newest_retain_and_returns_the_dropped_oldest_first() {
        let mut slice = Partition::empty(layout::DATA_AREA, &model());
        assert!(slice.push_version("w.bin", put("v1", SHA_A), 2).is_empty());
        assert!(slice.push_version("w.bin", put("v2", SHA_B), 2).is_empty());
        assert_eq!(
            slice.push_version("w.bin", put("v3", SHA_A), 2),
            vec![put("v1", SHA_A)]
        );
        // A retention lowered since the last commit drops the whole excess at once.
        assert_eq!(
            slice.push_version("w.bin", tombstone("v4"), 1),
            vec![put("v2", SHA_B), put("v3", SHA_A)]
        );
        assert_eq!(slice.files["w.bin"], vec![tombstone("v4")]);

        // A retention of 0 keeps 1: the latest version is never dropped.
        assert!(slice.push_version("n.txt", put("n1", SHA_A), 0).is_empty());
        assert_eq!(
            slice.push_version("n.txt", put("n2", SHA_B), 0),
            vec![put("n1", SHA_A)]
        );
        assert_eq!(slice.files["n.txt"], vec![put("n2", SHA_B)]);
        // Other names are untouched by either.
        assert_eq!(slice.files.len(), 2);
    }

    #[test]
    fn latest_live_and_version_with_sha256_tell_tombstones_from_content() {
        let mut slice = Partition::empty(layout::DATA_AREA, &model());
        slice.files.insert(
            "w.bin".to_owned(),
            vec![
                put("v1", SHA_A),
                put("v2", SHA_B),
                put("v3", SHA_A),
                tombstone("v4"),
            ],
        );
        assert_eq!(slice.latest("w.bin"), Some(&tombstone("v4")));
        assert_eq!(slice.live("w.bin"), None);
        // The newest version with that content, removed name or not.
        let version = |sha256: &str| {
            slice
                .version_with_sha256("w.bin", sha256)
                .map(|entry| entry.version.clone())
        };
        assert_eq!(version(SHA_A).as_deref(), Some("v3"));
        assert_eq!(version(SHA_B).as_deref(), Some("v2"));
        // A tombstone's empty hash is not content.
        assert_eq!(version(""), None);

        // Names are matched exactly.
        slice
            .files
            .insert("a/b.txt".to_owned(), vec![put("w1", SHA_A)]);
        assert_eq!(slice.live("a/b.txt"), Some(&put("w1", SHA_A)));
        assert_eq!(slice.live("A/b.txt"), None);
        assert_eq!(slice.latest("a/b"), None);
        assert_eq!(slice.version_with_sha256("missing", SHA_A), None);
    }

    #[test]
    fn live_files_are_the_names_whose_latest_is_no_tombstone_in_name_order() {
        let mut slice = Partition::empty(layout::DATA_AREA, &model());
        slice
            .files
            .insert("b.bin".to_owned(), vec![put("b1", SHA_A)]);
        slice
            .files
            .insert("c.bin".to_owned(), vec![put("c1", SHA_A), tombstone("c2")]);
        // Removed, then written again: live at its newest version.
        slice.files.insert(
            "a.bin".to_owned(),
            vec![put("a1", SHA_A), tombstone("a2"), put("a3", SHA_B)],
        );
        let live: Vec<(&str, &str)> = slice
            .live_files()
            .map(|(name, latest)| (name.as_str(), latest.version.as_str()))
            .collect();
        assert_eq!(live, vec![("a.bin", "a3"), ("b.bin", "b1")]);
        assert_eq!(
            Partition::empty(layout::DATA_AREA, &model())
                .live_files()
                .count(),
            0
        );
    }

    #[test]
    fn an_entry_keeps_every_field_in_its_wit_view() {
        // Distinct values everywhere, so that no two fields can be mixed up.
        let entry = Entry {
            version: "v9".to_owned(),
            size: 11,
            sha256: SHA_B.to_owned(),
            generation: 22,
            writer: "bo@build-2".to_owned(),
            committed_at: 33,
            deleted: false,
        };
        let wit = entry.to_wit();
        assert_eq!(
            (
                wit.version.as_str(),
                wit.size,
                wit.sha256.as_str(),
                wit.generation,
                wit.writer.as_str(),
                wit.committed_at,
                wit.deleted,
            ),
            ("v9", 11, SHA_B, 22, "bo@build-2", 33, false),
        );
        assert!(tombstone("v10").to_wit().deleted);
    }
}
