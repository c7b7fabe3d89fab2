//! `silt init`: a `silt.toml` written for this directory (checked by
//! reading it back), the extensions it requires installed and locked, and,
//! when the datastore extension is installed, the datastore set up. A
//! failed init leaves the directory as it was.

use std::path::{Path, PathBuf};

use serde::Serialize;

use super::Project;
use crate::config::{Backend, CONFIG_FILE_NAME, Config, Hydration};
use crate::datastore::{HydrationProgress, Runtimes};
use crate::locations::Locations;

/// What to initialise (`silt init`'s flags).
pub struct InitRequest {
    /// Where the datastore lives.
    pub backend: Backend,
    /// For `dir`: the directory (default `.silt/store`).
    pub dir: Option<PathBuf>,
    /// For `s3` and `gcs`: the bucket.
    pub bucket: Option<String>,
    /// For `s3` and `gcs`: a key prefix inside the bucket.
    pub prefix: Option<String>,
    /// For `s3` and `gcs`: another endpoint than the cloud's.
    pub endpoint: Option<String>,
    /// For `s3`: the region.
    pub region: Option<String>,
    /// For `azure`: the storage account.
    pub account: Option<String>,
    /// For `azure`: the container.
    pub container: Option<String>,
    /// A namespace inside the datastore root.
    pub namespace: Option<String>,
    /// The datastore's extension: an installed name, or where to get it.
    pub extension: Option<String>,
    /// Replace an existing silt.toml.
    pub force: bool,
    /// Use a store that fails the conditional-write checks anyway
    /// (recorded in silt.toml).
    pub allow_unsafe_store: bool,
    /// `--hydration`, if given (else the written silt.toml's).
    pub hydration: Option<Hydration>,
}

/// What `init` did.
#[derive(Debug, Serialize)]
pub struct InitReport {
    /// The silt.toml written.
    pub config: PathBuf,
    /// True when the datastore was set up too.
    pub datastore_ready: bool,
    /// What to do next, when it was not.
    pub next: Option<String>,
}

/// Initialises `cwd` (see the module's doc); `on_progress` hears a full
/// clone's hydration.
///
/// # Errors
/// An existing silt.toml (unless `force`), an extension source that cannot
/// be read, or an install or setup that fails — silt.toml and silt.lock
/// are then as they were.
pub fn init(
    cwd: &Path,
    request: &InitRequest,
    runtimes: &std::sync::Arc<Runtimes>,
    events: &dyn super::Events,
    on_progress: &mut dyn FnMut(&HydrationProgress),
) -> anyhow::Result<InitReport> {
    let path = cwd.join(CONFIG_FILE_NAME);
    if path.exists() && !request.force {
        anyhow::bail!(
            "{} already exists; pass --force to replace it",
            path.display()
        );
    }
    let misplaced = [
        (
            "--region",
            request.region.is_some() && request.backend != Backend::S3,
            "s3",
        ),
        (
            "--bucket",
            request.bucket.is_some() && !matches!(request.backend, Backend::S3 | Backend::Gcs),
            "s3 and gcs",
        ),
        (
            "--account and --container",
            (request.account.is_some() || request.container.is_some())
                && request.backend != Backend::Azure,
            "azure",
        ),
    ];
    if let Some((flag, _, backends)) = misplaced.iter().find(|(_, wrong, _)| *wrong) {
        anyhow::bail!(
            "{flag} is for the {backends} backend, not --backend {:?}",
            request.backend
        );
    }
    let extension = datastore_extension(cwd, request.extension.as_deref())?;
    let text = render(request, &extension);
    // What we write must be what we read back.
    Config::parse(&text, &path)?;
    let previous = std::fs::read(&path).ok();
    let lock = cwd.join(crate::supply_chain::LOCK_FILE_NAME);
    let previous_lock = std::fs::read(&lock).ok();
    std::fs::write(&path, &text)
        .map_err(|err| anyhow::anyhow!("cannot write {}: {err}", path.display()))?;
    // A failed init leaves the directory as it was: a retry must not meet
    // "already exists".
    let result = initialise(cwd, &path, request.hydration, runtimes, events, on_progress);
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

/// Installs what the `silt.toml` just written requires and, when the
/// datastore extension is installed, sets the datastore up.
fn initialise(
    cwd: &Path,
    path: &Path,
    hydration: Option<Hydration>,
    runtimes: &std::sync::Arc<Runtimes>,
    events: &dyn super::Events,
    on_progress: &mut dyn FnMut(&HydrationProgress),
) -> anyhow::Result<InitReport> {
    ignore_project_data(cwd);
    let locations = Locations::discover(cwd)?;
    let extension = locations.config.datastore.extension.clone();
    if !locations.config.extensions.require.is_empty() {
        let lock = crate::supply_chain::lock_path(locations.config_file.as_deref())
            .expect("silt.toml was just written");
        let catalog = crate::runtime::Catalog::new(&locations.extensions_dir);
        super::session::block_on(crate::supply_chain::install(
            &catalog,
            &lock,
            &locations.config.extensions.require,
            None,
            crate::supply_chain::Update::Nothing,
        ))??;
    }
    if let Some(adopted) = crate::supply_chain::adopt_users_install(
        &locations.extensions_dir,
        locations.user_extensions_dir.as_deref(),
        &extension,
    )? {
        events.notice(&adopted.to_string());
    }
    let installed = crate::runtime::Catalog::new(&locations.extensions_dir)
        .get(&extension)
        .is_ok();
    let mut report = InitReport {
        config: path.to_owned(),
        datastore_ready: false,
        next: None,
    };
    if installed {
        let project = Project {
            locations: &locations,
            runtimes,
            events,
        };
        let request = super::setup::SetupRequest {
            retain_versions: None,
            allow_unsafe_store: false,
            hydration: hydration.unwrap_or(locations.config.datastore.hydration),
        };
        super::setup::setup(&project, &request, on_progress)?;
        report.datastore_ready = true;
    } else {
        report.next = Some(format!(
            "install the datastore extension (`silt extension add <path to {extension}.wasm or oci://HOST/REPO:TAG>`, or name its source with `silt init --force --extension oci://HOST/REPO:TAG`), then run `silt datastore setup`"
        ));
    }
    Ok(report)
}

/// Keeps `.silt/` (the working copy, a directory datastore, the host's
/// state) out of version control: a `.gitignore` of its own, as a Python
/// virtualenv has, so the project's own `.gitignore` is not touched.
fn ignore_project_data(cwd: &Path) {
    let dir = cwd.join(crate::config::PROJECT_DATA_DIR);
    let ignore = dir.join(".gitignore");
    let written = std::fs::create_dir_all(&dir).and_then(|()| {
        match std::fs::OpenOptions::new().write(true).create_new(true).open(&ignore) {
            Ok(mut file) => std::io::Write::write_all(
                &mut file,
                b"# Written by `silt init`: the working copy and the local datastore are not sources.\n*\n",
            ),
            Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
            Err(err) => Err(err),
        }
    });
    if let Err(err) = written {
        tracing::warn!("cannot write {}: {err}", ignore.display());
    }
}

fn quoted(value: &str) -> String {
    toml::Value::String(value.to_owned()).to_string()
}

/// The datastore's extension as `--extension` gives it.
enum DatastoreExtension {
    /// The default, or an installed name.
    Named(String),
    /// A source: the name its metadata gives, its `[extensions.require]`
    /// entry, and whether it is a file on this machine (never locked).
    Required {
        name: String,
        entry: String,
        local: bool,
    },
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
        let pulled = super::session::block_on(silt_registry::oci::pull(&reference))??;
        let name = metadata_of(&pulled.component, Path::new(given))?;
        let repository = format!("{}/{}:{tag}", reference.registry, reference.repository);
        let entry = format!("{name} = {{ oci = {} }}", quoted(&repository));
        return Ok(DatastoreExtension::Required {
            name,
            entry,
            local: false,
        });
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
        return Ok(DatastoreExtension::Required {
            name,
            entry,
            local: true,
        });
    }
    Ok(DatastoreExtension::Named(given.to_owned()))
}

