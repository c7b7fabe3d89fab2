//! partitioned-datastore: silt's datastore extension.
//!
//! The layout of a datastore root (every key relative to it):
//!
//! ```text
//! _meta/datastore.json                 layout version and retention (written by setup)
//! _meta/namespace-fence.json           the namespace lease's generation counter
//! _index/<area>/<type>/<id>.json       one index partition per model and area
//! _locks/model/<type>/<id>.json        a model's lease
//! _locks/namespace.json                the namespace (structural) lease
//! data/<type>/<id>/<name>/<version>    file content; never overwritten
//! ```
//!
//! Why it scales with the work and not with the datastore:
//! - a commit uploads its new objects under fresh keys, then compare-and-swaps
//!   the one partition it touches; writers of different models share nothing;
//! - a lease is one small object per model, and every lease acquisition
//!   raises the partition's fence, so an old holder can never commit again;
//! - sync compares one LIST of `_index/` with the local sidecars.
//!
//! The cache directory (`/cache`) holds the working copy at
//! `data/<type>/<id>/<name>` and, under `.silt/`, a sidecar per partition
//! (the partition as last seen, and stamps of the files present locally).

wit_bindgen::generate!({
    path: "../../wit",
    world: "silt:datastore/datastore-extension",
});

mod clock;
mod commit;
mod hydrate;
mod layout;
mod leases;
mod local;
mod meta;
mod models;
mod partition;
mod store;
mod sync;

use exports::silt::datastore::capabilities;

// The metadata the host reads without compiling this component.
#[unsafe(link_section = "silt-extension")]
#[used]
static METADATA: [u8; include_bytes!("../silt-extension.toml").len()] =
    *include_bytes!("../silt-extension.toml");

/// The extension: each interface is implemented in the module named after it.
pub struct Partitioned;

impl capabilities::Guest for Partitioned {
    fn describe() -> capabilities::Description {
        use capabilities::Features;
        capabilities::Description {
            name: env!("CARGO_PKG_NAME").to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            features: Features::SCOPED_SYNC
                | Features::PARTITIONED_INDEX
                | Features::MODEL_LOCKS
                | Features::NAMESPACE_LOCKS
                | Features::LAZY_HYDRATION,
        }
    }
}

export!(Partitioned);

/// Logs a warning through the host.
pub(crate) fn log_warn(message: &str) {
    silt::datastore::log::log(silt::datastore::log::Level::Warn, message);
}
