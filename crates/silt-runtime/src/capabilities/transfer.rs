//! Bulk transfers between the store and the extension's cache directory,
//! run by the host concurrently so bulk data never crosses wasm memory.
//!
//! Cache paths are resolved through a [`Beneath`] for the cache directory,
//! so no path reaches outside it and no symlink the guest (or an escaped
//! worker) planted is followed, not even one pointing elsewhere inside.
//! Objects stream between the store and the files: a transfer never holds
//! a whole object in memory. Downloads land atomically: streamed into a
//! temporary file in the target's directory (hashed on the way for the
//! optional sha256 check), then renamed over the target; a failed,
//! mismatched or cancelled download leaves nothing behind.

use std::sync::Arc;

use sha2::{Digest, Sha256};
use tokio::io::AsyncWrite;
use tracing::Instrument as _;

use super::delivery::{Delivered, Destination};
use super::guest_view::{guest_key, to_guest_error, to_guest_meta, to_host_mode};
use super::landing::{CACHE_FILE_MODE, Landing, TempFile, USER_FILE_MODE};
use super::sending::{FileShape, GivenFile, Named, Sendings, SentDigest, StagedFile};
use crate::beneath::Beneath;
use crate::bindings::silt::datastore::object_store::{
    DownloadItem, Landed, ObjectMeta, StoreError, UploadItem, Uploaded,
};
use crate::hex;
use crate::store::{self, ObjectKey, ObjectStore, RetryPolicy, UploadDigest};

/// Default number of transfers in flight.
pub const DEFAULT_CONCURRENCY: usize = 32;

/// Checks a cache path with the same rules as object keys (relative, no
/// `.`/`..`/empty segments, no control characters).
fn cache_path(path: &str) -> Result<ObjectKey, StoreError> {
    ObjectKey::new(path).map_err(|err| StoreError::InvalidPath(err.to_string()))
}

/// A cache file the host could not use, as the guest learns it: the path
/// it gave and what went wrong, never where the cache is on this machine
/// (an I/O error's text names the host's absolute path: logged, not sent).
/// A link in the way is `invalid-path` like any unusable cache path.
fn local_failure(path: &str, err: &std::io::Error) -> StoreError {
    tracing::debug!("cache file {path}: {err}");
    let what = if crate::beneath::LinkRefused::in_io(err).is_some() {
        "a symbolic link is in the way, and the host never follows one".to_owned()
    } else {
        err.kind().to_string()
    };
    StoreError::InvalidPath(format!("cache file `{path}`: {what}"))
}

/// What a bulk transfer needs: the store, the cache directory, a bound on
/// transfers in flight and where progress goes, all owned so that its
/// concurrent tasks borrow nothing.
pub struct Transfer {
    store: Arc<dyn ObjectStore>,
    cache: Arc<Beneath>,
    /// Transfers in flight at most (`run_bounded` runs at least one).
    concurrency: usize,
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
            concurrency,
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
            concurrency: local.transfer_concurrency,
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
    // (each file's future runs in it).
    let span = tracing::info_span!(
        "transfer",
        silt.transfer.direction = label,
        silt.transfer.files = items.len(),
        silt.transfer.bytes = tracing::field::Empty,
        silt.transfer.failed = tracing::field::Empty,
    );
    let moved = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let work: Vec<_> = items
        .into_iter()
        .map(|item| {
            let work = one(transfer.store.clone(), transfer.cache.clone(), item);
            let file = transfer.progress.clone().map(|sink| {
                Arc::new(FileProgress {
                    sink,
                    moved: std::sync::atomic::AtomicU64::new(0),
                    expected: std::sync::atomic::AtomicBool::new(false),
                })
            });
            let moved = moved.clone();
            async move {
                let outcome = match &file {
                    Some(file) => store::progress::reporting(file.clone(), work).await,
                    None => work.await,
                };
                outcome.map(|(value, bytes)| {
                    moved.fetch_add(bytes, std::sync::atomic::Ordering::Relaxed);
                    if let Some(file) = file {
                        file.done(bytes);
                    }
                    value
                })
            }
            .instrument(span.clone())
        })
        .collect();
    let results = super::in_flight::run_bounded(work, transfer.concurrency).await;
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
            result.unwrap_or_else(|| {
                Err(StoreError::NotSupported(
                    "the host's transfer of this file ended without an answer (a bug in silt, or the \
                     host shutting down): whether it moved is not known; retry the call"
                        .to_owned(),
                ))
            })
        })
        .collect()
}

