//! The summary of an area: each model's store version as its sidecar holds
//! it, and which models have every live file stamped, in one small file —
//! so that a no-op sync reads one file instead of a sidecar per model.
//!
//! Sidecars are saved only through an [`Update`], which records each one it
//! saved in the summary when the call ends: by [`Update::finish`], or by
//! its drop when the call returns early on an error. No caller has to
//! remember a flush.
//!
//! ```no_run,standalone_crate
//! use silt_extension::layout::{self, DATA_AREA};
//! use silt_extension::{local, summary};
//! use silt_extension::silt::datastore::types::{Error, ModelRef};
//!
//! /// The working-copy paths of the model's files changed since the last sync.
//! fn edited(model: &ModelRef) -> Result<Vec<String>, Error> {
//!     let mut update = summary::Update::begin(DATA_AREA);
//!     let mut sidecar = local::load(DATA_AREA, model);
//!     let changes = local::changes(model, &mut sidecar)?;
//!     update.save(model, &sidecar)?; // keeps the refreshed stamps
//!     update.finish()?;
//!     Ok(changes.iter().map(|change| layout::working_path(model, change.name())).collect())
//! }
//! ```

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::cache_file;
use crate::layout;
use crate::local::{self, Sidecar};
use crate::silt::datastore::types::{Error, ModelRef};

/// The summary of an area (see the module's doc). A hint only: a model
/// whose entry differs from the store is checked against its sidecar, so a
/// stale entry costs a read, never a missed change (see [`Update`] for why
/// it is never ahead).
///
/// ```no_run,standalone_crate
/// use silt_extension::layout::{self, DATA_AREA};
/// use silt_extension::summary::Summary;
/// use silt_extension::Listed;
///
/// /// The models whose sidecars are behind the store's listing.
/// fn behind(listed: &Listed) -> usize {
///     let summary = Summary::read(DATA_AREA);
///     listed
///         .values()
///         .filter(|(model, version)| !summary.is_current(&layout::model_label(model), version, false))
///         .count()
/// }
/// ```
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Summary {
    /// Model label → the store version its sidecar holds.
    pub versions: BTreeMap<String, String>,
    /// Labels of the models whose every live file is stamped.
    pub complete: BTreeSet<String>,
}

impl Summary {
    /// The summary of `area` (empty when missing or unreadable).
    ///
    /// ```no_run,standalone_crate
    /// use silt_extension::layout::DATA_AREA;
    /// use silt_extension::summary::Summary;
    ///
    /// let summary = Summary::read(DATA_AREA);
    /// println!("{} models seen here, {} of them complete", summary.versions.len(), summary.complete.len());
    /// ```
    pub fn read(area: &str) -> Self {
        cache_file::read_file(&layout::summary_path(area))
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .unwrap_or_default()
    }

    /// True when the summary says `label`'s sidecar is at `version` and,
    /// with `need_complete`, that every live file of it is stamped.
    ///
    /// ```no_run,standalone_crate
    /// use silt_extension::layout::DATA_AREA;
    /// use silt_extension::summary::Summary;
    ///
    /// let summary = Summary::read(DATA_AREA);
    /// // A pull that fetches missing files needs every file present, too.
    /// let skip = summary.is_current("vision/detector/m-42", "1767225600000-9f2c4e1a7b3d5c60", true);
    /// ```
    pub fn is_current(&self, label: &str, version: &str, need_complete: bool) -> bool {
        self.versions.get(label).is_some_and(|v| v == version)
            && (!need_complete || self.complete.contains(label))
    }
}

/// The most memory the saved sidecars' bytes kept for the summary may take
/// (their buffers' capacity); sidecars saved beyond it are parsed again
/// instead. Bounds a call's memory on a pull of many models; a hydration
/// call's batch (64 models of a few dozen files) fits many times over.
const KEPT_FOR_FLUSH: usize = 16 << 20;

/// A sidecar as [`Update::save`] wrote it: its bytes and what the summary
/// takes from it.
struct Written {
    bytes: Vec<u8>,
    store_version: Option<String>,
    complete: bool,
}

impl Written {
    /// The memory its bytes take.
    fn size(&self) -> usize {
        self.bytes.capacity()
    }
}

