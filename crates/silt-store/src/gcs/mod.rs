//! The Google Cloud Storage backend, on GCS's JSON API over reqwest.
//!
//! - Conditions are generations: a version is an object's `generation`;
//!   a create is `ifGenerationMatch=0`, an update and a conditional delete
//!   `ifGenerationMatch=<generation>` — GCS checks them atomically.
//! - Writes are `uploadType=multipart` uploads (metadata and data in one
//!   request), the upload kind whose preconditions the emulator the tests
//!   run (fake-gcs-server) honours as GCS does. A whole-object put declares
//!   its CRC32C, which GCS checks; every put is then checked against the
//!   CRC32C and size GCS says it stored, as the S3 backend checks SHA-256.
//! - A read is checked against the CRC32C GCS sends in `x-goog-hash`.
//! - Credentials: [`credentials`]. Requests carry no retries of their own:
//!   [`super::Retrying`] is the one retry layer.
//!
//! Why not the `object_store` crate: it has no conditional delete (which
//! leases and locks are released with), its GCS writes go through the XML
//! API (whose preconditions fake-gcs-server ignores, so nothing here could
//! test them), and its credential chain has no workload identity
//! federation and asks the metadata server on its own.

mod compose;
pub mod credentials;

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use futures_util::StreamExt as _;
use serde::Deserialize;
use tokio::io::AsyncWrite;

use credentials::{Auth, GcsCredentialSources, TokenError};

use crate::ranged::{self, Arrival, Ranges};
use crate::rest::{self, Common, Context, Refusals, encode, server_message};

use super::{
    GetOutcome, Leftover, ListPage, MAX_LIST_PAGE, ObjectKey, ObjectMeta, ObjectStore, PutMode,
    StoreError, Sweep, Version,
};

/// Where a GCS datastore lives and how to reach it (`[datastore.gcs]`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct GcsConfig {
    /// The bucket.
    pub bucket: String,
    /// A key prefix inside the bucket (no leading or trailing `/`), or empty.
    #[serde(default)]
    pub prefix: String,
    /// Another endpoint than `https://storage.googleapis.com` (an
    /// emulator). Plain `http` is accepted only for loopback addresses.
    /// Default: `STORAGE_EMULATOR_HOST` if set (then unauthenticated, as
    /// Google's client libraries do).
    #[serde(default)]
    pub endpoint: Option<String>,
    /// Which credential sources are tried (default `standard`).
    #[serde(default)]
    pub credentials: GcsCredentialSources,
}

/// GCS's public endpoint.
const GOOGLE_ENDPOINT: &str = "https://storage.googleapis.com";

/// A GCS bucket (and prefix) as an [`ObjectStore`].
pub struct GcsStore {
    clients: rest::Clients,
    base: String,
    bucket: String,
    common: Common,
    auth: Auth,
    /// Set once the bucket has answered: a later 404 is a missing object.
    bucket_seen: AtomicBool,
    /// Large downloads in parallel ranges.
    ranges: Ranges,
}

impl std::fmt::Display for GcsStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.common.fmt(f)
    }
}

/// An object's resource as the JSON API answers it (only what silt reads).
#[derive(Deserialize)]
struct Resource {
    name: String,
    #[serde(default)]
    size: Option<String>,
    generation: String,
    #[serde(default)]
    updated: Option<String>,
    #[serde(default)]
    crc32c: Option<String>,
}

impl Resource {
    /// What differs between `size` bytes of CRC32C `crc32c` sent and this
    /// object as GCS says it stored it (a CRC32C it does not give is not
    /// compared; the size always is).
    fn differs_from(&self, size: u64, crc32c: u32) -> Option<String> {
        let sent = STANDARD.encode(crc32c.to_be_bytes());
        let stored_size = self.size.as_deref().and_then(|s| s.parse::<u64>().ok());
        if stored_size != Some(size) {
            return Some(format!(
                "{size} bytes were sent, the store kept {stored_size:?}"
            ));
        }
        self.crc32c
            .as_deref()
            .filter(|&crc| crc != sent)
            .map(|stored| format!("the store's CRC32C {stored:?} is not the sent bytes' {sent}"))
    }
}

