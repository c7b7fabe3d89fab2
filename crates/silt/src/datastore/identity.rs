//! Which extension a datastore belongs to, kept where every clone finds it.
//!
//! `silt datastore setup` (and so `silt init`) writes
//! `_silt/datastore.json` at the datastore's root: the extension that set it
//! up (name, version, component sha256, contract) and the layout it declares
//! (`layout` in its metadata). Every command opening the datastore checks
//! the installed extension against it, before the extension runs:
//!
//! - another extension is refused: it would read this datastore as empty,
//!   and its `setup` would lay a second datastore over the first;
//! - the same extension declaring another layout is refused too;
//! - the same name and version but another build is allowed, with one
//!   warning (a build that changed the layout without saying so reads
//!   "no files"; declaring `layout` turns that into a refusal).
//!
//! A clone remembers the component it last found compatible (in the host's
//! state beside the working copy), so a command costs no request until the
//! installed extension changes. A datastore without the record (set up
//! before silt kept one) is accepted, and gets it at its next setup.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::beneath::Beneath;
use crate::runtime::Metadata;
use crate::store::{GetOutcome, ObjectKey, ObjectStore, PutMode, StoreError};

/// The record's key, relative to the datastore's root.
pub const RECORD_KEY: &str = "_silt/datastore.json";

/// The host-state file keeping the component last found compatible.
const LOCAL_RECORD: &str = "datastore-identity.json";

/// What `_silt/datastore.json` holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    /// The extension that set the datastore up.
    pub extension: String,
    /// Its version.
    pub version: String,
    /// Its component's sha256.
    pub sha256: String,
    /// The contract it spoke.
    pub contract: String,
    /// The layout it declared, if it declared one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layout: Option<String>,
    /// Who set it up (`user@host`).
    pub set_up_by: String,
    /// When (ms since the epoch).
    pub set_up_at_ms: u64,
}

impl Identity {
    /// The record for `metadata`'s extension (component `sha256`), now.
    #[must_use]
    pub fn of(metadata: &Metadata, sha256: &str) -> Self {
        let holder = super::holder::current();
        Self {
            extension: metadata.name.clone(),
            version: metadata.version.clone(),
            sha256: sha256.to_owned(),
            contract: metadata.api.clone(),
            layout: metadata.layout.clone(),
            set_up_by: holder.name,
            set_up_at_ms: super::now_ms(),
        }
    }
}

/// The installed extension is not the one this datastore belongs to.
#[derive(Debug, thiserror::Error)]
#[error(
    "this datastore was set up by {recorded} ({RECORD_KEY}); the configured extension is {installed}: {why}. \
     {remedy}, or point silt.toml at another store or namespace"
)]
pub struct WrongExtension {
    /// The record's extension, version and layout, in words.
    pub recorded: String,
    /// The installed one's.
    pub installed: String,
    /// What differs.
    pub why: String,
    /// What to do about it, but for using another store.
    pub remedy: &'static str,
}

/// The remedy for another extension.
const OTHER_EXTENSION: &str =
    "Set [datastore] extension in silt.toml to the datastore's extension (and install it)";

/// The remedy for the same extension declaring another layout (the SDK's
/// refusal of another index kind says the same).
const OTHER_LAYOUT: &str = "Install the build of the extension that reads this datastore's layout (`silt extension add`; silt.lock pins one)";

/// What this clone remembers.
#[derive(Debug, Serialize, Deserialize)]
struct LocalRecord {
    compatible_sha256: String,
}

fn record_key() -> ObjectKey {
    ObjectKey::new(RECORD_KEY).expect("a valid key")
}

fn described(extension: &str, version: &str, layout: Option<&str>) -> String {
    let layout = layout.map_or_else(String::new, |l| format!(", layout {l}"));
    format!(
        "`{}` {}{}",
        crate::runtime::guest_text_limited(extension, 80),
        crate::runtime::guest_text_limited(version, 40),
        crate::runtime::guest_text_limited(&layout, 80)
    )
}

