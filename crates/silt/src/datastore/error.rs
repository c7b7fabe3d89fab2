//! What a datastore operation can fail with, as the user reads it.

use std::time::Duration;

use crate::runtime::bindings::ExtensionError;
use crate::runtime::bindings::silt::datastore::types::{Conflict, LockInfo, LockScope, ModelRef};
use crate::runtime::guest_text;

/// A datastore operation that failed, with what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum DatastoreError {
    /// The named thing does not exist.
    #[error("{operation}: not found: {detail}")]
    NotFound {
        /// The operation.
        operation: &'static str,
        /// What was missing.
        detail: String,
    },
    /// A compare-and-swap kept losing.
    #[error("{operation}: {detail} was changed by someone else; try again")]
    Raced {
        /// The operation.
        operation: &'static str,
        /// The object.
        detail: String,
    },
    /// Files changed in the store since the versions the local edits were
    /// made from: nothing of their models was committed.
    #[error(
        "{operation}: conflict: {} changed in the store since the version your copy was made from; nothing of {} was committed:\n{}\n{}",
        crate::text::plural(conflicts.len() as u64, "file"),
        conflict_models(conflicts),
        describe_conflicts(conflicts),
        resolve_hint(operation, conflicts)
    )]
    Conflict {
        /// The operation.
        operation: &'static str,
        /// Each refused file (guest text made safe).
        conflicts: Vec<Conflict>,
    },
    /// The lease is held by someone else (a single attempt; see `LockTimeout`).
    #[error("{operation}: {}", describe_holder(info))]
    LockHeld {
        /// The operation.
        operation: &'static str,
        /// Who holds it.
        info: Box<LockInfo>,
    },
    /// We waited for a lease as long as allowed.
    #[error(
        "timed out after {waited:.1?} waiting for the lease on {scope}: {holder}. \
         Try again later, wait longer (SILT_LOCK_MAX_WAIT=<seconds> or [locks] max_wait_ms), \
         or, if that process is gone and you cannot wait for its lease to expire, \
         `silt datastore lock release --force{release_hint}`"
    )]
    LockTimeout {
        /// The scope waited for.
        scope: String,
        /// Who holds it, with host, pid, age.
        holder: String,
        /// How long we waited.
        waited: Duration,
        /// The `--model ...` argument for the release command.
        release_hint: String,
    },
    /// Our lease was taken over or expired; nothing was committed.
    #[error(
        "{operation}: lock lost: {detail}. Nothing more was committed; local changes remain in the working copy (`silt datastore sync --push` commits them under a new lease)"
    )]
    LockLost {
        /// The operation.
        operation: &'static str,
        /// What happened.
        detail: String,
    },
    /// An object in the store (or cache) is malformed.
    #[error(
        "{operation}: corrupt object `{object}`: {detail}. silt did not change it; restore that object (or remove it if it is a lock) — other models are unaffected"
    )]
    Corrupt {
        /// The operation.
        operation: &'static str,
        /// The object.
        object: String,
        /// What is wrong.
        detail: String,
    },
    /// The store failed.
    #[error("{operation}: store failure{}: {detail}", if *.retryable { " (temporary; try again)" } else { "" })]
    Backend {
        /// The operation.
        operation: &'static str,
        /// Whether trying again may help.
        retryable: bool,
        /// What the store said.
        detail: String,
    },
    /// The caller asked for something impossible.
    #[error("{operation}: {detail}")]
    InvalidInput {
        /// The operation.
        operation: &'static str,
        /// What is wrong.
        detail: String,
    },
    /// The extension answered something the host cannot rely on.
    #[error(
        "extension `{extension}` misbehaved in `{operation}`: it {detail}; silt did not act on that answer. Report this to the extension's author"
    )]
    Misbehaved {
        /// The extension.
        extension: String,
        /// The WIT function.
        operation: &'static str,
        /// What it answered.
        detail: String,
    },
    /// The extension does not implement it.
    #[error("{operation}: the datastore extension does not support this: {detail}")]
    NotSupported {
        /// The operation.
        operation: &'static str,
        /// Its explanation.
        detail: String,
    },
}

