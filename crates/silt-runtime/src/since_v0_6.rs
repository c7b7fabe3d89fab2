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
//! 0.7.1 added `object-store.download-landed`, 0.7.2
//! `object-store.upload-hashed` and 0.7.3 `object-store.deliver`, which a
//! 0.6.0 component never calls (its imports are served from the same
//! table without them). An earlier patch of this version (0.7.0 to 0.7.2)
//! needs nothing here: it runs on the current bindings
//! (`crate::metadata::EARLIER_PATCHES`).
//!
//! When 0.8.0 comes, this module becomes `since_v0_7`, generated from the
//! last 0.7 patch, with every 0.7 patch mapped to it, and 0.6.0 is
//! dropped (the policy is in `examples/README.md`).
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
pub const API_VERSION: &str = crate::metadata::PREVIOUS_MINOR;

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

    /// 0.6.0's `object-store`, served by this version's: the same table
    /// but for what the 0.7 patches added (`download-landed`,
    /// `upload-hashed`, `deliver`), each argument and
    /// answer adapted (the types above are 0.6.0's).
    macro_rules! serve_previous_object_store {
        ([] $($line:tt)*) => {
            serve_previous_object_store!(@keep [] $($line)*);
        };
        // What 0.6.0 does not have.
        (@keep [$($kept:tt)*] DownloadLanded $name:ident $wit:literal ($($arg:ident : $type:ty),*) -> $result:ty; $($rest:tt)*) => {
            serve_previous_object_store!(@keep [$($kept)*] $($rest)*);
        };
        (@keep [$($kept:tt)*] UploadHashed $name:ident $wit:literal ($($arg:ident : $type:ty),*) -> $result:ty; $($rest:tt)*) => {
            serve_previous_object_store!(@keep [$($kept)*] $($rest)*);
        };
        (@keep [$($kept:tt)*] Deliver $name:ident $wit:literal ($($arg:ident : $type:ty),*) -> $result:ty; $($rest:tt)*) => {
            serve_previous_object_store!(@keep [$($kept)*] $($rest)*);
        };
        (@keep [$($kept:tt)*] $variant:ident $name:ident $wit:literal ($($arg:ident : $type:ty),*) -> $result:ty; $($rest:tt)*) => {
            serve_previous_object_store!(@keep [$($kept)* $variant $name $wit ($($arg : $type),*) -> $result;] $($rest)*);
        };
        (@keep [$($variant:ident $name:ident $wit:literal ($($arg:ident : $type:ty),*) -> $result:ty;)*]) => {
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

    /// A contract's file, for comparing versions: no doc comments (the
    /// version list, what is granted may differ), no blank lines, `@V` for
    /// the version, without what the 0.7 patches added (`object-store`'s
    /// `landed`, `download-landed`, `uploaded`, `upload-hashed` and
    /// `deliver`), and,
    /// `without_config`, without the world's import of `config` (which
    /// 0.6.0 lacks).
    fn normalized(path: &str, without_config: bool) -> Vec<String> {
        let text = std::fs::read_to_string(path).unwrap_or_else(|err| panic!("{path}: {err}"));
        let mut lines = Vec::new();
        let mut in_added_record = false;
        for line in text.lines() {
            let trimmed = line.trim();
            if trimmed == "record landed {" || trimmed == "record uploaded {" {
                in_added_record = true;
            }
            let skipped = in_added_record
                || trimmed.is_empty()
                || trimmed.starts_with("///")
                || (without_config && trimmed == "import config;")
                || trimmed.starts_with("download-landed:")
                || trimmed.starts_with("upload-hashed:")
                || trimmed.starts_with("deliver:");
            if in_added_record && trimmed == "}" {
                in_added_record = false;
            }
            if !skipped {
                lines.push(
                    line.replace("@0.7.4", "@V")
                        .replace("@0.7.3", "@V")
                        .replace("@0.7.2", "@V")
                        .replace("@0.7.1", "@V")
                        .replace("@0.7.0", "@V")
                        .replace("@0.6.0", "@V"),
                );
            }
        }
        lines
    }

    /// The `.wit` files directly in `dir`, sorted.
    fn wit_files(dir: &str) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|name| name.ends_with(".wit"))
            .collect();
        names.sort();
        names
    }

    const WIT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../wit");

    /// What `adapt` relies on: the two contracts are the same text but for
    /// their versions, the `config` interface and the world's import of it,
    /// and what the 0.7 patches added, which 0.6.0 never sees (postcard encodes no
    /// names, so a reordered field would decode wrong).
    #[test]
    fn the_previous_contract_differs_only_by_version_config_and_additions() {
        let previous = wit_files(&format!("{WIT}/since_v0_6"));
        assert_eq!(previous.len(), 10, "every interface of 0.6.0 and its world");
        for name in &previous {
            assert_eq!(
                normalized(&format!("{WIT}/{name}"), true),
                normalized(&format!("{WIT}/since_v0_6/{name}"), true),
                "{name} differs between the contracts beyond the version"
            );
        }
        // And the current contract is those files and `config` alone.
        let mut current = wit_files(WIT);
        current.retain(|name| name != "config.wit");
        assert_eq!(current, previous);
    }

    /// The first patch of this version (`wit/since_v0_7_0`, run on this
    /// version's bindings) is this contract without what the later patches
    /// added; a patch that changed anything else would not link by semver.
    #[test]
    fn the_first_patch_differs_only_by_what_later_patches_added() {
        let before = wit_files(&format!("{WIT}/since_v0_7_0"));
        assert_eq!(before, wit_files(WIT));
        for name in &before {
            assert_eq!(
                normalized(&format!("{WIT}/{name}"), false),
                normalized(&format!("{WIT}/since_v0_7_0/{name}"), false),
                "{name} differs between this patch and 0.7.0 beyond what the patches added"
            );
        }
        let added: Vec<String> = std::fs::read_to_string(format!("{WIT}/object-store.wit"))
            .unwrap()
            .lines()
            .filter(|line| {
                [
                    "download-landed:",
                    "record landed",
                    "upload-hashed:",
                    "record uploaded",
                    "deliver:",
                ]
                .iter()
                .any(|added| line.contains(added))
            })
            .map(str::to_owned)
            .collect();
        assert_eq!(
            added.len(),
            5,
            "the additions the comparison skips are there: {added:?}"
        );
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
