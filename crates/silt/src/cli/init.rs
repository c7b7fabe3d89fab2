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
    /// The datastore's extension: an installed name, or where to get it
    /// (`oci://HOST/REPO:TAG`, a path to a .wasm file). A source is written
    /// to [extensions.require], installed and locked in silt.lock.
    #[arg(long, value_name = "NAME|REF")]
    extension: Option<String>,
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

/// The datastore's extension as `--extension` gives it.
enum DatastoreExtension {
    /// The default, or an installed name.
    Named(String),
    /// A source: the name its metadata gives, and its `[extensions.require]` entry.
    Required { name: String, entry: String },
}

impl DatastoreExtension {
    fn name(&self) -> &str {
        match self {
            Self::Named(name) | Self::Required { name, .. } => name,
        }
    }
}

/// Reads what `--extension` names: a source is fetched once to learn the
/// name its metadata gives (and to validate it before anything is written).
fn datastore_extension(cwd: &Path, given: Option<&str>) -> anyhow::Result<DatastoreExtension> {
    let Some(given) = given else {
        return Ok(DatastoreExtension::Named(
            crate::config::DEFAULT_DATASTORE_EXTENSION.to_owned(),
        ));
    };
    let metadata_of = |bytes: &[u8], shown: &Path| -> anyhow::Result<String> {
        let info = crate::runtime::ComponentInfo::parse(bytes, shown)?;
        Ok(info.validate(shown)?.name.clone())
    };
    if given.starts_with(silt_registry::reference::OCI_SCHEME) {
        let reference = silt_registry::OciReference::parse(given)?;
        let Some(tag) = reference.tag.clone().filter(|_| reference.digest.is_none()) else {
            anyhow::bail!(
                "--extension {given}: name a tag (oci://HOST/REPO:TAG); silt.lock records the digest"
            );
        };
        let pulled = super::block_on(silt_registry::oci::pull(&reference))??;
        let name = metadata_of(&pulled.component, Path::new(given))?;
        let repository = format!("{}/{}:{tag}", reference.registry, reference.repository);
        let entry = format!("{name} = {{ oci = {} }}", quoted(&repository));
        return Ok(DatastoreExtension::Required { name, entry });
    }
    if given.starts_with("https://") || given.starts_with("http://") {
        anyhow::bail!(
            "--extension {given}: a URL needs its sha256; write it in silt.toml as [extensions.require] NAME = {{ url = \"...\", sha256 = \"...\" }}"
        );
    }
    if given.ends_with(".wasm") || given.contains('/') {
        let path = cwd.join(given);
        let bytes = std::fs::read(&path).map_err(|err| {
            anyhow::anyhow!("--extension {given}: cannot read {}: {err}", path.display())
        })?;
        let name = metadata_of(&bytes, &path)?;
        let entry = format!("{name} = {{ path = {} }}", quoted(given));
        return Ok(DatastoreExtension::Required { name, entry });
    }
    Ok(DatastoreExtension::Named(given.to_owned()))
}

fn render(args: &InitArgs, extension: &DatastoreExtension) -> String {
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
    if extension.name() != crate::config::DEFAULT_DATASTORE_EXTENSION {
        text.push_str(&format!("extension = {}\n", quoted(extension.name())));
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
    if let DatastoreExtension::Required { entry, .. } = extension {
        text.push_str(&format!(
            "\n# Installed and pinned in silt.lock by `silt extension install`.\n[extensions.require]\n{entry}\n"
        ));
    }
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
    let extension = datastore_extension(cwd, args.extension.as_deref())?;
    let text = render(&args, &extension);
    // What we write must be what we read back.
    Config::parse(&text, &path)?;
    let previous = std::fs::read(&path).ok();
    let lock = cwd.join(crate::supply_chain::LOCK_FILE_NAME);
    let previous_lock = std::fs::read(&lock).ok();
    std::fs::write(&path, &text)
        .map_err(|err| anyhow::anyhow!("cannot write {}: {err}", path.display()))?;
    // A failed init leaves the directory as it was: a retry must not meet
    // "already exists".
    let result = initialise(context, cwd, &path);
    if result.is_err() {
        for (file, before) in [(&path, previous), (&lock, previous_lock)] {
            let _ = match before {
                Some(before) => std::fs::write(file, before),
                None => std::fs::remove_file(file),
            };
        }
    }
    result
}

/// Sets the datastore up with the `silt.toml` just written, and reports.
fn initialise(context: &Context, cwd: &Path, path: &Path) -> anyhow::Result<()> {
    let locations = Locations::discover(cwd)?;
    let extension = locations.config.datastore.extension.clone();
    if !locations.config.extensions.require.is_empty() {
        let lock = crate::supply_chain::lock_path(locations.config_file.as_deref())
            .expect("silt.toml was just written");
        let catalog = crate::runtime::Catalog::new(&locations.extensions_dir);
        super::block_on(crate::supply_chain::install(
            &catalog,
            &lock,
            &locations.config.extensions.require,
            None,
            crate::supply_chain::Update::Nothing,
        ))??;
    }
    let installed = crate::runtime::Catalog::new(&locations.extensions_dir)
        .get(&extension)
        .is_ok();
    let context = Context {
        locations,
        output: context.output.clone(),
        hydration: context.hydration,
        quiet: context.quiet,
        runtimes: context.runtimes.clone(),
        warned_unsafe_store: std::sync::atomic::AtomicBool::new(
            context
                .warned_unsafe_store
                .load(std::sync::atomic::Ordering::Relaxed),
        ),
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
            "install the datastore extension (`silt extension add <path to {extension}.wasm or oci://HOST/REPO:TAG>`, or name its source with `silt init --force --extension oci://HOST/REPO:TAG`), then run `silt datastore setup`"
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
