//! The `config` import: the project's settings for one extension (the
//! table `[extensions.config.<name>]` of `silt.toml`), as text, the same
//! for every call of a command. Checked once, when they are made: a key
//! that names a credential is refused, because an extension never gets one.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::HostState;
use crate::bindings::silt::datastore::config::Host;

/// The most settings one extension gets.
pub const MAX_SETTINGS: usize = 64;
/// The longest key.
pub const MAX_KEY_BYTES: usize = 64;
/// The longest value.
pub const MAX_VALUE_BYTES: usize = 4096;

/// Words a key may not contain: the settings are in `silt.toml`, committed
/// with the project and handed to code the user did not write. Credentials
/// stay with the host, which talks to the store itself.
const CREDENTIAL_WORDS: &[&str] = &[
    "password",
    "passwd",
    "secret",
    "token",
    "credential",
    "private-key",
    "private_key",
    "access-key",
    "access_key",
    "api-key",
    "api_key",
];

/// An extension's settings: text keys and values, checked.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Settings(BTreeMap<String, String>);

impl Settings {
    /// Checks `entries`: at most [`MAX_SETTINGS`]; keys of lowercase
    /// letters, digits, `-`, `_` and `.` (at most [`MAX_KEY_BYTES`]) that
    /// name no credential; values of at most [`MAX_VALUE_BYTES`].
    ///
    /// # Errors
    /// What is wrong, naming the key (the caller says where it was written).
    pub fn new(entries: BTreeMap<String, String>) -> Result<Self, String> {
        if entries.len() > MAX_SETTINGS {
            return Err(format!(
                "{} settings; an extension gets at most {MAX_SETTINGS}",
                entries.len()
            ));
        }
        for (key, value) in &entries {
            let well_formed = !key.is_empty()
                && key.len() <= MAX_KEY_BYTES
                && key.bytes().all(|b| {
                    b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'-' | b'_' | b'.')
                });
            if !well_formed {
                return Err(format!(
                    "{key:?} is not a setting name (1 to {MAX_KEY_BYTES} of lowercase letters, digits, '-', '_', '.')"
                ));
            }
            if let Some(word) = CREDENTIAL_WORDS.iter().find(|word| key.contains(*word)) {
                return Err(format!(
                    "{key} names a credential ({word}); extensions never get credentials: the host \
                     holds the store's and talks to the store itself. Remove it"
                ));
            }
            if value.len() > MAX_VALUE_BYTES {
                return Err(format!(
                    "{key} is {} bytes long; a value may have at most {MAX_VALUE_BYTES}",
                    value.len()
                ));
            }
        }
        Ok(Self(entries))
    }

    /// The value of `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }

    /// Every setting, sorted by key.
    pub fn entries(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// True when there is none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl Host for HostState {
    async fn get(&mut self, key: String) -> Option<String> {
        self.capabilities.settings.get(&key).map(str::to_owned)
    }

    async fn entries(&mut self) -> Vec<(String, String)> {
        self.capabilities
            .settings
            .entries()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(pairs: &[(&str, &str)]) -> Result<Settings, String> {
        Settings::new(
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        )
    }

    #[test]
    fn plain_settings_are_kept_sorted() {
        let made = settings(&[("journal.full-check-minutes", "5"), ("a_b", "x")]).unwrap();
        let entries: Vec<_> = made.entries().collect();
        assert_eq!(entries, [("a_b", "x"), ("journal.full-check-minutes", "5")]);
        assert_eq!(made.get("a_b"), Some("x"));
        assert_eq!(made.get("missing"), None);
    }

    #[test]
    fn a_credential_is_refused_by_name() {
        for key in [
            "password",
            "aws_secret",
            "api-token",
            "access_key_id",
            "db.credentials",
        ] {
            let err = settings(&[(key, "x")]).unwrap_err();
            assert!(err.contains("never get credentials"), "{key}: {err}");
        }
    }

    #[test]
    fn malformed_keys_and_oversized_values_are_refused() {
        for key in [
            "",
            "Upper",
            "with space",
            "emoji-\u{1f600}",
            &"k".repeat(65),
        ] {
            assert!(settings(&[(key, "x")]).is_err(), "{key:?}");
        }
        let long = "v".repeat(MAX_VALUE_BYTES + 1);
        assert!(settings(&[("k", &long)]).unwrap_err().contains("at most"));
        let many: Vec<(String, String)> = (0..=MAX_SETTINGS)
            .map(|i| (format!("k{i}"), String::new()))
            .collect();
        let refused = Settings::new(many.into_iter().collect()).unwrap_err();
        assert!(refused.contains("at most 64"), "{refused}");
    }
}
