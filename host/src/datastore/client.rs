//! The host's handle on the datastore extension: one loaded component, the
//! grants every call gets, and one typed method per export. Each call runs
//! in a fresh instance, so calls may overlap (a lease renewal runs while a
//! commit is in flight).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context as _;

use super::error::DatastoreError;
use super::holder;
use super::working_copy_lock::WorkingCopyLocks;
use crate::capabilities::progress::ProgressSink;
use crate::locations::Locations;
use crate::runtime::bindings::ExtensionError;
use crate::runtime::bindings::exports::silt::datastore::{hydration, locks, models, sync};
use crate::runtime::bindings::silt::datastore::types::{
    Holder, Lease, LockInfo, LockScope, ModelRef, Scope,
};
use crate::runtime::{ArtifactCache, Catalog, ExtensionInstance, Grants, LoadedExtension, Runtime};
use crate::store::{Counting, CountsSnapshot, ObjectStore, root};

/// The datastore: the extension that implements it and the store it works on.
pub struct Datastore {
    runtime: Runtime,
    loaded: Arc<LoadedExtension>,
    grants: Grants,
    holder: Holder,
    local_dir: PathBuf,
    /// Every request the extension made, for reports ("fetched N objects").
    traffic: Arc<Counting<Arc<dyn ObjectStore>>>,
}

/// Calls one export and maps both failure layers (the runtime's and the
/// extension's own error) into `anyhow` errors that say what failed.
macro_rules! export_call {
    ($self:ident, $operation:literal, |$b:ident, $s:ident| $call:expr) => {{
        let mut instance = $self.instance().await?;
        let answer: Result<_, ExtensionError> = instance
            .call($operation, async |$b, $s| $call.await)
            .await?;
        answer.map_err(|err| DatastoreError::from_extension($operation, err).into())
    }};
}

impl Datastore {
    /// Opens the datastore `locations` describe: loads (or compiles, once)
    /// the configured extension and opens the store.
    ///
    /// # Errors
    /// When the extension is not installed or invalid, or the store cannot be opened.
    pub async fn open(
        locations: &Locations,
        progress: Option<Arc<dyn ProgressSink>>,
    ) -> anyhow::Result<Self> {
        let config = &locations.config;
        let catalog = Catalog::new(&locations.extensions_dir);
        let installed = catalog.get(&config.datastore.extension).with_context(|| {
            format!(
                "the datastore needs the `{}` extension in {}: install it with `silt extension add <path to {}.wasm>`",
                config.datastore.extension,
                locations.extensions_dir.display(),
                config.datastore.extension,
            )
        })?;
        let store: Arc<dyn ObjectStore> = root::open(&config.datastore, &locations.store_dir)?;
        Self::open_with_store(locations, &installed.component_path(), store, progress).await
    }

    /// Opens the datastore on `store` (already scoped to the datastore root)
    /// with the extension at `component`: for benchmarks and tests that
    /// wrap the store (counting requests, injecting faults).
    ///
    /// # Errors
    /// When the extension is invalid.
    pub async fn open_with_store(
        locations: &Locations,
        component: &Path,
        store: Arc<dyn ObjectStore>,
        progress: Option<Arc<dyn ProgressSink>>,
    ) -> anyhow::Result<Self> {
        let config = &locations.config;
        let cache = ArtifactCache::new(&locations.cache_dir, config.cache.max_size_mib << 20);
        let runtime = Runtime::new(config.runtime.clone(), cache);
        let loaded = runtime.load(component).await?;
        let traffic = Arc::new(Counting::new(store));
        let grants = Grants {
            store: Some(traffic.clone() as Arc<dyn ObjectStore>),
            cache_dir: Some(locations.local_dir.clone()),
            progress,
            transfer_concurrency: Some(config.datastore.transfer_concurrency),
        };
        Ok(Self {
            runtime,
            loaded,
            grants,
            holder: holder::current(),
            local_dir: locations.local_dir.clone(),
            traffic,
        })
    }

    /// The extension's name.
    pub fn extension_name(&self) -> &str {
        &self.loaded.metadata.name
    }

    /// True when the extension declares `capability` (e.g. `lazy-hydration`).
    pub fn supports(&self, capability: &str) -> bool {
        self.loaded
            .metadata
            .capabilities
            .iter()
            .any(|c| c == capability)
    }

    /// Requests and bytes the extension's calls have cost so far.
    pub fn traffic(&self) -> CountsSnapshot {
        self.traffic.counts().snapshot()
    }

    /// Who this process is in lock objects.
    pub fn holder(&self) -> &Holder {
        &self.holder
    }

    /// The same datastore acting for `holder` (e.g. a second process's view,
    /// in tests of lease exclusion).
    pub fn with_holder(mut self, holder: Holder) -> Self {
        self.holder = holder;
        self
    }

    /// The local copy (the extension's cache directory).
    pub fn local_dir(&self) -> &Path {
        &self.local_dir
    }

    /// The local locks of this working copy, between this clone's silt
    /// processes (foreground commands and the background hydrator).
    pub fn working_copy_locks(&self) -> WorkingCopyLocks {
        WorkingCopyLocks::new(&self.local_dir)
    }

    /// The working copy of `model`: `data/<type>/<id>` in the local copy.
    pub fn model_dir(&self, model: &ModelRef) -> PathBuf {
        self.local_dir
            .join("data")
            .join(&model.model_type)
            .join(&model.model_id)
    }

    async fn instance(&self) -> anyhow::Result<ExtensionInstance> {
        Ok(self
            .runtime
            .instantiate(&self.loaded, self.grants.clone())
            .await?)
    }

    /// `sync.setup`.
    pub async fn setup(&self, options: sync::SetupOptions) -> anyhow::Result<sync::SetupReport> {
        export_call!(self, "setup", |b, s| b
            .silt_datastore_sync()
            .call_setup(s, options))
    }

