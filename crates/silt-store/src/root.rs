//! Opening a datastore root: the backend, then the namespace scope, then
//! the one retry layer, then the trace of each operation.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use super::{
    AzureConfig, AzureStore, DirStore, GcsConfig, GcsStore, ObjectStore, Prefixed, RetryPolicy,
    Retrying, S3Config, S3Store, StoreError, Traced,
};

/// Which backend holds the datastore (`[datastore] backend`).
#[derive(Debug, Clone, Copy, Default, serde::Deserialize, serde::Serialize, PartialEq, Eq)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// A local or shared directory (the embedded default).
    #[default]
    Dir,
    /// AWS S3 or an S3-compatible store.
    S3,
    /// Google Cloud Storage.
    Gcs,
    /// Azure Blob Storage.
    Azure,
}

/// The store's part of `[datastore]`: everything [`open`] needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RootConfig<'a> {
    /// The backend.
    pub backend: Backend,
    /// Where a `dir` backend lives.
    pub dir: &'a Path,
    /// For `dir`: fsync writes before acknowledging them.
    pub durable: bool,
    /// For `s3`: the bucket and how to reach it.
    pub s3: Option<&'a S3Config>,
    /// For `gcs`: the bucket and how to reach it.
    pub gcs: Option<&'a GcsConfig>,
    /// For `azure`: the account, container and how to reach them.
    pub azure: Option<&'a AzureConfig>,
    /// A key prefix inside the datastore root, if any.
    pub namespace: Option<&'a str>,
    /// How long one S3 request may wait to connect, and then for the
    /// server's first answer.
    pub request_timeout: Duration,
    /// How long one operation may take with its retries.
    pub operation_timeout: Duration,
}

/// Opens the datastore root `config` describes.
///
/// # Errors
/// When the backend cannot be set up (directory not creatable, S3 endpoint
/// malformed or insecure, `s3` without its table).
pub fn open(config: &RootConfig<'_>) -> Result<Arc<dyn ObjectStore>, StoreError> {
    let backend: Arc<dyn ObjectStore> = match config.backend {
        Backend::Dir => Arc::new(DirStore::open(config.dir, config.durable)?),
        Backend::S3 => {
            let s3 = config.s3.ok_or_else(|| StoreError::Misconfigured {
                store: "s3".to_owned(),
                detail: "datastore.backend = \"s3\" needs a [datastore.s3] table (bucket, and endpoint for an S3-compatible store)".to_owned(),
            })?;
            Arc::new(
                S3Store::with_timeout(s3, config.request_timeout).map_err(|err| {
                    StoreError::Misconfigured {
                        store: format!("s3://{}", s3.bucket),
                        detail: format!(
                            "{err}; fix it in [datastore.s3] of silt.toml (or AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL)"
                        ),
                    }
                })?,
            )
        }
        Backend::Gcs => {
            let gcs = config.gcs.ok_or_else(|| StoreError::Misconfigured {
                store: "gcs".to_owned(),
                detail: "datastore.backend = \"gcs\" needs a [datastore.gcs] table (bucket)"
                    .to_owned(),
            })?;
            Arc::new(GcsStore::new(gcs, config.request_timeout)?)
        }
        Backend::Azure => {
            let azure = config.azure.ok_or_else(|| StoreError::Misconfigured {
                store: "azure".to_owned(),
                detail: "datastore.backend = \"azure\" needs a [datastore.azure] table (account, container)"
                    .to_owned(),
            })?;
            Arc::new(AzureStore::new(azure, config.request_timeout)?)
        }
    };
    let scoped: Arc<dyn ObjectStore> = match config.namespace {
        Some(namespace) => Arc::new(Prefixed::new(backend, namespace)?),
        None => backend,
    };
    let policy = RetryPolicy {
        budget: config.operation_timeout,
        ..RetryPolicy::default()
    };
    Ok(Arc::new(Traced::new(Retrying::new(scoped, policy))))
}
