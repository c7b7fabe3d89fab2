//! What the REST backends (GCS, Azure) share: the store's name, key prefix
//! and remembered credentials failure ([`Common`]), the HTTP client, the
//! mapping of transport errors, the error for an upload that did not land
//! as sent, streaming a download into a sink and a file into an upload,
//! and the encodings of URLs and forms.

use std::future::Future;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::StreamExt as _;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC};
use tokio::io::{AsyncWrite, AsyncWriteExt as _};

use super::{ObjectKey, PutMode, StoreError};

/// The characters percent-encoded in a URL component or a form value:
/// everything but RFC 3986's unreserved ones.
pub(crate) const COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// `text` as a URL component.
pub(crate) fn encode(text: &str) -> String {
    percent_encoding::utf8_percent_encode(text, COMPONENT).to_string()
}

/// `pairs` as an `application/x-www-form-urlencoded` body.
pub(crate) fn form_body(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(name, value)| format!("{}={}", encode(name), encode(value)))
        .collect::<Vec<_>>()
        .join("&")
}

/// The HTTP clients of one store; retries are [`super::Retrying`]'s.
pub(crate) struct Clients {
    /// For requests whose bodies are small: `request_timeout` bounds
    /// connecting and each wait for the server's bytes, from the moment
    /// the request is sent (its body included).
    pub(crate) small: reqwest::Client,
    /// For uploads of files and parts, which may take longer than the
    /// timeout to send: connecting is bounded, the rest is watched
    /// ([`UploadWatch`], [`Common::send_upload`]).
    pub(crate) upload: reqwest::Client,
}

impl Clients {
    /// Both clients with `request_timeout`.
    pub(crate) fn new(request_timeout: Duration) -> Result<Self, String> {
        let failed = |err: reqwest::Error| format!("the HTTP client cannot start: {err}");
        Ok(Self {
            small: reqwest::Client::builder()
                .connect_timeout(request_timeout)
                .read_timeout(request_timeout)
                .build()
                .map_err(failed)?,
            upload: reqwest::Client::builder()
                .connect_timeout(request_timeout)
                .build()
                .map_err(failed)?,
        })
    }
}

/// An upload's progress, for telling a slow upload from a stalled one: the
/// time its body last gave the client bytes to send (the client takes them
/// only as the server reads), and then the wait for the answer after the
/// last of them.
pub(crate) struct UploadWatch {
    started: Instant,
    last_ms: AtomicU64,
}

impl UploadWatch {
    /// A watch whose clock starts now.
    pub(crate) fn new() -> std::sync::Arc<Self> {
        std::sync::Arc::new(Self {
            started: Instant::now(),
            last_ms: AtomicU64::new(0),
        })
    }

    /// Bytes were taken for sending.
    pub(crate) fn touch(&self) {
        self.last_ms
            .store(self.started.elapsed().as_millis() as u64, Ordering::Relaxed);
    }

    /// Resolves once nothing has moved for `timeout`.
    async fn stalled(&self, timeout: Duration) {
        loop {
            let last = Duration::from_millis(self.last_ms.load(Ordering::Relaxed));
            let idle = self.started.elapsed().saturating_sub(last);
            if idle >= timeout {
                return;
            }
            tokio::time::sleep(timeout - idle).await;
        }
    }
}

/// `data` as a body sent in 64 KiB pieces, each taken one shown to `watch`.
pub(crate) fn watched_bytes(data: Bytes, watch: std::sync::Arc<UploadWatch>) -> reqwest::Body {
    let pieces: Vec<Bytes> = slices(&data).collect();
    reqwest::Body::wrap_stream(futures_util::stream::iter(pieces).map(move |piece| {
        watch.touch();
        Ok::<_, std::io::Error>(piece)
    }))
}

/// How an operation reads a 404, a 409 and a 412.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Context {
    /// A read: 404 is a missing object.
    Read,
    /// A create-only write: 409 or 412 is an object already there.
    Create,
    /// An update or delete on a version: 404 or 412 is another version.
    Conditional,
    /// An unconditional write or delete.
    Other,
}

/// What a backend tells the user when the store refuses its credentials
/// (401) or their permission (403).
pub(crate) struct Refusals {
    /// The credentials were refused: which settings to check.
    pub refused: String,
    /// They lack a permission: which role to grant.
    pub forbidden: String,
}

