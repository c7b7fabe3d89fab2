//! `silt data put|get|list|history|rm`: one file of one model at a time.
//! Writes take the model's lease; reads take none (they read the committed
//! index, which is always consistent). In a lazy clone, `get` of the latest
//! version makes that one file present (`hydrate-file`) and `list` makes
//! the model present (`hydrate-scope`) — what is read is then local.

use std::io::IsTerminal as _;
use std::path::{Path, PathBuf};

use clap::Subcommand;
use serde::Serialize;

use super::Context;
use super::output::{human_bytes, plural};
use crate::datastore::{model_label, parse_model};
use crate::exit::UsageError;
use crate::ops::data::{self, Destination, Source};
use crate::runtime::bindings::exports::silt::datastore::models::FileVersion;
use crate::runtime::bindings::silt::datastore::types::Base;
use crate::runtime::guest_text;

/// Data commands.
#[derive(Debug, Subcommand)]
pub enum DataCommand {
    /// Commit a file (or stdin) as the new latest version of NAME.
    #[command(after_help = super::examples::DATA_PUT)]
    Put {
        /// The model, `type/id`.
        model: String,
        /// The file's name within the model (a relative path).
        name: String,
        /// The file to read; `-` reads stdin, and so does nothing when
        /// stdin is not a terminal (a pipe, a redirect).
        file: Option<PathBuf>,
        /// Commit only if NAME's latest version is still this one (from
        /// `silt data history`); `none`: only if NAME does not exist. Else
        /// exit 3, nothing committed. Without it the put goes on top.
        #[arg(long, value_name = "VERSION|none")]
        base: Option<String>,
    },
    /// Write the latest (or a given) version of NAME to stdout or a file.
    #[command(disable_version_flag = true)]
    #[command(after_help = super::examples::DATA_GET)]
    Get {
        /// The model, `type/id`.
        model: String,
        /// The file's name within the model.
        name: String,
        /// A version from `silt data history` (default: the latest).
        #[arg(long)]
        version: Option<String>,
        /// Write here (atomically) instead of stdout; `-` is stdout.
        #[arg(short, long, value_name = "FILE")]
        output: Option<PathBuf>,
    },
    /// The model's files and their latest versions.
    #[command(after_help = super::examples::DATA_LIST)]
    List {
        /// The model, `type/id`.
        model: String,
    },
    /// The versions of NAME the index keeps, oldest first.
    #[command(after_help = super::examples::DATA_HISTORY)]
    History {
        /// The model, `type/id`.
        model: String,
        /// The file's name within the model.
        name: String,
    },
    /// Remove NAME from the model (its history keeps a tombstone).
    #[command(after_help = super::examples::DATA_RM)]
    Rm {
        /// The model, `type/id`.
        model: String,
        /// The file's name within the model.
        name: String,
        /// Remove only if NAME's latest version is still this one; else
        /// exit 3, nothing committed.
        #[arg(long, value_name = "VERSION")]
        base: Option<String>,
    },
}

/// A version as the CLI prints it.
#[derive(Serialize)]
struct VersionView {
    version: String,
    size: u64,
    sha256: String,
    generation: u64,
    writer: String,
    committed_at: u64,
    deleted: bool,
}

impl From<&FileVersion> for VersionView {
    fn from(v: &FileVersion) -> Self {
        Self {
            version: v.version.clone(),
            size: v.size,
            sha256: v.sha256.clone(),
            generation: v.generation,
            writer: v.writer.clone(),
            committed_at: v.committed_at,
            deleted: v.deleted,
        }
    }
}

#[derive(Serialize)]
struct FileReport {
    model: String,
    name: String,
    #[serde(flatten)]
    version: VersionView,
    /// Store requests the commit took (`put`, `rm`), lease included.
    #[serde(skip_serializing_if = "Option::is_none")]
    requests: Option<u64>,
}

pub(super) fn run(context: &Context, command: DataCommand) -> anyhow::Result<()> {
    match command {
        DataCommand::Put {
            model,
            name,
            file,
            base,
        } => put(context, &model, &name, file.as_deref(), &base_of(base)),
        DataCommand::Get {
            model,
            name,
            version,
            output,
        } => get(
            context,
            &model,
            &name,
            version.as_deref(),
            output.as_deref(),
        ),
        DataCommand::List { model } => list(context, &model),
        DataCommand::History { model, name } => history(context, &model, &name),
        DataCommand::Rm { model, name, base } => {
            if base.as_deref() == Some("none") {
                return Err(UsageError(
                    "`rm --base none` would remove only a file that does not exist; give the version to remove (see `silt data history`)".to_owned(),
                )
                .into());
            }
            remove(context, &model, &name, &base_of(base))
        }
    }
}

/// The first 12 characters of a digest from the index (guest text: it may
/// be shorter, not hex, or not ASCII).
fn short(sha256: &str) -> String {
    guest_text(&sha256.chars().take(12).collect::<String>())
}

/// The `--base` of `put` and `rm`: none given commits on top.
fn base_of(given: Option<String>) -> Base {
    match given.as_deref() {
        None => Base::Any,
        Some("none") => Base::Absent,
        Some(version) => Base::Version(version.to_owned()),
    }
}

