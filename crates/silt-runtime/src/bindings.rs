//! Host bindings generated from `wit/` (`silt:datastore@0.7.1`).
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
        Ok(crate::metadata::FEATURES
            .into_iter()
            .map(|(feature, _)| feature)
            .filter(|feature| bits & feature.as_array()[0] != 0)
            .fold(Features::empty(), |all, feature| all | feature))
    }
}

/// An instance's exports, in the contract version its component speaks.
pub enum Bindings {
    /// This silt's contract.
    Current(DatastoreExtension),
    /// The previous contract (`crate::since_v0_6`).
    V0_6(crate::since_v0_6::DatastoreExtension),
}

/// A linked component of a supported version, ready to instantiate.
pub enum BindingsPre<T: 'static> {
    /// This silt's contract.
    Current(DatastoreExtensionPre<T>),
    /// The previous contract.
    V0_6(crate::since_v0_6::DatastoreExtensionPre<T>),
}

impl<T: Send + 'static> BindingsPre<T> {
    /// The exports of `instance_pre`, whose component speaks `api_version`
    /// (validated: one of `metadata::SUPPORTED_API_VERSIONS`).
    ///
    /// # Errors
    /// When the component lacks an export of that version.
    pub fn new(
        instance_pre: wasmtime::component::InstancePre<T>,
        api_version: &str,
    ) -> wasmtime::Result<Self> {
        match api_version {
            // An earlier patch's names resolve to this version's (semver).
            current if crate::metadata::is_current_minor(current) => {
                Ok(Self::Current(DatastoreExtensionPre::new(instance_pre)?))
            }
            crate::since_v0_6::API_VERSION => Ok(Self::V0_6(
                crate::since_v0_6::DatastoreExtensionPre::new(instance_pre)?,
            )),
            other => Err(wasmtime::Error::msg(format!(
                "contract version {} is not one this silt runs ({})",
                crate::guest_text(other),
                crate::metadata::supported_api_ids()
            ))),
        }
    }

    /// The linked component, whichever its version.
    pub fn instance_pre(&self) -> &wasmtime::component::InstancePre<T> {
        match self {
            Self::Current(pre) => pre.instance_pre(),
            Self::V0_6(pre) => pre.instance_pre(),
        }
    }

    /// A new instance in `store`.
    ///
    /// # Errors
    /// When instantiation fails (start-up code trapped, limits).
    pub async fn instantiate_async(
        &self,
        store: impl wasmtime::AsContextMut<Data = T>,
    ) -> wasmtime::Result<Bindings> {
        Ok(match self {
            Self::Current(pre) => Bindings::Current(pre.instantiate_async(store).await?),
            Self::V0_6(pre) => Bindings::V0_6(pre.instantiate_async(store).await?),
        })
    }
}
