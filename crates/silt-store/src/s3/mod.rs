//! The S3 backend (AWS S3 and S3-compatible stores) on aws-sdk-s3.
//!
//! - Credentials come from the AWS CLI's sources ([`credentials`]): the
//!   environment, the profile files (roles, `credential_process`, SSO), a
//!   web identity token file, the ECS container endpoint — never from the
//!   guest, and from the EC2 instance metadata service only when configured
//!   (silt never probes a link-local address on its own). None found, or
//!   credentials the store refuses, is [`StoreError::Credentials`]: not
//!   retried, and remembered ([`ObjectStore::credentials_failure`]).
//! - The SDK's own retries are off: [`super::Retrying`] is the one retry
//!   layer, so faults can be injected beneath it and a retried conditional
//!   write is visible to [`super::put_owned`].
//! - Every put is checked against what the server says it stored
//!   ([`landed`]): a server that keeps other bytes than were sent is an
//!   error, never an acknowledged write.
//! - Status mapping: 412 → `AlreadyExists` (create) or `PreconditionFailed`;
//!   404 on a conditional write or delete → `PreconditionFailed`; 304 →
//!   not modified; 409 `ConditionalRequestConflict`, 5xx, throttling,
//!   timeouts and connection failures → retryable backend errors.

pub mod credentials;
mod landed;
mod parts;

pub use parts::PartSettings;

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use aws_sdk_s3::Client;
use aws_sdk_s3::config::{
    BehaviorVersion, RequestChecksumCalculation, retry::RetryConfig, timeout::TimeoutConfig,
};
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::ChecksumMode;
use tokio::io::AsyncWrite;

use landed::{Sent, Stored};

use crate::rest::in_words;

use super::{
    GetOutcome, Leftover, ListPage, MAX_LIST_PAGE, ObjectKey, ObjectMeta, ObjectStore, PutMode,
    StoreError, Sweep, UploadDigest, Version,
};

/// Where an S3 datastore lives and how to reach it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct S3Config {
    /// The bucket.
    pub bucket: String,
    /// A key prefix inside the bucket (no leading or trailing `/`), or empty.
    #[serde(default)]
    pub prefix: String,
    /// The region; default `AWS_REGION`, else `us-east-1`.
    #[serde(default)]
    pub region: Option<String>,
    /// A custom endpoint for S3-compatible stores, e.g. `http://127.0.0.1:8333`.
    /// Plain `http` is accepted only for loopback addresses.
    #[serde(default)]
    pub endpoint: Option<String>,
    /// Path-style addressing (`endpoint/bucket/key`), needed by most
    /// S3-compatible stores. Default: true with a custom endpoint.
    #[serde(default)]
    pub path_style: Option<bool>,
    /// The AWS profile to read credentials (and the region) from when the
    /// environment has none; default `AWS_PROFILE`, else `default`.
    #[serde(default)]
    pub profile: Option<String>,
    /// Whether the EC2 instance metadata service is a credential source
    /// (`instance`) or not (`standard`, the default).
    #[serde(default)]
    pub credentials: credentials::CredentialSources,
    /// Files of at least this many MiB are uploaded as multipart uploads,
    /// in parallel parts (default 64).
    #[serde(default)]
    pub multipart_threshold_mib: Option<u64>,
    /// The size of an upload's parts and of a download's ranges, in MiB
    /// (5 to 5,120; default 16).
    #[serde(default)]
    pub part_size_mib: Option<u64>,
    /// Parts held in memory at once, across all transfers (default 8): at
    /// most this many times the part size.
    #[serde(default)]
    pub parts_in_flight: Option<usize>,
}

impl S3Config {
    /// How this store splits large objects.
    pub fn part_settings(&self) -> PartSettings {
        let default = PartSettings::default();
        PartSettings {
            threshold: self
                .multipart_threshold_mib
                .map_or(default.threshold, |mib| mib.saturating_mul(1 << 20)),
            part_size: self
                .part_size_mib
                .map_or(default.part_size, |mib| mib.saturating_mul(1 << 20)),
            in_flight: self.parts_in_flight.unwrap_or(default.in_flight),
        }
        .within_limits()
    }
}

