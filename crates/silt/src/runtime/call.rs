//! One call into an extension's exports as a value: what the host asks
//! ([`ExportCall`]) and what the guest answered ([`ExportReply`]).
//!
//! In-process execution invokes a call on an [`ExtensionInstance`];
//! out-of-process execution sends the same value to a worker, which invokes
//! it there. Both go through [`ExportCall::invoke`], so the two paths cannot
//! drift apart.

use serde::{Deserialize, Serialize};

use super::bindings::exports::silt::datastore::{hydration, locks, models, sync};
use super::bindings::silt::datastore::types::{Base, Lease, LockInfo, LockScope, ModelRef, Scope};
use super::bindings::{Description, ExtensionError};
use super::error::RuntimeError;
use super::instance::ExtensionInstance;

/// The extension's own answer to a call: its value or its typed error.
pub type Answer<T> = Result<T, ExtensionError>;

/// A call of one export of `silt:datastore`, with its arguments.
#[allow(missing_docs)] // Each variant is the WIT function of the same name.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum ExportCall {
    Describe,
    Setup(sync::SetupOptions),
    Verify(Scope),
    PullChanged(sync::SyncOptions),
    PushChanged(sync::SyncOptions),
    Status(Scope),
    Gc(sync::GcOptions),
    CollectOrphans(sync::OrphanOptions),
    HydrateScope {
        models: Vec<ModelRef>,
        options: hydration::HydrateOptions,
    },
    HydrateFile {
        path: String,
    },
    Acquire {
        scope: LockScope,
        options: locks::AcquireOptions,
    },
    Renew(Lease),
    Release(Lease),
    Inspect(LockScope),
    ListLocks,
    ForceRelease(LockInfo),
    ListModels,
    ListFiles(ModelRef),
    History {
        model: ModelRef,
        name: String,
    },
    PutFile {
        model: ModelRef,
        name: String,
        cache_path: String,
        base: Base,
        lease: Lease,
    },
    GetFile {
        model: ModelRef,
        name: String,
        version: Option<String>,
        cache_path: String,
    },
    RemoveFile {
        model: ModelRef,
        name: String,
        base: Base,
        lease: Lease,
    },
}

/// What the guest returned, one variant per result type.
#[allow(missing_docs)] // Named after the result type they carry.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum ExportReply {
    Description(Description),
    Setup(Answer<sync::SetupReport>),
    Findings(Answer<Vec<sync::Finding>>),
    Sync(Answer<sync::SyncReport>),
    Status(Answer<sync::StatusReport>),
    Gc(Answer<sync::GcReport>),
    Orphans(Answer<sync::OrphanReport>),
    Hydrate(Answer<hydration::HydrateReport>),
    Lease(Answer<Lease>),
    Done(Answer<()>),
    LockInfo(Answer<Option<LockInfo>>),
    Locks(Answer<Vec<LockInfo>>),
    Models(Answer<Vec<ModelRef>>),
    Files(Answer<Vec<models::FileEntry>>),
    Versions(Answer<Vec<models::FileVersion>>),
    Version(Answer<models::FileVersion>),
}

impl ExportReply {
    /// The variant's name, for "expected X, got Y" errors.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Description(_) => "description",
            Self::Setup(_) => "setup-report",
            Self::Findings(_) => "findings",
            Self::Sync(_) => "sync-report",
            Self::Status(_) => "status-report",
            Self::Gc(_) => "gc-report",
            Self::Orphans(_) => "orphan-report",
            Self::Hydrate(_) => "hydrate-report",
            Self::Lease(_) => "lease",
            Self::Done(_) => "unit",
            Self::LockInfo(_) => "lock-info",
            Self::Locks(_) => "lock-infos",
            Self::Models(_) => "model-refs",
            Self::Files(_) => "file-entries",
            Self::Versions(_) => "file-versions",
            Self::Version(_) => "file-version",
        }
    }
}