/// One file's byte progress, into the transfer's sink as it moves.
struct FileProgress {
    sink: Arc<dyn super::ProgressSink>,
    /// Bytes reported so far.
    moved: std::sync::atomic::AtomicU64,
    /// Whether the file's size was reported (a retried download reports
    /// it again: counted once).
    expected: std::sync::atomic::AtomicBool,
}

impl FileProgress {
    /// The file is done with `bytes`: what was not reported as it moved
    /// (a backend that moves a file in one piece), now.
    fn done(&self, bytes: u64) {
        use std::sync::atomic::Ordering::Relaxed;
        if !self.expected.swap(true, Relaxed) {
            self.sink.expect(bytes);
        }
        let reported = self.moved.load(Relaxed);
        self.sink.advance(1, bytes.saturating_sub(reported));
    }
}

impl store::progress::ByteProgress for FileProgress {
    fn expect(&self, bytes: u64) {
        if !self
            .expected
            .swap(true, std::sync::atomic::Ordering::Relaxed)
        {
            self.sink.expect(bytes);
        }
    }

    fn moved(&self, bytes: u64) {
        self.moved
            .fetch_add(bytes, std::sync::atomic::Ordering::Relaxed);
        self.sink.advance(0, bytes);
    }
}

/// `object-store.download`: `download-landed`, without the times.
pub async fn download(
    transfer: Result<Transfer, StoreError>,
    items: Vec<DownloadItem>,
) -> Vec<Result<ObjectMeta, StoreError>> {
    download_landed(transfer, items)
        .await
        .into_iter()
        .map(|result| result.map(|landed| landed.meta))
        .collect()
}

/// `object-store.download-landed`: each object streamed into its cache
/// file, answered with its metadata and the landed file's modification
/// time (an `fstat` of the open file, no hand-off: as cheap to take as to
/// skip).
pub async fn download_landed(
    transfer: Result<Transfer, StoreError>,
    items: Vec<DownloadItem>,
) -> Vec<Result<Landed, StoreError>> {
    run_all(
        transfer,
        "download",
        items,
        |store, cache, item| async move {
            let landed = download_one(store, cache, item).await?;
            let size = landed.meta.size;
            Ok((landed, size))
        },
    )
    .await
}

async fn download_one(
    store: Arc<dyn ObjectStore>,
    cache: Arc<Beneath>,
    item: DownloadItem,
) -> Result<Landed, StoreError> {
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
        Ok(Ok((meta, mtime_ns))) => Ok(Landed {
            meta: to_guest_meta(meta),
            mtime_ns,
        }),
        Ok(Err(err)) => Err(err),
        Err(err) => Err(to_guest_error(err)),
    }
}

/// One attempt: stream into a fresh temporary file beside the target,
/// check version and checksum, then rename over the target. The temporary
/// file is removed however the attempt ends without the rename — a failure
/// or the attempt dropped mid-way — so nothing partial is ever visible and
/// nothing is left behind.
async fn download_attempt(
    store: &dyn ObjectStore,
    cache: &Arc<Beneath>,
    key: &ObjectKey,
    target: &str,
    item: &DownloadItem,
) -> Result<Result<(store::ObjectMeta, u64), StoreError>, store::StoreError> {
    let landed = match land_attempt(store, cache, key, target, item, CACHE_FILE_MODE).await? {
        Ok(landed) => landed,
        Err(err) => return Ok(Err(err)),
    };
    // From the open file, before the rename: the time of what landed, not
    // of whatever the path holds by the time the caller looks.
    let mtime_ns = match landed.temp.modified_ns() {
        Ok(mtime_ns) => mtime_ns,
        Err(err) => return Ok(Err(local_failure(target, &err))),
    };
    if let Err(err) = landed.temp.rename_to(target) {
        return Ok(Err(local_failure(target, &err)));
    }
    Ok(Ok((landed.meta, mtime_ns)))
}

