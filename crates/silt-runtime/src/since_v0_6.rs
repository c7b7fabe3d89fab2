//! The previous contract, `silt:datastore@0.6.0` (`wit/since_v0_6/`):
//! components built for it keep running beside those built for this one.
//!
//! 0.7.0 added the `config` import and changed nothing else but the
//! package version, so one generic step adapts every value: [`adapt`]
//! re-reads a value of one version's generated type as the other's, by the
//! same serde encoding the worker pipe uses (records field by field,
//! variants and enums by case, flags by their bits; the two versions list
//! them in the same order). The host calls an old component's exports with
//! adapted arguments (`crate::call`) and serves its imports by adapting
//! them to this version's implementations (below). Nothing else in the
//! host knows which version a component speaks.
//!
//! When 0.8.0 comes, this module becomes `since_v0_7` and 0.6.0 is dropped
//! (the policy is in `examples/README.md`).
#![allow(missing_docs)]

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::HostState;
use crate::bindings::silt::datastore as current;

wasmtime::component::bindgen!({
    path: "../../wit/since_v0_6",
    world: "silt:datastore/datastore-extension",
    // Trappable: a value that does not adapt (a bug) traps the guest call
    // instead of panicking in the host.
    imports: { default: async | trappable },
    exports: { default: async },
    additional_derives: [serde::Serialize, serde::Deserialize],
});

/// The version of the previous contract.
pub const API_VERSION: &str = "0.6.0";

/// `value` as the other version's type of the same WIT name.
///
/// # Errors
/// When the two types do not have the same shape (a bug in silt: the
/// versions' WIT differ where this module says they do not).
pub fn adapt<A: Serialize, B: DeserializeOwned>(value: &A) -> wasmtime::Result<B> {
    let bytes = postcard::to_allocvec(value)?;
    let misfit = |why: String| {
        wasmtime::Error::msg(format!(
            "a value of contract {API_VERSION} does not fit this silt's types ({why}): a bug in silt"
        ))
    };
    // Every byte read, or the shapes differ (postcard encodes no names).
    match postcard::take_from_bytes(&bytes) {
        Ok((adapted, [])) => Ok(adapted),
        Ok((_, rest)) => Err(misfit(format!("{} bytes left over", rest.len()))),
        Err(err) => Err(misfit(err.to_string())),
    }
}

use exports::silt::datastore::capabilities::Features;

/// `features` crosses as its bit mask, as this version's does (`flags!`
/// types take no derives): both versions list the same flags in the same
/// order, so the bits mean the same.
impl Serialize for Features {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.as_array()[0].serialize(serializer)
    }
}

impl<'de> serde::Deserialize<'de> for Features {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let bits = <u32 as serde::Deserialize>::deserialize(deserializer)?;
        Ok(FEATURES
            .into_iter()
            .filter(|feature| bits & feature.as_array()[0] != 0)
            .fold(Features::empty(), |all, feature| all | feature))
    }
}

/// Every flag of 0.6.0's `features`, in the WIT's order.
const FEATURES: [Features; 8] = [
    Features::SCOPED_SYNC,
    Features::PARTITIONED_INDEX,
    Features::MODEL_LOCKS,
    Features::NAMESPACE_LOCKS,
    Features::LAZY_HYDRATION,
    Features::BACKGROUND_HYDRATION,
    Features::GC,
    Features::LEASE_FREE_COMMITS,
];

impl silt::datastore::types::Host for HostState {}

impl silt::datastore::log::Host for HostState {
    async fn log(
        &mut self,
        level: silt::datastore::log::Level,
        message: String,
    ) -> wasmtime::Result<()> {
        current::log::Host::log(self, adapt(&level)?, message).await;
        Ok(())
    }
}

impl silt::datastore::progress::Host for HostState {
    async fn begin(
        &mut self,
        label: String,
        total_items: Option<u64>,
        total_bytes: Option<u64>,
    ) -> wasmtime::Result<()> {
        current::progress::Host::begin(self, label, total_items, total_bytes).await;
        Ok(())
    }

