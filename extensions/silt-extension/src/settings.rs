//! The project's settings for this extension: the `config` import, which
//! answers from the table `[extensions.config.<name>]` of `silt.toml`
//! (nested tables as dotted keys, every value as text). The same for every
//! call of one command. Never credentials: the host refuses keys that name
//! one.
//!
//! ```no_run,standalone_crate
//! // `[extensions.config.my-datastore]` `upload.parts = 8` in silt.toml:
//! let parts: u32 = silt_extension::settings::parsed("upload.parts", 0..=64)?.unwrap_or(4);
//! # Ok::<(), silt_extension::silt::datastore::types::Error>(())
//! ```
//!
//! Settings the SDK itself reads:
//! - `journal.full-check-minutes` (0 to [`crate::journal::MAX_FULL_CHECK_MINUTES`],
//!   default 10): how often a pull lists every partition instead of the
//!   journal (see [`crate::journal::full_check_every_ms`]).
//! - `checkpoint.write-after-reads` (default
//!   [`crate::checkpoint::WRITE_AFTER_READS`]; 0: never) and
//!   `checkpoint.write-every-minutes` (0 to 1440, default
//!   [`crate::checkpoint::WRITE_EVERY_MINUTES`]): a full check that read at
//!   least that many slices from the store writes an index checkpoint when
//!   the newest is at least that old (see [`crate::checkpoint::due`]).

use std::ops::RangeInclusive;
use std::str::FromStr;

use crate::silt::datastore::types::Error;

/// The value of `key`, if the project sets it.
pub fn get(key: &str) -> Option<String> {
    #[cfg(not(feature = "contract-0-6"))]
    return crate::silt::datastore::config::get(key);
    // Contract 0.6.0 has no settings.
    #[cfg(feature = "contract-0-6")]
    return {
        let _ = key;
        None
    };
}

/// Every setting, sorted by key.
pub fn entries() -> Vec<(String, String)> {
    #[cfg(not(feature = "contract-0-6"))]
    return crate::silt::datastore::config::entries();
    #[cfg(feature = "contract-0-6")]
    return Vec::new();
}

/// The value of `key` as a number within `range`; `None` when not set.
///
/// # Errors
/// `invalid-input` naming the setting, its value and the range.
pub fn parsed<T>(key: &str, range: RangeInclusive<T>) -> Result<Option<T>, Error>
where
    T: FromStr + PartialOrd + std::fmt::Display,
{
    let Some(text) = get(key) else {
        return Ok(None);
    };
    match text.trim().parse::<T>() {
        Ok(value) if range.contains(&value) => Ok(Some(value)),
        _ => Err(Error::InvalidInput(format!(
            "setting {key} = {text:?} (silt.toml, [extensions.config.<this extension>]) must be a number from {} to {}",
            range.start(),
            range.end()
        ))),
    }
}
