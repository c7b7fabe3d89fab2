//! Where the Azure backend's credentials come from, in the order the Azure
//! CLI's storage commands look: a connection string
//! (`AZURE_STORAGE_CONNECTION_STRING`), an account key
//! (`AZURE_STORAGE_KEY`), a SAS token (`AZURE_STORAGE_SAS_TOKEN`), then
//! Microsoft Entra ID: a workload identity's federated token file
//! (`AZURE_FEDERATED_TOKEN_FILE` with `AZURE_CLIENT_ID` and
//! `AZURE_TENANT_ID`: AKS pods, GitHub Actions) or a service principal's
//! secret (`AZURE_CLIENT_SECRET`); then, only when the configuration asks
//! for it ([`AzureCredentialSources::ManagedIdentity`]), the VM's managed
//! identity from the instance metadata service: silt probes no link-local
//! address on its own.
//!
//! Shared Key requests are signed here ([`sign`]); Entra ID tokens are
//! cached and renewed before they expire.

use std::time::{Duration, SystemTime};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

/// What a connection string or the environment gives: the account, how
/// requests are authorised, and perhaps the endpoint.
pub struct Found {
    /// The storage account, if the source names one.
    pub account: Option<String>,
    /// The blob endpoint, if the source names one.
    pub endpoint: Option<String>,
    /// How requests are authorised.
    pub auth: Authorization,
}

/// How requests are authorised.
pub enum Authorization {
    /// No credentials (an emulator's public container; `credentials = "none"`).
    Anonymous,
    /// Shared Key: the account key, decoded.
    SharedKey(Vec<u8>),
    /// A SAS token's query string (without `?`).
    Sas(String),
    /// Microsoft Entra ID tokens from a token endpoint.
    EntraId(EntraId),
    /// None of the sources had credentials: what was tried.
    Missing(String),
    /// A source was set but unusable: what is wrong.
    Broken(String),
}

/// An Entra ID client: a federated token file or a secret, exchanged at
/// the tenant's token endpoint for storage tokens.
pub struct EntraId {
    token_url: String,
    client_id: String,
    proof: Proof,
    /// The token and when to renew it, by the wall clock (which, unlike
    /// `Instant`, counts a laptop's sleep).
    cached: tokio::sync::Mutex<Option<(String, SystemTime)>>,
}

enum Proof {
    FederatedTokenFile(std::path::PathBuf),
    Secret(String),
    /// The instance metadata service's token for the managed identity
    /// (`client_id` chooses a user-assigned one).
    ManagedIdentity,
}

/// Which sources are tried (`[datastore.azure] credentials`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum AzureCredentialSources {
    /// The environment, as the Azure CLI's storage commands read it.
    #[default]
    Standard,
    /// Those, then the managed identity of the VM or pod, from the
    /// instance metadata service (`AZURE_POD_IDENTITY_AUTHORITY_HOST`
    /// names another host; `AZURE_CLIENT_ID` a user-assigned identity).
    ManagedIdentity,
    /// No credentials: requests go unauthenticated.
    None,
}

/// Why a token could not be had.
pub enum TokenError {
    /// The credentials are missing, malformed or refused.
    Credentials(String),
    /// The token endpoint did not answer; retrying later may succeed.
    Unreachable(String),
}

