//! Large downloads of the REST backends (GCS, Azure) as parallel ranged
//! reads, and the bound on parts in memory their transfers share: the first range streams into the sink while the next ones are
//! fetched ahead, each pinned to the version the first range answered, at
//! most `in_flight` ranges held in memory across the store's transfers,
//! and written in order (so a whole-object checksum is computed as the
//! bytes land).

use std::future::Future;
use std::sync::Arc;

use bytes::Bytes;
use futures_util::StreamExt as _;
use tokio::io::{AsyncWrite, AsyncWriteExt as _};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::rest::Common;
use super::{ObjectKey, RetryPolicy, StoreError};

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
    let range = response
        .headers()
        .get("content-range")
        .and_then(|value| value.to_str().ok())
        .and_then(content_range);
    match (response.status().as_u16(), range) {
        (206, Some((0, total))) if length <= total => Some(total),
        (200, None) if length < part_size => Some(length),
        _ => None,
    }
}

/// The body of a range answer, checked to be `length` bytes from
/// `offset` before it is read (a server that answers with the whole
/// object is not held in memory).
pub(crate) async fn range_body(
    common: &Common,
    key: &ObjectKey,
    response: reqwest::Response,
    offset: u64,
    length: u64,
) -> Result<Bytes, StoreError> {
    let answered = response
        .headers()
        .get("content-range")
        .and_then(|value| value.to_str().ok())
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
