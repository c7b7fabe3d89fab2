//! Models whose index slice is corrupt, in a call that covers many models
//! (a pull, a hydration): each is skipped, the others are synced, and the
//! call fails at the end naming every corrupt one. One bad partition must
//! not stop every model's sync.
//!
//! ```no_run,standalone_crate
//! use silt_extension::corrupt_models::CorruptModels;
//! use silt_extension::silt::datastore::types::{Error, ModelRef};
//! use silt_extension::{Index, hydrate};
//!
//! fn refresh_all<I: Index>(models: &[ModelRef]) -> Result<(), Error> {
//!     let mut stats = hydrate::no_transfers();
//!     let mut corrupt = CorruptModels::default();
//!     for model in models {
//!         let mut sidecar = silt_extension::local::load(silt_extension::layout::DATA_AREA, model);
//!         let Some(_changed) = corrupt.skip(model, hydrate::refresh::<I>(model, &mut sidecar, &mut stats))? else {
//!             continue; // corrupt: the next model
//!         };
//!     }
//!     corrupt.finish(models.len())
//! }
//! ```

use crate::layout;
use crate::silt::datastore::types::{CorruptObject, Error, ModelRef};

/// The corrupt models met so far.
#[derive(Debug, Default)]
pub struct CorruptModels {
    found: Vec<(String, CorruptObject)>,
}

impl CorruptModels {
    /// Passes `result` through, except that a `corrupt` error is recorded
    /// (and logged) and becomes `None`: skip the model.
    ///
    /// # Errors
    /// Any other error of `result`.
    ///
    /// ```no_run,standalone_crate
    /// use silt_extension::corrupt_models::CorruptModels;
    /// use silt_extension::silt::datastore::types::{Error, ModelRef};
    ///
    /// fn read_or_skip(corrupt: &mut CorruptModels, model: &ModelRef, read: Result<u32, Error>) -> Result<u32, Error> {
    ///     Ok(corrupt.skip(model, read)?.unwrap_or(0))
    /// }
    /// ```
    pub fn skip<T>(
        &mut self,
        model: &ModelRef,
        result: Result<T, Error>,
    ) -> Result<Option<T>, Error> {
        match result {
            Ok(value) => Ok(Some(value)),
            Err(Error::Corrupt(corrupt)) => {
                let label = layout::model_label(model);
                crate::log_warn(&format!(
                    "{label}: skipped, its index is corrupt ({}: {}); the other models go on",
                    corrupt.object, corrupt.detail
                ));
                self.found.push((label, corrupt));
                Ok(None)
            }
            Err(err) => Err(err),
        }
    }

    /// `Ok` when no model was corrupt; else `corrupt`, naming the first
    /// corrupt object and every corrupt model, and saying that the others
    /// (of `total`) were done.
    ///
    /// # Errors
    /// `corrupt`, as said.
    ///
    /// ```no_run,standalone_crate
    /// use silt_extension::corrupt_models::CorruptModels;
    ///
    /// assert!(CorruptModels::default().finish(3).is_ok());
    /// ```
    pub fn finish(self, total: usize) -> Result<(), Error> {
        let Some((_, first)) = self.found.first() else {
            return Ok(());
        };
        let models: Vec<&str> = self.found.iter().map(|(label, _)| label.as_str()).collect();
        let mut detail = first.detail.clone();
        if self.found.len() > 1 {
            let others: Vec<&str> = self.found[1..]
                .iter()
                .map(|(_, corrupt)| corrupt.object.as_str())
                .collect();
            detail.push_str(&format!("; also corrupt: {}", others.join(", ")));
        }
        detail.push_str(&format!(
            ". Skipped {} ({} of {total} models); the other {} models were synced",
            models.join(", "),
            models.len(),
            total.saturating_sub(models.len())
        ));
        Err(Error::Corrupt(CorruptObject {
            object: first.object.clone(),
            detail,
        }))
    }
}
