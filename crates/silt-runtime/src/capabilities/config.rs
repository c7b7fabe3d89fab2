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

/// What a key may not name, with `-`, `_` and `.` taken out (`api.key`,
/// `api_key` and `apikey` alike): the settings are in `silt.toml`,
/// committed with the project and handed to code the user did not write.
/// Credentials stay with the host, which talks to the store itself. A
/// check against mistakes, not a guarantee.
const CREDENTIAL_WORDS: &[&str] = &[
    "password",
    "passwd",
    "passphrase",
    "secret",
    "token",
    "credential",
    "privatekey",
    "accesskey",
    "apikey",
];

/// Parts of a key (between `-`, `_` and `.`) that name a credential alone.
const CREDENTIAL_PARTS: &[&str] = &["pass", "pwd", "auth", "bearer", "sas", "session"];

/// What in `key` names a credential, if anything.
fn credential_in_key(key: &str) -> Option<&'static str> {
    let joined: String = key
        .chars()
        .filter(|c| !matches!(c, '-' | '_' | '.'))
        .collect();
    CREDENTIAL_WORDS
        .iter()
        .find(|word| joined.contains(*word))
        .or_else(|| {
            CREDENTIAL_PARTS
                .iter()
                .find(|part| key.split(['-', '_', '.']).any(|p| p == **part))
        })
        .copied()
}

/// What in `value` looks like a credential: a URL with a password in it,
/// or an AWS access key id.
fn credential_in_value(value: &str) -> Option<&'static str> {
    let url_password = value.split("://").skip(1).any(|rest| {
        let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
        authority
            .rsplit_once('@')
            .is_some_and(|(userinfo, _)| userinfo.contains(':'))
    });
    if url_password {
        return Some("a URL with a password");
    }
    let access_key_id = value
        .split(|c: char| !c.is_ascii_alphanumeric())
        .any(|word| {
            word.len() == 20
                && (word.starts_with("AKIA") || word.starts_with("ASIA"))
                && word
                    .bytes()
                    .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
        });
    access_key_id.then_some("an AWS access key id")
}

/// An extension's settings: text keys and values, checked.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "BTreeMap<String, String>")]
pub struct Settings(BTreeMap<String, String>);

/// A worker checks the settings it is sent as the host did.
impl TryFrom<BTreeMap<String, String>> for Settings {
    type Error = String;

    fn try_from(entries: BTreeMap<String, String>) -> Result<Self, String> {
        Self::new(entries)
    }
}

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
            if let Some(word) = credential_in_key(key) {
                return Err(format!(
                    "{key} names a credential ({word}); extensions never get credentials: the host \
                     holds the store's and talks to the store itself. Remove it"
                ));
            }
            if let Some(what) = credential_in_value(value) {
                return Err(format!(
                    "{key} holds {what}; extensions never get credentials: the host holds the \
                     store's and talks to the store itself. Remove it"
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
            "api.key",
            "apikey",
            "private.key",
            "db.pass",
            "pwd",
            "auth",
            "azure.sas",
        ] {
            let err = settings(&[(key, "x")]).unwrap_err();
            assert!(err.contains("never get credentials"), "{key}: {err}");
        }
        for value in [
            "https://user:hunter2@db.example/x",
            "key AKIAIOSFODNN7EXAMPLE here",
        ] {
            let err = settings(&[("endpoint", value)]).unwrap_err();
            assert!(err.contains("never get credentials"), "{value}: {err}");
        }
        // Words that merely contain a part are not refused.
        settings(&[
            ("bypass-cache", "https://db.example/x"),
            ("compass.heading", "user@host"),
        ])
        .unwrap();
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
