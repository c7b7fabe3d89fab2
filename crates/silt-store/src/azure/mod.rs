//! The Azure Blob Storage backend, on the Blob service's REST API over
//! reqwest.
//!
//! - A version is a blob's ETag: a create is `If-None-Match: *`, an update
//!   and a conditional delete `If-Match: <etag>`, checked by the service
//!   atomically.
//! - Writes are single `Put Blob` requests; files of 64 MiB or more go up
//!   as blocks in parallel ([`blocks`]). A whole-object put sends its
//!   `Content-MD5`, which the service checks; every put is then checked
//!   against the MD5 the service answers for what it stored (a `HEAD` when
//!   the answer has none). A read is checked against the blob's stored
//!   MD5; a large one comes down as parallel ranges pinned to its ETag.
//! - The Blob service cannot list from a key: a listing that goes on where
//!   this store's last page ended takes up its cursor (the rest of the
//!   service's page, then its marker; kept a minute); any other
//!   `start_after` pages from the prefix's start, skipping what comes
//!   before it.
//! - Names Azure would alter are refused: a path segment ending in `.`
//!   (the service drops the dots, so `a./b` would be `a/b`) and Unicode
//!   noncharacters.
//! - Credentials: [`credentials`].

mod blocks;
pub mod credentials;

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use md5::Digest as _;
use percent_encoding::AsciiSet;
use tokio::io::AsyncWrite;

use credentials::{Authorization, AzureCredentialSources, TokenError};

use crate::ranged::{self, Arrival, Checksum as _, Ranges};
use crate::rest::{self, Common, Context, Refusals};

use super::{
    GetOutcome, ListPage, MAX_LIST_PAGE, ObjectKey, ObjectMeta, ObjectStore, PutMode, StoreError,
    Version,
};

/// Where an Azure datastore lives and how to reach it (`[datastore.azure]`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct AzureConfig {
    /// The storage account; default: the connection string's, else
    /// `AZURE_STORAGE_ACCOUNT`.
    #[serde(default)]
    pub account: Option<String>,
    /// The container.
    pub container: String,
    /// A key prefix inside the container (no leading or trailing `/`), or empty.
    #[serde(default)]
    pub prefix: String,
    /// The blob endpoint (an emulator: `http://127.0.0.1:10000/ACCOUNT`);
    /// default: the connection string's, else
    /// `https://ACCOUNT.blob.core.windows.net`. Plain `http` only to loopback.
    #[serde(default)]
    pub endpoint: Option<String>,
    /// Which credential sources are tried (default `standard`).
    #[serde(default)]
    pub credentials: AzureCredentialSources,
}

/// The Blob service version every request names.
const SERVICE_VERSION: &str = "2021-08-06";
/// The most items one listing request asks for.
const MAX_SERVICE_PAGE: u32 = 5000;

/// A blob name in a URL path: `/` kept, everything but unreserved
/// characters encoded.
const BLOB_PATH: &AsciiSet = &rest::COMPONENT.remove(b'/');

/// An Azure container (and prefix) as an [`ObjectStore`].
pub struct AzureStore {
    clients: rest::Clients,
    /// The blob endpoint, without a trailing `/`.
    base: String,
    /// The endpoint's own path (`/ACCOUNT` on an emulator, else empty).
    base_path: String,
    account: String,
    container: String,
    common: Common,
    auth: Authorization,
    /// Where each listing this store returned a page of goes on, by
    /// (listed prefix, the page's last name).
    cursors: Mutex<HashMap<(String, String), Cursor>>,
    /// Large downloads in parallel ranges.
    ranges: Ranges,
}

impl std::fmt::Display for AzureStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.common.fmt(f)
    }
}

/// Where a listing goes on: the rest of the service's last page (names
/// after the page this store returned), then the service's marker.
struct Cursor {
    rest: Vec<(String, ObjectMeta)>,
    marker: Option<String>,
    /// When the service's page it holds was read.
    taken: std::time::Instant,
}

/// How long a listing's cursor is kept: pages are asked for one after
/// another; a cursor older than this is dropped and the listing pages from
/// the prefix's start again (slower, never wrong).
const CURSOR_LIFETIME: Duration = Duration::from_secs(60);

