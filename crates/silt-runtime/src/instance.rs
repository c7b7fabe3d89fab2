//! One operation's instance of an extension: a fresh `Store` with its own
//! limits and deadline, and typed calls into the guest's exports.
//!
//! Every call goes through [`ExtensionInstance::finish`], which turns a trap,
//! deadline or memory limit into a [`RuntimeError`] naming the extension and
//! the function, and logs what the guest printed.

use std::sync::Arc;

use wasmtime::{Store, Trap, UpdateDeadline};

use super::engine::EPOCH_TICK;
use super::error::RuntimeError;
use super::host_state::HostState;
use super::loader::LoadedExtension;
use super::versions::Bindings;
use crate::capabilities::{Capabilities, Grants};

/// A live instance for one operation. Drop it when the operation ends.
pub struct ExtensionInstance {
    store: Store<HostState>,
    bindings: Bindings,
    loaded: Arc<LoadedExtension>,
    poisoned: bool,
}

impl ExtensionInstance {
    /// Instantiates `loaded` in a new store granted `grants`.
    ///
    /// # Errors
    /// [`RuntimeError::Instantiate`] when the instance cannot be created.
    pub async fn new(loaded: Arc<LoadedExtension>, grants: Grants) -> Result<Self, RuntimeError> {
        let capabilities = Capabilities::local(&loaded.metadata.name, &grants).map_err(|err| {
            RuntimeError::Instantiate {
                extension: loaded.metadata.name.clone(),
                detail: format!("{err:#}"),
            }
        })?;
        Self::with_capabilities(loaded, grants.cache_dir.as_deref(), capabilities).await
    }

    /// Instantiates `loaded` with `cache_dir` preopened at `/cache` and
    /// every other import handed to `capabilities` (in a worker: ones that
    /// forward to the host).
    ///
    /// # Errors
    /// [`RuntimeError::Instantiate`] when the instance cannot be created.
    pub async fn with_capabilities(
        loaded: Arc<LoadedExtension>,
        cache_dir: Option<&std::path::Path>,
        capabilities: Capabilities,
    ) -> Result<Self, RuntimeError> {
        let engine = loaded.engine.clone();
        let instantiate_error = |detail: String| RuntimeError::Instantiate {
            extension: loaded.metadata.name.clone(),
            detail,
        };
        let state = HostState::new(
            &loaded.metadata.name,
            cache_dir,
            capabilities,
            engine.memory_limit_bytes,
            engine.budget,
        )
        .map_err(|err| instantiate_error(format!("{err:#}")))?;
        let mut store = Store::new(&engine.engine, state);
        store.limiter(|state| &mut state.limiter);
        store.set_epoch_deadline(engine.deadline_ticks);
        let deadline = engine.budget.deadline;
        // The deadline bounds the guest's own time; store time counts only
        // past the store budget (see `CallClock`).
        store.epoch_deadline_callback(move |context| {
            let guest_time = context.data().clock.guest_time();
            if guest_time >= deadline {
                return Err(Trap::Interrupt.into());
            }
            let remaining = deadline - guest_time;
            let ticks = remaining.as_millis() / EPOCH_TICK.as_millis();
            Ok(UpdateDeadline::Continue((ticks as u64).max(1)))
        });
        // Start-up code gets the same deadline and watchdog as a call.
        let clock = store.data().clock.clone();
        clock.start_call();
        let instantiated = tokio::select! {
            biased;
            result = loaded.pre.instantiate_async(&mut store) => Some(result),
            () = clock.expired() => None,
        };
        let Some(instantiated) = instantiated else {
            return Err(RuntimeError::DeadlineExceeded {
                extension: loaded.metadata.name.clone(),
                function: "instantiate",
                deadline_ms: engine.budget.deadline.as_millis() as u64,
                store_budget_ms: spent_store_budget_ms(&clock),
            });
        };
        let bindings = match instantiated {
            Ok(bindings) => bindings,
            Err(err) => {
                // Start-up code can trap or blow limits too: classify it.
                let mut instance_error = None;
                if store.data().limiter.exceeded() || err.downcast_ref::<Trap>().is_some() {
                    let stderr = store.data_mut().drain_output();
                    instance_error = Some(classify(&loaded, &store, "instantiate", err, stderr));
                }
                return Err(instance_error.unwrap_or_else(|| instantiate_error(String::new())));
            }
        };
        Ok(Self {
            store,
            bindings,
            loaded,
            poisoned: false,
        })
    }

    /// The loaded extension this instance runs.
    pub fn loaded(&self) -> &Arc<LoadedExtension> {
        &self.loaded
    }

