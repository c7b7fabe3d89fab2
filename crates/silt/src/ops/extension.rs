//! `silt extension inspect|add|publish|verify`: a component read without
//! compiling it, installed from a file, a URL or an OCI registry (pinned by
//! digest when asked), published to a registry, or loaded and asked to
//! describe itself (what it says must match its metadata).

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use serde::Serialize;
use silt_registry::{ComponentDescription, OciReference, RegistryError, reference::OCI_SCHEME};

use super::session::block_on;
use crate::exit::MetadataMismatch;
use crate::locations::Locations;
use crate::runtime::bindings::Description;
use crate::runtime::metadata::{description_differences, feature_names};
use crate::runtime::{
    ArtifactCache, Catalog, ComponentInfo, Grants, Installed, Metadata, Origin, Runtime, Source,
};

/// `NAME` of an installed extension or a path to a component file.
pub enum Target {
    /// An installed extension.
    Installed(Box<Installed>),
    /// A component file.
    File(PathBuf),
}

/// What `name_or_path` names: a path (it has a `/` or ends in `.wasm`),
/// else an installed extension, else a file of that name here.
///
/// # Errors
/// Neither an installed extension nor a file.
pub fn resolve(catalog: &Catalog, name_or_path: &str) -> anyhow::Result<Target> {
    let looks_like_path = name_or_path.contains('/') || name_or_path.ends_with(".wasm");
    if looks_like_path {
        return Ok(Target::File(PathBuf::from(name_or_path)));
    }
    // An installed name wins; a file of that name in the current directory
    // is the fallback.
    match catalog.get(name_or_path) {
        Ok(installed) => Ok(Target::Installed(Box::new(installed))),
        Err(_) if Path::new(name_or_path).is_file() => {
            Ok(Target::File(PathBuf::from(name_or_path)))
        }
        Err(err) => Err(err.into()),
    }
}

/// A component as read without compiling it.
#[derive(Debug, Serialize)]
pub struct InspectReport {
    /// The component file.
    pub path: PathBuf,
    /// Where it is installed, if it is.
    pub installed_dir: Option<PathBuf>,
    /// True when this silt would run it.
    pub valid: bool,
    /// Why not, when it would not.
    pub problem: Option<String>,
    /// Its embedded metadata, if it has any.
    pub metadata: Option<Metadata>,
    /// The file's sha256.
    pub sha256: String,
    /// Its size.
    pub size: u64,
    /// The interfaces it imports.
    pub imports: Vec<String>,
    /// The interfaces it exports.
    pub exports: Vec<String>,
}

/// Reads the component `name_or_path` names, without compiling it.
///
/// # Errors
/// No such extension or file, or a file that is not a component.
pub fn inspect(catalog: &Catalog, name_or_path: &str) -> anyhow::Result<InspectReport> {
    let (path, installed_dir) = match resolve(catalog, name_or_path)? {
        Target::Installed(installed) => (installed.component_path(), Some(installed.dir)),
        Target::File(path) => (path, None),
    };
    let info = ComponentInfo::read(&path)?;
    let validation = info
        .validate(&path)
        .map(|_| ())
        .map_err(|err| err.to_string());
    Ok(InspectReport {
        path,
        installed_dir,
        valid: validation.is_ok(),
        problem: validation.err(),
        metadata: info.metadata.clone(),
        sha256: info.sha256,
        size: info.size,
        imports: info.imports,
        exports: info.exports,
    })
}

/// Removes the installed extension `name`. The extension the project's
/// datastore runs on is removed only with `force`: the next command on the
/// datastore would fail without it.
///
/// # Errors
/// No such extension, or the project's datastore extension without `force`.
pub fn remove(
    locations: &Locations,
    catalog: &Catalog,
    name: &str,
    force: bool,
) -> anyhow::Result<crate::runtime::Installed> {
    if !force
        && let Some(config_file) = &locations.config_file
        && locations.config.datastore.extension == name
        && catalog.get(name).is_ok()
    {
        return Err(crate::exit::UsageError(format!(
            "`{name}` is the datastore extension of {} ([datastore] extension): without it every command on the datastore fails. Remove it anyway with --force",
            config_file.display()
        ))
        .into());
    }
    Ok(catalog.remove(name)?)
}

