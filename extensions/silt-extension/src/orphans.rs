//! What is stored against what the index references: the objects of the
//! data area no index entry names (orphans), and the entries whose object is
//! missing or of another size. `verify` reports both; `collect-orphans`
//! deletes orphans that are safe to delete.
//!
//! An orphan comes from an upload whose commit never came (a put or push
//! killed, refused as a conflict, or fenced after a lost lease) or from an
//! expired version whose best-effort delete failed. An upload whose commit
//! is still on its way looks the same, so an orphan is deleted only when
//! it is older than the caller's window AND nobody holds a live lease on
//! any model its key could belong to (a model type may hold `/`, so a key
//! names several candidates). A writer that takes a lease after that check
//! uploads new objects (younger than the window); one whose lease expired
//! can neither renew it (an expired lease is never revived, see
//! `lease::renew`) nor commit (its commit confirms the lease from the store).
//!
//! ```no_run,standalone_crate
//! use silt_extension::orphans::Inventory;
//! use silt_extension::silt::datastore::types::{Error, Scope};
//! use silt_extension::Index;
//!
//! fn wasted_bytes<I: Index>() -> Result<u64, Error> {
//!     let inventory = Inventory::take::<I>(&Scope::All)?;
//!     Ok(inventory.orphans().iter().map(|o| o.size).sum())
//! }
//! ```

use std::collections::{BTreeMap, BTreeSet};

use crate::Index;
use crate::layout::{self, DATA_AREA};
use crate::partition::Partition;
use crate::silt::datastore::object_store::ObjectMeta;
use crate::silt::datastore::types::{CorruptObject, Error, LockInfo, LockScope, ModelRef, Scope};
use crate::store;

/// An object no index entry references.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Orphan {
    /// Its key.
    pub key: String,
    /// Its size.
    pub size: u64,
    /// Its last modification (ms since the epoch).
    pub last_modified: u64,
}

/// The stored objects of a scope and the index slices that reference them.
#[derive(Debug, Default)]
pub struct Inventory {
    /// The scope's models (and those nested under their prefixes) whose
    /// slice could be read.
    pub slices: Vec<(ModelRef, Partition)>,
    /// Models whose slice is corrupt: objects under their prefix are never
    /// called orphans (what they reference is unknown).
    pub corrupt: Vec<(ModelRef, CorruptObject)>,
    /// The scope's models, as asked.
    pub scoped: Option<Vec<ModelRef>>,
    /// Every object under the scope's prefixes, by key.
    pub stored: BTreeMap<String, ObjectMeta>,
}

/// Where a model's objects are.
fn model_prefix(model: &ModelRef) -> String {
    layout::model_prefix(DATA_AREA, model)
}

impl Inventory {
    /// Lists the objects of `scope` (one LIST page per 1,000 objects) and
    /// reads the slice of every model that could own one of them.
    ///
    /// # Errors
    /// The store's failure, or a scope naming an invalid model.
    ///
    /// ```no_run,standalone_crate
    /// use silt_extension::orphans::Inventory;
    /// use silt_extension::silt::datastore::types::{Error, ModelRef, Scope};
    /// use silt_extension::Index;
    ///
    /// fn objects_of<I: Index>(model: ModelRef) -> Result<usize, Error> {
    ///     Ok(Inventory::take::<I>(&Scope::Models(vec![model]))?.stored.len())
    /// }
    /// ```
    pub fn take<I: Index>(scope: &Scope) -> Result<Self, Error> {
        let scoped = match scope {
            Scope::All => None,
            Scope::Models(models) => {
                for model in models {
                    layout::check_model(model)?;
                }
                Some(models.clone())
            }
        };
        let prefixes: Vec<String> = match &scoped {
            None => vec![layout::area_prefix(DATA_AREA)],
            Some(models) => models.iter().map(model_prefix).collect(),
        };
        let mut stored = BTreeMap::new();
        for prefix in &prefixes {
            for meta in store::list_all(prefix)? {
                stored.insert(meta.key.clone(), meta);
            }
        }
        // Every model whose objects can be under a prefix scanned: those
        // under it, and (for a scoped scan) the scoped models themselves.
        let mut owners: Vec<ModelRef> = I::list()?
            .into_values()
            .map(|(model, _)| model)
            .filter(|model| {
                let own = model_prefix(model);
                prefixes.iter().any(|p| own.starts_with(p.as_str()))
            })
            .collect();
        for model in scoped.iter().flatten() {
            if !owners.iter().any(|m| layout::same_model(m, model)) {
                owners.push(model.clone());
            }
        }
        let mut inventory = Inventory {
            scoped,
            stored,
            ..Inventory::default()
        };
        for model in owners {
            match I::read(&model) {
                Ok(versioned) => inventory.slices.push((model, versioned.partition)),
                Err(Error::Corrupt(corrupt)) => inventory.corrupt.push((model, corrupt)),
                Err(err) => return Err(err),
            }
        }
        Ok(inventory)
    }

    /// Every key an index entry of the slices read references.
    fn referenced(&self) -> BTreeSet<String> {
        let mut keys = BTreeSet::new();
        for (model, slice) in &self.slices {
            for (name, versions) in &slice.files {
                for entry in versions.iter().filter(|entry| !entry.deleted) {
                    keys.insert(layout::object_key(DATA_AREA, model, name, &entry.version));
                }
            }
        }
        keys
    }

