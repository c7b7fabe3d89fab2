//! The state of one store: what the host grants an extension for one operation.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use super::guest_output::{GuestOutput, Stream};
use super::limits::MemoryLimiter;
use crate::capabilities::progress::ProgressSink;
use crate::store::ObjectStore;

/// The guest path where the cache directory is preopened.
pub const CACHE_GUEST_PATH: &str = "/cache";

/// What the host lends an extension for one operation.
#[derive(Clone, Default)]
pub struct Grants {
    /// The object store scoped to the datastore root; none for calls such as
    /// `describe` that must not touch a store.
    pub store: Option<Arc<dyn ObjectStore>>,
    /// The extension's cache directory, preopened read-write at `/cache`.
    pub cache_dir: Option<PathBuf>,
    /// Where progress goes.
    pub progress: Option<Arc<dyn ProgressSink>>,
    /// Concurrency of bulk transfers (default 32).
    pub transfer_concurrency: Option<usize>,
}

/// The `T` of every `Store<T>` running an extension.
pub struct HostState {
    pub(crate) extension: String,
    pub(crate) wasi: WasiCtx,
    pub(crate) table: ResourceTable,
    pub(crate) limiter: MemoryLimiter,
    pub(crate) grants: Grants,
    pub(crate) cache_dir: Option<Arc<cap_std::fs::Dir>>,
    pub(crate) stdout: GuestOutput,
    pub(crate) stderr: GuestOutput,
    /// When the current call (or instantiation) started.
    call_started: Instant,
    /// Time the current call spent waiting on the object store (not the guest's time).
    store_time: Duration,
    /// In an out-of-process worker: the link to the host, which runs the
    /// object-store, log and progress imports (the worker holds no store).
    pub(crate) host_link: Option<Arc<crate::worker::HostLink>>,
}

impl HostState {
    /// Builds the state for one operation: an empty environment, no
    /// arguments, no stdin, no network; stdout/stderr captured for the log;
    /// the cache directory (if granted) preopened at `/cache`.
    ///
    /// # Errors
    /// When the cache directory cannot be opened.
    pub fn new(extension: &str, grants: Grants, memory_limit_bytes: usize) -> anyhow::Result<Self> {
        let stdout = GuestOutput::new(extension, Stream::Stdout);
        let stderr = GuestOutput::new(extension, Stream::Stderr);
        let mut builder = wasmtime_wasi::WasiCtxBuilder::new();
        builder
            .stdout(stdout.clone())
            .stderr(stderr.clone())
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false);
        let mut cache_dir = None;
        if let Some(path) = &grants.cache_dir {
            std::fs::create_dir_all(path).map_err(|err| {
                anyhow::anyhow!("cannot create cache directory {}: {err}", path.display())
            })?;
            builder
                .preopened_dir(path, CACHE_GUEST_PATH, wasmtime_wasi::FsPerms::ReadWrite)
                .map_err(|err| {
                    anyhow::anyhow!("cannot open cache directory {}: {err}", path.display())
                })?;
            let dir = cap_std::fs::Dir::open_ambient_dir(path, cap_std::ambient_authority())
                .map_err(|err| {
                    anyhow::anyhow!("cannot open cache directory {}: {err}", path.display())
                })?;
            cache_dir = Some(Arc::new(dir));
        }
        Ok(Self {
            extension: extension.to_owned(),
            wasi: builder.build(),
            table: ResourceTable::new(),
            limiter: MemoryLimiter::new(memory_limit_bytes),
            grants,
            cache_dir,
            stdout,
            stderr,
            call_started: Instant::now(),
            store_time: Duration::ZERO,
            host_link: None,
        })
    }

    /// Starts timing a new call.
    pub(crate) fn start_call(&mut self) {
        self.call_started = Instant::now();
        self.store_time = Duration::ZERO;
    }

    /// Counts `elapsed` as spent in the object store for the guest.
    pub(crate) fn add_store_time(&mut self, elapsed: Duration) {
        self.store_time += elapsed;
    }

    /// The current call's own time: wall time minus time in the object store.
    pub(crate) fn guest_time(&self) -> Duration {
        self.call_started.elapsed().saturating_sub(self.store_time)
    }

    /// Logs the guest's unterminated output and returns the tail of its
    /// stderr (for error messages).
    pub(crate) fn drain_output(&mut self) -> String {
        self.stdout.flush_and_tail();
        self.stderr.flush_and_tail()
    }
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}
