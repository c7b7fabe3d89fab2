//! Credentials the way gcloud finds them, through the real `silt` on
//! fake-gcs-server: a service-account key (its JWT checked against the
//! key's public half), a user's refresh token in gcloud's
//! application-default file, workload identity federation (a CI job's OIDC
//! token exchanged, then a service account impersonated), and the GCE
//! metadata server only when configured. Tokens come from a token server of
//! the test's own on 127.0.0.1; a proxy in front of the emulator (which
//! checks no tokens) refuses any request without the token it issued.
//! Nothing is sent to a link-local address.

use std::io::{BufReader, Write as _};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};

use crate::support::fake_gcs;
use crate::support::http_head::{forward, header, listen, read_request};
use crate::support::project::{Backend, Project};

/// Every variable Google's credential lookup reads.
const GOOGLE_VARIABLES: [&str; 5] = [
    "GOOGLE_APPLICATION_CREDENTIALS",
    "CLOUDSDK_CONFIG",
    "GCE_METADATA_HOST",
    "STORAGE_EMULATOR_HOST",
    "GOOGLE_CLOUD_PROJECT",
];

/// A request the token server or the store proxy saw.
#[derive(Debug, Clone)]
struct Seen {
    line: String,
    authorization: String,
    metadata_flavor: String,
    body: String,
}

/// The token server: OAuth's token endpoint, STS, the IAM credentials
/// impersonation endpoint and the GCE metadata server, on 127.0.0.1.
/// Each answer is a token named after what asked for it.
struct TokenServer {
    endpoint: String,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl TokenServer {
    fn start(refuse: bool) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let recorded = seen.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let recorded = recorded.clone();
                std::thread::spawn(move || answer_token(stream, &recorded, refuse));
            }
        });
        Self { endpoint, seen }
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

