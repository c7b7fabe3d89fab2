//! Changes to one model's slice of the index, as every index kind applies
//! them: new versions, tombstones, retention.
//!
//! A commit of any index kind: read the model's slice, [`apply`] the
//! changes to it in memory, write it back conditionally, then
//! [`delete_dropped`] the content of the versions retention let go.
//!
//! ```no_run,standalone_crate
//! use silt_extension::change::{Base, Change, Committed};
//! use silt_extension::{Index, clock};
//! use silt_extension::silt::datastore::types::{Error, Lease, ModelRef};
//!
//! /// Removes `name` from the model: one tombstone, committed under `lease`.
//! fn remove<I: Index>(model: &ModelRef, name: &str, lease: &Lease) -> Result<Committed, Error> {
//!     let change = Change::Remove { name: name.to_owned(), version: clock::version_token(), base: Base::Any };
//!     I::commit(model, lease, &[change])
//! }
//! ```

use crate::clock;
use crate::layout;
use crate::partition::{Entry, Partition};
use crate::silt::datastore::types::{Base as WitBase, Conflict, Error, Lease, LockScope, ModelRef};

/// One change to a model.
///
/// ```no_run,standalone_crate
/// use silt_extension::change::{Base, Change};
/// use silt_extension::layout::{self, DATA_AREA};
/// use silt_extension::silt::datastore::object_store::{self, PutMode, UploadItem};
/// use silt_extension::silt::datastore::types::{Error, Lease, ModelRef};
/// use silt_extension::{Index, cache_file, clock, store};
///
/// /// Uploads a working-copy file as a new version, then commits it.
/// fn put<I: Index>(model: &ModelRef, name: &str, lease: &Lease) -> Result<String, Error> {
///     let path = layout::working_path(model, name);
///     let (sha256, size, _mtime_ns) = cache_file::hash_stable(&path)?;
///     let version = clock::version_token();
///     let key = layout::object_key(DATA_AREA, model, name, &version);
///     let item = UploadItem { cache_path: path, key: key.clone(), mode: PutMode::Create };
///     for result in object_store::upload(&[item]) {
///         result.map_err(|err| store::error(&key, err))?;
///     }
///     // A new file: refused (`conflict`) if someone committed the name meanwhile.
///     let change = Change::Put { name: name.to_owned(), version, size, sha256, base: Base::Absent };
///     Ok(I::commit(model, lease, &[change])?.version)
/// }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// A new version of `name`, whose content is already stored under `version`.
    Put {
        /// File name.
        name: String,
        /// Fresh version token (the object key's last segment).
        version: String,
        /// Size in bytes.
        size: u64,
        /// Hex sha256.
        sha256: String,
        /// What the name's latest version must be for the commit to land.
        base: Base,
    },
    /// A tombstone for `name`.
    Remove {
        /// File name.
        name: String,
        /// Fresh version token of the tombstone.
        version: String,
        /// What the name's latest version must be for the commit to land.
        base: Base,
    },
    /// Expire every version of every name beyond the newest `keep` (gc).
    Trim {
        /// Versions kept per name (at least 1).
        keep: u32,
        /// Fresh token of this commit.
        version: String,
    },
    /// Refuse the unleased commits of `tokens` should they come: their
    /// uploads are about to be deleted as orphans ([`crate::unleased`]).
    Revoke {
        /// The commits' tokens.
        tokens: Vec<String>,
        /// Fresh token of this commit.
        version: String,
    },
}

impl Change {
    /// Its fresh version token; the first change's token is the commit's.
    ///
    /// ```no_run,standalone_crate
    /// use silt_extension::change::{self, Base, Change};
    /// use silt_extension::clock;
    /// # fn main() -> Result<(), silt_extension::silt::datastore::types::Error> {
    /// let changes = [
    ///     Change::Remove { name: "old.bin".into(), version: clock::version_token(), base: Base::Any },
    ///     Change::Remove { name: "older.bin".into(), version: clock::version_token(), base: Base::Any },
    /// ];
    /// assert_eq!(change::commit_token(&changes)?, changes[0].version());
    /// # Ok(()) }
    /// ```
    pub fn version(&self) -> &str {
        match self {
            Change::Put { version, .. }
            | Change::Remove { version, .. }
            | Change::Trim { version, .. }
            | Change::Revoke { version, .. } => version,
        }
    }
}

