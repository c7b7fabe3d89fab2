//! A real OCI registry for tests: the CNCF distribution server (Debian's
//! `docker-registry`) on 127.0.0.1, one per test, stopped when dropped; and
//! the clients not written here that check silt against it: skopeo and
//! oras-py.
//!
//! The binaries come from `cargo xtask test` (`SILT_REGISTRY`,
//! `SILT_SKOPEO`, `SILT_ORAS_PYTHON`), else `cargo xtask registry|skopeo|oras`
//! installs them now.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The user the registry with authentication knows.
pub const USER: &str = "silt-test";
/// Its password.
pub const PASSWORD: &str = "silt-test-password";
/// bcrypt (cost 4) of [`PASSWORD`], as an htpasswd file holds it.
const PASSWORD_BCRYPT: &str = "$2b$04$GYVFCJ3qRZNFZk1gsPLdheHPH8Rakg6iLjxCSldioURgfVMikW5S6";

/// A running registry.
pub struct Registry {
    /// `127.0.0.1:PORT`, as a reference writes it.
    pub host: String,
    /// Its storage and config; removed when dropped.
    pub root: tempfile::TempDir,
    server: Child,
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.server.kill();
        let _ = self.server.wait();
    }
}

fn tool(variable: &str, task: &str) -> PathBuf {
    match std::env::var_os(variable) {
        Some(path) => PathBuf::from(path),
        None => super::xtask_path(task),
    }
}

impl Registry {
    /// A registry anyone may push to and pull from.
    pub fn start() -> Self {
        Self::start_with(false)
    }

    /// A registry that wants [`USER`] and [`PASSWORD`] (HTTP basic, htpasswd).
    pub fn start_with_auth() -> Self {
        Self::start_with(true)
    }

    fn start_with(auth: bool) -> Self {
        // A free port is picked, then bound by the server: another process
        // may take it in between, and the server then exits.
        super::start_with_retries("the registry", 5, || Self::try_start(auth))
    }

    /// A registry listening on a fresh port, or its log when it exited at
    /// start (its port was taken meanwhile).
    fn try_start(auth: bool) -> Result<Self, String> {
        let binary = tool("SILT_REGISTRY", "registry");
        let root = tempfile::tempdir().unwrap();
        let port = super::seaweed::free_port();
        let mut config = format!(
            "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n",
            root.path().join("data").display()
        );
        if auth {
            let htpasswd = root.path().join("htpasswd");
            std::fs::write(&htpasswd, format!("{USER}:{PASSWORD_BCRYPT}\n")).unwrap();
            config.push_str(&format!(
                "auth:\n  htpasswd:\n    realm: silt-test\n    path: {}\n",
                htpasswd.display()
            ));
        }
        let config_path = root.path().join("config.yml");
        std::fs::write(&config_path, config).unwrap();
        let log = std::fs::File::create(root.path().join("registry.log")).unwrap();
        let server = Command::new(&binary)
            .arg("serve")
            .arg(&config_path)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|err| panic!("cannot run {}: {err}", binary.display()));
        let mut registry = Self {
            host: format!("127.0.0.1:{port}"),
            root,
            server,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(&registry.host).is_err() {
            if registry.server.try_wait().unwrap().is_some() {
                return Err(registry.log());
            }
            assert!(
                Instant::now() < deadline,
                "the registry did not listen on {} within 20 s; its log:\n{}",
                registry.host,
                registry.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        // Something listens: another server may have taken the port, and
        // ours be exiting for want of it. A moment later, ours must run.
        std::thread::sleep(Duration::from_millis(100));
        if registry.server.try_wait().unwrap().is_some() {
            return Err(registry.log());
        }
        Ok(registry)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.root.path().join("registry.log")).unwrap_or_default()
    }

    /// `oci://127.0.0.1:PORT/REPO`.
    pub fn reference(&self, repository_and_tag: &str) -> String {
        format!("oci://{}/{repository_and_tag}", self.host)
    }

    /// The file a blob is stored in (to damage it, as a compromised
    /// registry or a disk would).
    pub fn blob_file(&self, digest: &str) -> PathBuf {
        let hex = digest.strip_prefix("sha256:").unwrap();
        self.root
            .path()
            .join("data/docker/registry/v2/blobs/sha256")
            .join(&hex[..2])
            .join(hex)
            .join("data")
    }

    /// An auth file (podman's format) holding this registry's credentials.
    pub fn auth_file(&self, dir: &Path) -> PathBuf {
        use base64::Engine as _;
        let path = dir.join("auth.json");
        std::fs::write(
            &path,
            format!(
                "{{\"auths\":{{\"{}\":{{\"auth\":\"{}\"}}}}}}",
                self.host,
                base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASSWORD}"))
            ),
        )
        .unwrap();
        path
    }
}

/// `skopeo inspect --raw` of `reference` (no `oci://`): the manifest bytes
/// as skopeo reads them.
pub fn skopeo_raw_manifest(reference: &str) -> Vec<u8> {
    let skopeo = tool("SILT_SKOPEO", "skopeo");
    let output = Command::new(&skopeo)
        .args(["inspect", "--raw", "--tls-verify=false"])
        .arg(format!("docker://{reference}"))
        .output()
        .unwrap_or_else(|err| panic!("cannot run {}: {err}", skopeo.display()));
    assert!(
        output.status.success(),
        "skopeo inspect {reference}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}

/// Runs a Python script with oras-py importable; returns its stdout.
pub fn oras_python(script: &str) -> String {
    let python = tool("SILT_ORAS_PYTHON", "oras");
    let output = Command::new(&python)
        .arg("-c")
        .arg(script)
        .output()
        .unwrap_or_else(|err| panic!("cannot run {}: {err}", python.display()));
    assert!(
        output.status.success(),
        "oras-py script failed:\n{script}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}
