//! Large objects in parts: uploads as multipart uploads, downloads as
//! ranged GETs, several parts in flight.
//!
//! - **Uploads** of at least [`PartSettings::threshold`] bytes: each part
//!   is read once from the file at its offset and sent from memory with
//!   its CRC32C (which the server checks; why not SHA-256: `landed`). An
//!   upload asked for the file's SHA-256 (`put_file_hashed`) hashes the
//!   parts it sends, in order, as they are read. The
//!   upload is completed with the precondition a single PUT carries
//!   (`If-None-Match: *` for a create; AWS, SeaweedFS and moto honour it
//!   there). What landed is checked against the composite CRC32C (the
//!   CRC32C of the parts' CRC32Cs, `…-N`) the server echoes, else the size
//!   a `HEAD` answers. A
//!   failed or cancelled upload is aborted; one a killed process left is
//!   found by [`S3Store::incomplete_uploads`] (gc aborts it).
//! - **Downloads** ask for the first part as a range; a larger object's
//!   other parts follow as ranged GETs pinned to the first answer's ETag
//!   (`If-Match`: an object replaced mid-way fails the attempt, never mixes
//!   two versions), fetched in parallel and written to the sink in order.
//!   The first part streams straight into the sink; only the parts ahead
//!   of it wait in memory.
//! - Parts held in memory, across every transfer of the store, share one
//!   bound ([`PartSettings::in_flight`]): at most `in_flight × part_size`
//!   bytes. A part takes its permit before the parts after it (FIFO), so
//!   the lowest part not yet written always holds one: no transfer waits
//!   on another's.

use std::sync::Arc;

use aws_sdk_s3::error::ProvideErrorMetadata as _;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{ChecksumAlgorithm, ChecksumMode, CompletedMultipartUpload, CompletedPart};
use futures_util::{StreamExt as _, TryStreamExt as _};
use sha2::{Digest as _, Sha256};
use tokio::io::{AsyncWrite, AsyncWriteExt as _};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::landed::{Algorithm, Sent, Stored, base64, crc32c, crc32c_composite};
use super::{Context, S3Store, millis};
use crate::{
    Leftover, LeftoverKind, ObjectKey, ObjectMeta, PutMode, RetryPolicy, StoreError, Sweep, Version,
};

const MIB: u64 = 1 << 20;
/// S3's limits: parts of 5 MiB to 5 GiB (the last may be smaller), at most
/// 10,000 of them.
const MIN_PART: u64 = 5 * MIB;
const MAX_PART: u64 = 5 << 30;
const MAX_PARTS: u64 = 10_000;

/// How large objects are split.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartSettings {
    /// Uploads of at least this many bytes go in parts.
    pub threshold: u64,
    /// The size of a part (raised for files too large for 10,000 parts);
    /// downloads larger than one part go in ranges of this size.
    pub part_size: u64,
    /// Parts in memory at once, across every transfer of the store.
    pub in_flight: usize,
}

impl Default for PartSettings {
    fn default() -> Self {
        Self {
            threshold: 64 * MIB,
            part_size: 16 * MIB,
            in_flight: 8,
        }
    }
}

impl PartSettings {
    /// These settings within S3's limits: a part of 5 MiB to 5 GiB, a
    /// threshold no smaller than a part, at least one part in flight.
    pub fn within_limits(self) -> Self {
        let part_size = self.part_size.clamp(MIN_PART, MAX_PART);
        Self {
            // Above 5 GiB one PUT is refused: such files go in parts.
            threshold: self.threshold.clamp(part_size, MAX_PART),
            part_size,
            in_flight: self.in_flight.max(1),
        }
    }

    /// The part size for an upload of `size` bytes: the configured one, or
    /// larger (whole MiB) when 10,000 parts of it would not hold the file.
    fn part_size_for(&self, size: u64) -> u64 {
        let needed = size.div_ceil(MAX_PARTS).div_ceil(MIB) * MIB;
        self.part_size.max(needed)
    }
}

/// The parts of a store's transfers: the settings and the shared bound.
#[derive(Debug, Clone)]
pub(super) struct Parts {
    pub settings: PartSettings,
    permits: Arc<Semaphore>,
}

