//! `silt datastore hydrate`: fetch models' latest files now, in this
//! process or in the background, or show what is present and how the
//! background hydrator is doing.

use clap::Args;

use super::Context;
use super::hydration_progress::with_progress;
use super::output::{human_bytes, in_milliseconds, plural};
use super::scope_of;
use crate::datastore::{BackgroundStatus, Phase, now_ms};
use crate::ops;
use crate::runtime::bindings::silt::datastore::types::Scope;

/// `silt datastore hydrate` arguments.
#[derive(Debug, Args)]
pub struct HydrateArgs {
    /// These models (`type/id`).
    #[arg(long = "model", value_name = "TYPE/ID")]
    models: Vec<String>,
    /// Every model in the store.
    #[arg(long, conflicts_with = "models")]
    all: bool,
    /// Only count what is present and what is missing (reads index
    /// metadata, fetches no data), and show the background hydrator's state.
    #[arg(long, conflicts_with_all = ["background", "worker"])]
    status: bool,
    /// Fetch every model in a detached, low-priority process and return at
    /// once (`--status` shows its progress).
    #[arg(long, conflicts_with_all = ["models", "worker"])]
    background: bool,
    /// Be the background hydrator (what `--background` starts).
    #[arg(long, hide = true, conflicts_with = "models")]
    worker: bool,
}

impl HydrateArgs {
    /// True for a foreground hydration of some models: afterwards the
    /// background hydrator may fetch the rest.
    pub(super) fn fetches_some_models(&self) -> bool {
        !self.models.is_empty() && !self.status
    }
}

pub(super) fn run(context: &Context, args: HydrateArgs) -> anyhow::Result<()> {
    if args.worker {
        return worker(context);
    }
    // One of four ways: clap's own message for a missing argument would
    // name only the first.
    if args.models.is_empty() && !args.all && !args.status && !args.background {
        return Err(crate::exit::UsageError(
            "say what to hydrate: --model TYPE/ID (repeatable), --all (every model), --status (only count what is present), or --background (every model, in a detached process)"
                .to_owned(),
        )
        .into());
    }
    if args.background {
        return start_background(context);
    }
    // `--all`, or `--status` without models: every model.
    let scope = if args.all {
        Scope::All
    } else {
        scope_of(&args.models)?
    };
    hydrate_here(context, &scope, args.status)
}

fn hydrate_here(context: &Context, scope: &Scope, status_only: bool) -> anyhow::Result<()> {
    let report = with_progress(context, "hydrate", |on_progress| {
        ops::hydrate::hydrate(&context.project(), scope, status_only, on_progress)
    })?;
    // How long it took: `seconds` in v1, `elapsed_ms` in v2.
    let v2 = in_milliseconds(&report, &[("seconds", "elapsed_ms")])?;
    context.output.emit_versioned(&v2, &report, |out| {
        if report.status_only {
            writeln!(
                out,
                "{}: {} present locally, {} missing (silt datastore hydrate --all fetches them)",
                plural(report.models as u64, "model"),
                plural(report.already_present, "file"),
                report.missing
            )?;
            if let Some(status) = &report.background {
                writeln!(out, "background: {}", describe_background(status))?;
            }
            return Ok(());
        }
        let rate = report.fetched.bytes as f64 / report.seconds.max(1e-3);
        writeln!(
            out,
            "hydrated {}: fetched {} ({}) in {:.1} s ({}/s); {} already present; {}",
            plural(report.models as u64, "model"),
            plural(report.fetched.objects, "file"),
            human_bytes(report.fetched.bytes),
            report.seconds,
            human_bytes(rate as u64),
            report.already_present,
            plural(report.requests, "request")
        )
    })
}

/// One line on the background hydrator.
fn describe_background(status: &BackgroundStatus) -> String {
    let Some(last) = &status.last else {
        return if status.running {
            "starting".to_owned()
        } else {
            "never ran here ([datastore] background = \"after-command\" or `silt datastore hydrate --background` starts it)".to_owned()
        };
    };
    let ago = |ms: u64| format!("{:.1} s ago", now_ms().saturating_sub(ms) as f64 / 1000.0);
    let counts = format!(
        "{}/{} models complete, fetched {} ({})",
        last.models_done,
        last.models_total,
        plural(last.files_fetched, "file"),
        human_bytes(last.bytes_fetched)
    );
    match (status.running, last.phase) {
        (true, _) => format!(
            "running (pid {}): {counts}; updated {}",
            last.pid,
            ago(last.updated_ms)
        ),
        (false, Phase::Done) => format!("finished {}: {counts}", ago(last.updated_ms)),
        (false, Phase::Failed) => format!(
            "failed {}: {}; {counts} (it starts again after the next command, or with --background)",
            ago(last.updated_ms),
            last.error.as_deref().unwrap_or("unknown error")
        ),
        (false, Phase::Running) => format!(
            "interrupted (pid {} stopped {}): {counts}; it resumes after the next command, or with --background",
            last.pid,
            ago(last.updated_ms)
        ),
    }
}

fn start_background(context: &Context) -> anyhow::Result<()> {
    let report = ops::hydrate::start_background(&context.locations)?;
    context.output.emit(&report, |out| match report.pid {
        Some(pid) => writeln!(
            out,
            "started background hydration (pid {pid}); `silt datastore hydrate --status` shows its progress; log: {}",
            report.log
        ),
        None => writeln!(
            out,
            "background hydration is already running; `silt datastore hydrate --status` shows its progress"
        ),
    })
}

/// The background hydrator itself (`--worker`): its report goes to its log.
fn worker(context: &Context) -> anyhow::Result<()> {
    let state = ops::hydrate::run_background(&context.locations, &context.runtimes)?;
    match state {
        None => tracing::info!("another background hydrator runs here; nothing to do"),
        Some(state) => tracing::info!(
            "background hydration finished: {}, fetched {} ({}), yielded to foreground commands {}",
            plural(state.models_total as u64, "model"),
            plural(state.files_fetched, "file"),
            human_bytes(state.bytes_fetched),
            plural(state.yielded, "time")
        ),
    }
    Ok(())
}

/// After a command that used the datastore ([`ops::hydrate::after_command`]).
pub(super) fn after_command(context: &Context) {
    ops::hydrate::after_command(&context.locations, context.hydration());
}