#[derive(Deserialize)]
struct Listing {
    #[serde(default)]
    items: Vec<Resource>,
    #[serde(rename = "nextPageToken", default)]
    next_page_token: Option<String>,
}

impl GcsStore {
    /// A client for `config`; `request_timeout` bounds connecting and each
    /// wait for the server's next bytes. No request is made yet.
    ///
    /// # Errors
    /// [`StoreError::Misconfigured`] for an empty bucket or an endpoint that
    /// is not a URL or is plain http to a non-loopback host.
    pub fn new(config: &GcsConfig, request_timeout: Duration) -> Result<Self, StoreError> {
        let misconfigured = |detail: String| StoreError::Misconfigured {
            store: format!("gs://{}", config.bucket),
            detail: format!("{detail}; fix it in [datastore.gcs] of silt.toml"),
        };
        if config.bucket.is_empty() {
            return Err(misconfigured("the GCS bucket name is empty".to_owned()));
        }
        let emulator = std::env::var("STORAGE_EMULATOR_HOST")
            .ok()
            .filter(|host| !host.is_empty());
        let (base, anonymous) = match (&config.endpoint, emulator) {
            (Some(endpoint), _) => (endpoint.trim_end_matches('/').to_owned(), false),
            (None, Some(host)) if host.contains("://") => {
                (host.trim_end_matches('/').to_owned(), true)
            }
            (None, Some(host)) => (format!("http://{}", host.trim_end_matches('/')), true),
            (None, None) => (GOOGLE_ENDPOINT.to_owned(), false),
        };
        crate::s3::check_endpoint(&base).map_err(|err| misconfigured(err.to_string()))?;
        let clients = rest::Clients::new(request_timeout).map_err(misconfigured)?;
        let auth = if anonymous {
            Auth::anonymous(clients.small.clone())
        } else {
            Auth::new(config.credentials, clients.small.clone())
        };
        let prefix = config.prefix.trim_matches('/');
        let at = if base == GOOGLE_ENDPOINT {
            String::new()
        } else {
            format!(" at {base}")
        };
        let display = match prefix {
            "" => format!("gs://{}{at}", config.bucket),
            prefix => format!("gs://{}/{prefix}{at}", config.bucket),
        };
        Ok(Self {
            clients,
            base,
            bucket: config.bucket.clone(),
            common: Common::new(display, prefix, request_timeout),
            auth,
            bucket_seen: AtomicBool::new(false),
            ranges: Ranges::default(),
        })
    }

    fn object_url(&self, full: &str) -> String {
        format!(
            "{}/storage/v1/b/{}/o/{}",
            self.base,
            encode(&self.bucket),
            encode(full)
        )
    }

