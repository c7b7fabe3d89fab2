//! `silt run --model T/ID [--model ...] -- CMD ARGS...`
//!
//! Lease the models (sorted), make their latest committed data present in
//! the working copy — uncommitted leftovers (of a killed run, say) are moved
//! aside to `.silt/conflicts/` in the local copy and reported, never carried
//! into this run's commit — run the command with their directories in the
//! environment, and when it succeeds commit what it changed; release in
//! every case. The command's exit code is silt's. A lost lease stops the
//! command (it is killed) and nothing is committed.

use anyhow::Context as _;
use clap::Args;
use serde::Serialize;
use tracing::Instrument as _;

use super::Context;
use super::output::{plural, write_list};
use crate::datastore::run_marker::{self, RunMarkers};
use crate::datastore::{
    Datastore, LeasePolicy, make_present, model_label, parse_models, under_leases,
};
use crate::exit::CommandFailed;
use crate::locations::ENV_CONFIG;
use crate::runtime::bindings::exports::silt::datastore::sync::SyncOptions;
use crate::runtime::bindings::silt::datastore::types::{LocalEdits, LockScope, ModelRef, Scope};

/// `silt run` arguments.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// A model to work on (`type/id`); repeat for several.
    #[arg(long = "model", value_name = "TYPE/ID", required = true)]
    models: Vec<String>,
    /// The command and its arguments, after `--`.
    #[arg(last = true, required = true, value_name = "COMMAND")]
    command: Vec<String>,
}

/// The environment the command gets: `SILT_DATA_DIR` (the working copy's
/// root), `SILT_MODEL_DIR` (the first model's directory) and
/// `SILT_MODEL_DIRS` (every model's, `:`-separated, in the order given).
pub const ENV_DATA_DIR: &str = "SILT_DATA_DIR";
/// See [`ENV_DATA_DIR`].
pub const ENV_MODEL_DIR: &str = "SILT_MODEL_DIR";
/// See [`ENV_DATA_DIR`].
pub const ENV_MODEL_DIRS: &str = "SILT_MODEL_DIRS";

#[derive(Serialize)]
struct RunReport {
    models: Vec<String>,
    downloaded: u64,
    /// Why a full pull replaced making only these models present, if it did.
    full_pull_because: Option<String>,
    /// Uncommitted leftovers moved aside before the command ran (paths).
    set_aside: Vec<String>,
    committed: Vec<String>,
    exit_code: i32,
}

pub(super) fn run(context: &Context, args: RunArgs) -> anyhow::Result<()> {
    let models = parse_models(&args.models)?;
    let policy = LeasePolicy::from_config(&context.locations.config.locks)?;
    let report = super::with_datastore(context, async |datastore| {
        check_model_dirs(datastore, &models)?;
        let scopes = models.iter().cloned().map(LockScope::Model).collect();
        under_leases(datastore, scopes, &policy, async |leases| {
            // Held until the commit: the background hydrator stays out of
            // these models while the command writes them.
            let (presence, _working_copy) =
                make_present(datastore, &models, LocalEdits::SetAside).await?;
            // What killed runs left is aside now; this run is marked until
            // it ends (a kill leaves the marks, see `run_marker`).
            let host_state = datastore
                .host_state()
                .context("cannot open the host's state")?;
            run_marker::clear(&host_state, &run_marker::killed_runs(&host_state, &models));
            let _marks = RunMarkers::create(&host_state, &models)
                .context("cannot mark the run in the host's state")?;
            let set_aside: Vec<String> = datastore
                .set_aside_locations(&presence.set_aside)
                .iter()
                .map(|path| path.display().to_string())
                .collect();
            if let Some(reason) = &presence.full_pull_because {
                context.output.notice(reason);
            }
            // A warning about the user's data: printed even with `-q`.
            if !context.output.is_json() && !set_aside.is_empty() {
                // stdout belongs to the command.
                eprintln!(
                    "silt: moved {} aside; the command starts from the latest committed state:",
                    plural(set_aside.len() as u64, "uncommitted local edit")
                );
                let mut err = std::io::stderr().lock();
                write_list(&mut err, &set_aside)?;
            }
            let data_dir = datastore.local_dir().join("data");
            // Checked again after hydration, which wrote into them.
            check_model_dirs(datastore, &models)?;
            let dirs: Vec<_> = models.iter().map(|m| datastore.model_dir(m)).collect();
            let joined = std::env::join_paths(&dirs).context("a model directory contains `:`")?;
            // The command's own span: its duration and code, never its
            // arguments. A command that traces continues it (TRACEPARENT).
            let span = tracing::info_span!(
                "run.command",
                silt.run.exit_code = tracing::field::Empty,
                otel.status_code = tracing::field::Empty,
            );
            let mut child = tokio::process::Command::new(&args.command[0])
                .args(&args.command[1..])
                .env(ENV_DATA_DIR, &data_dir)
                .env(ENV_MODEL_DIR, &dirs[0])
                .env(ENV_MODEL_DIRS, joined)
                // A `silt` the command runs uses this configuration, wherever
                // it is started (a model directory holds data, not config).
                .envs(
                    context
                        .locations
                        .config_file
                        .as_ref()
                        .map(|file| (ENV_CONFIG, file)),
                )
                .envs(
                    silt_telemetry::traceparent(&span)
                        .map(|value| (silt_telemetry::propagation::TRACEPARENT, value)),
                )
                // If we stop early (lease lost, signal), the command stops too.
                .kill_on_drop(true)
                .spawn()
                .with_context(|| format!("cannot run `{}`", args.command[0]))?;
            let status = child
                .wait()
                .instrument(span.clone())
                .await
                .context("cannot wait for the command")?;
            if let Some(code) = status.code() {
                span.record("silt.run.exit_code", code);
            }
            if !status.success() {
                span.record("otel.status_code", "ERROR");
            }
            drop(span);
            if !status.success() {
                use std::os::unix::process::ExitStatusExt as _;
                let (how, code) = match (status.code(), status.signal()) {
                    (Some(code), _) => (format!("exited with {code}"), code as u8),
                    (None, Some(signal)) => {
                        (format!("was killed by signal {signal}"), 128 + signal as u8)
                    }
                    _ => ("failed".to_owned(), 1),
                };
                return Err(CommandFailed { how, code }.into());
            }
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
                models: args.models.clone(),
                downloaded: presence.fetched.objects,
                full_pull_because: presence.full_pull_because.clone(),
                set_aside,
                committed: pushed.changed,
                exit_code: 0,
            })
        })
        .await
    })?;
    if context.output.is_json() {
        context.output.emit(&report, |_| Ok(()))?;
    } else {
        // stdout belongs to the command.
        context.output.notice(&format!(
            "fetched {}; committed {}",
            plural(report.downloaded, "file"),
            plural(report.committed.len() as u64, "file")
        ));
    }
    Ok(())
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
