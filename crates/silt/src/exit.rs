//! Exit codes of the `silt` command, chosen from the error's meaning.
//!
//! | code | meaning |
//! |---|---|
//! | 0 | success |
//! | 1 | failure (I/O, backend, not found) |
//! | 2 | bad command line (clap) |
//! | 3 | conflict: a file changed in the store since the version the local edit was made from (nothing committed; resolve with `--theirs` or `--ours`) |
//! | 65 | invalid input: not a valid extension, corrupt data, a link planted in the working copy |
//! | 69 | the store is unreachable, refuses us, or cannot be trusted |
//! | 70 | an extension crashed, timed out or exceeded its memory limit |
//! | 73 | `--trace-file` cannot be created |
//! | 75 | a lease: held too long by someone else, or lost (taken over) — try again |
//! | 78 | configuration error in `silt.toml` |
//! | 130, 143 | interrupted by SIGINT, SIGTERM (leases released) |
//!
//! `silt run` exits with its command's code when the command ran.

use crate::beneath::LinkRefused;
use crate::config::ConfigError;
use crate::datastore::{DatastoreError, Interrupted, InvalidModelRef};
use crate::runtime::{CatalogError, InvalidExtension, RuntimeError};
use crate::store::StoreError;

/// Any other failure (0 is success, 2 is clap's bad command line).
pub const FAILURE: u8 = 1;
/// A bad command line: clap's own code, also for arguments silt checks
/// after clap (a model reference, a flag that needs another).
pub const USAGE: u8 = 2;
/// `silt run`'s command cannot be found, as a shell says it.
pub const COMMAND_NOT_FOUND: u8 = 127;
/// `silt run`'s command was found but cannot be executed, as a shell says it.
pub const COMMAND_NOT_EXECUTABLE: u8 = 126;
/// A commit refused because the store moved on from an edit's base.
pub const CONFLICT: u8 = 3;
/// Invalid input data (sysexits `EX_DATAERR`).
pub const DATA_ERROR: u8 = 65;
/// The store is unavailable or untrustworthy (sysexits `EX_UNAVAILABLE`).
pub const UNAVAILABLE: u8 = 69;
/// An extension failed at run time (sysexits `EX_SOFTWARE`).
pub const EXTENSION_FAILED: u8 = 70;
/// An output file cannot be created (sysexits `EX_CANTCREAT`).
pub const CANT_CREATE: u8 = 73;
/// Try again later: a lease was held too long or lost (sysexits `EX_TEMPFAIL`).
pub const TEMPFAIL: u8 = 75;
/// The store has no usable credentials: none found, or refused (sysexits
/// `EX_NOPERM`).
pub const NO_PERMISSION: u8 = 77;
/// Configuration error (sysexits `EX_CONFIG`).
pub const CONFIG: u8 = 78;

/// Every exit code and its one meaning (the manual's EXIT STATUS).
pub const TABLE: &[(&str, &str)] = &[
    ("0", "Success."),
    (
        "1",
        "Any other failure (a file or model that does not exist, a refused operation).",
    ),
    (
        "2",
        "A bad command line: a missing or unknown argument, a malformed model reference.",
    ),
    (
        "3",
        "A conflict: the store moved on from the version an edit started from.",
    ),
    (
        "65",
        "Invalid data: a corrupt index or object, content that is not what the index says, an unusable extension.",
    ),
    (
        "69",
        "The store is unavailable (cannot be reached, keeps failing) or does not keep its promises (doctor).",
    ),
    (
        "70",
        "An extension failed at run time (trapped, out of time or memory, broke the contract).",
    ),
    ("73", "An output file cannot be created."),
    (
        "75",
        "Try again later: a lease was held too long by another, or lost.",
    ),
    (
        "77",
        "No usable credentials for the store: none found, expired or refused.",
    ),
    (
        "78",
        "A configuration error: silt.toml, an endpoint, an extension the project names.",
    ),
    (
        "126",
        "silt run: the command was found but cannot be executed.",
    ),
    ("127", "silt run: the command cannot be found."),
    (
        "128+N",
        "Interrupted by signal N (130 for Ctrl-C); leases are released first.",
    ),
    ("other", "silt run: the command's own exit code."),
];

