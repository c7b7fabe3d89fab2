//! One call into an extension's exports as a value: what the host asks
//! ([`ExportCall`]) and what the guest answered ([`ExportReply`]).
//!
//! In-process execution invokes a call on an [`ExtensionInstance`];
//! out-of-process execution sends the same value to a worker, which invokes
//! it there. Both go through [`ExportCall::invoke`], so the two paths cannot
//! drift apart.
//!
//! Every export is declared once, in [`foreach_export!`]: the call and
//! reply enums, the function names, the typed calls of an
//! [`ExtensionInstance`] and of [`Exports`], and the invocation are all
//! expanded from that one table, so adding a function to the contract
//! means adding one line here.

use serde::{Deserialize, Serialize};

use super::bindings::exports::silt::datastore::{hydration, locks, models, sync};
use super::bindings::silt::datastore::types::{
    Base, Committer, Lease, LockInfo, LockScope, ModelRef, Scope,
};
use super::bindings::{Description, ExtensionError};
use super::error::RuntimeError;
use super::instance::ExtensionInstance;
use super::since_v0_6;
use super::versions::Bindings;

/// The extension's own answer to a call: its value or its typed error.
pub type Answer<T> = Result<T, ExtensionError>;

/// The exports of `silt:datastore`, one line each:
///
/// `Variant "interface.function" interface-accessor.method { fields } -> reply [arguments];`
///
/// `method` is the bindings' `call_*` method and also the name of the typed
/// call in [`Exports`]; `arguments` are the fields as the bindings take them.
macro_rules! foreach_export {
    ($m:ident) => {
        $m! {
            Describe "capabilities.describe" silt_datastore_capabilities.call_describe {}
                -> Description [];
            Setup "sync.setup" silt_datastore_sync.call_setup { options: sync::SetupOptions }
                -> Answer<sync::SetupReport> [options];
            Verify "sync.verify" silt_datastore_sync.call_verify { scope: Scope }
                -> Answer<Vec<sync::Finding>> [&scope];
            PullChanged "sync.pull-changed" silt_datastore_sync.call_pull_changed
                { options: sync::SyncOptions } -> Answer<sync::SyncReport> [&options];
            PushChanged "sync.push-changed" silt_datastore_sync.call_push_changed
                { options: sync::SyncOptions } -> Answer<sync::SyncReport> [&options];
            Status "sync.status" silt_datastore_sync.call_status { scope: Scope }
                -> Answer<sync::StatusReport> [&scope];
            Gc "sync.gc" silt_datastore_sync.call_gc { options: sync::GcOptions }
                -> Answer<sync::GcReport> [&options];
            CollectOrphans "sync.collect-orphans" silt_datastore_sync.call_collect_orphans
                { options: sync::OrphanOptions } -> Answer<sync::OrphanReport> [&options];
            HydrateScope "hydration.hydrate-scope" silt_datastore_hydration.call_hydrate_scope
                { models: Vec<ModelRef>, options: hydration::HydrateOptions }
                -> Answer<hydration::HydrateReport> [&models, options];
            HydrateFile "hydration.hydrate-file" silt_datastore_hydration.call_hydrate_file
                { path: String } -> Answer<hydration::HydrateReport> [&path];
            Acquire "locks.acquire" silt_datastore_locks.call_acquire
                { scope: LockScope, options: locks::AcquireOptions } -> Answer<Lease>
                [&scope, &options];
            Renew "locks.renew" silt_datastore_locks.call_renew { lease: Lease }
                -> Answer<Lease> [&lease];
            Release "locks.release" silt_datastore_locks.call_release { lease: Lease }
                -> Answer<()> [&lease];
            Inspect "locks.inspect" silt_datastore_locks.call_inspect { scope: LockScope }
                -> Answer<Option<LockInfo>> [&scope];
            ListLocks "locks.list" silt_datastore_locks.call_list {}
                -> Answer<Vec<LockInfo>> [];
            ForceRelease "locks.force-release" silt_datastore_locks.call_force_release
                { expected: LockInfo } -> Answer<()> [&expected];
            ListModels "models.list-models" silt_datastore_models.call_list_models {}
                -> Answer<Vec<ModelRef>> [];
            ListFiles "models.list-files" silt_datastore_models.call_list_files
                { model: ModelRef } -> Answer<Vec<models::FileEntry>> [&model];
            History "models.history" silt_datastore_models.call_history
                { model: ModelRef, name: String } -> Answer<Vec<models::FileVersion>>
                [&model, &name];
            PutFile "models.put-file" silt_datastore_models.call_put_file
                { model: ModelRef, name: String, cache_path: String, base: Base, by: Committer }
                -> Answer<models::FileVersion> [&model, &name, &cache_path, &base, &by];
            GetFile "models.get-file" silt_datastore_models.call_get_file
                { model: ModelRef, name: String, version: Option<String>, cache_path: String }
                -> Answer<models::FileVersion>
                [&model, &name, version.as_deref(), &cache_path];
            RemoveFile "models.remove-file" silt_datastore_models.call_remove_file
                { model: ModelRef, name: String, base: Base, by: Committer }
                -> Answer<models::FileVersion> [&model, &name, &base, &by];
        }
    };
}

