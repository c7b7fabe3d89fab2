//! Credentials the way the AWS CLI finds them, through the real `silt` on
//! the test server: each source gives the S3 identity's keys (SeaweedFS
//! checks every signature), served by a credential server of the test's
//! own on 127.0.0.1 — STS for web identity and assumed roles, the ECS
//! container endpoint, the EC2 instance metadata service. No test sends
//! anything to a link-local address: the instance metadata service is asked
//! only where a test points it at its own server.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::support::moto;
use crate::support::project::{Backend, Project};
use crate::support::recording_proxy::{self, Exchange, Issued, RecordingProxy};
use crate::support::seaweed::{ACCESS_KEY, SECRET_KEY};

/// `silt` in `project` with no AWS setting of the test process: only what
/// a test gives it, and a home with no `~/.aws`.
fn bare_silt(project: &Project, home: &Path) -> Command {
    let mut command = project.silt();
    without_aws_settings(&mut command, home);
    command
}

/// Removes the test process's `AWS_*` variables from `command` and points
/// the profile files at (empty, unless a test wrote them) files in `home`.
fn without_aws_settings(command: &mut Command, home: &Path) {
    // By name as well as by what is set now: other tests of this process
    // set the test server's keys in its environment at any moment, and a
    // child inherits what is there when it starts.
    for name in AWS_VARIABLES {
        command.env_remove(name);
    }
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("AWS_") {
            command.env_remove(name);
        }
    }
    for file in ["aws-config", "aws-credentials"] {
        let path = home.join(file);
        if !path.exists() {
            std::fs::write(&path, "").unwrap();
        }
    }
    command
        .env("HOME", home)
        .env("AWS_CONFIG_FILE", home.join("aws-config"))
        .env("AWS_SHARED_CREDENTIALS_FILE", home.join("aws-credentials"));
}

/// Every variable the AWS SDK reads for credentials, region and endpoints.
const AWS_VARIABLES: [&str; 22] = [
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_ROLE_ARN",
    "AWS_ROLE_SESSION_NAME",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
    "AWS_EC2_METADATA_SERVICE_ENDPOINT",
    "AWS_EC2_METADATA_DISABLED",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_S3",
    "AWS_ENDPOINT_URL_STS",
    "AWS_CONFIG_FILE",
    "AWS_SHARED_CREDENTIALS_FILE",
    "AWS_SDK_LOAD_CONFIG",
];

