//! `silt run`: lease the models (sorted), make their latest committed data
//! present in the working copy — uncommitted leftovers (of a killed run,
//! say) are moved aside to `.silt/conflicts/` and reported, never carried
//! into this run's commit — run the command with their directories in the
//! environment, and when it succeeds commit what it changed; release in
//! every case. A lost lease stops the command (it is killed) and nothing is
//! committed.

use std::path::PathBuf;

use anyhow::Context as _;
use serde::Serialize;
use tracing::Instrument as _;

use super::Project;
use crate::datastore::run_marker::{self, RunMarkers};
use crate::datastore::{Datastore, make_present, model_label, under_leases};
use crate::exit::{COMMAND_NOT_EXECUTABLE, COMMAND_NOT_FOUND, CommandFailed, CommandNotStarted};
use crate::locations::ENV_CONFIG;
use crate::runtime::bindings::exports::silt::datastore::sync::SyncOptions;
use crate::runtime::bindings::silt::datastore::types::{LocalEdits, LockScope, ModelRef, Scope};

/// The environment the command gets: `SILT_DATA_DIR` (the working copy's
/// root), `SILT_MODEL_DIR` (the first model's directory) and
/// `SILT_MODEL_DIRS` (every model's, `:`-separated, in the order given).
pub const ENV_DATA_DIR: &str = "SILT_DATA_DIR";
/// See [`ENV_DATA_DIR`].
pub const ENV_MODEL_DIR: &str = "SILT_MODEL_DIR";
/// See [`ENV_DATA_DIR`].
pub const ENV_MODEL_DIRS: &str = "SILT_MODEL_DIRS";

/// What to run, on which models.
pub struct RunRequest {
    /// The models, in the order given (the first is `SILT_MODEL_DIR`).
    pub models: Vec<ModelRef>,
    /// The command and its arguments.
    pub command: Vec<String>,
    /// Where the command's stdout goes: silt's stdout, or (when silt's
    /// stdout carries a document of its own, `--json`) silt's stderr.
    pub command_stdout: CommandStdout,
}

/// Where a run's command writes its stdout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommandStdout {
    /// silt's stdout, as if the command ran alone.
    Inherited,
    /// silt's stderr: silt's stdout is its own.
    ToStderr,
}

/// What a run did; a command that failed is an error ([`CommandFailed`])
/// and committed nothing.
#[derive(Debug, Serialize)]
pub struct RunReport {
    /// The models, as `type/id`.
    pub models: Vec<String>,
    /// Files fetched to make the models present.
    pub downloaded: u64,
    /// Why a full pull replaced making only these models present, if it did.
    pub full_pull_because: Option<String>,
    /// Uncommitted leftovers moved aside before the command ran (paths).
    pub set_aside: Vec<String>,
    /// The working-copy paths committed.
    pub committed: Vec<String>,
    /// The command's exit code (0: a failure is an error instead).
    pub exit_code: i32,
}

/// Runs `request` (see the module's doc).
///
/// # Errors
/// A model that cannot be leased or made present, a model directory that
/// is not a real directory beneath the working copy, a command that cannot
/// start or fails ([`CommandFailed`], with its exit code), a lost lease, or
/// a commit that fails.
pub fn run(project: &Project, request: &RunRequest) -> anyhow::Result<RunReport> {
    let policy = project.lease_policy()?;
    let models = &request.models;
    project.with_datastore(async |datastore| {
        check_model_dirs(datastore, models)?;
        let scopes = models.iter().cloned().map(LockScope::Model).collect();
        under_leases(datastore, scopes, &policy, async |leases| {
            // Held until the commit: the background hydrator stays out of
            // these models while the command writes them.
            let (presence, _working_copy) =
                make_present(datastore, models, LocalEdits::SetAside).await?;
            // What killed runs left is aside now; this run is marked until
            // it ends (a kill leaves the marks, see `run_marker`).
            let host_state = datastore
                .host_state()
                .context("cannot open the host's state")?;
            run_marker::clear(&host_state, &run_marker::killed_runs(&host_state, models));
            let _marks = RunMarkers::create(&host_state, models)
                .context("cannot mark the run in the host's state")?;
            let set_aside: Vec<String> = datastore
                .set_aside_locations(&presence.set_aside)
                .iter()
                .map(|path| path.display().to_string())
                .collect();
            if let Some(reason) = &presence.full_pull_because {
                project.events.notice(reason);
            }
            project.events.set_aside(&set_aside);
            // Checked again after hydration, which wrote into them.
            check_model_dirs(datastore, models)?;
            spawn_and_wait(
                datastore,
                models,
                request,
                project.locations.config_file.clone(),
            )
            .await?;
            leases.check("commit")?;
            let pushed = datastore
                .push(&SyncOptions {
                    scope: Scope::Models(models.clone()),
                    leases: leases.leases(),
                    dry_run: false,
                    fetch_missing: false,
                    // Started from the latest state under the lease: any
                    // conflict now is a fencing failure, refused.
                    local_edits: LocalEdits::Keep,
                })
                .await?;
            anyhow::Ok(RunReport {
                models: models.iter().map(model_label).collect(),
                downloaded: presence.fetched.objects,
                full_pull_because: presence.full_pull_because.clone(),
                set_aside,
                committed: pushed.changed,
                exit_code: 0,
            })
        })
        .await
    })
}

