//! The host's handle on the datastore extension: one loaded component, the
//! capabilities every call gets, and one typed method per export. Each call runs
//! in a fresh instance, so calls may overlap (a lease renewal runs while a
//! commit is in flight).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context as _;
use tracing::Instrument as _;

use super::error::{DatastoreError, scope_label};
use super::holder;
use super::runtimes::Runtimes;
use super::working_copy_lock::WorkingCopyLocks;
use crate::beneath::Beneath;
use crate::capabilities::Capabilities;
use crate::capabilities::delivery::{Deliveries, Delivery};
use crate::capabilities::progress::ProgressSink;
use crate::capabilities::sending::{GivenFile, Sending, Sendings, StagedFile};
use crate::locations::Locations;
use crate::runtime::bindings::Description;
use crate::runtime::bindings::exports::silt::datastore::{hydration, locks, models, sync};
use crate::runtime::bindings::silt::datastore::types::{
    Base, Committer, Holder, Lease, LockInfo, LockScope, ModelRef, Scope,
};
use crate::runtime::call::Answer;
use crate::runtime::metadata::description_differences;
use crate::runtime::{
    ArtifactCache, Catalog, ComponentInfo, ExportCall, ExportReply, Exports, ExtensionInstance,
    Grants, LoadedExtension, Metadata, Runtime, RuntimeError, guest_text,
};
use crate::sandbox::Execution;
use crate::store::{Counting, CountsSnapshot, ObjectStore, root};
use crate::worker::{ReservedWorkers, WorkerPool};

/// The first contract whose `put-file` takes a sending of the file given
/// (0.7.4); one before it reads the cache path it is handed, so a `put`
/// stages a copy for it.
const FIRST_TAKING_GIVEN_FILES: (u32, u32, u32) = (0, 7, 4);

/// `major.minor.patch` as numbers, to compare.
fn version_numbers(version: &str) -> Option<(u32, u32, u32)> {
    let mut numbers = version.splitn(3, '.').map(|part| part.parse().ok());
    Some((numbers.next()??, numbers.next()??, numbers.next()??))
}

/// The datastore: the extension that implements it and the store it works on.
pub struct Datastore {
    runtime: Arc<Runtime>,
    metadata: Metadata,
    executor: Executor,
    holder: Holder,
    local_dir: PathBuf,
    /// Every request the extension made, for reports ("fetched N objects").
    traffic: Arc<Counting<Arc<dyn ObjectStore>>>,
    /// The datastore's root (not counted) and the installed component's
    /// sha256, for its identity record; `None` when opened on a store a
    /// caller wrapped ([`Datastore::open_with_store`]).
    identity_target: Option<(Arc<dyn ObjectStore>, String)>,
    /// The `get-file` deliveries an operation waits for (`object-store.deliver`).
    deliveries: Arc<Deliveries>,
    /// The sendings a `put` names: a staged copy, answered with the hash
    /// taken while staging it, or the file given itself
    /// (`object-store.upload-hashed`).
    sendings: Arc<Sendings>,
}

/// Maps both failure layers of one call (the runtime's and the
/// extension's own error) into an `anyhow` error that says what failed.
fn answer<T>(
    operation: &'static str,
    outcome: Result<Answer<T>, RuntimeError>,
) -> anyhow::Result<T> {
    outcome?.map_err(|err| DatastoreError::from_extension(operation, err).into())
}

/// [`answer`], except that a call that failed after the store met a
/// credentials failure reports that failure: the extension saw only a
/// backend error in its place, and it is what the user must fix.
fn answer_with_cause<T>(
    store: &dyn ObjectStore,
    operation: &'static str,
    outcome: Result<Answer<T>, RuntimeError>,
) -> anyhow::Result<T> {
    answer(operation, outcome).map_err(|err| match store.credentials_failure() {
        Some(cause) => anyhow::Error::new(cause).context(format!("{operation} failed")),
        None => err,
    })
}