impl Parts {
    pub fn new(settings: PartSettings) -> Self {
        let settings = settings.within_limits();
        Self {
            settings,
            permits: Arc::new(Semaphore::new(settings.in_flight)),
        }
    }

    async fn permit(&self) -> OwnedSemaphorePermit {
        self.permits
            .clone()
            .acquire_owned()
            .await
            .expect("the semaphore is never closed")
    }
}

/// How a multipart upload ended, when it did.
enum Completed {
    /// Completed: its version, what the answer says was stored, and what
    /// was sent (to check the one against the other).
    Landed(Version, Stored, Sent),
    /// An attempt's answer was lost, but the key holds exactly the parts
    /// sent (its composite SHA-256): this upload's version.
    FoundAsSent(Version),
}

/// Adds `part` to `hasher` (blocking, off the async threads); the caller
/// hands the parts in order.
async fn hash_part(
    key: ObjectKey,
    hasher: Arc<std::sync::Mutex<Sha256>>,
    part: ReadPart,
) -> Result<ReadPart, StoreError> {
    tokio::task::spawn_blocking(move || {
        hasher
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .update(&part.data);
        part
    })
    .await
    .map_err(|err| crate::local_io(&key, &std::io::Error::other(err)))
}

/// One part read into memory, holding its place in the store's bound.
struct ReadPart {
    _permit: OwnedSemaphorePermit,
    index: u64,
    data: bytes::Bytes,
    crc32c: u32,
}

/// One uploaded part, as `CompleteMultipartUpload` names it.
struct UploadedPart {
    number: i32,
    etag: String,
    crc32c: u32,
}

/// A multipart upload not yet completed: aborted when dropped (a failure,
/// or the caller cancelled), in the background, so the store keeps no
/// orphaned parts. A killed process cannot abort: `leftovers` finds those.
struct Pending {
    store: S3Store,
    full: String,
    upload_id: String,
    completed: bool,
}

impl Drop for Pending {
    fn drop(&mut self) {
        if self.completed {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let (store, full, upload_id) = (
            self.store.clone(),
            std::mem::take(&mut self.full),
            std::mem::take(&mut self.upload_id),
        );
        runtime.spawn(async move {
            if let Err(err) = store.abort_upload(&full, &upload_id).await {
                tracing::debug!("aborting the multipart upload of `{full}`: {err}");
            }
        });
    }
}

impl S3Store {
    /// Whether an upload of `size` bytes goes in parts with `mode`: an
    /// update stays one PUT (updates are index and lock objects, kilobytes;
    /// and moto ignores `If-Match` on `CompleteMultipartUpload`).
    pub(super) fn uploads_in_parts(&self, size: u64, mode: &PutMode) -> bool {
        size >= self.parts.settings.threshold && !matches!(mode, PutMode::Update(_))
    }

    /// Uploads `file` (`size` bytes) under `key` as a multipart upload;
    /// with `hash`, answers the SHA-256 of the parts it sent.
    pub(super) async fn put_in_parts(
        &self,
        key: &ObjectKey,
        file: std::fs::File,
        size: u64,
        mode: PutMode,
        hash: bool,
    ) -> Result<(Version, Option<[u8; 32]>), StoreError> {
        let full = self.full(key)?;
        let created = self
            .client
            .create_multipart_upload()
            .bucket(&self.bucket)
            .key(&full)
            .checksum_algorithm(ChecksumAlgorithm::Crc32C)
            .send()
            .await
            .map_err(|err| self.error(key.as_str(), Context::Other, err))?;
        self.saw_bucket();
        let upload_id = created
            .upload_id()
            .filter(|id| !id.is_empty())
            .ok_or_else(|| self.backend(false, format!("`{key}`: no upload id in the answer")))?
            .to_owned();
        // Dropped mid-way (the caller cancelled), the guard aborts in the
        // background; failed, the upload is aborted here, before the error
        // is returned (a command's runtime may end right after it, and a
        // background abort with it).
        let mut pending = Pending {
            store: self.clone(),
            full: full.clone(),
            upload_id: upload_id.clone(),
            completed: false,
        };
        let hasher = hash.then(|| Arc::new(std::sync::Mutex::new(Sha256::new())));
        let outcome = self
            .send_parts_and_complete(key, &full, &upload_id, file, size, &mode, hasher.clone())
            .await;
        pending.completed = true;
        let sha256 = || {
            hasher.map(|hasher| {
                let hasher = std::mem::take(&mut *hasher.lock().unwrap_or_else(|e| e.into_inner()));
                <[u8; 32]>::from(hasher.finalize())
            })
        };
        match outcome {
            Ok(Completed::Landed(version, stored, sent)) => {
                let version = self
                    .check_landed(key, &full, &version, stored, &sent, &mode)
                    .await?;
                Ok((version, sha256()))
            }
            Ok(Completed::FoundAsSent(version)) => Ok((version, sha256())),
            Err(err) => {
                if let Err(abort) = self.abort_upload(&full, &upload_id).await {
                    tracing::debug!("aborting the multipart upload of `{key}`: {abort}");
                }
                Err(err)
            }
        }
    }

