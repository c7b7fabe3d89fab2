//! Azurite's Blob service on 127.0.0.1, Microsoft's Azure Storage emulator,
//! started once per test binary and stopped when the binary exits (a
//! watchdog kills it when this process is gone). It checks every Shared Key
//! signature and honours `If-Match`/`If-None-Match` on puts, gets and
//! deletes, as Azure does.
//!
//! `azurite-blob` comes from `cargo xtask azurite` (npm); `SILT_AZURITE`
//! names another one.

use std::io::{Read as _, Write as _};
use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

/// The emulator's well-known account.
pub const ACCOUNT: &str = "devstoreaccount1";
/// The emulator's well-known account key (public, in Azurite's docs).
pub const KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

/// A running emulator.
pub struct Azurite {
    /// `http://127.0.0.1:PORT/devstoreaccount1`: the account's blob endpoint.
    pub endpoint: String,
    _root: tempfile::TempDir,
    _server: std::process::Child,
    _watchdog: std::process::Child,
}

impl Azurite {
    /// The emulator's process id (to stop and resume it).
    pub fn pid(&self) -> u32 {
        self._server.id()
    }
}

/// The shared emulator of this test binary, started on first use.
pub fn server() -> &'static Azurite {
    static SERVER: OnceLock<Azurite> = OnceLock::new();
    SERVER.get_or_init(|| super::start_with_retries("azurite", 3, try_start))
}

/// `azurite-blob`: `SILT_AZURITE` (set by `cargo xtask test`), else
/// installed now by `cargo xtask azurite`.
pub fn binary() -> PathBuf {
    match std::env::var_os("SILT_AZURITE") {
        Some(path) => PathBuf::from(path),
        None => super::xtask_path("azurite"),
    }
}

/// The connection string of the emulator's account.
pub fn connection_string() -> String {
    format!(
        "DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={KEY};BlobEndpoint={};",
        server().endpoint
    )
}

/// Puts the emulator's connection string in this process's environment,
/// where the Azure backend (in process, and in the `silt` a test starts)
/// finds it.
pub fn use_test_credentials() {
    // SAFETY: every test of a binary that uses the emulator sets the same
    // value, and the backend reads it only when a store is opened.
    unsafe {
        std::env::set_var("AZURE_STORAGE_CONNECTION_STRING", connection_string());
    }
}

/// An Azure configuration for `container` (created on first use) and
/// `prefix` on the emulator, with its connection string in the
/// environment.
pub fn config(container: &str, prefix: &str) -> silt::store::AzureConfig {
    use_test_credentials();
    create_container(container);
    silt::store::AzureConfig {
        account: Some(ACCOUNT.to_owned()),
        container: container.to_owned(),
        prefix: prefix.to_owned(),
        endpoint: Some(server().endpoint.clone()),
        credentials: Default::default(),
    }
}

/// A store for `container` and `prefix` on the emulator.
pub fn store(container: &str, prefix: &str) -> std::sync::Arc<dyn silt::store::ObjectStore> {
    std::sync::Arc::new(
        silt::store::AzureStore::new(
            &config(container, prefix),
            std::time::Duration::from_secs(10),
        )
        .unwrap(),
    )
}

/// An account SAS for the emulator's account: blobs, every resource type,
/// read, write, delete, list, add, create; until 2099.
pub fn account_sas() -> String {
    let (permissions, expiry, version) = ("rwdlac", "2099-01-01T00:00:00Z", "2021-08-06");
    let to_sign =
        format!("{ACCOUNT}\n{permissions}\nb\nsco\n\n{expiry}\n\nhttps,http\n{version}\n\n");
    let key =
        aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, &STANDARD.decode(KEY).unwrap());
    let signature = STANDARD.encode(aws_lc_rs::hmac::sign(&key, to_sign.as_bytes()).as_ref());
    let signature: String = signature
        .chars()
        .map(|c| match c {
            '+' => "%2B".to_owned(),
            '/' => "%2F".to_owned(),
            '=' => "%3D".to_owned(),
            c => c.to_string(),
        })
        .collect();
    format!(
        "sv={version}&ss=b&srt=sco&sp={permissions}&se={}&spr=https,http&sig={signature}",
        expiry.replace(':', "%3A")
    )
}

/// Creates `container` unless it exists (a request signed here, with the
/// Shared Key rules written out once more).
pub fn create_container(container: &str) {
    let endpoint = &server().endpoint;
    let address = endpoint
        .strip_prefix("http://")
        .and_then(|rest| rest.split('/').next())
        .unwrap();
    let date = httpdate::fmt_http_date(std::time::SystemTime::now());
    let to_sign = format!(
        "PUT\n\n\n\n\n\n\n\n\n\n\n\nx-ms-date:{date}\nx-ms-version:2021-08-06\n/{ACCOUNT}/{ACCOUNT}/{container}\nrestype:container"
    );
    let key =
        aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, &STANDARD.decode(KEY).unwrap());
    let signature = STANDARD.encode(aws_lc_rs::hmac::sign(&key, to_sign.as_bytes()).as_ref());
    let mut stream = std::net::TcpStream::connect(address).unwrap();
    write!(
        stream,
        "PUT /{ACCOUNT}/{container}?restype=container HTTP/1.1\r\nHost: {address}\r\nx-ms-date: {date}\r\nx-ms-version: 2021-08-06\r\nAuthorization: SharedKey {ACCOUNT}:{signature}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    assert!(
        answer.starts_with("HTTP/1.1 201") || answer.starts_with("HTTP/1.1 409"),
        "creating container {container} on Azurite: {answer}"
    );
}

fn try_start() -> Result<Azurite, String> {
    let binary = binary();
    let root = tempfile::tempdir().unwrap();
    let port = super::seaweed::free_port();
    let mut command = Command::new(&binary);
    command
        .args(["--blobHost", "127.0.0.1", "--blobPort", &port.to_string()])
        .args(["--inMemoryPersistence", "--skipApiVersionCheck", "--silent"])
        // Its debug and metadata files land in the working directory.
        .current_dir(root.path())
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", root.path());
    let (server, watchdog) = super::spawn_listening("azurite", &mut command, root.path(), port)?;
    Ok(Azurite {
        endpoint: format!("http://127.0.0.1:{port}/{ACCOUNT}"),
        _root: root,
        _server: server,
        _watchdog: watchdog,
    })
}
