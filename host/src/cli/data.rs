//! `silt data put|get|list|history|rm`: one file of one model at a time.
//! Writes take the model's lease; reads take none (they read the committed
//! index, which is always consistent). In a lazy clone, `get` of the latest
//! version makes that one file present (`hydrate-file`) and `list` makes
//! the model present (`hydrate-scope`) — what is read is then local.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use clap::Subcommand;
use serde::Serialize;

use super::Context;
use super::output::human_bytes;
use crate::datastore::{
    Claim, Datastore, LAZY_HYDRATION, LeasePolicy, make_present, model_label, parse_model,
    under_leases,
};
use crate::runtime::bindings::exports::silt::datastore::models::FileVersion;
use crate::runtime::bindings::silt::datastore::types::{LockScope, ModelRef};

/// Data commands.
#[derive(Debug, Subcommand)]
pub enum DataCommand {
    /// Commit a file (or stdin) as the new latest version of NAME.
    Put {
        /// The model, `type/id`.
        model: String,
        /// The file's name within the model (a relative path).
        name: String,
        /// The file to read; `-` or nothing reads stdin.
        file: Option<PathBuf>,
    },
    /// Write the latest (or a given) version of NAME to stdout or a file.
    #[command(disable_version_flag = true)]
    Get {
        /// The model, `type/id`.
        model: String,
        /// The file's name within the model.
        name: String,
        /// A version from `silt data history` (default: the latest).
        #[arg(long)]
        version: Option<String>,
        /// Write here (atomically) instead of stdout.
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
    /// The model's files and their latest versions.
    List {
        /// The model, `type/id`.
        model: String,
    },
    /// The versions of NAME the index keeps, oldest first.
    History {
        /// The model, `type/id`.
        model: String,
        /// The file's name within the model.
        name: String,
    },
    /// Remove NAME from the model (its history keeps a tombstone).
    Rm {
        /// The model, `type/id`.
        model: String,
        /// The file's name within the model.
        name: String,
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
}

pub(super) fn run(context: &Context, command: DataCommand) -> anyhow::Result<()> {
    match command {
        DataCommand::Put { model, name, file } => put(context, &model, &name, file.as_deref()),
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
        DataCommand::Rm { model, name } => remove(context, &model, &name),
    }
}

/// A file in the local copy's staging area, removed when dropped.
struct Staged {
    relative: String,
    absolute: PathBuf,
}

impl Staged {
    fn new(datastore: &Datastore) -> anyhow::Result<Self> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let relative = format!(".silt/staging/{}-{nanos}", std::process::id());
        let absolute = datastore.local_dir().join(&relative);
        let parent = absolute.parent().expect("staging has a parent");
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
        Ok(Self { relative, absolute })
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.absolute);
    }
}

fn short(sha256: &str) -> &str {
    &sha256[..sha256.len().min(12)]
}