/// The most listings' cursors kept at once.
const MAX_CURSORS: usize = 64;

/// One request before it is signed: method, path below the endpoint,
/// query pairs and headers (names lowercase).
struct Call {
    method: reqwest::Method,
    path: String,
    query: Vec<(String, String)>,
    headers: Vec<(String, String)>,
}

impl Call {
    fn new(method: reqwest::Method, path: String) -> Self {
        Self {
            method,
            path,
            query: Vec::new(),
            headers: Vec::new(),
        }
    }

    fn query(mut self, name: &str, value: &str) -> Self {
        self.query.push((name.to_owned(), value.to_owned()));
        self
    }

    fn header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers.push((name.to_owned(), value.into()));
        self
    }
}

impl AzureStore {
    /// A client for `config` with the credentials the environment gives;
    /// `request_timeout` bounds connecting and each wait for the server's
    /// next bytes. No request is made yet.
    ///
    /// # Errors
    /// [`StoreError::Misconfigured`] for an empty container, no account, or
    /// an endpoint that is not a URL or is plain http to a non-loopback host.
    pub fn new(config: &AzureConfig, request_timeout: Duration) -> Result<Self, StoreError> {
        let found = credentials::find(config.credentials);
        let misconfigured = |detail: String| StoreError::Misconfigured {
            store: format!("azure container {}", config.container),
            detail: format!("{detail}; fix it in [datastore.azure] of silt.toml"),
        };
        if config.container.is_empty() {
            return Err(misconfigured("the container name is empty".to_owned()));
        }
        let account = config
            .account
            .clone()
            .or(found.account)
            .ok_or_else(|| misconfigured("no storage account: set `account` (or AZURE_STORAGE_ACCOUNT, or a connection string)".to_owned()))?;
        let base = config
            .endpoint
            .clone()
            .or(found.endpoint)
            .unwrap_or_else(|| format!("https://{account}.blob.core.windows.net"))
            .trim_end_matches('/')
            .to_owned();
        crate::s3::check_endpoint(&base).map_err(|err| misconfigured(err.to_string()))?;
        let base_path = base
            .split_once("://")
            .and_then(|(_, rest)| rest.find('/').map(|slash| rest[slash..].to_owned()))
            .unwrap_or_default();
        let clients = rest::Clients::new(request_timeout).map_err(misconfigured)?;
        let prefix = config.prefix.trim_matches('/');
        let display = match prefix {
            "" => format!("azure://{account}/{}", config.container),
            prefix => format!("azure://{account}/{}/{prefix}", config.container),
        };
        Ok(Self {
            clients,
            base,
            base_path,
            account,
            container: config.container.clone(),
            common: Common::new(display, prefix, request_timeout),
            auth: found.auth,
            cursors: Mutex::new(HashMap::new()),
            ranges: Ranges::default(),
        })
    }

    /// `key` under the prefix, if Azure keeps such a name as it is.
    fn full(&self, key: &ObjectKey) -> Result<String, StoreError> {
        let full = self.common.full(key)?;
        let altered = full.split('/').any(|segment| segment.ends_with('.'))
            || full
                .chars()
                .any(|c| matches!(c, '\u{FFFE}' | '\u{FFFF}' | '\u{FDD0}'..='\u{FDEF}'));
        if altered {
            return Err(StoreError::InvalidArgument {
                detail: format!(
                    "`{key}`: Azure Blob Storage alters names with a segment ending in `.` or a Unicode noncharacter; name it otherwise"
                ),
            });
        }
        Ok(full)
    }

    fn blob_path(&self, full: &str) -> String {
        format!(
            "/{}/{}",
            self.container,
            percent_encoding::utf8_percent_encode(full, BLOB_PATH)
        )
    }

    /// Signs and sends `call` with `body`; the response of any status.
    async fn send(
        &self,
        key: &str,
        call: Call,
        body: Option<reqwest::Body>,
    ) -> Result<reqwest::Response, StoreError> {
        self.send_watched(key, call, body, None).await
    }

