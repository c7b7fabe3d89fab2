//! `silt sandbox check`: what this machine supports for isolating workers,
//! and a trial run of the configured driver. `silt sandbox image build`:
//! the worker image of podman and docker, made here. `silt sandbox probe`
//! (hidden) runs one probe in a sandbox, for tests and for digging into a
//! failure.

use std::ffi::OsString;
use std::path::PathBuf;

use clap::Subcommand;
use serde::Serialize;

use super::Context;
use crate::ops;
use crate::ops::sandbox::Trial;
use crate::sandbox::{Driver, Isolation, SandboxConfig, Support};

/// Sandbox commands.
#[derive(Debug, Subcommand)]
pub enum SandboxCommand {
    /// Report what this machine supports (cgroups, namespaces, Landlock,
    /// seccomp, container runtimes) and try the configured driver.
    #[command(after_help = super::examples::SANDBOX_CHECK)]
    Check {
        /// Try this driver instead of the configured one.
        #[arg(long, value_enum)]
        driver: Option<Driver>,
    },
    /// The worker image of the podman and docker runtimes.
    #[command(subcommand)]
    Image(ImageCommand),
    /// Run a probe inside a sandbox and print what it saw (for tests).
    #[command(hide = true)]
    Probe {
        /// The driver (default: the configured one).
        #[arg(long, value_enum)]
        driver: Option<Driver>,
        /// The isolation level (default: the configured one).
        #[arg(long, value_enum)]
        isolation: Option<Isolation>,
        /// The writable directory, seen at /scratch.
        #[arg(long)]
        scratch: PathBuf,
        /// OS memory limit in MiB.
        #[arg(long, default_value_t = 512)]
        memory_limit_mib: u64,
        /// Processes and threads.
        #[arg(long)]
        pids_limit: Option<u64>,
        /// The probe and its argument (`id`, `connect HOST:PORT`, ...).
        #[arg(last = true, required = true)]
        probe: Vec<OsString>,
    },
}

/// `silt sandbox image ...`
#[derive(Debug, Subcommand)]
pub enum ImageCommand {
    /// Build the worker image on this machine, with no registry: the
    /// shared libraries this silt loads, `FROM scratch` (the binary is
    /// mounted read-only by each run). Again after the C library changes.
    #[command(after_help = super::examples::SANDBOX_IMAGE_BUILD)]
    Build {
        /// podman or docker (a name on PATH or a path). Default:
        /// `[sandbox.container] runtime` when it is one of them, else podman.
        #[arg(long)]
        runtime: Option<String>,
        /// The tag. Default: `[sandbox.container] image`.
        #[arg(long)]
        image: Option<String>,
    },
}

#[derive(Serialize)]
struct CheckReport {
    support: SupportView,
    driver: &'static str,
    isolation: Isolation,
    native_worker: crate::sandbox::native_init::KernelIds,
    trial: Trial,
}

/// [`Support`] as `--json` shows it (docs/json/v2/sandbox-check.json):
/// objects with named fields, not Rust's shapes of `Result` and tuples.
#[derive(Serialize)]
struct SupportView {
    namespaces: Availability,
    landlock_abi: Option<u32>,
    seccomp: bool,
    cgroups: CgroupsView,
    cgroups_writable: bool,
    container_runtimes: Vec<RuntimeView>,
}

#[derive(Serialize)]
struct Availability {
    available: bool,
    why_not: Option<String>,
}

#[derive(Serialize)]
struct CgroupsView {
    memory: Option<HierarchyView>,
    pids: Option<HierarchyView>,
}

#[derive(Serialize)]
struct HierarchyView {
    path: PathBuf,
    version: crate::sandbox::cgroup::Version,
}

#[derive(Serialize)]
struct RuntimeView {
    name: String,
    path: PathBuf,
}

impl SupportView {
    fn new(support: &Support) -> Self {
        let hierarchy = |found: &Option<(PathBuf, crate::sandbox::cgroup::Version)>| {
            found.as_ref().map(|(path, version)| HierarchyView {
                path: path.clone(),
                version: *version,
            })
        };
        Self {
            namespaces: Availability {
                available: support.namespaces.is_ok(),
                why_not: support.namespaces.clone().err(),
            },
            landlock_abi: support.landlock_abi,
            seccomp: support.seccomp,
            cgroups: CgroupsView {
                memory: hierarchy(&support.cgroups.memory),
                pids: hierarchy(&support.cgroups.pids),
            },
            cgroups_writable: support.cgroups_writable,
            container_runtimes: support
                .container_runtimes
                .iter()
                .map(|(name, path)| RuntimeView {
                    name: name.clone(),
                    path: path.clone(),
                })
                .collect(),
        }
    }
}