/// A store's name, its key prefix inside the bucket or container, and the
/// first credentials failure a request met (every later one meets it too).
pub(crate) struct Common {
    display: String,
    prefix: String,
    credentials_failure: Mutex<Option<StoreError>>,
    request_timeout: Duration,
    /// Refusals (401) of the store since its last success.
    refusals: AtomicU32,
}

impl std::fmt::Display for Common {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.display)
    }
}

impl Common {
    /// A store named `display` whose keys live under `prefix` (no leading
    /// or trailing `/`, or empty), waiting at most `request_timeout` for a
    /// server that has stopped.
    pub(crate) fn new(display: String, prefix: &str, request_timeout: Duration) -> Self {
        Self {
            display,
            prefix: if prefix.is_empty() {
                String::new()
            } else {
                format!("{prefix}/")
            },
            credentials_failure: Mutex::new(None),
            request_timeout,
            refusals: AtomicU32::new(0),
        }
    }

    /// Sends `request` and answers its response, of any status; a request
    /// that got no answer is a retryable error. With `watch`, an upload
    /// whose body has stopped moving, or whose answer has not come, for
    /// the request timeout is one too.
    pub(crate) async fn dispatch(
        &self,
        key: &str,
        request: reqwest::RequestBuilder,
        watch: Option<&UploadWatch>,
    ) -> Result<reqwest::Response, StoreError> {
        let answer = match watch {
            None => request.send().await,
            Some(watch) => {
                watch.touch();
                tokio::select! {
                    answer = request.send() => answer,
                    () = watch.stalled(self.request_timeout) => {
                        return Err(self.backend(
                            true,
                            format!(
                                "`{key}`: the server took no bytes of the upload, or did not answer it, for {:.1} s (is it overloaded or stopped?)",
                                self.request_timeout.as_secs_f64()
                            ),
                        ));
                    }
                }
            }
        };
        let response = answer.map_err(|err| self.transport_error(key, &err))?;
        if response.status().as_u16() != 401 {
            self.refusals.store(0, Ordering::Relaxed);
        }
        Ok(response)
    }

    /// `read` (an answer's body, on the client without a read timeout),
    /// within the request timeout: a server that answered and then stalled
    /// is a retryable error, never a hang.
    pub(crate) async fn within<T>(
        &self,
        key: &str,
        read: impl Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        tokio::time::timeout(self.request_timeout, read)
            .await
            .unwrap_or_else(|_| {
                Err(self.backend(
                    true,
                    format!("`{key}`: the server stopped in the middle of its answer"),
                ))
            })
    }

    /// The error of a 401 for a store whose access tokens expire: the
    /// first since a success is retryable (the caller has dropped the
    /// token, so the retry gets a new one); the next is the credentials'
    /// failure.
    pub(crate) fn token_refused(&self, refused: String) -> StoreError {
        if self.refusals.fetch_add(1, Ordering::Relaxed) == 0 {
            self.backend(
                true,
                "the store refused the access token; a new one is fetched".to_owned(),
            )
        } else {
            self.credentials_error(refused)
        }
    }

    /// `key` under the prefix; too long with it is an invalid key, the same
    /// on every backend.
    pub(crate) fn full(&self, key: &ObjectKey) -> Result<String, StoreError> {
        let full = format!("{}{key}", self.prefix);
        ObjectKey::new(&full)?;
        Ok(full)
    }

    /// The key of an object named `full`, if it is under the prefix.
    pub(crate) fn relative(&self, full: &str) -> Option<ObjectKey> {
        ObjectKey::new(full.strip_prefix(&self.prefix)?).ok()
    }

    /// The prefix with its trailing `/` (or empty).
    pub(crate) fn prefix(&self) -> &str {
        &self.prefix
    }

    /// A backend error of this store.
    pub(crate) fn backend(&self, retryable: bool, detail: String) -> StoreError {
        StoreError::Backend {
            store: self.display.clone(),
            retryable,
            detail,
        }
    }

    /// The error for credentials none of the sources gave, or the store
    /// refused; remembered for [`Self::credentials_failure`].
    pub(crate) fn credentials_error(&self, detail: String) -> StoreError {
        let err = StoreError::Credentials {
            store: self.display.clone(),
            detail,
        };
        if let Ok(mut first) = self.credentials_failure.lock() {
            first.get_or_insert_with(|| err.clone());
        }
        err
    }

    /// The first credentials failure, if a request met one.
    pub(crate) fn credentials_failure(&self) -> Option<StoreError> {
        self.credentials_failure
            .lock()
            .ok()
            .and_then(|first| first.clone())
    }