    /// [`Self::send`] for an upload `watch` follows ([`Common::dispatch`]).
    async fn send_watched(
        &self,
        key: &str,
        mut call: Call,
        body: Option<reqwest::Body>,
        watch: Option<&rest::UploadWatch>,
    ) -> Result<reqwest::Response, StoreError> {
        call.headers
            .push(("x-ms-version".to_owned(), SERVICE_VERSION.to_owned()));
        call.headers.push((
            "x-ms-date".to_owned(),
            httpdate::fmt_http_date(std::time::SystemTime::now()),
        ));
        let mut query: Vec<String> = call
            .query
            .iter()
            .map(|(name, value)| format!("{name}={}", rest::encode(value)))
            .collect();
        let authorization = match &self.auth {
            Authorization::Anonymous => None,
            Authorization::SharedKey(account_key) => Some(credentials::sign(
                &self.account,
                account_key,
                call.method.as_str(),
                &format!("{}{}", self.base_path, call.path),
                &call.query,
                &call.headers,
            )),
            Authorization::Sas(sas) => {
                query.push(sas.clone());
                None
            }
            Authorization::EntraId(entra) => match entra.header(&self.clients.small).await {
                Ok(header) => Some(header),
                Err(TokenError::Credentials(detail)) => {
                    return Err(self.common.credentials_error(detail));
                }
                Err(TokenError::Unreachable(detail)) => {
                    return Err(self.common.backend(true, detail));
                }
            },
            Authorization::Missing(detail) | Authorization::Broken(detail) => {
                return Err(self.common.credentials_error(detail.clone()));
            }
        };
        let mut url = format!("{}{}", self.base, call.path);
        if !query.is_empty() {
            url.push('?');
            url.push_str(&query.join("&"));
        }
        let client = if watch.is_some() {
            &self.clients.upload
        } else {
            &self.clients.small
        };
        let mut request = client.request(call.method, url);
        for (name, value) in &call.headers {
            request = request.header(name, value);
        }
        if let Some(authorization) = authorization {
            request = request.header("authorization", authorization);
        }
        if let Some(body) = body {
            request = request.body(body);
        }
        self.common.dispatch(key, request, watch).await
    }

    /// The error of a response that is not a success, by status and the
    /// service's error code.
    async fn status_error(
        &self,
        key: &str,
        context: Context,
        response: reqwest::Response,
    ) -> StoreError {
        let status = response.status().as_u16();
        let code = rest::header(&response, "x-ms-error-code")
            .unwrap_or("")
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .take(60)
            .collect::<String>();
        if code == "ContainerNotFound" {
            return self.common.backend(
                false,
                format!(
                    "container `{}` does not exist in account `{}`: create it, or fix `container` in [datastore.azure] of silt.toml",
                    self.container, self.account
                ),
            );
        }
        // A Shared Key or SAS the service does not accept is 403
        // AuthenticationFailed: a refusal, as a 401 is. A missing role is
        // AuthorizationPermissionMismatch; other 403s (AuthorizationFailure:
        // a firewall, a SAS without the permission, or Azurite's answer to
        // a wrong key) may be either.
        let status = match status {
            403 if code == "AuthenticationFailed" => 401,
            status => status,
        };
        let refused = format!(
            "the store refused the credentials ({code}); check the account key, SAS token or identity"
        );
        if status == 401
            && let Authorization::EntraId(entra) = &self.auth
        {
            entra.forget().await;
            return self.common.token_refused(refused);
        }
        let forbidden = if code == "AuthorizationPermissionMismatch" {
            format!(
                "the credentials may not do this on container `{}` ({code}); grant them the Storage Blob Data Contributor role on it",
                self.container
            )
        } else {
            format!(
                "the store refused the request ({code}): check the account key, SAS token or identity, what it may do on container `{}`, and the account's network rules",
                self.container
            )
        };
        let refusals = || Refusals { refused, forbidden };
        self.common
            .status_error(key, status, context, &code, refusals)
    }

