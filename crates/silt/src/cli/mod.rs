//! The `silt` command line: flags defined once with clap derive, one module
//! per command group, output rendered in one place ([`output`]).

mod cache;
mod data;
mod datastore;
mod deferred;
mod examples;
mod extension;
mod extension_install;
mod extension_test;
mod hydrate;
mod hydration_progress;
mod init;
mod manual;
pub mod output;
mod run;
mod sandbox;
mod scaffold;
mod transfer_progress;

use std::io::IsTerminal;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use clap::{Parser, Subcommand};

use crate::config::Hydration;
use crate::locations::Locations;
use crate::ops;
use deferred::Deferred;
use output::Output;

/// silt: run datastore extensions as sandboxed WebAssembly components.
///
/// `Cli::command()` defers each group's flags and subcommands ([`Deferred`]):
/// call `build()` on it before walking the tree.
#[derive(Debug, Parser)]
#[command(name = "silt", version, about, long_about = None, propagate_version = true)]
pub struct Cli {
    /// Print machine-readable JSON on stdout instead of text.
    #[arg(long, global = true, help_heading = "Global options")]
    pub json: bool,
    /// More on stderr: -v each store request, extension call and lease with
    /// its time; -vv silt's debug events; -vvv everything. RUST_LOG overrides.
    #[arg(short, long, global = true, help_heading = "Global options", action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Print nothing but errors, and warnings about your data (edits moved
    /// aside, a store allowed despite failing its checks). `--json` output
    /// and data asked for on stdout are still printed.
    #[arg(
        short,
        long,
        global = true,
        help_heading = "Global options",
        conflicts_with = "verbose"
    )]
    pub quiet: bool,
    /// How much of the datastore to fetch, for this command: `full` (every
    /// model's files) or `lazy` (index metadata, then what a command uses).
    /// Default: `datastore.hydration` in silt.toml, else `full`.
    #[arg(
        long,
        global = true,
        help_heading = "Global options",
        value_enum,
        value_name = "MODE"
    )]
    pub hydration: Option<Hydration>,
    /// Where extensions run, for this command: `in-process` or
    /// `out-of-process` (a sandboxed worker). Default: `[sandbox]` in
    /// silt.toml; `SILT_EXECUTION` sets it for every command.
    #[arg(
        long,
        global = true,
        help_heading = "Global options",
        value_enum,
        value_name = "WHERE"
    )]
    pub execution: Option<crate::sandbox::Execution>,
    /// The AWS profile an S3 datastore's credentials (and region) come
    /// from, for this command. Default: `[datastore.s3] profile`, else
    /// `AWS_PROFILE`, else `default`.
    #[arg(
        long,
        global = true,
        help_heading = "Global options",
        value_name = "NAME"
    )]
    pub profile: Option<String>,
    /// Write this command's trace there: every span as OTLP/JSON, one
    /// export request per line (as a collector's file exporter writes
    /// them). Traces also go to an OTLP/HTTP collector when
    /// OTEL_EXPORTER_OTLP_ENDPOINT is set (see docs/telemetry.md).
    #[arg(
        long,
        global = true,
        help_heading = "Global options",
        value_name = "PATH"
    )]
    pub trace_file: Option<std::path::PathBuf>,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The command groups. Each group's flags are built only when it is
/// used ([`Deferred`]).
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Install, list, inspect and verify extensions.
    #[command(subcommand)]
    Extension(Deferred<extension::ExtensionCommand>),
    /// Show or prune the cache of compiled extensions.
    #[command(subcommand)]
    Cache(Deferred<cache::CacheCommand>),
    /// Write a silt.toml here (by default: a local-directory datastore under .silt/).
    #[command(after_help = examples::INIT)]
    Init(Deferred<init::InitArgs>),
    /// Set up, sync and inspect the shared datastore and its leases.
    #[command(subcommand)]
    Datastore(Deferred<datastore::DatastoreCommand>),
    /// Put, get, list and remove files of one model.
    #[command(subcommand)]
    Data(Deferred<data::DataCommand>),
    /// Run a command on models: lease them, make their data present, run,
    /// commit what changed, release. Exits with the command's code.
    #[command(after_help = examples::RUN)]
    Run(Deferred<run::RunArgs>),
    /// Check what this machine supports for isolating out-of-process workers.
    #[command(subcommand)]
    Sandbox(Deferred<sandbox::SandboxCommand>),
    /// Print a shell completion script for silt (bash, zsh, fish, elvish,
    /// powershell) on stdout.
    #[command(after_help = examples::COMPLETIONS)]
    Completions(Deferred<manual::CompletionsArgs>),
    /// Print silt's manual page (roff) on stdout: `silt man | man -l -`.
    #[command(after_help = examples::MAN)]
    Man(Deferred<manual::ManArgs>),
}

