//! The host side of each WIT import: what an extension can ask the host for.
//!
//! - [`object_store`]: the `object-store` import, scoped to the datastore root;
//! - [`transfer`]: its bulk `download`/`upload`, streamed by the host between
//!   the store and the cache directory;
//! - [`log`] and [`progress`].

pub mod log;
pub mod object_store;
pub mod progress;
pub mod transfer;

use crate::runtime::HostState;
use crate::runtime::bindings::silt::datastore::types;

impl types::Host for HostState {}