fn render(args: &InitRequest, extension: &DatastoreExtension) -> String {
    let mut text = String::from(
        "# silt configuration; every setting and its default: see docs/guide.md.\n\n[datastore]\n",
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
        Backend::Gcs => text.push_str("backend = \"gcs\"\n"),
        Backend::Azure => text.push_str("backend = \"azure\"\n"),
    }
    if extension.name() != crate::config::DEFAULT_DATASTORE_EXTENSION {
        text.push_str(&format!("extension = {}\n", quoted(extension.name())));
    }
    if let Some(namespace) = &args.namespace {
        text.push_str(&format!("namespace = {}\n", quoted(namespace)));
    }
    // `--hydration` on init is the project's choice, kept for every command.
    if let Some(Hydration::Lazy) = args.hydration {
        text.push_str("hydration = \"lazy\"\n");
    }
    if args.allow_unsafe_store {
        text.push_str(
            "# The store failed `silt datastore doctor`: concurrent writers can lose updates.\nallow_unsafe_store = true\n",
        );
    }
    let table = match args.backend {
        Backend::Dir => None,
        Backend::S3 => Some((
            "s3",
            vec![("bucket", &args.bucket), ("region", &args.region)],
        )),
        Backend::Gcs => Some(("gcs", vec![("bucket", &args.bucket)])),
        Backend::Azure => Some((
            "azure",
            vec![("account", &args.account), ("container", &args.container)],
        )),
    };
    if let Some((table, mut fields)) = table {
        text.push_str(&format!("\n[datastore.{table}]\n"));
        fields.extend([("prefix", &args.prefix), ("endpoint", &args.endpoint)]);
        for (key, value) in fields {
            if let Some(value) = value {
                text.push_str(&format!("{key} = {}\n", quoted(value)));
            }
        }
    }
    text.push_str("\n[locks]\n# ttl_ms = 30000\n# max_wait_ms = 60000\n");
    match extension {
        DatastoreExtension::Required { entry, local: true, .. } => text.push_str(&format!(
            "\n# A build on disk: reinstalled whenever it changes, never locked. To share it,\n# publish it (`silt extension publish`) and require it from the registry.\n[extensions.require]\n{entry}\n"
        )),
        DatastoreExtension::Required { entry, .. } => text.push_str(&format!(
            "\n# Installed and pinned in silt.lock by `silt extension install`.\n[extensions.require]\n{entry}\n"
        )),
        DatastoreExtension::Named(_) => {}
    }
    text
}