/// Where the extension's calls run.
enum Executor {
    /// In this process: the component compiled (or mapped) here, and what
    /// its imports reach.
    InProcess {
        loaded: Arc<LoadedExtension>,
        capabilities: Capabilities,
    },
    /// In sandboxed worker processes.
    OutOfProcess(Arc<WorkerPool>),
}

impl Datastore {
    /// Opens the datastore `locations` describe: loads (or compiles, once)
    /// the configured extension and opens the store. The extension runtime
    /// comes from `runtimes`, shared by everything the command opens.
    ///
    /// # Errors
    /// When the extension is not installed or invalid, or the store cannot be opened.
    pub async fn open(
        locations: &Locations,
        runtimes: &Runtimes,
        progress: Option<Arc<dyn ProgressSink>>,
    ) -> anyhow::Result<Self> {
        let config = &locations.config;
        if let Some(done) = crate::supply_chain::ensure_installed(
            locations.config_file.as_deref(),
            &locations.extensions_dir,
            locations.user_extensions_dir.as_deref(),
            &config.extensions.require,
            &config.datastore.extension,
        )
        .await?
            && done.action != crate::supply_chain::Action::UpToDate
        {
            eprintln!("silt: {done}");
        }
        let catalog = Catalog::new(&locations.extensions_dir);
        let installed = catalog.get(&config.datastore.extension).with_context(|| {
            format!(
                "the datastore needs the `{}` extension in {}: install it with `silt extension add <path to {}.wasm>`",
                config.datastore.extension,
                locations.extensions_dir.display(),
                config.datastore.extension,
            )
        })?;
        let store: Arc<dyn ObjectStore> = root::open(&config.datastore.root(&locations.store_dir))?;
        // Before the extension runs: is this the datastore's extension?
        let sha256 = installed.manifest.component.sha256.clone();
        let host_state = Beneath::create(&super::working_copy_lock::host_state_dir(
            &locations.local_dir,
        ));
        if let Ok(host_state) = &host_state {
            super::identity::check(&store, host_state, &installed.manifest.metadata, &sha256)
                .await?;
        }
        let runtime = runtimes.get(
            &config.runtime,
            &locations.cache_dir,
            config.cache.max_size_mib << 20,
        );
        let mut datastore = Self::open_on(
            locations,
            runtime,
            &installed.component_path(),
            store.clone(),
            progress,
        )
        .await?;
        datastore
            .warn_if_described_otherwise(host_state.ok().as_ref(), &sha256)
            .await;
        datastore.identity_target = Some((store, sha256));
        Ok(datastore)
    }

    /// Records this extension as the one the datastore belongs to
    /// (`_silt/datastore.json`), after a setup it answered. Nothing for a
    /// datastore opened on a wrapped store.
    ///
    /// # Errors
    /// When the store refuses the write.
    pub async fn record_identity(&self) -> anyhow::Result<()> {
        let Some((store, sha256)) = &self.identity_target else {
            return Ok(());
        };
        let identity = super::identity::Identity::of(&self.metadata, sha256);
        let host_state = self
            .host_state()
            .context("cannot keep the host's state beside the working copy")?;
        super::identity::record(store, &host_state, &identity)
            .await
            .with_context(|| format!("cannot write {}", super::identity::RECORD_KEY))
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
        let runtime = Arc::new(Runtime::new(config.runtime.clone(), cache));
        Self::open_on(locations, runtime, component, store, progress).await
    }