    /// The error of an answer with a failing `status` (`detail`: the
    /// server's words or code), by what the operation was (`context`).
    /// A 404 of a read is [`StoreError::NotFound`], which a backend may
    /// still tell from a missing bucket.
    pub(crate) fn status_error(
        &self,
        key: &str,
        status: u16,
        context: Context,
        detail: &str,
        refusals: impl FnOnce() -> Refusals,
    ) -> StoreError {
        let key = key.to_owned();
        match (status, context) {
            (409 | 412, Context::Create) => StoreError::AlreadyExists { key },
            (404 | 412, Context::Conditional) => StoreError::PreconditionFailed { key },
            (404, _) => StoreError::NotFound { key },
            (401, _) => self.credentials_error(refusals().refused),
            (403, _) => self.credentials_error(refusals().forbidden),
            (408 | 429 | 500..=599, _) => self.backend(
                true,
                format!("`{key}`: the server answered {status}: {detail}"),
            ),
            _ => self.backend(
                false,
                format!("`{key}`: the server answered {status}: {detail}"),
            ),
        }
    }

    /// The error of a request that got no answer: retryable, in words.
    pub(crate) fn transport_error(&self, key: &str, err: &reqwest::Error) -> StoreError {
        let detail = if err.is_timeout() {
            format!("`{key}`: the server did not answer in time (is it overloaded or stopped?)")
        } else if err.is_connect() {
            format!(
                "`{key}`: cannot reach the server: {}; is it running, and is the endpoint right?",
                request_words(err)
            )
        } else {
            format!("`{key}`: {}", request_words(err))
        };
        self.backend(true, detail)
    }

    /// The error for a put that did not land as sent (never retryable: a
    /// retried create or update would find this object and could take it
    /// for its own). A created or overwritten object is removed again by
    /// `remove` (true when it was); an update replaced an object that
    /// cannot be restored, so the error says so.
    pub(crate) async fn landed_wrong<F: Future<Output = bool>>(
        &self,
        key: &ObjectKey,
        mode: &PutMode,
        problem: String,
        remove: impl FnOnce() -> F,
    ) -> StoreError {
        let aftermath = if matches!(mode, PutMode::Update(_)) {
            "the object it replaced is damaged; run `silt datastore verify`"
        } else if remove().await {
            "the object was removed again"
        } else {
            "removing it failed; `silt datastore gc` collects it once nothing refers to it"
        };
        self.backend(
            false,
            format!(
                "`{key}`: the upload did not land as sent: {problem}; {aftermath}. \
                 This store does not keep uploads as sent: check it with `silt datastore doctor`"
            ),
        )
    }

    /// Streams `response`'s body into `sink`, each chunk shown to
    /// `on_chunk` (a digest of what arrived); answers the bytes written.
    pub(crate) async fn stream_into(
        &self,
        key: &ObjectKey,
        response: reqwest::Response,
        sink: &mut (dyn AsyncWrite + Unpin + Send),
        mut on_chunk: impl FnMut(&[u8]),
    ) -> Result<u64, StoreError> {
        let mut size = 0u64;
        let mut body = response.bytes_stream();
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|err| {
                self.backend(
                    true,
                    format!("`{key}`: the download broke off: {}", request_words(&err)),
                )
            })?;
            on_chunk(&chunk);
            size += chunk.len() as u64;
            sink.write_all(&chunk)
                .await
                .map_err(|err| super::local_io(key, &err))?;
        }
        sink.flush()
            .await
            .map_err(|err| super::local_io(key, &err))?;
        Ok(size)
    }
}

/// The text of an answer's header `name`, if it has one that is text.
pub(crate) fn header<'a>(response: &'a reqwest::Response, name: &str) -> Option<&'a str> {
    response
        .headers()
        .get(name)
        .and_then(|value| value.to_str().ok())
}

/// Milliseconds since the Unix epoch of an HTTP date (0 if absent or not one).
pub(crate) fn http_date_millis(date: Option<&str>) -> u64 {
    date.and_then(|date| httpdate::parse_http_date(date).ok())
        .and_then(|time| time.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |since| since.as_millis() as u64)
}

/// The file's bytes from its start, in chunks, each shown to `on_chunk`
/// (a digest of what is sent) as it is read.
pub(crate) fn file_chunks(
    file: std::fs::File,
    on_chunk: impl FnMut(&[u8]) + Send + 'static,
) -> impl futures_util::Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static {
    range_chunks(std::sync::Arc::new(file), 0, u64::MAX, on_chunk)
}

