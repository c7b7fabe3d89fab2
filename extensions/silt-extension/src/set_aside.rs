//! Setting local edits aside: what `local-edits::theirs` and `set-aside`
//! do before a pull or a hydration plans the working copy.
//!
//! An edit set aside is moved, never deleted, to
//! `.silt/conflicts/<token>/<its working path>` in the cache (silt's own
//! area, never part of a working copy); its stamp is forgotten and the
//! file is planned back at its latest committed version. A local removal
//! set aside is simply undone. A kill at any step loses nothing and
//! commits nothing (see [`SetAside::apply`]). One call of the contract uses one token, so
//! what it set aside is together in one directory.
//!
//! ```no_run,standalone_crate
//! use silt_extension::hydrate;
//! use silt_extension::layout::DATA_AREA;
//! use silt_extension::{local, summary};
//! use silt_extension::set_aside::SetAside;
//! use silt_extension::silt::datastore::types::{Error, LocalEdits, ModelRef};
//!
//! /// Plans `model` at its latest committed state, whatever was edited here.
//! fn start_clean(model: &ModelRef) -> Result<Vec<String>, Error> {
//!     let mut aside = SetAside::default();
//!     let mut update = summary::Update::begin(DATA_AREA);
//!     let mut sidecar = local::load(DATA_AREA, model);
//!     let prior = sidecar.store_version.clone();
//!     let restore = aside.apply(model, &mut sidecar, LocalEdits::SetAside, prior, &mut update)?;
//!     let mut plan = hydrate::plan(model, &mut sidecar, true)?;
//!     silt_extension::set_aside::restore(&mut plan, &sidecar, &restore);
//!     Ok(aside.moved)
//! }
//! ```

use crate::clock;
use crate::layout::{self, CACHE_STATE_DIR};
use crate::local::{self, LocalChange, Sidecar};
use crate::plan::{self, Plan};
use crate::silt::datastore::types::{Error, LocalEdits, ModelRef};
use crate::summary;

/// True when `edits` resolves local edits (`theirs`, `set-aside`): the call
/// then looks at each of its models' working copy and slice as the store
/// holds it now, not at what the journal says changed.
///
/// ```no_run,standalone_crate
/// use silt_extension::set_aside;
/// use silt_extension::silt::datastore::types::LocalEdits;
///
/// assert!(set_aside::resolves(LocalEdits::SetAside));
/// assert!(!set_aside::resolves(LocalEdits::Ours));
/// ```
pub fn resolves(edits: LocalEdits) -> bool {
    matches!(edits, LocalEdits::Theirs | LocalEdits::SetAside)
}

/// The edits one call set aside.
#[derive(Debug, Default)]
pub struct SetAside {
    /// `.silt/conflicts/<token>`, chosen at the first move.
    dir: Option<String>,
    /// Where each edit went, relative to the cache (the contract's
    /// `set-aside` list).
    pub moved: Vec<String>,
}

