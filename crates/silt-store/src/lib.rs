//! The object store: a small trait with conditional puts, modelled on
//! arrow-rs `object_store`, plus key scoping and backends.
//!
//! Callers use [`ObjectStore`] through `Arc<dyn ObjectStore>`. Versions are
//! opaque tokens (the ETag on S3); compare them only for equality.
//!
//! - backends: [`DirStore`] (a local or shared directory), [`S3Store`]
//!   (S3 and S3-compatible servers), [`GcsStore`] (Google Cloud Storage),
//!   [`AzureStore`] (Azure Blob Storage), [`MemoryStore`] (unit tests);
//! - wrappers that are stores themselves: [`Prefixed`] (a namespace),
//!   [`Retrying`] (the one retry layer, bounded), [`Counting`] (request
//!   counts), [`Traced`] (a span and counters per operation),
//!   [`FaultInjecting`] (tests);
//! - [`root::open`]: the datastore root `silt.toml` describes;
//! - [`doctor`]: does a store honour conditional writes and keep uploads
//!   as sent; `conformance` (feature `conformance`): the suite every
//!   backend passes.
//!
//! This is the only crate of silt that talks to a cloud store.

mod azure;
#[cfg(any(test, feature = "conformance"))]
pub mod conformance;
mod counting;
mod digest;
mod dir;
pub mod doctor;
mod fault;
mod gcs;
mod key;
mod memory;
mod owned;
mod prefix;
pub mod progress;
mod ranged;
mod rest;
mod retry;
pub mod root;
mod s3;
mod traced;
mod wrapper;

use std::fmt::Display;
use std::time::Duration;

use tokio::io::{AsyncWrite, AsyncWriteExt};

pub use azure::credentials::AzureCredentialSources;
pub use azure::{AzureConfig, AzureStore};
pub use counting::{Counting, CountsSnapshot, OperationCounts, RequestCounts};
pub use digest::{UploadDigest, sha256_at_offsets};
pub use dir::DirStore;
pub use fault::{FaultCounts, FaultInjecting, FaultRates};
pub use gcs::credentials::GcsCredentialSources;
pub use gcs::{GcsConfig, GcsStore};
pub use key::{
    HOST_SEGMENT, InvalidKey, MAX_KEY_LEN, MAX_SEGMENT_LEN, ObjectKey, is_host_reserved,
};
pub use memory::MemoryStore;
pub use owned::put_owned;
pub use prefix::Prefixed;
pub use retry::{DEFAULT_OPERATION_TIMEOUT, RetryPolicy, Retrying};
pub use s3::{PartSettings, S3Config, S3ConfigError, S3Store};
pub use traced::{METRICS_TARGET, Traced};
pub use wrapper::StoreWrapper;

/// An opaque object version token.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct Version(pub String);

impl Display for Version {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Metadata of a stored object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectMeta {
    /// The key, relative to the store's root.
    pub key: ObjectKey,
    /// Size in bytes.
    pub size: u64,
    /// Current version.
    pub version: Version,
    /// Last modification, milliseconds since the Unix epoch.
    pub last_modified_ms: u64,
}

/// The result of a conditional read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GetOutcome {
    /// The object still has the `if_none_match` version.
    NotModified,
    /// The object's metadata and contents.
    Found(ObjectMeta, Vec<u8>),
}

/// How `put` treats an existing object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PutMode {
    /// Write unconditionally.
    Overwrite,
    /// Write only if nothing exists at the key.
    Create,
    /// Write only if the current version is this one.
    Update(Version),
}

/// One page of a listing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListPage {
    /// Objects in key order.
    pub items: Vec<ObjectMeta>,
    /// Where the next page starts, if there is one.
    pub next_start_after: Option<ObjectKey>,
}

/// What an interrupted write of the backend itself left behind, which no
/// listing shows (see [`ObjectStore::leftovers`]).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Leftover {
    /// Where it is, as the backend names it (a path below a directory
    /// store's root; the key of an S3 multipart upload).
    pub path: String,
    /// Its size in bytes.
    pub size: u64,
    /// Its last modification (an upload's start), milliseconds since the
    /// Unix epoch.
    pub modified_ms: u64,
    /// What it is.
    pub kind: LeftoverKind,
}

/// The kinds of [`Leftover`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum LeftoverKind {
    /// A directory store's temporary copy of an object.
    TemporaryFile,
    /// A multipart upload never completed or aborted (its parts are
    /// stored, and billed, until it is aborted).
    IncompleteUpload,
}

/// Which leftovers [`ObjectStore::leftovers`] reports, and whether it
/// deletes them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sweep {
    /// Only those last written longer ago than this (an age floor for
    /// shared directories whose locks do not reach every host).
    pub older_than: Duration,
    /// Delete them; otherwise only look, changing nothing.
    pub remove: bool,
}