/// The file's bytes from `start` up to `end` (or its end), in chunks,
/// each shown to `on_chunk` as it is read.
pub(crate) fn range_chunks(
    file: std::sync::Arc<std::fs::File>,
    start: u64,
    end: u64,
    on_chunk: impl FnMut(&[u8]) + Send + 'static,
) -> impl futures_util::Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static {
    // Read a MiB at a time, handed on in pieces small enough that the
    // client asks for the next one often: each ask shows the upload is
    // moving (`UploadWatch`), even on a slow link.
    const READ: u64 = 1 << 20;
    let pending = std::collections::VecDeque::<Bytes>::new();
    futures_util::stream::try_unfold(
        (start, on_chunk, pending),
        move |(offset, mut on_chunk, mut pending)| {
            let file = file.clone();
            async move {
                if pending.is_empty() {
                    let want = READ.min(end.saturating_sub(offset)) as usize;
                    if want == 0 {
                        return Ok(None);
                    }
                    let read = tokio::task::spawn_blocking(move || {
                        use std::os::unix::fs::FileExt as _;
                        let mut buffer = vec![0; want];
                        let read = file.read_at(&mut buffer, offset)?;
                        buffer.truncate(read);
                        Ok::<_, std::io::Error>(Bytes::from(buffer))
                    })
                    .await
                    .map_err(std::io::Error::other)??;
                    pending.extend(slices(&read));
                }
                let Some(piece) = pending.pop_front() else {
                    return Ok(None);
                };
                on_chunk(&piece);
                let next = offset + piece.len() as u64;
                Ok(Some((piece, (next, on_chunk, pending))))
            }
        },
    )
}

/// `data` in pieces of at most 64 KiB (none for nothing).
fn slices(data: &Bytes) -> impl Iterator<Item = Bytes> + '_ {
    const PIECE: usize = 64 << 10;
    (0..data.len().div_ceil(PIECE))
        .map(move |index| data.slice(index * PIECE..((index + 1) * PIECE).min(data.len())))
}

/// A server's error message from a JSON error body (or its first line),
/// cut short: server text, printed for the user, never at length.
pub(crate) fn server_message(body: &[u8]) -> String {
    #[derive(serde::Deserialize)]
    struct Envelope {
        error: Inner,
    }
    #[derive(serde::Deserialize)]
    struct Inner {
        #[serde(default)]
        message: String,
    }
    let text = match serde_json::from_slice::<Envelope>(body) {
        Ok(envelope) => envelope.error.message,
        Err(_) => String::from_utf8_lossy(body)
            .lines()
            .next()
            .unwrap_or("")
            .to_owned(),
    };
    let text: String = text.chars().filter(|c| !c.is_control()).take(200).collect();
    if text.is_empty() {
        "no message".to_owned()
    } else {
        text
    }
}

/// A client error in words, without its URL: an Azure SAS rides in the
/// query, and errors reach logs and extensions.
pub(crate) fn request_words(err: &reqwest::Error) -> String {
    let what = if err.is_timeout() {
        "timed out"
    } else if err.is_connect() {
        "could not connect"
    } else if err.is_body() {
        "the body broke off"
    } else if err.is_decode() {
        "the answer could not be read"
    } else {
        "the request failed"
    };
    match std::error::Error::source(err) {
        Some(source) => format!("{what}: {}", in_words(source)),
        None => what.to_owned(),
    }
}

/// An error and its causes, in one line.
pub(crate) fn in_words(err: &(dyn std::error::Error + 'static)) -> String {
    let mut words = err.to_string();
    let mut cause = err.source();
    while let Some(current) = cause {
        let text = current.to_string();
        if !words.contains(&text) {
            words.push_str(": ");
            words.push_str(&text);
        }
        cause = current.source();
    }
    words
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_client_error_never_names_its_url() {
        let client = reqwest::Client::new();
        let err = client
            .get("http://127.0.0.1:1/container/blob?sv=2021&sig=SECRET")
            .send()
            .await
            .unwrap_err();
        assert!(err.to_string().contains("SECRET"), "reqwest names the URL");
        let words = request_words(&err);
        assert!(
            !words.contains("SECRET") && !words.contains("127.0.0.1:1/"),
            "{words}"
        );
    }

    #[test]
    fn server_messages_are_short_and_plain() {
        let body = br#"{"error":{"code":403,"message":"denied\u001b[31m"}}"#;
        assert_eq!(server_message(body), "denied[31m");
        assert_eq!(server_message(b""), "no message");
    }
}
