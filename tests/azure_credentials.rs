//! Credentials the way the Azure CLI's storage commands find them, through
//! the real `silt` on Azurite (which checks every Shared Key and SAS
//! signature): an account key, a SAS token, and Microsoft Entra ID — a
//! workload identity's federated token file exchanged at a token server of
//! the test's own on 127.0.0.1. Azurite takes Entra ID tokens only over
//! https, so those requests reach it through a proxy that refuses any
//! without the token the server issued and signs the rest with a SAS.
//! Nothing is sent to a link-local address. (The connection string is what
//! every other Azure test uses.)

use std::io::{BufReader, Write as _};
use std::net::TcpListener;
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use crate::support::azurite::{self, ACCOUNT, KEY, account_sas};
use crate::support::http_head::{forward, header, listen, read_request};
use crate::support::project::{Backend, Project};

/// `silt` in `project` with no Azure setting of the test process (other
/// tests put the emulator's connection string there), and `variables`.
fn bare_silt(project: &Project, home: &Path, variables: &[(&str, String)]) -> Command {
    project.silt_with_only(&["AZURE_"], home, variables)
}

/// A put and, from another clone, a get of one file.
fn round_trip(project: &Project, home: &Path, variables: &[(&str, String)]) {
    project.round_trip("azure data\n", |p| bare_silt(p, home, variables));
}

/// The project's `[datastore.azure]` pointed at `endpoint`.
fn through(project: &Project, endpoint: &str) {
    let path = project.path().join("silt.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, text.replace(&azurite::server().endpoint, endpoint)).unwrap();
}

#[test]
fn an_account_key_signs_every_request() {
    let project = Project::new(Backend::Azure, "");
    let home = tempfile::tempdir().unwrap();
    round_trip(
        &project,
        home.path(),
        &[
            ("AZURE_STORAGE_ACCOUNT", ACCOUNT.to_owned()),
            ("AZURE_STORAGE_KEY", KEY.to_owned()),
        ],
    );
    // Another key for the same account: Azurite refuses the signature.
    let wrong = STANDARD.encode([7u8; 64]);
    let input = project.write_input("input", "x\n");
    let (code, _, stderr) = crate::support::output(
        bare_silt(
            &project,
            home.path(),
            &[
                ("AZURE_STORAGE_ACCOUNT", ACCOUNT.to_owned()),
                ("AZURE_STORAGE_KEY", wrong),
            ],
        )
        .args(["data", "put", "t/m", "g.txt", &input]),
    );
    assert_eq!(code, 77, "{stderr}");
    assert!(stderr.contains("refused the"), "{stderr}");
}

#[test]
fn a_sas_token_is_used_as_given() {
    let project = Project::new(Backend::Azure, "");
    let home = tempfile::tempdir().unwrap();
    round_trip(
        &project,
        home.path(),
        &[("AZURE_STORAGE_SAS_TOKEN", format!("?{}", account_sas()))],
    );
}

#[test]
fn no_azure_credentials_is_exit_77_naming_the_sources() {
    let project = Project::new(Backend::Azure, "");
    let home = tempfile::tempdir().unwrap();
    let input = project.write_input("input", "x\n");
    let (code, _, stderr) = crate::support::output(
        bare_silt(&project, home.path(), &[]).args(["data", "put", "t/m", "f.txt", &input]),
    );
    assert_eq!(code, 77, "{stderr}");
    for named in [
        "no Azure credentials",
        "AZURE_STORAGE_CONNECTION_STRING",
        "AZURE_FEDERATED_TOKEN_FILE",
    ] {
        assert!(stderr.contains(named), "{named:?} in: {stderr}");
    }
}

/// What a token endpoint was asked: request line, `metadata` header, body.
type Asked = Arc<Mutex<Vec<(String, String, String)>>>;

/// A token endpoint of the test's own, answering `answer` to every
/// request; its authority (`http://127.0.0.1:PORT`) and what it was asked.
fn token_server(answer: &'static str) -> (String, Asked) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let authority = format!("http://{}", listener.local_addr().unwrap());
    let asked = Arc::new(Mutex::new(Vec::new()));
    let recorded = asked.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let Ok((head, body)) = read_request(&mut BufReader::new(stream.try_clone().unwrap()))
            else {
                continue;
            };
            recorded.lock().unwrap().push((
                head[0].clone(),
                header(&head, "metadata").unwrap_or("").to_owned(),
                String::from_utf8_lossy(&body).into_owned(),
            ));
            let mut stream = stream;
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{answer}",
                answer.len()
            );
        }
    });
    (authority, asked)
}