    /// [`Datastore::open_with_store`] on `runtime`.
    async fn open_on(
        locations: &Locations,
        runtime: Arc<Runtime>,
        component: &Path,
        store: Arc<dyn ObjectStore>,
        progress: Option<Arc<dyn ProgressSink>>,
    ) -> anyhow::Result<Self> {
        let config = &locations.config;
        let traffic = Arc::new(Counting::new(store));
        let deliveries = Arc::new(Deliveries::default());
        let sendings = Arc::new(Sendings::default());
        let grants = Grants {
            store: Some(traffic.clone() as Arc<dyn ObjectStore>),
            cache_dir: Some(locations.local_dir.clone()),
            progress,
            transfer_concurrency: Some(config.datastore.transfer_concurrency),
            settings: Arc::new(
                config
                    .extensions
                    .settings(&config.datastore.extension)
                    .map_err(anyhow::Error::msg)?,
            ),
            deliveries: deliveries.clone(),
            sendings: sendings.clone(),
        };
        let grants_settings_empty = grants.settings.is_empty();
        let execution = config.sandbox.execution_of(&config.datastore.extension);
        let (metadata, executor) = match execution {
            Execution::InProcess => {
                let loaded = runtime.load(component).await?;
                // Built once: every call's instance shares them.
                let capabilities = Capabilities::local(&loaded.metadata.name, &grants)?;
                (
                    loaded.metadata.clone(),
                    Executor::InProcess {
                        loaded,
                        capabilities,
                    },
                )
            }
            Execution::OutOfProcess => {
                // Validated here, compiled by the first call (into the bundle).
                let bytes = tokio::fs::read(component)
                    .await
                    .with_context(|| format!("cannot read {}", component.display()))?;
                let info = ComponentInfo::parse(&bytes, component).map_err(RuntimeError::from)?;
                let metadata = info
                    .validate(component)
                    .map_err(RuntimeError::from)?
                    .clone();
                let pool = WorkerPool::new(
                    &metadata.name,
                    component,
                    grants,
                    config.runtime.clone(),
                    config.sandbox.clone(),
                    &locations.cache_dir,
                );
                (metadata, Executor::OutOfProcess(Arc::new(pool)))
            }
        };
        let has_config = crate::runtime::metadata::api_version(&metadata.api)
            .is_some_and(crate::runtime::metadata::is_current_minor);
        if !has_config && !grants_settings_empty {
            tracing::warn!(
                "[extensions.config.{}] is not passed to {}: it speaks {}, which has no `config` import (rebuild it against {})",
                metadata.name,
                metadata.name,
                metadata.api,
                crate::runtime::metadata::api_id()
            );
        }
        let datastore = Self {
            runtime,
            metadata,
            executor,
            holder: holder::current(),
            local_dir: locations.local_dir.clone(),
            traffic,
            identity_target: None,
            deliveries,
            sendings,
        };
        Ok(datastore)
    }

    /// What interrupted writes of the store's backend left behind, as
    /// `sweep` selects them (see [`ObjectStore::leftovers`]).
    ///
    /// # Errors
    /// When the store cannot be looked through.
    pub async fn store_leftovers(
        &self,
        sweep: crate::store::Sweep,
    ) -> Result<Vec<crate::store::Leftover>, crate::store::StoreError> {
        self.traffic.leftovers("", sweep).await
    }

    /// Warns when the extension's `describe` differs from its metadata
    /// section (silt goes by the metadata). Asked once per component
    /// (`sha256`) and remembered in `host_state`
    /// ([`super::self_description`]), so a command does not pay an instance
    /// and a call for it; without a host state it is asked every time. A
    /// failed call is not remembered: the command's own calls report it.
    async fn warn_if_described_otherwise(&self, host_state: Option<&Beneath>, sha256: &str) {
        let remembered =
            host_state.and_then(|state| super::self_description::remembered(state, sha256));
        let differences = match remembered {
            Some(differences) => differences,
            None => {
                let Ok(description) = self.describe().await else {
                    return;
                };
                let differences = description_differences(&self.metadata, &description);
                if let Some(state) = host_state {
                    super::self_description::remember(state, sha256, &differences);
                }
                differences
            }
        };
        if !differences.is_empty() {
            tracing::warn!(
                "extension `{}` describes itself otherwise than its metadata says: {}; silt goes by the metadata",
                self.metadata.name,
                differences.join("; ")
            );
        }
    }

    /// The extension's name.
    pub fn extension_name(&self) -> &str {
        &self.metadata.name
    }

