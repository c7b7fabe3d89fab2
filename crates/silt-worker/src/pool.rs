//! The host's side of out-of-process execution: a pool of sandboxed
//! workers for one extension, each serving calls one at a time.
//!
//! The first call builds the bundle (once per process, shared by
//! concurrent first calls; a failed build is retried by the next call) and
//! starts a worker; a worker that answered is kept idle for the next call
//! (up to `[sandbox] pool_size`), one that failed in any way is killed.
//! While a call runs, the host serves the worker's object-store imports
//! with its own store and credentials, and enforces a wall-clock deadline
//! on the worker's own time on top of the worker's epoch deadline: a
//! worker that stops answering is torn down.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use tokio::process::{Child, ChildStdin, ChildStdout};
use tracing::Instrument as _;

use super::bundle::Bundle;
use super::imports::ServedImports;
use super::protocol::{FromWorker, PROTOCOL_VERSION, ToWorker, WorkerStart, receive, send};
use crate::capabilities::Capabilities;
use crate::config::RuntimeConfig;
use crate::runtime::{CallBudget, ExportCall, ExportReply, Grants, Runtime, RuntimeError};
use crate::sandbox::{self, Bind, Launch, SandboxConfig};

/// How long a new worker may take to load its bundle.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// Lines of a worker's log kept for error messages.
const LOG_TAIL_LINES: usize = 20;
/// A worker's log line is cut here.
const LOG_LINE_BYTES: usize = 4096;

/// Where the bundle and the cache directory appear inside a sandbox.
const GUEST_MANIFEST: &str = "/bundle/bundle.json";
const GUEST_ARTIFACT: &str = "/bundle/artifact.cwasm";
const GUEST_CACHE: &str = "/cache";

/// Workers for one extension.
pub struct WorkerPool {
    extension: String,
    component: PathBuf,
    grants: Grants,
    /// What the host serves a worker's imports with: built from `grants`
    /// by the first call, shared by every call after it.
    capabilities: OnceLock<Capabilities>,
    runtime_config: RuntimeConfig,
    sandbox: SandboxConfig,
    sandbox_root: PathBuf,
    /// Held while a bundle is built: one build at a time.
    building: tokio::sync::Mutex<()>,
    /// The bundle last built, readable without waiting for a build.
    built: Mutex<Option<Arc<Bundle>>>,
    idle: Mutex<Vec<Worker>>,
    started: AtomicU64,
    bundles_built: AtomicU64,
}

impl WorkerPool {
    /// A pool for the extension `extension` at `component`, granting every
    /// call `grants` (served by the host) under these limits. Nothing is
    /// built or started until the first call.
    pub fn new(
        extension: &str,
        component: &Path,
        grants: Grants,
        runtime_config: RuntimeConfig,
        sandbox: SandboxConfig,
        cache_dir: &Path,
    ) -> Self {
        Self {
            extension: extension.to_owned(),
            component: component.to_owned(),
            grants,
            capabilities: OnceLock::new(),
            runtime_config,
            sandbox,
            sandbox_root: cache_dir.join("sandbox-root"),
            building: tokio::sync::Mutex::new(()),
            built: Mutex::new(None),
            idle: Mutex::new(Vec::new()),
            started: AtomicU64::new(0),
            bundles_built: AtomicU64::new(0),
        }
    }

    /// The host's own capabilities for this extension's grants (its store,
    /// the cache directory opened beneath, the log and progress sinks).
    pub(crate) fn capabilities(&self) -> Result<Capabilities, RuntimeError> {
        if let Some(capabilities) = self.capabilities.get() {
            return Ok(capabilities.clone());
        }
        let capabilities = Capabilities::local(&self.extension, &self.grants)
            .map_err(|err| self.worker_error(format!("cannot prepare the host's side: {err:#}")))?;
        Ok(self.capabilities.get_or_init(|| capabilities).clone())
    }

    /// Bundles this pool built (once per process unless evicted).
    pub fn bundles_built(&self) -> u64 {
        self.bundles_built.load(Ordering::Relaxed)
    }

    /// Workers started so far (for benchmarks and tests of reuse).
    pub fn workers_started(&self) -> u64 {
        self.started.load(Ordering::Relaxed)
    }

