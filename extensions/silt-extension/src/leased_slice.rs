//! The slice a lease's fence raise wrote: hydration under that lease takes
//! it as the model's latest instead of reading the partition again (a
//! round trip saved on every `silt run`).
//!
//! Why it is the latest: the fence raise is a compare-and-swap, so the
//! slice it wrote was the partition's content at that moment; and while
//! the lock object stays live, nobody else writes the partition (another
//! lease waits for the lock; an unleased commit finds the holder recorded
//! in the partition, asks the lock and is refused). So a datastore that
//! records a leased slice forgets it before each of its own writes of the
//! partition and at release (the holder's writes are the only ones that
//! can come after it), and a record is trusted for half the lock's TTL
//! after it was written ([`until_ms`]), by this clock: a record a killed
//! process left is trusted no longer than its lock lives on, with half a
//! TTL to spare for another host's clock running ahead (which judges the
//! lock stale by its own). `protocol-model/` checks the rule (a trusted
//! record is the partition's latest in every state) and finds a stale one
//! when a commit or the release keeps the record.
//!
//! What it does not cover: a force-release of the live lock from another
//! clone, followed there by a commit, within that half TTL: this clone's
//! hydration may then take the slice from before that commit (never a
//! slice that did not land). A force-release breaks the holder's lease in
//! any case; its own commits are fenced out.
//!
//! Like every cache file, a missing or unreadable record costs a read,
//! never data.
//!
//! ```no_run,standalone_crate
//! use silt_extension::layout::DATA_AREA;
//! use silt_extension::leased_slice;
//! # let model = silt_extension::silt::datastore::types::ModelRef { model_type: "vision/detector".into(), model_id: "m-42".into() };
//!
//! match leased_slice::current(DATA_AREA, &model) {
//!     Some(slice) => println!("the latest is {:?}, no read needed", slice.version),
//!     None => println!("read the partition"),
//! }
//! ```

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::cache_file;
use crate::clock;
use crate::layout::{self, CACHE_STATE_DIR};
use crate::local::Sidecar;
use crate::partition::{Partition, Versioned};
use crate::silt::datastore::types::{Error, ModelRef};

/// Where the records are, relative to the cache: one flat directory, so
/// that a cache without any costs hydration one look, not one a model.
const DIR: &str = "leased";

/// One record: the slice, its store version, and when it is trusted.
#[derive(Serialize, Deserialize)]
struct Record {
    version: String,
    /// When it was written: a clock now before it has been stepped back,
    /// and the window cannot be judged.
    written_ms: u64,
    until_ms: u64,
    partition: Partition,
}

/// Until when a record written at `renewed_at` (the lock's, as written)
/// for a lock of `ttl_ms` is trusted: half the TTL.
///
/// ```no_run,standalone_crate
/// assert_eq!(silt_extension::leased_slice::until_ms(1_000, 30_000), 16_000);
/// ```
pub fn until_ms(renewed_at: u64, ttl_ms: u32) -> u64 {
    renewed_at.saturating_add(u64::from(ttl_ms) / 2)
}

/// The record of `model` in `area`, relative to the cache.
///
/// ```no_run,standalone_crate
/// use silt_extension::layout::DATA_AREA;
/// use silt_extension::leased_slice;
/// # let model = silt_extension::silt::datastore::types::ModelRef { model_type: "vision/detector".into(), model_id: "m-42".into() };
/// assert!(leased_slice::path(DATA_AREA, &model).starts_with(".silt/leased/data-"));
/// ```
pub fn path(area: &str, model: &ModelRef) -> String {
    let label = layout::model_label(model);
    let hash = Sha256::digest(label.as_bytes());
    let name: String = hash[..16].iter().map(|b| format!("{b:02x}")).collect();
    format!("{CACHE_STATE_DIR}/{DIR}/{area}-{name}.json")
}

/// Records `written`, the slice the fence raise of a lease wrote, trusted
/// until `until_ms` ([`until_ms`]). Best effort: a failure only costs
/// hydration a read.
pub fn remember(area: &str, model: &ModelRef, written: &Versioned, until_ms: u64) {
    let Some(version) = written.version.clone() else {
        return;
    };
    let record = Record {
        version,
        written_ms: clock::now_ms(),
        until_ms,
        partition: written.partition.clone(),
    };
    let bytes = serde_json::to_vec(&record).expect("a partition serializes");
    if let Err(err) = cache_file::write_atomic_unsynced(&path(area, model), &bytes) {
        crate::log_warn(&format!(
            "could not record the slice the lease wrote (hydration reads the partition instead): {err:?}"
        ));
    }
}

