//! Host bindings generated from `wit/` (`silt:datastore@0.7.4`).
//!
//! The one `bindgen!` of the crate: every other module uses these types.
//! Imports and exports are async so host capabilities can await I/O and the
//! host can interrupt guests on a deadline.
//!
//! The WIT files document every generated item; rustdoc cannot see them.
#![allow(missing_docs)]

wasmtime::component::bindgen!({
    path: "../../wit",
    world: "silt:datastore/datastore-extension",
    imports: { default: async },
    exports: { default: async },
    // Every WIT type crosses the out-of-process worker's pipe (postcard).
    additional_derives: [serde::Serialize, serde::Deserialize],
});

pub use exports::silt::datastore::capabilities::{Description, Features};
pub use silt::datastore::types::Error as ExtensionError;

/// Every WIT `features` flag with the name metadata and messages use, in
/// the WIT's order (the one table: serialization and the contract suite
/// read it too).
pub const FEATURES: [(Features, &str); 8] = [
    (Features::SCOPED_SYNC, "scoped-sync"),
    (Features::PARTITIONED_INDEX, "partitioned-index"),
    (Features::MODEL_LOCKS, "model-locks"),
    (Features::NAMESPACE_LOCKS, "namespace-locks"),
    (Features::LAZY_HYDRATION, "lazy-hydration"),
    (Features::BACKGROUND_HYDRATION, "background-hydration"),
    (Features::GC, "gc"),
    (Features::LEASE_FREE_COMMITS, "lease-free-commits"),
];

/// `features` crosses the worker pipe as its bit mask: wasmtime's `flags!`
/// types take no extra derives.
impl serde::Serialize for Features {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.as_array()[0].serialize(serializer)
    }
}

impl<'de> serde::Deserialize<'de> for Features {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let bits = <u32 as serde::Deserialize>::deserialize(deserializer)?;
        Ok(FEATURES
            .into_iter()
            .map(|(feature, _)| feature)
            .filter(|feature| bits & feature.as_array()[0] != 0)
            .fold(Features::empty(), |all, feature| all | feature))
    }
}
