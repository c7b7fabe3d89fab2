//! Changes to one model's slice of the index, as every index kind applies
//! them: new versions, tombstones, retention.

use crate::clock;
use crate::layout::{self, DATA_AREA};
use crate::partition::{Entry, Partition};
use crate::silt::datastore::types::{Error, Lease, LockScope, ModelRef};
use crate::store;

/// One change to a model.
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
    },
    /// A tombstone for `name`.
    Remove {
        /// File name.
        name: String,
        /// Fresh version token of the tombstone.
        version: String,
    },
    /// Expire every version of every name beyond the newest `keep` (gc).
    Trim {
        /// Versions kept per name (at least 1).
        keep: u32,
        /// Fresh token of this commit.
        version: String,
    },
}

impl Change {
    /// Its fresh version token; the first change's token is the commit's.
    pub fn version(&self) -> &str {
        match self {
            Change::Put { version, .. }
            | Change::Remove { version, .. }
            | Change::Trim { version, .. } => version,
        }
    }
}

/// What a commit wrote.
pub struct Committed {
    /// The model's slice as committed.
    pub partition: Partition,
    /// Its new version.
    pub version: String,
    /// The entries this commit added, by name.
    pub entries: Vec<(String, Entry)>,
    /// The versions it expired (retention or gc), by name.
    pub expired: Vec<(String, Entry)>,
    /// Objects of expired versions deleted from the store, and their bytes.
    pub deleted: (u64, u64),
}

/// The outcome of applying changes to a slice in memory.
pub struct Applied {
    /// The entries added, by name.
    pub entries: Vec<(String, Entry)>,
    /// Versions the retention dropped, by name: delete their objects once
    /// the commit has landed.
    pub dropped: Vec<(String, Entry)>,
}

/// The commit token of `changes` (the first change's version token).
pub fn commit_token(changes: &[Change]) -> Result<String, Error> {
    changes
        .first()
        .map(|change| change.version().to_owned())
        .ok_or_else(|| Error::InvalidInput("a commit needs at least one change".into()))
}

/// Checks that `lease` is a lease on `model`.
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
pub fn silent_too_long(renewed_at: u64, ttl_ms: u32) -> Option<u64> {
    let silent = clock::now_ms().saturating_sub(renewed_at);
    (silent > u64::from(ttl_ms) * 3 / 4).then_some(silent)
}

/// Checks, at the start of a call, that `lease` covers `model` and that the
/// host's copy of it is fresh enough to start work under. (A commit at the
/// end of a long call cannot judge by this copy, which the host has renewed
/// since; it asks the store, see the index's commit.)
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
pub fn apply(
    model: &ModelRef,
    slice: &mut Partition,
    lease: &Lease,
    changes: &[Change],
    retain: u32,
) -> Result<Applied, Error> {
    let now = clock::now_ms();
    let mut applied = Applied {
        entries: Vec::new(),
        dropped: Vec::new(),
    };
    for change in changes {
        let (name, entry) = match change {
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
            } => (
                name,
                Entry {
                    version: version.clone(),
                    size: *size,
                    sha256: sha256.clone(),
                    generation: lease.generation,
                    writer: lease.holder.name.clone(),
                    committed_at: now,
                    deleted: false,
                },
            ),
            Change::Remove { name, version } => {
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
                        generation: lease.generation,
                        writer: lease.holder.name.clone(),
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

/// Deletes the objects of versions the retention or gc dropped. Best
/// effort: the commit has landed, and an object left behind is only wasted
/// space. Returns the objects deleted and their bytes.
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
