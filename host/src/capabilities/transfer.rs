//! Bulk transfers between the store and the extension's cache directory,
//! run by the host concurrently so bulk data never crosses wasm memory.
//!
//! Cache paths are resolved through a `cap_std::fs::Dir` for the cache
//! directory, so no path (and no symlink the guest planted) can reach
//! outside it. Downloads land atomically: written to a temporary file in the
//! target's directory, then renamed over the target.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use cap_std::fs::Dir;
use tokio::sync::Semaphore;

use super::object_store::{guest_key, to_guest_error, to_guest_meta, to_host_mode};
use crate::runtime::bindings::silt::datastore::object_store::{
    DownloadItem, ObjectMeta, StoreError, UploadItem,
};
use crate::runtime::{HostState, sha256_hex};
use crate::store::{self, ObjectKey, ObjectStore};

/// Default number of transfers in flight.
pub const DEFAULT_CONCURRENCY: usize = 32;

/// Checks a cache path with the same rules as object keys (relative, no
/// `.`/`..`/empty segments, no control characters).
fn cache_path(path: &str) -> Result<ObjectKey, StoreError> {
    ObjectKey::new(path).map_err(|err| StoreError::InvalidPath(err.to_string()))
}

/// What a bulk transfer needs from the host state, taken out of it before
/// any await (the state itself is not `Sync`).
pub(crate) struct Transfer {
    store: Arc<dyn ObjectStore>,
    cache: Arc<Dir>,
    limit: Arc<Semaphore>,
    progress: Option<Arc<dyn crate::capabilities::progress::ProgressSink>>,
}

impl Transfer {
    /// Takes the granted store, cache directory and progress sink.
    pub(crate) fn new(state: &HostState) -> Result<Self, StoreError> {
        let store = state.granted_store()?;
        let cache = state.cache_dir.clone().ok_or_else(|| {
            StoreError::NotSupported("no cache directory is available to this call".to_owned())
        })?;
        let concurrency = state
            .grants
            .transfer_concurrency
            .unwrap_or(DEFAULT_CONCURRENCY)
            .max(1);
        Ok(Self {
            store,
            cache,
            limit: Arc::new(Semaphore::new(concurrency)),
            progress: state.grants.progress.clone(),
        })
    }
}

/// Runs `one` for every item with bounded concurrency, as one progress
/// phase called `label`; results keep item order.
async fn run_all<I, R, F, Fut>(
    transfer: &Transfer,
    label: &str,
    items: Vec<I>,
    one: F,
) -> Vec<Result<R, StoreError>>
where
    I: Send + 'static,
    R: Send + 'static,
    F: Fn(Arc<dyn ObjectStore>, Arc<Dir>, I) -> Fut,
    Fut: Future<Output = Result<R, StoreError>> + Send + 'static,
{
    if let Some(progress) = &transfer.progress {
        progress.begin(label, Some(items.len() as u64), None);
    }
    let mut tasks = tokio::task::JoinSet::new();
    let count = items.len();
    for (index, item) in items.into_iter().enumerate() {
        let limit = transfer.limit.clone();
        let work = one(transfer.store.clone(), transfer.cache.clone(), item);
        tasks.spawn(async move {
            let _permit = limit.acquire_owned().await.expect("semaphore never closes");
            (index, work.await)
        });
    }
    let mut results: Vec<Option<Result<R, StoreError>>> = (0..count).map(|_| None).collect();
    while let Some(joined) = tasks.join_next().await {
        if let Ok((index, result)) = joined {
            results[index] = Some(result);
        }
    }
    if let Some(progress) = &transfer.progress {
        progress.finish();
    }
    results
        .into_iter()
        .map(|result| {
            result
                .unwrap_or_else(|| Err(StoreError::NotSupported("transfer task failed".to_owned())))
        })
        .collect()
}

