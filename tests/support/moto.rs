//! moto's server on 127.0.0.1: the AWS emulator whose STS hands out role
//! credentials (web identity, assumed roles) and whose S3 takes them,
//! started once per test binary and stopped when the binary exits (a
//! watchdog kills it when this process is gone).
//!
//! moto's S3 does not check signatures: what a test proves about the
//! credentials on the wire it reads from a [`super::recording_proxy`] in
//! front of it. `moto_server` comes from `cargo xtask moto` (`pip install
//! moto[server]` and `crc32c` into a virtualenv under the user cache);
//! `SILT_MOTO` names another one.

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

/// A running server.
pub struct Moto {
    /// `http://127.0.0.1:PORT`: S3 and STS (and every other service) alike.
    pub endpoint: String,
    _root: tempfile::TempDir,
    _server: std::process::Child,
    _watchdog: std::process::Child,
}

/// The shared server of this test binary, started on first use.
pub fn server() -> &'static Moto {
    static SERVER: OnceLock<Moto> = OnceLock::new();
    SERVER.get_or_init(|| super::start_with_retries("moto", 3, try_start))
}

/// `moto_server`: `SILT_MOTO` (set by `cargo xtask test`), else installed
/// now by `cargo xtask moto`.
pub fn moto_binary() -> PathBuf {
    match std::env::var_os("SILT_MOTO") {
        Some(path) => PathBuf::from(path),
        None => super::xtask_path("moto"),
    }
}

fn try_start() -> Result<Moto, String> {
    let binary = moto_binary();
    let root = tempfile::tempdir().unwrap();
    let port = super::seaweed::free_port();
    let mut command = Command::new(&binary);
    command
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        // Nothing of the test process's AWS settings reaches the emulator.
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", root.path());
    let (server, watchdog) =
        super::spawn_listening("moto_server", &mut command, root.path(), port)?;
    Ok(Moto {
        endpoint: format!("http://127.0.0.1:{port}"),
        _root: root,
        _server: server,
        _watchdog: watchdog,
    })
}

/// Creates `bucket` on the server (moto takes any signature).
pub fn create_bucket(bucket: &str) {
    let endpoint = &server().endpoint;
    let address = endpoint.strip_prefix("http://").unwrap();
    let mut stream = std::net::TcpStream::connect(address).unwrap();
    use std::io::{Read as _, Write as _};
    write!(
        stream,
        "PUT /{bucket} HTTP/1.1\r\nHost: {address}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    assert!(
        answer.starts_with("HTTP/1.1 200"),
        "creating bucket {bucket} on moto: {answer}"
    );
}