/// A complete, checked file beside its target, not yet renamed.
struct LandedFile {
    meta: store::ObjectMeta,
    temp: TempFile,
    /// Lowercase hex sha256 of what was written.
    sha256: String,
    /// Bytes written.
    size: u64,
}

/// Streams `key` into a fresh temporary file beside `target` (beneath
/// `dir`, with the permission bits `mode`) and checks its version and
/// checksum against `item`; the file is removed unless the answer keeps it.
async fn land_attempt(
    store: &dyn ObjectStore,
    dir: &Arc<Beneath>,
    key: &ObjectKey,
    target: &str,
    item: &DownloadItem,
    mode: u32,
) -> Result<Result<LandedFile, StoreError>, store::StoreError> {
    let temp = match dir.temp_beside(std::path::Path::new(target)) {
        Ok(temp) => temp,
        Err(err) => return Ok(Err(local_failure(target, &err))),
    };
    let mut sink = HashingWriter::new(Landing::new(dir.clone(), temp, mode));
    let meta = match store.get_into(key, &mut sink).await {
        Ok(meta) => meta,
        // The file could not be written: a local failure (not retried),
        // not the store's, whatever its backend made of it.
        Err(err) => match sink.inner.take_failure() {
            Some(local) => return Ok(Err(local_failure(target, &local))),
            None => return Err(err),
        },
    };
    let (landing, actual, size) = sink.finish();
    // Every byte is in the file before it is renamed into view.
    let temp = match landing.finish().await {
        Ok(temp) => temp,
        Err(err) => return Ok(Err(local_failure(target, &err))),
    };
    if let Some(expected) = &item.expected_version
        && *expected != meta.version.0
    {
        return Ok(Err(StoreError::PreconditionFailed));
    }
    if let Some(expected) = &item.sha256
        && !actual.eq_ignore_ascii_case(expected)
    {
        return Ok(Err(StoreError::ChecksumMismatch(format!(
            "{key}: expected sha256 {expected}, got {actual}"
        ))));
    }
    Ok(Ok(LandedFile {
        meta,
        temp,
        sha256: actual,
        size,
    }))
}

/// `object-store.deliver`: `item`'s object streamed into a temporary file
/// beside `destination` (retried like a download), checked like one, and
/// kept there for the operation that named the delivery.
pub(super) async fn deliver(
    transfer: Result<Transfer, StoreError>,
    destination: &Destination,
    item: DownloadItem,
) -> Result<Delivered, StoreError> {
    let transfer = transfer.map(|transfer| Transfer {
        cache: destination.dir.clone(),
        ..transfer
    });
    let name = destination.name.clone();
    let shown = item.cache_path.clone();
    let results = run_all(transfer, "download", vec![item], move |store, dir, item| {
        let name = name.clone();
        let shown = shown.clone();
        async move {
            let key = guest_key(&item.key)?;
            let outcome = RetryPolicy::default()
                .run("download", || {
                    land_attempt(&*store, &dir, &key, &name, &item, USER_FILE_MODE)
                })
                .await;
            let landed = match outcome {
                Ok(Ok(landed)) => landed,
                // The destination could not be written: the guest learns
                // that, not where it is. Said here: the extension then
                // downloads into its cache, and the copy from there is
                // likely to fail the same way.
                Ok(Err(StoreError::InvalidPath(why))) => {
                    tracing::warn!("cannot write beside {}: {why}", dir.join(&name).display());
                    return Err(StoreError::InvalidPath(format!(
                        "delivery `{shown}`: the destination could not be written"
                    )));
                }
                Ok(Err(err)) => return Err(err),
                Err(err) => return Err(to_guest_error(err)),
            };
            let size = landed.size;
            let delivered = Delivered::new(landed.meta, landed.sha256, size, landed.temp, name);
            Ok((delivered, size))
        }
    })
    .await;
    results
        .into_iter()
        .next()
        .unwrap_or_else(|| Err(StoreError::InvalidArgument("nothing to deliver".to_owned())))
}