    /// Sends `request` with this store's credentials; the response of any
    /// status, or the error of a request that got none.
    async fn send(
        &self,
        key: &str,
        request: reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, StoreError> {
        self.send_watched(key, request, None).await
    }

    /// [`Self::send`] for an upload `watch` follows ([`Common::dispatch`]).
    async fn send_watched(
        &self,
        key: &str,
        request: reqwest::RequestBuilder,
        watch: Option<&rest::UploadWatch>,
    ) -> Result<reqwest::Response, StoreError> {
        let request = match self.auth.header().await {
            Ok(Some(header)) => request.header("authorization", header),
            Ok(None) => request,
            Err(TokenError::Credentials(problem)) => {
                return Err(self.common.credentials_error(problem.0));
            }
            Err(TokenError::Unreachable(detail)) => return Err(self.common.backend(true, detail)),
        };
        self.common.dispatch(key, request, watch).await
    }

    /// The error of a response that is not a success, by status.
    async fn status_error(
        &self,
        key: &str,
        context: Context,
        response: reqwest::Response,
    ) -> StoreError {
        let status = response.status().as_u16();
        let body = response.bytes().await.unwrap_or_default();
        let message = server_message(&body);
        if status == 401 && self.auth.has_tokens() {
            self.auth.forget().await;
            return self.common.token_refused(format!(
                "the store refused the credentials ({message}); check GOOGLE_APPLICATION_CREDENTIALS or gcloud's login"
            ));
        }
        let refusals = || Refusals {
            refused: format!(
                "the store refused the credentials ({message}); check GOOGLE_APPLICATION_CREDENTIALS or gcloud's login"
            ),
            forbidden: format!(
                "the credentials may not do this on bucket `{}` ({message}); grant them roles/storage.objectAdmin on it",
                self.bucket
            ),
        };
        match self
            .common
            .status_error(key, status, context, &message, refusals)
        {
            missing @ StoreError::NotFound { .. } => self.unless_bucket_missing(missing).await,
            other => other,
        }
    }

    /// Until the bucket has answered, a 404 is checked with one request for
    /// the bucket, so a missing bucket is named instead of read as an empty
    /// datastore.
    async fn unless_bucket_missing(&self, err: StoreError) -> StoreError {
        if self.bucket_seen.load(Ordering::Relaxed) {
            return err;
        }
        let url = format!("{}/storage/v1/b/{}", self.base, encode(&self.bucket));
        match self.send("", self.clients.small.get(url)).await {
            Ok(response) if response.status().is_success() => {
                self.saw_bucket();
                err
            }
            Ok(response) if response.status().as_u16() == 404 => self.common.backend(
                false,
                format!(
                    "bucket `{}` does not exist: create it, or fix `bucket` in [datastore.gcs] of silt.toml",
                    self.bucket
                ),
            ),
            Ok(_) => err,
            Err(retry @ StoreError::Backend { retryable: true, .. }) => retry,
            Err(_) => err,
        }
    }

    fn saw_bucket(&self) {
        self.bucket_seen.store(true, Ordering::Relaxed);
    }

    /// The metadata of a resource the JSON API answered.
    fn meta_of(&self, key: &ObjectKey, resource: &Resource) -> ObjectMeta {
        ObjectMeta {
            key: key.clone(),
            size: resource
                .size
                .as_deref()
                .and_then(|s| s.parse().ok())
                .unwrap_or(0),
            version: Version(resource.generation.clone()),
            last_modified_ms: resource
                .updated
                .as_deref()
                .and_then(rfc3339_millis)
                .unwrap_or(0),
        }
    }

    async fn resource(
        &self,
        key: &str,
        response: reqwest::Response,
    ) -> Result<Resource, StoreError> {
        let body = response.bytes().await.map_err(|err| {
            self.common.backend(
                true,
                format!(
                    "`{key}`: reading the answer failed: {}",
                    rest::request_words(&err)
                ),
            )
        })?;
        serde_json::from_slice(&body).map_err(|err| {
            self.common.backend(
                false,
                format!("`{key}`: the server's answer is not an object resource ({err})"),
            )
        })
    }

    /// The object `full` as GCS describes it now.
    async fn stored_resource(&self, key: &ObjectKey, full: &str) -> Result<Resource, StoreError> {
        let request = self.clients.small.get(self.object_url(full));
        let response = self.send(key.as_str(), request).await?;
        if !response.status().is_success() {
            return Err(self
                .status_error(key.as_str(), Context::Read, response)
                .await);
        }
        self.resource(key.as_str(), response).await
    }

    /// One `uploadType=multipart` upload of `body` (the data framed by
    /// `framing`) as `mode` says, then the check that GCS stored the
    /// data's size with CRC32C `crc32c` (computed while the body was sent,
    /// for a streamed file).
    async fn upload(
        &self,
        key: &ObjectKey,
        framing: &Framing,
        body: reqwest::Body,
        watch: Option<&rest::UploadWatch>,
        crc32c: impl FnOnce() -> u32,
        mode: &PutMode,
    ) -> Result<Version, StoreError> {
        let (full, size) = (framing.full.as_str(), framing.size);
        let url = format!(
            "{}/upload/storage/v1/b/{}/o",
            self.base,
            encode(&self.bucket)
        );
        let mut query = vec![("uploadType", "multipart".to_owned())];
        let (condition, context) = write_condition(key, mode)?;
        query.extend(condition);
        let client = if watch.is_some() {
            &self.clients.upload
        } else {
            &self.clients.small
        };
        let request = client
            .post(url)
            .query(&query)
            .header(
                "content-type",
                format!("multipart/related; boundary={}", framing.boundary),
            )
            .header("content-length", framing.length())
            .body(body);
        let response = self.send_watched(key.as_str(), request, watch).await?;
        let answered = async {
            if !response.status().is_success() {
                return Err(self.status_error(key.as_str(), context, response).await);
            }
            self.saw_bucket();
            self.resource(key.as_str(), response).await
        };
        let stored = self.common.within(key.as_str(), answered).await?;
        let version = Version(stored.generation.clone());
        match stored.differs_from(size, crc32c()) {
            None => Ok(version),
            Some(problem) => Err(self.landed_wrong(key, full, &version, mode, problem).await),
        }
    }

    /// The error of a put that did not land as sent (see
    /// [`Common::landed_wrong`]): a created or overwritten object is
    /// removed again if it still has `version`.
    async fn landed_wrong(
        &self,
        key: &ObjectKey,
        full: &str,
        version: &Version,
        mode: &PutMode,
        problem: String,
    ) -> StoreError {
        let remove = || async {
            let request = self
                .clients
                .small
                .delete(self.object_url(full))
                .query(&[("ifGenerationMatch", &version.0)]);
            self.send(key.as_str(), request)
                .await
                .is_ok_and(|response| response.status().is_success())
        };
        self.common.landed_wrong(key, mode, problem, remove).await
    }

    /// A download's response for `full` (`alt=media`), or the error.
    async fn media(
        &self,
        key: &ObjectKey,
        full: &str,
        if_none_match: Option<&Version>,
    ) -> Result<Option<reqwest::Response>, StoreError> {
        let mut request = self
            .clients
            .small
            .get(self.object_url(full))
            .query(&[("alt", "media")]);
        if let Some(version) = if_none_match {
            request = request.query(&[("ifGenerationNotMatch", generation(key, version)?)]);
        }
        let response = self.send(key.as_str(), request).await?;
        if response.status().as_u16() == 304 {
            return Ok(None);
        }
        if !response.status().is_success() {
            return Err(self
                .status_error(key.as_str(), Context::Read, response)
                .await);
        }
        self.saw_bucket();
        Ok(Some(response))
    }
}

impl ranged::Source for GcsStore {
    type Checksum = Crc32c;

