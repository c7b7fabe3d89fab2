//! Opening the datastore root that `silt.toml` describes: the backend, then
//! the namespace scope, then the one retry layer.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use super::{DirStore, ObjectStore, Prefixed, RetryPolicy, Retrying, S3Store, StoreError};
use crate::config::{Backend, DatastoreConfig};

/// Opens the configured datastore root. `store_dir` is where a `dir`
/// backend lives (resolved by [`crate::locations::Locations`]).
///
/// # Errors
/// When the backend cannot be set up (directory not creatable, S3 endpoint
/// malformed or insecure).
pub fn open(
    config: &DatastoreConfig,
    store_dir: &Path,
) -> Result<Arc<dyn ObjectStore>, StoreError> {
    let backend: Arc<dyn ObjectStore> = match config.backend {
        Backend::Dir => Arc::new(DirStore::open(store_dir, config.durable)?),
        Backend::S3 => {
            let s3 = config.s3.as_ref().ok_or_else(|| StoreError::Backend {
                store: "s3".to_owned(),
                retryable: false,
                detail: "datastore.backend = \"s3\" needs a [datastore.s3] table".to_owned(),
            })?;
            let request_timeout = Duration::from_millis(config.request_timeout_ms);
            Arc::new(S3Store::with_timeout(s3, request_timeout).map_err(|err| {
                StoreError::Backend {
                    store: format!("s3://{}", s3.bucket),
                    retryable: false,
                    detail: err.to_string(),
                }
            })?)
        }
    };
    let scoped: Arc<dyn ObjectStore> = match &config.namespace {
        Some(namespace) => Arc::new(Prefixed::new(backend, namespace)?),
        None => backend,
    };
    let policy = RetryPolicy {
        budget: Duration::from_millis(config.operation_timeout_ms),
        ..RetryPolicy::default()
    };
    Ok(Arc::new(Retrying::new(scoped, policy)))
}