/// Why an S3 store could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum S3ConfigError {
    /// Plain http to a non-loopback endpoint.
    #[error("endpoint {0} uses plain http; only loopback endpoints may (use https)")]
    InsecureEndpoint(String),
    /// The endpoint is not a URL.
    #[error("endpoint {0:?} is not an http(s) URL")]
    BadEndpoint(String),
    /// The bucket name is empty.
    #[error("the S3 bucket name is empty")]
    NoBucket,
}

/// Default wait for a connection, and for the first byte of an answer.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// An S3 bucket (and prefix) as an [`ObjectStore`].
#[derive(Clone)]
pub struct S3Store {
    client: Client,
    bucket: String,
    prefix: String,
    display: String,
    /// Set once the bucket has answered a request: a later bare 404 is a
    /// missing object, never a missing bucket.
    bucket_seen: Arc<AtomicBool>,
    /// The sources the credential chain tries, for the error that none
    /// gave credentials.
    sources: Arc<Vec<&'static str>>,
    /// The first credentials failure (none found, or refused): every later
    /// request fails the same way.
    credentials_failure: Arc<Mutex<Option<StoreError>>>,
    /// How large objects are split, and the bound on parts in memory.
    parts: parts::Parts,
}

impl std::fmt::Display for S3Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.display)
    }
}

/// How an operation treats a 404 and a 412.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Context {
    Read,
    Create,
    Conditional,
    Other,
}

impl S3Store {
    /// A client for `config`. No request is made until the first operation.
    ///
    /// # Errors
    /// When the endpoint is malformed or plain http to a non-loopback host.
    pub fn new(config: &S3Config) -> Result<Self, S3ConfigError> {
        Self::with_timeout(config, DEFAULT_REQUEST_TIMEOUT)
    }