    fn common(&self) -> &Common {
        &self.common
    }

    fn ranges(&self) -> &Ranges {
        &self.ranges
    }

    fn arrival(response: &reqwest::Response) -> Arrival {
        let header = |name| rest::header(response, name);
        let crc32c = header("x-goog-hash").and_then(|hashes| {
            hashes
                .split(',')
                .find_map(|hash| hash.trim().strip_prefix("crc32c="))
                .map(str::to_owned)
        });
        Arrival {
            version: header("x-goog-generation").unwrap_or_default().to_owned(),
            length: response.content_length(),
            checksum: crc32c,
            last_modified_ms: rest::http_date_millis(header("last-modified")),
        }
    }

    async fn whole(&self, key: &ObjectKey, full: &str) -> Result<reqwest::Response, StoreError> {
        let answer = self.media(key, full, None).await?;
        Ok(answer.expect("no if-none-match was given"))
    }

    async fn range(
        &self,
        key: &ObjectKey,
        full: &str,
        generation: &str,
        offset: u64,
        length: u64,
    ) -> Result<reqwest::Response, StoreError> {
        let request = self
            .clients
            .small
            .get(self.object_url(full))
            .query(&[("alt", "media"), ("generation", generation)])
            .header("range", Ranges::range(offset, length));
        self.send(key.as_str(), request).await
    }

    async fn read_error(&self, key: &ObjectKey, response: reqwest::Response) -> StoreError {
        self.status_error(key.as_str(), Context::Read, response)
            .await
    }
}

/// GCS's checksum: CRC32C, as base64 of its big-endian bytes.
pub(crate) struct Crc32c(crc_fast::Digest);

impl ranged::Checksum for Crc32c {
    const NAME: &'static str = "CRC32C";

