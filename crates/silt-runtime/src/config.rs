//! The runtime's sections of `silt.toml`: `[runtime]`, the limits every
//! extension call runs under, and `[cache]`, the artifact cache.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// `[runtime]`
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct RuntimeConfig {
    /// Deadline of one extension call, in milliseconds of the call's own
    /// time: running, sleeping, polling — all but waiting on the object
    /// store, which `store_budget_ms` bounds. Default 30000.
    pub deadline_ms: u64,
    /// Wall-clock time one call's object-store requests and bulk transfers
    /// may take without counting against `deadline_ms`, in milliseconds;
    /// past it, store time counts like the rest. Every call ends within
    /// `deadline_ms + store_budget_ms` plus a grace of a tenth of the
    /// deadline (at least 1 s). Default 300000 (5 minutes: hydrating a
    /// large model in one call is legitimately long).
    pub store_budget_ms: u64,
    /// Memory an extension instance may use, in MiB. Default 256.
    pub memory_limit_mib: u64,
    /// Use wasmtime's pooling allocator when the machine can reserve the
    /// address space for it (probed at first use). Default false: most
    /// `silt` processes make a handful of calls, and reserving the pool
    /// (≈ 0.6 ms, and its teardown ≈ 0.2 ms) pays back only after some
    /// fifteen instantiations (≈ 0.04 ms saved each). Worth it for a
    /// long-lived embedder making many calls.
    pub pooling: bool,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        Self {
            deadline_ms: 30_000,
            store_budget_ms: 300_000,
            memory_limit_mib: 256,
            pooling: false,
        }
    }
}

/// `[cache]`
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct CacheConfig {
    /// Directory of compiled artifacts. Default: the user cache directory
    /// (`$XDG_CACHE_HOME/silt` or `~/.cache/silt`). Overridden by `SILT_CACHE_DIR`.
    pub dir: Option<PathBuf>,
    /// Size cap of the artifact cache in MiB; least recently used artifacts
    /// are evicted past it. Default 1024.
    pub max_size_mib: u64,
}

impl Default for CacheConfig {
    fn default() -> Self {
        Self {
            dir: None,
            max_size_mib: 1024,
        }
    }
}
