//! Host bindings generated from `wit/` (`silt:datastore@0.4.0`).
//!
//! The one `bindgen!` of the crate: every other module uses these types.
//! Imports and exports are async so host capabilities can await I/O and the
//! host can interrupt guests on a deadline.
//!
//! The WIT files document every generated item; rustdoc cannot see them.
#![allow(missing_docs)]

wasmtime::component::bindgen!({
    path: "../wit",
    world: "silt:datastore/datastore-extension",
    imports: { default: async },
    exports: { default: async },
});

pub use exports::silt::datastore::capabilities::{Description, Features};
pub use silt::datastore::types::Error as ExtensionError;