/// An extension whose behaviour contradicts its own metadata.
#[derive(Debug, thiserror::Error)]
#[error("extension `{name}` says one thing in its metadata and another when run: {detail}")]
pub struct MetadataMismatch {
    /// The extension.
    pub name: String,
    /// The differences.
    pub detail: String,
}

/// A store that accepts conditional writes and ignores them.
#[derive(Debug, thiserror::Error)]
#[error(
    "{store} does not honour conditional writes (failed: {failed}); concurrent writers would silently lose updates. \
     Use a store that does (AWS S3, SeaweedFS, MinIO, a local directory), or, at your own risk, \
     set datastore.allow_unsafe_store = true in silt.toml (or pass --allow-unsafe-store)"
)]
pub struct UntrustworthyStore {
    /// The store.
    pub store: String,
    /// The checks it failed.
    pub failed: String,
}

/// What the host read of a file is not what the index says the version
/// holds: an extension (or the store) handed over other bytes.
#[derive(Debug, thiserror::Error)]
#[error(
    "{what}: the index says {expected_size} B with sha256 {expected_sha256}, but silt read {actual_size} B with sha256 {actual_sha256}; \
     nothing was delivered or acknowledged. Run `silt datastore verify` and report this to the extension's author"
)]
pub struct ContentMismatch {
    /// Which file, and in which step (`t/m weights.bin: commit`).
    pub what: String,
    /// Size the index (the extension's answer) gives.
    pub expected_size: u64,
    /// Digest the index gives.
    pub expected_sha256: String,
    /// Size of the bytes the host read.
    pub actual_size: u64,
    /// Digest of the bytes the host read.
    pub actual_sha256: String,
}

/// `silt run`'s command exited unsuccessfully; silt exits with its code.
#[derive(Debug, thiserror::Error)]
#[error(
    "the command {how}; nothing was committed (its changes stay in the working copy: `silt datastore sync --push` commits them, the next `silt run` on these models moves them aside)"
)]
pub struct CommandFailed {
    /// `exited with 3`, `was killed by signal 9`.
    pub how: String,
    /// The exit code to pass on.
    pub code: u8,
}

/// `silt run`'s command could not be started; silt exits as a shell would
/// (127 not found, 126 not executable).
#[derive(Debug, thiserror::Error)]
#[error("cannot run `{command}`: {why}; nothing ran and nothing was committed")]
pub struct CommandNotStarted {
    /// The command as given.
    pub command: String,
    /// Why, and what to check.
    pub why: String,
    /// [`COMMAND_NOT_FOUND`] or [`COMMAND_NOT_EXECUTABLE`].
    pub code: u8,
}

/// A failure whose details the command's report already gave (with
/// `--json`, the one document on stdout): only this summary goes to
/// stderr, and no second document follows. `verify`'s problems.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ReportedFailure(pub String);

/// The file given to a command changed while it was read (a `data put`
/// sent as given), so its upload was refused; run it again once the file
/// is written (exit 75).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct InputChanged(pub String);

/// A command-line argument silt checks itself (after clap) is malformed:
/// what is wrong and how to write it.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// A push met what a killed `silt run` left in the working copy.
#[derive(Debug, thiserror::Error)]
#[error(
    "{} what a `silt run` left when it was killed ({runs}): never acknowledged, so a push does not commit it. \
     The next `silt run` on {} moves it aside; to commit it as it is: `silt datastore sync --push --ours{}`",
    if models.len() == 1 { format!("model {} holds", models[0]) } else { format!("models {} hold", models.join(", ")) },
    if models.len() == 1 { "it" } else { "them" },
    models.iter().map(|m| format!(" --model {m}")).collect::<String>()
)]
pub struct KilledRunLeftovers {
    /// The models (`type/id`).
    pub models: Vec<String>,
    /// `pid 4242`, …
    pub runs: String,
}

