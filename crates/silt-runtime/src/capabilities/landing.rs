//! Where a download lands: a temporary file beside its target, created by
//! the first write, written behind the download on the landing thread
//! ([`super::landing_thread`]), renamed over the target once complete, and
//! removed however the download ends otherwise.
//!
//! Why not `tokio::fs::File` after creating the file: each hand-off to
//! another thread costs context switches, and most objects arrive in one
//! chunk, so creating the file in its own hand-off doubled what a small
//! download spent on them. Here the creation rides on the first write: one
//! hand-off for a one-chunk object.

use std::io::Write as _;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use tokio::io::AsyncWrite;
use tokio::sync::oneshot;

use crate::beneath::Beneath;

/// The most one write takes from its caller (what it copies before
/// handing the copy to the landing thread); tokio's `File` uses the same
/// bound.
const MAX_CHUNK: usize = 2 << 20;

/// A temporary file, removed when dropped unless it was renamed into
/// place: an attempt that fails, or is dropped at an `await` (its call's
/// deadline, a cancelled transfer), leaves nothing behind. It exists only
/// once the file was created, so a name already taken (a file planted
/// there) is never removed.
///
/// Its directory stays open from the creation on: the rename (or the
/// removal) happens in the directory the file was created in, without
/// resolving its path again (one open a download fewer).
pub(super) struct TempFile {
    path: PathBuf,
    dir: Beneath,
    file: std::fs::File,
    renamed: bool,
}

impl TempFile {
    /// Creates the file `path` (and its parent directories) with the
    /// permission bits `mode`; blocking.
    fn create(cache: Arc<Beneath>, path: PathBuf, mode: u32) -> std::io::Result<Self> {
        let (dir, file) = cache.create_new_in_dir_with_mode(&path, mode)?;
        Ok(Self {
            path,
            dir,
            file,
            renamed: false,
        })
    }

    /// The file's own name, in [`Self::dir`].
    fn name(&self) -> &std::path::Path {
        std::path::Path::new(self.path.file_name().expect("created, so it has a name"))
    }

    /// The file's modification time in nanoseconds since the Unix epoch,
    /// read from the open file (an `fstat`: nothing resolves a path).
    pub(super) fn modified_ns(&self) -> std::io::Result<u64> {
        let modified = self.file.metadata()?.modified()?;
        let since_epoch = modified
            .duration_since(std::time::UNIX_EPOCH)
            .map_err(|_| std::io::Error::other("the file's time is before 1970"))?;
        u64::try_from(since_epoch.as_nanos())
            .map_err(|_| std::io::Error::other("the file's time is past 2554"))
    }

    /// The open file (for writing).
    pub(super) fn file(&self) -> &std::fs::File {
        &self.file
    }

    /// Renames the file over `target`, which is beside it (a temporary
    /// name from `Beneath::temp_beside`), within the directory held open;
    /// from then on it is not removed.
    pub(super) fn rename_to(mut self, target: &str) -> std::io::Result<()> {
        let target = std::path::Path::new(target);
        let name = target
            .file_name()
            .filter(|_| target.parent() == self.path.parent())
            .ok_or_else(|| {
                std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    format!("{}: not beside {}", target.display(), self.path.display()),
                )
            })?;
        self.dir.rename(self.name(), name)?;
        self.renamed = true;
        Ok(())
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if !self.renamed {
            let _ = self.dir.remove_file(self.name());
        }
    }
}

/// What a write on the landing thread hands back: the file (created by the
/// first write) and the buffer, for the next write to reuse. A failed write
/// drops the file there, which removes it.
type Written = (std::io::Result<TempFile>, Vec<u8>);

enum State {
    /// No write running: the file once the first write created it.
    Idle {
        file: Option<TempFile>,
        buffer: Vec<u8>,
    },
    /// A write running on the landing thread. When the landing is dropped
    /// meanwhile, the write's answer finds no receiver and is dropped
    /// there, and with it the file (removed once that write returns, not at
    /// the drop).
    Writing(oneshot::Receiver<Written>),
    /// A write failed: its error, until [`Landing::take_failure`] or
    /// [`Landing::finish`] takes it.
    Failed(Option<std::io::Error>),
}

/// An `AsyncWrite` into a temporary file at `path` beneath `cache`, which
/// the first write creates. Writes are accepted at once and carried out in
/// order behind the caller; [`Landing::finish`] waits for them.
pub(super) struct Landing {
    cache: Arc<Beneath>,
    path: PathBuf,
    /// The file's permission bits, before the umask.
    mode: u32,
    state: State,
}

/// A cache file's permission bits: the host's own files.
pub(super) const CACHE_FILE_MODE: u32 = 0o644;

/// A file the user asked for (`get -o`): as `cp` creates one, the umask
/// deciding.
pub(super) const USER_FILE_MODE: u32 = 0o666;

impl Landing {
    /// A landing at `path` (a fresh temporary name) beneath `cache`, whose
    /// file gets the permission bits `mode` (less the umask); nothing is
    /// created yet.
    pub(super) fn new(cache: Arc<Beneath>, path: PathBuf, mode: u32) -> Self {
        Self {
            cache,
            path,
            mode,
            state: State::Idle {
                file: None,
                buffer: Vec::new(),
            },
        }
    }

