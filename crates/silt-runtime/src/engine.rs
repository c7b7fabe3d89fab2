//! The one wasmtime `Engine` of a process: its configuration, the pooling
//! allocator probe, the epoch ticker that enforces call deadlines, and the
//! compatibility hash that keys the artifact cache.
//!
//! Built lazily, on the first execution: listing and inspecting extensions
//! never create an engine.

use std::hash::Hasher;
use std::sync::Arc;
use std::time::Duration;

use sha2::{Digest, Sha256};
use wasmtime::component::Linker;
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use super::bindings::DatastoreExtension;
use super::call_clock::CallBudget;
use super::host_state::HostState;
use super::inspect::hex;
use crate::config::RuntimeConfig;

/// The wasmtime version silt is built against (pinned in Cargo.toml).
pub const WASMTIME_VERSION: &str = "48.0.8";

/// How often the epoch advances; deadlines are multiples of it.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Instances the pooling allocator reserves room for. Each silt operation
/// uses one component instance (a few core instances) at a time, so this
/// bounds concurrent operations in one process, not their total.
const POOL_COMPONENT_INSTANCES: u32 = 64;
const POOL_CORE_INSTANCES: u32 = 512;
const POOL_MEMORIES: u32 = 128;
const POOL_TABLES: u32 = 256;

/// The process's engine and everything built once with it.
pub struct EngineHandle {
    /// The engine.
    pub engine: Engine,
    /// The linker with every import the host grants.
    pub linker: Linker<HostState>,
    /// Hex sha256 of wasmtime's version and the engine's compatibility hash:
    /// an artifact compiled under another value must never be loaded.
    pub compat_hash: String,
    /// Whether the pooling allocator is in use (else on-demand).
    pub pooling: bool,
    /// Per-call deadline, in epoch ticks.
    pub deadline_ticks: u64,
    /// Per-call deadline and store budget.
    pub budget: CallBudget,
    /// Per-store memory limit.
    pub memory_limit_bytes: usize,
}

impl EngineHandle {
    /// Builds the engine, probing the pooling allocator when enabled and
    /// falling back to on-demand allocation (with a warning) when the
    /// machine cannot reserve its address space.
    ///
    /// # Errors
    /// When no engine can be built at all, or the linker cannot be set up.
    pub fn new(config: &RuntimeConfig) -> anyhow::Result<Arc<Self>> {
        let memory_limit_bytes = usize::try_from(config.memory_limit_mib)
            .ok()
            .and_then(|mib| mib.checked_mul(1 << 20))
            .ok_or_else(|| anyhow::anyhow!("runtime.memory_limit_mib is too large"))?;

        let mut pooling = false;
        let engine = if config.pooling {
            match Engine::new(&pooled_config(memory_limit_bytes)) {
                Ok(engine) => {
                    pooling = true;
                    engine
                }
                Err(err) => {
                    tracing::warn!(
                        "pooling allocator unavailable ({err:#}); using on-demand allocation (slower instantiation)"
                    );
                    Engine::new(&base_config())?
                }
            }
        } else {
            Engine::new(&base_config())?
        };

        let compat_hash = compatibility_hash(&engine);
        let mut linker = Linker::new(&engine);
        crate::capabilities::wasi::link(&mut linker)?;
        DatastoreExtension::add_to_linker::<_, wasmtime::component::HasSelf<_>>(
            &mut linker,
            |state| state,
        )?;
        // The previous contract's imports, under their own names (`@0.6.0`).
        crate::since_v0_6::DatastoreExtension::add_to_linker::<_, wasmtime::component::HasSelf<_>>(
            &mut linker,
            |state| state,
        )?;

        start_epoch_ticker(&engine);
        let deadline_ticks = (config.deadline_ms / EPOCH_TICK.as_millis() as u64).max(1);
        Ok(Arc::new(Self {
            engine,
            linker,
            compat_hash,
            pooling,
            deadline_ticks,
            budget: CallBudget {
                deadline: Duration::from_millis(config.deadline_ms),
                store: Duration::from_millis(config.store_budget_ms),
            },
            memory_limit_bytes,
        }))
    }
}

/// Settings every engine shares. Changing any of these changes the
/// compatibility hash and so invalidates cached artifacts, as it must.
fn base_config() -> Config {
    let mut config = Config::new();
    config.wasm_component_model(true);
    config.epoch_interruption(true);
    config.parallel_compilation(true);
    config.cranelift_opt_level(wasmtime::OptLevel::Speed);
    config
}

fn pooled_config(memory_limit_bytes: usize) -> Config {
    let mut pool = PoolingAllocationConfig::default();
    pool.total_component_instances(POOL_COMPONENT_INSTANCES)
        .total_core_instances(POOL_CORE_INSTANCES)
        .total_memories(POOL_MEMORIES)
        .total_tables(POOL_TABLES)
        .total_stacks(POOL_COMPONENT_INSTANCES)
        .max_memory_size(memory_limit_bytes);
    let mut config = base_config();
    config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    config
}

/// Advances the engine's epoch every [`EPOCH_TICK`] for the life of the
/// process, so a store's epoch deadline is a wall-clock deadline.
fn start_epoch_ticker(engine: &Engine) {
    let weak = engine.weak();
    std::thread::Builder::new()
        .name("silt-epoch".to_owned())
        .spawn(move || {
            while let Some(engine) = weak.upgrade() {
                engine.increment_epoch();
                drop(engine);
                std::thread::sleep(EPOCH_TICK);
            }
        })
        .expect("cannot spawn the epoch ticker thread");
}

/// A stable digest of what makes compiled code loadable by this engine.
fn compatibility_hash(engine: &Engine) -> String {
    let mut hasher = Sha256Hasher(Sha256::new());
    std::hash::Hash::hash(&engine.precompile_compatibility_hash(), &mut hasher);
    let mut digest = hasher.0;
    digest.update(WASMTIME_VERSION.as_bytes());
    hex(&digest.finalize())
}

/// Feeds `Hash` output into sha256, which is stable across Rust releases
/// (unlike `DefaultHasher`).
struct Sha256Hasher(Sha256);

impl Hasher for Sha256Hasher {
    fn finish(&self) -> u64 {
        unreachable!("only the sha256 state is used")
    }

    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn pinned_version_matches_the_workspace() {
        let manifest = include_str!("../../../Cargo.toml");
        let pin = format!("wasmtime = {{ version = \"={}\"", super::WASMTIME_VERSION);
        assert!(
            manifest.contains(&pin),
            "update WASMTIME_VERSION to match Cargo.toml"
        );
    }
}
