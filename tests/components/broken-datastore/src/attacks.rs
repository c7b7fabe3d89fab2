//! Hostile answers, for models of type `attack`: the model id names the
//! attack. `tests/hostile.rs` runs each through the real `silt` command and
//! checks the host contains it (the right exit code, a clear error naming
//! the extension, nothing raw on the terminal, bounded output).
//!
//! | model | what the extension does |
//! |---|---|
//! | `attack/other-scope` | `acquire` answers a lease on another model |
//! | `attack/other-holder` | `acquire` answers a lease held by someone else |
//! | `attack/ttl-zero` | `acquire` answers a TTL of 0 |
//! | `attack/generation-max` | `acquire` answers generation `u64::MAX` |
//! | `attack/escape-error` | `commit` fails with terminal escapes in its message |
//! | `attack/long-error` | `commit` fails with a 200 KB message |
//! | `attack/log-flood` | `commit` logs a million lines, then commits |
//! | `attack/wrong-checksum` | `commit` commits, then reports another sha256 and size |
//! | `attack/unicode-checksum` | `commit` records a sha256 of non-ASCII characters |
//! | `attack/escape-name` | `commit` stores the file under a name with terminal escapes |
//! | `attack/bidi-name` | `commit` stores the file under a name that reverses the text after it |

use silt_extension::change::{Base, Change, Committed};
use silt_extension::layout::{self, DATA_AREA};
use silt_extension::silt::datastore::log::{self, Level};
use silt_extension::silt::datastore::object_store::{self, GetOutcome, PutMode};
use silt_extension::silt::datastore::types::{CorruptObject, Error, Lease, LockScope, ModelRef};

/// The model type whose models are attacks.
pub const ATTACK: &str = "attack";

/// What would clear a terminal, retitle its window and fake a silt line.
const ESCAPES: &str = "\u{1b}[2J\u{1b}]0;pwned\u{7}\rsilt: ok, committed";

/// The attack on `scope`, if it is one.
fn attack_of(scope: &LockScope) -> Option<&str> {
    match scope {
        LockScope::Model(model) if model.model_type == ATTACK => Some(&model.model_id),
        _ => None,
    }
}

/// Bends a lease `acquire` was about to hand out.
pub fn bend_lease(mut lease: Lease) -> Lease {
    match attack_of(&lease.scope) {
        Some("other-scope") => {
            lease.scope = LockScope::Model(ModelRef {
                model_type: ATTACK.to_owned(),
                model_id: "elsewhere".to_owned(),
            })
        }
        Some("other-holder") => {
            lease.holder.name = format!("mallory{ESCAPES}");
            lease.holder.pid = lease.holder.pid.wrapping_add(1);
        }
        Some("ttl-zero") => lease.ttl_ms = 0,
        Some("generation-max") => lease.generation = u64::MAX,
        _ => {}
    }
    lease
}

/// Runs the commit `honest` with the attack on `model` around it.
pub fn commit(
    model: &ModelRef,
    changes: &[Change],
    honest: impl FnOnce(&[Change]) -> Result<Committed, Error>,
) -> Result<Committed, Error> {
    match model.model_id.as_str() {
        "escape-error" => Err(Error::InvalidInput(ESCAPES.to_owned())),
        "long-error" => Err(Error::Corrupt(CorruptObject {
            object: "o".repeat(100_000),
            detail: ESCAPES.repeat(4_000),
        })),
        "log-flood" => {
            for n in 0..1_000_000 {
                log::log(Level::Error, &format!("flood {n}{ESCAPES}"));
            }
            honest(changes)
        }
        "wrong-checksum" => {
            let mut committed = honest(changes)?;
            for (_, entry) in &mut committed.entries {
                entry.sha256 = "0".repeat(64);
                entry.size += 1;
            }
            Ok(committed)
        }
        "unicode-checksum" => honest(&changes.iter().map(with_unicode_sha256).collect::<Vec<_>>()),
        "escape-name" => honest(&renamed(model, changes, ESCAPES)?),
        // Valid in a key (not a control character), misleading on a screen.
        "bidi-name" => honest(&renamed(model, changes, "\u{202e}txt.exe")?),
        _ => honest(changes),
    }
}

/// `change` with a digest of 32 two-byte characters (64 bytes, not hex).
fn with_unicode_sha256(change: &Change) -> Change {
    match change {
        Change::Put {
            name,
            version,
            size,
            base,
            ..
        } => Change::Put {
            name: name.clone(),
            version: version.clone(),
            size: *size,
            sha256: "é".repeat(32),
            base: base.clone(),
        },
        other => other.clone(),
    }
}

/// `changes` with `suffix` appended to every name put, each content copied
/// to the object key of its new name (where the store accepts that key).
fn renamed(model: &ModelRef, changes: &[Change], suffix: &str) -> Result<Vec<Change>, Error> {
    let mut renamed = Vec::new();
    for change in changes {
        renamed.push(match change {
            Change::Put {
                name,
                version,
                size,
                sha256,
                base,
            } => {
                let new_name = format!("{name}{suffix}");
                let from = layout::object_key(DATA_AREA, model, name, version);
                let to = layout::object_key(DATA_AREA, model, &new_name, version);
                if let Ok(GetOutcome::Found(object)) = object_store::get(&from, None) {
                    // Refused for a key with control characters: the index
                    // then names an object that cannot exist.
                    let _ = object_store::put(&to, &object.data, &PutMode::Create);
                }
                Change::Put {
                    name: new_name,
                    version: version.clone(),
                    size: *size,
                    sha256: sha256.clone(),
                    // The renamed file is new: no base to hold.
                    base: match base {
                        Base::Any => Base::Any,
                        Base::Absent | Base::Version(_) => Base::Absent,
                    },
                }
            }
            other => other.clone(),
        });
    }
    Ok(renamed)
}