/// Writes `content` through `silt data put` and reads it back; panics with
/// what silt said when either fails.
fn round_trip(command: impl Fn() -> Command, content: &str) {
    let mut put = command();
    put.args(["data", "put", "creds/m", "a.txt", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = put.spawn().unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(content.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "put: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let (code, stdout, stderr) =
        crate::support::output(command().args(["data", "get", "creds/m", "a.txt"]));
    assert_eq!(code, 0, "get: {stderr}");
    assert_eq!(stdout, content);
}

/// A project whose S3 store is `server` itself, which records each request
/// and refuses it: SeaweedFS refuses session tokens it did not issue, so
/// what these tests check is the credentials on the wire — the key the
/// signature names and the session token — after the exchange that gave
/// them.
fn project_on(server: &CredentialServer, s3_extra: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("silt.toml"),
        format!(
            "[datastore]\nbackend = \"s3\"\n[datastore.s3]\nbucket = \"b\"\nendpoint = \"{}\"\n{s3_extra}",
            server.endpoint
        ),
    )
    .unwrap();
    dir
}

/// `silt datastore doctor` in `project` (its first request is a put).
fn doctor(project: &Path, home: &Path, env: &[(&str, &str)]) -> (i32, String) {
    let mut command = crate::support::silt(project);
    without_aws_settings(&mut command, home);
    command
        .envs(env.iter().copied())
        .args(["datastore", "doctor"]);
    let (code, _, stderr) = crate::support::output(&mut command);
    (code, stderr)
}

/// The S3 requests `server` received carry the credentials its exchange
/// issued: the S3 identity's key and the session token.
fn assert_signed_with_issued_credentials(server: &CredentialServer, stderr: &str) {
    let calls = server.requests();
    let s3: Vec<_> = calls
        .iter()
        .filter(|r| r.authorization.starts_with("AWS4-HMAC-SHA256") && !r.body.contains("Action="))
        .collect();
    assert!(!s3.is_empty(), "no S3 request: {calls:?}\n{stderr}");
    for request in s3 {
        assert!(
            request
                .authorization
                .contains(&format!("Credential={ACCESS_KEY}/")),
            "{request:?}"
        );
        assert_eq!(request.token, "session-token-1", "{request:?}");
    }
    // The store's refusal is a credentials error, not a network one.
    assert!(stderr.contains("access denied"), "{stderr}");
}

#[test]
fn a_ci_job_authenticates_with_a_web_identity_token_file() {
    let server = CredentialServer::start();
    let project = project_on(&server, "");
    let home = tempfile::tempdir().unwrap();
    let token = home.path().join("token");
    std::fs::write(&token, "eyJ.oidc-token-of-the-ci-job.sig").unwrap();
    let (code, stderr) = doctor(
        project.path(),
        home.path(),
        &[
            ("AWS_WEB_IDENTITY_TOKEN_FILE", token.to_str().unwrap()),
            ("AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/silt-ci"),
            ("AWS_ROLE_SESSION_NAME", "ci-run"),
            ("AWS_ENDPOINT_URL_STS", &server.endpoint),
        ],
    );
    assert_eq!(code, 77, "{stderr}");
    let calls = server.requests();
    let sts = calls
        .iter()
        .find(|r| r.body.contains("Action=AssumeRoleWithWebIdentity"))
        .unwrap_or_else(|| panic!("no STS call: {calls:?}\n{stderr}"));
    assert!(sts.body.contains("oidc-token-of-the-ci-job"), "{sts:?}");
    assert!(sts.body.contains("silt-ci"), "{sts:?}");
    assert_signed_with_issued_credentials(&server, &stderr);
}

#[test]
fn a_profile_that_assumes_a_role_from_a_source_profile_works() {
    let server = CredentialServer::start();
    let project = project_on(&server, "");
    let home = tempfile::tempdir().unwrap();
    std::fs::write(
        home.path().join("aws-config"),
        "[profile deploy]\nrole_arn = arn:aws:iam::123456789012:role/silt-deploy\nsource_profile = base\n\n\
         [profile base]\naws_access_key_id = AKIABASEKEY\naws_secret_access_key = base-secret\n",
    )
    .unwrap();
    let (code, stderr) = doctor(
        project.path(),
        home.path(),
        &[
            ("AWS_PROFILE", "deploy"),
            ("AWS_ENDPOINT_URL_STS", &server.endpoint),
        ],
    );
    assert_eq!(code, 77, "{stderr}");
    let calls = server.requests();
    let assume = calls
        .iter()
        .find(|r| r.body.contains("Action=AssumeRole&") || r.body.ends_with("Action=AssumeRole"))
        .unwrap_or_else(|| panic!("no AssumeRole call: {calls:?}\n{stderr}"));
    assert!(assume.body.contains("silt-deploy"), "{assume:?}");
    // The STS call is signed with the source profile's key.
    assert!(
        assume.authorization.contains("Credential=AKIABASEKEY/"),
        "{assume:?}"
    );
    assert_signed_with_issued_credentials(&server, &stderr);
}

#[test]
fn a_credential_process_of_the_profile_named_by_the_flag_gives_the_keys() {
    let project = Project::new(Backend::S3, "");
    let home = tempfile::tempdir().unwrap();
    let script = home.path().join("credentials.sh");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\necho '{{\"Version\": 1, \"AccessKeyId\": \"{ACCESS_KEY}\", \"SecretAccessKey\": \"{SECRET_KEY}\"}}'\n"
        ),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    std::fs::write(
        home.path().join("aws-config"),
        format!(
            "[default]\naws_access_key_id = AKIANOTTHISONE\naws_secret_access_key = wrong\n\n\
             [profile tools]\ncredential_process = {}\n",
            script.display()
        ),
    )
    .unwrap();
    round_trip(
        || {
            let mut command = bare_silt(&project, home.path());
            command.args(["--profile", "tools"]);
            command
        },
        "from a credential process\n",
    );
}

#[test]
fn an_ecs_task_gets_its_keys_from_the_container_endpoint() {
    let server = CredentialServer::start();
    let project = project_on(&server, "");
    let home = tempfile::tempdir().unwrap();
    let uri = format!("{}/ecs/credentials", server.endpoint);
    let (code, stderr) = doctor(
        project.path(),
        home.path(),
        &[
            ("AWS_CONTAINER_CREDENTIALS_FULL_URI", &uri),
            ("AWS_CONTAINER_AUTHORIZATION_TOKEN", "task-token-1"),
        ],
    );
    assert_eq!(code, 77, "{stderr}");
    let calls = server.requests();
    let ecs = calls
        .iter()
        .find(|r| r.path == "/ecs/credentials")
        .unwrap_or_else(|| panic!("no ECS call: {calls:?}\n{stderr}"));
    assert_eq!(ecs.authorization, "task-token-1");
    assert_signed_with_issued_credentials(&server, &stderr);
}

#[test]
fn instance_metadata_is_asked_when_configured() {
    let server = CredentialServer::start();
    // Its endpoint is the test's own server, never 169.254.x.x.
    let project = project_on(&server, "credentials = \"instance\"\n");
    let home = tempfile::tempdir().unwrap();
    let (code, stderr) = doctor(
        project.path(),
        home.path(),
        &[("AWS_EC2_METADATA_SERVICE_ENDPOINT", &server.endpoint)],
    );
    assert_eq!(code, 77, "{stderr}");
    let calls = server.requests();
    assert!(
        calls
            .iter()
            .any(|r| r.method == "PUT" && r.path == "/latest/api/token"),
        "IMDSv2 token not asked for: {calls:?}\n{stderr}"
    );
    assert!(
        calls
            .iter()
            .any(|r| r.path == "/latest/meta-data/iam/security-credentials/silt-role"),
        "{calls:?}"
    );
    assert_signed_with_issued_credentials(&server, &stderr);
}

#[test]
fn no_credentials_is_exit_77_at_once_naming_the_sources() {
    let project = Project::new(Backend::S3, "");
    let home = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let (code, _, stderr) =
        crate::support::output(bare_silt(&project, home.path()).args(["data", "list", "creds/m"]));
    let took = started.elapsed();
    assert_eq!(code, 77, "{stderr}");
    assert!(stderr.contains("no AWS credentials"), "{stderr}");
    for source in [
        "AWS_ACCESS_KEY_ID",
        "profile",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
        "ECS",
    ] {
        assert!(stderr.contains(source), "{source} not named: {stderr}");
    }
    // Not asked: never named, never tried.
    assert!(!stderr.contains("instance metadata"), "{stderr}");
    // No network retries (their budget is 25 s).
    assert!(took < Duration::from_secs(10), "took {took:?}: {stderr}");
    assert!(!stderr.contains("retrying"), "{stderr}");
}

#[test]
fn refused_credentials_are_exit_77_and_say_so() {
    let project = Project::new(Backend::S3, "");
    let home = tempfile::tempdir().unwrap();
    let (code, _, stderr) = crate::support::output(
        bare_silt(&project, home.path())
            .env("AWS_ACCESS_KEY_ID", "AKIANOTAKEY")
            .env("AWS_SECRET_ACCESS_KEY", "not-the-secret")
            .args(["data", "list", "creds/m"]),
    );
    assert_eq!(code, 77, "{stderr}");
    assert!(stderr.contains("refused the credentials"), "{stderr}");
    assert!(!stderr.contains("retrying"), "{stderr}");
}

/// One request the credential server received.
#[derive(Debug, Clone)]
struct Request {
    method: String,
    path: String,
    authorization: String,
    /// `x-amz-security-token`: the session token an S3 request carries.
    token: String,
    body: String,
}

/// STS, the ECS container endpoint and the instance metadata service, on
/// 127.0.0.1, each answering the test server's S3 identity.
struct CredentialServer {
    endpoint: String,
    requests: Arc<Mutex<Vec<Request>>>,
}

impl CredentialServer {
    fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let requests = Arc::new(Mutex::new(Vec::new()));
        let seen = requests.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let seen = seen.clone();
                std::thread::spawn(move || serve(stream, &seen));
            }
        });
        Self { endpoint, requests }
    }

    fn requests(&self) -> Vec<Request> {
        self.requests.lock().unwrap().clone()
    }
}