/// Sidecars saved (or noted current) by a call, not yet in the summary.
#[derive(Default)]
struct Saved {
    /// Model label → the model and, when kept, what was written.
    models: BTreeMap<String, (ModelRef, Option<Written>)>,
    /// The memory the bytes kept in `models` take.
    kept: usize,
}

impl Saved {
    /// Notes `model`'s sidecar for the summary, keeping what was `written`
    /// while the bound allows (replacing what an earlier save of it kept).
    fn note(&mut self, model: &ModelRef, written: Option<Written>) {
        let label = layout::model_label(model);
        if let Some((_, Some(earlier))) = self.models.remove(&label) {
            self.kept -= earlier.size();
        }
        let written = written.filter(|w| self.kept + w.size() <= KEPT_FOR_FLUSH);
        self.kept += written.as_ref().map_or(0, Written::size);
        self.models.insert(label, (model.clone(), written));
    }
}

/// The sidecars one call saves in one area, recorded in the area's summary
/// when the call ends ([`Update::finish`], or the drop of an update the
/// call left on an error).
///
/// Each entry is taken from the sidecar as it is on disk then: another
/// process may have saved the sidecar since, and the summary must never
/// claim a version the sidecar does not hold (a pull would then skip a
/// model whose working copy is behind). When the file still holds exactly
/// the bytes this update saved, the entry is what was saved, without
/// parsing the file again.
///
/// ```no_run,standalone_crate
/// use silt_extension::Index;
/// use silt_extension::layout::DATA_AREA;
/// use silt_extension::{local, summary};
/// use silt_extension::silt::datastore::types::{Error, ModelRef};
///
/// /// Remembers each model's slice as the store has it now.
/// fn remember<I: Index>(models: &[ModelRef]) -> Result<(), Error> {
///     let mut update = summary::Update::begin(DATA_AREA);
///     for model in models {
///         let mut sidecar = local::load(DATA_AREA, model);
///         let read = I::read(model)?; // an error here still records what was saved
///         // Files present here were not brought to this version: keep the old one.
///         if sidecar.local.is_empty() {
///             sidecar.store_version = read.version;
///         }
///         sidecar.partition = Some(read.partition);
///         update.save(model, &sidecar)?;
///     }
///     update.finish()
/// }
/// ```
pub struct Update {
    area: String,
    saved: Saved,
}

impl Update {
    /// An update of `area`'s summary, with nothing saved yet.
    pub fn begin(area: &str) -> Self {
        Self {
            area: area.to_owned(),
            saved: Saved::default(),
        }
    }

    /// Saves `model`'s sidecar atomically and notes it for the summary;
    /// nothing when the file already holds exactly this sidecar (a summary
    /// left stale meanwhile is repaired by the next listing pull: see
    /// [`Update::note_current`]).
    ///
    /// # Errors
    /// When the cache cannot be written ([`crate::cache_file`]).
    pub fn save(&mut self, model: &ModelRef, sidecar: &Sidecar) -> Result<(), Error> {
        if let Some(bytes) = local::write_sidecar(&self.area, model, sidecar)? {
            let written = Written {
                store_version: sidecar.store_version.clone(),
                complete: local::all_stamped(sidecar),
                bytes,
            };
            self.saved.note(model, Some(written));
        }
        Ok(())
    }

    /// Notes that `model`'s sidecar, as it is on disk, belongs in the
    /// summary: for a pull that found the summary behind a sidecar that is
    /// current (a call killed between saving the sidecar and recording it,
    /// or two calls recording at once), so that the entry is repaired.
    pub fn note_current(&mut self, model: &ModelRef) {
        self.saved.note(model, None);
    }

    /// Records what was saved so far in the summary, and goes on: for a
    /// call that must not lose what it saved before a long step.
    ///
    /// # Errors
    /// When the summary cannot be written ([`crate::cache_file`]).
    pub fn flush(&mut self) -> Result<(), Error> {
        let mine = std::mem::take(&mut self.saved);
        if mine.models.is_empty() {
            return Ok(());
        }
        let mut summary = Summary::read(&self.area);
        for (label, (model, written)) in mine.models {
            let (store_version, complete) =
                on_disk_for_summary(&self.area, &model, written.as_ref());
            match store_version {
                Some(version) => summary.versions.insert(label.clone(), version),
                None => summary.versions.remove(&label),
            };
            if complete {
                summary.complete.insert(label);
            } else {
                summary.complete.remove(&label);
            }
        }
        let bytes = serde_json::to_vec(&summary).expect("a summary serializes");
        cache_file::write_atomic(&layout::summary_path(&self.area), &bytes)?;
        cache_file::sweep_temporaries_once();
        Ok(())
    }