    /// The parts of `file`, then the upload completed with `mode`'s
    /// precondition. Parts are read one after another, in order (each into
    /// `hasher`, when given, so it hashes exactly the bytes sent), and sent
    /// several at once.
    #[allow(clippy::too_many_arguments)]
    async fn send_parts_and_complete(
        &self,
        key: &ObjectKey,
        full: &str,
        upload_id: &str,
        file: std::fs::File,
        size: u64,
        mode: &PutMode,
        hasher: Option<Arc<std::sync::Mutex<Sha256>>>,
    ) -> Result<Completed, StoreError> {
        let part_size = self.parts.settings.part_size_for(size);
        let count = size.div_ceil(part_size).max(1);
        let file = Arc::new(file);
        // Each read owns what it uses: a future borrowing from here would
        // not be `Send` for every lifetime async-trait asks.
        let read = |index: u64| {
            let (store, key, file) = (self.clone(), key.clone(), file.clone());
            async move {
                let offset = index * part_size;
                let length = part_size.min(size - offset);
                store.read_part(&key, &file, index, offset, length).await
            }
        };
        let send = |part: ReadPart| self.upload_part(key, full, upload_id, part);
        let in_flight = self.parts.settings.in_flight;
        let mut parts: Vec<UploadedPart> = match hasher {
            // Each part read and sent by one task, several at once.
            None => {
                futures_util::stream::iter(0..count)
                    .map(|index| {
                        let read = read(index);
                        async move { send(read.await?).await }
                    })
                    .buffer_unordered(in_flight)
                    .try_collect()
                    .await?
            }
            // Read several at once but handed on in order, hashed one
            // after another, then sent several at once.
            Some(hasher) => {
                futures_util::stream::iter(0..count)
                    .map(read)
                    .buffered(in_flight)
                    .and_then(|part| hash_part(key.clone(), hasher.clone(), part))
                    .map(|part| async move { send(part?).await })
                    .buffer_unordered(in_flight)
                    .try_collect()
                    .await?
            }
        };
        parts.sort_by_key(|part| part.number);
        let crcs: Vec<u32> = parts.iter().map(|part| part.crc32c).collect();
        let sent = Sent {
            size,
            algorithm: Algorithm::Crc32c,
            checksum_base64: crc32c_composite(&crcs),
        };
        let completed = CompletedMultipartUpload::builder()
            .set_parts(Some(
                parts
                    .iter()
                    .map(|part| {
                        CompletedPart::builder()
                            .part_number(part.number)
                            .e_tag(&part.etag)
                            .checksum_crc32_c(base64(&part.crc32c.to_be_bytes()))
                            .build()
                    })
                    .collect(),
            ))
            .build();
        let context = match mode {
            PutMode::Create => Context::Create,
            _ => Context::Other,
        };
        // Complete is retried on what may pass; an attempt whose answer
        // was lost may have landed, so a later "exists" (or any failure
        // but a definite one) is checked against the key: if it holds
        // exactly these parts, the upload was this one.
        let mut attempt: u32 = 0;
        let mut ambiguous = false;
        loop {
            attempt += 1;
            let mut request = self
                .client
                .complete_multipart_upload()
                .bucket(&self.bucket)
                .key(full)
                .upload_id(upload_id)
                .multipart_upload(completed.clone());
            if matches!(mode, PutMode::Create) {
                request = request.if_none_match("*");
            }
            let err = match request.send().await {
                Ok(output) => {
                    let version = Version(output.e_tag().unwrap_or_default().to_owned());
                    let stored = Stored {
                        crc32c_base64: output.checksum_crc32_c().map(str::to_owned),
                        ..Stored::default()
                    };
                    return Ok(Completed::Landed(version, stored, sent));
                }
                Err(err) => {
                    let no_such_upload = err.code() == Some("NoSuchUpload");
                    let err = self.error(key.as_str(), context, err);
                    if no_such_upload {
                        self.backend(
                            false,
                            format!("`{key}`: the multipart upload was aborted before it completed (by `silt datastore gc` after a long pause, or by hand); put the file again"),
                        )
                    } else {
                        err
                    }
                }
            };
            let definite = matches!(
                err,
                StoreError::AlreadyExists { .. } | StoreError::PreconditionFailed { .. }
            ) && !ambiguous;
            if !definite && let Some(version) = self.completed_as_sent(full, &sent).await {
                return Ok(Completed::FoundAsSent(version));
            }
            let retryable = matches!(
                err,
                StoreError::Backend {
                    retryable: true,
                    ..
                }
            );
            if !retryable || attempt >= 3 {
                return Err(err);
            }
            ambiguous = true;
            tokio::time::sleep(std::time::Duration::from_millis(200 * u64::from(attempt))).await;
        }
    }

