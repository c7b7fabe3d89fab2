//! The state of one store: what the host grants an extension for one operation.

use std::path::PathBuf;
use std::sync::Arc;

use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use super::call_clock::{CallBudget, CallClock};
use super::guest_output::{GuestOutput, LogBudget, Stream, report_dropped};
use super::limits::MemoryLimiter;
use crate::capabilities::progress::ProgressSink;
use crate::store::ObjectStore;
use crate::worker::protocol::Notification;

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
    pub(crate) cache_dir: Option<Arc<crate::beneath::Beneath>>,
    pub(crate) stdout: GuestOutput,
    /// Lines this instance may still log (output and `log` together).
    pub(crate) log_budget: LogBudget,
    pub(crate) stderr: GuestOutput,
    /// What the current call's deadline counts (shared with its watchdog).
    pub(crate) clock: Arc<CallClock>,
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
    pub fn new(
        extension: &str,
        grants: Grants,
        memory_limit_bytes: usize,
        budget: CallBudget,
    ) -> anyhow::Result<Self> {
        let log_budget = LogBudget::default();
        let stdout = GuestOutput::new(extension, Stream::Stdout, log_budget.clone());
        let stderr = GuestOutput::new(extension, Stream::Stderr, log_budget.clone());
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
            let dir = crate::beneath::Beneath::open(path)
                .map_err(|err| anyhow::anyhow!("cannot open the cache directory: {err}"))?;
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
            log_budget,
            stderr,
            clock: Arc::new(CallClock::new(budget)),
            host_link: None,
        })
    }

    /// Awaits `request` (an object-store request or transfer made for the
    /// guest) as store time: excluded from the guest's deadline up to the
    /// call's store budget (see [`CallClock`]).
    pub(crate) fn in_store<T>(&self, request: impl Future<Output = T>) -> impl Future<Output = T> {
        // Owns its clock: the future must not borrow the (non-`Sync`) state.
        let clock = self.clock.clone();
        async move {
            clock.store_begin();
            let result = request.await;
            clock.store_done();
            result
        }
    }

    /// Logs the guest's unterminated output and returns the tail of its
    /// stderr (for error messages).
    pub(crate) fn drain_output(&mut self) -> String {
        self.stdout.flush_and_tail();
        let tail = self.stderr.flush_and_tail();
        let dropped = self.log_budget.take_dropped();
        match &self.host_link {
            // In a worker: the host reports it, where the user sees it.
            Some(link) if dropped > 0 => link.notify(Notification::LogsDropped { count: dropped }),
            _ => report_dropped(&self.extension, dropped),
        }
        tail
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
