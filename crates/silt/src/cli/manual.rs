//! `silt completions SHELL` and `silt man`: generated from the same clap
//! definition as the parser, so they can never describe another command
//! line than the one silt accepts.

use std::io::Write as _;
use std::path::PathBuf;

use anyhow::Context as _;
use clap::CommandFactory as _;

/// `silt completions`.
#[derive(Debug, clap::Args)]
pub struct CompletionsArgs {
    /// The shell: bash, zsh, fish, elvish or powershell. Install, e.g.:
    /// `silt completions bash > ~/.local/share/bash-completion/completions/silt`.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// `silt man`.
#[derive(Debug, clap::Args)]
pub struct ManArgs {
    /// Write one page per command (silt.1, silt-data.1, silt-data-put.1, …)
    /// into this directory instead of printing silt.1.
    #[arg(long, value_name = "DIR")]
    pub out_dir: Option<PathBuf>,
}

/// Prints the completion script for `args.shell`.
///
/// # Errors
/// When stdout fails for a reason other than a closed pipe.
pub fn completions(args: CompletionsArgs) -> anyhow::Result<()> {
    super::deferred::build_eagerly();
    let mut command = super::Cli::command();
    command.build();
    let mut visible = visible_only(&command);
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut visible, "silt", &mut script);
    write_stdout(&script)
}

/// `command` as a completion script offers it: without its hidden
/// subcommands and flags (silt's internals), which clap_complete would
/// offer. Each kept flag is copied without its relations to others
/// (conflicts, requirements), which could name a flag left out.
fn visible_only(command: &clap::Command) -> clap::Command {
    // What clap generated (help, version, the help subcommand) is copied
    // from the built tree like the rest, not generated again.
    let mut copy = clap::Command::new(leak(command.get_name()))
        .disable_help_flag(true)
        .disable_version_flag(true)
        .disable_help_subcommand(true);
    if let Some(about) = command.get_about() {
        copy = copy.about(about.clone());
    }
    if let Some(version) = command.get_version() {
        copy = copy.version(leak(version));
    }
    for arg in command.get_arguments().filter(|arg| !arg.is_hide_set()) {
        let mut kept = clap::Arg::new(arg.get_id().clone())
            .action(arg.get_action().clone())
            .value_parser(arg.get_value_parser().clone())
            .value_hint(arg.get_value_hint());
        if let Some(range) = arg.get_num_args() {
            kept = kept.num_args(range);
        }
        if let Some(names) = arg.get_value_names() {
            kept = kept.value_names(names.to_vec());
        }
        if let Some(long) = arg.get_long() {
            kept = kept.long(leak(long));
        }
        if let Some(short) = arg.get_short() {
            kept = kept.short(short);
        }
        if let Some(help) = arg.get_help() {
            kept = kept.help(help.clone());
        }
        if arg.is_last_set() {
            kept = kept.last(true);
        }
        copy = copy.arg(kept);
    }
    for sub in command.get_subcommands().filter(|sub| !sub.is_hide_set()) {
        copy = copy.subcommand(visible_only(sub));
    }
    copy
}

/// `text` for as long as the process lives: clap (built without its
/// `string` feature) takes only static names, and a completion script is
/// printed once per process.
fn leak(text: &str) -> &'static str {
    Box::leak(text.to_owned().into_boxed_str())
}

