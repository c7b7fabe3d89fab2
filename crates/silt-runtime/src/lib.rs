//! The extension runtime: discovery without compiling, validation from the
//! binary, lazy single-flight compilation with an on-disk artifact cache,
//! and sandboxed execution with a deadline and a memory limit per call.
//!
//! The life of a call:
//! 1. [`Catalog`] finds the installed extension by reading its manifest.
//! 2. [`Runtime::load`] hashes and validates the component, then compiles it
//!    (or maps its cached artifact) once per process, shared by concurrent
//!    callers.
//! 3. [`Runtime::instantiate`] creates a fresh store for one operation,
//!    granting only what [`Grants`] lists.
//! 4. [`ExtensionInstance`] calls the guest and classifies any failure.
//!
//! The guest's imports reach the [`capabilities`] of the operation; the
//! crate knows nothing of where its caller runs (in process or in a worker)
//! and depends only on the store ([`silt_store`]) and on beneath-root file
//! access ([`silt_beneath`]).

// Short paths for the crates below, as `silt` re-exports them.
use silt_beneath as beneath;
use silt_store as store;

mod artifacts;
pub mod bindings;
pub mod call;
mod call_clock;
pub mod capabilities;
mod catalog;
pub mod config;
mod engine;
mod error;
mod fingerprint;
mod guest_output;
mod guest_text;
mod host_state;
mod inspect;
mod instance;
mod limits;
mod loader;
pub mod metadata;
pub mod since_v0_6;
mod single_flight;
pub mod test_runner;
mod versions;

use std::path::Path;
use std::sync::Arc;

use tracing::Instrument as _;

pub use artifacts::{
    ArtifactCache, CacheEntry, PruneReport, bundle_manifest_path, bundle_manifests,
    make_worker_readable, write_readable,
};
pub use call::{Answer, ExportCall, ExportReply, Exports};
pub use call_clock::{CallBudget, CallClock, grace};
pub use capabilities::Grants;
pub use catalog::{
    COMPONENT_FILE, Catalog, CatalogError, ComponentRecord, Installed, Listed, MANIFEST_FILE,
    Manifest, Source,
};
pub use config::{CacheConfig, RuntimeConfig};
pub use engine::{EngineHandle, WASMTIME_VERSION};
pub use error::RuntimeError;
pub use guest_output::{LogBudget, MAX_LOG_LINES, loggable, report_dropped};
pub use guest_text::{MAX_GUEST_TEXT, guest_lines, guest_text, guest_text_limited, needs_escape};
pub use host_state::{CACHE_GUEST_PATH, HostState};
pub use inspect::{ComponentInfo, InvalidExtension, REQUIRED_EXPORTS, hex, sha256_hex};
pub use instance::ExtensionInstance;
pub use loader::{LoadedExtension, Origin};
pub use metadata::Metadata;

use single_flight::SingleFlight;

/// Loads and runs extensions. One per process; cheap to create (nothing is
/// compiled or even set up until the first execution).
pub struct Runtime {
    config: RuntimeConfig,
    cache: ArtifactCache,
    engine: tokio::sync::OnceCell<Arc<EngineHandle>>,
    loaded: SingleFlight<String, Arc<LoadedExtension>>,
}

impl Runtime {
    /// A runtime with these limits and this artifact cache.
    pub fn new(config: RuntimeConfig, cache: ArtifactCache) -> Self {
        Self {
            config,
            cache,
            engine: tokio::sync::OnceCell::new(),
            loaded: SingleFlight::default(),
        }
    }

    /// The limits every call runs under.
    pub fn config(&self) -> &RuntimeConfig {
        &self.config
    }

    /// The artifact cache.
    pub fn cache(&self) -> &ArtifactCache {
        &self.cache
    }

    /// The engine, built on first use.
    ///
    /// # Errors
    /// [`RuntimeError::Engine`] when no engine can be created.
    pub async fn engine(&self) -> Result<Arc<EngineHandle>, RuntimeError> {
        self.engine
            .get_or_try_init(|| async {
                EngineHandle::new(&self.config).map_err(|err| RuntimeError::Engine {
                    detail: format!("{err:#}"),
                })
            })
            .await
            .cloned()
    }

    /// Loads the component at `path`: validates it, then compiles it or maps
    /// its cached artifact. Once per component per process; concurrent
    /// callers share one load, and a failed load is retried by the next call.
    ///
    /// A call reads, hashes and parses the whole file so that what runs is
    /// what was checked — unless the file is, by its identity on disk, the
    /// one already checked and its artifact is cached (see `fingerprint`).
    /// Keep the returned `Arc` for the life of the process rather than
    /// calling this per operation; per operation, call
    /// [`Runtime::instantiate`].
    ///
    /// # Errors
    /// [`RuntimeError::Invalid`] when the file is not a valid extension,
    /// [`RuntimeError::Compile`] when wasmtime refuses it.
    pub async fn load(&self, path: &Path) -> Result<Arc<LoadedExtension>, RuntimeError> {
        self.load_trusting_memo(path, true).await
    }