/// Installs the component at `source`: an `oci://` reference, an
/// `https://` URL, or a file; checked against `sha256` when given.
///
/// # Errors
/// A source that cannot be fetched or read, a digest that differs, an
/// invalid component, or one already installed (unless `force`).
pub fn add(
    catalog: &Catalog,
    source: &Path,
    sha256: Option<&str>,
    force: bool,
) -> anyhow::Result<Installed> {
    let text = source.to_string_lossy();
    if text.starts_with(OCI_SCHEME) {
        let reference = OciReference::parse(&text)?;
        let pulled = block_on(silt_registry::oci::pull(&reference))??;
        let digest = silt_registry::sha256_digest(&pulled.component);
        check_sha256(sha256, &digest, &reference.to_string())?;
        let added_from = pulled.reference.to_string();
        Ok(catalog.add_bytes(
            &pulled.component,
            Source {
                shown: Path::new(&added_from),
                added_from: added_from.clone(),
                manifest_digest: Some(pulled.manifest_digest),
            },
            force,
        )?)
    } else if text.starts_with("https://") || text.starts_with("http://") {
        let bytes = block_on(silt_registry::download::fetch(&text, sha256))??;
        Ok(catalog.add_bytes(
            &bytes,
            Source {
                shown: source,
                added_from: text.into_owned(),
                manifest_digest: None,
            },
            force,
        )?)
    } else {
        if let Some(expected) = sha256 {
            let bytes = std::fs::read(source)
                .with_context(|| format!("cannot read {}", source.display()))?;
            check_sha256(Some(expected), &silt_registry::sha256_digest(&bytes), &text)?;
        }
        Ok(catalog.add(source, force)?)
    }
}

/// `--sha256 HEX` against the digest (`sha256:…`) of what arrived.
fn check_sha256(expected: Option<&str>, digest: &str, what: &str) -> anyhow::Result<()> {
    let Some(expected) = expected else {
        return Ok(());
    };
    let expected = expected.strip_prefix("sha256:").unwrap_or(expected);
    if digest.strip_prefix("sha256:") != Some(expected) {
        return Err(RegistryError::DigestMismatch {
            what: crate::runtime::guest_text(what),
            expected: format!("sha256:{}", crate::runtime::guest_text(expected)),
            actual: digest.to_owned(),
        }
        .into());
    }
    Ok(())
}

/// A component published.
#[derive(Debug, Serialize)]
pub struct PublishReport {
    /// The reference it was published to, as given (normalised).
    #[serde(skip)]
    pub to: String,
    /// Its name.
    pub name: String,
    /// Its version.
    pub version: String,
    /// Where it now is, pinned to the manifest the registry stored.
    pub reference: String,
    /// That manifest's digest.
    pub manifest_digest: String,
    /// The component's sha256.
    pub component_sha256: String,
    /// Its size.
    pub size: u64,
}

/// Publishes the component at `path` to `reference` (an `oci://` one).
///
/// # Errors
/// A bad reference, an unreadable or invalid component, or a registry that
/// refuses it.
pub fn publish(path: &Path, reference: &str) -> anyhow::Result<PublishReport> {
    let reference = OciReference::parse(reference)?;
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let info = ComponentInfo::parse(&bytes, path)?;
    let metadata = info.validate(path)?.clone();
    let about = ComponentDescription {
        name: metadata.name.clone(),
        version: metadata.version.clone(),
        description: metadata.description.clone(),
        imports: info.imports.clone(),
        exports: info.exports.clone(),
        target: Some(metadata.api.clone()),
    };
    let published = block_on(silt_registry::oci::publish(&reference, &bytes, &about))??;
    Ok(PublishReport {
        to: reference.to_string(),
        name: metadata.name,
        version: metadata.version,
        reference: published.reference.to_string(),
        manifest_digest: published.manifest_digest,
        component_sha256: info.sha256,
        size: info.size,
    })
}

/// An extension loaded and described.
#[derive(Debug, Serialize)]
pub struct VerifyReport {
    /// The name it describes itself with.
    pub name: String,
    /// Its version.
    pub version: String,
    /// Its features.
    pub features: Vec<&'static str>,
    /// Compiled now or loaded from the artifact cache.
    pub origin: Origin,
}

/// Loads the component `name_or_path` names (validating the bytes on disk
/// now, never a fingerprint memo), instantiates it, and checks that what
/// `describe` says matches its metadata.
///
/// # Errors
/// No such extension or file, a component that does not load, or a
/// description that differs from the metadata ([`MetadataMismatch`]).
pub fn verify(
    locations: &Locations,
    catalog: &Catalog,
    name_or_path: &str,
) -> anyhow::Result<VerifyReport> {
    let path = match resolve(catalog, name_or_path)? {
        Target::Installed(installed) => installed.component_path(),
        Target::File(path) => path,
    };
    let config = &locations.config;
    let cache = ArtifactCache::new(&locations.cache_dir, config.cache.max_size_mib << 20);
    let runtime = Runtime::new(config.runtime.clone(), cache);
    let (loaded, description) = block_on(async {
        let loaded = runtime.load_revalidated(&path).await?;
        let mut instance = runtime.instantiate(&loaded, Grants::default()).await?;
        let description = instance.call_describe().await?;
        anyhow::Ok((loaded, description))
    })??;
    check_description(&loaded.metadata, &description)?;
    Ok(VerifyReport {
        name: description.name,
        version: description.version,
        features: feature_names(description.features),
        origin: loaded.origin.clone(),
    })
}

fn check_description(
    metadata: &Metadata,
    description: &Description,
) -> Result<(), MetadataMismatch> {
    let differences = description_differences(metadata, description);
    if differences.is_empty() {
        Ok(())
    } else {
        Err(MetadataMismatch {
            name: metadata.name.clone(),
            detail: format!("{} (metadata vs describe)", differences.join("; ")),
        })
    }
}
