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
}

impl Change {
    /// The file name it changes.
    pub fn name(&self) -> &str {
        match self {
            Change::Put { name, .. } | Change::Remove { name, .. } => name,
        }
    }

    /// Its fresh version token; the first change's token is the commit's.
    pub fn version(&self) -> &str {
        match self {
            Change::Put { version, .. } | Change::Remove { version, .. } => version,
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

/// Checks, at the start of a call, that `lease` covers `model` and that the
/// host's copy of it is fresh enough to start work under.
pub fn check_lease(lease: &Lease, model: &ModelRef) -> Result<(), Error> {
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
    let silent_for = clock::now_ms().saturating_sub(lease.renewed_at);
    if silent_for > u64::from(lease.ttl_ms) * 3 / 4 {
        return Err(Error::LockLost(format!(
            "the lease on model {} was last renewed {silent_for} ms ago (TTL {} ms); stopped before committing so that a new holder cannot be overwritten",
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
        let entry = match change {
            Change::Put {
                version,
                size,
                sha256,
                ..
            } => Entry {
                version: version.clone(),
                size: *size,
                sha256: sha256.clone(),
                generation: lease.generation,
                writer: lease.holder.name.clone(),
                committed_at: now,
                deleted: false,
            },
            Change::Remove { name, version } => {
                if slice.live(name).is_none() {
                    return Err(Error::NotFound(format!(
                        "{} has no file `{name}`",
                        layout::model_label(model)
                    )));
                }
                Entry {
                    version: version.clone(),
                    size: 0,
                    sha256: String::new(),
                    generation: lease.generation,
                    writer: lease.holder.name.clone(),
                    committed_at: now,
                    deleted: true,
                }
            }
        };
        let name = change.name();
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

/// Deletes the objects of versions the retention dropped. Best effort: the
/// commit has landed, and an object left behind is only wasted space.
pub fn delete_dropped(model: &ModelRef, dropped: &[(String, Entry)]) {
    for (name, entry) in dropped.iter().filter(|(_, entry)| !entry.deleted) {
        let key = layout::object_key(DATA_AREA, model, name, &entry.version);
        if let Err(err) = store::delete(&key) {
            crate::log_warn(&format!(
                "retention: could not delete {key} (left behind, harmless): {err:?}"
            ));
        }
    }
}