impl DatastoreError {
    /// The case of the contract's `error` this is (`lock-timeout`, the
    /// host's own wait, has none): what `silt extension test` compares.
    pub fn case(&self) -> &'static str {
        match self {
            Self::NotFound { .. } => "not-found",
            Self::Raced { .. } => "precondition-failed",
            Self::Conflict { .. } => "conflict",
            Self::LockHeld { .. } => "lock-held",
            Self::LockTimeout { .. } => "lock-timeout",
            Self::LockLost { .. } => "lock-lost",
            Self::Corrupt { .. } => "corrupt",
            Self::Backend { .. } => "backend",
            Self::InvalidInput { .. } => "invalid-input",
            Self::NotSupported { .. } => "not-supported",
            Self::Misbehaved { .. } => "misbehaved",
        }
    }

    /// The error an extension returned from `operation`, its text made
    /// safe to print (see [`guest_text`]).
    pub fn from_extension(operation: &'static str, err: ExtensionError) -> Self {
        let safe = |text: String| guest_text(&text);
        match err {
            ExtensionError::NotFound(detail) => Self::NotFound {
                operation,
                detail: safe(detail),
            },
            ExtensionError::PreconditionFailed(detail) => Self::Raced {
                operation,
                detail: safe(detail),
            },
            ExtensionError::Conflict(conflicts) => Self::Conflict {
                operation,
                conflicts: conflicts
                    .into_iter()
                    .map(|c| Conflict {
                        model: ModelRef {
                            model_type: safe(c.model.model_type),
                            model_id: safe(c.model.model_id),
                        },
                        name: safe(c.name),
                        base: c.base.map(safe),
                        latest: c.latest.map(safe),
                        latest_writer: safe(c.latest_writer),
                        latest_deleted: c.latest_deleted,
                    })
                    .collect(),
            },
            ExtensionError::LockHeld(info) => Self::LockHeld {
                operation,
                info: Box::new(info),
            },
            ExtensionError::LockLost(detail) => Self::LockLost {
                operation,
                detail: safe(detail),
            },
            ExtensionError::Corrupt(corrupt) => Self::Corrupt {
                operation,
                object: safe(corrupt.object),
                detail: safe(corrupt.detail),
            },
            ExtensionError::Backend(failure) => Self::Backend {
                operation,
                retryable: failure.retryable,
                detail: safe(failure.detail),
            },
            ExtensionError::InvalidInput(detail) => Self::InvalidInput {
                operation,
                detail: safe(detail),
            },
            ExtensionError::NotSupported(detail) => Self::NotSupported {
                operation,
                detail: safe(detail),
            },
        }
    }
}

/// `model vision/m-1`, `models a/1, b/2`.
fn conflict_models(conflicts: &[Conflict]) -> String {
    let mut models: Vec<String> = conflicts
        .iter()
        .map(|c| super::model_label(&c.model))
        .collect();
    models.sort();
    models.dedup();
    match models.len() {
        1 => format!("model {}", models[0]),
        _ => format!("models {}", models.join(", ")),
    }
}

/// One line per file, at most [`CONFLICTS_SHOWN`].
fn describe_conflicts(conflicts: &[Conflict]) -> String {
    if conflicts.is_empty() {
        return "  (the extension named no file)".to_owned();
    }
    let mut lines: Vec<String> = conflicts
        .iter()
        .take(CONFLICTS_SHOWN)
        .map(|c| format!("  {}", describe_conflict(c)))
        .collect();
    if conflicts.len() > CONFLICTS_SHOWN {
        lines.push(format!(
            "  … and {} more (`silt datastore status` lists your edits)",
            conflicts.len() - CONFLICTS_SHOWN
        ));
    }
    lines.join("\n")
}

/// Conflicting files listed in a message; the rest are counted.
const CONFLICTS_SHOWN: usize = 50;

/// `vision/m-1 log.txt: yours is based on version A; the latest is B, by alice@ci-7`.
fn describe_conflict(c: &Conflict) -> String {
    let yours = match &c.base {
        Some(base) => format!("yours was made from version {base}"),
        None => "yours is new here".to_owned(),
    };
    let theirs = match (&c.latest, c.latest_deleted) {
        (None, _) => "the store has no version of it".to_owned(),
        (Some(latest), true) => {
            format!("it was removed in version {latest} by {}", c.latest_writer)
        }
        (Some(latest), false) => format!("the latest is version {latest}, by {}", c.latest_writer),
    };
    format!(
        "{} {}: {yours}; {theirs}",
        super::model_label(&c.model),
        c.name
    )
}

/// How to resolve a conflict of `operation` on `conflicts`.
fn resolve_hint(operation: &str, conflicts: &[Conflict]) -> String {
    match operation {
        "put" | "rm" => {
            "Look at `silt data history`, then run the command again with the --base it shows, or without --base to commit on top (the latest stays in history).".to_owned()
        }
        _ => {
            let mut models: Vec<String> = conflicts
                .iter()
                .map(|c| format!(" --model {}", super::model_label(&c.model)))
                .collect();
            models.sort();
            models.dedup();
            let models = models.concat();
            format!(
                "Your edits are still in the working copy. Keep the store's versions with `silt datastore sync --theirs{models}` \
                 (yours are moved under .silt/conflicts/ in the local copy; your other edits are pushed), \
                 or commit yours on top with `silt datastore sync --ours{models}` (theirs stay in history)."
            )
        }
    }
}

/// `model vision/m-1`, `the namespace`.
pub fn scope_label(scope: &LockScope) -> String {
    match scope {
        LockScope::Model(model) => format!("model {}", super::model_label(model)),
        LockScope::Namespace => "the namespace".to_owned(),
        LockScope::Global => "the whole datastore".to_owned(),
    }
}

/// `held by alice@ci-7 on ci-7 (pid 4242) for 12.3 s, generation 5`.
pub fn describe_holder(info: &LockInfo) -> String {
    let now = super::holder::now_ms();
    let age = now.saturating_sub(info.acquired_at) as f64 / 1e3;
    let silent = now.saturating_sub(info.renewed_at) as f64 / 1e3;
    // A lock object is written by whoever holds the lease (or forged by
    // anyone with store access): its text is guest text.
    let mut text = format!(
        "held by {} on {} (pid {}) for {age:.1} s, generation {}",
        guest_text(&info.holder.name),
        guest_text(&info.holder.host),
        info.holder.pid,
        info.generation
    );
    if info.stale {
        text.push_str(&format!(
            "; stale (not renewed for {silent:.1} s, TTL {} ms): the next acquirer takes it over",
            info.ttl_ms
        ));
    }
    text
}