/// Far in the future: the SDK refreshes nothing during a test.
const EXPIRATION: &str = "2099-01-01T00:00:00Z";

fn serve(stream: TcpStream, seen: &Mutex<Vec<Request>>) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut stream = stream;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let mut parts = line.split_whitespace();
        let method = parts.next().unwrap_or_default().to_owned();
        let path = parts.next().unwrap_or_default().to_owned();
        let (mut length, mut authorization, mut token) = (0usize, String::new(), String::new());
        loop {
            let mut header = String::new();
            if reader.read_line(&mut header).unwrap_or(0) == 0 {
                return;
            }
            let header = header.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':') {
                match name.to_ascii_lowercase().as_str() {
                    "content-length" => length = value.trim().parse().unwrap_or(0),
                    "authorization" => authorization = value.trim().to_owned(),
                    "x-amz-security-token" => token = value.trim().to_owned(),
                    _ => {}
                }
            }
        }
        let mut body = vec![0; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let request = Request {
            method,
            path,
            authorization,
            token,
            body: String::from_utf8_lossy(&body).into_owned(),
        };
        let (content_type, answer) = answer(&request);
        seen.lock().unwrap().push(request);
        let (status, content_type) = if content_type.is_empty() {
            ("404 Not Found", "text/plain")
        } else if answer.starts_with("<Error>") {
            ("403 Forbidden", content_type)
        } else {
            ("200 OK", content_type)
        };
        // IMDSv2 answers its token with the token's lifetime.
        let ttl = if answer == "imds-session-token" {
            "x-aws-ec2-metadata-token-ttl-seconds: 21600\r\n"
        } else {
            ""
        };
        let response = format!(
            "HTTP/1.1 {status}\r\ncontent-type: {content_type}\r\n{ttl}content-length: {}\r\n\r\n{answer}",
            answer.len()
        );
        if stream.write_all(response.as_bytes()).is_err() {
            return;
        }
    }
}

