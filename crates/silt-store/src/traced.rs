//! A store whose every operation is a `store.request` span and counted
//! (see `silt-telemetry`): what it did, to which part of the key space,
//! how it ended, how many bytes moved, how often it was retried.
//!
//! Only `tracing` is used here. Without a subscriber that records spans
//! (no OTLP endpoint, no trace file) each operation costs a disabled
//! span and two disabled events: a few loads and branches.

use std::future::Future;

use tokio::io::AsyncWrite;
use tracing::Instrument as _;
use tracing::field::Empty;

use super::{
    GetOutcome, ListPage, ObjectKey, ObjectMeta, ObjectStore, PutMode, StoreError, UploadDigest,
    Version,
};

/// The target of silt's counter events (`silt_telemetry::METRICS_TARGET`).
pub const METRICS_TARGET: &str = "silt_metrics";

/// Wraps a store (outside [`super::Retrying`], so one span is one
/// operation with its retries).
pub struct Traced<S> {
    inner: S,
}

impl<S: ObjectStore> Traced<S> {
    /// Traces `inner`'s operations.
    pub fn new(inner: S) -> Self {
        Self { inner }
    }

    async fn run<T>(
        &self,
        op: &'static str,
        key: &str,
        work: impl Future<Output = Result<T, StoreError>>,
        describe: impl Fn(&T) -> (&'static str, u64),
    ) -> Result<T, StoreError> {
        let span = tracing::info_span!(
            "store.request",
            otel.kind = "client",
            silt.store.op = op,
            silt.store.key_prefix = key_prefix(key),
            silt.store.status = Empty,
            silt.store.bytes = Empty,
            silt.store.retries = Empty,
            otel.status_code = Empty,
            otel.status_description = Empty,
        );
        let outcome = work.instrument(span.clone()).await;
        let (status, bytes) = match &outcome {
            Ok(value) => describe(value),
            Err(err) => (error_status(err), 0),
        };
        if !span.is_disabled() {
            span.record("silt.store.status", status);
            span.record("silt.store.bytes", bytes);
            if let Err(StoreError::Backend { retryable, .. }) = &outcome {
                span.record("otel.status_code", "ERROR");
                // Not the backend's message: it names the key, which the
                // extension chose.
                span.record(
                    "otel.status_description",
                    if *retryable {
                        "the store failed (retryable)"
                    } else {
                        "the store failed"
                    },
                );
            }
        }
        tracing::event!(target: METRICS_TARGET, tracing::Level::INFO, { monotonic_counter.silt.store.requests = 1u64, op, status });
        if bytes > 0 {
            tracing::event!(target: METRICS_TARGET, tracing::Level::INFO, { monotonic_counter.silt.store.bytes = bytes, op });
        }
        outcome
    }
}

/// The part of the key space a key or listing prefix is in: its first
/// segment (`index`, `content`, `locks`, ...). The extension chose the
/// key, so only a short, plain segment is shown; anything else is
/// `(other)`.
fn key_prefix(key: &str) -> &str {
    let first = key.split('/').next().unwrap_or("");
    let plain = !first.is_empty()
        && first.len() <= 64
        && first
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if plain {
        first
    } else if first.is_empty() {
        ""
    } else {
        "(other)"
    }
}

/// The span's `silt.store.status` of a failed operation.
fn error_status(err: &StoreError) -> &'static str {
    match err {
        StoreError::NotFound { .. } => "not_found",
        StoreError::AlreadyExists { .. } => "already_exists",
        StoreError::PreconditionFailed { .. } => "precondition_failed",
        StoreError::Backend { .. } => "error",
        _ => "refused",
    }
}

impl<S: ObjectStore> std::fmt::Display for Traced<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.inner.fmt(f)
    }
}

#[async_trait::async_trait]
impl<S: ObjectStore> super::StoreWrapper for Traced<S> {
    type Inner = S;

    fn inner(&self) -> &S {
        &self.inner
    }