    /// Records what was saved in the summary and ends the update.
    ///
    /// # Errors
    /// As [`Update::flush`].
    pub fn finish(mut self) -> Result<(), Error> {
        self.flush()
    }
}

impl Drop for Update {
    /// A call that returns early on an error still records what it saved
    /// before the error; the error it returns is the one that matters, so a
    /// failure to write the summary here is only logged (the summary is a
    /// hint, and a stale entry costs a read).
    fn drop(&mut self) {
        if let Err(err) = self.flush() {
            crate::log_warn(&format!(
                "could not record the saved sidecars in the summary: {err:?}"
            ));
        }
    }
}

/// What the summary takes from `model`'s sidecar as it is on disk now: its
/// store version, and whether it is complete (a version and every live file
/// stamped). When the file still holds exactly what this call `written`,
/// that is taken as written, without parsing the file again (a sidecar is
/// tens of KiB of JSON, and a pull saves one a model).
fn on_disk_for_summary(
    area: &str,
    model: &ModelRef,
    written: Option<&Written>,
) -> (Option<String>, bool) {
    let path = layout::sidecar_path(area, model);
    let Ok(bytes) = cache_file::read_file(&path) else {
        return (None, false);
    };
    if let Some(written) = written.filter(|w| w.bytes == bytes) {
        let complete = written.store_version.is_some() && written.complete;
        return (written.store_version.clone(), complete);
    }
    let on_disk = local::parse_sidecar(&path, &bytes);
    let complete = on_disk.store_version.is_some() && local::all_stamped(&on_disk);
    (on_disk.store_version, complete)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::model;

    fn written(len: usize) -> Written {
        Written {
            bytes: vec![b'x'; len],
            store_version: Some("v1".to_owned()),
            complete: true,
        }
    }

    fn kept_bytes(saved: &Saved, id: &str) -> Option<usize> {
        saved.models[&layout::model_label(&model(id))]
            .1
            .as_ref()
            .map(|w| w.bytes.len())
    }

    #[test]
    fn a_later_save_or_note_replaces_what_an_earlier_save_kept() {
        let mut saved = Saved::default();
        saved.note(&model("a"), Some(written(100)));
        saved.note(&model("b"), Some(written(50)));
        assert_eq!(saved.kept, 150);
        // Saved again: the newer bytes replace the older.
        saved.note(&model("a"), Some(written(70)));
        assert_eq!(saved.kept, 120);
        assert_eq!(kept_bytes(&saved, "a"), Some(70));
        // Noted current afterwards: nothing of it is kept, so the flush parses it.
        saved.note(&model("a"), None);
        assert_eq!(saved.kept, 50);
        assert_eq!(kept_bytes(&saved, "a"), None);
        assert_eq!(saved.models.len(), 2);
    }

    #[test]
    fn the_bound_keeps_the_model_but_not_its_bytes() {
        let mut saved = Saved::default();
        saved.note(&model("a"), Some(written(KEPT_FOR_FLUSH - 10)));
        saved.note(&model("b"), Some(written(20)));
        assert_eq!(saved.kept, KEPT_FOR_FLUSH - 10);
        assert_eq!(kept_bytes(&saved, "b"), None, "over the bound");
        // Replacing the large one frees its share first.
        saved.note(&model("a"), Some(written(KEPT_FOR_FLUSH - 5)));
        assert_eq!(saved.kept, KEPT_FOR_FLUSH - 5);
        assert_eq!(saved.models.len(), 2);
    }

    #[test]
    fn an_update_with_nothing_saved_writes_no_summary() {
        // Off wasm the cache is not there: a flush that tried to write would fail.
        let mut update = Update::begin("data");
        assert!(update.flush().is_ok());
        assert!(update.finish().is_ok());
    }
}
