//! Why a worker could not be put in its sandbox.

/// A sandbox failure, by meaning. The runtime maps these into its own
/// errors (the same messages and exit codes as before the split).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SandboxError {
    /// `isolation = "strict"` and a layer of the sandbox is missing here.
    #[error(
        "cannot run extension `{extension}` out of process: {detail} (see `silt sandbox check`; set [sandbox] isolation = \"auto\" in silt.toml to step down to what this machine supports)"
    )]
    Unavailable {
        /// The extension.
        extension: String,
        /// Which layer is missing and why.
        detail: String,
    },
    /// The worker could not be started (its binary missing, a spawn that
    /// failed).
    #[error("the out-of-process worker of extension `{extension}` failed: {detail}")]
    Worker {
        /// The extension.
        extension: String,
        /// What happened.
        detail: String,
    },
}