/// What a change expects of its name's latest version (the contract's
/// `base`): checked by [`apply`], inside the compare-and-swap that commits.
///
/// ```no_run,standalone_crate
/// use silt_extension::change::Base;
/// use silt_extension::local::Stamp;
///
/// /// An edit of a file the working copy holds at `stamp` (if any).
/// fn base_of(stamp: Option<&Stamp>) -> Base {
///     stamp.map_or(Base::Absent, |stamp| Base::Version(stamp.version.clone()))
/// }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Base {
    /// Commit on top of whatever is latest (an explicit overwrite).
    Any,
    /// The name must have no live version.
    Absent,
    /// The name's latest version must be this one.
    Version(String),
}

impl From<WitBase> for Base {
    fn from(base: WitBase) -> Self {
        match base {
            WitBase::Any => Base::Any,
            WitBase::Absent => Base::Absent,
            WitBase::Version(version) => Base::Version(version),
        }
    }
}

impl Base {
    /// True when `latest` (the name's newest version, a tombstone
    /// included; `None` when the name has none) satisfies this base.
    ///
    /// ```no_run,standalone_crate
    /// use silt_extension::change::Base;
    ///
    /// assert!(Base::Any.holds(None));
    /// assert!(Base::Absent.holds(None));
    /// assert!(!Base::Version("v1".into()).holds(None));
    /// ```
    pub fn holds(&self, latest: Option<&Entry>) -> bool {
        match self {
            Base::Any => true,
            Base::Absent => latest.is_none_or(|entry| entry.deleted),
            Base::Version(version) => latest.is_some_and(|entry| &entry.version == version),
        }
    }
}

/// The changes of `changes` whose base `slice` does not satisfy, as the
/// contract reports them.
///
/// ```no_run,standalone_crate
/// use silt_extension::change::{self, Change};
/// use silt_extension::partition::Partition;
/// use silt_extension::silt::datastore::types::ModelRef;
///
/// fn would_conflict(model: &ModelRef, latest: &Partition, changes: &[Change]) -> Vec<String> {
///     change::conflicts(model, latest, changes).into_iter().map(|c| c.name).collect()
/// }
/// ```
pub fn conflicts(model: &ModelRef, slice: &Partition, changes: &[Change]) -> Vec<Conflict> {
    let mut found = Vec::new();
    for change in changes {
        let (name, base) = match change {
            Change::Put { name, base, .. } | Change::Remove { name, base, .. } => (name, base),
            Change::Trim { .. } | Change::Revoke { .. } => continue,
        };
        let latest = slice.latest(name);
        // The same content as the latest is no conflict, whatever its base
        // (a commit of ours whose answer was lost, or the same edit made
        // twice): nothing committed would be lost.
        let same_content = match change {
            Change::Put { sha256, .. } => latest.is_some_and(|e| !e.deleted && &e.sha256 == sha256),
            _ => false,
        };
        if same_content || base.holds(latest) {
            continue;
        }
        found.push(Conflict {
            model: model.clone(),
            name: name.clone(),
            base: match base {
                Base::Version(version) => Some(version.clone()),
                Base::Any | Base::Absent => None,
            },
            latest: latest.map(|entry| entry.version.clone()),
            latest_writer: latest.map(|entry| entry.writer.clone()).unwrap_or_default(),
            latest_deleted: latest.is_some_and(|entry| entry.deleted),
        });
    }
    found
}

/// Refuses `changes` with `conflict` when any base does not hold in
/// `slice`; `slice` is not touched. [`apply`] calls it first; an index that
/// commits several models in one write calls it per model before changing
/// anything, to leave a conflicting model out.
///
/// # Errors
/// `conflict`, naming every file whose base does not hold.
///
/// ```no_run,standalone_crate
/// use silt_extension::change::{self, Change};
/// use silt_extension::partition::Partition;
/// use silt_extension::silt::datastore::types::{Error, ModelRef};
///
/// fn merge_one(model: &ModelRef, slice: &Partition, changes: &[Change]) -> Result<(), Error> {
///     change::check_bases(model, slice, changes)?; // before `slice.seq += 1`
///     Ok(())
/// }
/// ```
pub fn check_bases(model: &ModelRef, slice: &Partition, changes: &[Change]) -> Result<(), Error> {
    let found = conflicts(model, slice, changes);
    if found.is_empty() {
        Ok(())
    } else {
        Err(Error::Conflict(found))
    }
}