/// `object-store.download`.
pub(crate) async fn download(
    transfer: Result<Transfer, StoreError>,
    items: Vec<DownloadItem>,
) -> Vec<Result<ObjectMeta, StoreError>> {
    let transfer = match transfer {
        Ok(transfer) => transfer,
        Err(err) => return items.iter().map(|_| Err(err.clone())).collect(),
    };
    let progress = transfer.progress.clone();
    run_all(&transfer, "download", items, |store, cache, item| {
        let progress = progress.clone();
        async move {
            let meta = download_one(store, cache, item).await?;
            if let Some(progress) = progress {
                progress.advance(1, meta.size);
            }
            Ok(meta)
        }
    })
    .await
}

async fn download_one(
    store: Arc<dyn ObjectStore>,
    cache: Arc<Dir>,
    item: DownloadItem,
) -> Result<ObjectMeta, StoreError> {
    let key = guest_key(&item.key)?;
    let target = cache_path(&item.cache_path)?;
    let (meta, data) = match store.get(&key, None).await.map_err(to_guest_error)? {
        store::GetOutcome::Found(meta, data) => (meta, data),
        store::GetOutcome::NotModified => unreachable!("no if-none-match was given"),
    };
    if let Some(expected) = &item.expected_version
        && *expected != meta.version.0
    {
        return Err(StoreError::PreconditionFailed);
    }
    if let Some(expected) = &item.sha256 {
        let actual = sha256_hex(&data);
        if !actual.eq_ignore_ascii_case(expected) {
            return Err(StoreError::ChecksumMismatch(format!(
                "{key}: expected sha256 {expected}, got {actual}"
            )));
        }
    }
    tokio::task::spawn_blocking(move || write_atomically(&cache, target.as_str(), &data))
        .await
        .map_err(|err| StoreError::InvalidPath(format!("write task failed: {err}")))?
        .map_err(|err| {
            StoreError::InvalidPath(format!(
                "cannot write cache file {}: {err}",
                item.cache_path
            ))
        })?;
    Ok(to_guest_meta(meta))
}

/// Writes `data` to `path` inside `cache` so readers see the old file or
/// the whole new one.
fn write_atomically(cache: &Dir, path: &str, data: &[u8]) -> std::io::Result<()> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let (parent, name) = match path.rsplit_once('/') {
        Some((parent, name)) => (Some(parent), name),
        None => (None, path),
    };
    if let Some(parent) = parent {
        cache.create_dir_all(parent)?;
    }
    let temp_name = format!(
        ".{name}.silt-tmp.{}.{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    );
    let temp = match parent {
        Some(parent) => format!("{parent}/{temp_name}"),
        None => temp_name,
    };
    let result = cache
        .write(&temp, data)
        .and_then(|()| cache.rename(&temp, cache, path));
    if result.is_err() {
        let _ = cache.remove_file(&temp);
    }
    result
}

/// `object-store.upload`.
pub(crate) async fn upload(
    transfer: Result<Transfer, StoreError>,
    items: Vec<UploadItem>,
) -> Vec<Result<String, StoreError>> {
    let transfer = match transfer {
        Ok(transfer) => transfer,
        Err(err) => return items.iter().map(|_| Err(err.clone())).collect(),
    };
    let progress = transfer.progress.clone();
    run_all(&transfer, "upload", items, |store, cache, item| {
        let progress = progress.clone();
        async move {
            let key = guest_key(&item.key)?;
            let source = cache_path(&item.cache_path)?;
            let data = tokio::task::spawn_blocking(move || cache.read(source.as_str()))
                .await
                .map_err(|err| StoreError::InvalidPath(format!("read task failed: {err}")))?
                .map_err(|err| {
                    StoreError::InvalidPath(format!(
                        "cannot read cache file {}: {err}",
                        item.cache_path
                    ))
                })?;
            let size = data.len() as u64;
            let version = store
                .put(&key, data, to_host_mode(item.mode))
                .await
                .map_err(to_guest_error)?;
            if let Some(progress) = progress {
                progress.advance(1, size);
            }
            Ok(version.0)
        }
    })
    .await
}
