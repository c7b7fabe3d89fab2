//! Where the GCS backend's access tokens come from: Google's application
//! default credentials, in gcloud's order — the file
//! `GOOGLE_APPLICATION_CREDENTIALS` names, then gcloud's own
//! `application_default_credentials.json` — each a service-account key, a
//! user's refresh token (`gcloud auth application-default login`) or an
//! external account (workload identity federation: a CI job's OIDC token
//! exchanged at Google's STS); then the GCE metadata server, only when the
//! configuration asks for it ([`GcsCredentialSources::Metadata`]): silt
//! never probes a link-local address on its own.
//!
//! Tokens are cached and renewed a few minutes before they expire, so a
//! long command keeps working past a token's lifetime.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde::Deserialize;

/// Which sources the GCS backend takes tokens from (`[datastore.gcs]
/// credentials`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum GcsCredentialSources {
    /// Application default credentials: `GOOGLE_APPLICATION_CREDENTIALS`,
    /// then gcloud's application-default file. Never the metadata server.
    #[default]
    Standard,
    /// Those, then the GCE metadata server (on a Google Cloud VM or GKE pod
    /// whose service account grants the bucket). `GCE_METADATA_HOST` names
    /// another server.
    Metadata,
    /// No credentials: requests go unauthenticated (an emulator, or a
    /// public bucket read). Also what `STORAGE_EMULATOR_HOST` implies.
    None,
}

/// The OAuth scope silt asks for: objects read and written, nothing else.
const SCOPE: &str = "https://www.googleapis.com/auth/devstorage.read_write";
/// Google's token endpoint, where a key file names none.
const GOOGLE_TOKEN_URI: &str = "https://oauth2.googleapis.com/token";
/// A token is renewed this long before it expires.
const RENEW_BEFORE: Duration = Duration::from_secs(300);

/// Why no token could be had: none of the sources had credentials, or the
/// token service refused them. Either way every request fails until the
/// user fixes it, so it is never retried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialsProblem(pub String);

/// Whether the token service could not be reached (retry later) or
/// answered no (fix the credentials).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenError {
    /// The credentials are missing, malformed or refused.
    Credentials(CredentialsProblem),
    /// The token service did not answer; retrying later may succeed.
    Unreachable(String),
}

/// Hands out `Authorization` header values for one store.
pub struct Auth {
    source: Source,
    http: reqwest::Client,
    cached: tokio::sync::Mutex<Option<Token>>,
}

#[derive(Clone)]
struct Token {
    header: String,
    /// By the wall clock, which (unlike `Instant`) counts a laptop's sleep.
    renew_at: SystemTime,
}

/// Where tokens come from, decided once when the store is opened.
enum Source {
    Anonymous,
    ServiceAccount(ServiceAccountKey),
    AuthorizedUser(AuthorizedUser),
    ExternalAccount(ExternalAccount),
    Metadata(String),
    /// No source had credentials: the message names those tried.
    Missing(String),
    /// A credentials file could not be used: what is wrong with it.
    Broken(String),
}

#[derive(Deserialize)]
struct ServiceAccountKey {
    client_email: String,
    private_key: String,
    #[serde(default)]
    private_key_id: Option<String>,
    #[serde(default)]
    token_uri: Option<String>,
}

#[derive(Deserialize)]
struct AuthorizedUser {
    client_id: String,
    client_secret: String,
    refresh_token: String,
    #[serde(default)]
    token_uri: Option<String>,
}

#[derive(Deserialize)]
struct ExternalAccount {
    audience: String,
    subject_token_type: String,
    token_url: String,
    credential_source: CredentialSource,
    #[serde(default)]
    service_account_impersonation_url: Option<String>,
}

#[derive(Deserialize)]
struct CredentialSource {
    #[serde(default)]
    file: Option<PathBuf>,
    #[serde(default)]
    format: Option<SubjectFormat>,
}

#[derive(Deserialize)]
struct SubjectFormat {
    #[serde(rename = "type", default)]
    kind: Option<String>,
    #[serde(default)]
    subject_token_field_name: Option<String>,
}

