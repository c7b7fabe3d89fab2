//! Bulk transfers between the store and the extension's cache directory,
//! run by the host concurrently so bulk data never crosses wasm memory.
//!
//! Cache paths are resolved through a [`Beneath`] for the cache directory,
//! so no path reaches outside it and no symlink the guest (or an escaped
//! worker) planted is followed, not even one pointing elsewhere inside.
//! Objects stream between the store and the files: a download keeps at
//! most [`SPOOL_LIMIT`] bytes of an object in memory (and the process at
//! most [`SPOOL_BUDGET`] for all of them), never a larger object whole.
//! Downloads land atomically: hashed on the way for the optional sha256
//! check, written to a temporary file in the target's directory, then
//! renamed over the target; a failed or mismatched download leaves nothing
//! behind. A small object is kept in memory until it is checked, then its
//! temporary file is created and written in one blocking call (a full
//! hydration is mostly small files: the blocking pool's hand-offs were a
//! measurable share of it); a larger one spills into its temporary file as
//! it arrives.

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

/// The most of one download kept in memory before it spills into its
/// temporary file.
pub const SPOOL_LIMIT: usize = 256 * 1024;

/// The most that all downloads of this process keep in memory at once
/// (transfer slots are configurable up to 1,024 per call): past it, a
/// download spills at once. 64 downloads at [`SPOOL_LIMIT`] (two hydration
/// calls of 32 slots, the default) fit.
pub const SPOOL_BUDGET: usize = 16 << 20;

/// Bytes held in memory by every [`Spool`] of this process.
static SPOOLED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

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

/// One attempt: receive the object (in memory, or spilled into a fresh
/// temporary file beside the target once large), check version and
/// checksum, then land it under the target's name. The temporary file is
/// removed on every failure, so nothing partial is ever visible.
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
    let mut sink = Spool::new(cache.clone(), temp.clone());
    let mut outcome = store.get_into(key, &mut sink).await;
    // A spilled download's file writes in the background: make sure every
    // byte is in the file before it is renamed into view.
    if outcome.is_ok()
        && let Err(err) = sink.flush().await
    {
        outcome = Err(store::local_io(key, &err));
    }
    let spilled = sink.spilled();
    let remove_temp = || {
        if spilled {
            let _ = cache.remove_file(&temp);
        }
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
    let (actual, received) = sink.finish();
    if let Some(expected) = &item.sha256
        && !actual.eq_ignore_ascii_case(expected)
    {
        remove_temp();
        return Ok(Err(StoreError::ChecksumMismatch(format!(
            "{key}: expected sha256 {expected}, got {actual}"
        ))));
    }
    if let Received::InMemory(bytes) = received {
        // The file is made on the blocking pool; the rename stays here, so
        // a download whose call was cancelled meanwhile never lands.
        let (cache, temp) = (cache.clone(), temp.clone());
        tokio::task::spawn_blocking(move || write_new(&cache, &temp, &bytes))
            .await
            .map_err(|err| store::local_io(key, &std::io::Error::other(err)))?
            // As a temporary file that cannot be created or written always was.
            .map_err(|err| store::local_io(key, &err))?;
    }
    if let Err(err) = cache.rename(&temp, target) {
        let _ = cache.remove_file(&temp);
        return Ok(Err(StoreError::InvalidPath(format!(
            "cannot write cache file {target}: {err}"
        ))));
    }
    Ok(Ok(meta))
}

/// Creates the new file `temp` (parent directories first) and writes
/// `bytes` into it. A file this did not create is never removed (one
/// already at `temp` fails the create); one it created and could not fill
/// is.
fn write_new(cache: &Beneath, temp: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut file = cache.create_new(temp)?;
    if let Err(err) = std::io::Write::write_all(&mut file, bytes) {
        drop(file);
        let _ = cache.remove_file(temp);
        return Err(err);
    }
    Ok(())
}

/// What a [`Spool`] received, once it is finished.
enum Received {
    /// Every byte, still in memory (no file was created).
    InMemory(Vec<u8>),
    /// Every byte, in the temporary file (flushed).
    InFile,
}

