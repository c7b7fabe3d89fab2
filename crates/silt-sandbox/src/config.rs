//! `[sandbox]` in `silt.toml`: where extensions run and how a worker
//! process is isolated.
//!
//! ```toml
//! [sandbox]
//! execution = "in-process"   # default for every extension, or "out-of-process"
//! isolation = "auto"         # off | auto | strict
//! driver = "native"          # native (Linux default) | process | container
//! memory_limit_mib = 512     # OS memory limit of one worker (default: runtime's + 256)
//! pids_limit = 64            # processes and threads of one worker
//! pool_size = 2              # idle workers kept for reuse; 0 spawns one per call
//! worker_uid = 2080000000    # kernel uid and gid of workers (native, runc, podman) when silt runs as root
//!
//! [sandbox.container]
//! runtime = "runc"           # runc | docker | podman (a path or a name on PATH)
//! image = "localhost/silt-worker:latest"  # docker and podman: `silt sandbox image build`
//!
//! [sandbox.extension.partitioned-datastore]
//! execution = "out-of-process"
//! ```

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::native_init::DEFAULT_WORKER_UID;

/// Where an extension's calls run.
#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, PartialEq, Eq, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Execution {
    /// In the silt process, in the wasm sandbox only.
    #[default]
    InProcess,
    /// In a separate worker process, inside an OS sandbox too.
    OutOfProcess,
}

impl Execution {
    /// The name `--execution`, `SILT_EXECUTION` and `silt.toml` use.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InProcess => "in-process",
            Self::OutOfProcess => "out-of-process",
        }
    }
}

/// How strictly a worker's OS sandbox is required.
#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, PartialEq, Eq, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Isolation {
    /// No OS layers: a plain child process with an empty environment.
    Off,
    /// Every layer the driver has that this machine supports; a missing
    /// layer is a warning, and `native` steps down to `process` when this
    /// machine has no namespaces.
    #[default]
    Auto,
    /// Every layer of the driver, or the call is refused.
    Strict,
}

/// What starts and confines a worker.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Driver {
    /// Linux namespaces, a read-only root, Landlock, seccomp, cgroups.
    Native,
    /// A plain subprocess: empty environment, rlimits, death with the parent.
    Process,
    /// An OCI container through `runc`, `docker` or `podman`.
    Container,
}

impl Driver {
    /// The driver of this platform unless `silt.toml` names one.
    pub fn platform_default() -> Self {
        if cfg!(target_os = "linux") {
            Self::Native
        } else {
            Self::Process
        }
    }

    /// Its name in `silt.toml`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Native => "native",
            Self::Process => "process",
            Self::Container => "container",
        }
    }
}

/// `[sandbox]`
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct SandboxConfig {
    /// Where extensions run unless `[sandbox.extension.NAME]` says.
    pub execution: Execution,
    /// `off`, `auto` (default) or `strict`.
    pub isolation: Isolation,
    /// Default: `native` on Linux, `process` elsewhere.
    pub driver: Option<Driver>,
    /// OS memory limit of one worker in MiB (cgroup, else `RLIMIT_DATA`).
    /// Default: `runtime.memory_limit_mib` + 256 for the worker itself.
    pub memory_limit_mib: Option<u64>,
    /// Processes and threads one worker may have (cgroup pids). Default 64.
    pub pids_limit: u64,
    /// Idle workers kept per extension for the next call. Default 2; 0
    /// starts a worker for every call.
    pub pool_size: usize,
    /// When silt runs as root: the kernel uid (and gid) of its workers,
    /// `native` or in a runc or podman container, never 0; a uid no account on this machine has. The
    /// worker's binds are idmapped to it, so files keep their owner.
    /// Default [`DEFAULT_WORKER_UID`].
    pub worker_uid: u32,
    /// The `container` driver.
    pub container: ContainerConfig,
    /// Per-extension settings, by installed name.
    pub extension: BTreeMap<String, ExtensionSandbox>,
    /// What [`Self::force_execution`] set (the `--execution` flag or
    /// `SILT_EXECUTION`): what every process silt starts for this command
    /// must be told too. Never read from a file.
    #[serde(skip)]
    pub forced_execution: Option<Execution>,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        Self {
            execution: Execution::InProcess,
            isolation: Isolation::Auto,
            driver: None,
            memory_limit_mib: None,
            pids_limit: 64,
            pool_size: 2,
            worker_uid: DEFAULT_WORKER_UID,
            container: ContainerConfig::default(),
            extension: BTreeMap::new(),
            forced_execution: None,
        }
    }
}

impl SandboxConfig {
    /// Where `extension`'s calls run.
    pub fn execution_of(&self, extension: &str) -> Execution {
        self.extension
            .get(extension)
            .and_then(|settings| settings.execution)
            .unwrap_or(self.execution)
    }

    /// Runs every extension `execution` (the `--execution` flag).
    pub fn force_execution(&mut self, execution: Execution) {
        self.execution = execution;
        self.forced_execution = Some(execution);
        for settings in self.extension.values_mut() {
            settings.execution = None;
        }
    }

    /// The driver in force.
    pub fn driver(&self) -> Driver {
        self.driver.unwrap_or_else(Driver::platform_default)
    }

    /// The OS memory limit of one worker, in bytes.
    pub fn worker_memory_bytes(&self, runtime_memory_limit_mib: u64) -> u64 {
        self.memory_limit_mib
            .unwrap_or(runtime_memory_limit_mib.saturating_add(WORKER_OVERHEAD_MIB))
            .saturating_mul(1 << 20)
    }
}

/// Memory a worker needs besides its guest's: the runtime, the mapped
/// artifact, buffers.
pub const WORKER_OVERHEAD_MIB: u64 = 256;

/// `[sandbox.container]`
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct ContainerConfig {
    /// `runc` (default), `docker` or `podman`: a name on PATH or a path.
    pub runtime: String,
    /// The image for `docker` and `podman`, built on this machine by
    /// `silt sandbox image build` (runc uses a root built from this
    /// machine's `/usr`). Default `localhost/silt-worker:latest`.
    pub image: String,
}

impl Default for ContainerConfig {
    fn default() -> Self {
        Self {
            runtime: "runc".to_owned(),
            image: crate::container::image::DEFAULT_IMAGE.to_owned(),
        }
    }
}

/// `[sandbox.extension.NAME]`
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct ExtensionSandbox {
    /// Where this extension's calls run.
    pub execution: Option<Execution>,
}