/// The exit code for an error, from the first cause silt recognises.
pub fn code_for(err: &anyhow::Error) -> u8 {
    for cause in err.chain() {
        if cause.is::<ConfigError>() {
            return CONFIG;
        }
        if cause.is::<UsageError>() || cause.is::<InvalidModelRef>() {
            return USAGE;
        }
        if cause.is::<UntrustworthyStore>() {
            return UNAVAILABLE;
        }
        if let Some(failed) = cause.downcast_ref::<CommandFailed>() {
            return failed.code;
        }
        if let Some(not_started) = cause.downcast_ref::<CommandNotStarted>() {
            return not_started.code;
        }
        if cause.is::<KilledRunLeftovers>() {
            return CONFLICT;
        }
        if cause.is::<InputChanged>() {
            return TEMPFAIL;
        }
        if let Some(interrupted) = cause.downcast_ref::<Interrupted>() {
            return 128 + interrupted.number;
        }
        if let Some(err) = cause.downcast_ref::<DatastoreError>() {
            return match err {
                DatastoreError::LockHeld { .. }
                | DatastoreError::LockTimeout { .. }
                | DatastoreError::LockLost { .. } => TEMPFAIL,
                DatastoreError::Corrupt { .. } | DatastoreError::InvalidInput { .. } => DATA_ERROR,
                DatastoreError::Backend { .. } => UNAVAILABLE,
                DatastoreError::Misbehaved { .. } => EXTENSION_FAILED,
                DatastoreError::Conflict { .. } => CONFLICT,
                DatastoreError::NotFound { .. }
                | DatastoreError::Raced { .. }
                | DatastoreError::NotSupported { .. } => FAILURE,
            };
        }
        if let Some(err) = cause.downcast_ref::<StoreError>() {
            return match err {
                StoreError::Backend { .. } => UNAVAILABLE,
                StoreError::Credentials { .. } => NO_PERMISSION,
                StoreError::Misconfigured { .. } => CONFIG,
                StoreError::InvalidKey(_) => DATA_ERROR,
                _ => FAILURE,
            };
        }
        if cause.is::<InvalidExtension>()
            || cause.is::<MetadataMismatch>()
            || cause.is::<ContentMismatch>()
            || cause
                .downcast_ref::<std::io::Error>()
                .is_some_and(|err| LinkRefused::in_io(err).is_some())
        {
            return DATA_ERROR;
        }
        if cause.is::<crate::datastore::identity::WrongExtension>() {
            return CONFIG;
        }
        if cause.is::<crate::supply_chain::LockMismatch>() {
            return DATA_ERROR;
        }
        if let Some(err) = cause.downcast_ref::<silt_registry::RegistryError>() {
            use silt_registry::RegistryError as R;
            return match err {
                R::Transport { .. } => UNAVAILABLE,
                R::DigestMismatch { .. } | R::NotAComponent { .. } | R::TooLarge { .. } => {
                    DATA_ERROR
                }
                _ => FAILURE,
            };
        }
        if let Some(err) = cause.downcast_ref::<CatalogError>() {
            return match err {
                CatalogError::Invalid(_) => DATA_ERROR,
                _ => FAILURE,
            };
        }
        if let Some(err) = cause.downcast_ref::<crate::sandbox::SandboxError>() {
            return match err {
                crate::sandbox::SandboxError::Unavailable { .. } => UNAVAILABLE,
                _ => EXTENSION_FAILED,
            };
        }
        if let Some(err) = cause.downcast_ref::<RuntimeError>() {
            return match err {
                RuntimeError::Invalid(_) => DATA_ERROR,
                RuntimeError::NotInstalled { .. } | RuntimeError::Engine { .. } => FAILURE,
                RuntimeError::SandboxUnavailable { .. } => UNAVAILABLE,
                _ => EXTENSION_FAILED,
            };
        }
    }
    FAILURE
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_names_every_code_once() {
        let codes: Vec<&str> = TABLE.iter().map(|(code, _)| *code).collect();
        for code in [
            0,
            FAILURE,
            USAGE,
            CONFLICT,
            DATA_ERROR,
            UNAVAILABLE,
            EXTENSION_FAILED,
            CANT_CREATE,
            TEMPFAIL,
            NO_PERMISSION,
            CONFIG,
            COMMAND_NOT_EXECUTABLE,
            COMMAND_NOT_FOUND,
        ] {
            let code = code.to_string();
            assert_eq!(
                codes.iter().filter(|listed| **listed == code).count(),
                1,
                "{code}"
            );
        }
        let mut unique = codes.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), codes.len(), "{codes:?}");
    }
}
