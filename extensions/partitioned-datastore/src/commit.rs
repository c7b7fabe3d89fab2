//! Commits: compare-and-swap of one partition, fenced by the caller's lease.
//!
//! The new content is already in the store under fresh keys; a commit only
//! makes the partition point at it. On a lost race the partition is re-read
//! and the same changes are applied again (they touch only their own names,
//! so applying them to a newer partition is the merge).

use crate::clock;
use crate::layout;
use crate::meta;
use crate::partition::{self, Entry, Partition};
use crate::silt::datastore::log;
use crate::silt::datastore::object_store::PutMode;
use crate::silt::datastore::types::{Error, Lease, LockScope, ModelRef};
use crate::store::{self, Written};

/// Attempts before a commit gives up on a partition that keeps changing.
const MAX_ATTEMPTS: u32 = 16;

/// One change to a partition.
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
    fn name(&self) -> &str {
        match self {
            Change::Put { name, .. } | Change::Remove { name, .. } => name,
        }
    }

    fn version(&self) -> &str {
        match self {
            Change::Put { version, .. } | Change::Remove { version, .. } => version,
        }
    }
}

/// What a commit wrote.
pub struct Committed {
    /// The partition as committed.
    pub partition: Partition,
    /// Its new store version.
    pub version: String,
    /// The entries this commit added, by name.
    pub entries: Vec<(String, Entry)>,
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

/// The lock-lost error of a fenced commit.
pub fn fenced(model: &ModelRef, ours: u64, fence: u64) -> Error {
    Error::LockLost(format!(
        "the lease on model {} (generation {ours}) was taken over (the model is now at generation {fence}); nothing was committed",
        layout::model_label(model)
    ))
}

/// Applies `changes` to the partition of `model` in `area` by compare-and-swap.
///
/// Versions beyond the datastore's retention are dropped from the partition,
/// and their objects deleted once the commit has landed.
pub fn commit(
    area: &str,
    model: &ModelRef,
    lease: &Lease,
    changes: &[Change],
) -> Result<Committed, Error> {
    check_lease(lease, model)?;
    let retain = meta::read()?.retain_versions;
    let key = layout::partition_key(area, model);
    let Some(token) = changes.first().map(|change| change.version().to_owned()) else {
        return Err(Error::InvalidInput(
            "a commit needs at least one change".into(),
        ));
    };
    for attempt in 0..MAX_ATTEMPTS {
        let partition::Versioned {
            partition: mut next,
            version,
        } = partition::read(area, model)?;
        // A newer generation, or the same generation raised by another
        // holder (possible only after a force-release), shuts us out.
        let ours = next.fence == lease.generation && next.fence_token == lease.token;
        if next.fence > lease.generation || (next.fence == lease.generation && !ours) {
            return Err(fenced(model, lease.generation, next.fence));
        }
        // The lease copy we were handed may be older than the host's last
        // renewal; the lock object says whether it is still ours and fresh.
        crate::leases::confirm(lease)?;
        next.fence = lease.generation;
        next.fence_token = lease.token.clone();
        next.seq += 1;
        let now = clock::now_ms();
        let mut dropped = Vec::new();
        let mut entries = Vec::new();
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
                    if next.live(name).is_none() {
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
            entries.push((change.name().to_owned(), entry.clone()));
            let name = change.name();
            dropped.extend(
                next.push_version(name, entry, retain)
                    .into_iter()
                    .map(|old| (name.to_owned(), old)),
            );
        }
        let mode = match &version {
            Some(version) => PutMode::Update(version.clone()),
            None => PutMode::Create,
        };
        match store::put_owned(&key, &next.to_bytes(), &mode, &token)? {
            Written::Landed(new_version) => {
                delete_dropped(area, model, &dropped);
                return Ok(Committed {
                    partition: next,
                    version: new_version,
                    entries,
                });
            }
            Written::Lost => clock::backoff(attempt),
        }
    }
    Err(Error::PreconditionFailed(format!(
        "{key}: changed by others on each of {MAX_ATTEMPTS} attempts; try again"
    )))
}

/// Deletes the objects of versions the retention dropped. Best effort: the
/// commit has landed, and an object left behind is only wasted space.
fn delete_dropped(area: &str, model: &ModelRef, dropped: &[(String, Entry)]) {
    for (name, entry) in dropped.iter().filter(|(_, entry)| !entry.deleted) {
        let key = layout::object_key(area, model, name, &entry.version);
        if let Err(err) = store::delete(&key) {
            log::log(
                log::Level::Warn,
                &format!("retention: could not delete {key} (left behind, harmless): {err:?}"),
            );
        }
    }
}