    fn new() -> Self {
        Self(crc_fast::Digest::new(crc_fast::CrcAlgorithm::Crc32Iscsi))
    }

    fn update(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }

    fn finish(self) -> String {
        STANDARD.encode((self.0.finalize() as u32).to_be_bytes())
    }
}

/// The `multipart/related` framing of an upload: the metadata part, then
/// the data, then the closing boundary.
struct Framing {
    /// The object's name in the bucket.
    full: String,
    /// The data's size.
    size: u64,
    boundary: String,
    head: Bytes,
    tail: Bytes,
}

impl Framing {
    fn new(full: &str, size: u64, crc32c: Option<u32>) -> Self {
        let boundary = boundary();
        let mut metadata = serde_json::json!({ "name": full });
        if let Some(crc) = crc32c {
            metadata["crc32c"] = STANDARD.encode(crc.to_be_bytes()).into();
        }
        let head = format!(
            "--{boundary}\r\ncontent-type: application/json; charset=UTF-8\r\n\r\n{metadata}\r\n--{boundary}\r\ncontent-type: application/octet-stream\r\n\r\n"
        );
        let tail = format!("\r\n--{boundary}--\r\n");
        Self {
            full: full.to_owned(),
            size,
            boundary,
            head: Bytes::from(head),
            tail: Bytes::from(tail),
        }
    }

    fn length(&self) -> u64 {
        self.head.len() as u64 + self.size + self.tail.len() as u64
    }
}

/// A multipart boundary no data will contain by chance: 128 random bits.
fn boundary() -> String {
    let random = crate::retry::random_u64;
    format!("silt-{:016x}{:016x}", random(), random())
}

fn crc32c_of(data: &[u8]) -> u32 {
    let mut digest = crc_fast::Digest::new(crc_fast::CrcAlgorithm::Crc32Iscsi);
    digest.update(data);
    digest.finalize() as u32
}

/// A query parameter: name and value.
type Param = (&'static str, String);

/// The query parameter of a write in `mode` (GCS's precondition), and how
/// its answer's 404 and 412 read.
fn write_condition(
    key: &ObjectKey,
    mode: &PutMode,
) -> Result<(Option<Param>, Context), StoreError> {
    Ok(match mode {
        PutMode::Overwrite => (None, Context::Other),
        PutMode::Create => (Some(("ifGenerationMatch", "0".to_owned())), Context::Create),
        PutMode::Update(version) => (
            Some(("ifGenerationMatch", generation(key, version)?.to_owned())),
            Context::Conditional,
        ),
    })
}

/// `version` as a generation (a number), or the error for another token
/// (versions reach here from extensions).
fn generation<'a>(key: &ObjectKey, version: &'a Version) -> Result<&'a str, StoreError> {
    if !version.0.is_empty()
        && version.0.len() <= 20
        && version.0.bytes().all(|b| b.is_ascii_digit())
    {
        Ok(&version.0)
    } else {
        Err(StoreError::InvalidArgument {
            detail: format!(
                "`{key}`: a GCS version is a generation (a number), not {:?}",
                version.0.escape_debug().to_string()
            ),
        })
    }
}

/// Milliseconds since the Unix epoch of an RFC 3339 UTC time as GCS
/// writes them (`2026-11-29T21:47:04.892875Z`).
pub(crate) fn rfc3339_millis(text: &str) -> Option<u64> {
    let (date, time) = text.split_once('T')?;
    let mut date = date.splitn(3, '-').map(|part| part.parse::<i64>().ok());
    let (year, month, day) = (date.next()??, date.next()??, date.next()??);
    let time = time.strip_suffix('Z')?;
    let (clock, fraction) = time.split_once('.').unwrap_or((time, "0"));
    let mut clock = clock.splitn(3, ':').map(|part| part.parse::<i64>().ok());
    let (hour, minute, second) = (clock.next()??, clock.next()??, clock.next()??);
    if !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let millis: i64 = format!("{fraction:0<3}").get(..3)?.parse().ok()?;
    // Days from the civil date (Howard Hinnant's algorithm).
    let (y, m) = if month <= 2 {
        (year - 1, month + 9)
    } else {
        (year, month - 3)
    };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * m + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let ms = ((days * 24 + hour) * 60 + minute) * 60_000 + second * 1000 + millis;
    u64::try_from(ms).ok()
}