/// Why a store operation failed, by meaning.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// No object at the key.
    #[error("object `{key}` not found")]
    NotFound {
        /// The key.
        key: String,
    },
    /// A `Create` lost: the object exists.
    #[error("object `{key}` already exists")]
    AlreadyExists {
        /// The key.
        key: String,
    },
    /// An `Update` or conditional delete lost: the version did not match.
    #[error("object `{key}` changed since it was read (precondition failed)")]
    PreconditionFailed {
        /// The key.
        key: String,
    },
    /// The backend cannot do this.
    #[error("{store} does not support {operation}")]
    NotSupported {
        /// The store's name.
        store: String,
        /// The operation.
        operation: String,
    },
    /// The key is not acceptable.
    #[error(transparent)]
    InvalidKey(#[from] InvalidKey),
    /// Another argument is not acceptable.
    #[error("invalid argument: {detail}")]
    InvalidArgument {
        /// What is wrong.
        detail: String,
    },
    /// The store's configuration is wrong (an endpoint that is not a URL, a
    /// missing `[datastore.s3]` table): nothing was sent.
    #[error("{store}: {detail}")]
    Misconfigured {
        /// The store's name.
        store: String,
        /// What is wrong and what to write.
        detail: String,
    },
    /// The store could not be given credentials (none of the sources had
    /// any), or refused them: every request fails until they are fixed.
    #[error("{store}: {detail}")]
    Credentials {
        /// The store's name.
        store: String,
        /// What happened, the sources tried, and what to set.
        detail: String,
    },
    /// The backend failed.
    #[error("{store}: {detail}")]
    Backend {
        /// The store's name.
        store: String,
        /// True when retrying later may succeed.
        retryable: bool,
        /// What went wrong.
        detail: String,
    },
}

/// The largest object [`ObjectStore::get`] reads whole, in bytes: its bytes
/// are held in memory (and an extension's copy in its own), so a larger one
/// is refused before any is read, and streams instead
/// ([`ObjectStore::get_into`], an extension's `download`). Index objects
/// and records are kilobytes; 256 MiB is also an extension's default memory.
pub const MAX_WHOLE_GET: u64 = 256 << 20;

/// The error of a whole-object read of `size` bytes, past [`MAX_WHOLE_GET`].
pub fn too_large_to_get(key: &ObjectKey, size: u64) -> StoreError {
    StoreError::InvalidArgument {
        detail: format!(
            "`{key}` is {size} bytes; a whole-object get reads at most {MAX_WHOLE_GET} (download it instead)"
        ),
    }
}

/// The implementor contract: a flat key space with conditional writes.
///
/// Keys are already validated and relative to the store's root.
#[async_trait::async_trait]
pub trait ObjectStore: Display + Send + Sync + 'static {
    /// Reads an object whole; `NotModified` when it still has `if_none_match`.
    /// An object larger than [`MAX_WHOLE_GET`] is refused
    /// ([`too_large_to_get`]) before its body is read.
    async fn get(
        &self,
        key: &ObjectKey,
        if_none_match: Option<&Version>,
    ) -> Result<GetOutcome, StoreError>;

    /// Reads an object's metadata.
    async fn head(&self, key: &ObjectKey) -> Result<ObjectMeta, StoreError>;

    /// Writes an object whole according to `mode`; returns its new version.
    async fn put(
        &self,
        key: &ObjectKey,
        data: Vec<u8>,
        mode: PutMode,
    ) -> Result<Version, StoreError>;

    /// Deletes an object; with `if_match`, only if it has that version.
    /// Deleting a missing object without `if_match` succeeds.
    async fn delete(&self, key: &ObjectKey, if_match: Option<&Version>) -> Result<(), StoreError>;

    /// Lists keys starting with `prefix` in key order, after `start_after`,
    /// at most `limit` (capped at 1000) per page.
    async fn list(
        &self,
        prefix: &str,
        start_after: Option<&ObjectKey>,
        limit: u32,
    ) -> Result<ListPage, StoreError>;

    /// Streams an object into `sink` (bulk downloads) and returns its
    /// metadata. The default reads the object whole; backends stream.
    ///
    /// Wrappers do not retry this (a half-written sink cannot be rewound):
    /// callers retry with a fresh sink.
    async fn get_into(
        &self,
        key: &ObjectKey,
        sink: &mut (dyn AsyncWrite + Unpin + Send),
    ) -> Result<ObjectMeta, StoreError> {
        match self.get(key, None).await? {
            GetOutcome::Found(meta, data) => {
                sink.write_all(&data)
                    .await
                    .map_err(|err| local_io(key, &err))?;
                sink.flush().await.map_err(|err| local_io(key, &err))?;
                Ok(meta)
            }
            GetOutcome::NotModified => unreachable!("no if-none-match was given"),
        }
    }

    /// Writes an object from `file`, read from its start (bulk uploads).
    /// The default reads the file whole; backends stream.
    async fn put_file(
        &self,
        key: &ObjectKey,
        file: std::fs::File,
        mode: PutMode,
    ) -> Result<Version, StoreError> {
        let read = tokio::task::spawn_blocking(move || {
            use std::io::{Read, Seek};
            let mut file = file;
            let mut data = Vec::new();
            file.seek(std::io::SeekFrom::Start(0))?;
            file.read_to_end(&mut data)?;
            Ok::<_, std::io::Error>(data)
        })
        .await
        .map_err(|err| local_io(key, &std::io::Error::other(err)))?;
        let data = read.map_err(|err| local_io(key, &err))?;
        self.put(key, data, mode).await
    }

    /// [`put_file`](Self::put_file), answering also the SHA-256 of what was
    /// sent (see [`UploadDigest`]). The default hashes the file beside the
    /// send, reading it at offsets (from the page cache the send fills);
    /// backends that can hash the bytes they send answer those instead.
    async fn put_file_hashed(
        &self,
        key: &ObjectKey,
        file: std::fs::File,
        mode: PutMode,
    ) -> Result<(Version, UploadDigest), StoreError> {
        digest::put_hashing_beside(key, file, |file| self.put_file(key, file, mode)).await
    }

    /// What interrupted writes of the backend left below the directory
    /// `prefix` names (up to its last `/`) and no listing shows: a directory
    /// store's temporary copy of an object whose writer was killed
    /// mid-write, as `sweep` selects them (and deletes them if it says
    /// so). One being written now is neither reported nor touched where
    /// the backend can tell (a directory store's locks); an S3 multipart
    /// upload cannot be told from a killed one but by its age. The default
    /// finds nothing.
    async fn leftovers(&self, prefix: &str, sweep: Sweep) -> Result<Vec<Leftover>, StoreError> {
        let _ = (prefix, sweep);
        Ok(Vec::new())
    }
    /// The credentials failure ([`StoreError::Credentials`]) a request to
    /// this store has met, if one has: every later request meets it too.
    /// The caller of an extension, which sees only a backend error in its
    /// place, reports this cause instead.
    fn credentials_failure(&self) -> Option<StoreError> {
        None
    }
}