    /// Where the extension's calls run.
    pub fn execution(&self) -> Execution {
        match self.executor {
            Executor::InProcess { .. } => Execution::InProcess,
            Executor::OutOfProcess(_) => Execution::OutOfProcess,
        }
    }

    /// The worker pool, when calls run out of process.
    pub fn workers(&self) -> Option<&WorkerPool> {
        match &self.executor {
            Executor::InProcess { .. } => None,
            Executor::OutOfProcess(pool) => Some(pool),
        }
    }

    /// True when the extension declares `capability` (e.g. `lazy-hydration`).
    pub fn supports(&self, capability: &str) -> bool {
        self.metadata.capabilities.iter().any(|c| c == capability)
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

    /// The local copy, opened so that the host reaches what is beneath it
    /// only, never through a link (see [`Beneath`]); created if missing.
    ///
    /// # Errors
    /// When the directory cannot be created or opened.
    pub fn local(&self) -> std::io::Result<Beneath> {
        Beneath::create(&self.local_dir)
    }

    /// The host's own state beside the local copy (see
    /// [`super::working_copy_lock::host_state_dir`]); created if missing.
    ///
    /// # Errors
    /// When the directory cannot be created or opened.
    pub fn host_state(&self) -> std::io::Result<Beneath> {
        Beneath::create(&super::working_copy_lock::host_state_dir(&self.local_dir))
    }

    /// Where the edits an extension says it set aside are, in the local
    /// copy: only relative paths under `.silt/conflicts/` are taken (guest
    /// text: an absolute path or `..` would name something else).
    pub fn set_aside_locations(&self, reported: &[String]) -> Vec<PathBuf> {
        reported
            .iter()
            .filter_map(|path| {
                let relative = Path::new(path);
                let plain = relative
                    .components()
                    .all(|c| matches!(c, std::path::Component::Normal(_)));
                if plain && relative.starts_with(".silt/conflicts") {
                    Some(self.local_dir.join(relative))
                } else {
                    tracing::warn!(
                        "the extension reported an edit set aside at `{}`, outside .silt/conflicts/; ignored",
                        crate::runtime::guest_text(path)
                    );
                    None
                }
            })
            .collect()
    }

    /// The working copy of `model` relative to the local copy:
    /// `data/<type>/<id>`.
    pub fn model_path(&self, model: &ModelRef) -> PathBuf {
        Path::new("data")
            .join(&model.model_type)
            .join(&model.model_id)
    }

    /// The working copy of `model`: [`Self::model_path`] in the local copy.
    pub fn model_dir(&self, model: &ModelRef) -> PathBuf {
        self.local_dir.join(self.model_path(model))
    }

    fn calls(&self) -> Calls<'_> {
        Calls(self, None)
    }

    /// `count` workers kept for one caller's calls (a lease set's
    /// renewals), so that they never wait for a worker to start: `None` in
    /// process, and under `[sandbox] pool_size = 0`.
    pub fn reserve_workers(&self, count: usize) -> Option<ReservedWorkers> {
        match &self.executor {
            Executor::InProcess { .. } => None,
            Executor::OutOfProcess(pool) => pool.reserve(count),
        }
    }

    /// Starts `reserved`'s workers in the background, ahead of their first
    /// calls; returns at once.
    pub fn start_reserved(&self, reserved: &ReservedWorkers) {
        if let Executor::OutOfProcess(pool) = &self.executor {
            pool.start_reserved(reserved);
        }
    }

    /// `capabilities.describe`: what the extension says it is (the host
    /// goes by its metadata section; see [`Self::warn_if_described_otherwise`]).
    ///
    /// # Errors
    /// When the guest traps, exceeds a limit, or its worker fails.
    pub async fn describe(&self) -> Result<Description, RuntimeError> {
        self.calls().call_describe().await
    }