    /// The stored objects nothing references (outside corrupt models).
    ///
    /// ```no_run,standalone_crate
    /// use silt_extension::orphans::Inventory;
    ///
    /// fn count(inventory: &Inventory) -> usize {
    ///     inventory.orphans().len()
    /// }
    /// ```
    pub fn orphans(&self) -> Vec<Orphan> {
        let referenced = self.referenced();
        let unknown: Vec<String> = self.corrupt.iter().map(|(m, _)| model_prefix(m)).collect();
        self.stored
            .values()
            .filter(|meta| !referenced.contains(&meta.key))
            .filter(|meta| !unknown.iter().any(|p| meta.key.starts_with(p.as_str())))
            .map(|meta| Orphan {
                key: meta.key.clone(),
                size: meta.size,
                last_modified: meta.last_modified,
            })
            .collect()
    }

    /// The index entries of the scoped models (all, for `all`) whose object
    /// is missing or of another size: (key, problem).
    ///
    /// ```no_run,standalone_crate
    /// use silt_extension::orphans::Inventory;
    ///
    /// fn healthy(inventory: &Inventory) -> bool {
    ///     inventory.damaged().is_empty() && inventory.corrupt.is_empty()
    /// }
    /// ```
    pub fn damaged(&self) -> Vec<(String, String)> {
        let mut found = Vec::new();
        for (model, slice) in &self.slices {
            let in_scope = self
                .scoped
                .as_ref()
                .is_none_or(|models| models.iter().any(|m| layout::same_model(m, model)));
            if !in_scope {
                continue;
            }
            let label = layout::model_label(model);
            for (name, versions) in &slice.files {
                for entry in versions.iter().filter(|entry| !entry.deleted) {
                    let key = layout::object_key(DATA_AREA, model, name, &entry.version);
                    match self.stored.get(&key) {
                        Some(meta) if meta.size == entry.size => {}
                        Some(meta) => found.push((
                            key,
                            format!(
                                "size {} but the index of {label} records {}",
                                meta.size, entry.size
                            ),
                        )),
                        None => found.push((
                            key,
                            format!("missing; the index of {label} lists it for `{name}`"),
                        )),
                    }
                }
            }
        }
        found
    }
}

/// True when someone holds a live lease `orphan` may be committed under.
///
/// ```no_run,standalone_crate
/// use silt_extension::orphans::{self, Orphan};
/// use silt_extension::silt::datastore::types::LockInfo;
///
/// fn deletable(orphan: &Orphan, locks: &[LockInfo]) -> bool {
///     !orphans::may_be_committed(orphan, locks)
/// }
/// ```
pub fn may_be_committed(orphan: &Orphan, locks: &[LockInfo]) -> bool {
    let candidates = layout::models_of_key(DATA_AREA, &orphan.key);
    locks
        .iter()
        .filter(|lock| !lock.stale)
        .any(|lock| match &lock.scope {
            LockScope::Model(held) => candidates.iter().any(|c| layout::same_model(c, held)),
            // Structural work (gc, migrations) writes no data objects.
            LockScope::Namespace | LockScope::Global => false,
        })
}

/// The unleased commits whose uploads are among `orphans`, by model: those
/// announced in the journal under the token that ends an orphan's key. A
/// collector revokes them in their partitions before deleting the uploads
/// ([`crate::change::Change::Revoke`]; see [`crate::unleased`]). One
/// listing of the journal, as far back as it keeps announcements.
///
/// # Errors
/// The store's failure.
///
/// ```no_run,standalone_crate
/// use silt_extension::orphans::{self, Orphan};
/// use silt_extension::silt::datastore::types::Error;
///
/// fn to_revoke(orphans: &[Orphan]) -> Result<usize, Error> {
///     let by_model = orphans::unleased_in_flight(orphans, silt_extension::clock::now_ms())?;
///     Ok(by_model.values().map(|(_, tokens)| tokens.len()).sum())
/// }
/// ```
pub fn unleased_in_flight(
    orphans: &[Orphan],
    now: u64,
) -> Result<BTreeMap<String, (ModelRef, Vec<String>)>, Error> {
    let tokens: BTreeSet<&str> = orphans
        .iter()
        .filter_map(|orphan| orphan.key.rsplit('/').next())
        .collect();
    let mut by_model: BTreeMap<String, (ModelRef, Vec<String>)> = BTreeMap::new();
    if tokens.is_empty() {
        return Ok(by_model);
    }
    let since = now.saturating_sub(crate::journal::PRUNE_AFTER_MS + crate::journal::CLOCK_SKEW_MS);
    for entry in crate::journal::list_after(&crate::journal::horizon_key(since))? {
        if !tokens.contains(entry.token.as_str()) {
            continue;
        }
        let (_, revoke) = by_model
            .entry(layout::model_label(&entry.model))
            .or_insert_with(|| (entry.model.clone(), Vec::new()));
        if !revoke.contains(&entry.token) {
            revoke.push(entry.token);
        }
    }
    Ok(by_model)
}