    /// Idle workers kept for the next call (for tests of which worker a
    /// call took).
    pub fn idle_workers(&self) -> usize {
        self.idle.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// Runs `call` in a worker.
    ///
    /// # Errors
    /// As in-process execution, plus [`RuntimeError::Worker`] when the
    /// worker fails and [`RuntimeError::SandboxUnavailable`] under
    /// `isolation = "strict"` on a machine missing a layer.
    pub async fn execute(
        &self,
        runtime: &Runtime,
        call: ExportCall,
    ) -> Result<ExportReply, RuntimeError> {
        let imports = ServedImports::new(self.capabilities()?);
        let worker = match self.take_idle() {
            Some(worker) => worker,
            None => {
                let bundle = self.bundle(runtime).await?;
                self.spawn(&bundle).await?
            }
        };
        self.run_and_keep(worker, call, imports).await
    }

    /// An idle worker, if one is alive.
    pub(crate) fn take_idle(&self) -> Option<Worker> {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        // One killed while idle (by an OOM killer, a user) is dropped here,
        // not found dead in the middle of the next call.
        idle.retain_mut(Worker::is_alive);
        idle.pop()
    }

    /// Runs `call` on `worker`, then keeps it idle if the pool has room.
    pub(crate) async fn run_and_keep(
        &self,
        mut worker: Worker,
        call: ExportCall,
        imports: ServedImports,
    ) -> Result<ExportReply, RuntimeError> {
        // A worker whose call failed is dropped here (killed), never reused.
        let reply = self.call_on(&mut worker, call, imports).await?;
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        if idle.len() < self.sandbox.pool_size {
            idle.push(worker);
        }
        Ok(reply)
    }

    /// Runs `call` on `worker`, serving its imports with `imports`.
    pub(crate) async fn call_on(
        &self,
        worker: &mut Worker,
        call: ExportCall,
        imports: ServedImports,
    ) -> Result<ExportReply, RuntimeError> {
        worker
            .call(call, &self.extension, imports, &self.runtime_config)
            .await
    }

    /// True when idle workers are kept between calls (`pool_size` above 0).
    pub(crate) fn keeps_workers(&self) -> bool {
        self.sandbox.pool_size > 0
    }

    /// The error for a worker that could not be started or kept.
    pub(crate) fn worker_error(&self, detail: String) -> RuntimeError {
        RuntimeError::Worker {
            extension: self.extension.clone(),
            detail,
        }
    }

    /// The bundle a call built, if it is still there; never waits for a
    /// build under way.
    pub(crate) fn built_bundle(&self) -> Option<Arc<Bundle>> {
        let built = self.built.lock().unwrap_or_else(|e| e.into_inner());
        built.as_ref().filter(|bundle| bundle.is_present()).cloned()
    }

    pub(crate) async fn bundle(&self, runtime: &Runtime) -> Result<Arc<Bundle>, RuntimeError> {
        if let Some(bundle) = self.built_bundle() {
            return Ok(bundle);
        }
        let _building = self.building.lock().await;
        // Built by the call that held the lock before us?
        if let Some(bundle) = self.built_bundle() {
            return Ok(bundle);
        }
        let bundle = Arc::new(Bundle::build(runtime, &self.component).await?);
        self.bundles_built.fetch_add(1, Ordering::Relaxed);
        *self.built.lock().unwrap_or_else(|e| e.into_inner()) = Some(bundle.clone());
        Ok(bundle)
    }

    /// Starts a worker: one `worker.spawn` span (which sandbox, and how
    /// long a container runtime takes to start one).
    pub(crate) async fn spawn(&self, bundle: &Bundle) -> Result<Worker, RuntimeError> {
        let span = tracing::info_span!(
            "worker.spawn",
            silt.sandbox.driver = tracing::field::Empty,
            otel.status_code = tracing::field::Empty,
        );
        let worker = self.spawn_in_sandbox(bundle).instrument(span.clone()).await;
        if worker.is_err() {
            span.record("otel.status_code", "ERROR");
        }
        worker
    }

    async fn spawn_in_sandbox(&self, bundle: &Bundle) -> Result<Worker, RuntimeError> {
        let failed = |detail: String| self.worker_error(detail);
        self.started.fetch_add(1, Ordering::Relaxed);
        // Unique in this process across pools: it names the worker's cgroup.
        static SEQUENCE: AtomicU64 = AtomicU64::new(0);
        let sequence = SEQUENCE.fetch_add(1, Ordering::Relaxed);
        let mut writable = Vec::new();
        if let Some(cache_dir) = &self.grants.cache_dir {
            std::fs::create_dir_all(cache_dir)
                .map_err(|err| failed(format!("cannot create {}: {err}", cache_dir.display())))?;
            writable.push(Bind {
                host: cache_dir.clone(),
                guest: GUEST_CACHE.into(),
            });
        }
        let request = sandbox::Request {
            name: format!("worker-{}-{sequence}", std::process::id()),
            read_only: vec![
                Bind {
                    host: bundle.manifest_path.clone(),
                    guest: GUEST_MANIFEST.into(),
                },
                Bind {
                    host: bundle.artifact.clone(),
                    guest: GUEST_ARTIFACT.into(),
                },
            ],
            writable,
            memory_limit_bytes: self
                .sandbox
                .worker_memory_bytes(self.runtime_config.memory_limit_mib),
            pids_limit: self.sandbox.pids_limit,
            root_dir: self.sandbox_root.clone(),
            args: vec!["worker".into()],
        };
        let Launch {
            mut command,
            guest_paths,
            cgroup,
            driver,
            container,
        } = sandbox::prepare(&self.sandbox, &request, &self.extension).map_err(from_sandbox)?;
        tracing::Span::current().record("silt.sandbox.driver", driver.name());
        let view = |bind: &Bind| {
            if guest_paths {
                bind.guest.clone()
            } else {
                bind.host.clone()
            }
        };
        let start = WorkerStart {
            manifest: view(&request.read_only[0]),
            artifact: view(&request.read_only[1]),
            extension: self.extension.clone(),
            component_sha256: bundle.manifest.component_sha256.clone(),
            runtime: self.runtime_config.clone(),
            cache_dir: request.writable.first().map(view),
            settings: (*self.grants.settings).clone(),
            log_filter: tracing::level_filters::LevelFilter::current()
                .to_string()
                .to_lowercase(),
        };
        let mut child = command.spawn().map_err(|err| {
            failed(format!(
                "cannot start the worker ({} driver): {err}",
                driver.name()
            ))
        })?;
        let stdin = child.stdin.take().expect("stdin is piped");
        let stdout = child.stdout.take().expect("stdout is piped");
        let log = Arc::new(Mutex::new(VecDeque::new()));
        if let Some(stderr) = child.stderr.take() {
            tokio::spawn(relay_log(stderr, self.extension.clone(), log.clone()));
        }
        let mut worker = Worker {
            child,
            stdin,
            stdout,
            log,
            cgroup,
            _container: container,
            memory_limit_bytes: request.memory_limit_bytes,
        };
        // The version goes first, alone, so a worker of another version
        // can say so instead of failing to decode what follows.
        let sent = match send(&mut worker.stdin, &PROTOCOL_VERSION).await {
            Ok(()) => send(&mut worker.stdin, &start).await,
            Err(err) => Err(err),
        };
        if sent.is_err() {
            // The sandbox's set-up failed before the worker read anything;
            // its stderr says why.
            return Err(worker.died(&self.extension, "starting").await);
        }
        match tokio::time::timeout(START_TIMEOUT, receive::<FromWorker>(&mut worker.stdout)).await {
            Ok(Ok(Some(FromWorker::Ready))) => {
                tracing::debug!(
                    extension = self.extension,
                    driver = driver.name(),
                    "worker started"
                );
                Ok(worker)
            }
            Ok(Ok(Some(FromWorker::Failed(detail)))) => {
                Err(failed(format!("the worker refused its bundle: {detail}")))
            }
            Ok(Ok(Some(other))) => Err(failed(format!(
                "the worker broke the protocol at start: {other:?}"
            ))),
            Ok(Ok(None) | Err(_)) => Err(worker.died(&self.extension, "starting").await),
            Err(_) => Err(failed(format!(
                "the worker did not start within {} s",
                START_TIMEOUT.as_secs()
            ))),
        }
    }
}

/// One running worker.
pub(crate) struct Worker {
    // kill_on_drop: a worker dropped mid-call (the caller gave up) is killed.
    child: Child,
    stdin: ChildStdin,
    stdout: ChildStdout,
    log: Arc<Mutex<VecDeque<String>>>,
    cgroup: Option<crate::sandbox::cgroup::Group>,
    /// Held for its `Drop`: deletes a runc container after the worker.
    _container: Option<crate::sandbox::container::ContainerGuard>,
    memory_limit_bytes: u64,
}

impl Drop for Worker {
    /// Tears the worker down off the caller's path: its cgroup (and runc
    /// container) can only go once its processes are gone, which takes the
    /// kernel a few milliseconds after the kill.
    fn drop(&mut self) {
        let _ = self.child.start_kill();
        let cgroup = self.cgroup.take();
        let container = self._container.take();
        if cgroup.is_none() && container.is_none() {
            return;
        }
        let teardown = move || drop((cgroup, container));
        match tokio::runtime::Handle::try_current() {
            Ok(handle) => {
                handle.spawn_blocking(teardown);
            }
            Err(_) => teardown(),
        }
    }
}

impl Worker {
    /// False once its process has ended (killed while idle by an OOM
    /// killer or a user).
    pub(crate) fn is_alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    pub(crate) async fn call(
        &mut self,
        call: ExportCall,
        extension: &str,
        imports: ServedImports,
        runtime: &RuntimeConfig,
    ) -> Result<ExportReply, RuntimeError> {
        let function = call.function();
        let failed = |detail: String| RuntimeError::Worker {
            extension: extension.to_owned(),
            detail,
        };
        let budget = CallBudget {
            deadline: Duration::from_millis(runtime.deadline_ms),
            store: Duration::from_millis(runtime.store_budget_ms),
        };
        if send(&mut self.stdin, &ToWorker::Call(Box::new(call)))
            .await
            .is_err()
        {
            return Err(self.died(extension, function).await);
        }
        // The worker enforces the call's budgets itself, by the very clock
        // a call in process has (its forwarded imports count as store
        // time): so one call has one outcome in both modes. The host only
        // tears down a worker that fails to: one silent for longer than the
        // deadline twice and its grace (the fresh instance's start-up code
        // has a deadline of its own, then the call; a worker stuck, or its
        // guest blocked where the worker cannot stop it, is silent longer),
        // or one whose call outlasts that and the store budget.
        let silence = budget.deadline * 2 + crate::runtime::grace(budget.deadline);
        let started = Instant::now();
        let call_bound = silence + budget.store;
        // The longest the next wait may be, and whether it is the call's
        // bound (rather than the silence) that ends it.
        let next_wait = |cap: Duration| {
            let left = call_bound.saturating_sub(started.elapsed());
            (cap.min(left), left <= cap)
        };
        loop {
            let (wait, at_bound) = next_wait(silence);
            let message = tokio::time::timeout(wait, receive::<FromWorker>(&mut self.stdout)).await;
            match message {
                Err(_) => return Err(self.overran(extension, function, runtime, at_bound).await),
                Ok(Ok(Some(FromWorker::Import(import)))) => {
                    let (wait, _) = next_wait(call_bound);
                    let Ok(reply) = tokio::time::timeout(wait, imports.serve(import)).await else {
                        return Err(self.overran(extension, function, runtime, true).await);
                    };
                    // A worker that stops reading its answer must not hold
                    // the host past the call's time either.
                    let (wait, at_bound) = next_wait(silence);
                    let sent =
                        tokio::time::timeout(wait, send(&mut self.stdin, &ToWorker::Import(reply)))
                            .await;
                    match sent {
                        Err(_) => {
                            return Err(self.overran(extension, function, runtime, at_bound).await);
                        }
                        Ok(Err(_)) => return Err(self.died(extension, function).await),
                        Ok(Ok(())) => {}
                    }
                }
                Ok(Ok(Some(FromWorker::Notify(notification)))) => {
                    imports.notify(notification);
                }
                Ok(Ok(Some(FromWorker::Done(result)))) => {
                    return result.map_err(|err| err.into_runtime(extension, function));
                }
                Ok(Ok(Some(other))) => {
                    return Err(failed(format!(
                        "the worker broke the protocol in `{function}`: {}",
                        crate::runtime::guest_text(&format!("{other:?}"))
                    )));
                }
                Ok(Ok(None) | Err(_)) => return Err(self.died(extension, function).await),
            }
        }
    }