    /// `sync.setup`.
    pub async fn setup(&self, options: sync::SetupOptions) -> anyhow::Result<sync::SetupReport> {
        answer_with_cause(
            self.traffic.as_ref(),
            "setup",
            self.calls().call_setup(options).await,
        )
    }

    /// `sync.verify`.
    pub async fn verify(&self, scope: &Scope) -> anyhow::Result<Vec<sync::Finding>> {
        answer_with_cause(
            self.traffic.as_ref(),
            "verify",
            self.calls().call_verify(scope.clone()).await,
        )
    }

    /// `sync.pull-changed`.
    pub async fn pull(&self, options: &sync::SyncOptions) -> anyhow::Result<sync::SyncReport> {
        answer_with_cause(
            self.traffic.as_ref(),
            "pull",
            self.calls().call_pull_changed(options.clone()).await,
        )
    }

    /// `sync.push-changed`.
    pub async fn push(&self, options: &sync::SyncOptions) -> anyhow::Result<sync::SyncReport> {
        answer_with_cause(
            self.traffic.as_ref(),
            "push",
            self.calls().call_push_changed(options.clone()).await,
        )
    }

    /// `sync.gc`, its report checked: the models named are distinct and in
    /// the scope asked (each is a lease the host will take).
    pub async fn gc(&self, options: &sync::GcOptions) -> anyhow::Result<sync::GcReport> {
        let report: sync::GcReport = answer_with_cause(
            self.traffic.as_ref(),
            "gc",
            self.calls().call_gc(options.clone()).await,
        )?;
        let mut seen = std::collections::BTreeSet::new();
        for model in &report.models {
            let key = (model.model_type.as_str(), model.model_id.as_str());
            let in_scope = match &options.scope {
                Scope::All => true,
                Scope::Models(asked) => asked
                    .iter()
                    .any(|m| m.model_type == key.0 && m.model_id == key.1),
            };
            if !in_scope || !seen.insert(key) {
                return Err(self.misbehaved(
                    "sync.gc",
                    format!(
                        "named model {} {}",
                        guest_text(&format!("{}/{}", key.0, key.1)),
                        if in_scope {
                            "twice"
                        } else {
                            "outside the scope asked"
                        }
                    ),
                ));
            }
        }
        Ok(report)
    }

    /// `sync.collect-orphans`, its counts checked before anyone adds them
    /// up: what was deleted and kept is part of what was found, and a dry
    /// run deletes nothing.
    pub async fn collect_orphans(
        &self,
        options: &sync::OrphanOptions,
    ) -> anyhow::Result<sync::OrphanReport> {
        let report: sync::OrphanReport = answer_with_cause(
            self.traffic.as_ref(),
            "gc",
            self.calls().call_collect_orphans(options.clone()).await,
        )?;
        if let Some(detail) = orphan_report_problem(&report, options.dry_run) {
            return Err(self.misbehaved("sync.collect-orphans", detail));
        }
        Ok(report)
    }

    /// `sync.status`.
    pub async fn status(&self, scope: &Scope) -> anyhow::Result<sync::StatusReport> {
        answer_with_cause(
            self.traffic.as_ref(),
            "status",
            self.calls().call_status(scope.clone()).await,
        )
    }

    /// `hydration.hydrate-scope`.
    pub async fn hydrate_scope(
        &self,
        models: &[ModelRef],
        options: hydration::HydrateOptions,
    ) -> anyhow::Result<hydration::HydrateReport> {
        answer_with_cause(
            self.traffic.as_ref(),
            "hydrate",
            self.calls()
                .call_hydrate_scope(models.to_vec(), options)
                .await,
        )
    }

    /// `hydration.hydrate-file`: makes one working-copy file (`data/T/ID/NAME`)
    /// present at its latest version, fetching only that file.
    pub async fn hydrate_file(&self, path: &str) -> anyhow::Result<hydration::HydrateReport> {
        answer_with_cause(
            self.traffic.as_ref(),
            "hydrate-file",
            self.calls().call_hydrate_file(path.to_owned()).await,
        )
    }