/// What a commit wrote.
///
/// ```no_run,standalone_crate
/// use silt_extension::change::Change;
/// use silt_extension::{Index, clock};
/// use silt_extension::silt::datastore::types::{Error, Lease, ModelRef};
///
/// /// Keeps the newest 3 versions of each file of the model (a gc).
/// fn trim<I: Index>(model: &ModelRef, lease: &Lease) -> Result<(), Error> {
///     let trim = Change::Trim { keep: 3, version: clock::version_token() };
///     let committed = I::commit(model, lease, &[trim])?;
///     let (objects, bytes) = committed.deleted;
///     println!(
///         "{}: expired {} versions, freed {objects} objects ({bytes} bytes); now at {}",
///         silt_extension::layout::model_label(model),
///         committed.expired.len(),
///         committed.version,
///     );
///     Ok(())
/// }
/// ```
pub struct Committed {
    /// The model's slice as committed.
    pub partition: Partition,
    /// Its new version.
    pub version: String,
    /// The entries this commit added, by name (a put of the latest
    /// version's content again answers that latest entry: see [`Applied`]).
    pub entries: Vec<(String, Entry)>,
    /// The versions it expired (retention or gc), by name.
    pub expired: Vec<(String, Entry)>,
    /// Objects of expired versions deleted from the store, and their bytes.
    pub deleted: (u64, u64),
}

/// The outcome of applying changes to a slice in memory.
///
/// ```no_run,standalone_crate
/// use silt_extension::change::{self, Applied, Change};
/// use silt_extension::partition::Partition;
/// use silt_extension::silt::datastore::types::{Error, Lease, ModelRef};
///
/// fn stage(model: &ModelRef, slice: &mut Partition, lease: &Lease, changes: &[Change]) -> Result<Applied, Error> {
///     let applied = change::apply(model, slice, lease, changes, 10)?;
///     for (name, entry) in &applied.entries {
///         println!("{name}: new version {}", entry.version);
///     }
///     // `applied.dropped` is deleted only once the slice is written back.
///     Ok(applied)
/// }
/// ```
pub struct Applied {
    /// The entries added, by name; for a put of the latest version's
    /// content again, that latest entry (nothing was added for it).
    pub entries: Vec<(String, Entry)>,
    /// Versions the retention dropped, by name: delete their objects once
    /// the commit has landed.
    pub dropped: Vec<(String, Entry)>,
}

/// The commit token of `changes` (the first change's version token).
///
/// Pass it to `put-owned` as the owner token and keep it in the written
/// body (each change's version is, and [`Partition::last_commit`] holds it
/// for a commit that adds none), so a retried write that already landed is
/// recognised as ours.
///
/// # Errors
/// `invalid-input` when `changes` is empty.
///
/// ```no_run,standalone_crate
/// use silt_extension::change::{self, Change};
/// use silt_extension::partition::Partition;
/// use silt_extension::silt::datastore::types::Error;
///
/// fn stamp_commit(next: &mut Partition, changes: &[Change]) -> Result<String, Error> {
///     let token = change::commit_token(changes)?;
///     next.seq += 1;
///     silt_extension::journal::record_commit(next, &token, silt_extension::clock::now_ms());
///     Ok(token)
/// }
/// ```
pub fn commit_token(changes: &[Change]) -> Result<String, Error> {
    changes
        .first()
        .map(|change| change.version().to_owned())
        .ok_or_else(|| Error::InvalidInput("a commit needs at least one change".into()))
}