pub(super) fn run(context: &Context, command: SandboxCommand) -> anyhow::Result<()> {
    match command {
        SandboxCommand::Check { driver } => {
            let mut config = context.locations.config.sandbox.clone();
            if driver.is_some() {
                config.driver = driver;
            }
            check(context, &config)
        }
        SandboxCommand::Image(ImageCommand::Build { runtime, image }) => {
            build_image(context, runtime, image)
        }
        SandboxCommand::Probe {
            driver,
            isolation,
            scratch,
            memory_limit_mib,
            pids_limit,
            probe,
        } => {
            let mut config = context.locations.config.sandbox.clone();
            config.driver = driver.or(config.driver);
            config.isolation = isolation.unwrap_or(config.isolation);
            config.pids_limit = pids_limit.unwrap_or(config.pids_limit);
            let outcome = ops::sandbox::probe(
                &context.locations,
                &config,
                &probe,
                &scratch,
                memory_limit_mib,
            )?;
            let report = serde_json::json!({
                "driver": outcome.driver.name(),
                "exit_code": outcome.status.code(),
                "signal": std::os::unix::process::ExitStatusExt::signal(&outcome.status),
                "oom_killed": outcome.oom_killed,
                "result": outcome.result(),
                "stderr": outcome.stderr,
            });
            context
                .output
                .emit(&report, |out| writeln!(out, "{report}"))
        }
    }
}

fn build_image(
    context: &Context,
    runtime: Option<String>,
    image: Option<String>,
) -> anyhow::Result<()> {
    let configured = &context.locations.config.sandbox.container;
    let report = ops::sandbox::build_image(configured, runtime, image)?;
    context.output.emit(&report, |out| {
        writeln!(
            out,
            "built {} ({}) with {}: {} {}",
            report.built.image,
            report.built.id,
            report.runtime.display(),
            report.built.files.len(),
            if report.built.files.len() == 1 {
                "file"
            } else {
                "files"
            }
        )
    })
}

fn check(context: &Context, config: &SandboxConfig) -> anyhow::Result<()> {
    let support = Support::get();
    let trial = ops::sandbox::trial(&context.locations, config)?;
    let report = CheckReport {
        support: SupportView::new(support),
        driver: config.driver().name(),
        isolation: config.isolation,
        native_worker: crate::sandbox::native_worker_ids(config),
        trial,
    };
    context.output.emit(&report, |out| {
        let yes_no = |ok: bool| if ok { "yes" } else { "no" };
        writeln!(
            out,
            "configured: driver {}, isolation {:?}",
            report.driver, report.isolation
        )?;
        match &support.namespaces {
            Ok(()) => writeln!(out, "namespaces (user, mount, net, pid, ipc, uts): yes")?,
            Err(why) => writeln!(out, "namespaces: no ({why})")?,
        }
        match support.landlock_abi {
            Some(abi) => writeln!(out, "Landlock: ABI {abi}")?,
            None => writeln!(out, "Landlock: no")?,
        }
        writeln!(out, "seccomp: {}", yes_no(support.seccomp))?;
        writeln!(
            out,
            "native worker: nobody inside, kernel uid {} and gid {} outside{}",
            report.native_worker.uid,
            report.native_worker.gid,
            if crate::sandbox::running_as_root() {
                " ([sandbox] worker_uid; its binds idmapped from root's)"
            } else {
                " (yours)"
            }
        )?;
        if crate::sandbox::running_as_root() {
            writeln!(
                out,
                "container worker: kernel uid {0} (runc, podman: root only in its own user namespace; docker: uid {0} itself), its binds idmapped from root's",
                report.native_worker.uid,
            )?;
        }
        for (name, found) in [
            ("memory cgroup", &support.cgroups.memory),
            ("pids cgroup", &support.cgroups.pids),
        ] {
            match found {
                Some((path, version)) => writeln!(
                    out,
                    "{name}: {version:?} at {} ({})",
                    path.display(),
                    if support.cgroups_writable {
                        "writable"
                    } else {
                        "not writable: limits fall back to RLIMIT_DATA"
                    }
                )?,
                None => writeln!(out, "{name}: none")?,
            }
        }
        if support.container_runtimes.is_empty() {
            writeln!(out, "container runtimes: none on PATH")?;
        }
        for (name, path) in &support.container_runtimes {
            writeln!(out, "container runtime: {name} ({})", path.display())?;
        }
        let trial = &report.trial;
        writeln!(
            out,
            "trial ({} driver): {} {}",
            trial.driver,
            if trial.ok { "ok" } else { "FAILED" },
            trial.detail
        )
    })?;
    if !report.trial.ok {
        anyhow::bail!(
            "the {} driver could not start a sandboxed process here: {}",
            report.trial.driver,
            report.trial.detail
        );
    }
    Ok(())
}