    /// [`Self::new`] with `request_timeout` for connecting and for the
    /// server's first answer to each request.
    ///
    /// # Errors
    /// As [`Self::new`].
    pub fn with_timeout(
        config: &S3Config,
        request_timeout: Duration,
    ) -> Result<Self, S3ConfigError> {
        if config.bucket.is_empty() {
            return Err(S3ConfigError::NoBucket);
        }
        let endpoint = credentials::endpoint(config);
        if let Some(endpoint) = &endpoint {
            check_endpoint(endpoint)?;
        }
        let region = credentials::region(config);
        let chain = credentials::chain(config, &region);
        let mut builder = aws_sdk_s3::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(region)
            .credentials_provider(chain)
            .retry_config(RetryConfig::disabled())
            // Puts carry their own checksum header (see `landed`); nothing
            // is sent aws-chunked with a trailing checksum, which some
            // servers store as data.
            .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
            // Connecting, and the first byte of an answer, are bounded; a
            // body that stops flowing is caught by the SDK's stall
            // protection (on by default); an attempt as a whole is not
            // (a large transfer is legitimately long). `Retrying` bounds
            // the operation.
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(request_timeout)
                    .read_timeout(request_timeout)
                    .build(),
            )
            .force_path_style(config.path_style.unwrap_or(endpoint.is_some()));
        if let Some(endpoint) = &endpoint {
            builder = builder.endpoint_url(endpoint);
        }
        let prefix = config.prefix.trim_matches('/');
        let display = match (&endpoint, prefix) {
            (Some(endpoint), "") => format!("s3://{} at {endpoint}", config.bucket),
            (Some(endpoint), prefix) => format!("s3://{}/{prefix} at {endpoint}", config.bucket),
            (None, "") => format!("s3://{}", config.bucket),
            (None, prefix) => format!("s3://{}/{prefix}", config.bucket),
        };
        Ok(Self {
            client: Client::from_conf(builder.build()),
            bucket: config.bucket.clone(),
            prefix: if prefix.is_empty() {
                String::new()
            } else {
                format!("{prefix}/")
            },
            display,
            bucket_seen: Arc::new(AtomicBool::new(false)),
            sources: Arc::new(credentials::sources(config)),
            credentials_failure: Arc::default(),
            parts: parts::Parts::new(config.part_settings()),
        })
    }

    /// The error for credentials none of the sources gave, or the store
    /// refused; remembered for [`ObjectStore::credentials_failure`].
    fn credentials_error(&self, detail: String) -> StoreError {
        let err = StoreError::Credentials {
            store: self.display.clone(),
            detail,
        };
        if let Ok(mut first) = self.credentials_failure.lock() {
            first.get_or_insert_with(|| err.clone());
        }
        err
    }

    /// A backend error of this store.
    fn backend(&self, retryable: bool, detail: String) -> StoreError {
        StoreError::Backend {
            store: self.display.clone(),
            retryable,
            detail,
        }
    }

    /// The SDK client (for benchmarks comparing against it, and test setup).
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The bucket.
    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// `file` in one PUT: read once to hash it (the digest goes in a
    /// header, so it is known before sending), then sent from its start.
    async fn put_file_once(
        &self,
        key: &ObjectKey,
        file: std::fs::File,
        mode: PutMode,
    ) -> Result<(Version, Sent), StoreError> {
        let hashed = tokio::task::spawn_blocking(move || {
            use std::io::Seek;
            let mut file = file;
            file.seek(std::io::SeekFrom::Start(0))?;
            let sent = Sent::of_reader(&mut file)?;
            file.seek(std::io::SeekFrom::Start(0))?;
            Ok::<_, std::io::Error>((file, sent))
        })
        .await
        .map_err(|err| super::local_io(key, &std::io::Error::other(err)))?;
        let (file, sent) = hashed.map_err(|err| super::local_io(key, &err))?;
        let body = ByteStream::read_from()
            .file(tokio::fs::File::from_std(file))
            .length(aws_sdk_s3::primitives::Length::Exact(sent.size))
            .build()
            .await
            .map_err(|err| super::local_io(key, &std::io::Error::other(err)))?;
        let version = self.send_put(key, body, &sent, mode).await?;
        Ok((version, sent))
    }

    /// Puts `body` (whose size and digest are `sent`) under `key`, then
    /// checks that the store kept those bytes.
    async fn send_put(
        &self,
        key: &ObjectKey,
        body: ByteStream,
        sent: &Sent,
        mode: PutMode,
    ) -> Result<Version, StoreError> {
        let full = self.full(key)?;
        let mut request = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(&full)
            .content_length(i64::try_from(sent.size).unwrap_or(i64::MAX))
            .checksum_sha256(&sent.checksum_base64)
            .body(body);
        let context = match &mode {
            PutMode::Overwrite => Context::Other,
            PutMode::Create => {
                request = request.if_none_match("*");
                Context::Create
            }
            PutMode::Update(version) => {
                request = request.if_match(&version.0);
                Context::Conditional
            }
        };
        // The server checks the body's SHA-256 (`checksum_sha256`): a
        // second hash of it for the signature would only cost CPU.
        let output = request
            .customize()
            .disable_payload_signing()
            .send()
            .await
            .map_err(|err| self.error(key.as_str(), context, err))?;
        self.saw_bucket();
        let version = Version(output.e_tag().unwrap_or_default().to_owned());
        let stored = Stored {
            size: output.size().map(|size| size.max(0) as u64),
            sha256_base64: output.checksum_sha256().map(str::to_owned),
            crc32c_base64: output.checksum_crc32_c().map(str::to_owned),
        };
        self.check_landed(key, &full, &version, stored, sent, &mode)
            .await
    }

    /// `version` if what the store says it kept at `full` (`stored`, else
    /// a `HEAD`) is what was `sent`; otherwise the error, the object
    /// removed again where that is safe ([`Self::landed_wrong`]).
    async fn check_landed(
        &self,
        key: &ObjectKey,
        full: &str,
        version: &Version,
        mut stored: Stored,
        sent: &Sent,
        mode: &PutMode,
    ) -> Result<Version, StoreError> {
        if !stored.is_conclusive(sent.algorithm) {
            stored = match self.stored(key, full, version).await {
                Ok(stored) => stored,
                // The put landed; what it holds cannot be told. Never a
                // retryable error here: a retried create or update would
                // find this object and take it for its own write.
                Err(err) => {
                    return Err(self
                        .landed_wrong(
                            key,
                            full,
                            version,
                            mode,
                            format!("the upload landed but could not be checked ({err})"),
                        )
                        .await);
                }
            };
        }
        match stored.differs_from(sent) {
            None => Ok(version.clone()),
            Some(difference) => Err(self
                .landed_wrong(
                    key,
                    full,
                    version,
                    mode,
                    format!("the upload did not land as sent: {difference}"),
                )
                .await),
        }
    }

    /// What the store holds at `full`, by a `HEAD` (tried up to three
    /// times), if it is still the object of `version`. Another writer may
    /// have replaced or removed it since (an overwrite race): then nothing
    /// can be said about this put, and that is logged.
    async fn stored(
        &self,
        key: &ObjectKey,
        full: &str,
        version: &Version,
    ) -> Result<Stored, StoreError> {
        if version.0.is_empty() {
            return Err(StoreError::Backend {
                store: self.display.clone(),
                retryable: false,
                detail: format!("`{key}`: the server answered the upload without an ETag"),
            });
        }
        let mut attempt = 0;
        let head = loop {
            attempt += 1;
            let answer = self
                .client
                .head_object()
                .bucket(&self.bucket)
                .key(full)
                .checksum_mode(ChecksumMode::Enabled)
                .send()
                .await
                .map_err(|err| self.error(key.as_str(), Context::Read, err));
            match answer {
                Ok(head) => break head,
                Err(StoreError::NotFound { .. }) => {
                    tracing::warn!(
                        "`{key}`: removed right after it was written; its upload was not checked"
                    );
                    return Ok(Stored::default());
                }
                Err(StoreError::Backend {
                    retryable: true, ..
                }) if attempt < 3 => {
                    tokio::time::sleep(Duration::from_millis(100 * attempt)).await;
                }
                Err(err) => return Err(err),
            }
        };
        if !same_etag(head.e_tag(), &version.0) {
            tracing::warn!(
                "`{key}`: replaced right after it was written; its upload was not checked"
            );
            return Ok(Stored::default());
        }
        Ok(Stored {
            size: head.content_length().map(|size| size.max(0) as u64),
            sha256_base64: head.checksum_sha256().map(str::to_owned),
            crc32c_base64: head.checksum_crc32_c().map(str::to_owned),
        })
    }

    /// The error for a put that did not land as sent (never retryable: a
    /// retried create or update would find this object and could take it
    /// for its own). A created or overwritten object is removed again, so
    /// nothing takes it for the data (after an overwrite the key is then
    /// missing, not damaged); an update replaced an object that cannot be
    /// restored, so the error says so.
    async fn landed_wrong(
        &self,
        key: &ObjectKey,
        full: &str,
        version: &Version,
        mode: &PutMode,
        problem: String,
    ) -> StoreError {
        let aftermath = if matches!(mode, PutMode::Update(_)) {
            "the object it replaced is damaged; run `silt datastore verify`".to_owned()
        } else {
            let removed = self
                .client
                .delete_object()
                .bucket(&self.bucket)
                .key(full)
                .if_match(&version.0)
                .send()
                .await;
            if removed.is_ok() {
                "the object was removed again".to_owned()
            } else {
                "removing it failed; `silt datastore gc` collects it once nothing refers to it"
                    .to_owned()
            }
        };
        StoreError::Backend {
            store: self.display.clone(),
            retryable: false,
            detail: format!(
                "`{key}`: {problem}; {aftermath}. \
                 This store does not keep uploads as sent: check it with `silt datastore doctor`"
            ),
        }
    }

    /// `key` under the bucket prefix. S3 limits the whole key to 1,024
    /// bytes, as [`ObjectKey`] does: a key too long with the prefix is
    /// refused here as an invalid key, the same on every backend.
    fn full(&self, key: &ObjectKey) -> Result<String, StoreError> {
        let full = format!("{}{key}", self.prefix);
        ObjectKey::new(&full)?;
        Ok(full)
    }

    fn relative(&self, full: &str) -> Option<ObjectKey> {
        ObjectKey::new(full.strip_prefix(&self.prefix)?).ok()
    }

    /// Notes that the bucket answered.
    fn saw_bucket(&self) {
        self.bucket_seen.store(true, Ordering::Relaxed);
    }

    /// A `HEAD` on a missing bucket is a bare 404 (no body, so no
    /// `NoSuchBucket` code), the same answer as for a missing object. Until
    /// the bucket has answered some request, a `NotFound` from a `HEAD` is
    /// checked with one `HeadBucket`, so a missing bucket is named instead
    /// of read as an empty datastore. At most one extra request a process.
    async fn unless_bucket_missing(&self, err: StoreError) -> StoreError {
        if !matches!(err, StoreError::NotFound { .. }) || self.bucket_seen.load(Ordering::Relaxed) {
            return err;
        }
        match self.client.head_bucket().bucket(&self.bucket).send().await {
            Ok(_) => {
                self.saw_bucket();
                err
            }
            Err(bucket_err)
                if bucket_err
                    .raw_response()
                    .is_some_and(|response| response.status().as_u16() == 404) =>
            {
                self.no_such_bucket()
            }
            Err(bucket_err) => match self.error("", Context::Read, bucket_err) {
                // The server cannot answer now: say that, not "not found".
                retry @ StoreError::Backend {
                    retryable: true, ..
                } => retry,
                // No permission on the bucket itself: the object's answer stands.
                _ => err,
            },
        }
    }

    fn no_such_bucket(&self) -> StoreError {
        StoreError::Backend {
            store: self.display.clone(),
            retryable: false,
            detail: format!(
                "bucket `{}` does not exist: create it, or fix `bucket` in [datastore.s3] of silt.toml",
                self.bucket
            ),
        }
    }

    /// Maps an SDK error to a [`StoreError`] by HTTP status and error code
    /// (a `HEAD`'s bare 404 is then checked by [`Self::unless_bucket_missing`]).
    fn error<E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static>(
        &self,
        key: &str,
        context: Context,
        err: SdkError<E, aws_sdk_s3::config::http::HttpResponse>,
    ) -> StoreError {
        let status = err
            .raw_response()
            .map(|response| response.status().as_u16());
        let code = err.code().map(str::to_owned);
        let backend = |retryable: bool, detail: String| StoreError::Backend {
            store: self.display.clone(),
            retryable,
            detail,
        };
        if let Some(why) = credentials_not_loaded(&err) {
            return self.credentials_error(format!(
                "no AWS credentials ({why}); tried, in order: {}. Set one of them (a CI job: AWS_WEB_IDENTITY_TOKEN_FILE and AWS_ROLE_ARN; on EC2: [datastore.s3] credentials = \"instance\")",
                self.sources.join("; ")
            ));
        }
        match (&err, status, code.as_deref()) {
            (SdkError::TimeoutError(_), ..) => backend(true, format!("`{key}`: request timed out")),
            (SdkError::DispatchFailure(failure), ..)
                if failure.as_connector_error().is_some_and(|e| e.is_timeout()) =>
            {
                backend(
                    true,
                    format!(
                        "`{key}`: the server did not answer in time (is it overloaded or stopped?)"
                    ),
                )
            }
            (SdkError::DispatchFailure(failure), ..) => backend(
                true,
                format!(
                    "`{key}`: cannot reach the server: {}; is it running, and is the endpoint right?",
                    failure.as_connector_error().map_or_else(
                        || "the request could not be sent".to_owned(),
                        |e| in_words(e)
                    )
                ),
            ),
            // Before the 404 arm: a missing bucket answers 404 too, and must
            // not read as a missing object (or an empty listing).
            (_, _, Some("NoSuchBucket")) => self.no_such_bucket(),
            // The body did not reach the server as sent (it checked the
            // checksum silt sends) and nothing was stored: a resend may pass.
            (
                _,
                _,
                Some(
                    code @ ("BadDigest"
                    | "InvalidDigest"
                    | "XAmzContentChecksumMismatch"
                    | "XAmzContentSHA256Mismatch"),
                ),
            ) => backend(
                true,
                format!(
                    "`{key}`: {code}: the server received other bytes than were sent, and stored nothing"
                ),
            ),
            (_, Some(412), _) | (_, _, Some("PreconditionFailed")) => match context {
                Context::Create => StoreError::AlreadyExists {
                    key: key.to_owned(),
                },
                _ => StoreError::PreconditionFailed {
                    key: key.to_owned(),
                },
            },
            (_, Some(404), _) | (_, _, Some("NoSuchKey" | "NotFound")) => match context {
                Context::Conditional => StoreError::PreconditionFailed {
                    key: key.to_owned(),
                },
                _ => StoreError::NotFound {
                    key: key.to_owned(),
                },
            },
            (_, Some(409), _) | (_, _, Some("ConditionalRequestConflict")) => backend(
                true,
                format!("`{key}`: 409 {}", code.as_deref().unwrap_or("Conflict")),
            ),
            (
                _,
                _,
                Some(
                    code @ ("InvalidAccessKeyId"
                    | "SignatureDoesNotMatch"
                    | "ExpiredToken"
                    | "TokenRefreshRequired"
                    | "InvalidToken"),
                ),
            ) => self.credentials_error(format!(
                "`{key}`: the store refused the credentials ({code}): {}; check them, or renew expired ones",
                if code == "ExpiredToken" {
                    "they have expired"
                } else {
                    "it does not know the key, or the secret is wrong"
                }
            )),
            (_, Some(403), _) => self.credentials_error(format!(
                "`{key}`: access denied ({}); the credentials were accepted but do not grant this: check the role's or the bucket's policy",
                code.as_deref().unwrap_or("403")
            )),
            (_, Some(status), _) if status >= 500 || status == 429 => backend(
                true,
                format!(
                    "`{key}`: server error {status} {}",
                    code.as_deref().unwrap_or("")
                ),
            ),
            _ => {
                let message = err
                    .message()
                    .map(str::to_owned)
                    .unwrap_or_else(|| format!("{err}"));
                backend(
                    false,
                    format!(
                        "`{key}`: {} {}: {message}",
                        status.map_or(String::new(), |s| s.to_string()),
                        code.as_deref().unwrap_or("")
                    ),
                )
            }
        }
    }
}

