//! The SHA-256 of an uploaded file, and how it is tied to what was sent.
//!
//! A caller that records an object's hash (the index does) needs the hash
//! of the bytes the store took, not of the file as it is later. A backend
//! that hashes the buffers it sends (a directory store's copy, an S3
//! multipart upload's parts) answers [`UploadDigest::OfSent`]. Others answer
//! the file as read in a pass of its own ([`UploadDigest::OfFileBeside`]:
//! beside the send, or before it for one S3 PUT, whose header carries the
//! digest), which is what was sent only if nothing wrote the file
//! meanwhile: the caller checks that (by the file's shape before and after).

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use sha2::{Digest as _, Sha256};

use crate::{ObjectKey, StoreError, Version, local_io};

/// The SHA-256 of an uploaded file (see the module's doc).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UploadDigest {
    /// Of exactly the `len` bytes the store took.
    OfSent {
        /// The digest.
        sha256: [u8; 32],
        /// Bytes sent.
        len: u64,
    },
    /// Of the file's first `len` bytes, read in a pass of its own (a `len`
    /// other than the file's size when the upload started shows it grew or
    /// shrank).
    OfFileBeside {
        /// The digest.
        sha256: [u8; 32],
        /// Bytes hashed.
        len: u64,
    },
}

/// `put` of `file`, and the file hashed beside it at offsets (from the
/// page cache the send fills): what a store that cannot hash the bytes it
/// sends answers.
pub(crate) async fn put_hashing_beside<Put, Sent>(
    key: &ObjectKey,
    file: std::fs::File,
    put: Put,
) -> Result<(Version, UploadDigest), StoreError>
where
    Put: FnOnce(std::fs::File) -> Sent,
    Sent: Future<Output = Result<Version, StoreError>>,
{
    let size = file.metadata().map_err(|err| local_io(key, &err))?.len();
    let reader = file.try_clone().map_err(|err| local_io(key, &err))?;
    let stop = Arc::new(AtomicBool::new(false));
    let stop_hashing = stop.clone();
    // Cancelled (its call timed out, the command ends), the hash stops too
    // instead of reading the rest of the file on a blocking thread.
    let _stop_when_dropped = StopWhenDropped(stop.clone());
    let hashing =
        tokio::task::spawn_blocking(move || sha256_at_offsets(&reader, size, &stop_hashing));
    let sending = async {
        let sent = put(file).await;
        if sent.is_err() {
            // The hash is of no use now: the rest of the file unread.
            stop.store(true, Ordering::Relaxed);
        }
        sent
    };
    let (sent, hashed) = tokio::join!(sending, hashing);
    let version = sent?;
    let (sha256, len) = hashed
        .map_err(|err| local_io(key, &std::io::Error::other(err)))?
        .map_err(|err| local_io(key, &err))?;
    Ok((version, UploadDigest::OfFileBeside { sha256, len }))
}

/// Sets its flag when dropped.
struct StopWhenDropped(Arc<AtomicBool>);

impl Drop for StopWhenDropped {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// The SHA-256 and length of `file` from its start, read at offsets (the
/// file's own position, which an upload may be using, is left alone).
/// Reads at most `size` + 1 bytes, and stops early when `stop` is set.
/// Blocking: call off the async threads.
pub fn sha256_at_offsets(
    file: &std::fs::File,
    size: u64,
    stop: &AtomicBool,
) -> std::io::Result<([u8; 32], u64)> {
    use std::os::unix::fs::FileExt as _;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0; 1 << 20];
    let mut offset = 0u64;
    while offset <= size && !stop.load(Ordering::Relaxed) {
        let wanted = usize::try_from(size + 1 - offset)
            .unwrap_or(usize::MAX)
            .min(buffer.len());
        let read = match file.read_at(&mut buffer[..wanted], offset) {
            Ok(0) => break,
            Ok(read) => read,
            Err(err) if err.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(err) => return Err(err),
        };
        hasher.update(&buffer[..read]);
        offset += read as u64;
    }
    Ok((hasher.finalize().into(), offset))
}

/// A reader that hashes and counts what passes through it: what a copy
/// wrote is what [`HashingReader::finish`] answers.
pub(crate) struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
    len: u64,
}

impl<R> HashingReader<R> {
    pub(crate) fn new(inner: R) -> Self {
        Self {
            inner,
            hasher: Sha256::new(),
            len: 0,
        }
    }

    /// The SHA-256 of every byte read so far, and their count.
    pub(crate) fn finish(self) -> ([u8; 32], u64) {
        (self.hasher.finalize().into(), self.len)
    }
}

impl<R: std::io::Read> std::io::Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let read = self.inner.read(buf)?;
        self.hasher.update(&buf[..read]);
        self.len += read as u64;
        Ok(read)
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Read as _, Write as _};
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_cancelled_upload_stops_hashing_its_file() {
        // 16 GiB of holes: minutes to hash, had the hash gone on.
        let file = tempfile::tempfile().unwrap();
        file.set_len(16 << 30).unwrap();
        let key = ObjectKey::new("k").unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        runtime.block_on(async {
            let never_sent = |_file| std::future::pending::<Result<Version, StoreError>>();
            let upload = put_hashing_beside(&key, file, never_sent);
            let cancelled = tokio::time::timeout(Duration::from_millis(50), upload).await;
            assert!(cancelled.is_err(), "the send never ends");
        });
        // Dropping the runtime waits for its blocking tasks: the hash.
        let started = std::time::Instant::now();
        drop(runtime);
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "the hash went on for {:?} after its upload was cancelled",
            started.elapsed()
        );
    }

    #[test]
    fn a_hashing_reader_hashes_what_it_read() {
        let mut reader = HashingReader::new(&b"some bytes"[..]);
        let mut out = Vec::new();
        reader.read_to_end(&mut out).unwrap();
        let expected = <[u8; 32]>::from(Sha256::digest(b"some bytes"));
        assert_eq!(reader.finish(), (expected, 10));
    }

    #[test]
    fn a_file_read_at_offsets_shows_it_grew() {
        let mut file = tempfile::tempfile().unwrap();
        file.write_all(b"0123456789").unwrap();
        let stop = AtomicBool::new(false);
        let (digest, len) = sha256_at_offsets(&file, 10, &stop).unwrap();
        assert_eq!((digest, len), (Sha256::digest(b"0123456789").into(), 10));
        let (_, len) = sha256_at_offsets(&file, 4, &stop).unwrap();
        assert_eq!(len, 5, "one byte past the size it was told");
    }
}