    /// Tears down a worker that overran its call's time: silent past the
    /// deadline's grace, or (`at_bound`) past the call's whole bound, its
    /// store budget spent.
    async fn overran(
        &mut self,
        extension: &str,
        function: &'static str,
        runtime: &RuntimeConfig,
        at_bound: bool,
    ) -> RuntimeError {
        let _ = self.child.start_kill();
        let _ = self.child.wait().await;
        tracing::warn!(extension, function, "worker overran its call; torn down");
        RuntimeError::DeadlineExceeded {
            extension: extension.to_owned(),
            function,
            deadline_ms: runtime.deadline_ms,
            store_budget_ms: (at_bound && runtime.store_budget_ms > 0)
                .then_some(runtime.store_budget_ms),
        }
    }

    /// The error for a worker that went away: killed for memory, killed by
    /// a signal, or exited, with the end of its log.
    async fn died(&mut self, extension: &str, function: &'static str) -> RuntimeError {
        let status = match tokio::time::timeout(Duration::from_secs(5), self.child.wait()).await {
            Ok(Ok(status)) => Some(status),
            _ => {
                let _ = self.child.start_kill();
                None
            }
        };
        // The relay task may still be reading the last lines.
        tokio::time::sleep(Duration::from_millis(20)).await;
        if self.cgroup.as_ref().is_some_and(|group| group.oom_killed()) {
            return RuntimeError::WorkerMemoryLimitExceeded {
                extension: extension.to_owned(),
                function,
                limit_mib: self.memory_limit_bytes >> 20,
            };
        }
        let tail: Vec<String> = self
            .log
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .cloned()
            .collect();
        let status = status.map_or_else(|| "did not exit".to_owned(), describe);
        let log = if tail.is_empty() {
            String::new()
        } else {
            format!("; its log ended with:\n{}", tail.join("\n"))
        };
        RuntimeError::Worker {
            extension: extension.to_owned(),
            detail: format!("it {status} during `{function}`{log}"),
        }
    }
}

fn describe(status: std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt as _;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exited with status {code}"),
        (None, Some(signal)) => format!("was killed by signal {signal}"),
        (None, None) => "ended".to_owned(),
    }
}