#[derive(Deserialize)]
struct KeyFileKind {
    #[serde(rename = "type")]
    kind: String,
}

impl Auth {
    /// The token source `sources` and the environment select.
    pub fn new(sources: GcsCredentialSources, http: reqwest::Client) -> Self {
        Self {
            source: Source::select(sources),
            http,
            cached: tokio::sync::Mutex::new(None),
        }
    }

    /// Unauthenticated requests (an emulator).
    pub fn anonymous(http: reqwest::Client) -> Self {
        Self {
            source: Source::Anonymous,
            http,
            cached: tokio::sync::Mutex::new(None),
        }
    }

    /// The `Authorization` header value for the next request, if any.
    ///
    /// # Errors
    /// [`TokenError::Credentials`] when there are none or they are refused;
    /// [`TokenError::Unreachable`] when the token service cannot be reached.
    pub async fn header(&self) -> Result<Option<String>, TokenError> {
        if matches!(self.source, Source::Anonymous) {
            return Ok(None);
        }
        let mut cached = self.cached.lock().await;
        if let Some(token) = cached.as_ref().filter(|t| SystemTime::now() < t.renew_at) {
            return Ok(Some(token.header.clone()));
        }
        let token = self.fetch().await?;
        let header = token.header.clone();
        *cached = Some(token);
        Ok(Some(header))
    }

    /// Whether requests carry tokens that expire (and can be fetched anew).
    pub fn has_tokens(&self) -> bool {
        !matches!(
            self.source,
            Source::Anonymous | Source::Missing(_) | Source::Broken(_)
        )
    }

    /// Forgets the cached token (the store refused it: it may have been
    /// revoked before its time).
    pub async fn forget(&self) {
        *self.cached.lock().await = None;
    }

    async fn fetch(&self) -> Result<Token, TokenError> {
        let refused = |detail: String| TokenError::Credentials(CredentialsProblem(detail));
        match &self.source {
            Source::Anonymous => unreachable!("anonymous requests carry no token"),
            Source::Missing(detail) | Source::Broken(detail) => Err(refused(detail.clone())),
            Source::ServiceAccount(key) => {
                let token_uri = key.token_uri.as_deref().unwrap_or(GOOGLE_TOKEN_URI);
                let assertion = key.signed_jwt(token_uri).map_err(refused)?;
                let form = [
                    ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
                    ("assertion", assertion.as_str()),
                ];
                self.oauth_token(token_uri, &form, "the service-account key")
                    .await
            }
            Source::AuthorizedUser(user) => {
                let token_uri = user.token_uri.as_deref().unwrap_or(GOOGLE_TOKEN_URI);
                let form = [
                    ("grant_type", "refresh_token"),
                    ("client_id", user.client_id.as_str()),
                    ("client_secret", user.client_secret.as_str()),
                    ("refresh_token", user.refresh_token.as_str()),
                ];
                self.oauth_token(
                    token_uri,
                    &form,
                    "the user credentials (run `gcloud auth application-default login` again)",
                )
                .await
            }
            Source::ExternalAccount(account) => self.external_account(account).await,
            Source::Metadata(host) => {
                let url = format!(
                    "{host}/computeMetadata/v1/instance/service-accounts/default/token?scopes={SCOPE}"
                );
                let request = self.http.get(url).header("Metadata-Flavor", "Google");
                let answer = send_form(request, "the GCE metadata server").await?;
                token_from(&answer, "the GCE metadata server")
            }
        }
    }

    /// POSTs `form` to an OAuth token endpoint and reads the token.
    async fn oauth_token(
        &self,
        url: &str,
        form: &[(&str, &str)],
        whose: &str,
    ) -> Result<Token, TokenError> {
        let request = self
            .http
            .post(url)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(crate::rest::form_body(form));
        let answer = send_form(request, whose).await?;
        token_from(&answer, whose)
    }