    /// `locks.acquire` (one attempt).
    pub async fn acquire(&self, scope: &LockScope, ttl_ms: u32) -> anyhow::Result<Lease> {
        let options = locks::AcquireOptions {
            holder: self.holder.clone(),
            ttl_ms,
        };
        let lease: Lease = answer_with_cause(
            self.traffic.as_ref(),
            "acquire lease",
            self.calls().call_acquire(scope.clone(), options).await,
        )?;
        self.check_lease("locks.acquire", scope, ttl_ms, &lease)?;
        Ok(lease)
    }

    /// `locks.renew`, on the workers `on` when some are reserved for renewals.
    pub async fn renew(
        &self,
        lease: &Lease,
        on: Option<&ReservedWorkers>,
    ) -> anyhow::Result<Lease> {
        let renewed: Lease = answer_with_cause(
            self.traffic.as_ref(),
            "renew lease",
            Calls(self, on).call_renew(lease.clone()).await,
        )?;
        self.check_lease("locks.renew", &lease.scope, lease.ttl_ms, &renewed)?;
        if renewed.token != lease.token || renewed.generation != lease.generation {
            return Err(self.misbehaved(
                "locks.renew",
                "answered with another lease (token or generation changed)".to_owned(),
            ));
        }
        Ok(renewed)
    }

    /// Checks what the host relies on in a lease the extension handed out:
    /// it is for the scope asked, held by us, with the TTL asked and a
    /// generation that can still grow. Anything else is refused: a lease
    /// the host cannot trust must not guard a commit.
    fn check_lease(
        &self,
        operation: &'static str,
        scope: &LockScope,
        ttl_ms: u32,
        lease: &Lease,
    ) -> anyhow::Result<()> {
        let problem = if !same_scope(&lease.scope, scope) {
            Some(format!(
                "answered with a lease on {} when asked for {}",
                guest_text(&scope_label(&lease.scope)),
                scope_label(scope)
            ))
        } else if !same_holder(&lease.holder, &self.holder) {
            Some(format!(
                "answered with a lease held by {} (pid {}), not by this process",
                guest_text(&lease.holder.name),
                lease.holder.pid
            ))
        } else if lease.ttl_ms != ttl_ms {
            Some(format!(
                "answered with a TTL of {} ms when asked for {ttl_ms} ms",
                lease.ttl_ms
            ))
        } else if lease.generation == 0 || lease.generation == u64::MAX {
            Some(format!(
                "answered with generation {}, which cannot fence a commit",
                lease.generation
            ))
        } else if lease.token.is_empty() {
            Some("answered with an empty lease token".to_owned())
        } else {
            None
        };
        match problem {
            Some(detail) => Err(self.misbehaved(operation, detail)),
            None => Ok(()),
        }
    }

    fn misbehaved(&self, operation: &'static str, detail: String) -> anyhow::Error {
        DatastoreError::Misbehaved {
            extension: self.metadata.name.clone(),
            operation,
            detail,
        }
        .into()
    }

    /// `locks.release`.
    pub async fn release(&self, lease: &Lease) -> anyhow::Result<()> {
        answer_with_cause(
            self.traffic.as_ref(),
            "release lease",
            self.calls().call_release(lease.clone()).await,
        )
    }

    /// `locks.inspect`.
    pub async fn inspect(&self, scope: &LockScope) -> anyhow::Result<Option<LockInfo>> {
        answer_with_cause(
            self.traffic.as_ref(),
            "inspect lock",
            self.calls().call_inspect(scope.clone()).await,
        )
    }

    /// `locks.list`.
    pub async fn list_locks(&self) -> anyhow::Result<Vec<LockInfo>> {
        answer_with_cause(
            self.traffic.as_ref(),
            "list locks",
            self.calls().call_list().await,
        )
    }

    /// `locks.force-release`.
    pub async fn force_release(&self, expected: &LockInfo) -> anyhow::Result<()> {
        answer_with_cause(
            self.traffic.as_ref(),
            "force-release lock",
            self.calls().call_force_release(expected.clone()).await,
        )
    }

