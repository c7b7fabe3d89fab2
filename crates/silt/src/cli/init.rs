//! `silt init`: write a `silt.toml` for this directory and, when the
//! datastore extension is installed, set the datastore up.

use std::path::{Path, PathBuf};

use clap::Args;
use serde::Serialize;

use super::Context;
use crate::config::{Backend, CONFIG_FILE_NAME, Config};
use crate::locations::Locations;

/// `silt init` arguments.
#[derive(Debug, Args)]
pub struct InitArgs {
    /// Where the datastore lives.
    #[arg(long, value_enum, default_value_t = Backend::Dir)]
    backend: Backend,
    /// For `dir`: the directory (default `.silt/store`).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// For `s3`: the bucket.
    #[arg(long, required_if_eq("backend", "s3"))]
    bucket: Option<String>,
    /// For `s3`: a key prefix inside the bucket.
    #[arg(long)]
    prefix: Option<String>,
    /// For `s3`: the endpoint of an S3-compatible store (default AWS).
    #[arg(long)]
    endpoint: Option<String>,
    /// For `s3`: the region.
    #[arg(long)]
    region: Option<String>,
    /// A namespace inside the datastore root.
    #[arg(long)]
    namespace: Option<String>,
    /// Replace an existing silt.toml.
    #[arg(long)]
    force: bool,
    /// Use a store that fails the conditional-write checks anyway (unsafe:
    /// concurrent writers can lose updates). Recorded in silt.toml as
    /// `datastore.allow_unsafe_store = true`, so the decision is visible.
    #[arg(long)]
    allow_unsafe_store: bool,
}

fn quoted(value: &str) -> String {
    toml::Value::String(value.to_owned()).to_string()
}

fn render(args: &InitArgs) -> String {
    let mut text = String::from(
        "# silt configuration; every setting and its default: see the README.\n\n[datastore]\n",
    );
    match args.backend {
        Backend::Dir => {
            text.push_str("backend = \"dir\"\n");
            if let Some(dir) = &args.dir {
                text.push_str(&format!("dir = {}\n", quoted(&dir.to_string_lossy())));
            } else {
                text.push_str("# dir = \".silt/store\"\n");
            }
        }
        Backend::S3 => text.push_str("backend = \"s3\"\n"),
    }
    if let Some(namespace) = &args.namespace {
        text.push_str(&format!("namespace = {}\n", quoted(namespace)));
    }
    if args.allow_unsafe_store {
        text.push_str(
            "# The store failed `silt datastore doctor`: concurrent writers can lose updates.\nallow_unsafe_store = true\n",
        );
    }
    if let Backend::S3 = args.backend {
        text.push_str("\n[datastore.s3]\n");
        for (key, value) in [
            ("bucket", &args.bucket),
            ("prefix", &args.prefix),
            ("endpoint", &args.endpoint),
            ("region", &args.region),
        ] {
            if let Some(value) = value {
                text.push_str(&format!("{key} = {}\n", quoted(value)));
            }
        }
    }
    text.push_str("\n[locks]\n# ttl_ms = 30000\n# max_wait_ms = 60000\n");
    text
}

#[derive(Serialize)]
struct InitReport {
    config: PathBuf,
    datastore_ready: bool,
    next: Option<String>,
}

pub(super) fn run(context: &Context, cwd: &Path, args: InitArgs) -> anyhow::Result<()> {
    let path = cwd.join(CONFIG_FILE_NAME);
    if path.exists() && !args.force {
        anyhow::bail!(
            "{} already exists; pass --force to replace it",
            path.display()
        );
    }
    let text = render(&args);
    // What we write must be what we read back.
    Config::parse(&text, &path)?;
    let previous = std::fs::read(&path).ok();
    std::fs::write(&path, &text)
        .map_err(|err| anyhow::anyhow!("cannot write {}: {err}", path.display()))?;
    // A failed init leaves the directory as it was: a retry must not meet
    // "already exists".
    let result = initialise(context, cwd, &path);
    if result.is_err() {
        let _ = match previous {
            Some(previous) => std::fs::write(&path, previous),
            None => std::fs::remove_file(&path),
        };
    }
    result
}

/// Sets the datastore up with the `silt.toml` just written, and reports.
fn initialise(context: &Context, cwd: &Path, path: &Path) -> anyhow::Result<()> {
    let locations = Locations::discover(cwd)?;
    let extension = locations.config.datastore.extension.clone();
    let installed = crate::runtime::Catalog::new(&locations.extensions_dir)
        .get(&extension)
        .is_ok();
    let context = Context {
        locations,
        output: context.output.clone(),
        hydration: context.hydration,
        quiet: context.quiet,
    };
    let mut report = InitReport {
        config: path.to_owned(),
        datastore_ready: false,
        next: None,
    };
    if installed {
        super::datastore::setup_quietly(&context)?;
        report.datastore_ready = true;
    } else {
        report.next = Some(format!(
            "install the datastore extension (`silt extension add <path to {}.wasm>`), then run `silt datastore setup`",
            extension
        ));
    }
    context.output.emit(&report, |out| {
        writeln!(out, "wrote {}", report.config.display())?;
        match &report.next {
            None => writeln!(out, "datastore ready"),
            Some(next) => writeln!(out, "next: {next}"),
        }
    })
}