/// Checks that `lease` is a lease on `model`.
///
/// # Errors
/// `invalid-input` when `lease` is on another model or on a wider scope.
///
/// ```no_run,standalone_crate
/// use silt_extension::change::{self, Change, Committed};
/// use silt_extension::silt::datastore::types::{Error, Lease, ModelRef};
///
/// fn commit(model: &ModelRef, lease: &Lease, changes: &[Change]) -> Result<Committed, Error> {
///     // Coverage only: the host's copy of the lease dates from the start of the
///     // call; whether it is still ours is the lock object's to say.
///     change::covers(lease, model)?;
///     // ...
/// #   todo!()
/// }
/// ```
pub fn covers(lease: &Lease, model: &ModelRef) -> Result<(), Error> {
    let covers = match &lease.scope {
        LockScope::Model(held) => layout::same_model(held, model),
        LockScope::Namespace | LockScope::Global => false,
    };
    if !covers {
        return Err(Error::InvalidInput(format!(
            "writing model {} needs that model's lease",
            layout::model_label(model)
        )));
    }
    Ok(())
}

/// How long a lease renewed at `renewed_at` has been silent, if longer
/// than work may start or commit under (0.75 × TTL: a quarter of the TTL
/// is left for the commit to land before anyone may take the lease over).
///
/// ```no_run,standalone_crate
/// use silt_extension::{change, layout, lock_object};
/// use silt_extension::silt::datastore::types::{Error, Lease};
///
/// /// Right before a commit: asks the lock object, not the lease copy.
/// fn confirm(lease: &Lease) -> Result<(), Error> {
///     let key = layout::lock_key(&lease.scope)?;
///     let Some(current) = lock_object::read_lock(&key)?.filter(|c| c.body.token == lease.token) else {
///         return Err(Error::LockLost(format!("{key} is no longer ours")));
///     };
///     if let Some(silent) = change::silent_too_long(current.body.renewed_at, current.body.ttl_ms) {
///         return Err(Error::LockLost(format!("{key} was last renewed {silent} ms ago")));
///     }
///     Ok(())
/// }
/// ```
pub fn silent_too_long(renewed_at: u64, ttl_ms: u32) -> Option<u64> {
    let silent = clock::now_ms().saturating_sub(renewed_at);
    (silent > u64::from(ttl_ms) * 3 / 4).then_some(silent)
}

/// Checks, at the start of a call, that `lease` covers `model` and that the
/// host's copy of it is fresh enough to start work under. (A commit at the
/// end of a long call cannot judge by this copy, which the host has renewed
/// since; it asks the store, see the index's commit.)
///
/// # Errors
/// `invalid-input` as [`covers`]; `lock-lost` when the lease was last
/// renewed too long ago.
///
/// ```no_run,standalone_crate
/// use silt_extension::change::{self, Base, Change};
/// use silt_extension::silt::datastore::types::{Error, Lease, ModelRef};
/// use silt_extension::{Index, clock};
///
/// fn remove_file<I: Index>(model: ModelRef, name: String, lease: Lease) -> Result<(), Error> {
///     change::check_lease(&lease, &model)?; // before any work
///     let change = Change::Remove { name, version: clock::version_token(), base: Base::Any };
///     I::commit(&model, &lease, &[change])?;
///     Ok(())
/// }
/// ```
pub fn check_lease(lease: &Lease, model: &ModelRef) -> Result<(), Error> {
    covers(lease, model)?;
    if let Some(silent) = silent_too_long(lease.renewed_at, lease.ttl_ms) {
        return Err(Error::LockLost(format!(
            "the lease on model {} was last renewed {silent} ms ago (TTL {} ms); stopped before committing so that a new holder cannot be overwritten",
            layout::model_label(model),
            lease.ttl_ms
        )));
    }
    Ok(())
}

