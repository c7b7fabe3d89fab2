//! Downloads of the REST backends (GCS, Azure), and the bound on parts in
//! memory their transfers share. A backend says how to read its answers
//! ([`Source`]); [`download`] does the rest: an object of one range is
//! streamed whole; a larger one as parallel ranges, the first streaming
//! into the sink while the next ones are fetched ahead, each pinned to the
//! version the first answered, at most `in_flight` held in memory across
//! the store's transfers, written in order. Either way what arrived is
//! checked against the object's size and checksum as the store gives them.

use std::future::Future;
use std::sync::Arc;

use bytes::Bytes;
use futures_util::StreamExt as _;
use tokio::io::{AsyncWrite, AsyncWriteExt as _};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::rest::Common;
use super::{ObjectKey, ObjectMeta, RetryPolicy, StoreError, Version};

/// The size of a download's ranges.
pub(crate) const PART_SIZE: u64 = 16 << 20;
/// Ranges held in memory at once, across a store's downloads.
pub(crate) const IN_FLIGHT: usize = 8;

/// A store's ranged downloads: the range size and the shared bound on
/// ranges in memory.
pub(crate) struct Ranges {
    part_size: u64,
    in_flight: usize,
    permits: Arc<Semaphore>,
}

impl Default for Ranges {
    fn default() -> Self {
        Self::new(PART_SIZE, IN_FLIGHT)
    }
}

impl Ranges {
    /// Ranges of `part_size` bytes, at most `in_flight` in memory.
    pub(crate) fn new(part_size: u64, in_flight: usize) -> Self {
        Self {
            part_size: part_size.max(1),
            in_flight: in_flight.max(1),
            permits: Arc::new(Semaphore::new(in_flight.max(1))),
        }
    }

    /// Parts held in memory at once.
    pub(crate) fn in_flight(&self) -> usize {
        self.in_flight
    }

    /// A place for one part in memory (a range, or a block being sent),
    /// held until the part is done with.
    pub(crate) async fn permit(&self) -> OwnedSemaphorePermit {
        self.permits
            .clone()
            .acquire_owned()
            .await
            .expect("the semaphore is never closed")
    }

    /// The `Range` header of an object's first range.
    pub(crate) fn first_range(&self) -> String {
        format!("bytes=0-{}", self.part_size - 1)
    }

    /// The `Range` header of `length` bytes from `offset`.
    pub(crate) fn range(offset: u64, length: u64) -> String {
        format!("bytes={offset}-{}", offset + length - 1)
    }

    /// Writes an object of `size` bytes into `sink`: `first` (the answer
    /// to [`Self::first_range`], and `size`) as it streams, then the other ranges in
    /// order, got by `fetch(offset, length)` ahead of the writer. Every
    /// byte written is shown to `on_chunk` in order. Answers the bytes
    /// written.
    pub(crate) async fn download<F, Fut>(
        &self,
        common: &Common,
        key: &ObjectKey,
        (first, size): (reqwest::Response, u64),
        sink: &mut (dyn AsyncWrite + Unpin + Send),
        on_chunk: &mut (dyn FnMut(&[u8]) + Send),
        fetch: F,
    ) -> Result<u64, StoreError>
    where
        F: Fn(u64, u64) -> Fut,
        Fut: Future<Output = Result<Bytes, StoreError>>,
    {
        let first_length = first.content_length().unwrap_or(0);
        let offsets: Vec<u64> = (1..size.div_ceil(self.part_size))
            .map(|index| index * self.part_size)
            .collect();
        let (ahead, fetched) = tokio::sync::mpsc::channel(self.in_flight);
        let fetch_ahead = async {
            let mut parts = futures_util::stream::iter(offsets)
                .map(|offset| {
                    let length = self.part_size.min(size - offset);
                    self.fetch_with_permit(offset, length, &fetch)
                })
                .buffered(self.in_flight);
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
            let mut written = common.stream_into(key, first, sink, &mut *on_chunk).await?;
            if written != first_length {
                return Err(common.backend(
                    true,
                    format!(
                        "`{key}`: the first range ended after {written} of {first_length} bytes"
                    ),
                ));
            }
            while let Some(part) = fetched.recv().await {
                let (data, _permit) = part?;
                on_chunk(&data);
                sink.write_all(&data)
                    .await
                    .map_err(|err| super::local_io(key, &err))?;
                written += data.len() as u64;
            }
            sink.flush()
                .await
                .map_err(|err| super::local_io(key, &err))?;
            Ok(written)
        };
        // The writer decides: once it ends (done, or failed), whatever the
        // fetcher still waits on (a permit, a range's retries) is dropped.
        let mut fetch_ahead = std::pin::pin!(fetch_ahead);
        let mut write = std::pin::pin!(write);
        let mut fetching = true;
        loop {
            tokio::select! {
                written = &mut write => return written,
                () = &mut fetch_ahead, if fetching => fetching = false,
            }
        }
    }