    /// Reads one part at `offset` into memory, once it may (the store's
    /// bound on parts in memory), with its CRC32C (blocking, off the async
    /// threads).
    async fn read_part(
        &self,
        key: &ObjectKey,
        file: &Arc<std::fs::File>,
        index: u64,
        offset: u64,
        length: u64,
    ) -> Result<ReadPart, StoreError> {
        let permit = self.parts.permit().await;
        let file = file.clone();
        let read = tokio::task::spawn_blocking(move || {
            use std::os::unix::fs::FileExt as _;
            let mut data = vec![0u8; usize::try_from(length).expect("a part fits in memory")];
            file.read_exact_at(&mut data, offset)?;
            let crc32c = crc32c(&data);
            Ok::<_, std::io::Error>((bytes::Bytes::from(data), crc32c))
        })
        .await
        .map_err(|err| crate::local_io(key, &std::io::Error::other(err)))?;
        let (data, crc32c) = read.map_err(|err| crate::local_io(key, &err))?;
        Ok(ReadPart {
            _permit: permit,
            index,
            data,
            crc32c,
        })
    }

    /// Sends one part read by [`Self::read_part`], retrying what may pass
    /// on a second try.
    async fn upload_part(
        &self,
        key: &ObjectKey,
        full: &str,
        upload_id: &str,
        part: ReadPart,
    ) -> Result<UploadedPart, StoreError> {
        let ReadPart {
            _permit,
            index,
            data,
            crc32c,
        } = part;
        let length = data.len() as u64;
        let number = i32::try_from(index + 1).expect("at most 10,000 parts");
        let checksum = base64(&crc32c.to_be_bytes());
        let answer = part_retries()
            .run("upload part", || async {
                self.client
                    .upload_part()
                    .bucket(&self.bucket)
                    .key(full)
                    .upload_id(upload_id)
                    .part_number(number)
                    .content_length(i64::try_from(length).unwrap_or(i64::MAX))
                    .checksum_crc32_c(&checksum)
                    .body(ByteStream::from(data.clone()))
                    // The server checks the part's CRC32C above: a hash of
                    // it for the signature would only cost CPU.
                    .customize()
                    .disable_payload_signing()
                    .send()
                    .await
                    .map_err(|err| self.error(key.as_str(), Context::Other, err))
            })
            .await?;
        if let Some(echoed) = answer.checksum_crc32_c()
            && echoed != checksum
        {
            return Err(self.backend(
                true,
                format!(
                    "`{key}`: part {number} did not land as sent (CRC32C {echoed}, sent {checksum})"
                ),
            ));
        }
        crate::progress::moved(length);
        let etag = answer
            .e_tag()
            .filter(|etag| !etag.is_empty())
            .ok_or_else(|| self.backend(false, format!("`{key}`: no ETag for part {number}")))?
            .to_owned();
        Ok(UploadedPart {
            number,
            etag,
            crc32c,
        })
    }

