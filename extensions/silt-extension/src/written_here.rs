//! The partitions this cache wrote last, with the store version each write
//! produced: what lets the next unleased commit of a model compare-and-swap
//! without reading the partition first ([`crate::unleased`]).
//!
//! Kept apart from the sidecars: an unleased `put-file` does not touch the
//! working copy, and a sidecar's stamps belong to whoever holds the
//! model's working-copy lock. Like the sidecars, these files are a cache:
//! a missing, stale or unreadable one costs a read, never data (a
//! compare-and-swap on a version the store has moved on from fails).
//!
//! ```no_run,standalone_crate
//! use silt_extension::layout::DATA_AREA;
//! use silt_extension::written_here;
//! # let model = silt_extension::silt::datastore::types::ModelRef { model_type: "vision/detector".into(), model_id: "m-42".into() };
//!
//! match written_here::known_slice(DATA_AREA, &model) {
//!     Some(known) => println!("compare-and-swap on {:?}", known.version),
//!     None => println!("read the partition first"),
//! }
//! ```

use serde::{Deserialize, Serialize};

use crate::cache_file;
use crate::layout::CACHE_STATE_DIR;
use crate::local;
use crate::partition::{Partition, Versioned};
use crate::silt::datastore::types::ModelRef;

/// One partition as written from here.
#[derive(Serialize, Deserialize)]
struct Written {
    version: String,
    partition: Partition,
}

/// Where the partition of `model` in `area` as last written from here is
/// kept, relative to the cache.
///
/// ```no_run,standalone_crate
/// use silt_extension::layout::DATA_AREA;
/// use silt_extension::written_here;
/// # let model = silt_extension::silt::datastore::types::ModelRef { model_type: "vision/detector".into(), model_id: "m-42".into() };
/// assert_eq!(
///     written_here::path(DATA_AREA, &model),
///     ".silt/written/data/vision/detector/m-42.json",
/// );
/// ```
pub fn path(area: &str, model: &ModelRef) -> String {
    format!(
        "{CACHE_STATE_DIR}/written/{area}/{}/{}.json",
        model.model_type, model.model_id
    )
}

/// Remembers that this cache wrote `written` (a commit that landed, at the
/// version the store answered). Best effort: a failure only costs the next
/// commit a read.
///
/// ```no_run,standalone_crate
/// use silt_extension::change::Committed;
/// use silt_extension::layout::DATA_AREA;
/// use silt_extension::partition::Versioned;
/// use silt_extension::written_here;
/// use silt_extension::silt::datastore::types::ModelRef;
///
/// fn after(model: &ModelRef, committed: &Committed) {
///     let written = Versioned { partition: committed.partition.clone(), version: Some(committed.version.clone()) };
///     written_here::remember(DATA_AREA, model, &written);
/// }
/// ```
pub fn remember(area: &str, model: &ModelRef, written: &Versioned) {
    let Some(version) = written.version.clone() else {
        return;
    };
    let bytes = serde_json::to_vec(&Written {
        version,
        partition: written.partition.clone(),
    })
    .expect("a partition serializes");
    if let Err(err) = cache_file::write_atomic_unsynced(&path(area, model), &bytes) {
        crate::log_warn(&format!(
            "could not remember the commit just made (the next one reads the partition first): {err:?}"
        ));
    }
}

fn load(area: &str, model: &ModelRef) -> Option<Versioned> {
    let bytes = cache_file::read_file(&path(area, model)).ok()?;
    let written: Written = serde_json::from_slice(&bytes).ok()?;
    written.partition.is_of(area, model).then_some(Versioned {
        partition: written.partition,
        version: Some(written.version),
    })
}

/// The newest partition of `model` this cache knows with the store
/// version it is at: the one written from here, or the sidecar's (whose
/// slice is never older than its version: a compare-and-swap on that
/// version lands only when the two are the same). `None` when neither is
/// known: read the partition.
///
/// ```no_run,standalone_crate
/// use silt_extension::layout::DATA_AREA;
/// use silt_extension::written_here;
/// # let model = silt_extension::silt::datastore::types::ModelRef { model_type: "vision/detector".into(), model_id: "m-42".into() };
/// let names = written_here::known_slice(DATA_AREA, &model).map_or(0, |known| known.partition.files.len());
/// # let _ = names;
/// ```
pub fn known_slice(area: &str, model: &ModelRef) -> Option<Versioned> {
    let sidecar = local::load(area, model);
    let read_here = match (sidecar.partition, sidecar.store_version) {
        (Some(partition), Some(version)) => Some(Versioned {
            partition,
            version: Some(version),
        }),
        _ => None,
    };
    match (load(area, model), read_here) {
        // A later commit (a push, a pull that read it) is the better guess.
        (Some(written), Some(read)) if read.partition.seq > written.partition.seq => Some(read),
        (Some(written), _) => Some(written),
        (None, read) => read,
    }
}