    /// One range, with its permit (held until the writer has written it);
    /// retried on what may pass, bounded by attempts rather than the
    /// operation's budget (a range on a slow link may spend that on its
    /// first attempt; a stalled body is the client's timeout's to catch).
    async fn fetch_with_permit<F, Fut>(
        &self,
        offset: u64,
        length: u64,
        fetch: &F,
    ) -> Result<(Bytes, OwnedSemaphorePermit), StoreError>
    where
        F: Fn(u64, u64) -> Fut,
        Fut: Future<Output = Result<Bytes, StoreError>>,
    {
        let permit = self.permit().await;
        let retries = RetryPolicy {
            budget: std::time::Duration::from_secs(30 * 60),
            ..RetryPolicy::default()
        };
        let data = retries
            .run("download range", || fetch(offset, length))
            .await?;
        Ok((data, permit))
    }
}

/// What a download's answer says about the object it is of.
pub(crate) struct Arrival {
    /// Its version (GCS generation, Azure ETag); empty if none was given.
    pub(crate) version: String,
    /// Its size, where the answer says it.
    pub(crate) length: Option<u64>,
    /// Its checksum in the store's form (base64), where the store gives it.
    pub(crate) checksum: Option<String>,
    /// Its last modification, milliseconds since the Unix epoch.
    pub(crate) last_modified_ms: u64,
}

impl Arrival {
    /// The error when `size` bytes of checksum `checksum` (of kind `C`)
    /// are not the object this answer described.
    pub(crate) fn check<C: Checksum>(
        &self,
        key: &ObjectKey,
        size: u64,
        checksum: &str,
    ) -> Option<String> {
        if let Some(length) = self.length.filter(|&length| length != size) {
            return Some(format!("`{key}`: {size} bytes arrived of {length}"));
        }
        self.checksum
            .as_deref()
            .filter(|&expected| expected != checksum)
            .map(|expected| {
                format!(
                    "`{key}`: the bytes that arrived have {} {checksum}, the store's object {expected}",
                    C::NAME
                )
            })
    }

    /// The object's metadata, `size` bytes long.
    pub(crate) fn meta(self, key: &ObjectKey, size: u64) -> ObjectMeta {
        ObjectMeta {
            key: key.clone(),
            size,
            version: Version(self.version),
            last_modified_ms: self.last_modified_ms,
        }
    }
}

/// A checksum of bytes as they arrive, in the store's form.
pub(crate) trait Checksum: Send + Sized {
    /// Its name, for errors.
    const NAME: &'static str;
    /// Of nothing yet.
    fn new() -> Self;
    /// `bytes` more.
    fn update(&mut self, bytes: &[u8]);
    /// The checksum as the store writes it (base64).
    fn finish(self) -> String;

    /// Of `bytes`.
    fn of(bytes: &[u8]) -> String {
        let mut checksum = Self::new();
        checksum.update(bytes);
        checksum.finish()
    }
}