fn answer(request: &Request) -> (&'static str, String) {
    let keys = format!(
        "<AccessKeyId>{ACCESS_KEY}</AccessKeyId><SecretAccessKey>{SECRET_KEY}</SecretAccessKey><SessionToken>session-token-1</SessionToken><Expiration>{EXPIRATION}</Expiration>"
    );
    let json = format!(
        r#"{{"Code":"Success","Type":"AWS-HMAC","AccessKeyId":"{ACCESS_KEY}","SecretAccessKey":"{SECRET_KEY}","Token":"session-token-1","Expiration":"{EXPIRATION}","LastUpdated":"2026-01-01T00:00:00Z"}}"#
    );
    match (request.method.as_str(), request.path.as_str()) {
        ("PUT", "/latest/api/token") => ("text/plain", "imds-session-token".to_owned()),
        ("GET", "/latest/meta-data/iam/security-credentials/") => {
            ("text/plain", "silt-role".to_owned())
        }
        ("GET", "/latest/meta-data/iam/security-credentials/silt-role")
        | ("GET", "/ecs/credentials") => ("application/json", json),
        ("POST", _) if request.body.contains("Action=AssumeRoleWithWebIdentity") => (
            "text/xml",
            format!(
                "<AssumeRoleWithWebIdentityResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><AssumeRoleWithWebIdentityResult><Credentials>{keys}</Credentials><AssumedRoleUser><AssumedRoleId>AROA1:ci-run</AssumedRoleId><Arn>arn:aws:sts::123456789012:assumed-role/silt-ci/ci-run</Arn></AssumedRoleUser></AssumeRoleWithWebIdentityResult><ResponseMetadata><RequestId>1</RequestId></ResponseMetadata></AssumeRoleWithWebIdentityResponse>"
            ),
        ),
        ("POST", _) if request.body.contains("Action=AssumeRole") => (
            "text/xml",
            format!(
                "<AssumeRoleResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><AssumeRoleResult><Credentials>{keys}</Credentials><AssumedRoleUser><AssumedRoleId>AROA2:deploy</AssumedRoleId><Arn>arn:aws:sts::123456789012:assumed-role/silt-deploy/deploy</Arn></AssumedRoleUser></AssumeRoleResult><ResponseMetadata><RequestId>2</RequestId></ResponseMetadata></AssumeRoleResponse>"
            ),
        ),
        // An S3 request (the stub is the project's store too): recorded,
        // and refused — SeaweedFS refuses session tokens it did not issue,
        // so what is checked is the signature's key and token on the wire.
        _ if request.authorization.starts_with("AWS4-HMAC-SHA256")
            && !request.body.contains("Action=") =>
        {
            (
                "application/xml",
                "<Error><Code>AccessDenied</Code><Message>recorded by the test</Message></Error>"
                    .to_owned(),
            )
        }
        _ => ("", String::new()),
    }
}

