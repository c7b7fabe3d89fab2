//! What can go wrong fetching or publishing a component, each with what to do.

use std::path::PathBuf;

/// Why a registry or download operation failed.
///
/// Text that came from a registry or server (an error body, a media type) is
/// escaped before it is stored here: it is someone else's text.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// The reference or URL the user gave is not one.
    #[error("`{reference}` is not a component reference: {why}")]
    BadReference {
        /// What was given (escaped).
        reference: String,
        /// What is wrong with it.
        why: String,
    },
    /// Plain HTTP to a host other than this machine.
    #[error(
        "{url}: plain http is allowed only to this machine (localhost, 127.0.0.0/8, ::1); use https"
    )]
    PlainHttp {
        /// The URL.
        url: String,
    },
    /// An `https://` component without the digest that pins it.
    #[error(
        "{url}: a component fetched by URL needs --sha256 HEX (the digest its publisher gives), so that what runs is what was meant"
    )]
    DigestRequired {
        /// The URL.
        url: String,
    },
    /// The bytes are not the ones the digest names.
    #[error(
        "{what} has sha256 {actual}, not the {expected} that was asked for: it was changed or replaced; nothing was installed"
    )]
    DigestMismatch {
        /// What was fetched.
        what: String,
        /// The digest asked for.
        expected: String,
        /// The digest of what arrived.
        actual: String,
    },
    /// The registry holds something other than a Wasm component artifact.
    #[error("{reference} is not a Wasm component artifact: {why}")]
    NotAComponent {
        /// The reference.
        reference: String,
        /// What it is instead.
        why: String,
    },
    /// More bytes than any component should have.
    #[error("{what} is larger than {limit} bytes; refusing to download it")]
    TooLarge {
        /// What was being fetched.
        what: String,
        /// The limit.
        limit: u64,
    },
    /// The registry refused our credentials, or wants some.
    #[error(
        "{registry} refused access ({detail}); log in with `podman login {registry}` or `docker login {registry}` (silt reads their auth files), or set SILT_REGISTRY_USERNAME and SILT_REGISTRY_PASSWORD"
    )]
    Unauthorized {
        /// The registry.
        registry: String,
        /// Its answer (escaped).
        detail: String,
    },
    /// The tag or digest does not exist.
    #[error("{reference} was not found in the registry ({detail}); check the name and tag")]
    NotFound {
        /// The reference.
        reference: String,
        /// The registry's answer (escaped).
        detail: String,
    },
    /// A credentials file that exists but cannot be used.
    #[error("{path}: {detail}; fix or remove it")]
    BadAuthFile {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        detail: String,
    },
    /// A credential helper named by an auth file failed.
    #[error("credential helper docker-credential-{helper} failed: {detail}")]
    CredentialHelper {
        /// The helper's name.
        helper: String,
        /// What happened.
        detail: String,
    },
    /// The registry or server could not be reached or answered an error.
    #[error("{target}: {detail}; check that the address is right and the server is up, then retry")]
    Transport {
        /// The registry or URL.
        target: String,
        /// What happened (escaped).
        detail: String,
    },
}

/// Text from a server, escaped and cut to a length a message can carry.
pub(crate) fn server_text(text: &str) -> String {
    let mut out: String = text.escape_debug().collect();
    if out.len() > 300 {
        let mut cut = 300;
        while !out.is_char_boundary(cut) {
            cut -= 1;
        }
        out.truncate(cut);
        out.push('…');
    }
    out
}