    async fn advance(&mut self, items: u64, bytes: u64) -> wasmtime::Result<()> {
        current::progress::Host::advance(self, items, bytes).await;
        Ok(())
    }

    async fn finish(&mut self) -> wasmtime::Result<()> {
        current::progress::Host::finish(self).await;
        Ok(())
    }
}

mod object_store_imports {
    use super::adapt;
    use super::silt::datastore::object_store::{
        self, DownloadItem, GetOutcome, ListPage, ObjectMeta, PutMode, StoreError, UploadItem,
    };
    use crate::HostState;
    use crate::capabilities::store_imports::foreach_store_function;

    /// 0.6.0's `object-store`, served by this version's: the same table,
    /// each argument and answer adapted (the types above are 0.6.0's).
    macro_rules! serve_previous_object_store {
        ([] $($variant:ident $name:ident $wit:literal ($($arg:ident : $type:ty),*) -> $result:ty;)*) => {
            impl object_store::Host for HostState {
                $(async fn $name(&mut self, $($arg: $type),*) -> wasmtime::Result<$result> {
                    let answer = crate::bindings::silt::datastore::object_store::Host::$name(
                        self, $(adapt(&$arg)?),*
                    )
                    .await;
                    adapt(&answer)
                })*
            }
        };
    }

    foreach_store_function!(serve_previous_object_store);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What `adapt` relies on: the two contracts are the same text but for
    /// their versions, the `config` interface and the world's import of it
    /// (postcard encodes no names, so a reordered field would decode wrong).
    #[test]
    fn the_previous_contract_differs_only_by_version_and_config() {
        let wit = concat!(env!("CARGO_MANIFEST_DIR"), "/../../wit");
        let normalized = |path: String| {
            std::fs::read_to_string(&path)
                .unwrap_or_else(|err| panic!("{path}: {err}"))
                .lines()
                // Doc comments may differ (the version list, what is granted).
                .filter(|line| !line.trim_start().starts_with("///"))
                .filter(|line| line.trim() != "import config;")
                .map(|line| line.replace("@0.7.0", "@V").replace("@0.6.0", "@V"))
                .collect::<Vec<_>>()
        };
        let mut compared = 0;
        for entry in std::fs::read_dir(format!("{wit}/since_v0_6")).unwrap() {
            let name = entry.unwrap().file_name().to_string_lossy().into_owned();
            assert_eq!(
                normalized(format!("{wit}/{name}")),
                normalized(format!("{wit}/since_v0_6/{name}")),
                "{name} differs between the contracts beyond the version"
            );
            compared += 1;
        }
        assert_eq!(compared, 10, "every interface of 0.6.0 and its world");
        // And the current contract is those files and `config` alone.
        let mut current: Vec<String> = std::fs::read_dir(wit)
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|name| name.ends_with(".wit") && name != "config.wit")
            .collect();
        current.sort();
        let mut previous: Vec<String> = std::fs::read_dir(format!("{wit}/since_v0_6"))
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        previous.sort();
        assert_eq!(current, previous);
    }

    #[test]
    fn features_keep_their_meaning_across_versions() {
        let old = Features::LEASE_FREE_COMMITS | Features::MODEL_LOCKS | Features::GC;
        let new: crate::bindings::Features = adapt(&old).unwrap();
        assert_eq!(
            crate::metadata::feature_names(new),
            ["model-locks", "gc", "lease-free-commits"]
        );
        let back: Features = adapt(&new).unwrap();
        assert_eq!(back, old);
    }

    #[test]
    fn errors_and_variants_keep_their_cases() {
        use silt::datastore::types::{Base, Error};
        let old = Error::LockLost("taken over".to_owned());
        let new: crate::bindings::ExtensionError = adapt(&old).unwrap();
        assert!(
            matches!(&new, crate::bindings::ExtensionError::LockLost(detail) if detail == "taken over")
        );
        let base: Base = adapt(&crate::bindings::silt::datastore::types::Base::Version(
            "v3".to_owned(),
        ))
        .unwrap();
        assert!(matches!(base, Base::Version(v) if v == "v3"));
    }
}