impl Command {
    /// True for the commands that work on the project's datastore: they
    /// refuse to run outside a project rather than lay one down.
    fn needs_project(&self) -> bool {
        matches!(
            self,
            Command::Data(_) | Command::Run(_) | Command::Datastore(_)
        )
    }
}

/// What every command gets: where things are and how to print.
pub struct Context {
    /// Configuration and directories.
    pub locations: Locations,
    /// The output renderer.
    pub output: Output,
    /// `--hydration`, if given.
    pub hydration: Option<Hydration>,
    /// `--quiet`: no progress.
    pub quiet: bool,
    /// The extension runtimes of this process (one for a one-shot command).
    pub runtimes: Arc<crate::datastore::Runtimes>,
    /// The warnings this command has shown: each is shown once.
    pub warned: Arc<std::sync::Mutex<std::collections::BTreeSet<String>>>,
}

impl Context {
    /// The project as the operations see it, this context hearing their events.
    pub fn project(&self) -> ops::Project<'_> {
        ops::Project {
            locations: &self.locations,
            runtimes: &self.runtimes,
            events: self,
        }
    }

    /// The hydration mode of this command: `--hydration`, else silt.toml's.
    pub fn hydration(&self) -> Hydration {
        self.hydration
            .unwrap_or(self.locations.config.datastore.hydration)
    }

    /// True when progress would only get in the way.
    pub fn silent_progress(&self) -> bool {
        self.quiet || self.output.is_json()
    }
}

/// What the operations say while they run: notices under the output's
/// rules, warnings and moved-aside edits on stderr even with `-q` (stdout
/// may belong to a command `silt run` started), each warning once.
impl ops::Events for Context {
    fn notice(&self, text: &str) {
        self.output.notice(text);
    }

    fn warning(&self, text: &str) {
        let first = self
            .warned
            .lock()
            .map(|mut warned| warned.insert(text.to_owned()))
            .unwrap_or(true);
        if first {
            eprintln!("silt: {}", output::terminal_safe(text));
        }
    }

    fn set_aside(&self, paths: &[String]) {
        if self.output.is_json() || paths.is_empty() {
            return;
        }
        eprintln!(
            "silt: moved {} aside; the command starts from the latest committed state:",
            output::plural(paths.len() as u64, "uncommitted local edit")
        );
        let _ = output::write_list(&mut std::io::stderr().lock(), paths);
    }

    fn lease_waits(&self) -> Option<crate::datastore::WaitNotice> {
        let output = self.output.clone();
        Some(crate::datastore::WaitNotice(Arc::new(move |text: &str| {
            output.notice(text);
        })))
    }

    fn transfer_progress(&self) -> Option<Arc<dyn crate::capabilities::progress::ProgressSink>> {
        if self.output.is_json() {
            return None;
        }
        transfer_progress::TransferBar::for_terminal(self.quiet)
            .map(|bar| Arc::new(bar) as Arc<dyn crate::capabilities::progress::ProgressSink>)
    }
}

/// The scope of `--model` arguments: all models when there are none.
pub(crate) fn scope_of(
    models: &[String],
) -> anyhow::Result<crate::runtime::bindings::silt::datastore::types::Scope> {
    use crate::runtime::bindings::silt::datastore::types::Scope;
    if models.is_empty() {
        return Ok(Scope::All);
    }
    Ok(Scope::Models(crate::datastore::parse_models(models)?))
}

