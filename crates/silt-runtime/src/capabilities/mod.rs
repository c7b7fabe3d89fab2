//! The host side of each WIT import: what an extension can ask the host for.
//!
//! Every capability is an implementation of one interface behind a small
//! trait, and knows nothing of how the guest reaches it: the runtime's
//! `Host` impls (on [`HostState`]) only hand each import to the
//! [`Capabilities`] of the operation. In process those are this module's
//! own implementations; a worker links forwarding implementations of the
//! same traits, which send each call to its host, where these run.
//!
//! - [`store_imports`]: the `object-store` interface declared once
//!   ([`StoreImports`], its calls as values, the guest-facing `Host` impl);
//! - [`object_store`]: [`LocalStore`], its implementation on the granted
//!   store; [`transfer`]: its bulk `download`/`upload`, streamed by the host
//!   between the store and the cache directory; [`delivery`]: `deliver`,
//!   a `get-file` landed where the operation asked; [`sending`]: a staged
//!   `put`'s file answered with the hash the host took while staging it;
//! - [`log`] ([`LogSink`]) and [`progress`] ([`ProgressSink`]): sinks;
//! - [`config`]: the project's [`Settings`] for the extension, plain data
//!   (a worker gets them with its start, not over the pipe);
//! - [`wasi`]: the WASI interfaces granted, linked one by one, and the
//!   filesystem's link calls refused.

pub mod config;
pub mod delivery;
mod guest_view;
mod in_flight;
mod landing;
mod landing_thread;
pub mod log;
pub mod object_store;
pub mod progress;
pub mod sending;
pub mod store_imports;
pub mod transfer;
pub mod wasi;

use std::path::PathBuf;
use std::sync::Arc;

pub use config::Settings;
pub use landing_thread::wait_settled as wait_for_landings;
pub use log::{LogSink, TracingLog};
pub use object_store::LocalStore;
pub use progress::ProgressSink;
pub use store_imports::{StoreCall, StoreImports, StoreReply};

use crate::HostState;
use crate::bindings::silt::datastore::types;
use crate::store::ObjectStore;

impl types::Host for HostState {}

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
    /// Concurrency of bulk transfers (default [`transfer::DEFAULT_CONCURRENCY`]).
    pub transfer_concurrency: Option<usize>,
    /// The project's settings for the extension (the `config` import).
    pub settings: Arc<Settings>,
    /// The deliveries the operation names (`object-store.deliver`).
    pub deliveries: Arc<delivery::Deliveries>,
    /// The sendings the operation names (`object-store.upload-hashed` of a
    /// staged put answers the hash taken while staging; of a file given,
    /// sends that file).
    pub sendings: Arc<sending::Sendings>,
}

/// The implementations one operation's imports reach.
#[derive(Clone)]
pub struct Capabilities {
    /// The `object-store` interface.
    pub store: Arc<dyn StoreImports>,
    /// Where the guest's `log` calls and its dropped-line count go.
    pub log: Arc<dyn LogSink>,
    /// Where the guest's `progress` calls go; none: nowhere.
    pub progress: Option<Arc<dyn ProgressSink>>,
    /// What the guest's `config` calls answer.
    pub settings: Arc<Settings>,
}

impl Capabilities {
    /// This process's own implementations of what `grants` lends
    /// `extension`: the store and cache directory, the log as `tracing`
    /// events, progress to the granted sink.
    ///
    /// # Errors
    /// When the cache directory cannot be created or opened.
    pub fn local(extension: &str, grants: &Grants) -> anyhow::Result<Self> {
        Ok(Self {
            store: Arc::new(LocalStore::new(grants)?),
            log: Arc::new(TracingLog::new(extension)),
            progress: grants.progress.clone(),
            settings: grants.settings.clone(),
        })
    }
}