fn answer_token(stream: TcpStream, recorded: &Mutex<Vec<Seen>>, refuse: bool) {
    let Ok((head, body)) = read_request(&mut BufReader::new(stream.try_clone().unwrap())) else {
        return;
    };
    let seen = Seen {
        line: head[0].clone(),
        authorization: header(&head, "authorization").unwrap_or("").to_owned(),
        metadata_flavor: header(&head, "metadata-flavor").unwrap_or("").to_owned(),
        body: String::from_utf8_lossy(&body).into_owned(),
    };
    recorded.lock().unwrap().push(seen.clone());
    let path = seen.line.split(' ').nth(1).unwrap_or("");
    let (status, answer) = if refuse {
        (
            "400 Bad Request",
            r#"{"error":"invalid_grant","error_description":"revoked"}"#.to_owned(),
        )
    } else if path.starts_with("/impersonate") {
        (
            "200 OK",
            r#"{"accessToken":"tok-impersonated","expireTime":"2099-01-01T00:00:00Z"}"#.to_owned(),
        )
    } else {
        let token = if path.starts_with("/computeMetadata") {
            "tok-metadata"
        } else if seen.body.contains("jwt-bearer") {
            "tok-service-account"
        } else if seen.body.contains("grant_type=refresh_token") {
            "tok-user"
        } else if seen.body.contains("token-exchange") {
            "tok-federated"
        } else {
            "tok-unknown"
        };
        (
            "200 OK",
            format!(r#"{{"access_token":"{token}","expires_in":3600,"token_type":"Bearer"}}"#),
        )
    };
    let mut stream = stream;
    let _ = write!(
        stream,
        "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{answer}",
        answer.len()
    );
}

/// A proxy in front of the emulator that answers 401 to any request
/// without `Bearer <token>`, as GCS does, and records what it saw.
struct TokenCheckingProxy {
    endpoint: String,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl TokenCheckingProxy {
    fn start(token: &'static str) -> Self {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let recorded = seen.clone();
        let endpoint = listen(fake_gcs::gated(), move |client, upstream| {
            let (head, body) = read_request(&mut BufReader::new(client.try_clone()?))?;
            let authorization = header(&head, "authorization").unwrap_or("").to_owned();
            recorded.lock().unwrap().push(Seen {
                line: head[0].clone(),
                authorization: authorization.clone(),
                metadata_flavor: String::new(),
                body: String::new(),
            });
            let mut client = client;
            if authorization != format!("Bearer {token}") {
                let body = r#"{"error":{"code":401,"message":"Invalid Credentials"}}"#;
                return write!(
                    client,
                    "HTTP/1.1 401 Unauthorized\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
            let mut server = forward(upstream, &head, &body)?;
            std::io::copy(&mut server, &mut client)?;
            Ok(())
        });
        Self { endpoint, seen }
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

/// A GCS project whose store is reached through `proxy` with `credentials`.
fn project_through(proxy: &TokenCheckingProxy, credentials: &str) -> Project {
    let project = Project::new(Backend::Gcs, "");
    let path = project.path().join("silt.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    let text = text.replace(fake_gcs::gated(), &proxy.endpoint).replace(
        "credentials = \"none\"",
        &format!("credentials = \"{credentials}\""),
    );
    std::fs::write(&path, text).unwrap();
    project
}

/// `silt` in `project` with no Google setting of the test process, a home
/// with no gcloud configuration, and `variables`.
fn bare_silt(project: &Project, home: &Path, variables: &[(&str, String)]) -> Command {
    project.silt_with_only(&GOOGLE_VARIABLES, home, variables)
}

/// A put and a get of one file: both must pass the token check.
fn round_trip(project: &Project, home: &Path, variables: &[(&str, String)]) {
    project.round_trip("gcs data\n", |p| bare_silt(p, home, variables));
}

/// A fresh RSA key as a service-account key file's `private_key` (PKCS#8
/// PEM), and its public half (PKCS#1 DER) to check signatures with.
fn rsa_key() -> (String, Vec<u8>) {
    use aws_lc_rs::encoding::AsDer as _;
    use aws_lc_rs::signature::KeyPair as _;
    let pair = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).unwrap();
    let der = pair.as_der().unwrap();
    let body = STANDARD.encode(der.as_ref());
    let lines: Vec<&str> = body
        .as_bytes()
        .chunks(64)
        .map(|chunk| std::str::from_utf8(chunk).unwrap())
        .collect();
    let pem = format!(
        "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
        lines.join("\n")
    );
    (pem, pair.public_key().as_ref().to_vec())
}

fn form_value(form: &str, name: &str) -> String {
    form.split('&')
        .find_map(|pair| pair.strip_prefix(&format!("{name}=")))
        .map(percent_decode)
        .unwrap_or_default()
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 3 <= bytes.len() {
            out.push(u8::from_str_radix(&text[i + 1..i + 3], 16).unwrap());
            i += 3;
        } else {
            out.push(if bytes[i] == b'+' { b' ' } else { bytes[i] });
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}

#[test]
fn a_service_account_key_signs_its_token_request() {
    let tokens = TokenServer::start(false);
    let proxy = TokenCheckingProxy::start("tok-service-account");
    let project = project_through(&proxy, "standard");
    let home = tempfile::tempdir().unwrap();
    let (private_key, public_key) = rsa_key();
    let key_file = home.path().join("key.json");
    let token_uri = format!("{}/token", tokens.endpoint);
    std::fs::write(
        &key_file,
        serde_json::json!({
            "type": "service_account",
            "client_email": "silt-ci@project.iam.gserviceaccount.com",
            "private_key_id": "key-1",
            "private_key": private_key,
            "token_uri": token_uri,
        })
        .to_string(),
    )
    .unwrap();
    let variables = [(
        "GOOGLE_APPLICATION_CREDENTIALS",
        key_file.display().to_string(),
    )];
    round_trip(&project, home.path(), &variables);

    let requests = tokens.seen();
    assert!(!requests.is_empty());
    for request in &requests {
        assert_eq!(request.line, "POST /token HTTP/1.1");
        let assertion = form_value(&request.body, "assertion");
        let (signed, signature) = assertion.rsplit_once('.').unwrap();
        let signature = URL_SAFE_NO_PAD.decode(signature).unwrap();
        aws_lc_rs::signature::UnparsedPublicKey::new(
            &aws_lc_rs::signature::RSA_PKCS1_2048_8192_SHA256,
            &public_key,
        )
        .verify(signed.as_bytes(), &signature)
        .expect("the JWT is signed with the service account's key");
        let claims = signed.split('.').nth(1).unwrap();
        let claims: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(claims).unwrap()).unwrap();
        assert_eq!(claims["iss"], "silt-ci@project.iam.gserviceaccount.com");
        assert_eq!(claims["aud"], token_uri.as_str());
        assert_eq!(
            claims["scope"],
            "https://www.googleapis.com/auth/devstorage.read_write"
        );
    }
    assert!(
        proxy
            .seen()
            .iter()
            .all(|seen| seen.authorization == "Bearer tok-service-account"),
        "every store request carried the token"
    );
}

#[test]
fn gclouds_application_default_login_is_used_and_its_token_refreshed() {
    let tokens = TokenServer::start(false);
    let proxy = TokenCheckingProxy::start("tok-user");
    let project = project_through(&proxy, "standard");
    let home = tempfile::tempdir().unwrap();
    let gcloud = home.path().join("gcloud");
    std::fs::create_dir(&gcloud).unwrap();
    std::fs::write(
        gcloud.join("application_default_credentials.json"),
        serde_json::json!({
            "type": "authorized_user",
            "client_id": "client-1",
            "client_secret": "secret-1",
            "refresh_token": "refresh-1",
            "token_uri": format!("{}/token", tokens.endpoint),
        })
        .to_string(),
    )
    .unwrap();
    round_trip(
        &project,
        home.path(),
        &[("CLOUDSDK_CONFIG", gcloud.display().to_string())],
    );
    let requests = tokens.seen();
    assert!(!requests.is_empty());
    assert!(requests.iter().all(|request| {
        form_value(&request.body, "refresh_token") == "refresh-1"
            && form_value(&request.body, "client_id") == "client-1"
    }));
}

#[test]
fn a_ci_jobs_oidc_token_is_exchanged_and_a_service_account_impersonated() {
    let tokens = TokenServer::start(false);
    let proxy = TokenCheckingProxy::start("tok-impersonated");
    let project = project_through(&proxy, "standard");
    let home = tempfile::tempdir().unwrap();
    let oidc = home.path().join("oidc.json");
    std::fs::write(&oidc, r#"{"value":"the-ci-jobs-oidc-token"}"#).unwrap();
    let file = home.path().join("federation.json");
    let audience = "//iam.googleapis.com/projects/1/locations/global/workloadIdentityPools/ci/providers/github";
    std::fs::write(
        &file,
        serde_json::json!({
            "type": "external_account",
            "audience": audience,
            "subject_token_type": "urn:ietf:params:oauth:token-type:jwt",
            "token_url": format!("{}/sts", tokens.endpoint),
            "service_account_impersonation_url": format!("{}/impersonate/silt-ci:generateAccessToken", tokens.endpoint),
            "credential_source": {"file": oidc, "format": {"type": "json", "subject_token_field_name": "value"}},
        })
        .to_string(),
    )
    .unwrap();
    round_trip(
        &project,
        home.path(),
        &[("GOOGLE_APPLICATION_CREDENTIALS", file.display().to_string())],
    );
    let requests = tokens.seen();
    let exchange = requests
        .iter()
        .find(|request| request.line.starts_with("POST /sts"))
        .expect("the OIDC token was exchanged");
    assert_eq!(
        form_value(&exchange.body, "subject_token"),
        "the-ci-jobs-oidc-token"
    );
    assert_eq!(form_value(&exchange.body, "audience"), audience);
    let impersonation = requests
        .iter()
        .find(|request| request.line.starts_with("POST /impersonate"))
        .expect("the service account was impersonated");
    assert_eq!(impersonation.authorization, "Bearer tok-federated");
}

#[test]
fn the_metadata_server_is_asked_only_when_configured() {
    let tokens = TokenServer::start(false);
    let proxy = TokenCheckingProxy::start("tok-metadata");
    let home = tempfile::tempdir().unwrap();
    let metadata_host = tokens.endpoint.trim_start_matches("http://").to_owned();
    let variables = [("GCE_METADATA_HOST", metadata_host)];

    // Standard sources, none set: exit 77 naming them; the metadata server
    // (though GCE_METADATA_HOST names one) is not asked.
    let project = project_through(&proxy, "standard");
    let input = project.write_input("input", "x\n");
    let (code, _, stderr) = crate::support::output(
        bare_silt(&project, home.path(), &variables).args(["data", "put", "t/m", "f.txt", &input]),
    );
    assert_eq!(code, 77, "{stderr}");
    for named in [
        "no Google Cloud credentials",
        "GOOGLE_APPLICATION_CREDENTIALS",
        "application_default_credentials.json",
        "credentials = \"metadata\"",
    ] {
        assert!(stderr.contains(named), "{named:?} in: {stderr}");
    }
    assert!(tokens.seen().is_empty(), "{:?}", tokens.seen());

    // Configured: asked, with its header, and the token used.
    let project = project_through(&proxy, "metadata");
    round_trip(&project, home.path(), &variables);
    let requests = tokens.seen();
    assert!(!requests.is_empty());
    assert!(requests.iter().all(|request| {
        request
            .line
            .starts_with("GET /computeMetadata/v1/instance/service-accounts/default/token")
            && request.metadata_flavor == "Google"
    }));
}

#[test]
fn refused_credentials_are_exit_77_at_once_not_a_network_problem() {
    let home = tempfile::tempdir().unwrap();
    let refusing = TokenServer::start(true);
    let proxy = TokenCheckingProxy::start("tok-user");
    let project = project_through(&proxy, "standard");
    let gcloud = home.path().join("gcloud");
    std::fs::create_dir(&gcloud).unwrap();
    std::fs::write(
        gcloud.join("application_default_credentials.json"),
        serde_json::json!({
            "type": "authorized_user", "client_id": "c", "client_secret": "s",
            "refresh_token": "revoked", "token_uri": format!("{}/token", refusing.endpoint),
        })
        .to_string(),
    )
    .unwrap();
    let variables = [("CLOUDSDK_CONFIG", gcloud.display().to_string())];
    let input = project.write_input("input", "x\n");
    let started = std::time::Instant::now();
    let (code, _, stderr) = crate::support::output(
        bare_silt(&project, home.path(), &variables).args(["data", "put", "t/m", "f.txt", &input]),
    );
    assert_eq!(code, 77, "{stderr}");
    assert!(stderr.contains("refused"), "{stderr}");
    assert!(!stderr.contains("cannot reach"), "{stderr}");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(10),
        "not retried for the operation's budget"
    );

    // A token the store itself refuses (401): also 77.
    let tokens = TokenServer::start(false);
    std::fs::write(
        gcloud.join("application_default_credentials.json"),
        serde_json::json!({
            "type": "authorized_user", "client_id": "c", "client_secret": "s",
            "refresh_token": "r", "token_uri": format!("{}/token", tokens.endpoint),
        })
        .to_string(),
    )
    .unwrap();
    let wrong = TokenCheckingProxy::start("another-token");
    let project = project_through(&wrong, "standard");
    let (code, _, stderr) = crate::support::output(
        bare_silt(&project, home.path(), &variables).args(["data", "put", "t/m", "f.txt", &input]),
    );
    assert_eq!(code, 77, "{stderr}");
    assert!(stderr.contains("refused the credentials"), "{stderr}");
}