/// Runs the command line of this process and returns its exit code.
pub fn main() -> ExitCode {
    // The worker, the sandbox init and probes are entered before anything
    // else runs: the init must still be single-threaded, and none of them
    // wants the CLI's parsing, configuration or logging.
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    #[cfg(target_os = "linux")]
    if args.get(1).and_then(|arg| arg.to_str()) == Some(crate::sandbox::native_init::INIT_ARG)
        && args.len() > 2
    {
        crate::sandbox::native_init::main(&args[2], &args[3..], sandboxed_main);
    }
    if args.get(1).and_then(|arg| arg.to_str()) == Some(crate::sandbox::container::CONTAINED_ARG) {
        #[cfg(target_os = "linux")]
        crate::sandbox::container::confine_self(&args);
        return ExitCode::from(sandboxed_main(&args[2..]));
    }
    if matches!(
        args.get(1).and_then(|arg| arg.to_str()),
        Some("worker" | crate::sandbox::probe::PROBE_ARG)
    ) {
        return ExitCode::from(sandboxed_main(&args[1..]));
    }
    let matches = match <Cli as clap::CommandFactory>::command().try_get_matches_from(&args) {
        Ok(matches) => matches,
        Err(err) => refuse_command_line(err, &args),
    };
    let cli =
        <Cli as clap::FromArgMatches>::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    let version = match output::JsonVersion::from_env() {
        Ok(version) => version,
        Err(message) => {
            let output = Output::new(cli.json, cli.quiet, output::JsonVersion::V2);
            output.error(&anyhow::anyhow!(message), crate::exit::CONFIG);
            return ExitCode::from(crate::exit::CONFIG);
        }
    };
    let output = Output::new(cli.json, cli.quiet, version);
    if let Command::Extension(Deferred(extension::ExtensionCommand::TestRunner { binary, args })) =
        &cli.command
    {
        init_log_only(&cli);
        return ExitCode::from(extension::test_runner(binary, args, &output));
    }
    let telemetry = match init_telemetry(&cli) {
        Ok(telemetry) => telemetry,
        Err(err) => {
            let err = anyhow::Error::new(err);
            output.error(&err, crate::exit::CANT_CREATE);
            return ExitCode::from(crate::exit::CANT_CREATE);
        }
    };
    let quiet = cli.quiet;
    // The trace's root: the command, as its name (`silt data put`), and how
    // it ended. Nothing of the user's arguments is recorded.
    let name = command_name(&matches);
    let span = tracing::info_span!(
        "silt.command",
        otel.name = %name,
        silt.command = %name.trim_start_matches("silt "),
        silt.exit_code = tracing::field::Empty,
        otel.status_code = tracing::field::Empty,
    );
    silt_telemetry::continue_trace_from_env(&span);
    let code = span.in_scope(|| run_to_code(cli, &output, Arc::default()));
    span.record("silt.exit_code", code);
    if code != 0 {
        span.record("otel.status_code", "ERROR");
    }
    drop(span);
    for failure in telemetry.shutdown() {
        if !quiet {
            eprintln!("silt: warning: {}", output::terminal_safe(&failure));
        }
    }
    ExitCode::from(code)
}

/// Ends the process on a command line clap refused, as clap does (its
/// message on stderr, exit 2; help and version as asked); with `--json`
/// (before any `--`), the error document on stdout too, as every other
/// failure prints it.
fn refuse_command_line(err: clap::Error, args: &[std::ffi::OsString]) -> ! {
    use clap::error::ErrorKind;
    let json = args
        .iter()
        .skip(1)
        .take_while(|arg| *arg != "--")
        .any(|arg| arg == "--json");
    if !json
        || matches!(
            err.kind(),
            ErrorKind::DisplayHelp | ErrorKind::DisplayVersion
        )
    {
        err.exit();
    }
    let code = err.exit_code();
    let message = err.render().to_string();
    let message = message.trim().trim_start_matches("error: ");
    let _ = err.print();
    let value = serde_json::json!({ "error": { "message": message, "exit_code": code } });
    println!("{value}");
    std::process::exit(code);
}

/// `silt` and the subcommands chosen, e.g. `silt datastore lock status`.
fn command_name(matches: &clap::ArgMatches) -> String {
    let mut name = String::from("silt");
    let mut matches = matches;
    while let Some((sub, next)) = matches.subcommand() {
        name.push(' ');
        name.push_str(sub);
        matches = next;
    }
    name
}

/// What runs inside a sandbox: `worker`, or `__probe WHAT [ARG]`; returns
/// the exit code.
pub(crate) fn sandboxed_main(args: &[std::ffi::OsString]) -> u8 {
    crate::sandbox::exit_on_termination_signals();
    match args.first().and_then(|arg| arg.to_str()) {
        Some("worker") => crate::worker::serve::main(),
        Some(crate::sandbox::probe::PROBE_ARG) => crate::sandbox::probe::main(&args[1..]),
        _ => {
            eprintln!("silt: nothing to run in the sandbox: {args:?}");
            2
        }
    }
}

/// Runs a parsed command and returns its exit code, its error reported.
fn run_to_code(cli: Cli, output: &Output, runtimes: Arc<crate::datastore::Runtimes>) -> u8 {
    match run(cli, output.clone(), runtimes) {
        Ok(()) => 0,
        Err(err) => {
            let code = crate::exit::code_for(&err);
            output.error(&err, code);
            code
        }
    }
}