    /// The version of the object at `full` when it is the upload `sent`
    /// describes, by the composite CRC32C the store answers for it; `None`
    /// when it is not, or cannot be told (a store that names no checksum:
    /// a size and a part count would take an earlier object of the same
    /// shape for this one).
    async fn completed_as_sent(&self, full: &str, sent: &Sent) -> Option<Version> {
        let head = self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(full)
            .checksum_mode(ChecksumMode::Enabled)
            .send()
            .await
            .ok()?;
        let same = head
            .checksum_crc32_c()
            .is_some_and(|echoed| sent.checksum_is(echoed))
            && head.content_length() == i64::try_from(sent.size).ok();
        same.then(|| Version(head.e_tag().unwrap_or_default().to_owned()))
    }

    /// Aborts the multipart upload `upload_id` of `full`.
    pub(super) async fn abort_upload(&self, full: &str, upload_id: &str) -> Result<(), StoreError> {
        self.client
            .abort_multipart_upload()
            .bucket(&self.bucket)
            .key(full)
            .upload_id(upload_id)
            .send()
            .await
            .map(|_| ())
            .map_err(|err| self.housekeeping_error(full, err))
    }

    /// Streams the object at `key` into `sink`: one GET for an object of
    /// one part, ranged GETs in parallel beyond that.
    pub(super) async fn get_in_parts(
        &self,
        key: &ObjectKey,
        sink: &mut (dyn AsyncWrite + Unpin + Send),
    ) -> Result<ObjectMeta, StoreError> {
        let full = self.full(key)?;
        let part_size = self.parts.settings.part_size;
        let first = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(&full)
            .range(format!("bytes=0-{}", part_size - 1))
            .send()
            .await;
        let output = match first {
            Ok(output) => output,
            // An empty object has no byte 0: read it whole.
            Err(err)
                if err
                    .raw_response()
                    .is_some_and(|r| r.status().as_u16() == 416) =>
            {
                return self.get_whole_into(key, &full, sink).await;
            }
            Err(err) => return Err(self.error(key.as_str(), Context::Read, err)),
        };
        self.saw_bucket();
        let version = Version(output.e_tag().unwrap_or_default().to_owned());
        let last_modified_ms = millis(output.last_modified());
        let first_length = output.content_length().unwrap_or(0).max(0) as u64;
        let size = match output.content_range().map(range_start_and_total) {
            Some(Some((0, total))) if first_length <= total => total,
            // A server that ignored the range sends the whole object, and
            // no range: it is whole when shorter than the range asked for.
            None if first_length < part_size => first_length,
            // A range answered oddly (no size, another start, a range
            // missing on a full-length answer): the object is read whole
            // instead, never taken for the first part's bytes alone.
            _ => {
                drop(output);
                return self.get_whole_into(key, &full, sink).await;
            }
        };
        crate::progress::expect(size);
        let meta = ObjectMeta {
            key: key.clone(),
            size,
            version,
            last_modified_ms,
        };
        if first_length >= size {
            let written = self.stream_into(key, output.body, sink).await?;
            return self.whole(meta, written);
        }
        if meta.version.0.is_empty() {
            return Err(self.backend(
                false,
                format!("`{key}`: the server answered without an ETag, so its ranges cannot be pinned to one version"),
            ));
        }

        // Parts 2.. are fetched ahead (each with its permit, in order)
        // while the first streams into the sink; the writer then takes
        // them in order. The channel holds no more than the permits allow.
        let in_flight = self.parts.settings.in_flight;
        let (ahead, fetched) = tokio::sync::mpsc::channel(in_flight);
        let offsets: Vec<u64> = (1..size.div_ceil(part_size))
            .map(|index| index * part_size)
            .collect();
        let fetch = async {
            let mut parts = futures_util::stream::iter(offsets)
                .map(|offset| {
                    let length = part_size.min(size - offset);
                    self.fetch_range(key, &full, &meta.version, offset, length)
                })
                .buffered(in_flight);
            while let Some(part) = parts.next().await {
                let failed = part.is_err();
                if ahead.send(part).await.is_err() || failed {
                    break;
                }
            }
            drop(ahead);
        };
        let write = async {
            // Owned here: once the writer stops (done, or failed), the
            // fetcher's next send fails and it stops too.
            let mut fetched = fetched;
            let mut written = self.stream_into(key, output.body, sink).await?;
            if written != first_length {
                return Err(self.backend(
                    true,
                    format!(
                        "`{key}`: the first part ended after {written} of {first_length} bytes"
                    ),
                ));
            }
            while let Some(part) = fetched.recv().await {
                let (data, _permit) = part?;
                sink.write_all(&data)
                    .await
                    .map_err(|err| crate::local_io(key, &err))?;
                written += data.len() as u64;
            }
            sink.flush()
                .await
                .map_err(|err| crate::local_io(key, &err))?;
            Ok(written)
        };
        let ((), written) = tokio::join!(fetch, write);
        self.whole(meta, written?)
    }