/// Why the credential chain gave no credentials, when that is what failed
/// `err` (the SDK reports it as a request that could not be sent).
fn credentials_not_loaded(err: &(dyn std::error::Error + 'static)) -> Option<String> {
    use aws_credential_types::provider::error::CredentialsError;
    let mut cause = Some(err);
    while let Some(current) = cause {
        if let Some(credentials) = current.downcast_ref::<CredentialsError>() {
            return Some(match credentials {
                CredentialsError::CredentialsNotLoaded(_) => {
                    "none of the sources had any".to_owned()
                }
                other => in_words(other),
            });
        }
        cause = current.source();
    }
    None
}

/// Whether two ETags name the same object version: servers differ in
/// quoting, and a weak `W/` prefix says nothing here.
fn same_etag(answered: Option<&str>, written: &str) -> bool {
    let bare = |tag: &str| tag.trim_start_matches("W/").trim_matches('"').to_owned();
    !written.is_empty() && answered.is_some_and(|tag| bare(tag) == bare(written))
}

pub(crate) fn check_endpoint(endpoint: &str) -> Result<(), S3ConfigError> {
    let bad = || S3ConfigError::BadEndpoint(endpoint.to_owned());
    let (secure, rest) = match (
        endpoint.strip_prefix("https://"),
        endpoint.strip_prefix("http://"),
    ) {
        (Some(rest), _) => (true, rest),
        (None, Some(rest)) => (false, rest),
        (None, None) => return Err(bad()),
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = match authority.rsplit_once(':') {
        Some((host, port)) if !host.ends_with(':') && port.bytes().all(|b| b.is_ascii_digit()) => {
            if port.is_empty() || port.parse::<u16>().is_err() {
                return Err(bad());
            }
            host
        }
        _ => authority,
    };
    // A host name, an IPv4 address or a bracketed IPv6 one: no spaces, no
    // user info, nothing a URL parser would take another way.
    let bracketed = host.starts_with('[') && host.ends_with(']');
    let plausible = !host.is_empty()
        && (bracketed
            && host[1..host.len() - 1]
                .parse::<std::net::Ipv6Addr>()
                .is_ok()
            || host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.'));
    if !plausible {
        return Err(bad());
    }
    if secure {
        return Ok(());
    }
    let loopback = host == "localhost"
        || host
            .trim_matches(['[', ']'])
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    if loopback {
        Ok(())
    } else {
        Err(S3ConfigError::InsecureEndpoint(endpoint.to_owned()))
    }
}

fn millis(time: Option<&aws_sdk_s3::primitives::DateTime>) -> u64 {
    time.and_then(|t| t.to_millis().ok())
        .map_or(0, |ms| ms.max(0) as u64)
}

#[async_trait::async_trait]
impl ObjectStore for S3Store {
    fn credentials_failure(&self) -> Option<StoreError> {
        self.credentials_failure
            .lock()
            .ok()
            .and_then(|first| first.clone())
    }

    async fn get(
        &self,
        key: &ObjectKey,
        if_none_match: Option<&Version>,
    ) -> Result<GetOutcome, StoreError> {
        let full = self.full(key)?;
        let result = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(&full)
            .set_if_none_match(if_none_match.map(|v| v.0.clone()))
            .send()
            .await;
        let output = match result {
            Ok(output) => output,
            Err(err)
                if err
                    .raw_response()
                    .is_some_and(|r| r.status().as_u16() == 304) =>
            {
                return Ok(GetOutcome::NotModified);
            }
            Err(err) => return Err(self.error(key.as_str(), Context::Read, err)),
        };
        self.saw_bucket();
        let length = output.content_length().map_or(0, |n| n.max(0) as u64);
        if length > crate::MAX_WHOLE_GET {
            return Err(crate::too_large_to_get(key, length));
        }
        let version = Version(output.e_tag().unwrap_or_default().to_owned());
        let last_modified_ms = millis(output.last_modified());
        let data = output
            .body
            .collect()
            .await
            .map_err(|err| StoreError::Backend {
                store: self.display.clone(),
                retryable: true,
                detail: format!("`{key}`: reading the body failed: {err}"),
            })?
            .into_bytes()
            .to_vec();
        Ok(GetOutcome::Found(
            ObjectMeta {
                key: key.clone(),
                size: data.len() as u64,
                version,
                last_modified_ms,
            },
            data,
        ))
    }

    async fn head(&self, key: &ObjectKey) -> Result<ObjectMeta, StoreError> {
        let answer = self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(self.full(key)?)
            .send()
            .await;
        let output = match answer {
            Ok(output) => output,
            Err(err) => {
                let err = self.error(key.as_str(), Context::Read, err);
                return Err(self.unless_bucket_missing(err).await);
            }
        };
        self.saw_bucket();
        Ok(ObjectMeta {
            key: key.clone(),
            size: output.content_length().unwrap_or(0).max(0) as u64,
            version: Version(output.e_tag().unwrap_or_default().to_owned()),
            last_modified_ms: millis(output.last_modified()),
        })
    }

    async fn put(
        &self,
        key: &ObjectKey,
        data: Vec<u8>,
        mode: PutMode,
    ) -> Result<Version, StoreError> {
        let sent = Sent::of_bytes(&data);
        self.send_put(key, ByteStream::from(data), &sent, mode)
            .await
    }

    async fn delete(&self, key: &ObjectKey, if_match: Option<&Version>) -> Result<(), StoreError> {
        let context = if if_match.is_some() {
            Context::Conditional
        } else {
            Context::Other
        };
        let result = self
            .client
            .delete_object()
            .bucket(&self.bucket)
            .key(self.full(key)?)
            .set_if_match(if_match.map(|v| v.0.clone()))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(err) => match self.error(key.as_str(), context, err) {
                StoreError::NotFound { .. } if if_match.is_none() => Ok(()),
                other => Err(other),
            },
        }
    }

    async fn list(
        &self,
        prefix: &str,
        start_after: Option<&ObjectKey>,
        limit: u32,
    ) -> Result<ListPage, StoreError> {
        let limit = limit.clamp(1, MAX_LIST_PAGE);
        let output = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(format!("{}{prefix}", self.prefix))
            .set_start_after(start_after.map(|key| self.full(key)).transpose()?)
            .max_keys(limit as i32)
            .send()
            .await
            .map_err(|err| self.error(prefix, Context::Other, err))?;
        self.saw_bucket();
        let items: Vec<ObjectMeta> = output
            .contents()
            .iter()
            .filter_map(|object| {
                Some(ObjectMeta {
                    key: self.relative(object.key()?)?,
                    size: object.size().unwrap_or(0).max(0) as u64,
                    version: Version(object.e_tag().unwrap_or_default().to_owned()),
                    last_modified_ms: millis(object.last_modified()),
                })
            })
            .collect();
        let truncated = output.is_truncated().unwrap_or(false);
        // Continue after the page's last key; if that key is one silt does
        // not represent (e.g. a console's `folder/` marker), after the last
        // one it does (the skipped keys are listed and skipped again). Ending
        // the listing there would silently drop the rest of it.
        let next_start_after = if truncated {
            let next = output
                .contents()
                .last()
                .and_then(|o| o.key())
                .and_then(|k| self.relative(k))
                .or_else(|| items.last().map(|item| item.key.clone()));
            if next.is_none() {
                return Err(StoreError::Backend {
                    store: self.to_string(),
                    retryable: false,
                    detail: format!(
                        "listing `{prefix}`: a whole page of keys silt cannot represent; remove those objects"
                    ),
                });
            }
            next
        } else {
            None
        };
        Ok(ListPage {
            items,
            next_start_after,
        })
    }

    async fn get_into(
        &self,
        key: &ObjectKey,
        sink: &mut (dyn AsyncWrite + Unpin + Send),
    ) -> Result<ObjectMeta, StoreError> {
        self.get_in_parts(key, sink).await
    }

    async fn put_file(
        &self,
        key: &ObjectKey,
        file: std::fs::File,
        mode: PutMode,
    ) -> Result<Version, StoreError> {
        let size = file
            .metadata()
            .map_err(|err| super::local_io(key, &err))?
            .len();
        if self.uploads_in_parts(size, &mode) {
            let (version, _) = self.put_in_parts(key, file, size, mode, false).await?;
            return Ok(version);
        }
        let (version, _) = self.put_file_once(key, file, mode).await?;
        Ok(version)
    }

    /// A multipart upload hashes the parts it sends (`OfSent`); one PUT
    /// answers the SHA-256 its header carried, taken in a pass before the
    /// send (`OfFileBeside`: the server checks the body against it, but
    /// not every S3-compatible server does).
    async fn put_file_hashed(
        &self,
        key: &ObjectKey,
        file: std::fs::File,
        mode: PutMode,
    ) -> Result<(Version, UploadDigest), StoreError> {
        let size = file
            .metadata()
            .map_err(|err| super::local_io(key, &err))?
            .len();
        if self.uploads_in_parts(size, &mode) {
            let (version, sha256) = self.put_in_parts(key, file, size, mode, true).await?;
            let sha256 = sha256.expect("a hashed upload's parts are hashed");
            return Ok((version, UploadDigest::OfSent { sha256, len: size }));
        }
        let (version, sent) = self.put_file_once(key, file, mode).await?;
        let sha256 = sent.sha256().expect("one PUT carries its body's SHA-256");
        let len = sent.size;
        Ok((version, UploadDigest::OfFileBeside { sha256, len }))
    }

    /// Multipart uploads never completed or aborted (a killed command's),
    /// started longer ago than `sweep.older_than`; aborted when `sweep`
    /// says so. A younger one may be another writer's under way.
    async fn leftovers(&self, prefix: &str, sweep: Sweep) -> Result<Vec<Leftover>, StoreError> {
        self.incomplete_uploads(prefix, sweep).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etags_compare_without_quotes_or_weakness() {
        assert!(same_etag(Some("\"abc\""), "\"abc\""));
        assert!(same_etag(Some("abc"), "\"abc\""));
        assert!(same_etag(Some("W/\"abc\""), "\"abc\""));
        assert!(!same_etag(Some("\"abd\""), "\"abc\""));
        assert!(!same_etag(None, "\"abc\""));
        // A put answered without an ETag is never taken as checked.
        assert!(!same_etag(Some(""), ""));
    }

    #[test]
    fn plain_http_only_to_loopback() {
        assert!(check_endpoint("http://127.0.0.1:8333").is_ok());
        assert!(check_endpoint("http://localhost:9000/").is_ok());
        assert!(check_endpoint("http://[::1]:9000").is_ok());
        assert!(check_endpoint("https://s3.example.com").is_ok());
        assert!(matches!(
            check_endpoint("http://10.0.0.5:9000"),
            Err(S3ConfigError::InsecureEndpoint(_))
        ));
        for not_a_url in [
            "ftp://x",
            "s3.example.com",
            "https://",
            "https://exa mple.com",
            "https://user@s3.example.com",
            "https://s3.example.com:99999",
            "https://s3.example.com:",
            "http://[::1:9000",
            "http://127.0.0.1:port",
        ] {
            assert!(
                matches!(
                    check_endpoint(not_a_url),
                    Err(S3ConfigError::BadEndpoint(_))
                ),
                "{not_a_url:?}"
            );
        }
        assert!(check_endpoint("https://s3.eu-west-1.amazonaws.com/").is_ok());
        assert!(check_endpoint("https://minio.internal:9000").is_ok());
    }
}