/// A REST backend's side of a download.
pub(crate) trait Source: Sync {
    /// The checksum the store gives of an object.
    type Checksum: Checksum;
    /// The store's name, prefix and errors.
    fn common(&self) -> &Common;
    /// Its ranged downloads.
    fn ranges(&self) -> &Ranges;
    /// What an answer of the store says about its object.
    fn arrival(response: &reqwest::Response) -> Arrival;
    /// The object named `full` whole (a successful answer).
    fn whole(
        &self,
        key: &ObjectKey,
        full: &str,
    ) -> impl Future<Output = Result<reqwest::Response, StoreError>> + Send;
    /// The store's answer (any status) to a request for `length` bytes
    /// from `offset` of the object while it is `version`: a 404 or 412 is
    /// another version (or none).
    fn range(
        &self,
        key: &ObjectKey,
        full: &str,
        version: &str,
        offset: u64,
        length: u64,
    ) -> impl Future<Output = Result<reqwest::Response, StoreError>> + Send;
    /// The error of a read's failing answer.
    fn read_error(
        &self,
        key: &ObjectKey,
        response: reqwest::Response,
    ) -> impl Future<Output = StoreError> + Send;
}

/// `length` bytes from `offset` of the object while it is `version`.
async fn fetch_range<S: Source>(
    source: &S,
    key: &ObjectKey,
    full: &str,
    version: &str,
    offset: u64,
    length: u64,
) -> Result<Bytes, StoreError> {
    let response = source.range(key, full, version, offset, length).await?;
    if matches!(response.status().as_u16(), 404 | 412) {
        return Err(source.common().backend(
            false,
            format!("`{key}` was replaced while it was being downloaded; fetch it again"),
        ));
    }
    if !response.status().is_success() {
        return Err(source.read_error(key, response).await);
    }
    range_body(source.common(), key, response, offset, length).await
}

/// Streams the object `full` into `sink`: `first` is the store's answer
/// to a request for its first range ([`Ranges::first_range`]), a success
/// or 416 (an empty object has no byte 0).
pub(crate) async fn download<S: Source>(
    source: &S,
    key: &ObjectKey,
    full: &str,
    first: reqwest::Response,
    sink: &mut (dyn AsyncWrite + Unpin + Send),
) -> Result<ObjectMeta, StoreError> {
    let part_size = source.ranges().part_size;
    // An empty object, an odd answer to a range (never trusted), or one
    // whose ranges could not be pinned to a version: read whole.
    let size = (first.status().as_u16() != 416)
        .then(|| size_from_first(&first, part_size))
        .flatten();
    let pinned = !S::arrival(&first).version.is_empty();
    let size = match size {
        Some(size) if first.content_length() == Some(size) => {
            crate::progress::expect(size);
            return whole_into(source, key, first, Some(size), sink).await;
        }
        Some(size) if pinned => size,
        size => {
            drop(first);
            let whole = source.whole(key, full).await?;
            let size = size.or(whole.content_length());
            if let Some(size) = size {
                crate::progress::expect(size);
            }
            return whole_into(source, key, whole, size, sink).await;
        }
    };
    crate::progress::expect(size);
    let mut arrival = S::arrival(&first);
    arrival.length = Some(size);
    let version = arrival.version.clone();
    let mut checksum = S::Checksum::new();
    let written = source
        .ranges()
        .download(
            source.common(),
            key,
            (first, size),
            sink,
            &mut |chunk| checksum.update(chunk),
            |offset, length| fetch_range(source, key, full, &version, offset, length),
        )
        .await?;
    if let Some(problem) = arrival.check::<S::Checksum>(key, written, &checksum.finish()) {
        return Err(source.common().backend(true, problem));
    }
    Ok(arrival.meta(key, written))
}