/// Applies `changes` to `slice` in memory: each becomes the latest version
/// of its name, written by `lease`'s holder; versions beyond `retain` drop.
/// First checks every change's base against `slice` (which the caller has
/// just read for its compare-and-swap, so no commit can slip in between).
///
/// # Errors
/// `conflict` when a base does not hold (`slice` untouched); `not-found`
/// for a removal of a name that is not live (`slice` may then be partly
/// changed: read it again).
///
/// A whole compare-and-swap commit of a per-model index object:
///
/// ```no_run,standalone_crate
/// use silt_extension::change::{self, Change, Committed};
/// use silt_extension::index_io;
/// use silt_extension::partition::Versioned;
/// use silt_extension::silt::datastore::object_store::PutMode;
/// use silt_extension::silt::datastore::types::{Error, Lease, ModelRef};
/// use silt_extension::store::{self, Written};
/// use silt_extension::{Index, meta};
///
/// fn commit<I: Index>(key: &str, model: &ModelRef, lease: &Lease, changes: &[Change]) -> Result<Committed, Error> {
///     change::covers(lease, model)?;
///     let retain = meta::read(I::KIND)?.retain_versions;
///     let token = change::commit_token(changes)?;
///     store::retry_lost(key, 16, |_attempt| {
///         let Versioned { partition: mut next, version } = I::read(model)?;
///         next.seq += 1;
///         next.last_commit = token.clone();
///         let applied = change::apply(model, &mut next, lease, changes, retain)?;
///         let mode = version.map_or(PutMode::Create, PutMode::Update);
///         Ok(match store::put_owned(key, &next.to_bytes(), &mode, &token)? {
///             Written::Landed(version) => Some(Committed {
///                 deleted: index_io::delete_dropped(model, &applied.dropped),
///                 partition: next,
///                 version,
///                 entries: applied.entries,
///                 expired: applied.dropped,
///             }),
///             Written::Lost => None,
///         })
///     })
/// }
/// ```
pub fn apply(
    model: &ModelRef,
    slice: &mut Partition,
    lease: &Lease,
    changes: &[Change],
    retain: u32,
) -> Result<Applied, Error> {
    apply_as(model, slice, &Author::holding(lease), changes, retain)
}

/// Who a commit's new versions are written by, as their entries record it.
///
/// ```no_run,standalone_crate
/// use silt_extension::change::Author;
/// use silt_extension::partition::Partition;
/// use silt_extension::silt::datastore::types::Holder;
///
/// /// An unleased commit's author: the model's generation as it stands.
/// fn unleased(slice: &Partition, holder: &Holder) -> Author {
///     Author { generation: slice.fence, writer: holder.name.clone() }
/// }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Author {
    /// The lease generation recorded with each entry.
    pub generation: u64,
    /// `user@host` recorded with each entry.
    pub writer: String,
}

impl Author {
    /// The holder of `lease`, at its generation.
    pub fn holding(lease: &Lease) -> Self {
        Self {
            generation: lease.generation,
            writer: lease.holder.name.clone(),
        }
    }
}