/// An `AsyncWrite` that hashes and counts what passes through it.
struct HashingWriter<W> {
    inner: W,
    digest: Sha256,
    size: u64,
}

impl<W> HashingWriter<W> {
    fn new(inner: W) -> Self {
        Self {
            inner,
            digest: Sha256::new(),
            size: 0,
        }
    }

    /// The inner writer, the hex sha256 of what passed and its length.
    fn finish(self) -> (W, String, u64) {
        (self.inner, hex(&self.digest.finalize()), self.size)
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
            this.size += *written as u64;
            store::progress::moved(*written as u64);
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
        let (key, file, size) = open_upload(&cache, &item).await?;
        store::progress::expect(size);
        let version = store
            .put_file(&key, file, to_host_mode(item.mode))
            .await
            .map_err(to_guest_error)?;
        Ok((version.0, size))
    })
    .await
}

/// `object-store.upload-hashed`: `upload`, and the sha256 of what was
/// sent. A store that hashes the bytes as it sends them (a directory
/// store's copy, an S3 multipart upload's parts) answers that digest, tied
/// to them by construction. Others hash the file in a pass of their own
/// (beside the send, from the page cache it fills: GCS, Azure; before it,
/// one PUT to S3, whose header carries the digest), which is tied to the
/// sent bytes by the file's shape (inode,
/// size, modification and change times) kept from before the upload to
/// after it, as far as the file's times can tie it: a rewrite of the same
/// size within one tick of a coarse clock, or through a shared mapping
/// before writeback, leaves them alone. Either way, a file whose shape
/// changed is refused.
///
/// An item whose cache path names one of `sendings` is read as the
/// operation named it (see [`super::sending`]): a staged copy still the
/// file the host staged is not hashed again (the answer is the hash the
/// host took while staging it); a file given is sent from where the user
/// keeps it, never from the cache.
pub async fn upload_hashed(
    transfer: Result<Transfer, StoreError>,
    sendings: Arc<Sendings>,
    items: Vec<UploadItem>,
) -> Vec<Result<Uploaded, StoreError>> {
    run_all(transfer, "upload", items, move |store, cache, item| {
        let named = sendings.named(&item.cache_path);
        async move {
            match named {
                Some(Named::Given(given)) => upload_given(store, item, &given).await,
                Some(Named::Staged(staged)) => {
                    upload_hashing(store, &cache, item, Some(staged)).await
                }
                None => upload_hashing(store, &cache, item, None).await,
            }
        }
    })
    .await
}

/// Sends the file a `put` was given (see [`super::sending`]) from its
/// start, hashed as the store sends it where it can (else in a pass of its
/// own), and records the digest for the operation. Refused with
/// `invalid-path`, nothing recorded, when the file's shape moved from when
/// it was given to the end of the send: the user wrote it meanwhile.
async fn upload_given(
    store: Arc<dyn ObjectStore>,
    item: UploadItem,
    given: &GivenFile,
) -> Result<(Uploaded, u64), StoreError> {
    use std::io::Seek as _;
    let key = guest_key(&item.key)?;
    let (file, given_shape) = given.take_turn().await;
    // The guest is not told where the file is.
    let changed = || {
        given.saw_change();
        StoreError::InvalidPath(
            "the file given to the put changed while it was sent: put it again once it is written"
                .to_owned(),
        )
    };
    let local = |err: std::io::Error| local_failure(&item.cache_path, &err);
    if FileShape::of(&file).map_err(local)? != given_shape {
        return Err(changed());
    }
    let mut reader = file.try_clone().map_err(local)?;
    reader.seek(std::io::SeekFrom::Start(0)).map_err(local)?;
    let size = given_shape.size();
    store::progress::expect(size);
    let sent = store
        .put_file_hashed(&key, reader, to_host_mode(item.mode))
        .await;
    let (version, digest) = sent.map_err(to_guest_error)?;
    let (sha256, len) = match digest {
        UploadDigest::OfSent { sha256, len } => {
            tracing::debug!("{key}: sent from the file given, hashed as it was sent");
            (hex(&sha256), len)
        }
        UploadDigest::OfFileBeside { sha256, len } => {
            tracing::debug!("{key}: sent from the file given, hashed beside the send");
            (hex(&sha256), len)
        }
    };
    if FileShape::of(&file).map_err(local)? != given_shape || len != size {
        return Err(changed());
    }
    given.record(SentDigest {
        sha256: sha256.clone(),
        size,
    });
    let uploaded = Uploaded {
        version: version.0,
        sha256,
        size,
    };
    Ok((uploaded, size))
}