/// Where a download's bytes go until they are checked: memory while the
/// object is at most [`SPOOL_LIMIT`] bytes and the process's memory for
/// downloads is within [`SPOOL_BUDGET`], then its temporary file (created,
/// with what arrived so far, on the blocking pool). Hashes every byte it
/// accepts.
struct Spool {
    state: SpoolState,
    digest: Sha256,
    cache: Arc<Beneath>,
    temp: std::path::PathBuf,
    spilled: bool,
    /// Bytes of [`SPOOLED`] this spool holds (given back when it spills or
    /// is dropped).
    counted: usize,
}

enum SpoolState {
    Memory(Vec<u8>),
    /// The temporary file being created and given the bytes so far.
    Spilling(tokio::task::JoinHandle<std::io::Result<std::fs::File>>),
    File(tokio::fs::File),
    /// Spilling failed (its error was returned); nothing more is accepted.
    Failed,
}

impl Spool {
    fn new(cache: Arc<Beneath>, temp: std::path::PathBuf) -> Self {
        Self {
            state: SpoolState::Memory(Vec::new()),
            digest: Sha256::new(),
            cache,
            temp,
            spilled: false,
            counted: 0,
        }
    }

    /// True once this spool created its temporary file (it is the caller's
    /// to remove).
    fn spilled(&self) -> bool {
        self.spilled
    }

    /// The sha256 of every byte accepted, and where they are.
    fn finish(mut self) -> (String, Received) {
        let state = std::mem::replace(&mut self.state, SpoolState::Failed);
        let received = match state {
            SpoolState::Memory(bytes) => Received::InMemory(bytes),
            _ => Received::InFile,
        };
        let digest = std::mem::take(&mut self.digest);
        (hex(&digest.finalize()), received)
    }

    /// Takes `more` bytes of the process's budget; false (nothing taken)
    /// when they do not fit.
    fn count(&mut self, more: usize) -> bool {
        use std::sync::atomic::Ordering;
        let taken = SPOOLED.fetch_update(Ordering::AcqRel, Ordering::Acquire, |held| {
            held.checked_add(more)
                .filter(|&total| total <= SPOOL_BUDGET)
        });
        if taken.is_ok() {
            self.counted += more;
        }
        taken.is_ok()
    }

    /// Gives this spool's share of the budget back.
    fn uncount(&mut self) {
        SPOOLED.fetch_sub(self.counted, std::sync::atomic::Ordering::AcqRel);
        self.counted = 0;
    }

    /// Moves the bytes so far into a new temporary file, on the blocking
    /// pool ([`Self::poll_file`] waits for it). Only from memory.
    fn spill(&mut self) {
        let SpoolState::Memory(held) = &mut self.state else {
            return;
        };
        let bytes = std::mem::take(held);
        self.uncount();
        let (cache, temp) = (self.cache.clone(), self.temp.clone());
        self.state = SpoolState::Spilling(tokio::task::spawn_blocking(move || {
            let mut file = cache.create_new(&temp)?;
            if let Err(err) = std::io::Write::write_all(&mut file, &bytes) {
                drop(file);
                let _ = cache.remove_file(&temp);
                return Err(err);
            }
            Ok(file)
        }));
    }

    /// Polls a spill to its end: `Ready(Ok(()))` once the state is a file.
    fn poll_file(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        use std::task::Poll;
        let handle = match &mut self.state {
            SpoolState::Spilling(handle) => handle,
            SpoolState::File(_) => return Poll::Ready(Ok(())),
            SpoolState::Memory(_) | SpoolState::Failed => {
                return Poll::Ready(Err(std::io::Error::other(
                    "the download's temporary file could not be written",
                )));
            }
        };
        let created = match std::pin::Pin::new(handle).poll(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(Ok(created)) => created,
            Poll::Ready(Err(join)) => Err(std::io::Error::other(join)),
        };
        match created {
            Ok(file) => {
                self.spilled = true;
                self.state = SpoolState::File(tokio::fs::File::from_std(file));
                Poll::Ready(Ok(()))
            }
            Err(err) => {
                self.state = SpoolState::Failed;
                Poll::Ready(Err(err))
            }
        }
    }
}