    /// A `Put Blob` of `body` (`size` bytes) as `mode` says; then the check
    /// that the service stored bytes of MD5 `md5` (computed while the body
    /// was sent, for a streamed file).
    #[allow(clippy::too_many_arguments)] // each is one fact of the upload
    async fn put_blob(
        &self,
        key: &ObjectKey,
        body: reqwest::Body,
        size: u64,
        watch: Option<&rest::UploadWatch>,
        declared_md5: Option<&str>,
        md5: impl FnOnce() -> String,
        mode: &PutMode,
    ) -> Result<Version, StoreError> {
        let full = self.full(key)?;
        let mut call = Call::new(reqwest::Method::PUT, self.blob_path(&full))
            .header("content-length", size.to_string())
            .header("content-type", "application/octet-stream")
            .header("x-ms-blob-type", "BlockBlob");
        if let Some(md5) = declared_md5 {
            call = call.header("content-md5", md5);
        }
        let context = match mode {
            PutMode::Overwrite => Context::Other,
            PutMode::Create => {
                call = call.header("if-none-match", "*");
                Context::Create
            }
            PutMode::Update(version) => {
                call = call.header("if-match", quoted(key, version)?);
                Context::Conditional
            }
        };
        let response = self
            .send_watched(key.as_str(), call, Some(body), watch)
            .await?;
        if !response.status().is_success() {
            return Err(self.status_error(key.as_str(), context, response).await);
        }
        let header = |name| rest::header(&response, name).map(str::to_owned);
        let version = Version(bare_etag(&header("etag").unwrap_or_default()));
        let sent = md5();
        // Azure answers a Put Blob with the MD5 it computed; a server that
        // does not is asked for the blob's properties instead.
        let stored = match header("content-md5") {
            Some(stored) => Some(stored),
            None => match self.properties(key, &full).await {
                Ok(stored) if stored.version != version.0 => {
                    tracing::warn!(
                        "`{key}`: replaced right after it was written; its upload was not checked"
                    );
                    None
                }
                Ok(stored) if stored.length != Some(size) => {
                    let problem =
                        format!("{size} bytes were sent, the store kept {:?}", stored.length);
                    return Err(self.landed_wrong(key, &full, &version, mode, problem).await);
                }
                Ok(stored) => stored.checksum,
                Err(err) => {
                    let problem = format!("the upload landed but could not be checked ({err})");
                    return Err(self.landed_wrong(key, &full, &version, mode, problem).await);
                }
            },
        };
        match stored {
            Some(stored) if stored != sent => Err(self
                .landed_wrong(
                    key,
                    &full,
                    &version,
                    mode,
                    format!("the store's MD5 {stored:?} is not the sent bytes' {sent}"),
                )
                .await),
            _ => Ok(version),
        }
    }

    /// The error of a put that did not land as sent (see
    /// [`Common::landed_wrong`]): a created or overwritten blob is removed
    /// again if it still has `version`.
    async fn landed_wrong(
        &self,
        key: &ObjectKey,
        full: &str,
        version: &Version,
        mode: &PutMode,
        problem: String,
    ) -> StoreError {
        let remove = || async {
            let Ok(condition) = quoted(key, version) else {
                return false;
            };
            let call = Call::new(reqwest::Method::DELETE, self.blob_path(full))
                .header("if-match", condition);
            self.send(key.as_str(), call, None)
                .await
                .is_ok_and(|response| response.status().is_success())
        };
        self.common.landed_wrong(key, mode, problem, remove).await
    }

    /// A `Get Blob` response for `key`, or the error; `None` for 304.
    async fn get_blob(
        &self,
        key: &ObjectKey,
        if_none_match: Option<&Version>,
    ) -> Result<Option<reqwest::Response>, StoreError> {
        let full = self.full(key)?;
        let mut call = Call::new(reqwest::Method::GET, self.blob_path(&full));
        if let Some(version) = if_none_match {
            call = call.header("if-none-match", quoted(key, version)?);
        }
        let response = self.send(key.as_str(), call, None).await?;
        if response.status().as_u16() == 304 {
            return Ok(None);
        }
        if !response.status().is_success() {
            return Err(self
                .status_error(key.as_str(), Context::Read, response)
                .await);
        }
        Ok(Some(response))
    }