/// Uploads `item`'s cache file, hashing it as it goes unless it is still
/// `staged` (see [`upload_hashed`]).
async fn upload_hashing(
    store: Arc<dyn ObjectStore>,
    cache: &Arc<Beneath>,
    item: UploadItem,
    staged: Option<StagedFile>,
) -> Result<(Uploaded, u64), StoreError> {
    let (key, file, size) = open_upload(cache, &item).await?;
    let before = FileShape::of(&file).map_err(|err| local_failure(&item.cache_path, &err))?;
    let hashed_already = staged.filter(|staged| staged.shape == before);
    let reader = file
        .try_clone()
        .map_err(|err| local_failure(&item.cache_path, &err))?;
    store::progress::expect(size);
    let mode = to_host_mode(item.mode);
    let (version, sha256, hashed_size) = match hashed_already {
        Some(staged) => {
            tracing::debug!("{key}: the staged file, hashed as the host staged it");
            let version = store.put_file(&key, file, mode).await;
            (version.map_err(to_guest_error)?, staged.sha256, size)
        }
        None => {
            let sent = store.put_file_hashed(&key, file, mode).await;
            let (version, digest) = sent.map_err(to_guest_error)?;
            match digest {
                UploadDigest::OfSent { sha256, len } => {
                    tracing::debug!("{key}: hashed by the store as it was sent");
                    (version, hex(&sha256), len)
                }
                UploadDigest::OfFileBeside { sha256, len } => (version, hex(&sha256), len),
            }
        }
    };
    // Whichever way it was hashed, a file written during its upload is
    // refused: the extension's bug, which its index would otherwise record.
    let after = FileShape::of(&reader).map_err(|err| local_failure(&item.cache_path, &err))?;
    if after != before || hashed_size != size {
        return Err(StoreError::InvalidPath(format!(
            "cache file `{}` changed while it was uploaded: write it before uploading it",
            item.cache_path
        )));
    }
    let uploaded = Uploaded {
        version: version.0,
        sha256,
        size,
    };
    Ok((uploaded, size))
}