/// Prints the manual page, or writes every command's page to `--out-dir`.
///
/// # Errors
/// When the directory or stdout cannot be written.
pub fn man(args: ManArgs) -> anyhow::Result<()> {
    super::deferred::build_eagerly();
    // `silt help` is `--help` again, and has no page of its own.
    let mut command = super::Cli::command().disable_help_subcommand(true);
    command.build();
    match args.out_dir {
        Some(dir) => {
            std::fs::create_dir_all(&dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
            write_pages(&command, "silt", &dir)
                .with_context(|| format!("cannot write the manual pages into {}", dir.display()))
        }
        None => {
            let mut page = Vec::new();
            render(&command, true, &mut page).context("cannot render the manual page")?;
            write_stdout(&page)
        }
    }
}

/// Writes `command`'s page as `<name>.1` into `dir`, and its visible
/// subcommands' as `<name>-<sub>.1` (the names its SEE ALSO-style
/// subcommand list refers to).
fn write_pages(command: &clap::Command, name: &str, dir: &std::path::Path) -> std::io::Result<()> {
    let named = command.clone().display_name(name);
    let mut page = Vec::new();
    render(&named, name == "silt", &mut page)?;
    std::fs::write(dir.join(format!("{name}.1")), page)?;
    for sub in command.get_subcommands().filter(|sub| !sub.is_hide_set()) {
        write_pages(sub, &format!("{name}-{}", sub.get_name()), dir)?;
    }
    Ok(())
}

/// One page: clap_mangen's sections, then EXAMPLES (the command's
/// `after_help`) and, on the top page, EXIT STATUS, ENVIRONMENT and FILES.
fn render(command: &clap::Command, top: bool, out: &mut Vec<u8>) -> std::io::Result<()> {
    let man = clap_mangen::Man::new(command.clone());
    man.render_title(out)?;
    man.render_name_section(out)?;
    man.render_synopsis_section(out)?;
    man.render_description_section(out)?;
    if command.get_arguments().any(|arg| !arg.is_hide_set()) {
        man.render_options_section(out)?;
    }
    if command.get_subcommands().any(|sub| !sub.is_hide_set()) {
        man.render_subcommands_section(out)?;
    }
    if let Some(examples) = command.get_after_help() {
        let text = examples.to_string();
        let body = text.strip_prefix("Examples:\n").unwrap_or(&text);
        section(out, "EXAMPLES", &[body.to_owned()])?;
    }
    if top {
        let codes: Vec<String> = crate::exit::TABLE
            .iter()
            .map(|(code, meaning)| format!("{code}\t{meaning}"))
            .collect();
        section(out, "EXIT STATUS", &codes)?;
        let variables: Vec<String> = ENVIRONMENT
            .iter()
            .map(|(name, meaning)| format!("{name}\n    {meaning}"))
            .collect();
        section(out, "ENVIRONMENT", &variables)?;
        let files: Vec<String> = FILES
            .iter()
            .map(|(name, meaning)| format!("{name}\n    {meaning}"))
            .collect();
        section(out, "FILES", &files)?;
    }
    if command.get_version().is_some() {
        man.render_version_section(out)?;
    }
    Ok(())
}

/// A section of preformatted text (roff `.nf`), one paragraph per entry.
fn section(out: &mut Vec<u8>, title: &str, entries: &[String]) -> std::io::Result<()> {
    writeln!(out, ".SH \"{title}\"")?;
    for entry in entries {
        writeln!(out, ".nf")?;
        for line in entry.lines() {
            // A roff control character at a line's start, and backslashes,
            // are text here.
            let line = line.replace('\\', "\\e");
            let line = if line.starts_with(['.', '\'']) {
                format!("\\&{line}")
            } else {
                line
            };
            writeln!(out, "{line}")?;
        }
        writeln!(out, ".fi")?;
        writeln!(out, ".PP")?;
    }
    Ok(())
}

/// The environment silt reads, for the manual.
const ENVIRONMENT: &[(&str, &str)] = &[
    (
        "SILT_CONFIG",
        "The silt.toml to use, wherever silt is started.",
    ),
    (
        "SILT_EXECUTION",
        "in-process or out-of-process: where extensions run (as --execution).",
    ),
    (
        "SILT_SANDBOX_RUNTIME",
        "podman, docker, runc or a path: run every worker in that container runtime.",
    ),
    (
        "SILT_JSON_VERSION",
        "1 prints the --json shapes of docs/json/v1/ (this release only); unset or 2, those of v2.",
    ),
    (
        "SILT_LOCK_MAX_WAIT",
        "Seconds to wait for a lease another holds ([locks] max_wait_ms).",
    ),
    (
        "SILT_CACHE_DIR",
        "Where compiled extensions are cached (default: $XDG_CACHE_HOME/silt).",
    ),
    (
        "SILT_EXTENSIONS_DIR",
        "Where a project's extensions are installed (default: .silt/extensions).",
    ),
    (
        "AWS_PROFILE, AWS_REGION, AWS_ENDPOINT_URL, AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL_STS, AWS_ACCESS_KEY_ID, AWS_WEB_IDENTITY_TOKEN_FILE, AWS_ROLE_ARN, AWS_CONTAINER_CREDENTIALS_FULL_URI, ...",
        "An S3 datastore's credentials, region and endpoints, as the AWS CLI reads them (docs/guide.md).",
    ),
    (
        "RUST_LOG",
        "The log's filter, replacing what -q and -v set.",
    ),
    (
        "OTEL_EXPORTER_OTLP_ENDPOINT, OTEL_SERVICE_NAME, ...",
        "Export traces and metrics over OTLP/HTTP (docs/telemetry.md).",
    ),
    (
        "XDG_CACHE_HOME, XDG_DATA_HOME",
        "The bases of ~/.cache/silt and ~/.local/share/silt.",
    ),
];

/// The files silt reads and writes, for the manual.
const FILES: &[(&str, &str)] = &[
    (
        "silt.toml",
        "The project's configuration (found here or in a parent directory).",
    ),
    (
        "silt.lock",
        "The extensions the project pins: source, digest, contract.",
    ),
    (
        ".silt/",
        "The project's working copy (.silt/local), its installed extensions, and a directory datastore's objects (.silt/store).",
    ),
    (
        "~/.local/share/silt/extensions/",
        "Extensions added outside any project; a new project takes its datastore extension from here.",
    ),
    (
        "~/.cache/silt/",
        "Compiled extensions, shared by every project of the user.",
    ),
];

/// Writes `bytes` to stdout; a closed pipe (`silt man | head`) is no error.
fn write_stdout(bytes: &[u8]) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(bytes).and_then(|()| out.flush()) {
        Err(err) if err.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other.context("cannot write to stdout"),
    }
}
