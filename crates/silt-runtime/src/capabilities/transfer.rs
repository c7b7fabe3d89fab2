//! Bulk transfers between the store and the extension's cache directory,
//! run by the host concurrently so bulk data never crosses wasm memory.
//!
//! Cache paths are resolved through a [`Beneath`] for the cache directory,
//! so no path reaches outside it and no symlink the guest (or an escaped
//! worker) planted is followed, not even one pointing elsewhere inside. Objects stream between the store and the files: a transfer
//! never holds a whole object in memory. Downloads land atomically: streamed
//! into a temporary file in the target's directory (hashed on the way for
//! the optional sha256 check), then renamed over the target; a failed or
//! mismatched download leaves nothing behind.

use std::sync::Arc;

use sha2::{Digest, Sha256};
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::Semaphore;
use tracing::Instrument as _;

use super::object_store::{guest_key, to_guest_error, to_guest_meta, to_host_mode};
use crate::beneath::Beneath;
use crate::bindings::silt::datastore::object_store::{
    DownloadItem, ObjectMeta, StoreError, UploadItem,
};
use crate::hex;
use crate::store::{self, ObjectKey, ObjectStore, RetryPolicy};

/// Default number of transfers in flight.
pub const DEFAULT_CONCURRENCY: usize = 32;

/// Checks a cache path with the same rules as object keys (relative, no
/// `.`/`..`/empty segments, no control characters).
fn cache_path(path: &str) -> Result<ObjectKey, StoreError> {
    ObjectKey::new(path).map_err(|err| StoreError::InvalidPath(err.to_string()))
}

/// What a bulk transfer needs: the store, the cache directory, a bound on
/// transfers in flight and where progress goes, all owned so that its
/// concurrent tasks borrow nothing.
pub struct Transfer {
    store: Arc<dyn ObjectStore>,
    cache: Arc<Beneath>,
    limit: Arc<Semaphore>,
    progress: Option<Arc<dyn super::ProgressSink>>,
}

impl Transfer {
    /// A transfer between `store` and the directory `cache` outside any
    /// extension call (benchmarks, host-side hydration).
    ///
    /// # Errors
    /// When the cache directory cannot be opened.
    pub fn between(
        store: Arc<dyn ObjectStore>,
        cache: &std::path::Path,
        concurrency: usize,
        progress: Option<Arc<dyn super::ProgressSink>>,
    ) -> Result<Self, StoreError> {
        let cache = Beneath::open(cache).map_err(|err| StoreError::InvalidPath(err.to_string()))?;
        Ok(Self {
            store,
            cache: Arc::new(cache),
            limit: Arc::new(Semaphore::new(concurrency.max(1))),
            progress,
        })
    }

    /// Takes the granted store, cache directory and progress sink.
    pub(crate) fn new(local: &super::LocalStore) -> Result<Self, StoreError> {
        let store = local.granted_store()?;
        let cache = local.cache.clone().ok_or_else(|| {
            StoreError::NotSupported("no cache directory is available to this call".to_owned())
        })?;
        Ok(Self {
            store,
            cache,
            limit: Arc::new(Semaphore::new(local.transfer_concurrency)),
            progress: local.progress.clone(),
        })
    }
}

