//! Whether the extension describes itself as its metadata says: asked once
//! per component build, remembered in the host's state.
//!
//! silt goes by the metadata section of the component; `describe` is what
//! the running code says. They should agree, and a difference is worth a
//! warning to the extension's author — but finding out costs an instance
//! and a call (a worker process, out of process), and a component's answer
//! cannot change while its bytes do not. So a clone asks once for each
//! component sha256 and keeps what it found (`extension-description.json`
//! beside the working copy); every later command repeats the warning from
//! the record without running the extension.

use serde::{Deserialize, Serialize};

use crate::beneath::Beneath;

/// The host-state file keeping the last component's differences.
const LOCAL_RECORD: &str = "extension-description.json";

/// A record larger than this is not ours: it is read as missing.
const RECORD_LIMIT: u64 = 1 << 16;

/// What was found for one component.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct LocalRecord {
    /// The component's sha256.
    sha256: String,
    /// How its description differs from its metadata (empty: it agrees).
    differences: Vec<String>,
}

/// The differences remembered for component `sha256`, if this clone has
/// asked it before.
pub(super) fn remembered(host_state: &Beneath, sha256: &str) -> Option<Vec<String>> {
    let bytes = host_state.read(LOCAL_RECORD, RECORD_LIMIT).ok()?;
    let record: LocalRecord = serde_json::from_slice(&bytes).ok()?;
    (record.sha256 == sha256).then_some(record.differences)
}

/// Remembers the differences found for component `sha256` (best effort:
/// when it cannot be written the next command asks again).
pub(super) fn remember(host_state: &Beneath, sha256: &str, differences: &[String]) {
    let record = LocalRecord {
        sha256: sha256.to_owned(),
        differences: differences.to_vec(),
    };
    let bytes = serde_json::to_vec(&record).expect("a record serializes");
    if let Err(err) = host_state.write_atomic(LOCAL_RECORD, &bytes) {
        tracing::debug!("cannot remember the extension's description check: {err}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_answers_for_its_component_only() {
        let dir = tempfile::tempdir().unwrap();
        let host_state = Beneath::open(dir.path()).unwrap();
        assert_eq!(remembered(&host_state, "aa"), None);
        remember(&host_state, "aa", &[]);
        assert_eq!(remembered(&host_state, "aa"), Some(vec![]));
        assert_eq!(remembered(&host_state, "bb"), None);
        let differences = vec!["name `x` vs `y`".to_owned()];
        remember(&host_state, "bb", &differences);
        assert_eq!(remembered(&host_state, "bb"), Some(differences));
        assert_eq!(remembered(&host_state, "aa"), None);
    }

    #[test]
    fn a_damaged_record_is_read_as_missing() {
        let dir = tempfile::tempdir().unwrap();
        let host_state = Beneath::open(dir.path()).unwrap();
        std::fs::write(dir.path().join(LOCAL_RECORD), b"{not json").unwrap();
        assert_eq!(remembered(&host_state, "aa"), None);
        std::fs::write(
            dir.path().join(LOCAL_RECORD),
            vec![b' '; (RECORD_LIMIT + 1) as usize],
        )
        .unwrap();
        assert_eq!(remembered(&host_state, "aa"), None);
    }
}