    async fn get(
        &self,
        key: &ObjectKey,
        if_none_match: Option<&Version>,
    ) -> Result<GetOutcome, StoreError> {
        self.run(
            "get",
            key.as_str(),
            self.inner.get(key, if_none_match),
            |got| match got {
                GetOutcome::Found(_, data) => ("ok", data.len() as u64),
                GetOutcome::NotModified => ("not_modified", 0),
            },
        )
        .await
    }

    async fn head(&self, key: &ObjectKey) -> Result<ObjectMeta, StoreError> {
        self.run("head", key.as_str(), self.inner.head(key), |_| ("ok", 0))
            .await
    }

    async fn put(
        &self,
        key: &ObjectKey,
        data: Vec<u8>,
        mode: PutMode,
    ) -> Result<Version, StoreError> {
        let bytes = data.len() as u64;
        self.run("put", key.as_str(), self.inner.put(key, data, mode), |_| {
            ("ok", bytes)
        })
        .await
    }

    async fn delete(&self, key: &ObjectKey, if_match: Option<&Version>) -> Result<(), StoreError> {
        self.run(
            "delete",
            key.as_str(),
            self.inner.delete(key, if_match),
            |()| ("ok", 0),
        )
        .await
    }

    async fn list(
        &self,
        prefix: &str,
        start_after: Option<&ObjectKey>,
        limit: u32,
    ) -> Result<ListPage, StoreError> {
        self.run(
            "list",
            prefix,
            self.inner.list(prefix, start_after, limit),
            |_| ("ok", 0),
        )
        .await
    }

    async fn get_into(
        &self,
        key: &ObjectKey,
        sink: &mut (dyn AsyncWrite + Unpin + Send),
    ) -> Result<ObjectMeta, StoreError> {
        self.run(
            "get",
            key.as_str(),
            self.inner.get_into(key, sink),
            |meta| ("ok", meta.size),
        )
        .await
    }

    async fn put_file(
        &self,
        key: &ObjectKey,
        file: std::fs::File,
        mode: PutMode,
    ) -> Result<Version, StoreError> {
        let bytes = upload_size(&file);
        self.run(
            "put",
            key.as_str(),
            self.inner.put_file(key, file, mode),
            |_| ("ok", bytes),
        )
        .await
    }

    async fn put_file_hashed(
        &self,
        key: &ObjectKey,
        file: std::fs::File,
        mode: PutMode,
    ) -> Result<(Version, UploadDigest), StoreError> {
        let bytes = upload_size(&file);
        self.run(
            "put",
            key.as_str(),
            self.inner.put_file_hashed(key, file, mode),
            |_| ("ok", bytes),
        )
        .await
    }
}

/// The size an upload of `file` sends, read from the open file (no path),
/// only when someone records it.
fn upload_size(file: &std::fs::File) -> u64 {
    if tracing::span_enabled!(tracing::Level::INFO) {
        file.metadata().map_or(0, |meta| meta.len())
    } else {
        0
    }
}

/// Notes on the current `store.request` span, and in the counters, that an
/// operation is being retried (called by the retry loop).
pub(crate) fn note_retry(operation: &str, retries: u32) {
    tracing::Span::current().record("silt.store.retries", retries);
    tracing::event!(target: METRICS_TARGET, tracing::Level::INFO, { monotonic_counter.silt.store.retries = 1u64, op = operation });
}

#[cfg(test)]
mod tests {
    use super::key_prefix;

    #[test]
    fn only_plain_first_segments_are_shown() {
        assert_eq!(key_prefix("index/vision/m-1/p"), "index");
        assert_eq!(key_prefix("content"), "content");
        assert_eq!(key_prefix(""), "");
        assert_eq!(key_prefix("ev\u{202e}il/x"), "(other)");
        assert_eq!(key_prefix(&"a".repeat(65)), "(other)");
        assert_eq!(key_prefix("a b/c"), "(other)");
    }
}