fn run(cli: Cli, output: Output, runtimes: Arc<crate::datastore::Runtimes>) -> anyhow::Result<()> {
    // Neither needs (nor may fail on) a project's configuration.
    match cli.command {
        Command::Completions(Deferred(args)) => return manual::completions(args),
        Command::Man(Deferred(args)) => return manual::man(args),
        _ => {}
    }
    let cwd = std::env::current_dir().context("cannot determine the current directory")?;
    let mut locations = Locations::discover(&cwd)?;
    if locations.config_file.is_none() && cli.command.needs_project() {
        return Err(crate::config::ConfigError::NoProject { cwd }.into());
    }
    if let Some(execution) = cli.execution {
        locations.config.sandbox.force_execution(execution);
    }
    if let Some(profile) = cli.profile
        && let Some(s3) = locations.config.datastore.s3.as_mut()
    {
        s3.profile = Some(profile);
    }
    let context = Context {
        locations,
        output,
        hydration: cli.hydration,
        quiet: cli.quiet,
        runtimes,
        warned: Arc::default(),
    };
    let background_after = match &cli.command {
        Command::Run(_) | Command::Data(_) => true,
        Command::Datastore(Deferred(command)) => command.starts_background_hydration(),
        _ => false,
    };
    let result = match cli.command {
        Command::Extension(Deferred(command)) => extension::run(&context, command),
        Command::Cache(Deferred(command)) => cache::run(&context, command),
        Command::Init(Deferred(args)) => init::run(&context, &cwd, args),
        Command::Datastore(Deferred(command)) => datastore::run(&context, command),
        Command::Data(Deferred(command)) => data::run(&context, command),
        Command::Run(Deferred(args)) => run::run(&context, args),
        Command::Sandbox(Deferred(command)) => sandbox::run(&context, command),
        Command::Completions(_) | Command::Man(_) => unreachable!("answered above"),
    };
    if result.is_ok() && background_after {
        hydrate::after_command(&context);
    }
    result
}

/// The log's level from `-q` and `-v`s (`RUST_LOG` overrides it).
fn log_level(cli: &Cli) -> tracing::level_filters::LevelFilter {
    use tracing::level_filters::LevelFilter;
    match (cli.quiet, cli.verbose) {
        (true, _) => LevelFilter::ERROR,
        (false, 0) => LevelFilter::WARN,
        (false, 1) => LevelFilter::INFO,
        (false, 2) => LevelFilter::DEBUG,
        (false, _) => LevelFilter::TRACE,
    }
}

/// What the command line asks of the log and of the trace file.
fn telemetry_options(cli: &Cli) -> silt_telemetry::Options {
    silt_telemetry::Options {
        log_level: log_level(cli),
        ansi: std::io::stderr().is_terminal(),
        trace_file: cli.trace_file.clone(),
        version: env!("CARGO_PKG_VERSION"),
    }
}

/// The log, and traces and metrics where `--trace-file` or the standard
/// `OTEL_*` variables ask for them (see `silt_telemetry`).
fn init_telemetry(cli: &Cli) -> Result<silt_telemetry::Telemetry, silt_telemetry::TelemetryError> {
    let telemetry = silt_telemetry::init(&telemetry_options(cli))?;
    if !cli.quiet {
        for warning in &telemetry.warnings {
            eprintln!("silt: warning: {}", output::terminal_safe(warning));
        }
    }
    Ok(telemetry)
}

/// The log alone (the extension test runner exports nothing).
fn init_log_only(cli: &Cli) {
    let options = silt_telemetry::Options {
        trace_file: None,
        ..telemetry_options(cli)
    };
    let _ = silt_telemetry::init_with(&options, &silt_telemetry::ExportSettings::none());
}

/// A runtime for the commands that execute extensions ([`ops::session`]).
pub(crate) use crate::ops::session::block_on;

#[cfg(test)]
mod tests {
    /// The counters' target is named in both crates (neither depends on
    /// the other): they must agree, or no counter is ever exported.
    #[test]
    fn the_metrics_target_is_the_one_telemetry_reads() {
        assert_eq!(crate::store::METRICS_TARGET, silt_telemetry::METRICS_TARGET);
    }

    #[test]
    fn command_line_definition_is_consistent() {
        use clap::CommandFactory as _;
        super::Cli::command().debug_assert();
    }
}