/// Checks the installed extension (`metadata`, component `sha256`) against
/// the datastore's record: no request when this clone already found this
/// component compatible.
///
/// # Errors
/// [`WrongExtension`] when the record names another extension or layout.
/// A store that cannot be read is not an error here: the command itself
/// will say why it cannot reach the store.
pub async fn check(
    store: &Arc<dyn ObjectStore>,
    host_state: &Beneath,
    metadata: &Metadata,
    sha256: &str,
) -> Result<(), WrongExtension> {
    let remembered: Option<LocalRecord> = host_state
        .read(LOCAL_RECORD, 1 << 12)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok());
    if remembered.is_some_and(|r| r.compatible_sha256 == sha256) {
        return Ok(());
    }
    let recorded: Identity = match store.get(&record_key(), None).await {
        Ok(GetOutcome::Found(_, body)) => match serde_json::from_slice(&body) {
            Ok(identity) => identity,
            Err(err) => {
                tracing::warn!("{RECORD_KEY} is unreadable ({err}); not checked");
                return Ok(());
            }
        },
        Ok(GetOutcome::NotModified) | Err(StoreError::NotFound { .. }) => return Ok(()),
        Err(err) => {
            tracing::debug!("cannot read {RECORD_KEY}: {err}");
            return Ok(());
        }
    };
    let installed = described(
        &metadata.name,
        &metadata.version,
        metadata.layout.as_deref(),
    );
    let mismatch = |why: String, remedy| WrongExtension {
        recorded: described(
            &recorded.extension,
            &recorded.version,
            recorded.layout.as_deref(),
        ),
        installed: installed.clone(),
        why,
        remedy,
    };
    if recorded.extension != metadata.name {
        return Err(mismatch(
            "another extension would read this datastore as empty, and its setup would lay a second datastore over it".to_owned(),
            OTHER_EXTENSION,
        ));
    }
    if recorded.layout != metadata.layout {
        return Err(mismatch(
            format!(
                "it declares layout {}, the datastore holds {}",
                crate::runtime::guest_text_limited(
                    metadata.layout.as_deref().unwrap_or("(none)"),
                    80
                ),
                crate::runtime::guest_text_limited(
                    recorded.layout.as_deref().unwrap_or("(none)"),
                    80
                )
            ),
            OTHER_LAYOUT,
        ));
    }
    if recorded.version == metadata.version && recorded.sha256 != sha256 {
        eprintln!(
            "silt: warning: this datastore was set up by another build of {installed} (sha256 {} there, {} here); \
             if this build changed the datastore's layout without changing `layout` in its metadata, files will look missing",
            crate::runtime::guest_text_limited(recorded.sha256.get(..12).unwrap_or(""), 12),
            sha256.get(..12).unwrap_or(sha256)
        );
    }
    let local = LocalRecord {
        compatible_sha256: sha256.to_owned(),
    };
    let bytes = serde_json::to_vec(&local).expect("a record serializes");
    if let Err(err) = host_state.write_atomic(LOCAL_RECORD, &bytes) {
        tracing::debug!("cannot remember the datastore's identity check: {err}");
    }
    Ok(())
}

/// Writes the record (after a setup the extension answered), and
/// remembers the component as compatible.
///
/// # Errors
/// When the store refuses the write.
pub async fn record(
    store: &Arc<dyn ObjectStore>,
    host_state: &Beneath,
    identity: &Identity,
) -> Result<(), StoreError> {
    let body = serde_json::to_vec_pretty(identity).expect("an identity serializes");
    store.put(&record_key(), body, PutMode::Overwrite).await?;
    let local = LocalRecord {
        compatible_sha256: identity.sha256.clone(),
    };
    let bytes = serde_json::to_vec(&local).expect("a record serializes");
    let _ = host_state.write_atomic(LOCAL_RECORD, &bytes);
    Ok(())
}