fn put(context: &Context, model: &str, name: &str, file: Option<&Path>) -> anyhow::Result<()> {
    let model = parse_model(model)?;
    let policy = LeasePolicy::from_config(&context.locations.config.locks)?;
    let committed = super::with_datastore(context, async |datastore| {
        // Copy the input into the local copy first: the extension reads only
        // from there, and stdin can be read only once.
        let staged = Staged::new(datastore)?;
        let mut target = std::fs::File::create(&staged.absolute)
            .with_context(|| format!("cannot create {}", staged.absolute.display()))?;
        match file.filter(|f| f != &Path::new("-")) {
            Some(path) => {
                let mut source = std::fs::File::open(path)
                    .with_context(|| format!("cannot read {}", path.display()))?;
                std::io::copy(&mut source, &mut target)
                    .with_context(|| format!("cannot read {}", path.display()))?;
            }
            None => {
                std::io::copy(&mut std::io::stdin().lock(), &mut target)
                    .context("cannot read stdin")?;
            }
        }
        target.flush()?;
        drop(target);
        let scopes = vec![LockScope::Model(model.clone())];
        under_leases(datastore, scopes, &policy, async |leases| {
            let lease = &leases.leases()[0];
            datastore
                .put_file(&model, name, &staged.relative, lease)
                .await
        })
        .await
    })?;
    let report = FileReport {
        model: model_label(&model),
        name: name.to_owned(),
        version: VersionView::from(&committed),
    };
    context.output.emit(&report, |out| {
        writeln!(
            out,
            "{} {}: committed version {} ({}, sha256 {}, generation {})",
            report.model,
            report.name,
            committed.version,
            human_bytes(committed.size),
            short(&committed.sha256),
            committed.generation
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
    if context.output.is_json() && output.is_none() {
        anyhow::bail!("--json prints metadata on stdout: pass -o <file> for the content");
    }
    let fetched = super::with_datastore(context, async |datastore| {
        let staged = Staged::new(datastore)?;
        let from_working_copy = match version {
            None => latest_through_working_copy(datastore, &model, name, &staged).await?,
            Some(_) => None,
        };
        let fetched = match from_working_copy {
            Some(latest) => latest,
            None => {
                datastore
                    .get_file(&model, name, version, &staged.relative)
                    .await?
            }
        };
        match output {
            Some(path) => deliver_to_file(&staged.absolute, path)?,
            None => {
                let mut source = std::fs::File::open(&staged.absolute)?;
                let stdout = std::io::stdout();
                let mut out = stdout.lock();
                match std::io::copy(&mut source, &mut out).and_then(|_| out.flush()) {
                    Err(err) if err.kind() == std::io::ErrorKind::BrokenPipe => {}
                    other => {
                        other.context("cannot write to stdout")?;
                    }
                }
            }
        }
        anyhow::Ok(fetched)
    })?;
    if output.is_some() {
        let report = FileReport {
            model: model_label(&model),
            name: name.to_owned(),
            version: VersionView::from(&fetched),
        };
        context.output.emit(&report, |out| {
            writeln!(
                out,
                "{} {}: wrote version {} ({}) to {}",
                report.model,
                report.name,
                fetched.version,
                human_bytes(fetched.size),
                output.expect("checked").display()
            )
        })?;
    }
    Ok(())
}

/// The latest version of `name` through the working copy: `hydrate-file`
/// makes it present (fetching only that file, verified, atomically; nothing
/// when it is present already), then it is copied to `staged`. `None` when
/// the extension does not hydrate lazily, the file is not in the index, or
/// the working copy holds a local edit — the caller then reads the
/// committed version from the store (and reports what is wrong).
async fn latest_through_working_copy(
    datastore: &Datastore,
    model: &ModelRef,
    name: &str,
    staged: &Staged,
) -> anyhow::Result<Option<FileVersion>> {
    if !datastore.supports(LAZY_HYDRATION) {
        return Ok(None);
    }
    let _held = datastore
        .working_copy_locks()
        .foreground(Claim::Models(std::slice::from_ref(model)))
        .await?;
    let path = format!("data/{}/{}/{name}", model.model_type, model.model_id);
    if let Err(err) = datastore.hydrate_file(&path).await {
        tracing::debug!("{path}: not through the working copy: {err:#}");
        return Ok(None);
    }
    let files = datastore.list_files(model).await?;
    let Some(entry) = files.into_iter().find(|f| f.name == name) else {
        return Ok(None);
    };
    let working = datastore.model_dir(model).join(name);
    let bytes = match std::fs::read(&working) {
        Ok(bytes) => bytes,
        Err(_) => return Ok(None),
    };
    if !crate::runtime::sha256_hex(&bytes).eq_ignore_ascii_case(&entry.latest.sha256) {
        // A local edit not committed yet: `get` means the committed file.
        return Ok(None);
    }
    std::fs::write(&staged.absolute, &bytes)
        .with_context(|| format!("cannot write {}", staged.absolute.display()))?;
    Ok(Some(entry.latest))
}

/// Moves the staged file to `path` atomically: `path` is the old file or
/// the complete new one, never partial. A rename when both are on one
/// filesystem (the staged file is already whole and verified); else a copy
/// beside `path`, then a rename.
fn deliver_to_file(staged: &Path, path: &Path) -> anyhow::Result<()> {
    std::fs::File::open(staged)?.sync_all()?;
    match std::fs::rename(staged, path) {
        Ok(()) => return Ok(()),
        Err(err) if err.kind() == std::io::ErrorKind::CrossesDevices => {}
        Err(err) => return Err(anyhow::anyhow!("cannot write {}: {err}", path.display())),
    }
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_owned(),
        _ => PathBuf::from("."),
    };
    let file_name = path
        .file_name()
        .with_context(|| format!("{} is not a file path", path.display()))?;
    let temp = dir.join(format!(
        ".{}.silt-tmp.{}",
        file_name.to_string_lossy(),
        std::process::id()
    ));
    std::fs::copy(staged, &temp).with_context(|| format!("cannot write {}", temp.display()))?;
    std::fs::File::open(&temp)?.sync_all()?;
    std::fs::rename(&temp, path).map_err(|err| {
        let _ = std::fs::remove_file(&temp);
        anyhow::anyhow!("cannot write {}: {err}", path.display())
    })
}

fn list(context: &Context, model: &str) -> anyhow::Result<()> {
    let model = parse_model(model)?;
    let files = super::with_datastore(context, async |datastore| {
        // The model is what a command works on next: make it present (a
        // full pull when the extension cannot do one model).
        let (presence, _held) = make_present(datastore, std::slice::from_ref(&model)).await?;
        if let Some(reason) = &presence.full_pull_because
            && !context.output.is_json()
        {
            eprintln!("silt: {reason}");
        }
        datastore.list_files(&model).await
    })?;
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
    context.output.emit(&entries, |out| {
        if entries.is_empty() {
            return writeln!(out, "{}: no files", model_label(&model));
        }
        for entry in &entries {
            writeln!(
                out,
                "{}  {}  {}  ({} versions kept)",
                entry.name,
                human_bytes(entry.latest.size),
                entry.latest.version,
                entry.versions
            )?;
        }
        Ok(())
    })
}

fn history(context: &Context, model: &str, name: &str) -> anyhow::Result<()> {
    let model = parse_model(model)?;
    let versions = super::with_datastore(context, async |datastore| {
        datastore.history(&model, name).await
    })?;
    let views: Vec<VersionView> = versions.iter().map(VersionView::from).collect();
    context.output.emit(&views, |out| {
        for v in &views {
            if v.deleted {
                writeln!(
                    out,
                    "{}  removed by {} (generation {})",
                    v.version, v.writer, v.generation
                )?;
            } else {
                writeln!(
                    out,
                    "{}  {}  sha256 {}  by {} (generation {})",
                    v.version,
                    human_bytes(v.size),
                    short(&v.sha256),
                    v.writer,
                    v.generation
                )?;
            }
        }
        Ok(())
    })
}

fn remove(context: &Context, model: &str, name: &str) -> anyhow::Result<()> {
    let model = parse_model(model)?;
    let policy = LeasePolicy::from_config(&context.locations.config.locks)?;
    let tombstone = super::with_datastore(context, async |datastore| {
        let scopes = vec![LockScope::Model(model.clone())];
        under_leases(datastore, scopes, &policy, async |leases| {
            let lease = &leases.leases()[0];
            datastore.remove_file(&model, name, lease).await
        })
        .await
    })?;
    let report = FileReport {
        model: model_label(&model),
        name: name.to_owned(),
        version: VersionView::from(&tombstone),
    };
    context.output.emit(&report, |out| {
        writeln!(
            out,
            "{} {}: removed (tombstone version {})",
            report.model, report.name, tombstone.version
        )
    })
}