    /// One listing request; the blobs and the service's next marker.
    async fn list_once(
        &self,
        full_prefix: &str,
        marker: Option<&str>,
        max: u32,
    ) -> Result<(Vec<(String, ObjectMeta)>, Option<String>), StoreError> {
        let mut call = Call::new(reqwest::Method::GET, format!("/{}", self.container))
            .query("restype", "container")
            .query("comp", "list")
            .query("prefix", full_prefix)
            .query("maxresults", &max.to_string());
        if let Some(marker) = marker {
            call = call.query("marker", marker);
        }
        let response = self.send(full_prefix, call, None).await?;
        if !response.status().is_success() {
            return Err(self
                .status_error(full_prefix, Context::Read, response)
                .await);
        }
        let body = response.text().await.map_err(|err| {
            self.common.backend(
                true,
                format!("listing `{full_prefix}`: {}", rest::request_words(&err)),
            )
        })?;
        let mut blobs = Vec::new();
        for blob in body.split("<Blob>").skip(1) {
            let blob = blob.split("</Blob>").next().unwrap_or("");
            // A name the service had to encode (characters XML cannot carry)
            // is none silt writes or can name: skipped, as S3's listing
            // skips keys silt does not represent.
            if blob.contains("<Name Encoded=\"true\"") {
                tracing::warn!(
                    "listing `{full_prefix}`: skipped a blob whose name XML cannot carry"
                );
                continue;
            }
            let (Some(name), Some(etag)) = (element(blob, "Name"), element(blob, "Etag")) else {
                return Err(self.common.backend(
                    false,
                    format!("listing `{full_prefix}`: a blob without a name or ETag"),
                ));
            };
            let name = unescape(name);
            let Some(key) = self.common.relative(&name) else {
                continue;
            };
            let meta = ObjectMeta {
                key,
                size: element(blob, "Content-Length")
                    .and_then(|size| size.parse().ok())
                    .unwrap_or(0),
                version: Version(bare_etag(&unescape(etag))),
                last_modified_ms: rest::http_date_millis(element(blob, "Last-Modified")),
            };
            blobs.push((name, meta));
        }
        let next = element(&body, "NextMarker")
            .filter(|marker| !marker.is_empty())
            .map(unescape);
        Ok((blobs, next))
    }
}

/// The text of the first `<name>…</name>` in `xml`.
fn element<'a>(xml: &'a str, name: &str) -> Option<&'a str> {
    let open = format!("<{name}>");
    let start = xml.find(&open)? + open.len();
    let end = xml[start..].find(&format!("</{name}>"))?;
    Some(&xml[start..start + end])
}

/// A version as this store writes it: the ETag without quotes, since the
/// service quotes it in headers and not in listings.
fn bare_etag(etag: &str) -> String {
    etag.trim_start_matches("W/").trim_matches('"').to_owned()
}

/// A version as a condition header carries it, or the error for a token
/// that is no ETag (versions reach here from extensions).
fn quoted(key: &ObjectKey, version: &Version) -> Result<String, StoreError> {
    if !version.0.is_empty()
        && version.0.len() <= 64
        && version.0.bytes().all(|b| b.is_ascii_alphanumeric())
    {
        Ok(format!("\"{}\"", version.0))
    } else {
        Err(StoreError::InvalidArgument {
            detail: format!(
                "`{key}`: an Azure version is an ETag, not {:?}",
                version.0.escape_debug().to_string()
            ),
        })
    }
}