/// Whether `mode` may write over an object whose current version is
/// `current` (`None`: no object): the one definition of the put modes'
/// preconditions, for backends that check them themselves.
///
/// # Errors
/// [`StoreError::AlreadyExists`] for a create over an object,
/// [`StoreError::PreconditionFailed`] for an update of another version.
pub fn mode_allows(
    mode: &PutMode,
    current: Option<&Version>,
    key: &ObjectKey,
) -> Result<(), StoreError> {
    match (mode, current) {
        (PutMode::Create, Some(_)) => Err(StoreError::AlreadyExists {
            key: key.to_string(),
        }),
        (PutMode::Update(expected), current) if current != Some(expected) => {
            Err(StoreError::PreconditionFailed {
                key: key.to_string(),
            })
        }
        _ => Ok(()),
    }
}

/// The most items one listing page returns.
pub const MAX_LIST_PAGE: u32 = 1000;

/// A shared store is a store, so wrappers compose over `Arc<dyn ObjectStore>`.
#[async_trait::async_trait]
impl ObjectStore for std::sync::Arc<dyn ObjectStore> {
    async fn get(
        &self,
        key: &ObjectKey,
        if_none_match: Option<&Version>,
    ) -> Result<GetOutcome, StoreError> {
        (**self).get(key, if_none_match).await
    }

    async fn head(&self, key: &ObjectKey) -> Result<ObjectMeta, StoreError> {
        (**self).head(key).await
    }

    async fn put(
        &self,
        key: &ObjectKey,
        data: Vec<u8>,
        mode: PutMode,
    ) -> Result<Version, StoreError> {
        (**self).put(key, data, mode).await
    }

    async fn delete(&self, key: &ObjectKey, if_match: Option<&Version>) -> Result<(), StoreError> {
        (**self).delete(key, if_match).await
    }

    async fn list(
        &self,
        prefix: &str,
        start_after: Option<&ObjectKey>,
        limit: u32,
    ) -> Result<ListPage, StoreError> {
        (**self).list(prefix, start_after, limit).await
    }

    async fn get_into(
        &self,
        key: &ObjectKey,
        sink: &mut (dyn AsyncWrite + Unpin + Send),
    ) -> Result<ObjectMeta, StoreError> {
        (**self).get_into(key, sink).await
    }

    async fn put_file(
        &self,
        key: &ObjectKey,
        file: std::fs::File,
        mode: PutMode,
    ) -> Result<Version, StoreError> {
        (**self).put_file(key, file, mode).await
    }

    async fn put_file_hashed(
        &self,
        key: &ObjectKey,
        file: std::fs::File,
        mode: PutMode,
    ) -> Result<(Version, UploadDigest), StoreError> {
        (**self).put_file_hashed(key, file, mode).await
    }

    async fn leftovers(&self, prefix: &str, sweep: Sweep) -> Result<Vec<Leftover>, StoreError> {
        (**self).leftovers(prefix, sweep).await
    }
    fn credentials_failure(&self) -> Option<StoreError> {
        (**self).credentials_failure()
    }
}

/// A failure of local I/O during a transfer (the cache side, not the store).
pub fn local_io(key: &ObjectKey, err: &std::io::Error) -> StoreError {
    StoreError::Backend {
        store: "local cache".to_owned(),
        retryable: false,
        detail: format!("`{key}`: {err}"),
    }
}