    /// `models.list-models`.
    pub async fn list_models(&self) -> anyhow::Result<Vec<ModelRef>> {
        answer_with_cause(
            self.traffic.as_ref(),
            "list models",
            self.calls().call_list_models().await,
        )
    }

    /// `models.list-files`.
    pub async fn list_files(&self, model: &ModelRef) -> anyhow::Result<Vec<models::FileEntry>> {
        answer_with_cause(
            self.traffic.as_ref(),
            "list",
            self.calls().call_list_files(model.clone()).await,
        )
    }

    /// `models.history`.
    pub async fn history(
        &self,
        model: &ModelRef,
        name: &str,
    ) -> anyhow::Result<Vec<models::FileVersion>> {
        answer_with_cause(
            self.traffic.as_ref(),
            "history",
            self.calls()
                .call_history(model.clone(), name.to_owned())
                .await,
        )
    }

    /// `models.put-file`: `cache_path` is relative to the local copy.
    pub async fn put_file(
        &self,
        model: &ModelRef,
        name: &str,
        cache_path: &str,
        base: &Base,
        by: &Committer,
    ) -> anyhow::Result<models::FileVersion> {
        answer_with_cause(
            self.traffic.as_ref(),
            "put",
            self.calls()
                .call_put_file(
                    model.clone(),
                    name.to_owned(),
                    cache_path.to_owned(),
                    base.clone(),
                    by.clone(),
                )
                .await,
        )
    }

    /// `models.get-file`: `cache_path` is relative to the local copy.
    pub async fn get_file(
        &self,
        model: &ModelRef,
        name: &str,
        version: Option<&str>,
        cache_path: &str,
    ) -> anyhow::Result<models::FileVersion> {
        answer_with_cause(
            self.traffic.as_ref(),
            "get",
            self.calls()
                .call_get_file(
                    model.clone(),
                    name.to_owned(),
                    version.map(str::to_owned),
                    cache_path.to_owned(),
                )
                .await,
        )
    }

    /// Names a delivery (see [`Deliveries`]): a `get-file` given
    /// `cache_path` (under `.silt/deliver/`) may land its bytes as `name`
    /// in `dir` instead, never in the cache. Forgotten when the answer is
    /// dropped.
    pub fn expect_delivery(&self, cache_path: &str, dir: Arc<Beneath>, name: String) -> Delivery {
        self.deliveries.expect(cache_path, dir, name)
    }

    /// Names a sending (see [`Sendings`]): an `upload-hashed` of
    /// `cache_path`, still the file `staged` describes, answers the sha256
    /// the host took while writing it. Forgotten when the answer is dropped.
    pub fn expect_sending(&self, cache_path: &str, staged: StagedFile) -> Sending {
        self.sendings.expect(cache_path, staged)
    }

    /// True when the extension takes a sending of the file a `put` was
    /// given (built for contract 0.7.4 or later): its `put-file` is then
    /// handed a path under [`SEND_DIR`](crate::capabilities::sending::SEND_DIR)
    /// that holds no file.
    pub fn takes_given_files(&self) -> bool {
        crate::runtime::metadata::api_version(&self.metadata.api)
            .and_then(version_numbers)
            .is_some_and(|version| version >= FIRST_TAKING_GIVEN_FILES)
    }

    /// Names `cache_path` a sending of `given`, the file a `put` was
    /// given: an `upload-hashed` of it sends that file (see [`Sendings`]).
    /// Forgotten when the answer is dropped.
    pub fn expect_given(&self, cache_path: &str, given: Arc<GivenFile>) -> Sending {
        self.sendings.expect_given(cache_path, given)
    }

    /// `models.remove-file`.
    pub async fn remove_file(
        &self,
        model: &ModelRef,
        name: &str,
        base: &Base,
        by: &Committer,
    ) -> anyhow::Result<models::FileVersion> {
        answer_with_cause(
            self.traffic.as_ref(),
            "rm",
            self.calls()
                .call_remove_file(model.clone(), name.to_owned(), base.clone(), by.clone())
                .await,
        )
    }
}