    /// [`Runtime::load`], reading, hashing and validating the file whatever
    /// its fingerprint memo says: for `silt extension verify`, which vouches
    /// for the bytes on disk now.
    ///
    /// # Errors
    /// As [`Runtime::load`].
    pub async fn load_revalidated(
        &self,
        path: &Path,
    ) -> Result<Arc<LoadedExtension>, RuntimeError> {
        self.load_trusting_memo(path, false).await
    }

    /// One `extension.load` span: whether the artifact was cached or
    /// compiled now.
    async fn load_trusting_memo(
        &self,
        path: &Path,
        trust_memo: bool,
    ) -> Result<Arc<LoadedExtension>, RuntimeError> {
        let span = tracing::info_span!(
            "extension.load",
            silt.extension = tracing::field::Empty,
            silt.artifact = tracing::field::Empty,
            otel.status_code = tracing::field::Empty,
        );
        let result = self
            .load_validated(path, trust_memo)
            .instrument(span.clone())
            .await;
        match &result {
            Ok(loaded) => {
                span.record("silt.extension", loaded.metadata.name.as_str());
                span.record(
                    "silt.artifact",
                    match loaded.origin {
                        loader::Origin::Cached { .. } => "cached",
                        loader::Origin::Compiled { .. } => "compiled",
                    },
                );
            }
            Err(_) => {
                span.record("otel.status_code", "ERROR");
            }
        }
        result
    }

    async fn load_validated(
        &self,
        path: &Path,
        trust_memo: bool,
    ) -> Result<Arc<LoadedExtension>, RuntimeError> {
        // The file's identity before reading it: a memo is written only if
        // it still holds after (see `fingerprint`).
        let identity = fingerprint::Identity::of(path);
        if trust_memo
            && let Some(identity) = identity
            && let Some(validated) = fingerprint::recall(self.cache.dir(), path, identity)
            && let Some(loaded) = self.load_cached(validated).await?
        {
            return Ok(loaded);
        }
        let bytes = tokio::fs::read(path)
            .await
            .map_err(|cause| InvalidExtension::Read {
                path: path.to_owned(),
                cause,
            })?;
        // Validate every time, from the bytes we are about to run: the file
        // may have changed since it was installed.
        let info = ComponentInfo::parse(&bytes, path)?;
        let metadata = info.validate(path)?.clone();
        let sha256 = info.sha256;
        if let Some(identity) = identity {
            let validated = fingerprint::Validated {
                sha256: sha256.clone(),
                metadata: metadata.clone(),
            };
            fingerprint::remember(self.cache.dir(), path, identity, &validated);
        }
        let engine = self.engine().await?;
        self.loaded
            .get_or_try_init(&sha256.clone(), || async move {
                let cache = self.cache.clone();
                let loaded = tokio::task::spawn_blocking(move || {
                    loader::compile_or_load(&engine, &cache, metadata, &sha256, &bytes)
                })
                .await
                .map_err(|err| RuntimeError::Engine {
                    detail: format!("compilation task failed: {err}"),
                })??;
                Ok(Arc::new(loaded))
            })
            .await
    }

    /// The component a memo vouches for, from its cached artifact; `None`
    /// when the artifact is not cached (the caller reads and compiles).
    async fn load_cached(
        &self,
        validated: fingerprint::Validated,
    ) -> Result<Option<Arc<LoadedExtension>>, RuntimeError> {
        let engine = self.engine().await?;
        let sha256 = validated.sha256.clone();
        let loaded = self
            .loaded
            .get_or_try_init(&sha256, || async move {
                loader::load_cached(&engine, &self.cache, validated.metadata, &validated.sha256)
                    .map(Arc::new)
                    .ok_or(RuntimeError::Engine {
                        detail: "no cached artifact".to_owned(),
                    })
            })
            .await;
        Ok(loaded.ok())
    }

    /// A fresh instance of `loaded` for one operation.
    ///
    /// # Errors
    /// [`RuntimeError::Instantiate`] when it cannot be created.
    pub async fn instantiate(
        &self,
        loaded: &Arc<LoadedExtension>,
        grants: Grants,
    ) -> Result<ExtensionInstance, RuntimeError> {
        ExtensionInstance::new(loaded.clone(), grants).await
    }
}
