//! `silt sandbox check|image build|probe`: a trial run of a driver, the
//! worker image of podman and docker made here, and one probe run in a
//! sandbox (for tests and for digging into a failure).

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::locations::Locations;
use crate::sandbox::probe::{self, ProbeOutcome};
use crate::sandbox::{ContainerConfig, SandboxConfig};

/// The worker image built (docs/json/v2/sandbox-image-build.json).
#[derive(Debug, Serialize)]
pub struct ImageReport {
    /// The container runtime that built it.
    pub runtime: PathBuf,
    /// The image.
    #[serde(flatten)]
    pub built: crate::sandbox::container::image::Built,
}

/// Builds the worker image with `runtime` (default: the configured one
/// when it is podman or docker, else podman), tagged `image` (default: the
/// configured one).
///
/// # Errors
/// A runtime not on PATH or neither podman nor docker, or a failed build.
pub fn build_image(
    configured: &ContainerConfig,
    runtime: Option<String>,
    image: Option<String>,
) -> anyhow::Result<ImageReport> {
    let runtime = runtime.unwrap_or_else(|| {
        if configured.runtime.contains("runc") {
            "podman".to_owned()
        } else {
            configured.runtime.clone()
        }
    });
    let image = image.unwrap_or_else(|| configured.image.clone());
    let path = crate::sandbox::support::find_on_path(&runtime)
        .ok_or_else(|| anyhow::anyhow!("`{runtime}` is not on PATH: install podman or docker"))?;
    if !["podman", "docker"].iter().any(|name| {
        path.file_name()
            .is_some_and(|file| file.to_string_lossy().contains(name))
    }) {
        anyhow::bail!(
            "`{runtime}` is neither podman nor docker (runc needs no image: it runs a root made from this machine's /usr)"
        );
    }
    let binary = crate::sandbox::worker_binary()?;
    let built = crate::sandbox::container::image::build(&path, &binary, &image)
        .map_err(|err| anyhow::anyhow!("cannot build the worker image: {err}"))?;
    Ok(ImageReport {
        runtime: path,
        built,
    })
}

/// Runs the probe `args` in a sandbox configured by `config`, `scratch` its
/// writable directory.
///
/// # Errors
/// A sandbox that cannot be set up (exit 69 for a missing layer, see
/// `exit`).
pub fn probe(
    locations: &Locations,
    config: &SandboxConfig,
    args: &[OsString],
    scratch: &Path,
    memory_limit_mib: u64,
) -> anyhow::Result<ProbeOutcome> {
    let root_dir = locations.cache_dir.join("sandbox-root");
    let outcome = super::session::block_on(probe::run(
        config,
        args,
        scratch,
        &root_dir,
        memory_limit_mib << 20,
    ))?;
    Ok(outcome?)
}

/// A trial run of a driver.
#[derive(Debug, Serialize)]
pub struct Trial {
    /// The driver tried.
    pub driver: &'static str,
    /// True when it started a sandboxed process.
    pub ok: bool,
    /// What the process saw, or why it failed.
    pub detail: String,
}

/// Tries the driver `config` names: the `id` probe in a scratch directory
/// of its own.
///
/// # Errors
/// When the scratch directory cannot be made (a failed trial is a `Trial`
/// that is not ok).
pub fn trial(locations: &Locations, config: &SandboxConfig) -> anyhow::Result<Trial> {
    let scratch = std::env::temp_dir().join(format!("silt-sandbox-check-{}", std::process::id()));
    std::fs::create_dir_all(&scratch)?;
    let trial = match probe(locations, config, &["id".into()], &scratch, 512) {
        Ok(outcome) if outcome.status.success() => Trial {
            driver: outcome.driver.name(),
            ok: true,
            detail: outcome
                .result()
                .map(|result| result.to_string())
                .unwrap_or_default(),
        },
        Ok(outcome) => Trial {
            driver: outcome.driver.name(),
            ok: false,
            detail: outcome.stderr.trim().to_owned(),
        },
        Err(err) => Trial {
            driver: config.driver().name(),
            ok: false,
            detail: format!("{err:#}"),
        },
    };
    let _ = std::fs::remove_dir_all(&scratch);
    Ok(trial)
}
