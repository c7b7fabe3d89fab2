//! The worker process: `silt worker` (hidden), started by the host inside
//! its sandbox. It loads one bundle, then runs the calls the host sends,
//! each in a fresh instance, until the host closes its stdin.
//!
//! It runs before any multi-threaded runtime exists: a current-thread tokio
//! runtime drives wasmtime's async calls, and imports block on the pipe.

use std::sync::Arc;

use super::bundle::open_in_worker;
use super::host_link::HostLink;
use super::protocol::{FromWorker, PROTOCOL_VERSION, ToWorker, WireError, WorkerStart};
use crate::runtime::ExtensionInstance;

/// Runs the worker on this process's stdin and stdout; returns its exit code.
pub fn main() -> u8 {
    // Die with the host (or the sandbox's init, or the container runtime)
    // even when it cannot close our stdin.
    // SAFETY: a plain prctl.
    #[cfg(target_os = "linux")]
    unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0)
    };
    let link = Arc::new(HostLink::new(
        Box::new(std::io::stdin()),
        Box::new(std::io::stdout()),
    ));
    let Some(protocol) = link.receive::<u32>() else {
        return 0;
    };
    if protocol != PROTOCOL_VERSION {
        link.send(&FromWorker::Failed(format!(
            "the host speaks worker protocol {protocol}, this worker {PROTOCOL_VERSION} (SILT_WORKER_BINARY names another silt?)"
        )));
        return 1;
    }
    let Some(start) = link.receive::<WorkerStart>() else {
        return 0;
    };
    init_logging(&start.log_filter);
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .max_blocking_threads(4)
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            link.send(&FromWorker::Failed(format!(
                "cannot start the async runtime: {err}"
            )));
            return 1;
        }
    };
    let loaded = match open_in_worker(
        &start.manifest,
        &start.artifact,
        &start.extension,
        &start.component_sha256,
        &start.runtime,
    ) {
        Ok(loaded) => loaded,
        Err(detail) => {
            link.send(&FromWorker::Failed(detail));
            return 1;
        }
    };
    link.send(&FromWorker::Ready);
    let settings = Arc::new(start.settings);
    while let Some(message) = link.receive::<ToWorker>() {
        let ToWorker::Call(call) = message else {
            link.send(&FromWorker::Failed(
                "expected a call, got an import answer".to_owned(),
            ));
            return 1;
        };
        let outcome = runtime.block_on(async {
            let mut instance = ExtensionInstance::with_capabilities(
                loaded.clone(),
                start.cache_dir.as_deref(),
                link.capabilities(settings.clone()),
            )
            .await?;
            call.invoke(&mut instance).await
        });
        link.send(&FromWorker::Done(
            outcome.map_err(|err| WireError::from_runtime(&err)),
        ));
    }
    0
}

fn init_logging(filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_new(filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_target(false)
        .try_init();
}
