//! A docker daemon of the tests' own, for the container driver's docker
//! runtime: Debian's `docker.io` (dockerd, containerd, the CLI), installed
//! as runc and podman are, started on a socket of its own with no network
//! set-up of the machine's (no iptables rules, no bridge: the workers run
//! with `--network none`), and stopped when the tests end.
//!
//! The machine may have a docker CLI without an engine (this kind has one
//! in /usr/local/bin); the package's own CLI, of the daemon's version, is
//! used.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::tools::{Result, debian_tool};

/// Where the daemon keeps its state (images: the worker image is 3 MB and
/// rebuilt by each run; kept between runs like the other caches).
fn data_root() -> Result<PathBuf> {
    let home = std::env::var_os("HOME").ok_or("HOME is not set")?;
    Ok(PathBuf::from(home).join(".cache/silt/dockerd"))
}

/// Its sockets, pid file and containerd's state: runtime state, under /run.
const EXEC_ROOT: &str = "/run/silt-dockerd";

/// A running daemon; stopped on drop if this process started it (one
/// found running, left by a run that was killed, is used and left).
pub struct Dockerd {
    child: Option<Child>,
    /// The docker CLI to give the tests (`SILT_DOCKER`).
    pub cli: PathBuf,
    /// `DOCKER_HOST` of the daemon.
    pub host: String,
}

impl Dockerd {
    /// Installs docker.io if need be and starts the daemon, or finds the
    /// one an earlier run left running on the same socket.
    ///
    /// # Errors
    /// When it cannot be installed, or does not answer within 60 s (its
    /// log is printed).
    pub fn start() -> Result<Self> {
        let root = Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|out| String::from_utf8_lossy(&out.stdout).trim() == "0");
        if !root {
            return Err(
                "the docker tests need root (a daemon of their own under /run); run cargo xtask as root"
                    .to_owned(),
            );
        }
        let dockerd = debian_tool("dockerd", "docker.io")?;
        let cli = [PathBuf::from("/usr/bin/docker")]
            .into_iter()
            .find(|path| path.is_file())
            .ok_or("docker.io did not install /usr/bin/docker")?;
        let host = format!("unix://{EXEC_ROOT}/docker.sock");
        let mut daemon = Self {
            child: None,
            cli,
            host,
        };
        if daemon.answers() {
            return Ok(daemon);
        }
        let data_root = data_root()?;
        std::fs::create_dir_all(&data_root)
            .map_err(|err| format!("cannot create {}: {err}", data_root.display()))?;
        std::fs::create_dir_all(EXEC_ROOT)
            .map_err(|err| format!("cannot create {EXEC_ROOT}: {err}"))?;
        let log_path = format!("{EXEC_ROOT}/dockerd.log");
        let log = std::fs::File::create(&log_path)
            .map_err(|err| format!("cannot create {log_path}: {err}"))?;
        eprintln!("xtask: starting dockerd ({})", daemon.host);
        let child = Command::new(dockerd)
            .args([
                "--iptables=false",
                "--ip6tables=false",
                "--bridge=none",
                "--host",
                &daemon.host,
                "--exec-root",
                EXEC_ROOT,
                "--pidfile",
                &format!("{EXEC_ROOT}/docker.pid"),
                "--data-root",
            ])
            .arg(&data_root)
            .stdin(Stdio::null())
            .stdout(log.try_clone().map_err(|err| err.to_string())?)
            .stderr(log)
            .spawn()
            .map_err(|err| format!("cannot start dockerd: {err}"))?;
        daemon.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(60);
        while !daemon.answers() {
            let exited = daemon
                .child
                .as_mut()
                .and_then(|child| child.try_wait().ok().flatten());
            if exited.is_some() || Instant::now() > deadline {
                let log = std::fs::read_to_string(&log_path).unwrap_or_default();
                return Err(format!(
                    "dockerd did not answer on {} ({}); its log:\n{log}",
                    daemon.host,
                    exited.map_or("60 s".to_owned(), |status| status.to_string())
                ));
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        Ok(daemon)
    }

    /// Whether the daemon answers `docker version`.
    fn answers(&self) -> bool {
        Command::new(&self.cli)
            .args(["version", "--format", "{{.Server.Version}}"])
            .env("DOCKER_HOST", &self.host)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|status| status.success())
    }
}

impl Drop for Dockerd {
    fn drop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        // SIGTERM: dockerd stops its containerd and removes its socket.
        let _ = Command::new("kill").arg(child.id().to_string()).status();
        let deadline = Instant::now() + Duration::from_secs(20);
        while child.try_wait().ok().flatten().is_none() {
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}