/// The credentials `sources` and the environment give.
pub fn find(sources: AzureCredentialSources) -> Found {
    let nothing = |auth| Found {
        account: None,
        endpoint: None,
        auth,
    };
    if sources == AzureCredentialSources::None {
        return nothing(Authorization::Anonymous);
    }
    let var = |name: &str| std::env::var(name).ok().filter(|value| !value.is_empty());
    if let Some(text) = var("AZURE_STORAGE_CONNECTION_STRING") {
        return connection_string(&text);
    }
    if let Some(key) = var("AZURE_STORAGE_KEY") {
        return Found {
            account: var("AZURE_STORAGE_ACCOUNT"),
            endpoint: None,
            auth: account_key(&key, "AZURE_STORAGE_KEY"),
        };
    }
    if let Some(sas) = var("AZURE_STORAGE_SAS_TOKEN") {
        return Found {
            account: var("AZURE_STORAGE_ACCOUNT"),
            endpoint: None,
            auth: Authorization::Sas(sas.trim_start_matches('?').to_owned()),
        };
    }
    let client = var("AZURE_CLIENT_ID");
    let tenant = var("AZURE_TENANT_ID");
    let proof = match (
        var("AZURE_FEDERATED_TOKEN_FILE"),
        var("AZURE_CLIENT_SECRET"),
    ) {
        (Some(file), _) => Some(Proof::FederatedTokenFile(file.into())),
        (None, Some(secret)) => Some(Proof::Secret(secret)),
        (None, None) => None,
    };
    match (client, tenant, proof) {
        (Some(client_id), Some(tenant), Some(proof)) => {
            let authority = var("AZURE_AUTHORITY_HOST")
                .unwrap_or_else(|| "https://login.microsoftonline.com".to_owned());
            nothing(Authorization::EntraId(EntraId {
                token_url: format!(
                    "{}/{tenant}/oauth2/v2.0/token",
                    authority.trim_end_matches('/')
                ),
                client_id,
                proof,
                cached: tokio::sync::Mutex::new(None),
            }))
        }
        (client, tenant, Some(_)) => nothing(Authorization::Broken(format!(
            "a workload identity or service principal needs AZURE_CLIENT_ID and AZURE_TENANT_ID too ({} missing)",
            [("AZURE_CLIENT_ID", client.is_none()), ("AZURE_TENANT_ID", tenant.is_none())]
                .iter()
                .filter(|(_, missing)| *missing)
                .map(|(name, _)| *name)
                .collect::<Vec<_>>()
                .join(" and ")
        ))),
        (client, _, None) if sources == AzureCredentialSources::ManagedIdentity => {
            let host = var("AZURE_POD_IDENTITY_AUTHORITY_HOST")
                .unwrap_or_else(|| "http://169.254.169.254".to_owned());
            nothing(Authorization::EntraId(EntraId {
                token_url: format!(
                    "{}/metadata/identity/oauth2/token",
                    host.trim_end_matches('/')
                ),
                client_id: client.unwrap_or_default(),
                proof: Proof::ManagedIdentity,
                cached: tokio::sync::Mutex::new(None),
            }))
        }
        _ => nothing(Authorization::Missing(
            "no Azure credentials; tried, in order: AZURE_STORAGE_CONNECTION_STRING; AZURE_STORAGE_KEY (with AZURE_STORAGE_ACCOUNT or [datastore.azure] account); AZURE_STORAGE_SAS_TOKEN; a workload identity (AZURE_FEDERATED_TOKEN_FILE, AZURE_CLIENT_ID, AZURE_TENANT_ID); a service principal (AZURE_CLIENT_SECRET, AZURE_CLIENT_ID, AZURE_TENANT_ID); the managed identity (not asked unless [datastore.azure] credentials = \"managed-identity\"). Set one of them (a CI job or an AKS pod: the workload identity)".to_owned(),
        )),
    }
}

/// A connection string's account, endpoint and key or SAS.
fn connection_string(text: &str) -> Found {
    let field = |name: &str| {
        text.split(';').find_map(|pair| {
            let (key, value) = pair.split_once('=')?;
            key.trim()
                .eq_ignore_ascii_case(name)
                .then(|| value.trim().to_owned())
        })
    };
    let account = field("AccountName");
    let endpoint = field("BlobEndpoint").or_else(|| {
        let account = account.as_ref()?;
        let protocol = field("DefaultEndpointsProtocol").unwrap_or_else(|| "https".to_owned());
        let suffix = field("EndpointSuffix").unwrap_or_else(|| "core.windows.net".to_owned());
        Some(format!("{protocol}://{account}.blob.{suffix}"))
    });
    let auth = match (field("AccountKey"), field("SharedAccessSignature")) {
        (Some(key), _) => account_key(&key, "AZURE_STORAGE_CONNECTION_STRING's AccountKey"),
        (None, Some(sas)) => Authorization::Sas(sas.trim_start_matches('?').to_owned()),
        (None, None) => Authorization::Broken(
            "AZURE_STORAGE_CONNECTION_STRING has neither AccountKey nor SharedAccessSignature"
                .to_owned(),
        ),
    };
    Found {
        account,
        endpoint,
        auth,
    }
}

fn account_key(key: &str, named_by: &str) -> Authorization {
    match STANDARD.decode(key.trim()) {
        Ok(key) => Authorization::SharedKey(key),
        Err(_) => Authorization::Broken(format!("{named_by} is not a base64 account key")),
    }
}

