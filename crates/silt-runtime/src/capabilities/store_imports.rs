//! The `object-store` interface, declared once.
//!
//! [`foreach_store_function!`] lists its functions; from that one table
//! come [`StoreImports`] (the trait an implementation provides), the guest's
//! `Host` impl (which hands every call to the operation's implementation,
//! as store time), the calls and replies as values ([`StoreCall`],
//! [`StoreReply`], which cross a worker's pipe), [`StoreImports::serve`]
//! (runs a call given as a value) and [`Forwarded`] (an implementation that
//! sends each call over a [`StoreTransport`]).

use std::pin::Pin;

use serde::{Deserialize, Serialize};

use crate::HostState;
use crate::bindings::silt::datastore::object_store::{
    self, DownloadItem, GetOutcome, Landed, ListPage, ObjectMeta, PutMode, StoreError, UploadItem,
    Uploaded,
};

/// A boxed future, as object-safe traits return them.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The functions of `object-store`, one line each:
/// `Variant method "wit-name" (arguments) -> result;`. `$m` gets the lines
/// after the tokens in `[...]`.
macro_rules! foreach_store_function {
    ($m:ident $([$($extra:tt)*])?) => {
        $m! {
            [$($($extra)*)?]
            Get get "get" (key: String, if_none_match: Option<String>) -> Result<GetOutcome, StoreError>;
            Head head "head" (key: String) -> Result<ObjectMeta, StoreError>;
            Put put "put" (key: String, data: Vec<u8>, mode: PutMode) -> Result<String, StoreError>;
            PutOwned put_owned "put-owned" (key: String, data: Vec<u8>, mode: PutMode, owner_token: String)
                -> Result<String, StoreError>;
            Delete delete "delete" (key: String, if_match: Option<String>) -> Result<(), StoreError>;
            List list "list" (prefix: String, start_after: Option<String>, limit: u32)
                -> Result<ListPage, StoreError>;
            Download download "download" (items: Vec<DownloadItem>) -> Vec<Result<ObjectMeta, StoreError>>;
            DownloadLanded download_landed "download-landed" (items: Vec<DownloadItem>)
                -> Vec<Result<Landed, StoreError>>;
            Upload upload "upload" (items: Vec<UploadItem>) -> Vec<Result<String, StoreError>>;
            UploadHashed upload_hashed "upload-hashed" (items: Vec<UploadItem>)
                -> Vec<Result<Uploaded, StoreError>>;
            Deliver deliver "deliver" (item: DownloadItem) -> Result<ObjectMeta, StoreError>;
        }
    };
}
pub(crate) use foreach_store_function;

macro_rules! declare_store_imports {
    ([] $($variant:ident $name:ident $wit:literal ($($arg:ident : $type:ty),*) -> $result:ty;)*) => {
        /// One `object-store` call with its arguments.
        #[allow(missing_docs)] // Each variant is the WIT function of its name.
        #[derive(Debug, Serialize, Deserialize)]
        pub enum StoreCall {
            $($variant { $($arg: $type),* },)*
        }

        /// The answer to a [`StoreCall`]: the variant of the same name.
        #[allow(missing_docs)] // Each variant answers the call of its name.
        #[derive(Debug, Serialize, Deserialize)]
        pub enum StoreReply {
            $($variant($result),)*
        }

        impl StoreReply {
            /// The WIT function this answers.
            pub fn function(&self) -> &'static str {
                match self {
                    $(Self::$variant(_) => $wit,)*
                }
            }
        }

        /// An implementation of the `object-store` interface (see
        /// [`crate::capabilities::LocalStore`] and [`Forwarded`]). Keys come
        /// from the guest unchecked: an implementation that uses them checks
        /// them.
        #[allow(missing_docs)] // Each method is the WIT function of its name.
        pub trait StoreImports: Send + Sync {
            $(fn $name(&self, $($arg: $type),*) -> BoxFuture<'_, $result>;)*

            /// Runs a call given as a value (a worker's, forwarded).
            fn serve(&self, call: StoreCall) -> BoxFuture<'_, StoreReply> {
                Box::pin(async move {
                    match call {
                        $(StoreCall::$variant { $($arg),* } =>
                            StoreReply::$variant(self.$name($($arg),*).await),)*
                    }
                })
            }
        }

        /// The guest's imports: each runs on the operation's implementation
        /// and counts as store time, not the guest's (see `CallClock`).
        impl object_store::Host for HostState {
            $(async fn $name(&mut self, $($arg: $type),*) -> $result {
                let store = self.capabilities.store.clone();
                self.in_store(async move { store.$name($($arg),*).await }).await
            })*
        }

        impl<T: StoreTransport + ?Sized> StoreImports for Forwarded<T> {
            $(fn $name(&self, $($arg: $type),*) -> BoxFuture<'_, $result> {
                Box::pin(async move {
                    match self.0.round_trip(StoreCall::$variant { $($arg),* }).await {
                        StoreReply::$variant(answer) => answer,
                        other => self.0.refuse($wit, other),
                    }
                })
            })*
        }
    };
}

foreach_store_function!(declare_store_imports);

/// Carries [`StoreCall`]s to where the store is and brings back replies:
/// a worker's link to its host, which may block (one guest call at a time
/// on the worker's current-thread runtime). Never a host-side transport:
/// [`StoreTransport::refuse`] ends the process.
pub trait StoreTransport: Send + Sync {
    /// Sends `call` and waits for the reply. A transport that cannot get
    /// one does not return (a worker without its host exits).
    fn round_trip(&self, call: StoreCall) -> BoxFuture<'_, StoreReply>;

    /// Handles a reply to another function than `expected` was called:
    /// the other end broke the protocol.
    fn refuse(&self, expected: &'static str, reply: StoreReply) -> !;
}

/// The `object-store` interface over a [`StoreTransport`]: each call is
/// sent as a value and runs wherever the transport leads.
pub struct Forwarded<T: ?Sized>(pub std::sync::Arc<T>);

/// Implements [`StoreImports`] for a type by its inherent `async fn`s of
/// the same names and signatures. (Were one missing, the path would name
/// the trait method itself: `unconditional_recursion` refuses that.)
macro_rules! store_imports_by_inherent_methods {
    ([$implementor:ty] $($variant:ident $name:ident $wit:literal ($($arg:ident : $type:ty),*) -> $result:ty;)*) => {
        impl $crate::capabilities::StoreImports for $implementor {
            $(fn $name(&self, $($arg: $type),*)
                -> $crate::capabilities::store_imports::BoxFuture<'_, $result> {
                Box::pin(<$implementor>::$name(self, $($arg),*))
            })*
        }
    };
}
pub(crate) use store_imports_by_inherent_methods;