impl Drop for Spool {
    fn drop(&mut self) {
        self.uncount();
    }
}

impl AsyncWrite for Spool {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        use std::task::Poll;
        let this = &mut *self;
        if let SpoolState::Memory(held) = &this.state {
            let fits = held.len() + buf.len() <= SPOOL_LIMIT;
            if fits && this.count(buf.len()) {
                if let SpoolState::Memory(held) = &mut this.state {
                    held.extend_from_slice(buf);
                }
                this.digest.update(buf);
                return Poll::Ready(Ok(buf.len()));
            }
            this.spill();
        }
        match this.poll_file(cx) {
            Poll::Ready(Ok(())) => {}
            Poll::Ready(Err(err)) => return Poll::Ready(Err(err)),
            Poll::Pending => return Poll::Pending,
        }
        let SpoolState::File(file) = &mut this.state else {
            unreachable!("poll_file is Ready(Ok) only for a file");
        };
        let poll = std::pin::Pin::new(file).poll_write(cx, buf);
        if let Poll::Ready(Ok(written)) = &poll {
            this.digest.update(&buf[..*written]);
        }
        poll
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        use std::task::Poll;
        let this = &mut *self;
        if matches!(this.state, SpoolState::Memory(_)) {
            return Poll::Ready(Ok(()));
        }
        match this.poll_file(cx) {
            Poll::Ready(Ok(())) => {}
            other => return other,
        }
        let SpoolState::File(file) = &mut this.state else {
            unreachable!("poll_file is Ready(Ok) only for a file");
        };
        std::pin::Pin::new(file).poll_flush(cx)
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        self.poll_flush(cx)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{MemoryStore, PutMode};