/// The Shared Key `Authorization` header value of a request (Blob service,
/// version 2009-09-19 and later): `method`, the URL's encoded `path` (from
/// its first `/`), its `query` pairs (decoded), and the standard and
/// `x-ms-` headers it carries (`headers`, names lowercase).
pub fn sign(
    account: &str,
    key: &[u8],
    method: &str,
    path: &str,
    query: &[(String, String)],
    headers: &[(String, String)],
) -> String {
    let standard = |name: &str| {
        headers
            .iter()
            .find(|(header, _)| header == name)
            .map_or("", |(_, value)| value.as_str())
    };
    let content_length = match standard("content-length") {
        "0" => "",
        length => length,
    };
    let mut ms: Vec<(&str, &str)> = headers
        .iter()
        .filter(|(name, _)| name.starts_with("x-ms-"))
        .map(|(name, value)| (name.as_str(), value.trim()))
        .collect();
    ms.sort();
    let mut text = format!(
        "{method}\n{}\n{}\n{content_length}\n{}\n{}\n\n{}\n{}\n{}\n{}\n{}\n",
        standard("content-encoding"),
        standard("content-language"),
        standard("content-md5"),
        standard("content-type"),
        standard("if-modified-since"),
        standard("if-match"),
        standard("if-none-match"),
        standard("if-unmodified-since"),
        standard("range"),
    );
    for (name, value) in ms {
        text.push_str(&format!("{name}:{value}\n"));
    }
    text.push_str(&format!("/{account}{path}"));
    let mut params: Vec<(String, &str)> = query
        .iter()
        .map(|(name, value)| (name.to_ascii_lowercase(), value.as_str()))
        .collect();
    params.sort();
    for (name, value) in params {
        text.push_str(&format!("\n{name}:{value}"));
    }
    let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, key);
    let signature = aws_lc_rs::hmac::sign(&key, text.as_bytes());
    format!(
        "SharedKey {account}:{}",
        STANDARD.encode(signature.as_ref())
    )
}

impl EntraId {
    /// The `Authorization` header value, from the cache or a new token.
    pub async fn header(&self, http: &reqwest::Client) -> Result<String, TokenError> {
        let mut cached = self.cached.lock().await;
        if let Some((header, renew_at)) = cached.as_ref()
            && SystemTime::now() < *renew_at
        {
            return Ok(header.clone());
        }
        let request = match &self.proof {
            Proof::ManagedIdentity => {
                let mut query = vec![
                    ("api-version", "2018-02-01"),
                    ("resource", "https://storage.azure.com/"),
                ];
                if !self.client_id.is_empty() {
                    query.push(("client_id", self.client_id.as_str()));
                }
                http.get(&self.token_url)
                    .query(&query)
                    .header("metadata", "true")
            }
            proof => {
                let mut form = vec![
                    ("grant_type", "client_credentials".to_owned()),
                    ("client_id", self.client_id.clone()),
                    ("scope", "https://storage.azure.com/.default".to_owned()),
                ];
                match proof {
                    Proof::FederatedTokenFile(path) => {
                        let assertion = std::fs::read_to_string(path).map_err(|err| {
                            TokenError::Credentials(format!(
                                "the federated token file {} (AZURE_FEDERATED_TOKEN_FILE) cannot be read: {err}",
                                path.display()
                            ))
                        })?;
                        form.push((
                            "client_assertion_type",
                            "urn:ietf:params:oauth:client-assertion-type:jwt-bearer".to_owned(),
                        ));
                        form.push(("client_assertion", assertion.trim().to_owned()));
                    }
                    Proof::Secret(secret) => form.push(("client_secret", secret.clone())),
                    Proof::ManagedIdentity => unreachable!("matched above"),
                }
                let pairs: Vec<(&str, &str)> = form
                    .iter()
                    .map(|(name, value)| (*name, value.as_str()))
                    .collect();
                http.post(&self.token_url)
                    .header("content-type", "application/x-www-form-urlencoded")
                    .body(crate::rest::form_body(&pairs))
            }
        };
        let response = request.send().await.map_err(|err| {
            TokenError::Unreachable(format!(
                "cannot reach Microsoft Entra ID at {}: {}",
                self.token_url,
                crate::rest::request_words(&err)
            ))
        })?;
        let status = response.status();
        let answer = response.bytes().await.unwrap_or_default();
        // 410: the instance metadata service is still starting (retry).
        if status.is_server_error() || matches!(status.as_u16(), 410 | 429) {
            return Err(TokenError::Unreachable(format!(
                "Microsoft Entra ID answered {status}"
            )));
        }
        if !status.is_success() {
            return Err(TokenError::Credentials(format!(
                "Microsoft Entra ID refused the credentials ({status}: {}); check AZURE_CLIENT_ID, AZURE_TENANT_ID and the identity's federation",
                entra_message(&answer)
            )));
        }
        #[derive(serde::Deserialize)]
        struct Answer {
            access_token: String,
            /// Seconds; the instance metadata service writes it as a string.
            #[serde(default)]
            expires_in: Option<serde_json::Value>,
        }
        let answer: Answer = serde_json::from_slice(&answer).map_err(|err| {
            TokenError::Credentials(format!("Microsoft Entra ID answered no token ({err})"))
        })?;
        let expires_in = match &answer.expires_in {
            Some(serde_json::Value::Number(seconds)) => seconds.as_u64(),
            Some(serde_json::Value::String(seconds)) => seconds.parse().ok(),
            _ => None,
        };
        let lifetime = Duration::from_secs(expires_in.unwrap_or(3600));
        let renew_at = SystemTime::now()
            + lifetime
                .saturating_sub(Duration::from_secs(300))
                .max(lifetime / 2);
        let header = format!("Bearer {}", answer.access_token);
        *cached = Some((header.clone(), renew_at));
        Ok(header)
    }