    /// `meta`, when `written` is all of the object.
    fn whole(&self, meta: ObjectMeta, written: u64) -> Result<ObjectMeta, StoreError> {
        if written == meta.size {
            Ok(meta)
        } else {
            Err(self.backend(
                true,
                format!(
                    "`{}`: {written} of its {} bytes arrived",
                    meta.key, meta.size
                ),
            ))
        }
    }

    /// One range of the object `version`, whole, with its permit (held
    /// until the writer has written it); retried on what may pass.
    async fn fetch_range(
        &self,
        key: &ObjectKey,
        full: &str,
        version: &Version,
        offset: u64,
        length: u64,
    ) -> Result<(bytes::Bytes, OwnedSemaphorePermit), StoreError> {
        let permit = self.parts.permit().await;
        let range = format!("bytes={offset}-{}", offset + length - 1);
        let data = part_retries()
            .run("download part", || async {
                let output = self
                    .client
                    .get_object()
                    .bucket(&self.bucket)
                    .key(full)
                    .range(&range)
                    .if_match(&version.0)
                    .send()
                    .await
                    .map_err(|err| match self.error(key.as_str(), Context::Read, err) {
                        // Asking again gets the same answer: not retried.
                        StoreError::PreconditionFailed { .. } => self.backend(
                            false,
                            format!("`{key}` was replaced while it was being downloaded; fetch it again"),
                        ),
                        other => other,
                    })?;
                // Checked before the body is read: a server that answers
                // a range with the whole object is not held in memory.
                let answered = output.content_range().and_then(range_start_and_total);
                if answered.map(|(start, _)| start) != Some(offset)
                    || output.content_length() != i64::try_from(length).ok()
                {
                    return Err(self.backend(
                        false,
                        format!(
                            "`{key}`: the server answered the range at {offset} with {:?} ({:?} bytes), not {length} bytes from there",
                            output.content_range(),
                            output.content_length()
                        ),
                    ));
                }
                let data = output
                    .body
                    .collect()
                    .await
                    .map_err(|err| {
                        self.backend(true, format!("`{key}`: reading a part failed: {err}"))
                    })?
                    .into_bytes();
                if data.len() as u64 != length {
                    return Err(self.backend(
                        true,
                        format!(
                            "`{key}`: the range at {offset} held {} bytes, not {length}",
                            data.len()
                        ),
                    ));
                }
                Ok(data)
            })
            .await?;
        Ok((data, permit))
    }