impl SetAside {
    /// Applies `policy` to `model`'s local edits: moves aside those it
    /// names (conflicting ones for `theirs`, all for `set-aside`; none for
    /// `keep` and `ours`) and forgets their stamps. Returns the names to
    /// plan back at their latest version (pass them to [`restore`]).
    ///
    /// The sidecar is saved (at `prior`, the store version it had before
    /// this call refreshed its slice) with every file to move stamped at
    /// [`local::SETTING_ASIDE`] BEFORE any file moves: killed in between, a
    /// file left in place is an edit whose base never holds (a push refuses
    /// it, whatever the store holds), and a file already moved is no change
    /// at all. The stamps are dropped in memory afterwards; the caller saves.
    ///
    /// # Errors
    /// `invalid-input` when a working-copy file cannot be hashed or moved;
    /// what was moved before stays moved (and listed).
    ///
    /// ```no_run,standalone_crate
    /// use silt_extension::layout::DATA_AREA;
    /// use silt_extension::{local, summary};
    /// use silt_extension::set_aside::SetAside;
    /// use silt_extension::silt::datastore::types::{Error, LocalEdits, ModelRef};
    ///
    /// fn take_theirs(model: &ModelRef) -> Result<usize, Error> {
    ///     let mut aside = SetAside::default();
    ///     let mut update = summary::Update::begin(DATA_AREA);
    ///     let mut sidecar = local::load(DATA_AREA, model);
    ///     let prior = sidecar.store_version.clone();
    ///     let restored = aside.apply(model, &mut sidecar, LocalEdits::Theirs, prior, &mut update)?;
    ///     update.save(model, &sidecar)?;
    ///     update.finish()?;
    ///     Ok(restored.len())
    /// }
    /// ```
    pub fn apply(
        &mut self,
        model: &ModelRef,
        sidecar: &mut Sidecar,
        policy: LocalEdits,
        prior: Option<String>,
        update: &mut summary::Update,
    ) -> Result<Vec<String>, Error> {
        if matches!(policy, LocalEdits::Keep | LocalEdits::Ours) {
            return Ok(Vec::new());
        }
        let mut restore = Vec::new();
        let mut to_move = Vec::new();
        for change in local::changes(model, sidecar)? {
            let (name, base) = match &change {
                LocalChange::Changed { name, base, .. }
                | LocalChange::Unhashed { name, base, .. }
                | LocalChange::Removed { name, base } => (name, base),
            };
            let latest = sidecar.partition.as_ref().and_then(|p| p.latest(name));
            if policy == LocalEdits::Theirs && base.holds(latest) {
                continue;
            }
            if let LocalChange::Changed { .. } | LocalChange::Unhashed { .. } = change {
                to_move.push(name.clone());
            }
            restore.push(name.clone());
        }
        if restore.is_empty() {
            return Ok(restore);
        }
        // First on disk: each file to move stamped at a version no commit
        // has. Killed before it moved, it is an edit whose base never
        // holds (a push refuses it); killed after, a missing file with that
        // stamp is no change (see `local::SETTING_ASIDE`).
        for name in &to_move {
            if let Some(stamp) = sidecar.local.get_mut(name) {
                stamp.version = local::SETTING_ASIDE.to_owned();
            } else {
                local::stamp_as_hashed(sidecar, name, local::SETTING_ASIDE, "", 0, 0);
            }
        }
        let mut saved = sidecar.clone();
        plan::keep_slice_only(&mut saved, prior);
        update.save(model, &saved)?;
        for name in &to_move {
            self.move_aside(model, name)?;
        }
        for name in &restore {
            sidecar.local.remove(name);
        }
        Ok(restore)
    }

    /// Moves the working-copy file `name` of `model` into this call's
    /// conflicts directory.
    fn move_aside(&mut self, model: &ModelRef, name: &str) -> Result<(), Error> {
        let dir = self.dir.get_or_insert_with(|| {
            format!("{CACHE_STATE_DIR}/conflicts/{}", clock::version_token())
        });
        let from = layout::working_path(model, name);
        let to = format!("{dir}/{from}");
        let io = |err: std::io::Error| {
            Error::InvalidInput(format!("cannot set {from} aside to {to}: {err}"))
        };
        let full_to = layout::in_cache(&to);
        if let Some((parent, _)) = full_to.rsplit_once('/') {
            std::fs::create_dir_all(parent).map_err(io)?;
        }
        std::fs::rename(layout::in_cache(&from), &full_to).map_err(io)?;
        // Said at info: the host tells the user where the edit went, in
        // its own paths (these are the cache's).
        crate::silt::datastore::log::log(
            crate::silt::datastore::log::Level::Info,
            &format!(
                "{from}: set the local edit aside to {to} (in the cache); the working copy has the latest committed version"
            ),
        );
        self.moved.push(to);
        Ok(())
    }
}

/// Plans the download of each of `names` still live in `sidecar`'s slice
/// (an edit set aside comes back at the latest version even where the plan
/// refreshes only files present).
///
/// ```no_run,standalone_crate
/// use silt_extension::hydrate::Plan;
/// use silt_extension::local::Sidecar;
///
/// fn bring_back(plan: &mut Plan, sidecar: &Sidecar, restored: &[String]) -> usize {
///     silt_extension::set_aside::restore(plan, sidecar, restored);
///     plan.downloads.len()
/// }
/// ```
pub fn restore(plan: &mut Plan, sidecar: &Sidecar, names: &[String]) {
    let Some(partition) = &sidecar.partition else {
        return;
    };
    for name in names {
        let planned = plan.downloads.iter().any(|(n, _)| n == name);
        if let Some(entry) = partition.live(name)
            && !planned
        {
            plan.downloads.push((name.clone(), entry.clone()));
        }
    }
}