    /// `sync.verify`.
    pub async fn verify(&self, scope: &Scope) -> anyhow::Result<Vec<sync::Finding>> {
        export_call!(self, "verify", |b, s| b
            .silt_datastore_sync()
            .call_verify(s, scope))
    }

    /// `sync.pull-changed`.
    pub async fn pull(&self, options: &sync::SyncOptions) -> anyhow::Result<sync::SyncReport> {
        export_call!(self, "pull", |b, s| b
            .silt_datastore_sync()
            .call_pull_changed(s, options))
    }

    /// `sync.push-changed`.
    pub async fn push(&self, options: &sync::SyncOptions) -> anyhow::Result<sync::SyncReport> {
        export_call!(self, "push", |b, s| b
            .silt_datastore_sync()
            .call_push_changed(s, options))
    }

    /// `sync.gc`.
    pub async fn gc(&self, options: &sync::GcOptions) -> anyhow::Result<sync::GcReport> {
        export_call!(self, "gc", |b, s| b
            .silt_datastore_sync()
            .call_gc(s, options))
    }

    /// `sync.status`.
    pub async fn status(&self, scope: &Scope) -> anyhow::Result<sync::StatusReport> {
        export_call!(self, "status", |b, s| b
            .silt_datastore_sync()
            .call_status(s, scope))
    }

    /// `hydration.hydrate-scope`.
    pub async fn hydrate_scope(
        &self,
        models: &[ModelRef],
        options: hydration::HydrateOptions,
    ) -> anyhow::Result<hydration::HydrateReport> {
        export_call!(self, "hydrate", |b, s| b
            .silt_datastore_hydration()
            .call_hydrate_scope(s, models, options))
    }

    /// `hydration.hydrate-file`: makes one working-copy file (`data/T/ID/NAME`)
    /// present at its latest version, fetching only that file.
    pub async fn hydrate_file(&self, path: &str) -> anyhow::Result<hydration::HydrateReport> {
        export_call!(self, "hydrate-file", |b, s| b
            .silt_datastore_hydration()
            .call_hydrate_file(s, path))
    }

    /// `locks.acquire` (one attempt).
    pub async fn acquire(&self, scope: &LockScope, ttl_ms: u32) -> anyhow::Result<Lease> {
        let options = locks::AcquireOptions {
            holder: self.holder.clone(),
            ttl_ms,
        };
        export_call!(self, "acquire lease", |b, s| b
            .silt_datastore_locks()
            .call_acquire(s, scope, &options))
    }

    /// `locks.renew`.
    pub async fn renew(&self, lease: &Lease) -> anyhow::Result<Lease> {
        export_call!(self, "renew lease", |b, s| b
            .silt_datastore_locks()
            .call_renew(s, lease))
    }

    /// `locks.release`.
    pub async fn release(&self, lease: &Lease) -> anyhow::Result<()> {
        export_call!(self, "release lease", |b, s| b
            .silt_datastore_locks()
            .call_release(s, lease))
    }

    /// `locks.inspect`.
    pub async fn inspect(&self, scope: &LockScope) -> anyhow::Result<Option<LockInfo>> {
        export_call!(self, "inspect lock", |b, s| b
            .silt_datastore_locks()
            .call_inspect(s, scope))
    }

    /// `locks.list`.
    pub async fn list_locks(&self) -> anyhow::Result<Vec<LockInfo>> {
        export_call!(self, "list locks", |b, s| b
            .silt_datastore_locks()
            .call_list(s))
    }

    /// `locks.force-release`.
    pub async fn force_release(&self, expected: &LockInfo) -> anyhow::Result<()> {
        export_call!(self, "force-release lock", |b, s| b
            .silt_datastore_locks()
            .call_force_release(s, expected))
    }

    /// `models.list-models`.
    pub async fn list_models(&self) -> anyhow::Result<Vec<ModelRef>> {
        export_call!(self, "list models", |b, s| b
            .silt_datastore_models()
            .call_list_models(s))
    }

    /// `models.list-files`.
    pub async fn list_files(&self, model: &ModelRef) -> anyhow::Result<Vec<models::FileEntry>> {
        export_call!(self, "list", |b, s| b
            .silt_datastore_models()
            .call_list_files(s, model))
    }

    /// `models.history`.
    pub async fn history(
        &self,
        model: &ModelRef,
        name: &str,
    ) -> anyhow::Result<Vec<models::FileVersion>> {
        export_call!(self, "history", |b, s| b
            .silt_datastore_models()
            .call_history(s, model, name))
    }

    /// `models.put-file`: `cache_path` is relative to the local copy.
    pub async fn put_file(
        &self,
        model: &ModelRef,
        name: &str,
        cache_path: &str,
        lease: &Lease,
    ) -> anyhow::Result<models::FileVersion> {
        export_call!(self, "put", |b, s| b
            .silt_datastore_models()
            .call_put_file(s, model, name, cache_path, lease))
    }

    /// `models.get-file`: `cache_path` is relative to the local copy.
    pub async fn get_file(
        &self,
        model: &ModelRef,
        name: &str,
        version: Option<&str>,
        cache_path: &str,
    ) -> anyhow::Result<models::FileVersion> {
        export_call!(self, "get", |b, s| b
            .silt_datastore_models()
            .call_get_file(s, model, name, version, cache_path))
    }

    /// `models.remove-file`.
    pub async fn remove_file(
        &self,
        model: &ModelRef,
        name: &str,
        lease: &Lease,
    ) -> anyhow::Result<models::FileVersion> {
        export_call!(self, "rm", |b, s| b
            .silt_datastore_models()
            .call_remove_file(s, model, name, lease))
    }
}