/// Checks an upload item's key and opens its cache file (never through a
/// link); answers the key, the file and its size.
async fn open_upload(
    cache: &Arc<Beneath>,
    item: &UploadItem,
) -> Result<(ObjectKey, std::fs::File, u64), StoreError> {
    let key = guest_key(&item.key)?;
    let source = cache_path(&item.cache_path)?;
    let cache = cache.clone();
    let opened = tokio::task::spawn_blocking(move || {
        let file = cache.open_read(source.as_str())?;
        let size = file.metadata()?.len();
        Ok::<_, std::io::Error>((file, size))
    })
    .await
    .map_err(|err| StoreError::InvalidPath(format!("read task failed: {err}")))?;
    let (file, size) = opened.map_err(|err| local_failure(&item.cache_path, &err))?;
    Ok((key, file, size))
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use tokio::io::AsyncWriteExt as _;

    use super::*;
    use crate::store::{GetOutcome, ListPage, PutMode, Version};

    /// What [`Serving`] does with each object after sending it.
    enum Then {
        /// Stalls for ever (after sending only part of it).
        Stall,
        /// Answers; a failure of the sink is reported as the store's own,
        /// retryable one (as a backend that cannot tell may).
        Answer,
    }

    /// A server of downloads only, counting the ones it started.
    struct Serving {
        then: Then,
        started: AtomicUsize,
    }

    impl Serving {
        fn new(then: Then) -> Self {
            Self {
                then,
                started: AtomicUsize::new(0),
            }
        }
    }

    impl std::fmt::Display for Serving {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a test store")
        }
    }

    #[async_trait::async_trait]
    impl ObjectStore for Serving {
        async fn get(
            &self,
            _: &ObjectKey,
            _: Option<&Version>,
        ) -> Result<GetOutcome, store::StoreError> {
            unreachable!("downloads only")
        }
        async fn head(&self, _: &ObjectKey) -> Result<store::ObjectMeta, store::StoreError> {
            unreachable!("downloads only")
        }
        async fn put(
            &self,
            _: &ObjectKey,
            _: Vec<u8>,
            _: PutMode,
        ) -> Result<Version, store::StoreError> {
            unreachable!("downloads only")
        }
        async fn delete(
            &self,
            _: &ObjectKey,
            _: Option<&Version>,
        ) -> Result<(), store::StoreError> {
            unreachable!("downloads only")
        }
        async fn list(
            &self,
            _: &str,
            _: Option<&ObjectKey>,
            _: u32,
        ) -> Result<ListPage, store::StoreError> {
            unreachable!("downloads only")
        }
        async fn get_into(
            &self,
            key: &ObjectKey,
            sink: &mut (dyn AsyncWrite + Unpin + Send),
        ) -> Result<store::ObjectMeta, store::StoreError> {
            match self.then {
                Then::Stall => {
                    sink.write_all(b"the first part")
                        .await
                        .map_err(|err| store::local_io(key, &err))?;
                    self.started.fetch_add(1, Ordering::SeqCst);
                    std::future::pending().await
                }
                Then::Answer => {
                    self.started.fetch_add(1, Ordering::SeqCst);
                    let sent = async {
                        sink.write_all(b"contents").await?;
                        sink.flush().await
                    };
                    sent.await.map_err(|err| store::StoreError::Backend {
                        store: "the test store".to_owned(),
                        retryable: true,
                        detail: format!("cannot read `{key}`: {err}"),
                    })?;
                    Ok(store::ObjectMeta {
                        key: key.clone(),
                        size: 8,
                        version: Version("v1".to_owned()),
                        last_modified_ms: 0,
                    })
                }
            }
        }
    }

    /// Names in `dir`, or none when it does not exist.
    fn names(dir: &std::path::Path) -> Vec<String> {
        std::fs::read_dir(dir).map_or_else(
            |_| Vec::new(),
            |entries| {
                entries
                    .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
                    .collect()
            },
        )
    }

    /// Polls `done` for up to ten seconds.
    async fn eventually(mut done: impl FnMut() -> bool) -> bool {
        for _ in 0..1000 {
            if done() {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        done()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_download_dropped_mid_way_leaves_no_temporary_file() {
        let cache = tempfile::tempdir().unwrap();
        let store = Arc::new(Serving::new(Then::Stall));
        let transfer = Transfer::between(store.clone(), cache.path(), 4, None);
        let items = (0..3)
            .map(|n| DownloadItem {
                key: format!("m/f{n}"),
                cache_path: format!("d/f{n}"),
                expected_version: None,
                sha256: None,
            })
            .collect();
        // The call's deadline, as the watchdog enforces it: the transfer
        // is dropped while every download is mid-way.
        let call = tokio::spawn(download(transfer, items));
        let dir = cache.path().join("d");
        assert!(eventually(|| store.started.load(Ordering::SeqCst) == 3).await);
        // Each first write creates its file behind the download.
        eventually(|| names(&dir).len() == 3).await;
        let in_flight = names(&dir);
        assert_eq!(in_flight.len(), 3, "{in_flight:?}");
        assert!(in_flight.iter().all(|name| name.contains(".silt-tmp.")));
        call.abort();
        assert!(call.await.unwrap_err().is_cancelled());
        // The downloads' tasks are dropped as the runtime gets to them.
        assert!(
            eventually(|| names(&dir).is_empty()).await,
            "left behind: {:?}",
            names(&dir)
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_file_that_cannot_be_written_is_an_invalid_path_and_not_retried() {
        let cache = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        // A planted link: the download's file cannot be created beneath it.
        std::os::unix::fs::symlink(outside.path(), cache.path().join("d")).unwrap();
        let store = Arc::new(Serving::new(Then::Answer));
        let transfer = Transfer::between(store.clone(), cache.path(), 4, None);
        let item = DownloadItem {
            key: "m/f".to_owned(),
            cache_path: "d/f".to_owned(),
            expected_version: None,
            sha256: None,
        };
        let results = download(transfer, vec![item]).await;
        let err = results.into_iter().next().unwrap().unwrap_err();
        // The local error as an unusable cache path, naming the guest's
        // path only (never the host's), nothing of the store's.
        let described = format!("{err:?}");
        assert!(
            described.contains("InvalidPath(\"cache file `d/f`: a symbolic link is in the way"),
            "{described}"
        );
        assert!(
            !described.contains(cache.path().to_str().unwrap()),
            "{described}"
        );
        assert!(!described.contains("cannot read"), "{described}");
        assert_eq!(store.started.load(Ordering::SeqCst), 1, "retried");
        assert_eq!(names(outside.path()), Vec::<String>::new());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_landed_time_is_what_a_stat_of_the_untouched_file_answers() {
        let cache = tempfile::tempdir().unwrap();
        let store = Arc::new(Serving::new(Then::Answer));
        let items = (0..3)
            .map(|n| DownloadItem {
                key: format!("m/f{n}"),
                cache_path: format!("d/f{n}"),
                expected_version: None,
                sha256: None,
            })
            .collect();
        let transfer = Transfer::between(store.clone(), cache.path(), 4, None);
        let results = download_landed(transfer, items).await;
        for (n, result) in results.into_iter().enumerate() {
            let landed = result.unwrap();
            let stat = std::fs::metadata(cache.path().join(format!("d/f{n}"))).unwrap();
            let stat_ns = stat
                .modified()
                .unwrap()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos();
            assert_eq!(u128::from(landed.mtime_ns), stat_ns, "f{n}");
            assert_eq!(landed.meta.size, stat.len(), "f{n}");
        }
    }

    /// A store whose uploads (`put_file`, `put_file_hashed`) first have
    /// `spoil` write to the file at `path` they are given: a writer racing
    /// the upload.
    struct Spoiling {
        inner: Arc<dyn ObjectStore>,
        path: std::path::PathBuf,
        spoil: fn(&std::path::Path),
    }

    impl std::fmt::Display for Spoiling {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("the spoiling test store")
        }
    }

    #[async_trait::async_trait]
    impl store::StoreWrapper for Spoiling {
        type Inner = dyn ObjectStore;

        fn inner(&self) -> &dyn ObjectStore {
            &*self.inner
        }

        async fn put_file(
            &self,
            key: &ObjectKey,
            file: std::fs::File,
            mode: PutMode,
        ) -> Result<Version, store::StoreError> {
            (self.spoil)(&self.path);
            self.inner.put_file(key, file, mode).await
        }

        async fn put_file_hashed(
            &self,
            key: &ObjectKey,
            file: std::fs::File,
            mode: PutMode,
        ) -> Result<(Version, UploadDigest), store::StoreError> {
            (self.spoil)(&self.path);
            self.inner.put_file_hashed(key, file, mode).await
        }
    }

    /// Stores of both kinds of upload digest: in memory (the file hashed
    /// beside the send) and a directory (hashed as it is copied).
    fn digesting_stores(dir: &std::path::Path) -> [Arc<dyn ObjectStore>; 2] {
        [
            Arc::new(store::MemoryStore::new()),
            Arc::new(store::DirStore::open(dir, false).unwrap()),
        ]
    }

    /// Appends to the file.
    fn append(path: &std::path::Path) {
        use std::io::Write as _;
        let mut writer = std::fs::OpenOptions::new().append(true).open(path).unwrap();
        writer.write_all(b" and more").unwrap();
    }

    /// Rewrites the file with other bytes of the same length, then sets
    /// its modification time back: only its change time tells.
    fn rewrite_in_place(path: &std::path::Path) {
        let modified = std::fs::metadata(path).unwrap().modified().unwrap();
        // Past the coarse clock's tick, so the change time moves.
        std::thread::sleep(Duration::from_millis(30));
        let length = std::fs::metadata(path).unwrap().len() as usize;
        std::fs::write(path, vec![b'x'; length]).unwrap();
        let file = std::fs::OpenOptions::new().write(true).open(path).unwrap();
        file.set_modified(modified).unwrap();
        assert_eq!(std::fs::metadata(path).unwrap().len() as usize, length);
        assert_eq!(
            std::fs::metadata(path).unwrap().modified().unwrap(),
            modified
        );
    }

    fn upload_item(n: usize) -> UploadItem {
        UploadItem {
            cache_path: format!("u/f{n}"),
            key: format!("m/f{n}"),
            mode: crate::bindings::silt::datastore::object_store::PutMode::Create,
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_upload_answers_the_sha256_and_size_of_what_it_sent() {
        let cache = tempfile::tempdir().unwrap();
        std::fs::create_dir(cache.path().join("u")).unwrap();
        // Sizes around the hash's 1 MiB reads, and an empty file.
        let sizes = [0usize, 3, (1 << 20) - 1, 1 << 20, (3 << 20) + 17];
        let contents: Vec<Vec<u8>> = sizes
            .iter()
            .map(|&size| (0..size).map(|i| (i * 31 % 251) as u8).collect())
            .collect();
        for (n, data) in contents.iter().enumerate() {
            std::fs::write(cache.path().join(format!("u/f{n}")), data).unwrap();
        }
        let dir = tempfile::tempdir().unwrap();
        for store in digesting_stores(dir.path()) {
            let transfer = Transfer::between(store.clone(), cache.path(), 4, None);
            let items = (0..sizes.len()).map(upload_item).collect();
            let results = upload_hashed(transfer, Arc::default(), items).await;
            for (n, result) in results.into_iter().enumerate() {
                let uploaded = result.unwrap();
                assert_eq!(
                    uploaded.sha256,
                    crate::sha256_hex(&contents[n]),
                    "{store} f{n}"
                );
                assert_eq!(uploaded.size, sizes[n] as u64, "{store} f{n}");
                let key = ObjectKey::new(&format!("m/f{n}")).unwrap();
                match store.get(&key, None).await.unwrap() {
                    GetOutcome::Found(meta, data) => {
                        assert_eq!(data, contents[n], "{store} f{n}");
                        assert_eq!(meta.version.0, uploaded.version, "{store} f{n}");
                    }
                    GetOutcome::NotModified => unreachable!(),
                }
            }
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_file_written_during_its_upload_is_refused_not_hashed_as_sent() {
        let spoils = [append as fn(&std::path::Path), rewrite_in_place];
        // Hashed beside the send or as it is sent, or a staged file
        // answered with its staging hash (`sending`): refused alike.
        let stores = tempfile::tempdir().unwrap();
        for (n, (spoil, named, inner)) in spoils
            .into_iter()
            .flat_map(|spoil| [(spoil, false), (spoil, true)])
            .flat_map(|(spoil, named)| {
                let dir = stores.path().join(format!("{}", named as u8));
                digesting_stores(&dir).map(|inner| (spoil, named, inner))
            })
            .enumerate()
        {
            let cache = tempfile::tempdir().unwrap();
            std::fs::create_dir(cache.path().join("u")).unwrap();
            let path = cache.path().join("u/f0");
            std::fs::write(&path, b"the first words").unwrap();
            let sendings = Arc::new(Sendings::default());
            let _sending = named.then(|| {
                let file = std::fs::File::open(&path).unwrap();
                let staged = StagedFile {
                    shape: FileShape::of(&file).unwrap(),
                    sha256: crate::sha256_hex(b"the first words"),
                };
                sendings.expect("u/f0", staged)
            });
            let store = Arc::new(Spoiling { inner, path, spoil });
            let transfer = Transfer::between(store, cache.path(), 4, None);
            let mut item = upload_item(0);
            item.key = format!("m/f{n}");
            let results = upload_hashed(transfer, sendings.clone(), vec![item]).await;
            let err = results.into_iter().next().unwrap().unwrap_err();
            let described = format!("{err:?}");
            assert!(
                described.contains("InvalidPath(\"cache file `u/f0` changed while it was uploaded"),
                "{n}: {described}"
            );
        }
    }
}