impl ExportCall {
    /// The WIT function this calls, e.g. `sync.pull-changed`.
    pub fn function(&self) -> &'static str {
        match self {
            Self::Describe => "capabilities.describe",
            Self::Setup(_) => "sync.setup",
            Self::Verify(_) => "sync.verify",
            Self::PullChanged(_) => "sync.pull-changed",
            Self::PushChanged(_) => "sync.push-changed",
            Self::Status(_) => "sync.status",
            Self::Gc(_) => "sync.gc",
            Self::CollectOrphans(_) => "sync.collect-orphans",
            Self::HydrateScope { .. } => "hydration.hydrate-scope",
            Self::HydrateFile { .. } => "hydration.hydrate-file",
            Self::Acquire { .. } => "locks.acquire",
            Self::Renew(_) => "locks.renew",
            Self::Release(_) => "locks.release",
            Self::Inspect(_) => "locks.inspect",
            Self::ListLocks => "locks.list",
            Self::ForceRelease(_) => "locks.force-release",
            Self::ListModels => "models.list-models",
            Self::ListFiles(_) => "models.list-files",
            Self::History { .. } => "models.history",
            Self::PutFile { .. } => "models.put-file",
            Self::GetFile { .. } => "models.get-file",
            Self::RemoveFile { .. } => "models.remove-file",
        }
    }

    /// Makes this call on `instance`.
    ///
    /// # Errors
    /// When the guest traps, exceeds a limit or its deadline.
    pub async fn invoke(
        self,
        instance: &mut ExtensionInstance,
    ) -> Result<ExportReply, RuntimeError> {
        let f = self.function();
        Ok(match self {
            Self::Describe => ExportReply::Description(
                instance
                    .call(f, async |b, s| {
                        b.silt_datastore_capabilities().call_describe(s).await
                    })
                    .await?,
            ),
            Self::Setup(options) => ExportReply::Setup(
                instance
                    .call(f, async |b, s| {
                        b.silt_datastore_sync().call_setup(s, options).await
                    })
                    .await?,
            ),
            Self::Verify(scope) => ExportReply::Findings(
                instance
                    .call(f, async |b, s| {
                        b.silt_datastore_sync().call_verify(s, &scope).await
                    })
                    .await?,
            ),
            Self::PullChanged(options) => ExportReply::Sync(
                instance
                    .call(f, async |b, s| {
                        b.silt_datastore_sync().call_pull_changed(s, &options).await
                    })
                    .await?,
            ),
            Self::PushChanged(options) => ExportReply::Sync(
                instance
                    .call(f, async |b, s| {
                        b.silt_datastore_sync().call_push_changed(s, &options).await
                    })
                    .await?,
            ),
            Self::Status(scope) => ExportReply::Status(
                instance
                    .call(f, async |b, s| {
                        b.silt_datastore_sync().call_status(s, &scope).await
                    })
                    .await?,
            ),
            Self::Gc(options) => ExportReply::Gc(
                instance
                    .call(f, async |b, s| {
                        b.silt_datastore_sync().call_gc(s, &options).await
                    })
                    .await?,
            ),
            Self::CollectOrphans(options) => ExportReply::Orphans(
                instance
                    .call(f, async |b, s| {
                        b.silt_datastore_sync()
                            .call_collect_orphans(s, &options)
                            .await
                    })
                    .await?,
            ),
            Self::HydrateScope { models, options } => ExportReply::Hydrate(
                instance
                    .call(f, async |b, s| {
                        b.silt_datastore_hydration()
                            .call_hydrate_scope(s, &models, options)
                            .await
                    })
                    .await?,
            ),
            Self::HydrateFile { path } => ExportReply::Hydrate(
                instance
                    .call(f, async |b, s| {
                        b.silt_datastore_hydration()
                            .call_hydrate_file(s, &path)
                            .await
                    })
                    .await?,
            ),
            Self::Acquire { scope, options } => ExportReply::Lease(
                instance
                    .call(f, async |b, s| {
                        b.silt_datastore_locks()
                            .call_acquire(s, &scope, &options)
                            .await
                    })
                    .await?,
            ),
            Self::Renew(lease) => ExportReply::Lease(
                instance
                    .call(f, async |b, s| {
                        b.silt_datastore_locks().call_renew(s, &lease).await
                    })
                    .await?,
            ),
            Self::Release(lease) => ExportReply::Done(
                instance
                    .call(f, async |b, s| {
                        b.silt_datastore_locks().call_release(s, &lease).await
                    })
                    .await?,
            ),
            Self::Inspect(scope) => ExportReply::LockInfo(
                instance
                    .call(f, async |b, s| {
                        b.silt_datastore_locks().call_inspect(s, &scope).await
                    })
                    .await?,
            ),
            Self::ListLocks => ExportReply::Locks(
                instance
                    .call(f, async |b, s| b.silt_datastore_locks().call_list(s).await)
                    .await?,
            ),
            Self::ForceRelease(expected) => ExportReply::Done(
                instance
                    .call(f, async |b, s| {
                        b.silt_datastore_locks()
                            .call_force_release(s, &expected)
                            .await
                    })
                    .await?,
            ),
            Self::ListModels => ExportReply::Models(
                instance
                    .call(f, async |b, s| {
                        b.silt_datastore_models().call_list_models(s).await
                    })
                    .await?,
            ),
            Self::ListFiles(model) => ExportReply::Files(
                instance
                    .call(f, async |b, s| {
                        b.silt_datastore_models().call_list_files(s, &model).await
                    })
                    .await?,
            ),
            Self::History { model, name } => ExportReply::Versions(
                instance
                    .call(f, async |b, s| {
                        b.silt_datastore_models()
                            .call_history(s, &model, &name)
                            .await
                    })
                    .await?,
            ),
            Self::PutFile {
                model,
                name,
                cache_path,
                base,
                lease,
            } => ExportReply::Version(
                instance
                    .call(f, async |b, s| {
                        b.silt_datastore_models()
                            .call_put_file(s, &model, &name, &cache_path, &base, &lease)
                            .await
                    })
                    .await?,
            ),
            Self::GetFile {
                model,
                name,
                version,
                cache_path,
            } => ExportReply::Version(
                instance
                    .call(f, async |b, s| {
                        b.silt_datastore_models()
                            .call_get_file(s, &model, &name, version.as_deref(), &cache_path)
                            .await
                    })
                    .await?,
            ),
            Self::RemoveFile {
                model,
                name,
                base,
                lease,
            } => ExportReply::Version(
                instance
                    .call(f, async |b, s| {
                        b.silt_datastore_models()
                            .call_remove_file(s, &model, &name, &base, &lease)
                            .await
                    })
                    .await?,
            ),
        })
    }
}