/// [`apply`] for any [`Author`] (an unleased commit has no lease).
///
/// # Errors
/// As [`apply`].
///
/// ```no_run,standalone_crate
/// use silt_extension::change::{self, Applied, Author, Change};
/// use silt_extension::partition::Partition;
/// use silt_extension::silt::datastore::types::{Error, Holder, ModelRef};
///
/// fn unleased(model: &ModelRef, slice: &mut Partition, holder: &Holder, changes: &[Change]) -> Result<Applied, Error> {
///     let author = Author { generation: slice.fence, writer: holder.name.clone() };
///     change::apply_as(model, slice, &author, changes, 10)
/// }
/// ```
pub fn apply_as(
    model: &ModelRef,
    slice: &mut Partition,
    author: &Author,
    changes: &[Change],
    retain: u32,
) -> Result<Applied, Error> {
    check_bases(model, slice, changes)?;
    let now = clock::now_ms();
    let mut applied = Applied {
        entries: Vec::new(),
        dropped: Vec::new(),
    };
    for change in changes {
        let (name, entry) = match change {
            Change::Revoke { tokens, .. } => {
                for token in tokens {
                    slice.revoke(token);
                }
                continue;
            }
            Change::Trim { keep, .. } => {
                for (name, versions) in slice.files.iter_mut() {
                    let excess = versions.len().saturating_sub((*keep).max(1) as usize);
                    applied
                        .dropped
                        .extend(versions.drain(..excess).map(|old| (name.clone(), old)));
                }
                continue;
            }
            Change::Put {
                name,
                version,
                size,
                sha256,
                ..
            } => {
                // The latest version again: no new version. The answer is
                // the latest one (the caller deletes its own upload).
                if let Some(latest) = slice
                    .live(name)
                    .filter(|latest| latest.sha256 == *sha256 && latest.size == *size)
                {
                    applied.entries.push((name.to_owned(), latest.clone()));
                    continue;
                }
                (
                    name,
                    Entry {
                        version: version.clone(),
                        size: *size,
                        sha256: sha256.clone(),
                        generation: author.generation,
                        writer: author.writer.clone(),
                        committed_at: now,
                        deleted: false,
                    },
                )
            }
            Change::Remove { name, version, .. } => {
                if slice.live(name).is_none() {
                    return Err(Error::NotFound(format!(
                        "{} has no file `{name}`",
                        layout::model_label(model)
                    )));
                }
                (
                    name,
                    Entry {
                        version: version.clone(),
                        size: 0,
                        sha256: String::new(),
                        generation: author.generation,
                        writer: author.writer.clone(),
                        committed_at: now,
                        deleted: true,
                    },
                )
            }
        };
        applied.entries.push((name.to_owned(), entry.clone()));
        applied.dropped.extend(
            slice
                .push_version(name, entry, retain)
                .into_iter()
                .map(|old| (name.to_owned(), old)),
        );
    }
    Ok(applied)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::lease;
    use crate::layout::DATA_AREA;

    const SHA_A: &str = "88d4266fd4e6338d13b845fcf289579d209c897823b9217da3e161936f031589";
    const SHA_B: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
    const SHA_C: &str = "2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae";

    fn model() -> ModelRef {
        ModelRef {
            model_type: "vision/detector".to_owned(),
            model_id: "m-42".to_owned(),
        }
    }

    fn written(version: &str, sha256: &str, writer: &str) -> Entry {
        Entry {
            version: version.to_owned(),
            size: 4,
            sha256: sha256.to_owned(),
            generation: 3,
            writer: writer.to_owned(),
            committed_at: 1_767_225_600_000,
            deleted: false,
        }
    }

    fn removed(version: &str, writer: &str) -> Entry {
        Entry {
            size: 0,
            sha256: String::new(),
            deleted: true,
            ..written(version, "", writer)
        }
    }

    fn slice(files: Vec<(&str, Vec<Entry>)>) -> Partition {
        let mut slice = Partition::empty(DATA_AREA, &model());
        for (name, versions) in files {
            slice.files.insert(name.to_owned(), versions);
        }
        slice
    }

    fn put(name: &str, sha256: &str, base: Base) -> Change {
        Change::Put {
            name: name.to_owned(),
            version: format!("new-{name}"),
            size: 4,
            sha256: sha256.to_owned(),
            base,
        }
    }

    fn remove(name: &str, base: Base) -> Change {
        Change::Remove {
            name: name.to_owned(),
            version: format!("gone-{name}"),
            base,
        }
    }

    /// What a conflict says, in a form that compares.
    fn summary(found: &[Conflict]) -> Vec<(&str, Option<&str>, Option<&str>, &str, bool)> {
        found
            .iter()
            .map(|conflict| {
                assert!(layout::same_model(&conflict.model, &model()));
                (
                    conflict.name.as_str(),
                    conflict.base.as_deref(),
                    conflict.latest.as_deref(),
                    conflict.latest_writer.as_str(),
                    conflict.latest_deleted,
                )
            })
            .collect()
    }

    #[test]
    fn a_put_of_the_latest_content_adds_no_version_and_answers_the_latest() {
        let latest = written("v2", SHA_B, "bo@build-2");
        let mut current = slice(vec![(
            "w.bin",
            vec![written("v1", SHA_A, "ana@build-1"), latest.clone()],
        )]);
        let holder = lease(LockScope::Model(model()));
        let applied = apply(
            &model(),
            &mut current,
            &holder,
            &[put("w.bin", SHA_B, Base::Any)],
            10,
        )
        .unwrap();
        assert_eq!(applied.entries, [("w.bin".to_owned(), latest.clone())]);
        assert!(applied.dropped.is_empty());
        assert_eq!(current.files["w.bin"].len(), 2);
        // An older version's content is a new version (it brings it back).
        let applied = apply(
            &model(),
            &mut current,
            &holder,
            &[put("w.bin", SHA_A, Base::Any)],
            10,
        )
        .unwrap();
        assert_eq!(applied.entries[0].1.version, "new-w.bin");
        assert_eq!(current.files["w.bin"].len(), 3);
        // After a removal, the same content is a new version too.
        let mut current = slice(vec![("w.bin", vec![latest, removed("v3", "ana@build-1")])]);
        let applied = apply(
            &model(),
            &mut current,
            &holder,
            &[put("w.bin", SHA_B, Base::Any)],
            10,
        )
        .unwrap();
        assert_eq!(applied.entries[0].1.version, "new-w.bin");
    }

    #[test]
    fn a_base_holds_against_the_latest_version_tombstones_included() {
        let live = written("v1", SHA_A, "ana@build-1");
        let gone = removed("v2", "bo@build-2");

        assert!(Base::Any.holds(None));
        assert!(Base::Any.holds(Some(&live)));
        assert!(Base::Any.holds(Some(&gone)));

        assert!(Base::Absent.holds(None));
        assert!(Base::Absent.holds(Some(&gone)));
        assert!(!Base::Absent.holds(Some(&live)));

        assert!(Base::Version("v1".to_owned()).holds(Some(&live)));
        assert!(!Base::Version("v1".to_owned()).holds(Some(&gone)));
        // A tombstone is a version too: an edit made after the removal holds.
        assert!(Base::Version("v2".to_owned()).holds(Some(&gone)));
        assert!(!Base::Version("v1".to_owned()).holds(None));
        // Versions compare exactly.
        assert!(!Base::Version("V1".to_owned()).holds(Some(&live)));
        assert!(!Base::Version(String::new()).holds(Some(&live)));
    }

    #[test]
    fn wit_bases_convert_case_for_case() {
        assert_eq!(Base::from(WitBase::Any), Base::Any);
        assert_eq!(Base::from(WitBase::Absent), Base::Absent);
        assert_eq!(
            Base::from(WitBase::Version("v7".to_owned())),
            Base::Version("v7".to_owned())
        );
    }

    #[test]
    fn conflicts_name_each_refused_change_in_order_with_what_the_store_has() {
        let latest = slice(vec![
            (
                "a.bin",
                vec![
                    written("a1", SHA_A, "ana@build-1"),
                    written("a2", SHA_B, "bo@build-2"),
                ],
            ),
            (
                "b.bin",
                vec![
                    written("b1", SHA_A, "ana@build-1"),
                    removed("b2", "cy@build-3"),
                ],
            ),
            ("c.bin", vec![written("c1", SHA_A, "ana@build-1")]),
        ]);
        let changes = [
            put("a.bin", SHA_C, Base::Version("a1".to_owned())),
            // A trim has no base: never a conflict.
            Change::Trim {
                keep: 1,
                version: "trim-1".to_owned(),
            },
            remove("b.bin", Base::Version("b1".to_owned())),
            put("c.bin", SHA_C, Base::Version("c1".to_owned())),
            put("new.bin", SHA_C, Base::Version("x9".to_owned())),
            put("c.bin", SHA_C, Base::Absent),
            put("b.bin", SHA_C, Base::Absent),
            put("new.bin", SHA_C, Base::Absent),
            put("a.bin", SHA_C, Base::Any),
        ];
        let found = conflicts(&model(), &latest, &changes);
        assert_eq!(
            summary(&found),
            vec![
                ("a.bin", Some("a1"), Some("a2"), "bo@build-2", false),
                ("b.bin", Some("b1"), Some("b2"), "cy@build-3", true),
                ("new.bin", Some("x9"), None, "", false),
                ("c.bin", None, Some("c1"), "ana@build-1", false),
            ]
        );
    }

    #[test]
    fn a_put_of_the_latest_content_is_no_conflict_whatever_its_base() {
        let latest = slice(vec![
            (
                "a.bin",
                vec![
                    written("a1", SHA_A, "ana@build-1"),
                    written("a2", SHA_B, "bo@build-2"),
                ],
            ),
            (
                "gone.bin",
                vec![
                    written("g1", SHA_A, "ana@build-1"),
                    removed("g2", "bo@build-2"),
                ],
            ),
        ]);
        // The latest content again: a commit whose answer was lost, retried.
        let same = [
            put("a.bin", SHA_B, Base::Absent),
            put("a.bin", SHA_B, Base::Version("a1".to_owned())),
        ];
        assert!(conflicts(&model(), &latest, &same).is_empty());

        let different = [
            // The content of an older version is not the latest content.
            put("a.bin", SHA_A, Base::Absent),
            // Nor is the content the name had before it was removed,
            put("gone.bin", SHA_A, Base::Version("g1".to_owned())),
            // nor a tombstone's empty hash.
            put("gone.bin", "", Base::Version("g1".to_owned())),
            // The rule is for puts: a removal's base always counts.
            remove("a.bin", Base::Version("a1".to_owned())),
        ];
        assert_eq!(
            summary(&conflicts(&model(), &latest, &different)),
            vec![
                ("a.bin", None, Some("a2"), "bo@build-2", false),
                ("gone.bin", Some("g1"), Some("g2"), "bo@build-2", true),
                ("gone.bin", Some("g1"), Some("g2"), "bo@build-2", true),
                ("a.bin", Some("a1"), Some("a2"), "bo@build-2", false),
            ]
        );
    }

    #[test]
    fn check_bases_refuses_with_every_conflict_or_accepts_when_all_hold() {
        let latest = slice(vec![("a.bin", vec![written("a2", SHA_B, "bo@build-2")])]);
        let changes = [
            put("a.bin", SHA_A, Base::Absent),
            put("b.bin", SHA_A, Base::Absent),
            remove("a.bin", Base::Version("a1".to_owned())),
        ];
        match check_bases(&model(), &latest, &changes) {
            Err(Error::Conflict(found)) => assert_eq!(
                summary(&found),
                vec![
                    ("a.bin", None, Some("a2"), "bo@build-2", false),
                    ("a.bin", Some("a1"), Some("a2"), "bo@build-2", false),
                ]
            ),
            other => panic!("expected conflict, got {other:?}"),
        }

        let holding = [
            remove("a.bin", Base::Version("a2".to_owned())),
            put("b.bin", SHA_A, Base::Absent),
        ];
        assert!(check_bases(&model(), &latest, &holding).is_ok());
        assert!(check_bases(&model(), &latest, &[]).is_ok());
    }

    #[test]
    fn the_commit_token_is_the_first_changes_version_and_needs_a_change() {
        let changes = [
            Change::Trim {
                keep: 3,
                version: "trim-1".to_owned(),
            },
            remove("a.bin", Base::Any),
            put("b.bin", SHA_A, Base::Any),
        ];
        assert_eq!(commit_token(&changes).unwrap(), "trim-1");
        assert_eq!(commit_token(&changes[1..]).unwrap(), "gone-a.bin");
        assert_eq!(commit_token(&changes[2..]).unwrap(), "new-b.bin");
        match commit_token(&[]) {
            Err(Error::InvalidInput(message)) => {
                assert_eq!(message, "a commit needs at least one change");
            }
            other => panic!("expected invalid-input, got {other:?}"),
        }
    }

    #[test]
    fn only_a_lease_on_the_same_model_covers_it() {
        assert!(covers(&lease(LockScope::Model(model())), &model()).is_ok());
        let refused = [
            LockScope::Model(ModelRef {
                model_type: "vision/detector".to_owned(),
                model_id: "m-43".to_owned(),
            }),
            LockScope::Model(ModelRef {
                model_type: "vision/detectors".to_owned(),
                model_id: "m-42".to_owned(),
            }),
            // The same label `vision/detector/m-42`, but another model.
            LockScope::Model(ModelRef {
                model_type: "vision".to_owned(),
                model_id: "detector/m-42".to_owned(),
            }),
            // A wider lease excludes writers; it does not make its holder one.
            LockScope::Namespace,
            LockScope::Global,
        ];
        for scope in refused {
            match covers(&lease(scope), &model()) {
                Err(Error::InvalidInput(message)) => assert_eq!(
                    message,
                    "writing model vision/detector/m-42 needs that model's lease"
                ),
                other => panic!("expected invalid-input, got {other:?}"),
            }
        }
    }
}