/// Re-logs the worker's stderr and keeps its last lines. Lines are cut at
/// [`LOG_LINE_BYTES`] and decoded lossily, and reading never stops early: a
/// worker must not be able to grow the host's memory, or block on a full
/// pipe, by what it prints.
async fn relay_log(
    stderr: tokio::process::ChildStderr,
    extension: String,
    tail: Arc<Mutex<VecDeque<String>>>,
) {
    use tokio::io::AsyncReadExt as _;
    let mut stderr = tokio::io::BufReader::new(stderr);
    let mut line = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let read = match stderr.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(read) => read,
        };
        for &byte in &chunk[..read] {
            if byte == b'\n' {
                // What a worker prints is guest text once the guest escaped.
                let text = crate::runtime::guest_text(&String::from_utf8_lossy(&line));
                line.clear();
                tracing::debug!(target: "silt::worker", extension, "{text}");
                let mut tail = tail.lock().unwrap_or_else(|e| e.into_inner());
                if tail.len() == LOG_TAIL_LINES {
                    tail.pop_front();
                }
                tail.push_back(text);
            } else if line.len() < LOG_LINE_BYTES {
                line.push(byte);
            }
        }
    }
}

/// The runtime's error for a sandbox that could not start a worker.
fn from_sandbox(err: sandbox::SandboxError) -> RuntimeError {
    use sandbox::SandboxError;
    match err {
        SandboxError::Unavailable { extension, detail } => {
            RuntimeError::SandboxUnavailable { extension, detail }
        }
        SandboxError::Worker { extension, detail } => RuntimeError::Worker { extension, detail },
        // A failure newer than this mapping: the worker did not start.
        other => RuntimeError::Worker {
            extension: String::new(),
            detail: other.to_string(),
        },
    }
}