// On moto: its STS issues a role's credentials and its S3 takes them. moto
// checks no signature, so what the credentials on the wire were is read
// from a recording proxy in front of it, which STS calls go through too.

/// The bucket of the tests on moto.
const MOTO_BUCKET: &str = "silt-credentials";

/// A project on moto's S3 through a recording proxy.
fn on_moto() -> (Project, RecordingProxy) {
    let proxy = recording_proxy::start(&moto::server().endpoint);
    moto::create_bucket(MOTO_BUCKET);
    let project = Project::on_s3_endpoint(&proxy.endpoint, MOTO_BUCKET, "us-east-1", "");
    (project, proxy)
}

/// Every S3 request `proxy` relayed after its first `from` exchanges was
/// signed with credentials STS issued (one of `issued`, key and session
/// token both); answers how many there were.
fn assert_s3_signed_by(proxy: &RecordingProxy, from: usize, issued: &[Issued]) -> usize {
    let s3: Vec<Exchange> = proxy.exchanges()[from..]
        .iter()
        .filter(|exchange| exchange.action.is_empty())
        .cloned()
        .collect();
    assert!(!s3.is_empty(), "no S3 request went through the proxy");
    for request in &s3 {
        assert!(
            issued
                .iter()
                .any(|creds| creds.key == request.key && creds.token == request.token),
            "{request:?} is not signed with what STS issued: {issued:?}"
        );
    }
    s3.len()
}

/// The credentials each STS call of `action` issued, checked present.
fn issued(proxy: &RecordingProxy, action: &str) -> Vec<Issued> {
    let calls = proxy.issued_by(action);
    assert!(!calls.is_empty(), "no {action}: {:?}", proxy.exchanges());
    calls
        .into_iter()
        .map(|(call, issued)| {
            assert!(
                issued.key.starts_with("ASIA") && !issued.token.is_empty(),
                "{action} issued no session credentials: {call:?}"
            );
            issued
        })
        .collect()
}

#[test]
fn a_ci_job_gets_role_keys_from_motos_sts_by_its_token_file_and_moto_s3_takes_them() {
    let (project, proxy) = on_moto();
    let home = tempfile::tempdir().unwrap();
    let token = home.path().join("oidc-token");
    std::fs::write(&token, "eyJhbGciOiJSUzI1NiJ9.ci-job.signature").unwrap();
    let from = proxy.exchanges().len();
    round_trip(
        || {
            let mut command = bare_silt(&project, home.path());
            command
                .env("AWS_WEB_IDENTITY_TOKEN_FILE", &token)
                .env("AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/silt-ci")
                .env("AWS_ROLE_SESSION_NAME", "ci-run")
                .env("AWS_ENDPOINT_URL_STS", &proxy.endpoint)
                .env("AWS_REGION", "us-east-1");
            command
        },
        "from a CI job\n",
    );
    let issued = issued(&proxy, "AssumeRoleWithWebIdentity");
    for (call, _) in proxy.issued_by("AssumeRoleWithWebIdentity") {
        // The token file's contents, for the role, unsigned.
        assert!(
            call.form
                .contains("WebIdentityToken=eyJhbGciOiJSUzI1NiJ9.ci-job.signature"),
            "{call:?}"
        );
        assert!(call.form.contains("silt-ci"), "{call:?}");
        assert!(call.key.is_empty(), "{call:?}");
    }
    assert_s3_signed_by(&proxy, from, &issued);
    // Uploads carry their SHA-256 for the server to check, so their
    // signatures leave the payload out rather than hash it a second time.
    let puts: Vec<Exchange> = proxy.s3_requests()[..]
        .iter()
        .filter(|request| request.line.starts_with("PUT "))
        .cloned()
        .collect();
    assert!(!puts.is_empty());
    for put in &puts {
        assert_eq!(put.content_sha256, "UNSIGNED-PAYLOAD", "{put:?}");
    }
}