/// Runs `one` for every item with bounded concurrency, as one progress
/// phase called `label`; `one` answers an item's result and its bytes,
/// which advance the progress. Results keep item order; without a
/// transfer (no store or cache granted) every item gets its error.
async fn run_all<I, R, F, Fut>(
    transfer: Result<Transfer, StoreError>,
    label: &str,
    items: Vec<I>,
    one: F,
) -> Vec<Result<R, StoreError>>
where
    I: Send + 'static,
    R: Send + 'static,
    F: Fn(Arc<dyn ObjectStore>, Arc<Beneath>, I) -> Fut,
    Fut: Future<Output = Result<(R, u64), StoreError>> + Send + 'static,
{
    let transfer = match transfer {
        Ok(transfer) => transfer,
        Err(err) => return items.iter().map(|_| Err(err.clone())).collect(),
    };
    if let Some(progress) = &transfer.progress {
        progress.begin(label, Some(items.len() as u64), None);
    }
    // One span for the transfer; each file's store request is its child
    // (the tasks run in it).
    let span = tracing::info_span!(
        "transfer",
        silt.transfer.direction = label,
        silt.transfer.files = items.len(),
        silt.transfer.bytes = tracing::field::Empty,
        silt.transfer.failed = tracing::field::Empty,
    );
    let moved = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    let count = items.len();
    for (index, item) in items.into_iter().enumerate() {
        let limit = transfer.limit.clone();
        let work = one(transfer.store.clone(), transfer.cache.clone(), item);
        let progress = transfer.progress.clone();
        let moved = moved.clone();
        tasks.spawn(
            async move {
                let _permit = limit.acquire_owned().await.expect("semaphore never closes");
                let result = work.await.map(|(value, bytes)| {
                    moved.fetch_add(bytes, std::sync::atomic::Ordering::Relaxed);
                    if let Some(progress) = progress {
                        progress.advance(1, bytes);
                    }
                    value
                });
                (index, result)
            }
            .instrument(span.clone()),
        );
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
    span.record(
        "silt.transfer.bytes",
        moved.load(std::sync::atomic::Ordering::Relaxed),
    );
    let failed = results
        .iter()
        .filter(|result| !matches!(result, Some(Ok(_))))
        .count();
    span.record("silt.transfer.failed", failed);
    results
        .into_iter()
        .map(|result| {
            result
                .unwrap_or_else(|| Err(StoreError::NotSupported("transfer task failed".to_owned())))
        })
        .collect()
}

/// `object-store.download`.
pub async fn download(
    transfer: Result<Transfer, StoreError>,
    items: Vec<DownloadItem>,
) -> Vec<Result<ObjectMeta, StoreError>> {
    run_all(
        transfer,
        "download",
        items,
        |store, cache, item| async move {
            let meta = download_one(store, cache, item).await?;
            let size = meta.size;
            Ok((meta, size))
        },
    )
    .await
}

async fn download_one(
    store: Arc<dyn ObjectStore>,
    cache: Arc<Beneath>,
    item: DownloadItem,
) -> Result<ObjectMeta, StoreError> {
    let key = guest_key(&item.key)?;
    let target = cache_path(&item.cache_path)?;
    // Each attempt writes a fresh temporary file, so a half-written one is
    // never resumed; retryable store failures go round again.
    let outcome = RetryPolicy::default()
        .run("download", || {
            download_attempt(&*store, &cache, &key, target.as_str(), &item)
        })
        .await;
    match outcome {
        Ok(Ok(meta)) => Ok(to_guest_meta(meta)),
        Ok(Err(err)) => Err(err),
        Err(err) => Err(to_guest_error(err)),
    }
}

/// One attempt: stream into a fresh temporary file beside the target,
/// check version and checksum, then rename over the target. The temporary
/// file is removed on every failure, so nothing partial is ever visible.
async fn download_attempt(
    store: &dyn ObjectStore,
    cache: &Arc<Beneath>,
    key: &ObjectKey,
    target: &str,
    item: &DownloadItem,
) -> Result<Result<store::ObjectMeta, StoreError>, store::StoreError> {
    let temp = cache
        .temp_beside(std::path::Path::new(target))
        .map_err(|err| store::local_io(key, &err))?;
    let file = {
        let (cache, temp) = (cache.clone(), temp.clone());
        tokio::task::spawn_blocking(move || create_temp(&cache, &temp))
            .await
            .map_err(|err| store::local_io(key, &std::io::Error::other(err)))?
            .map_err(|err| store::local_io(key, &err))?
    };
    let mut sink = HashingWriter::new(tokio::fs::File::from_std(file));
    let mut outcome = store.get_into(key, &mut sink).await;
    // tokio's File writes in the background: make sure every byte is in
    // the file before it is renamed into view.
    if outcome.is_ok()
        && let Err(err) = sink.flush().await
    {
        outcome = Err(store::local_io(key, &err));
    }
    let remove_temp = || {
        let _ = cache.remove_file(&temp);
    };
    let meta = match outcome {
        Ok(meta) => meta,
        Err(err) => {
            remove_temp();
            return Err(err);
        }
    };
    if let Some(expected) = &item.expected_version
        && *expected != meta.version.0
    {
        remove_temp();
        return Ok(Err(StoreError::PreconditionFailed));
    }
    let actual = sink.finish();
    if let Some(expected) = &item.sha256
        && !actual.eq_ignore_ascii_case(expected)
    {
        remove_temp();
        return Ok(Err(StoreError::ChecksumMismatch(format!(
            "{key}: expected sha256 {expected}, got {actual}"
        ))));
    }
    if let Err(err) = cache.rename(&temp, target) {
        remove_temp();
        return Ok(Err(StoreError::InvalidPath(format!(
            "cannot write cache file {target}: {err}"
        ))));
    }
    Ok(Ok(meta))
}

/// Creates the temporary file (and the target's parent directories).
fn create_temp(cache: &Beneath, temp: &std::path::Path) -> std::io::Result<std::fs::File> {
    cache.create_new(temp)
}

/// An `AsyncWrite` that hashes what passes through it.
struct HashingWriter<W> {
    inner: W,
    digest: Sha256,
}

impl<W> HashingWriter<W> {
    fn new(inner: W) -> Self {
        Self {
            inner,
            digest: Sha256::new(),
        }
    }

    fn finish(self) -> String {
        hex(&self.digest.finalize())
    }
}

impl<W: AsyncWrite + Unpin> AsyncWrite for HashingWriter<W> {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        let this = &mut *self;
        let poll = std::pin::Pin::new(&mut this.inner).poll_write(cx, buf);
        if let std::task::Poll::Ready(Ok(written)) = &poll {
            this.digest.update(&buf[..*written]);
        }
        poll
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// `object-store.upload`.
pub async fn upload(
    transfer: Result<Transfer, StoreError>,
    items: Vec<UploadItem>,
) -> Vec<Result<String, StoreError>> {
    run_all(transfer, "upload", items, |store, cache, item| async move {
        let key = guest_key(&item.key)?;
        let source = cache_path(&item.cache_path)?;
        let opened = tokio::task::spawn_blocking(move || {
            let file = cache.open_read(source.as_str())?;
            let size = file.metadata()?.len();
            Ok::<_, std::io::Error>((file, size))
        })
        .await
        .map_err(|err| StoreError::InvalidPath(format!("read task failed: {err}")))?;
        let (file, size) = opened.map_err(|err| {
            StoreError::InvalidPath(format!("cannot read cache file {}: {err}", item.cache_path))
        })?;
        let version = store
            .put_file(&key, file, to_host_mode(item.mode))
            .await
            .map_err(to_guest_error)?;
        Ok((version.0, size))
    })
    .await
}