    /// Workload identity federation: the subject token (a CI job's OIDC
    /// token in a file) exchanged at the STS endpoint, then, if the file
    /// says so, a service account's token got with it.
    async fn external_account(&self, account: &ExternalAccount) -> Result<Token, TokenError> {
        let refused = |detail: String| TokenError::Credentials(CredentialsProblem(detail));
        let subject = account.subject_token().map_err(refused)?;
        let scope = if account.service_account_impersonation_url.is_some() {
            "https://www.googleapis.com/auth/cloud-platform"
        } else {
            SCOPE
        };
        let form = [
            (
                "grant_type",
                "urn:ietf:params:oauth:grant-type:token-exchange",
            ),
            ("audience", account.audience.as_str()),
            ("scope", scope),
            (
                "requested_token_type",
                "urn:ietf:params:oauth:token-type:access_token",
            ),
            ("subject_token", subject.as_str()),
            ("subject_token_type", account.subject_token_type.as_str()),
        ];
        let federated = self
            .oauth_token(
                &account.token_url,
                &form,
                "the external account's token exchange",
            )
            .await?;
        let Some(url) = &account.service_account_impersonation_url else {
            return Ok(federated);
        };
        let request = self
            .http
            .post(url)
            .header("authorization", &federated.header)
            .header("content-type", "application/json")
            .body(format!(r#"{{"scope":["{SCOPE}"],"lifetime":"3600s"}}"#));
        let answer = send_form(request, "the service-account impersonation").await?;
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Impersonated {
            access_token: String,
            expire_time: String,
        }
        let impersonated: Impersonated = serde_json::from_slice(&answer).map_err(|err| {
            refused(format!(
                "the service-account impersonation answered no token ({err})"
            ))
        })?;
        let expires_in = super::rfc3339_millis(&impersonated.expire_time)
            .map(|expiry| expiry.saturating_sub(now_millis()) / 1000)
            .unwrap_or(3600);
        Ok(Token::bearer(&impersonated.access_token, expires_in))
    }
}

impl Source {
    fn select(sources: GcsCredentialSources) -> Self {
        if sources == GcsCredentialSources::None {
            return Self::Anonymous;
        }
        let mut tried = Vec::new();
        if let Some(path) = std::env::var_os("GOOGLE_APPLICATION_CREDENTIALS") {
            return Self::from_file(Path::new(&path), "GOOGLE_APPLICATION_CREDENTIALS");
        }
        tried.push("GOOGLE_APPLICATION_CREDENTIALS (a key or external-account file)".to_owned());
        if let Some(path) = gcloud_adc_file() {
            if path.is_file() {
                return Self::from_file(&path, "gcloud's application-default credentials");
            }
            tried.push(format!("gcloud's {}", path.display()));
        }
        if sources == GcsCredentialSources::Metadata {
            let host = std::env::var("GCE_METADATA_HOST")
                .map(|host| with_scheme(&host))
                .unwrap_or_else(|_| "http://metadata.google.internal".to_owned());
            return Self::Metadata(host);
        }
        tried.push(
            "the GCE metadata server (not asked unless [datastore.gcs] credentials = \"metadata\")"
                .to_owned(),
        );
        Self::Missing(format!(
            "no Google Cloud credentials; tried, in order: {}. Set GOOGLE_APPLICATION_CREDENTIALS to a service-account key or a workload identity federation file (a CI job), run `gcloud auth application-default login` (a laptop), or on a Google Cloud VM set [datastore.gcs] credentials = \"metadata\"",
            tried.join("; ")
        ))
    }

    fn from_file(path: &Path, named_by: &str) -> Self {
        let broken = |what: String| {
            Self::Broken(format!(
                "the credentials file {} ({named_by}) {what}",
                path.display()
            ))
        };
        let text = match std::fs::read(path) {
            Ok(text) => text,
            Err(err) => return broken(format!("cannot be read: {err}")),
        };
        let kind = match serde_json::from_slice::<KeyFileKind>(&text) {
            Ok(kind) => kind.kind,
            Err(err) => {
                return broken(format!(
                    "is not a Google credentials file ({err}); it needs a \"type\""
                ));
            }
        };
        let parsed = match kind.as_str() {
            "service_account" => serde_json::from_slice(&text).map(Self::ServiceAccount),
            "authorized_user" => serde_json::from_slice(&text).map(Self::AuthorizedUser),
            "external_account" => serde_json::from_slice(&text).map(Self::ExternalAccount),
            other => {
                return broken(format!(
                    "has type {:?}, which silt does not read (service_account, authorized_user and external_account are)",
                    other.escape_debug().to_string()
                ));
            }
        };
        match parsed {
            Ok(Self::ExternalAccount(account)) if account.credential_source.file.is_none() => {
                broken("takes its subject token from a source other than a file (`credential_source.file`), which silt does not read".to_owned())
            }
            Ok(source) => source,
            Err(err) => broken(format!("is a malformed {kind} file: {err}")),
        }
    }
}

impl ServiceAccountKey {
    /// The signed JWT a service account presents for a token (RS256).
    fn signed_jwt(&self, audience: &str) -> Result<String, String> {
        let der = pem_body(&self.private_key)
            .ok_or("the service-account key's private_key is not a PEM private key")?;
        let key = aws_lc_rs::signature::RsaKeyPair::from_pkcs8(&der)
            .map_err(|err| format!("the service-account key's private_key is unusable: {err}"))?;
        let header = match &self.private_key_id {
            Some(id) => serde_json::json!({"alg": "RS256", "typ": "JWT", "kid": id}),
            None => serde_json::json!({"alg": "RS256", "typ": "JWT"}),
        };
        let now = now_millis() / 1000;
        let claims = serde_json::json!({
            "iss": self.client_email,
            "scope": SCOPE,
            "aud": audience,
            "iat": now,
            "exp": now + 3600,
        });
        let signed = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let mut signature = vec![0; key.public_modulus_len()];
        key.sign(
            &aws_lc_rs::signature::RSA_PKCS1_SHA256,
            &aws_lc_rs::rand::SystemRandom::new(),
            signed.as_bytes(),
            &mut signature,
        )
        .map_err(|_| "signing with the service-account key failed".to_owned())?;
        Ok(format!("{signed}.{}", URL_SAFE_NO_PAD.encode(signature)))
    }
}

impl ExternalAccount {
    /// The subject token from the file the account names, in its format.
    fn subject_token(&self) -> Result<String, String> {
        let path = self
            .credential_source
            .file
            .as_deref()
            .expect("checked when the file was read");
        let text = std::fs::read_to_string(path).map_err(|err| {
            format!(
                "the workload identity subject token file {} cannot be read: {err}",
                path.display()
            )
        })?;
        let format = self.credential_source.format.as_ref();
        if format.and_then(|f| f.kind.as_deref()) != Some("json") {
            return Ok(text.trim().to_owned());
        }
        let field = format
            .and_then(|f| f.subject_token_field_name.as_deref())
            .ok_or("the external account's json format names no subject_token_field_name")?;
        let value: serde_json::Value = serde_json::from_str(&text).map_err(|err| {
            format!(
                "the subject token file {} is not JSON: {err}",
                path.display()
            )
        })?;
        value
            .get(field)
            .and_then(serde_json::Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| format!("the subject token file {} has no {field:?}", path.display()))
    }
}

impl Token {
    fn bearer(access_token: &str, expires_in_s: u64) -> Self {
        let lifetime = Duration::from_secs(expires_in_s);
        Self {
            header: format!("Bearer {access_token}"),
            renew_at: SystemTime::now() + lifetime.saturating_sub(RENEW_BEFORE).max(lifetime / 2),
        }
    }
}

/// Sends a token request; the answer's body, or why there is none.
async fn send_form(request: reqwest::RequestBuilder, whose: &str) -> Result<Vec<u8>, TokenError> {
    let response = request.send().await.map_err(|err| {
        TokenError::Unreachable(format!(
            "cannot reach the token service for {whose}: {}",
            crate::rest::request_words(&err)
        ))
    })?;
    let status = response.status();
    let body = response.bytes().await.map_err(|err| {
        TokenError::Unreachable(format!(
            "the token service for {whose} stopped answering: {err}"
        ))
    })?;
    if status.is_success() {
        return Ok(body.to_vec());
    }
    if status.is_server_error() || status.as_u16() == 429 {
        return Err(TokenError::Unreachable(format!(
            "the token service for {whose} answered {status}"
        )));
    }
    Err(TokenError::Credentials(CredentialsProblem(format!(
        "the token service refused {whose} ({status}: {}); check the credentials file and the role's permissions",
        crate::rest::server_message(&body)
    ))))
}

fn token_from(answer: &[u8], whose: &str) -> Result<Token, TokenError> {
    #[derive(Deserialize)]
    struct Answer {
        access_token: String,
        #[serde(default)]
        expires_in: Option<u64>,
    }
    let answer: Answer = serde_json::from_slice(answer).map_err(|err| {
        TokenError::Credentials(CredentialsProblem(format!(
            "the token service answered {whose} without a token ({err})"
        )))
    })?;
    Ok(Token::bearer(
        &answer.access_token,
        answer.expires_in.unwrap_or(3600),
    ))
}

/// The DER bytes of a PEM block (a service-account key's `private_key`).
fn pem_body(pem: &str) -> Option<Vec<u8>> {
    let body: String = pem
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with("-----"))
        .collect();
    STANDARD.decode(body).ok()
}

/// gcloud's application-default credentials file.
fn gcloud_adc_file() -> Option<PathBuf> {
    let config = match std::env::var_os("CLOUDSDK_CONFIG") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => PathBuf::from(std::env::var_os("HOME")?).join(".config/gcloud"),
    };
    Some(config.join("application_default_credentials.json"))
}