fn put(
    context: &Context,
    model: &str,
    name: &str,
    file: Option<&Path>,
    base: &Base,
) -> anyhow::Result<()> {
    let model = parse_model(model)?;
    let source = match file {
        Some(path) if path != Path::new("-") => Source::File(path),
        Some(_) => Source::Stdin,
        // FILE forgotten at a prompt: reading the terminal would wait
        // silently and commit what was typed (or nothing, at ^D).
        None if std::io::stdin().is_terminal() => {
            return Err(UsageError(
                "no FILE given, and stdin is a terminal: name the file to commit, or pipe it in (`-` reads stdin, also from a terminal)".to_owned(),
            )
            .into());
        }
        None => Source::Stdin,
    };
    let committed = data::put(&context.project(), &model, name, source, base)?;
    let report = FileReport {
        model: model_label(&model),
        name: name.to_owned(),
        version: VersionView::from(&committed.version),
        requests: Some(committed.requests),
    };
    let version = &committed.version;
    let what = if committed.unchanged {
        "unchanged: the content of its latest version,"
    } else {
        "committed version"
    };
    context.output.emit(&report, |out| {
        writeln!(
            out,
            "{} {}: {what} {} ({}, sha256 {}, generation {})",
            report.model,
            report.name,
            guest_text(&version.version),
            human_bytes(version.size),
            short(&version.sha256),
            version.generation
        )
    })
}

fn get(
    context: &Context,
    model: &str,
    name: &str,
    version: Option<&str>,
    output: Option<&Path>,
) -> anyhow::Result<()> {
    let model = parse_model(model)?;
    // `-o -` is stdout, as in curl and tar: never a file named `-`.
    let output = output.filter(|path| *path != Path::new("-"));
    if context.output.is_json() && output.is_none() {
        return Err(UsageError(
            "--json prints metadata on stdout: pass -o <file> for the content".to_owned(),
        )
        .into());
    }
    let destination = match output {
        Some(path) => Destination::File(path),
        None => Destination::Stdout,
    };
    let fetched = data::get(&context.project(), &model, name, version, destination)?;
    let Some(output) = output else {
        return Ok(());
    };
    let report = FileReport {
        model: model_label(&model),
        name: name.to_owned(),
        version: VersionView::from(&fetched),
        requests: None,
    };
    context.output.emit(&report, |out| {
        writeln!(
            out,
            "{} {}: wrote version {} ({}) to {}",
            report.model,
            report.name,
            guest_text(&fetched.version),
            human_bytes(fetched.size),
            output.display()
        )
    })
}

fn list(context: &Context, model: &str) -> anyhow::Result<()> {
    let model = parse_model(model)?;
    let files = data::list(&context.project(), &model)?;
    #[derive(Serialize)]
    struct Entry {
        name: String,
        versions: u32,
        latest: VersionView,
    }
    let entries: Vec<Entry> = files
        .iter()
        .map(|f| Entry {
            name: f.name.clone(),
            versions: f.versions,
            latest: VersionView::from(&f.latest),
        })
        .collect();
    /// The v2 document: the model and its files.
    #[derive(Serialize)]
    struct Listing<'a> {
        model: String,
        files: &'a [Entry],
    }
    let listing = Listing {
        model: model_label(&model),
        files: &entries,
    };
    context.output.emit_versioned(&listing, &entries, |out| {
        if entries.is_empty() {
            return writeln!(out, "{}: no files", model_label(&model));
        }
        for entry in &entries {
            writeln!(
                out,
                "{}  {}  {}  ({} kept)",
                guest_text(&entry.name),
                human_bytes(entry.latest.size),
                guest_text(&entry.latest.version),
                plural(u64::from(entry.versions), "version")
            )?;
        }
        Ok(())
    })
}

fn history(context: &Context, model: &str, name: &str) -> anyhow::Result<()> {
    let model = parse_model(model)?;
    let versions = data::history(&context.project(), &model, name)?;
    let views: Vec<VersionView> = versions.iter().map(VersionView::from).collect();
    /// The v2 document: the file and its versions, oldest first.
    #[derive(Serialize)]
    struct History<'a> {
        model: String,
        name: &'a str,
        versions: &'a [VersionView],
    }
    let history = History {
        model: model_label(&model),
        name,
        versions: &views,
    };
    context.output.emit_versioned(&history, &views, |out| {
        for v in &views {
            if v.deleted {
                writeln!(
                    out,
                    "{}  removed by {} (generation {})",
                    guest_text(&v.version),
                    guest_text(&v.writer),
                    v.generation
                )?;
            } else {
                writeln!(
                    out,
                    "{}  {}  sha256 {}  by {} (generation {})",
                    guest_text(&v.version),
                    human_bytes(v.size),
                    short(&v.sha256),
                    guest_text(&v.writer),
                    v.generation
                )?;
            }
        }
        Ok(())
    })
}

fn remove(context: &Context, model: &str, name: &str, base: &Base) -> anyhow::Result<()> {
    let model = parse_model(model)?;
    let removed = data::remove(&context.project(), &model, name, base)?;
    let report = FileReport {
        model: model_label(&model),
        name: name.to_owned(),
        version: VersionView::from(&removed.version),
        requests: Some(removed.requests),
    };
    context.output.emit(&report, |out| {
        writeln!(
            out,
            "{} {}: removed (tombstone version {})",
            report.model,
            report.name,
            guest_text(&removed.version.version)
        )
    })
}