    /// Forgets the cached token (the store refused it).
    pub async fn forget(&self) {
        *self.cached.lock().await = None;
    }
}

fn entra_message(body: &[u8]) -> String {
    #[derive(serde::Deserialize)]
    struct Error {
        #[serde(default)]
        error: String,
    }
    let text = serde_json::from_slice::<Error>(body)
        .map(|e| e.error)
        .unwrap_or_default();
    let text: String = text.chars().filter(|c| !c.is_control()).take(100).collect();
    if text.is_empty() {
        "no message".to_owned()
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_connection_string_gives_account_endpoint_and_key() {
        let found = connection_string(
            "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=a2V5;BlobEndpoint=http://127.0.0.1:10000/devstoreaccount1;",
        );
        assert_eq!(found.account.as_deref(), Some("devstoreaccount1"));
        assert_eq!(
            found.endpoint.as_deref(),
            Some("http://127.0.0.1:10000/devstoreaccount1")
        );
        assert!(matches!(found.auth, Authorization::SharedKey(key) if key == b"key"));
        let found = connection_string("AccountName=acct;SharedAccessSignature=?sv=1&sig=x");
        assert_eq!(
            found.endpoint.as_deref(),
            Some("https://acct.blob.core.windows.net")
        );
        assert!(matches!(found.auth, Authorization::Sas(sas) if sas == "sv=1&sig=x"));
    }

    #[test]
    fn shared_key_signs_the_canonical_request() {
        // The string to sign, worked out by hand from the Shared Key rules
        // for a conditional GET with one x-ms header and a query.
        let headers = vec![
            ("x-ms-version".to_owned(), "2021-08-06".to_owned()),
            (
                "x-ms-date".to_owned(),
                "Sun, 29 Nov 2026 22:00:00 GMT".to_owned(),
            ),
            ("if-none-match".to_owned(), "\"0x1\"".to_owned()),
        ];
        let query = vec![
            ("restype".to_owned(), "container".to_owned()),
            ("Comp".to_owned(), "list".to_owned()),
        ];
        let expected = "GET\n\n\n\n\n\n\n\n\n\"0x1\"\n\n\nx-ms-date:Sun, 29 Nov 2026 22:00:00 GMT\nx-ms-version:2021-08-06\n/acct/c\ncomp:list\nrestype:container";
        let key = b"secret";
        let hmac = aws_lc_rs::hmac::sign(
            &aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, key),
            expected.as_bytes(),
        );
        assert_eq!(
            sign("acct", key, "GET", "/c", &query, &headers),
            format!("SharedKey acct:{}", STANDARD.encode(hmac.as_ref()))
        );
    }
}
