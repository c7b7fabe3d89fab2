//! Out-of-process execution: extensions run in a separate, sandboxed
//! worker process instead of inside silt.
//!
//! - [`bundle`]: what a worker runs (the cached artifact and its manifest),
//!   built lazily by the first out-of-process execution;
//! - [`pool`]: the host's side: starts workers through [`silt_sandbox`],
//!   sends them calls, serves their imports, reuses idle ones;
//! - [`reserved`]: workers set aside for a lease set's renewals, so that
//!   a renewal never waits for a worker to start;
//! - [`serve`]: the worker's side, `silt worker`;
//! - [`protocol`]: the messages between them; [`host_link`] and
//!   [`imports`]: the two ends of a forwarded import.
//!
//! The worker holds no store, no credentials and no network: every
//! object-store, log and progress call of the guest is forwarded to the
//! host, which runs it with the same code as in-process execution.

// Short paths for the crates below.
use silt_runtime::{self as runtime, capabilities, config};
use silt_sandbox as sandbox;

pub mod bundle;
pub mod host_link;
pub(crate) mod imports;
pub mod pool;
pub mod protocol;
pub mod reserved;
pub mod serve;

pub use bundle::{Bundle, BundleManifest};
pub use host_link::HostLink;
pub use pool::WorkerPool;
pub use reserved::ReservedWorkers;