/// Forgets `model`'s record: before a commit of this cache (the one write
/// that may follow it), at release and at a force-release.
///
/// # Errors
/// `invalid-input` when a record is there and cannot be removed: a commit,
/// or a release, then does not go ahead (a later hydration would trust
/// the record).
pub fn forget(area: &str, model: &ModelRef) -> Result<(), Error> {
    match std::fs::remove_file(layout::in_cache(&path(area, model))) {
        Ok(()) => Ok(()),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(err) => Err(Error::InvalidInput(format!(
            "cannot remove {} from the cache ({err}): check that the cache directory is writable",
            path(area, model)
        ))),
    }
}

/// True when this cache may hold a record at all (one look at the
/// directory): callers hydrating many models skip [`current`] otherwise.
pub fn any() -> bool {
    std::fs::read_dir(layout::in_cache(&format!("{CACHE_STATE_DIR}/{DIR}")))
        .is_ok_and(|mut entries| entries.next().is_some())
}

/// The slice of `model` a live lease of this cache wrote, while it is
/// trusted; `None` otherwise (read the partition). A record past its time
/// (a killed holder's) is removed.
pub fn current(area: &str, model: &ModelRef) -> Option<Versioned> {
    let bytes = cache_file::read_file(&path(area, model)).ok()?;
    let record: Record = serde_json::from_slice(&bytes).ok()?;
    let trusted = trusted(record, area, model, clock::now_ms());
    if trusted.is_none() {
        let _ = forget(area, model);
    }
    trusted
}

fn trusted(record: Record, area: &str, model: &ModelRef, now_ms: u64) -> Option<Versioned> {
    let in_time = record.written_ms <= now_ms && now_ms <= record.until_ms;
    (record.partition.is_of(area, model) && in_time && !record.version.is_empty()).then_some(
        Versioned {
            partition: record.partition,
            version: Some(record.version),
        },
    )
}

/// Takes `leased` as the model's latest slice into `sidecar` (as a read
/// that found it would; nothing is read).
pub fn take(sidecar: &mut Sidecar, leased: Versioned) {
    if sidecar.partition.is_some() && sidecar.store_version == leased.version {
        return;
    }
    sidecar.partition = Some(leased.partition);
    sidecar.store_version = leased.version;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model(id: &str) -> ModelRef {
        ModelRef {
            model_type: "vision/detector".to_owned(),
            model_id: id.to_owned(),
        }
    }

    fn record(of: &ModelRef, until_ms: u64) -> Record {
        Record {
            version: "v1".to_owned(),
            written_ms: 100,
            until_ms,
            partition: Partition::empty("data", of),
        }
    }

    #[test]
    fn a_record_is_trusted_until_its_lock_would_go_stale() {
        let m = model("m-1");
        let slice = trusted(record(&m, 1_000), "data", &m, 1_000).expect("trusted at its end");
        assert_eq!(slice.version.as_deref(), Some("v1"));
        assert!(trusted(record(&m, 1_000), "data", &m, 1_001).is_none());
        // A clock stepped back past the record's writing: not judged.
        assert!(trusted(record(&m, 1_000), "data", &m, 99).is_none());
    }

    #[test]
    fn a_record_of_another_model_or_area_is_not_trusted() {
        let (m1, m2) = (model("m-1"), model("m-2"));
        assert!(trusted(record(&m1, 1_000), "data", &m1, 500).is_some());
        assert!(trusted(record(&m1, 1_000), "data", &m2, 500).is_none());
        assert!(trusted(record(&m1, 1_000), "other", &m1, 500).is_none());
        let mut no_version = record(&m1, 1_000);
        no_version.version.clear();
        assert!(trusted(no_version, "data", &m1, 500).is_none());
    }

    #[test]
    fn each_model_has_its_own_record_in_one_directory() {
        let (a, b) = (path("data", &model("m-1")), path("data", &model("m-2")));
        assert_ne!(a, b);
        assert_eq!(a.matches('/').count(), 2, "{a}");
        // A type with `/` is hashed into the name, not a directory.
        assert_eq!(path("data", &model("a/b/c")).matches('/').count(), 2);
    }
}