/// An object read whole into memory from its answer `response`, checked
/// against its size and checksum; refused before its body is read when it
/// is larger than [`crate::MAX_WHOLE_GET`].
pub(crate) async fn read_whole<S: Source>(
    source: &S,
    key: &ObjectKey,
    response: reqwest::Response,
) -> Result<(ObjectMeta, Vec<u8>), StoreError> {
    let arrival = S::arrival(&response);
    if let Some(length) = arrival.length.filter(|&l| l > crate::MAX_WHOLE_GET) {
        return Err(crate::too_large_to_get(key, length));
    }
    let data = response.bytes().await.map_err(|err| {
        source.common().backend(
            true,
            format!(
                "`{key}`: reading the body failed: {}",
                super::rest::request_words(&err)
            ),
        )
    })?;
    let size = data.len() as u64;
    if let Some(problem) = arrival.check::<S::Checksum>(key, size, &S::Checksum::of(&data)) {
        return Err(source.common().backend(true, problem));
    }
    Ok((arrival.meta(key, size), data.to_vec()))
}

/// Streams a whole object's answer (`size` bytes, if known) into `sink`,
/// checked against the object's size and checksum.
async fn whole_into<S: Source>(
    source: &S,
    key: &ObjectKey,
    response: reqwest::Response,
    size: Option<u64>,
    sink: &mut (dyn AsyncWrite + Unpin + Send),
) -> Result<ObjectMeta, StoreError> {
    let mut arrival = S::arrival(&response);
    arrival.length = size;
    let mut checksum = S::Checksum::new();
    let written = source
        .common()
        .stream_into(key, response, sink, |chunk| checksum.update(chunk))
        .await?;
    if let Some(problem) = arrival.check::<S::Checksum>(key, written, &checksum.finish()) {
        return Err(source.common().backend(true, problem));
    }
    Ok(arrival.meta(key, written))
}

/// The first byte and the object's size from a `Content-Range` of
/// `bytes a-b/size`.
pub(crate) fn content_range(value: &str) -> Option<(u64, u64)> {
    let (span, total) = value.trim().strip_prefix("bytes ")?.split_once('/')?;
    let start = span.split_once('-')?.0.trim().parse().ok()?;
    Some((start, total.trim().parse().ok()?))
}

/// The size of the object whose first range `response` answers, if it is
/// a proper answer to it (206 from byte 0, or a whole object shorter than
/// the range); `None` when the answer is odd and the object should be
/// read whole instead.
pub(crate) fn size_from_first(response: &reqwest::Response, part_size: u64) -> Option<u64> {
    let length = response.content_length()?;
    let range = super::rest::header(response, "content-range").and_then(content_range);
    match (response.status().as_u16(), range) {
        (206, Some((0, total))) if length <= total => Some(total),
        (200, None) if length < part_size => Some(length),
        _ => None,
    }
}

/// The body of a range answer, checked to be `length` bytes from
/// `offset` before it is read (a server that answers with the whole
/// object is not held in memory).
async fn range_body(
    common: &Common,
    key: &ObjectKey,
    response: reqwest::Response,
    offset: u64,
    length: u64,
) -> Result<Bytes, StoreError> {
    let answered = super::rest::header(&response, "content-range")
        .and_then(content_range)
        .map(|(start, _)| start);
    if response.status().as_u16() != 206
        || answered != Some(offset)
        || response.content_length() != Some(length)
    {
        return Err(common.backend(
            false,
            format!(
                "`{key}`: the server answered the range at {offset} with status {} from {answered:?} ({:?} bytes), not {length} bytes from there",
                response.status().as_u16(),
                response.content_length()
            ),
        ));
    }
    let data = response.bytes().await.map_err(|err| {
        common.backend(
            true,
            format!(
                "`{key}`: reading a range failed: {}",
                super::rest::request_words(&err)
            ),
        )
    })?;
    if data.len() as u64 != length {
        return Err(common.backend(
            true,
            format!(
                "`{key}`: the range at {offset} held {} bytes, not {length}",
                data.len()
            ),
        ));
    }
    Ok(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_content_range_names_the_start_and_the_size() {
        assert_eq!(content_range("bytes 0-15/100"), Some((0, 100)));
        assert_eq!(content_range("bytes 16-31/100"), Some((16, 100)));
        assert_eq!(content_range("bytes */100"), None);
    }
}
