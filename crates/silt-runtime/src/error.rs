//! Errors of loading and running extensions. Every case names the extension
//! and, for calls, the function; none of them takes the host down.

use super::inspect::InvalidExtension;

/// Why an extension could not be loaded or a call into it failed.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// The file is not an extension this host can run.
    #[error(transparent)]
    Invalid(#[from] InvalidExtension),
    /// No extension of that name is installed.
    #[error(
        "no extension named `{name}` is installed (see `silt extension list`, or add one with `silt extension add PATH`)"
    )]
    NotInstalled {
        /// The name asked for.
        name: String,
    },
    /// The engine could not be created.
    #[error("cannot start the WebAssembly engine: {detail}")]
    Engine {
        /// Why.
        detail: String,
    },
    /// wasmtime refused to compile the component.
    #[error("extension `{extension}` failed to compile: {detail}")]
    Compile {
        /// The extension.
        extension: String,
        /// wasmtime's message.
        detail: String,
    },
    /// The component could not be instantiated (imports, resources).
    #[error("extension `{extension}` could not be started: {detail}")]
    Instantiate {
        /// The extension.
        extension: String,
        /// wasmtime's message.
        detail: String,
    },
    /// The guest trapped (panicked, hit `unreachable`, faulted).
    #[error(
        "extension `{extension}` crashed in `{function}`: {trap}{}",
        stderr_suffix(stderr)
    )]
    Trap {
        /// The extension.
        extension: String,
        /// The WIT function, e.g. `sync.pull-changed`.
        function: &'static str,
        /// The trap.
        trap: String,
        /// The last lines the guest wrote to stderr.
        stderr: String,
    },
    /// The call ran past its deadline and was stopped.
    #[error(
        "extension `{extension}` did not finish `{function}` within its {deadline_ms} ms deadline{} and was stopped (raise {} in silt.toml if the work is legitimately long)",
        store_budget_ms.map_or_else(String::new, |ms| format!(", having also used up its {ms} ms store budget (object-store time past it counts against the deadline)")),
        if store_budget_ms.is_some() { "runtime.deadline_ms or runtime.store_budget_ms" } else { "runtime.deadline_ms" }
    )]
    DeadlineExceeded {
        /// The extension.
        extension: String,
        /// The WIT function.
        function: &'static str,
        /// The deadline.
        deadline_ms: u64,
        /// The store budget, when the call had used it all up (its store
        /// time then counted against the deadline too).
        store_budget_ms: Option<u64>,
    },
    /// The guest tried to use more memory than allowed and was stopped.
    #[error(
        "extension `{extension}` exceeded its {limit_mib} MiB memory limit in `{function}` and was stopped (raise runtime.memory_limit_mib in silt.toml if it legitimately needs more)"
    )]
    MemoryLimitExceeded {
        /// The extension.
        extension: String,
        /// The WIT function.
        function: &'static str,
        /// The limit.
        limit_mib: u64,
    },
    /// An out-of-process worker was killed by its OS memory limit (the
    /// sandbox's cgroup), which covers the worker itself, not only the guest.
    #[error(
        "extension `{extension}` was killed in `{function}`: its worker exceeded its {limit_mib} MiB OS memory limit (raise sandbox.memory_limit_mib in silt.toml if it legitimately needs more)"
    )]
    WorkerMemoryLimitExceeded {
        /// The extension.
        extension: String,
        /// The WIT function.
        function: &'static str,
        /// The worker's limit.
        limit_mib: u64,
    },
    /// A host capability failed while the guest was calling it.
    #[error("extension `{extension}` failed in `{function}`: {detail}")]
    Host {
        /// The extension.
        extension: String,
        /// The WIT function.
        function: &'static str,
        /// What failed.
        detail: String,
    },
    /// The out-of-process worker failed: it could not start, died, broke
    /// the protocol, or was torn down.
    #[error("the out-of-process worker of extension `{extension}` failed: {detail}")]
    Worker {
        /// The extension.
        extension: String,
        /// What happened, with the worker's last log lines.
        detail: String,
    },
    /// Out-of-process execution was asked for under `isolation = "strict"`
    /// and a layer of the sandbox is missing on this machine.
    #[error(
        "cannot run extension `{extension}` out of process: {detail} (see `silt sandbox check`; set [sandbox] isolation = \"auto\" in silt.toml to step down to what this machine supports)"
    )]
    SandboxUnavailable {
        /// The extension.
        extension: String,
        /// Which layer is missing and why.
        detail: String,
    },
    /// An earlier call on this instance failed; it cannot be used again.
    #[error("extension `{extension}` cannot be called after a failed call; start a new operation")]
    Poisoned {
        /// The extension.
        extension: String,
    },
}

impl RuntimeError {
    /// How a call ended, in one word for traces and counters (the
    /// `silt.outcome` of an `extension.call` span).
    pub fn outcome(&self) -> &'static str {
        match self {
            Self::Invalid(_) | Self::NotInstalled { .. } => "not_loaded",
            Self::Engine { .. } | Self::Compile { .. } | Self::Instantiate { .. } => "not_started",
            Self::Trap { .. } => "trap",
            Self::DeadlineExceeded { .. } => "deadline_exceeded",
            Self::MemoryLimitExceeded { .. } | Self::WorkerMemoryLimitExceeded { .. } => {
                "memory_limit_exceeded"
            }
            Self::Host { .. } => "host_error",
            Self::Worker { .. } => "worker_failed",
            Self::SandboxUnavailable { .. } => "sandbox_unavailable",
            Self::Poisoned { .. } => "poisoned",
        }
    }
}

fn stderr_suffix(stderr: &str) -> String {
    if stderr.trim().is_empty() {
        String::new()
    } else {
        format!("\nits stderr ended with:\n{stderr}")
    }
}
