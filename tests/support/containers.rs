//! The container runtimes `cargo xtask test` installs (runc, podman, and
//! docker through a daemon of the tests' own): their worker images, the
//! settings that put a project's workers in them, and what each lists of
//! the containers it runs.

use std::ffi::{OsStr, OsString};
use std::path::Path;
use std::time::Duration;

use silt::sandbox::{ContainerConfig, Driver, Isolation, SandboxConfig};

/// A container runtime from `cargo xtask test` (`SILT_RUNC`,
/// `SILT_PODMAN`, `SILT_DOCKER`), or `None` outside CI (a run without it
/// is a failure under CI).
pub fn runtime(variable: &str) -> Option<OsString> {
    let runtime = std::env::var_os(variable);
    if runtime.is_none() {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must run the container tests: `cargo xtask test` sets {variable}"
        );
        eprintln!("skipped: {variable} is not set (run through `cargo xtask test`)");
    }
    runtime
}

/// Whether `runtime` takes runc's command line (runc, crun: no images, a
/// root built from this machine's `/usr`), by silt's own rule.
pub fn is_runc(runtime: &OsStr) -> bool {
    Path::new(runtime)
        .file_name()
        .and_then(OsStr::to_str)
        .is_some_and(|name| name.contains("runc") || name.contains("crun"))
}

/// The containers `runtime` knows whose names start with `prefix`: every
/// one (`all`) or the running ones (runc lists every container it has
/// state for, whatever `all` says); an error if the listing failed (podman
/// may fail while another command removes a container).
pub fn try_containers(runtime: &OsStr, prefix: &str, all: bool) -> Result<Vec<String>, String> {
    let mut command = std::process::Command::new(runtime);
    if is_runc(runtime) {
        command.args(["list", "--quiet"]);
    } else if all {
        command.args(["ps", "--all", "--format", "{{.Names}}"]);
    } else {
        command.args(["ps", "--filter=status=running", "--format", "{{.Names}}"]);
    }
    let output = command.output().map_err(|err| err.to_string())?;
    if !output.status.success() {
        return Err(format!(
            "{} cannot list its containers: {}",
            Path::new(runtime).display(),
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    Ok(String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter(|name| name.starts_with(prefix))
        .map(str::to_owned)
        .collect())
}

/// [`try_containers`], failing the test if the listing fails.
pub fn containers(runtime: &OsStr, prefix: &str, all: bool) -> Vec<String> {
    try_containers(runtime, prefix, all).unwrap_or_else(|err| panic!("{err}"))
}

/// Waits until `runtime` has no container whose name starts with `prefix`
/// (a failed listing counts as not yet), for at most 20 s.
pub fn assert_none_left(runtime: &OsStr, prefix: &str) {
    let gone = super::poll_until(Duration::from_secs(20), || {
        try_containers(runtime, prefix, true)
            .is_ok_and(|left| left.is_empty())
            .then_some(())
    });
    assert!(
        gone.is_some(),
        "{:?} outlived their host's calls by 20 s",
        containers(runtime, prefix, true)
    );
}

/// A worker image for podman or docker under a tag of this test process's
/// own (`silt sandbox image build`); removed when dropped.
pub struct WorkerImage {
    runtime: OsString,
    /// The image's tag.
    pub tag: String,
    /// What `silt --json sandbox image build` printed.
    pub report: String,
}

impl WorkerImage {
    /// Builds the image with the `silt` of a project in `home`.
    pub fn build(home: &Path, runtime: &OsStr) -> Self {
        let tag = format!("localhost/silt-worker:test-{}", std::process::id());
        let (code, stdout, stderr) = super::output(
            super::silt(home)
                .args(["--json", "sandbox", "image", "build", "--runtime"])
                .arg(runtime)
                .args(["--image", &tag]),
        );
        assert_eq!(code, 0, "silt sandbox image build: {stderr}");
        Self {
            runtime: runtime.to_owned(),
            tag,
            report: stdout,
        }
    }
}

impl Drop for WorkerImage {
    fn drop(&mut self) {
        let _ = std::process::Command::new(&self.runtime)
            .args(["rmi", "--force", &self.tag])
            .output();
    }
}

/// A container runtime under test with the image its workers run (none
/// for runc).
pub struct ContainerRuntime {
    /// The runtime's path.
    pub path: OsString,
    image: Option<WorkerImage>,
    _home: tempfile::TempDir,
}

impl ContainerRuntime {
    /// The runtime `cargo xtask test` names in `variable`, with an image
    /// built for podman and docker; `None` outside CI.
    pub fn from_env(variable: &str) -> Option<Self> {
        let path = runtime(variable)?;
        let home = tempfile::tempdir().unwrap();
        let image = (!is_runc(&path)).then(|| WorkerImage::build(home.path(), &path));
        Some(Self {
            path,
            image,
            _home: home,
        })
    }

    fn image_tag(&self) -> Option<&str> {
        self.image.as_ref().map(|image| image.tag.as_str())
    }

    /// `silt.toml` tables that run every extension call of a project in a
    /// container of this runtime, refusing any other driver (`strict`).
    pub fn settings(&self) -> String {
        let mut settings = format!(
            "[sandbox]\nexecution = \"out-of-process\"\ndriver = \"container\"\nisolation = \"strict\"\n[sandbox.container]\nruntime = \"{}\"\n",
            Path::new(&self.path).display()
        );
        if let Some(tag) = self.image_tag() {
            settings.push_str(&format!("image = \"{tag}\"\n"));
        }
        settings
    }

    /// The sandbox of a worker pool in this runtime's containers.
    pub fn sandbox(&self, pool_size: usize) -> SandboxConfig {
        let mut container = ContainerConfig {
            runtime: Path::new(&self.path).display().to_string(),
            ..ContainerConfig::default()
        };
        if let Some(tag) = self.image_tag() {
            container.image = tag.to_owned();
        }
        SandboxConfig {
            driver: Some(Driver::Container),
            isolation: Isolation::Strict,
            pool_size,
            container,
            ..SandboxConfig::default()
        }
    }
}
