//! silt: a host for datastore extensions shipped as sandboxed WebAssembly
//! components.
//!
//! Many machines share one datastore in S3 or a shared directory; the local
//! copy is a cache. Extensions decide the datastore's layout, index and lock
//! protocol; the host runs them in a sandbox, lends them a scoped object
//! store and a cache directory, and moves the bulk data itself.
//!
//! - [`runtime`] (the `silt-runtime` crate): discovery, validation, lazy
//!   compilation, artifact cache, execution; [`capabilities`]: the host
//!   side of the WIT imports;
//! - [`store`] (the `silt-store` crate): the object-store trait and backends;
//! - [`contract`]: the datastore contract suite (`silt extension test`);
//! - [`config`] and [`locations`]: `silt.toml` and where things live;
//!   [`supply_chain`]: the extensions a project requires and `silt.lock`;
//! - [`worker`] (the `silt-worker` crate) and [`sandbox`] (`silt-sandbox`):
//!   out-of-process execution in an OS sandbox; [`beneath`] (the `silt-beneath` crate):
//!   files beneath the working copy, never through a link;
//! - [`ops`]: the work of every command, returning typed reports;
//!   [`cli`]: the `silt` command (arguments in, reports rendered);
//!   [`exit`]: its exit codes.

pub use silt_beneath as beneath;
pub use silt_process as process;
pub use silt_runtime as runtime;
pub use silt_runtime::capabilities;
pub use silt_sandbox as sandbox;
pub use silt_store as store;
pub use silt_worker as worker;

pub mod cli;
pub mod config;
pub mod contract;
pub mod datastore;
pub mod exit;
pub mod locations;
pub mod ops;
pub mod supply_chain;
pub mod text;