    /// Every file beneath `dir`, as paths relative to it.
    fn files_beneath(dir: &std::path::Path) -> Vec<String> {
        let mut found = Vec::new();
        let mut pending = vec![dir.to_owned()];
        while let Some(next) = pending.pop() {
            for entry in std::fs::read_dir(&next).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    pending.push(path);
                } else {
                    found.push(path.strip_prefix(dir).unwrap().display().to_string());
                }
            }
        }
        found.sort();
        found
    }

    fn sha256_hex(bytes: &[u8]) -> String {
        hex(&Sha256::digest(bytes))
    }

    /// Puts `objects` (key, bytes) and downloads each `key` to `got/key`
    /// with its sha256 (or `wrong` for every one); answers each result.
    async fn download_all(
        objects: &[(&str, Vec<u8>)],
        cache: &std::path::Path,
        wrong_sha256: bool,
    ) -> Vec<Result<ObjectMeta, StoreError>> {
        let store = Arc::new(MemoryStore::new());
        let mut items = Vec::new();
        for (key, bytes) in objects {
            store
                .put(
                    &ObjectKey::new(key).unwrap(),
                    bytes.clone(),
                    PutMode::Create,
                )
                .await
                .unwrap();
            items.push(DownloadItem {
                key: (*key).to_owned(),
                cache_path: format!("got/{key}"),
                expected_version: None,
                sha256: Some(if wrong_sha256 {
                    sha256_hex(b"something else")
                } else {
                    sha256_hex(bytes)
                }),
            });
        }
        let transfer = Transfer::between(store, cache, 4, None);
        download(transfer, items).await
    }

    #[tokio::test]
    async fn small_and_large_objects_land_whole_and_leave_no_temporary_file() {
        let cache = tempfile::tempdir().unwrap();
        let small = b"a small object".to_vec();
        let large: Vec<u8> = (0..SPOOL_LIMIT * 2 + 17).map(|i| (i % 251) as u8).collect();
        let results = download_all(
            &[
                ("m/small.bin", small.clone()),
                ("m/large.bin", large.clone()),
            ],
            cache.path(),
            false,
        )
        .await;
        assert!(results.iter().all(Result::is_ok), "{results:?}");
        let got = cache.path().join("got/m");
        assert_eq!(std::fs::read(got.join("small.bin")).unwrap(), small);
        assert_eq!(std::fs::read(got.join("large.bin")).unwrap(), large);
        assert_eq!(
            files_beneath(cache.path()),
            ["got/m/large.bin", "got/m/small.bin"]
        );
    }

    #[tokio::test]
    async fn a_checksum_mismatch_leaves_nothing_in_memory_or_spilled() {
        let cache = tempfile::tempdir().unwrap();
        let large = vec![3u8; SPOOL_LIMIT + 1];
        let results = download_all(
            &[("m/small.bin", b"tiny".to_vec()), ("m/large.bin", large)],
            cache.path(),
            true,
        )
        .await;
        for result in &results {
            assert!(
                matches!(result, Err(StoreError::ChecksumMismatch(_))),
                "{result:?}"
            );
        }
        // The small one never made a file; the large one's temporary file
        // is gone (its directory stays).
        assert!(files_beneath(cache.path()).is_empty());
    }

    #[tokio::test]
    async fn a_large_object_meeting_a_link_writes_nothing_anywhere() {
        let cache = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::fs::create_dir(cache.path().join("got")).unwrap();
        std::os::unix::fs::symlink(outside.path(), cache.path().join("got/m")).unwrap();
        let results = download_all(
            &[
                ("m/large.bin", vec![9u8; SPOOL_LIMIT * 3]),
                ("m/small.bin", b"small".to_vec()),
            ],
            cache.path(),
            false,
        )
        .await;
        assert!(results.iter().all(Result::is_err), "{results:?}");
        assert!(files_beneath(outside.path()).is_empty());
        assert_eq!(
            std::fs::read_dir(cache.path().join("got")).unwrap().count(),
            1,
            "only the planted link"
        );
    }

    #[test]
    fn a_file_already_at_the_temporary_name_is_neither_replaced_nor_removed() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Beneath::open(dir.path()).unwrap();
        std::fs::write(dir.path().join(".f.tmp"), b"someone else's").unwrap();
        let err = write_new(&cache, std::path::Path::new(".f.tmp"), b"mine").unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::AlreadyExists);
        assert_eq!(
            std::fs::read(dir.path().join(".f.tmp")).unwrap(),
            b"someone else's"
        );
    }

    #[tokio::test]
    async fn a_spool_spills_what_it_held_once_past_the_limit() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Arc::new(Beneath::open(dir.path()).unwrap());
        let temp = std::path::PathBuf::from("sub/.f.tmp");
        let mut spool = Spool::new(cache.clone(), temp.clone());
        let first = vec![1u8; SPOOL_LIMIT - 10];
        let second = vec![2u8; 100];
        spool.write_all(&first).await.unwrap();
        assert!(!spool.spilled(), "under the limit: memory only");
        spool.write_all(&second).await.unwrap();
        spool.flush().await.unwrap();
        assert!(spool.spilled());
        let (digest, received) = spool.finish();
        assert!(matches!(received, Received::InFile));
        let mut all = first;
        all.extend_from_slice(&second);
        assert_eq!(digest, sha256_hex(&all));
        assert_eq!(std::fs::read(dir.path().join(&temp)).unwrap(), all);
    }

    #[tokio::test]
    async fn a_spool_under_the_limit_creates_no_file() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Arc::new(Beneath::open(dir.path()).unwrap());
        let mut spool = Spool::new(cache, "f.tmp".into());
        spool.write_all(&[5u8; SPOOL_LIMIT]).await.unwrap();
        spool.flush().await.unwrap();
        let (digest, received) = spool.finish();
        assert_eq!(digest, sha256_hex(&[5u8; SPOOL_LIMIT]));
        assert!(matches!(received, Received::InMemory(bytes) if bytes.len() == SPOOL_LIMIT));
        assert!(files_beneath(dir.path()).is_empty());
    }
}