    /// Calls any export of the world: `call` gets the bindings and the store
    /// and makes one guest call. The typed `call_*` methods (expanded from
    /// the export table in `call.rs`) use this; it gives every call the same deadline and the same
    /// failure classification.
    ///
    /// # Errors
    /// As [`Self::describe`].
    pub async fn call<R>(
        &mut self,
        function: &'static str,
        call: impl AsyncFnOnce(&Bindings, &mut Store<HostState>) -> wasmtime::Result<R>,
    ) -> Result<R, RuntimeError> {
        self.begin()?;
        // Beside the call, its watchdog: a guest waiting in the host (a
        // WASI sleep or poll, a store request past its budget) is beyond
        // the epoch's reach; dropping the call's future cancels the wait.
        let clock = self.store.data().clock.clone();
        let result = tokio::select! {
            biased;
            result = call(&self.bindings, &mut self.store) => Some(result),
            () = clock.expired() => None,
        };
        match result {
            Some(result) => self.finish(function, result),
            None => {
                self.poisoned = true;
                self.store.data_mut().drain_output();
                Err(RuntimeError::DeadlineExceeded {
                    extension: self.loaded.metadata.name.clone(),
                    function,
                    deadline_ms: self.deadline_ms(),
                    store_budget_ms: spent_store_budget_ms(&clock),
                })
            }
        }
    }

    fn deadline_ms(&self) -> u64 {
        self.loaded.engine.budget.deadline.as_millis() as u64
    }

    fn begin(&mut self) -> Result<(), RuntimeError> {
        if self.poisoned {
            return Err(RuntimeError::Poisoned {
                extension: self.loaded.metadata.name.clone(),
            });
        }
        // Each call gets the full deadline, counted from now.
        self.store.data().clock.start_call();
        self.store
            .set_epoch_deadline(self.loaded.engine.deadline_ticks);
        Ok(())
    }

    fn finish<R>(
        &mut self,
        function: &'static str,
        result: wasmtime::Result<R>,
    ) -> Result<R, RuntimeError> {
        let stderr = self.store.data_mut().drain_output();
        result.map_err(|err| {
            self.poisoned = true;
            classify(&self.loaded, &self.store, function, err, stderr)
        })
    }
}

/// The store budget in ms, if the call used it all up.
fn spent_store_budget_ms(clock: &crate::call_clock::CallClock) -> Option<u64> {
    clock
        .store_budget_spent()
        .map(|budget| budget.as_millis() as u64)
}

fn classify(
    loaded: &LoadedExtension,
    store: &Store<HostState>,
    function: &'static str,
    err: wasmtime::Error,
    stderr: String,
) -> RuntimeError {
    let extension = loaded.metadata.name.clone();
    let limiter = &store.data().limiter;
    if limiter.exceeded() {
        return RuntimeError::MemoryLimitExceeded {
            extension,
            function,
            limit_mib: (limiter.limit_bytes() >> 20) as u64,
        };
    }
    match err.downcast_ref::<Trap>() {
        Some(Trap::Interrupt) => RuntimeError::DeadlineExceeded {
            extension,
            function,
            deadline_ms: loaded.engine.budget.deadline.as_millis() as u64,
            store_budget_ms: spent_store_budget_ms(&store.data().clock),
        },
        Some(trap) => {
            // The wasm backtrace (function names when the component has a
            // name section) is the only backtrace a guest can give.
            if let Some(backtrace) = err.downcast_ref::<wasmtime::WasmBacktrace>() {
                tracing::info!(
                    extension,
                    function,
                    "the extension's wasm backtrace:\n{}",
                    super::guest_text_limited(&backtrace.to_string(), 16 << 10)
                );
            }
            RuntimeError::Trap {
                extension,
                function,
                trap: describe_trap(*trap),
                stderr: without_backtrace_hint(&stderr),
            }
        }
        None => RuntimeError::Host {
            extension,
            function,
            detail: format!("{err:#}"),
        },
    }
}

/// What a trap means, in the guest's terms.
fn describe_trap(trap: Trap) -> String {
    match trap {
        // A Rust (or C) guest keeps its stack in linear memory, below its
        // data; running out of it faults on an address out of bounds.
        Trap::MemoryOutOfBounds => format!(
            "{trap} (often a stack overflow: deep recursion exhausts the guest's stack in linear memory)"
        ),
        Trap::StackOverflow => format!("{trap} (stack overflow: recursion too deep)"),
        Trap::UnreachableCodeReached => format!("{trap} (usually a panic; its message is below)"),
        other => other.to_string(),
    }
}

/// The guest's stderr without Rust's "run with `RUST_BACKTRACE=1`" hint,
/// which cannot work (an extension has no environment), and with what does.
fn without_backtrace_hint(stderr: &str) -> String {
    stderr
        .lines()
        .map(|line| {
            if line.contains("RUST_BACKTRACE") {
                "note: extensions run without an environment, so RUST_BACKTRACE cannot reach them; \
                 `silt -v` logs the wasm backtrace"
                    .to_owned()
            } else {
                line.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}