#[async_trait::async_trait]
impl ObjectStore for GcsStore {
    fn credentials_failure(&self) -> Option<StoreError> {
        self.common.credentials_failure()
    }

    async fn leftovers(&self, prefix: &str, sweep: Sweep) -> Result<Vec<Leftover>, StoreError> {
        self.uploads_left(prefix, sweep).await
    }

    async fn get(
        &self,
        key: &ObjectKey,
        if_none_match: Option<&Version>,
    ) -> Result<GetOutcome, StoreError> {
        let full = self.common.full(key)?;
        let Some(response) = self.media(key, &full, if_none_match).await? else {
            return Ok(GetOutcome::NotModified);
        };
        // An emulator may ignore ifGenerationNotMatch; the answer still says.
        let generation = <Self as ranged::Source>::arrival(&response).version;
        if if_none_match.is_some_and(|v| v.0 == generation) {
            return Ok(GetOutcome::NotModified);
        }
        let (meta, data) = ranged::read_whole(self, key, response).await?;
        Ok(GetOutcome::Found(meta, data))
    }

    async fn head(&self, key: &ObjectKey) -> Result<ObjectMeta, StoreError> {
        let full = self.common.full(key)?;
        let response = self
            .send(key.as_str(), self.clients.small.get(self.object_url(&full)))
            .await?;
        if !response.status().is_success() {
            return Err(self
                .status_error(key.as_str(), Context::Read, response)
                .await);
        }
        self.saw_bucket();
        let resource = self.resource(key.as_str(), response).await?;
        Ok(self.meta_of(key, &resource))
    }

    async fn put(
        &self,
        key: &ObjectKey,
        data: Vec<u8>,
        mode: PutMode,
    ) -> Result<Version, StoreError> {
        let full = self.common.full(key)?;
        let crc = crc32c_of(&data);
        let framing = Framing::new(&full, data.len() as u64, Some(crc));
        let mut body = Vec::with_capacity(framing.length() as usize);
        body.extend_from_slice(&framing.head);
        body.extend_from_slice(&data);
        body.extend_from_slice(&framing.tail);
        self.upload(key, &framing, body.into(), None, || crc, &mode)
            .await
    }

    async fn delete(&self, key: &ObjectKey, if_match: Option<&Version>) -> Result<(), StoreError> {
        let full = self.common.full(key)?;
        let mut request = self.clients.small.delete(self.object_url(&full));
        let context = match if_match {
            Some(version) => {
                request = request.query(&[("ifGenerationMatch", generation(key, version)?)]);
                Context::Conditional
            }
            None => Context::Other,
        };
        let response = self.send(key.as_str(), request).await?;
        if response.status().is_success() {
            self.saw_bucket();
            return Ok(());
        }
        match self.status_error(key.as_str(), context, response).await {
            StoreError::NotFound { .. } if if_match.is_none() => Ok(()),
            other => Err(other),
        }
    }