fn unescape(text: &str) -> String {
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

impl ranged::Source for AzureStore {
    type Checksum = Md5;

    fn common(&self) -> &Common {
        &self.common
    }

    fn ranges(&self) -> &Ranges {
        &self.ranges
    }

    fn arrival(response: &reqwest::Response) -> Arrival {
        let header = |name| rest::header(response, name);
        Arrival {
            version: bare_etag(header("etag").unwrap_or_default()),
            length: response.content_length(),
            // A range's answer names the whole blob's MD5 apart from the
            // range's own.
            checksum: if response.status().as_u16() == 206 {
                header("x-ms-blob-content-md5")
            } else {
                header("content-md5")
            }
            .map(str::to_owned),
            last_modified_ms: rest::http_date_millis(header("last-modified")),
        }
    }

    async fn whole(&self, key: &ObjectKey, _full: &str) -> Result<reqwest::Response, StoreError> {
        let answer = self.get_blob(key, None).await?;
        Ok(answer.expect("no if-none-match was given"))
    }

    async fn range(
        &self,
        key: &ObjectKey,
        full: &str,
        etag: &str,
        offset: u64,
        length: u64,
    ) -> Result<reqwest::Response, StoreError> {
        let call = Call::new(reqwest::Method::GET, self.blob_path(full))
            .header("range", Ranges::range(offset, length))
            .header("if-match", quoted(key, &Version(etag.to_owned()))?);
        self.send(key.as_str(), call, None).await
    }

    async fn read_error(&self, key: &ObjectKey, response: reqwest::Response) -> StoreError {
        self.status_error(key.as_str(), Context::Read, response)
            .await
    }
}

/// Azure's checksum: MD5, as base64.
pub(crate) struct Md5(md5::Md5);

impl ranged::Checksum for Md5 {
    const NAME: &'static str = "MD5";

    fn new() -> Self {
        Self(md5::Md5::new())
    }

    fn update(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }

    fn finish(self) -> String {
        STANDARD.encode(self.0.finalize())
    }
}

impl AzureStore {
    /// The blob's properties, by a `HEAD`.
    async fn properties(&self, key: &ObjectKey, full: &str) -> Result<Arrival, StoreError> {
        let call = Call::new(reqwest::Method::HEAD, self.blob_path(full));
        let response = self.send(key.as_str(), call, None).await?;
        if !response.status().is_success() {
            return Err(self
                .status_error(key.as_str(), Context::Read, response)
                .await);
        }
        let mut properties = <Self as ranged::Source>::arrival(&response);
        // A HEAD's answer has no body: its length is the header's.
        properties.length =
            rest::header(&response, "content-length").and_then(|value| value.parse().ok());
        Ok(properties)
    }
}

#[async_trait::async_trait]
impl ObjectStore for AzureStore {
    fn credentials_failure(&self) -> Option<StoreError> {
        self.common.credentials_failure()
    }

    async fn get(
        &self,
        key: &ObjectKey,
        if_none_match: Option<&Version>,
    ) -> Result<GetOutcome, StoreError> {
        let Some(response) = self.get_blob(key, if_none_match).await? else {
            return Ok(GetOutcome::NotModified);
        };
        let (meta, data) = ranged::read_whole(self, key, response).await?;
        Ok(GetOutcome::Found(meta, data))
    }

    async fn head(&self, key: &ObjectKey) -> Result<ObjectMeta, StoreError> {
        let full = self.full(key)?;
        let properties = self.properties(key, &full).await?;
        let size = properties.length.unwrap_or(0);
        Ok(properties.meta(key, size))
    }

    async fn put(
        &self,
        key: &ObjectKey,
        data: Vec<u8>,
        mode: PutMode,
    ) -> Result<Version, StoreError> {
        let md5 = Md5::of(&data);
        let size = data.len() as u64;
        self.put_blob(
            key,
            data.into(),
            size,
            None,
            Some(&md5),
            || md5.clone(),
            &mode,
        )
        .await
    }

    async fn delete(&self, key: &ObjectKey, if_match: Option<&Version>) -> Result<(), StoreError> {
        let full = self.full(key)?;
        let mut call = Call::new(reqwest::Method::DELETE, self.blob_path(&full));
        let context = match if_match {
            Some(version) => {
                call = call.header("if-match", quoted(key, version)?);
                Context::Conditional
            }
            None => Context::Other,
        };
        let response = self.send(key.as_str(), call, None).await?;
        if response.status().is_success() {
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
        let limit = limit.clamp(1, MAX_LIST_PAGE) as usize;
        let full_prefix = format!("{}{prefix}", self.common.prefix());
        let after = start_after.map(|key| self.common.full(key)).transpose()?;
        // A listing that goes on from where this store's last page ended
        // takes up that page's cursor; any other pages from the prefix's
        // start, skipping what is not after `start_after`.
        let cursor = after.as_ref().and_then(|after| {
            let mut cursors = self.cursors.lock().ok()?;
            cursors
                .remove(&(full_prefix.clone(), after.clone()))
                .filter(|cursor| cursor.taken.elapsed() < CURSOR_LIFETIME)
        });
        // When the service's page was read: a cursor's data is no fresher.
        let (mut items, mut marker, mut more, mut fetched) = match cursor {
            Some(cursor) => {
                let more = cursor.marker.is_some();
                (cursor.rest, cursor.marker, more, cursor.taken)
            }
            None => (Vec::new(), None, true, std::time::Instant::now()),
        };
        while items.len() <= limit && more {
            let (page, next) = self
                .list_once(&full_prefix, marker.as_deref(), MAX_SERVICE_PAGE)
                .await?;
            fetched = std::time::Instant::now();
            items.extend(
                page.into_iter()
                    .filter(|(name, _)| after.as_ref().is_none_or(|after| name > after)),
            );
            more = next.is_some();
            marker = next;
        }
        let rest = items.split_off(limit.min(items.len()));
        let next_start_after = if !rest.is_empty() || more {
            items.last().map(|(_, meta)| meta.key.clone())
        } else {
            None
        };
        if let (Some((last, _)), true) = (items.last(), next_start_after.is_some())
            && let Ok(mut cursors) = self.cursors.lock()
        {
            cursors.retain(|_, cursor| cursor.taken.elapsed() < CURSOR_LIFETIME);
            // A bounded few: listings go on one page at a time.
            while cursors.len() >= MAX_CURSORS {
                let oldest = cursors
                    .iter()
                    .min_by_key(|(_, cursor)| cursor.taken)
                    .map(|(at, _)| at.clone());
                match oldest {
                    Some(oldest) => cursors.remove(&oldest),
                    None => break,
                };
            }
            cursors.insert(
                (full_prefix, last.clone()),
                Cursor {
                    rest,
                    marker,
                    taken: fetched,
                },
            );
        }
        Ok(ListPage {
            items: items.into_iter().map(|(_, meta)| meta).collect(),
            next_start_after,
        })
    }

    async fn get_into(
        &self,
        key: &ObjectKey,
        sink: &mut (dyn AsyncWrite + Unpin + Send),
    ) -> Result<ObjectMeta, StoreError> {
        let full = self.full(key)?;
        let first = Call::new(reqwest::Method::GET, self.blob_path(&full))
            .header("range", self.ranges.first_range());
        let response = self.send(key.as_str(), first, None).await?;
        let status = response.status().as_u16();
        if status != 416 && !response.status().is_success() {
            return Err(self
                .status_error(key.as_str(), Context::Read, response)
                .await);
        }
        ranged::download(self, key, &full, response, sink).await
    }

    async fn put_file(
        &self,
        key: &ObjectKey,
        file: std::fs::File,
        mode: PutMode,
    ) -> Result<Version, StoreError> {
        let size = file
            .metadata()
            .map_err(|err| crate::local_io(key, &err))?
            .len();
        if size >= blocks::THRESHOLD {
            return self.put_blocks(key, file, size, &mode).await;
        }
        let digest = std::sync::Arc::new(Mutex::new(md5::Md5::new()));
        let hashed = digest.clone();
        let progress = crate::progress::current();
        let watch = rest::UploadWatch::new();
        let taken = watch.clone();
        let chunks = rest::file_chunks(file, move |chunk: &[u8]| {
            taken.touch();
            if let Ok(mut digest) = hashed.lock() {
                digest.update(chunk);
            }
            if let Some(progress) = &progress {
                progress.moved(chunk.len() as u64);
            }
        });
        let md5 = move || {
            digest
                .lock()
                .map(|digest| STANDARD.encode(digest.clone().finalize()))
                .unwrap_or_default()
        };
        self.put_blob(
            key,
            reqwest::Body::wrap_stream(chunks),
            size,
            Some(&watch),
            None,
            md5,
            &mode,
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listing_xml_is_read_with_its_escapes() {
        let xml = "<EnumerationResults><Blobs><Blob><Name>a/b&amp;c</Name><Properties><Etag>\"0x8D\"</Etag><Content-Length>5</Content-Length></Properties></Blob></Blobs><NextMarker /></EnumerationResults>";
        let blob = xml.split("<Blob>").nth(1).unwrap();
        assert_eq!(unescape(element(blob, "Name").unwrap()), "a/b&c");
        assert_eq!(element(blob, "Content-Length"), Some("5"));
        assert_eq!(element(xml, "NextMarker"), None);
    }
}