/// Expands [`foreach_export!`] into the enums, [`ExportCall::invoke`] and
/// [`Exports`].
macro_rules! declare_exports {
    ($(
        $variant:ident $function:literal $interface:ident . $method:ident
            { $($field:ident : $type:ty),* } -> $reply:ty [ $($argument:expr),* ];
    )*) => {
        /// A call of one export of `silt:datastore`, with its arguments.
        #[allow(missing_docs)] // Each variant is the WIT function of its name.
        #[derive(Debug, Clone, Serialize, Deserialize)]
        pub enum ExportCall {
            $($variant { $($field: $type),* },)*
        }

        /// What the guest returned: one variant per export, as its call.
        #[allow(missing_docs)] // Each variant answers the call of its name.
        #[derive(Debug, Clone, Serialize, Deserialize)]
        pub enum ExportReply {
            $($variant($reply),)*
        }

        impl ExportCall {
            /// The WIT function this calls, e.g. `sync.pull-changed`.
            pub fn function(&self) -> &'static str {
                match self {
                    $(Self::$variant { .. } => $function,)*
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
                Ok(match self {
                    $(Self::$variant { $($field),* } =>
                        ExportReply::$variant(instance.$method($($field),*).await?),)*
                })
            }
        }

        /// One typed method per export, each through
        /// [`ExtensionInstance::call`] (the deadline, the failure
        /// classification).
        impl ExtensionInstance {
            $(
                #[doc = concat!("`", $function, "`.")]
                ///
                /// # Errors
                /// When the guest traps, exceeds a limit or its deadline; the
                /// extension's own error, if any, is inside the answer.
                pub async fn $method(
                    &mut self,
                    $($field: $type),*
                ) -> Result<$reply, RuntimeError> {
                    self.call($function, async |bindings, store| match bindings {
                        Bindings::Current(bindings) => {
                            bindings.$interface().$method(store, $($argument),*).await
                        }
                        Bindings::V0_6(bindings) => {
                            // The table's type names, as the previous
                            // contract's types: each argument adapted.
                            #[allow(unused_imports)]
                            use crate::since_v0_6::exports::silt::datastore::{
                                hydration, locks, models, sync,
                            };
                            #[allow(unused_imports)]
                            use crate::since_v0_6::silt::datastore::types::{
                                Base, Committer, Lease, LockInfo, LockScope, ModelRef, Scope,
                            };
                            $(let $field: $type = since_v0_6::adapt(&$field)?;)*
                            let answer = bindings.$interface().$method(store, $($argument),*).await?;
                            since_v0_6::adapt(&answer)
                        }
                    })
                    .await
                }
            )*
        }

        impl ExportReply {
            /// The WIT function this answers, for "expected X, got Y" errors.
            pub fn function(&self) -> &'static str {
                match self {
                    $(Self::$variant(_) => $function,)*
                }
            }

            /// True when the extension answered with its own error (it ran,
            /// and refused or failed the request).
            pub fn is_extension_error(&self) -> bool {
                match self {
                    $(Self::$variant(answer) => Refusal::is_refusal(answer),)*
                }
            }
        }

        /// Typed calls of every export over any way of executing an
        /// [`ExportCall`] (in process, in a worker): implement
        /// [`Exports::execute`] and get one method per export.
        pub trait Exports: Sync {
            /// The extension the calls go to (for errors).
            fn extension_name(&self) -> &str;

            /// Runs one call.
            ///
            /// # Errors
            /// When the guest traps, exceeds a limit, or its worker fails.
            fn execute(
                &self,
                call: ExportCall,
            ) -> impl Future<Output = Result<ExportReply, RuntimeError>> + Send;

            $(
                #[doc = concat!("`", $function, "`.")]
                ///
                /// # Errors
                /// As [`Exports::execute`], and when the answer is of
                /// another export (a bug in a worker protocol).
                fn $method(
                    &self,
                    $($field: $type),*
                ) -> impl Future<Output = Result<$reply, RuntimeError>> + Send {
                    async move {
                        match self.execute(ExportCall::$variant { $($field),* }).await? {
                            ExportReply::$variant(answer) => Ok(answer),
                            other => Err(mismatched(self.extension_name(), $function, &other)),
                        }
                    }
                }
            )*
        }
    };
}

foreach_export!(declare_exports);

/// Whether an answer is the extension's own error.
trait Refusal {
    fn is_refusal(&self) -> bool;
}

impl Refusal for Description {
    fn is_refusal(&self) -> bool {
        false
    }
}

impl<T> Refusal for Answer<T> {
    fn is_refusal(&self) -> bool {
        self.is_err()
    }
}

/// The error for an answer to another export than the one called.
fn mismatched(extension: &str, function: &'static str, reply: &ExportReply) -> RuntimeError {
    RuntimeError::Host {
        extension: extension.to_owned(),
        function,
        detail: format!(
            "answered with the reply of `{}` (a bug in silt's worker protocol)",
            reply.function()
        ),
    }
}