    async fn list(
        &self,
        prefix: &str,
        start_after: Option<&ObjectKey>,
        limit: u32,
    ) -> Result<ListPage, StoreError> {
        let limit = limit.clamp(1, MAX_LIST_PAGE);
        let url = format!("{}/storage/v1/b/{}/o", self.base, encode(&self.bucket));
        // startOffset is inclusive: ask for one more and drop `start_after`.
        let mut query = vec![
            ("prefix", format!("{}{prefix}", self.common.prefix())),
            ("maxResults", (limit + 1).min(MAX_LIST_PAGE).to_string()),
            (
                "fields",
                "items(name,size,generation,updated),nextPageToken".to_owned(),
            ),
        ];
        if let Some(after) = start_after {
            query.push(("startOffset", self.common.full(after)?));
        }
        // A page may hold nothing silt lists (only `start_after`, or names
        // it cannot represent, such as a console's `folder/` markers) and
        // still have more after it: follow it, never end the listing there.
        let mut page_token: Option<String> = None;
        let (mut items, more) = loop {
            let mut page_query = query.clone();
            if let Some(token) = &page_token {
                page_query.push(("pageToken", token.clone()));
            }
            let request = self.clients.small.get(&url).query(&page_query);
            let response = self.send(prefix, request).await?;
            if !response.status().is_success() {
                return Err(self.status_error(prefix, Context::Read, response).await);
            }
            self.saw_bucket();
            let body = response.bytes().await.map_err(|err| {
                self.common.backend(
                    true,
                    format!("listing `{prefix}`: {}", rest::request_words(&err)),
                )
            })?;
            let listing: Listing = serde_json::from_slice(&body).map_err(|err| {
                self.common
                    .backend(false, format!("listing `{prefix}`: not a listing ({err})"))
            })?;
            let items: Vec<ObjectMeta> = listing
                .items
                .iter()
                .filter_map(|resource| {
                    let key = self.common.relative(&resource.name)?;
                    (Some(&key) != start_after).then(|| self.meta_of(&key, resource))
                })
                .collect();
            match listing.next_page_token {
                Some(token) if items.is_empty() => page_token = Some(token),
                token => break (items, token.is_some()),
            }
        };
        let truncated = items.len() > limit as usize;
        items.truncate(limit as usize);
        let next_start_after = if truncated || more {
            items.last().map(|meta| meta.key.clone())
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
        let full = self.common.full(key)?;
        let first = self
            .clients
            .small
            .get(self.object_url(&full))
            .query(&[("alt", "media")])
            .header("range", self.ranges.first_range());
        let response = self.send(key.as_str(), first).await?;
        let status = response.status().as_u16();
        if status != 416 && !response.status().is_success() {
            return Err(self
                .status_error(key.as_str(), Context::Read, response)
                .await);
        }
        self.saw_bucket();
        ranged::download(self, key, &full, response, sink).await
    }

    async fn put_file(
        &self,
        key: &ObjectKey,
        file: std::fs::File,
        mode: PutMode,
    ) -> Result<Version, StoreError> {
        let full = self.common.full(key)?;
        let size = file
            .metadata()
            .map_err(|err| crate::local_io(key, &err))?
            .len();
        if self.uploads_in_parts(key, size) {
            return self.put_composed(key, file, size, &mode).await;
        }
        let framing = Framing::new(&full, size, None);
        let digest = std::sync::Arc::new(Mutex::new(crc_fast::Digest::new(
            crc_fast::CrcAlgorithm::Crc32Iscsi,
        )));
        let hashed = digest.clone();
        let progress = crate::progress::current();
        let watch = rest::UploadWatch::new();
        let taken = watch.clone();
        let data = rest::file_chunks(file, move |chunk: &[u8]| {
            taken.touch();
            if let Ok(mut digest) = hashed.lock() {
                digest.update(chunk);
            }
            if let Some(progress) = &progress {
                progress.moved(chunk.len() as u64);
            }
        });
        let body = futures_util::stream::iter([Ok::<_, std::io::Error>(framing.head.clone())])
            .chain(data)
            .chain(futures_util::stream::iter([Ok(framing.tail.clone())]));
        let crc = move || digest.lock().map_or(0, |d| d.clone().finalize() as u32);
        let body = reqwest::Body::wrap_stream(body);
        self.upload(key, &framing, body, Some(&watch), crc, &mode)
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gcs_times_read_as_milliseconds() {
        assert_eq!(rfc3339_millis("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(
            rfc3339_millis("2026-11-29T21:47:04.892875Z"),
            Some(1_795_988_824_892)
        );
        assert_eq!(
            rfc3339_millis("2000-03-01T00:00:01.5Z"),
            Some(951_868_801_500)
        );
        assert_eq!(rfc3339_millis("yesterday"), None);
        assert_eq!(rfc3339_millis("2000-03-01T00:00:01.\u{e9}Z"), None);
    }

    #[test]
    fn crc32c_is_castagnoli() {
        // The check value of CRC-32C.
        assert_eq!(crc32c_of(b"123456789"), 0xE306_9283);
    }
}