/// Runs the command with the models' directories in its environment and
/// waits for it; a failure (exit code or signal) is [`CommandFailed`].
async fn spawn_and_wait(
    datastore: &Datastore,
    models: &[ModelRef],
    request: &RunRequest,
    config_file: Option<PathBuf>,
) -> anyhow::Result<()> {
    let command = &request.command;
    let stdout = match request.command_stdout {
        CommandStdout::Inherited => std::process::Stdio::inherit(),
        CommandStdout::ToStderr => {
            use std::os::fd::AsFd as _;
            std::io::stderr()
                .as_fd()
                .try_clone_to_owned()
                .context("cannot hand the command silt's stderr")?
                .into()
        }
    };
    let data_dir = datastore.local_dir().join("data");
    let dirs: Vec<_> = models.iter().map(|m| datastore.model_dir(m)).collect();
    let joined = std::env::join_paths(&dirs).context("a model directory contains `:`")?;
    // The command's own span: its duration and code, never its arguments.
    // A command that traces continues it (TRACEPARENT).
    let span = tracing::info_span!(
        "run.command",
        silt.run.exit_code = tracing::field::Empty,
        otel.status_code = tracing::field::Empty,
    );
    let mut child = tokio::process::Command::new(&command[0])
        .args(&command[1..])
        .env(ENV_DATA_DIR, &data_dir)
        .env(ENV_MODEL_DIR, &dirs[0])
        .env(ENV_MODEL_DIRS, joined)
        // A `silt` the command runs uses this configuration, wherever it is
        // started (a model directory holds data, not config).
        .envs(config_file.map(|file| (ENV_CONFIG, file)))
        .envs(
            silt_telemetry::traceparent(&span)
                .map(|value| (silt_telemetry::propagation::TRACEPARENT, value)),
        )
        .stdout(stdout)
        // If we stop early (lease lost, signal), the command stops too.
        .kill_on_drop(true)
        .spawn()
        .map_err(|err| not_started(&command[0], err))?;
    let status = child
        .wait()
        .instrument(span.clone())
        .await
        .context("cannot wait for the command")?;
    if let Some(code) = status.code() {
        span.record("silt.run.exit_code", code);
    }
    if status.success() {
        return Ok(());
    }
    span.record("otel.status_code", "ERROR");
    use std::os::unix::process::ExitStatusExt as _;
    let (how, code) = match (status.code(), status.signal()) {
        (Some(code), _) => (format!("exited with {code}"), code as u8),
        (None, Some(signal)) => (format!("was killed by signal {signal}"), 128 + signal as u8),
        _ => ("failed".to_owned(), 1),
    };
    Err(CommandFailed { how, code }.into())
}

/// Why `command` could not be started, with the code a shell exits with.
fn not_started(command: &str, err: std::io::Error) -> anyhow::Error {
    let (why, code) = match err.kind() {
        std::io::ErrorKind::NotFound => (
            "no such command (is it on PATH, or the path right?)".to_owned(),
            COMMAND_NOT_FOUND,
        ),
        std::io::ErrorKind::PermissionDenied => (
            "it is not executable (chmod +x, or run it through its interpreter)".to_owned(),
            COMMAND_NOT_EXECUTABLE,
        ),
        _ => (err.to_string(), COMMAND_NOT_EXECUTABLE),
    };
    CommandNotStarted {
        command: command.to_owned(),
        why,
        code,
    }
    .into()
}

/// The command gets ambient paths and follows whatever it finds there, so
/// each model directory must be a real directory beneath the working copy,
/// every component of it; created where missing. (An extension cannot make
/// links, but a user or a worker that escaped its sandbox could have.)
fn check_model_dirs(datastore: &Datastore, models: &[ModelRef]) -> anyhow::Result<()> {
    let local = datastore.local().context("cannot open the local copy")?;
    for model in models {
        local.create_dir_all(datastore.model_path(model)).with_context(|| {
            format!(
                "{}: the model directory is not a real directory beneath the working copy; nothing was run",
                model_label(model)
            )
        })?;
    }
    Ok(())
}
