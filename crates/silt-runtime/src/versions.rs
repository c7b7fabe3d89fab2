//! The contract versions this host runs, as one type: an instance's
//! exports (and a linked component) in the version its component speaks,
//! this silt's (`crate::bindings`) or the minor version before it
//! (`crate::since_v0_6`).

use crate::bindings::{DatastoreExtension, DatastoreExtensionPre};

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
            crate::metadata::PREVIOUS_MINOR => Ok(Self::V0_6(
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