    /// Reads the object whole (a plain GET) into `sink`.
    async fn get_whole_into(
        &self,
        key: &ObjectKey,
        full: &str,
        sink: &mut (dyn AsyncWrite + Unpin + Send),
    ) -> Result<ObjectMeta, StoreError> {
        let output = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(full)
            .send()
            .await
            .map_err(|err| self.error(key.as_str(), Context::Read, err))?;
        let meta = ObjectMeta {
            key: key.clone(),
            size: output.content_length().unwrap_or(0).max(0) as u64,
            version: Version(output.e_tag().unwrap_or_default().to_owned()),
            last_modified_ms: millis(output.last_modified()),
        };
        crate::progress::expect(meta.size);
        let written = self.stream_into(key, output.body, sink).await?;
        self.whole(meta, written)
    }

    /// Writes `body` into `sink` as it arrives; the bytes written.
    async fn stream_into(
        &self,
        key: &ObjectKey,
        mut body: ByteStream,
        sink: &mut (dyn AsyncWrite + Unpin + Send),
    ) -> Result<u64, StoreError> {
        let mut written = 0u64;
        while let Some(chunk) = body
            .try_next()
            .await
            .map_err(|err| self.backend(true, format!("`{key}`: reading the body failed: {err}")))?
        {
            sink.write_all(&chunk)
                .await
                .map_err(|err| crate::local_io(key, &err))?;
            written += chunk.len() as u64;
        }
        sink.flush()
            .await
            .map_err(|err| crate::local_io(key, &err))?;
        Ok(written)
    }

    /// The multipart uploads below the directory `prefix` names (relative
    /// to the store's own prefix) never completed or aborted, idle for
    /// longer than `sweep.older_than` (by the later of its start and its
    /// last part: one still sending parts is never taken); aborted when
    /// `sweep` says so.
    ///
    /// A root that is the whole bucket (no prefix, no namespace) reports
    /// none: its listing would take in every other tool's uploads in the
    /// bucket, which silt cannot tell from its own.
    pub(super) async fn incomplete_uploads(
        &self,
        prefix: &str,
        sweep: Sweep,
    ) -> Result<Vec<Leftover>, StoreError> {
        let dir = prefix.rfind('/').map_or("", |end| &prefix[..=end]);
        let scope = format!("{}{dir}", self.prefix);
        if scope.is_empty() {
            tracing::debug!(
                "{self}: the datastore is the whole bucket; its incomplete multipart uploads cannot be told from other tools' and are left alone (an S3 lifecycle rule can abort them)"
            );
            return Ok(Vec::new());
        }
        let now = now_ms();
        let before_ms = now.saturating_sub(sweep.older_than.as_millis() as u64);
        let mut found = Vec::new();
        let (mut key_marker, mut id_marker) = (None::<String>, None::<String>);
        loop {
            let page = self
                .client
                .list_multipart_uploads()
                .bucket(&self.bucket)
                .prefix(&scope)
                .set_key_marker(key_marker.clone())
                .set_upload_id_marker(id_marker.clone())
                .send()
                .await
                .map_err(|err| self.housekeeping_error(prefix, err))?;
            for upload in page.uploads() {
                let (Some(full), Some(id)) = (upload.key(), upload.upload_id()) else {
                    continue;
                };
                let (size, last_part_ms) = self.uploaded_parts(full, id).await?;
                // SeaweedFS names no start: the last part's time stands
                // in. With neither (an upload without parts there), its
                // age is unknown and it holds no bytes: left alone.
                let last_active_ms = match upload.initiated() {
                    Some(initiated) => millis(Some(initiated)).max(last_part_ms),
                    None if last_part_ms == 0 => continue,
                    None => last_part_ms,
                };
                if last_active_ms > before_ms {
                    continue;
                }
                if sweep.remove {
                    match self.abort_upload(full, id).await {
                        // Completed or aborted since it was listed.
                        Ok(()) | Err(StoreError::NotFound { .. }) => {}
                        Err(err) => return Err(err),
                    }
                }
                found.push(Leftover {
                    path: full.strip_prefix(&self.prefix).unwrap_or(full).to_owned(),
                    size,
                    modified_ms: last_active_ms,
                    kind: LeftoverKind::IncompleteUpload,
                });
            }
            if !page.is_truncated().unwrap_or(false) {
                return Ok(found);
            }
            let next = (
                page.next_key_marker().map(str::to_owned),
                page.next_upload_id_marker().map(str::to_owned),
            );
            if next.0.is_none() || next == (key_marker.clone(), id_marker.clone()) {
                return Ok(found);
            }
            (key_marker, id_marker) = next;
        }
    }