    /// Waits for every write and answers the complete file (created now
    /// when nothing was written: an empty object).
    ///
    /// # Errors
    /// The first failed write's, or the creation's.
    pub(super) async fn finish(mut self) -> std::io::Result<TempFile> {
        if let Err(err) = std::future::poll_fn(|cx| self.poll_settled(cx)).await {
            return Err(self.take_failure().unwrap_or(err));
        }
        let State::Idle { file, .. } = std::mem::replace(&mut self.state, State::Failed(None))
        else {
            unreachable!("settled means idle");
        };
        match file {
            Some(file) => Ok(file),
            None => {
                let (cache, path, mode) = (self.cache.clone(), self.path.clone(), self.mode);
                super::landing_thread::run(move || TempFile::create(cache, path, mode))
                    .await
                    .map_err(|_| std::io::Error::other("creating the file panicked"))?
            }
        }
    }

    /// The error of the write that failed, once. The store sees only a
    /// copy of it (and may report it as its own failure to read), so the
    /// download asks here first: a file that could not be written is a
    /// local failure, whatever the store made of it.
    pub(super) fn take_failure(&mut self) -> Option<std::io::Error> {
        match &mut self.state {
            State::Failed(failure) => failure.take(),
            _ => None,
        }
    }

    /// Ready once no write is running; (a copy of) the error of one that
    /// failed.
    fn poll_settled(&mut self, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match &mut self.state {
            State::Idle { .. } => Poll::Ready(Ok(())),
            State::Failed(failure) => Poll::Ready(Err(match failure {
                Some(err) => std::io::Error::new(err.kind(), err.to_string()),
                None => earlier_failure(),
            })),
            State::Writing(answer) => {
                let (written, buffer) = match ready!(Pin::new(answer).poll(cx)) {
                    Ok(written) => written,
                    Err(_) => (
                        Err(std::io::Error::other("writing the file panicked")),
                        Vec::new(),
                    ),
                };
                match written {
                    Ok(file) => {
                        self.state = State::Idle {
                            file: Some(file),
                            buffer,
                        };
                        Poll::Ready(Ok(()))
                    }
                    Err(err) => {
                        let copy = std::io::Error::new(err.kind(), err.to_string());
                        self.state = State::Failed(Some(err));
                        Poll::Ready(Err(copy))
                    }
                }
            }
        }
    }
}

fn earlier_failure() -> std::io::Error {
    std::io::Error::other("an earlier write to this download's file failed")
}

impl AsyncWrite for Landing {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let this = &mut *self;
        ready!(this.poll_settled(cx))?;
        let State::Idle { file, mut buffer } =
            std::mem::replace(&mut this.state, State::Failed(None))
        else {
            unreachable!("settled means idle");
        };
        let taken = data.len().min(MAX_CHUNK);
        buffer.clear();
        buffer.extend_from_slice(&data[..taken]);
        let (cache, path, mode) = (this.cache.clone(), this.path.clone(), this.mode);
        this.state = State::Writing(super::landing_thread::run(move || {
            let file = match file {
                Some(file) => Ok(file),
                None => TempFile::create(cache, path, mode),
            };
            let written = file.and_then(|mut file| {
                file.file.write_all(&buffer)?;
                Ok(file)
            });
            (written, buffer)
        }));
        Poll::Ready(Ok(taken))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        self.poll_settled(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        self.poll_flush(cx)
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::AsyncWriteExt as _;

    use super::*;

    fn landing_in(dir: &tempfile::TempDir, path: &str) -> Landing {
        let cache = Arc::new(Beneath::open(dir.path()).unwrap());
        Landing::new(cache, PathBuf::from(path), CACHE_FILE_MODE)
    }

    #[tokio::test]
    async fn chunks_land_in_order_in_a_file_the_first_write_creates() {
        let dir = tempfile::tempdir().unwrap();
        let mut landing = landing_in(&dir, "a/b/.f.tmp");
        landing.write_all(b"one ").await.unwrap();
        landing.write_all(b"two ").await.unwrap();
        landing.write_all(&[b'x'; 3 << 20]).await.unwrap();
        let temp = landing.finish().await.unwrap();
        temp.rename_to("a/b/f").unwrap();
        let landed = std::fs::read(dir.path().join("a/b/f")).unwrap();
        assert_eq!(&landed[..8], b"one two ");
        assert_eq!(landed.len(), 8 + (3 << 20));
        assert!(!dir.path().join("a/b/.f.tmp").exists());
    }

    #[tokio::test]
    async fn an_empty_object_lands_as_an_empty_file() {
        let dir = tempfile::tempdir().unwrap();
        let landing = landing_in(&dir, ".f.tmp");
        landing.finish().await.unwrap().rename_to("f").unwrap();
        assert_eq!(std::fs::read(dir.path().join("f")).unwrap(), b"");
    }

    #[tokio::test]
    async fn a_landing_dropped_unfinished_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let mut landing = landing_in(&dir, ".f.tmp");
        landing.write_all(b"partial").await.unwrap();
        landing.flush().await.unwrap();
        let temp = dir.path().join(".f.tmp");
        assert!(temp.exists(), "the first write created the file");
        // Dropped while its next write may still be running on the pool.
        landing.write_all(b" more").await.unwrap();
        drop(landing);
        for _ in 0..500 {
            if !temp.exists() {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        panic!("the temporary file stayed");
    }

    #[tokio::test]
    async fn a_name_already_taken_fails_the_write_and_is_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(".f.tmp"), b"planted").unwrap();
        let mut landing = landing_in(&dir, ".f.tmp");
        // The write is accepted; its failure shows at the next step.
        landing.write_all(b"data").await.unwrap();
        let err = landing.flush().await.unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::AlreadyExists, "{err}");
        assert!(landing.write_all(b"more").await.is_err());
        assert!(landing.finish().await.is_err());
        assert_eq!(
            std::fs::read(dir.path().join(".f.tmp")).unwrap(),
            b"planted"
        );
    }
}
