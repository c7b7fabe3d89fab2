//! The extension supply chain: components published to and pulled from OCI
//! registries as Wasm OCI artifacts ([`oci`]), or fetched from a URL pinned
//! by sha256 ([`download`]).
//!
//! This crate moves bytes and checks digests and layouts; whether the bytes
//! are a valid silt extension is the runtime's question, asked by the caller
//! before anything is installed.

pub mod artifact;
pub mod credentials;
pub mod download;
mod error;
pub mod oci;
pub mod reference;

pub use artifact::ComponentDescription;
pub use error::RegistryError;
pub use oci::{Published, Pulled};
pub use reference::OciReference;

/// `sha256:` and the lowercase hex sha256 of `bytes`: an OCI digest.
#[must_use]
pub fn sha256_digest(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    let digest = sha2::Sha256::digest(bytes);
    let mut out = String::with_capacity(71);
    out.push_str("sha256:");
    for byte in digest {
        out.push_str(&format!("{byte:02x}"));
    }
    out
}