    /// The bytes in the parts of upload `id` of `full` so far, and when
    /// the last of them was written (0: no part), over every page.
    async fn uploaded_parts(&self, full: &str, id: &str) -> Result<(u64, u64), StoreError> {
        let (mut bytes, mut last_ms) = (0u64, 0u64);
        let mut marker: Option<String> = None;
        loop {
            let page = self
                .client
                .list_parts()
                .bucket(&self.bucket)
                .key(full)
                .upload_id(id)
                .set_part_number_marker(marker.clone())
                .send()
                .await;
            let page = match page {
                Ok(page) => page,
                // Completed or aborted since it was listed: nothing left.
                Err(err) if err.code() == Some("NoSuchUpload") => return Ok((0, 0)),
                Err(err) => return Err(self.housekeeping_error(full, err)),
            };
            for part in page.parts() {
                bytes += part.size().unwrap_or(0).max(0) as u64;
                last_ms = last_ms.max(millis(part.last_modified()));
            }
            let next = page.next_part_number_marker().map(str::to_owned);
            if !page.is_truncated().unwrap_or(false) || next.is_none() || next == marker {
                return Ok((bytes, last_ms));
            }
            marker = next;
        }
    }

    /// The error of a request that only tidies up: access denied to it is
    /// said as such (a policy without the multipart permissions), not
    /// remembered as the command's credentials failure, which would stand
    /// in for every later error.
    fn housekeeping_error<E>(
        &self,
        what: &str,
        err: aws_sdk_s3::error::SdkError<E, aws_sdk_s3::config::http::HttpResponse>,
    ) -> StoreError
    where
        E: aws_sdk_s3::error::ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        if err
            .raw_response()
            .is_some_and(|r| r.status().as_u16() == 403)
        {
            return self.backend(
                false,
                format!(
                    "`{what}`: access denied to the store's multipart uploads; grant s3:ListBucketMultipartUploads, s3:ListMultipartUploadParts and s3:AbortMultipartUpload to let gc clean them"
                ),
            );
        }
        self.error(what, Context::Other, err)
    }
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| since.as_millis() as u64)
}

/// Retries of one part: bounded by attempts, not by the operation's
/// time budget, which a part on a slow link may spend on its first
/// attempt (a stalled body is the client's stall protection's to catch).
fn part_retries() -> RetryPolicy {
    RetryPolicy {
        budget: std::time::Duration::from_secs(30 * 60),
        ..RetryPolicy::default()
    }
}

/// The first byte and the object's size from a `Content-Range` of
/// `bytes a-b/size`.
fn range_start_and_total(range: &str) -> Option<(u64, u64)> {
    let (span, total) = range.trim().strip_prefix("bytes ")?.split_once('/')?;
    let start = span.split_once('-')?.0.trim().parse().ok()?;
    Some((start, total.trim().parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_fit_s3s_limits() {
        let settings = PartSettings {
            threshold: 0,
            part_size: 1,
            in_flight: 0,
        }
        .within_limits();
        assert_eq!(settings.part_size, MIN_PART);
        assert_eq!(settings.threshold, MIN_PART);
        assert_eq!(settings.in_flight, 1);
        let default = PartSettings::default();
        assert_eq!(default.part_size_for(6 << 30), default.part_size);
        // 5 TiB, S3's largest object, in at most 10,000 parts.
        let largest = 5u64 << 40;
        let part = default.part_size_for(largest);
        assert!(largest.div_ceil(part) <= MAX_PARTS, "{part}");
        assert_eq!(part % MIB, 0);
    }

    #[test]
    fn a_content_range_names_the_start_and_the_size() {
        assert_eq!(range_start_and_total("bytes 0-9/10"), Some((0, 10)));
        assert_eq!(range_start_and_total("bytes 16-31/40"), Some((16, 40)));
        assert_eq!(range_start_and_total("bytes 0-9/*"), None);
        assert_eq!(range_start_and_total("0-9/10"), None);
    }
}
