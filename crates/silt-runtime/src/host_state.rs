//! The state of one store: what the host grants an extension for one operation.

use std::path::Path;
use std::sync::Arc;

use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use super::call_clock::{CallBudget, CallClock};
use super::guest_output::{GuestOutput, LogBudget, Stream};
use super::limits::MemoryLimiter;
use crate::capabilities::Capabilities;

/// The guest path where the cache directory is preopened.
pub const CACHE_GUEST_PATH: &str = "/cache";

/// The `T` of every `Store<T>` running an extension.
pub struct HostState {
    pub(crate) wasi: WasiCtx,
    pub(crate) table: ResourceTable,
    pub(crate) limiter: MemoryLimiter,
    /// What the guest's object-store, log and progress imports reach.
    pub(crate) capabilities: Capabilities,
    pub(crate) stdout: GuestOutput,
    /// Lines this instance may still log (output and `log` together).
    pub(crate) log_budget: LogBudget,
    pub(crate) stderr: GuestOutput,
    /// What the current call's deadline counts (shared with its watchdog).
    pub(crate) clock: Arc<CallClock>,
}

impl HostState {
    /// Builds the state for one operation: an empty environment, no
    /// arguments, no stdin, no network; stdout/stderr captured for the log;
    /// `cache_dir` (if any, and existing) preopened at `/cache`; every
    /// other import handed to `capabilities`.
    ///
    /// # Errors
    /// When the cache directory cannot be opened.
    pub fn new(
        extension: &str,
        cache_dir: Option<&Path>,
        capabilities: Capabilities,
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
        // The directory exists: `Capabilities::local` made it (or, in a
        // worker, the sandbox mounted it).
        if let Some(path) = cache_dir {
            builder
                .preopened_dir(path, CACHE_GUEST_PATH, wasmtime_wasi::FsPerms::ReadWrite)
                .map_err(|err| {
                    anyhow::anyhow!("cannot open cache directory {}: {err}", path.display())
                })?;
        }
        Ok(Self {
            wasi: builder.build(),
            table: ResourceTable::new(),
            limiter: MemoryLimiter::new(memory_limit_bytes),
            capabilities,
            stdout,
            log_budget,
            stderr,
            clock: Arc::new(CallClock::new(budget)),
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
        if dropped > 0 {
            self.capabilities.log.dropped(dropped);
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