#[test]
fn a_profile_assumes_its_role_through_motos_sts_with_its_source_profiles_keys() {
    let (project, proxy) = on_moto();
    let home = tempfile::tempdir().unwrap();
    std::fs::write(
        home.path().join("aws-config"),
        "[profile base]\nregion = us-east-1\n\n\
         [profile deploy]\nrole_arn = arn:aws:iam::123456789012:role/silt-deploy\n\
         source_profile = base\nrole_session_name = deploy\nregion = us-east-1\n",
    )
    .unwrap();
    std::fs::write(
        home.path().join("aws-credentials"),
        "[base]\naws_access_key_id = AKIABASEPROFILEKEY\naws_secret_access_key = base-secret\n",
    )
    .unwrap();
    let from = proxy.exchanges().len();
    round_trip(
        || {
            let mut command = bare_silt(&project, home.path());
            command
                .env("AWS_PROFILE", "deploy")
                .env("AWS_ENDPOINT_URL_STS", &proxy.endpoint);
            command
        },
        "from an assumed role\n",
    );
    let issued = issued(&proxy, "AssumeRole");
    for (call, _) in proxy.issued_by("AssumeRole") {
        // Asked with the source profile's keys, for the profile's role.
        assert_eq!(call.key, "AKIABASEPROFILEKEY", "{call:?}");
        assert!(call.form.contains("silt-deploy"), "{call:?}");
    }
    assert_s3_signed_by(&proxy, from, &issued);
}

/// How long the credentials of the refresh test live.
const SHORT_LIFETIME_SECS: u32 = 25;

#[test]
fn credentials_that_expire_during_a_long_run_are_renewed_and_its_commit_lands() {
    let (project, proxy) = on_moto();
    let home = tempfile::tempdir().unwrap();
    // A credential process that asks moto's STS for a role session of 25 s
    // each time the SDK wants keys (real STS allows 900 s at least; the
    // SDK renews within 10-15 s of the expiry, whatever the lifetime).
    // moto routes a request by its signature's scope and checks no
    // signature: the script names STS with a placeholder one.
    let python = moto::moto_binary().with_file_name("python");
    let script = home.path().join("short-lived.py");
    std::fs::write(
        &script,
        format!(
            r#"import json, re, urllib.request
form = "Action=AssumeRole&Version=2011-06-15&RoleArn=arn:aws:iam::123456789012:role/silt-long&RoleSessionName=long-run&DurationSeconds={SHORT_LIFETIME_SECS}"
headers = {{"Content-Type": "application/x-www-form-urlencoded", "Authorization": "AWS4-HMAC-SHA256 Credential=AKIAREFRESHSOURCE/20260101/us-east-1/sts/aws4_request, SignedHeaders=host, Signature=0"}}
answer = urllib.request.urlopen(urllib.request.Request("{endpoint}/", data=form.encode(), headers=headers)).read().decode()
field = lambda name: re.search("<%s>(.*?)</%s>" % (name, name), answer).group(1)
print(json.dumps({{"Version": 1, "AccessKeyId": field("AccessKeyId"), "SecretAccessKey": field("SecretAccessKey"), "SessionToken": field("SessionToken"), "Expiration": field("Expiration").split(".")[0].rstrip("Z") + "Z"}}))
"#,
            endpoint = proxy.endpoint
        ),
    )
    .unwrap();
    std::fs::write(
        home.path().join("aws-config"),
        format!(
            "[profile long]\nregion = us-east-1\ncredential_process = {} {}\n",
            python.display(),
            script.display()
        ),
    )
    .unwrap();
    let from = proxy.exchanges().len();
    // Longer than one lifetime: the command's later requests need new keys.
    let wait = SHORT_LIFETIME_SECS + 5;
    let (code, _, stderr) = crate::support::output(
        bare_silt(&project, home.path())
            .args(["--profile", "long", "run", "--model", "creds/long", "--"])
            .args([
                "sh",
                "-c",
                &format!("sleep {wait} && echo late > \"$SILT_MODEL_DIR/out.txt\""),
            ]),
    );
    assert_eq!(code, 0, "{stderr}");
    let issued = issued(&proxy, "AssumeRole");
    assert!(
        issued.len() >= 2,
        "the keys were not renewed during the run: {issued:?}"
    );
    assert_s3_signed_by(&proxy, from, &issued);
    // The commit at the end went with the renewed keys, not the first.
    let last = proxy.s3_requests().pop().unwrap();
    assert_ne!(last.key, issued[0].key, "{last:?}");
    // And it landed.
    assert_eq!(
        project.ok(&["data", "get", "creds/long", "out.txt"]),
        "late\n"
    );
}