fn with_scheme(host: &str) -> String {
    if host.starts_with("http://") || host.starts_with("https://") {
        host.trim_end_matches('/').to_owned()
    } else {
        format!("http://{}", host.trim_end_matches('/'))
    }
}

fn now_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_of_another_type_is_named_not_guessed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key.json");
        std::fs::write(&path, r#"{"type":"impersonated_service_account"}"#).unwrap();
        let Source::Broken(detail) = Source::from_file(&path, "test") else {
            panic!("an unknown type is refused");
        };
        assert!(detail.contains("impersonated_service_account"), "{detail}");
    }

    #[test]
    fn a_subject_token_is_read_as_its_format_says() {
        let dir = tempfile::tempdir().unwrap();
        let token = dir.path().join("token");
        std::fs::write(&token, r#"{"id_token":"abc"}"#).unwrap();
        let account: ExternalAccount = serde_json::from_value(serde_json::json!({
            "audience": "a", "subject_token_type": "t", "token_url": "http://127.0.0.1:1/token",
            "credential_source": {"file": token, "format": {"type": "json", "subject_token_field_name": "id_token"}}
        }))
        .unwrap();
        assert_eq!(account.subject_token().unwrap(), "abc");
        std::fs::write(&token, "plain-token\n").unwrap();
        let account: ExternalAccount = serde_json::from_value(serde_json::json!({
            "audience": "a", "subject_token_type": "t", "token_url": "http://127.0.0.1:1/token",
            "credential_source": {"file": token}
        }))
        .unwrap();
        assert_eq!(account.subject_token().unwrap(), "plain-token");
    }

    #[test]
    fn a_token_is_renewed_before_it_expires() {
        let token = Token::bearer("t", 3600);
        let left = token.renew_at.duration_since(SystemTime::now()).unwrap();
        assert!(left <= Duration::from_secs(3300) && left > Duration::from_secs(3200));
        let short = Token::bearer("t", 60);
        assert!(
            short.renew_at.duration_since(SystemTime::now()).unwrap() <= Duration::from_secs(30)
        );
    }
}