/// The raw, typed exports of the datastore's extension. Private: callers
/// go through [`Datastore`]'s methods, which check what the extension
/// answered (a lease's scope, holder and TTL) before anyone relies on it.
/// The second field is the reserved workers the calls run on, if any.
struct Calls<'a>(&'a Datastore, Option<&'a ReservedWorkers>);

impl Exports for Calls<'_> {
    fn extension_name(&self) -> &str {
        &self.0.metadata.name
    }

    /// Runs one call, in this process or in a worker, as one
    /// `extension.call` span (the store requests it makes are its children,
    /// in either place: a worker's imports are served here).
    async fn execute(&self, call: ExportCall) -> Result<ExportReply, RuntimeError> {
        let datastore = self.0;
        let function = call.function();
        let execution = match &datastore.executor {
            Executor::InProcess { .. } => "in-process",
            Executor::OutOfProcess(_) => "out-of-process",
        };
        // The name is the extension's validated metadata name
        // (lowercase letters, digits, dashes): safe to record.
        let span = tracing::info_span!(
            "extension.call",
            silt.extension = %datastore.metadata.name,
            silt.export = function,
            silt.execution = execution,
            silt.outcome = tracing::field::Empty,
            otel.status_code = tracing::field::Empty,
        );
        let result = async {
            match &datastore.executor {
                Executor::InProcess {
                    loaded,
                    capabilities,
                } => {
                    let mut instance = ExtensionInstance::with_capabilities(
                        loaded.clone(),
                        Some(&datastore.local_dir),
                        capabilities.clone(),
                    )
                    .await?;
                    call.invoke(&mut instance).await
                }
                Executor::OutOfProcess(pool) => match self.1 {
                    Some(reserved) => {
                        pool.execute_reserved(&datastore.runtime, reserved, call)
                            .await
                    }
                    None => pool.execute(&datastore.runtime, call).await,
                },
            }
        }
        .instrument(span.clone())
        .await;
        let outcome = match &result {
            Ok(reply) if reply.is_extension_error() => "extension_error",
            Ok(_) => "ok",
            Err(err) => err.outcome(),
        };
        span.record("silt.outcome", outcome);
        if !matches!(outcome, "ok" | "extension_error") {
            span.record("otel.status_code", "ERROR");
        }
        tracing::event!(target: crate::store::METRICS_TARGET, tracing::Level::INFO, { monotonic_counter.silt.extension.calls = 1u64, export = function, outcome });
        result
    }
}

/// What is impossible in an orphan report, if anything.
fn orphan_report_problem(report: &sync::OrphanReport, dry_run: bool) -> Option<String> {
    let accounted = report.deleted.checked_add(report.kept);
    if accounted.is_none_or(|accounted| accounted > report.found) {
        Some(format!(
            "reported {} orphans deleted and {} kept of {} found",
            report.deleted, report.kept, report.found
        ))
    } else if report.bytes_deleted > report.bytes_found {
        Some(format!(
            "reported {} bytes deleted of {} found",
            report.bytes_deleted, report.bytes_found
        ))
    } else if dry_run && (report.deleted > 0 || report.bytes_deleted > 0) {
        Some(format!(
            "reported {} orphans deleted in a dry run",
            report.deleted
        ))
    } else {
        None
    }
}

fn same_scope(a: &LockScope, b: &LockScope) -> bool {
    match (a, b) {
        (LockScope::Model(a), LockScope::Model(b)) => super::same_model(a, b),
        (LockScope::Namespace, LockScope::Namespace) | (LockScope::Global, LockScope::Global) => {
            true
        }
        _ => false,
    }
}

fn same_holder(a: &Holder, b: &Holder) -> bool {
    a.name == b.name && a.host == b.host && a.pid == b.pid
}