/// A proxy in front of Azurite that refuses any request without
/// `Bearer <token>` and sends the rest on with a SAS (Azurite takes Entra
/// ID tokens only over https); its blob endpoint and the authorizations
/// it saw.
fn bearer_proxy(token: &'static str) -> (String, Arc<Mutex<Vec<String>>>) {
    let sas = account_sas();
    let seen = Arc::new(Mutex::new(Vec::<String>::new()));
    let saw = seen.clone();
    let upstream = azurite::server()
        .endpoint
        .rsplit_once('/')
        .map(|(host, _)| host.to_owned())
        .unwrap();
    let proxy = listen(&upstream, move |client, upstream| {
        let (mut head, body) = read_request(&mut BufReader::new(client.try_clone()?))?;
        let authorization = header(&head, "authorization").unwrap_or("").to_owned();
        saw.lock().unwrap().push(authorization.clone());
        let mut client = client;
        if authorization != format!("Bearer {token}") {
            return write!(
                client,
                "HTTP/1.1 401 Unauthorized\r\nx-ms-error-code: InvalidAuthenticationInfo\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
            );
        }
        head.retain(|line| !line.to_ascii_lowercase().starts_with("authorization:"));
        let (method, rest) = head[0].split_once(' ').unwrap();
        let (target, version) = rest.rsplit_once(' ').unwrap();
        let joiner = if target.contains('?') { '&' } else { '?' };
        head[0] = format!("{method} {target}{joiner}{sas} {version}");
        let mut server = forward(upstream, &head, &body)?;
        std::io::copy(&mut server, &mut client)?;
        Ok(())
    });
    (format!("{proxy}/{ACCOUNT}"), seen)
}

#[test]
fn a_workload_identitys_federated_token_is_exchanged_for_a_storage_token() {
    let (authority, forms) =
        token_server(r#"{"token_type":"Bearer","expires_in":3600,"access_token":"tok-entra"}"#);
    let (endpoint, seen) = bearer_proxy("tok-entra");
    let project = Project::new(Backend::Azure, "");
    through(&project, &endpoint);
    let home = tempfile::tempdir().unwrap();
    let token_file = home.path().join("federated-token");
    std::fs::write(&token_file, "the-pods-projected-token\n").unwrap();
    round_trip(
        &project,
        home.path(),
        &[
            (
                "AZURE_FEDERATED_TOKEN_FILE",
                token_file.display().to_string(),
            ),
            ("AZURE_CLIENT_ID", "client-7".to_owned()),
            ("AZURE_TENANT_ID", "tenant-3".to_owned()),
            ("AZURE_AUTHORITY_HOST", authority),
        ],
    );
    let forms = forms.lock().unwrap().clone();
    assert!(!forms.is_empty());
    for (line, _, form) in &forms {
        assert_eq!(line, "POST /tenant-3/oauth2/v2.0/token HTTP/1.1");
        for field in [
            "grant_type=client_credentials",
            "client_id=client-7",
            "client_assertion=the-pods-projected-token",
            "scope=https%3A%2F%2Fstorage.azure.com%2F.default",
        ] {
            assert!(
                form.split('&').any(|pair| pair == field),
                "{field} in {form}"
            );
        }
    }
    assert!(
        seen.lock()
            .unwrap()
            .iter()
            .all(|auth| auth == "Bearer tok-entra"),
        "every store request carried the token"
    );
}

#[test]
fn the_managed_identity_is_asked_only_when_configured() {
    // The instance metadata service writes expires_in as a string.
    let (authority, asked) =
        token_server(r#"{"access_token":"tok-managed","expires_in":"3599","token_type":"Bearer"}"#);
    let (endpoint, seen) = bearer_proxy("tok-managed");
    let home = tempfile::tempdir().unwrap();
    let variables = [("AZURE_POD_IDENTITY_AUTHORITY_HOST", authority)];

    // Standard sources, none set: exit 77; the metadata service (though
    // the variable names one) is not asked.
    let project = Project::new(Backend::Azure, "");
    through(&project, &endpoint);
    let input = project.write_input("input", "x\n");
    let (code, _, stderr) = crate::support::output(
        bare_silt(&project, home.path(), &variables).args(["data", "put", "t/m", "f.txt", &input]),
    );
    assert_eq!(code, 77, "{stderr}");
    assert!(stderr.contains("managed-identity"), "{stderr}");
    assert!(asked.lock().unwrap().is_empty());

    // Configured: asked, with its header, and its token used.
    let path = project.path().join("silt.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, format!("{text}credentials = \"managed-identity\"\n")).unwrap();
    round_trip(&project, home.path(), &variables);
    let asked = asked.lock().unwrap().clone();
    assert!(!asked.is_empty());
    for (line, metadata, _) in &asked {
        assert!(
            line.starts_with("GET /metadata/identity/oauth2/token?api-version=2018-02-01&resource=https%3A%2F%2Fstorage.azure.com%2F"),
            "{line}"
        );
        assert_eq!(metadata, "true");
    }
    assert!(
        seen.lock()
            .unwrap()
            .iter()
            .any(|auth| auth == "Bearer tok-managed")
    );
}
