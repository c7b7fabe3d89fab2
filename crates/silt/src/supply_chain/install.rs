//! Bringing the installed extensions in line with `[extensions.require]`
//! and `silt.lock`: a locked extension is fetched by its pinned digest and
//! must be exactly the locked bytes; an unlocked one is resolved (the
//! highest matching tag, the tag, the URL) and locked; a path is installed
//! whenever its bytes change and never locked.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Context as _;
use serde::Serialize;
use silt_registry::OciReference;

use super::lockfile::{Locked, Lockfile};
use super::requirement::{Requirement, Source};
use crate::runtime::{Catalog, ComponentInfo, Metadata};

/// What happened to one required extension.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    /// Its name.
    pub name: String,
    /// Its version now.
    pub version: String,
    /// The component's sha256 (hex).
    pub sha256: String,
    /// Where it came from (pinned, for a registry).
    pub source: String,
    /// What was done.
    pub action: Action,
    /// The version locked before, when `update` moved the lock.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous_version: Option<String>,
}

/// One line on what happened, e.g. `store 0.1.0 (sha256 197ea55cc49f): up to date`.
impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {} (sha256 {}): ",
            self.name,
            self.version,
            self.sha256.get(..12).unwrap_or(&self.sha256)
        )?;
        match self.action {
            Action::UpToDate => write!(f, "up to date"),
            Action::Installed => write!(f, "installed as silt.lock pins it"),
            Action::Locked => write!(f, "installed and locked from {}", self.source),
            Action::Updated => write!(
                f,
                "updated from {} and locked ({})",
                self.previous_version.as_deref().unwrap_or("?"),
                self.source
            ),
            Action::FromUser => write!(
                f,
                "installed into this project from your extensions in {}",
                self.source
            ),
            Action::Development => {
                write!(
                    f,
                    "installed from {} (development; not locked)",
                    self.source
                )
            }
        }
    }
}

/// What was done for one extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    /// Installed and locked as the lock says: nothing to do.
    UpToDate,
    /// Installed from its lock entry.
    Installed,
    /// Resolved for the first time, installed and locked.
    Locked,
    /// Resolved again (`update`), installed, and the lock moved.
    Updated,
    /// A `path` source (development) whose build changed: installed, not locked.
    Development,
    /// Not required by the project: copied in from the user's extensions.
    FromUser,
}

/// Which extensions to resolve again, ignoring their lock entries.
#[derive(Debug, Clone, Copy)]
pub enum Update<'a> {
    /// None: install what is locked, lock what is not.
    Nothing,
    /// Every required extension.
    All,
    /// These.
    Only(&'a [String]),
}

/// A locked component whose bytes are not the locked ones.
#[derive(Debug, thiserror::Error)]
#[error(
    "{name}: {source_text} now gives sha256 {actual}, but silt.lock pins {locked}: the published component changed; nothing was installed. If the change is intended, run `silt extension update {name}`"
)]
pub struct LockMismatch {
    /// The extension.
    pub name: String,
    /// Its source.
    pub source_text: String,
    /// The locked sha256.
    pub locked: String,
    /// What arrived.
    pub actual: String,
}

/// Installs `names` (every required extension when `None`) as the lock
/// says, resolving and locking what it does not cover (or what `update`
/// names), and writes `lock_path` when it changed.
///
/// # Errors
/// A source that cannot be fetched, bytes that differ from the lock
/// ([`LockMismatch`]), a component that is not a valid extension or whose
/// name is not the one required, or I/O errors.
pub async fn install(
    catalog: &Catalog,
    lock_path: &Path,
    requirements: &BTreeMap<String, Requirement>,
    names: Option<&[String]>,
    update: Update<'_>,
) -> anyhow::Result<Vec<Outcome>> {
    for name in names.unwrap_or_default() {
        if !requirements.contains_key(name) {
            anyhow::bail!(
                "`{}` is not in silt.toml's [extensions.require]; add it there first",
                crate::runtime::guest_text_limited(name, 80)
            );
        }
    }
    if let Update::Only(only) = update {
        for name in only {
            if !requirements.contains_key(name) {
                anyhow::bail!(
                    "`{}` is not in silt.toml's [extensions.require]",
                    crate::runtime::guest_text_limited(name, 80)
                );
            }
        }
    }
    let original = Lockfile::read(lock_path)?;
    let mut lock = original.clone();
    let mut outcomes = Vec::new();
    for (name, requirement) in requirements {
        if names.is_some_and(|names| !names.contains(name)) {
            continue;
        }
        let source = requirement
            .source()
            .map_err(|why| anyhow::anyhow!("silt.toml [extensions.require] {name}: {why}"))?;
        let outcome = install_one(catalog, &mut lock, name, &source, update).await?;
        outcomes.push(outcome);
    }
    if names.is_none() {
        // What silt.toml no longer requires (or requires by path) is no
        // longer locked.
        lock.extensions.retain(|entry| {
            requirements
                .get(&entry.name)
                .and_then(|r| r.source().ok())
                .is_some_and(|source| source.is_locked())
        });
    }
    if lock != original {
        lock.write(lock_path)?;
    }
    Ok(outcomes)
}

async fn install_one(
    catalog: &Catalog,
    lock: &mut Lockfile,
    name: &str,
    source: &Source,
    update: Update<'_>,
) -> anyhow::Result<Outcome> {
    let installed_sha = catalog.get(name).ok().map(|i| i.manifest.component.sha256);
    if let Source::Path(path) = source {
        let bytes = std::fs::read(path)
            .with_context(|| format!("{name}: cannot read {}", path.display()))?;
        let sha256 = crate::runtime::sha256_hex(&bytes);
        let metadata = check_component(name, &bytes, &path.display().to_string())?;
        let changed = installed_sha.as_deref() != Some(sha256.as_str());
        if changed {
            add(catalog, &bytes, path.display().to_string(), None)?;
        }
        return Ok(Outcome {
            name: name.to_owned(),
            version: metadata.version,
            sha256,
            source: path.display().to_string(),
            action: if changed {
                Action::Development
            } else {
                Action::UpToDate
            },
            previous_version: None,
        });
    }
    let (key, requirement) = source.lock_key();
    let resolve_again = match update {
        Update::Nothing => false,
        Update::All => true,
        Update::Only(only) => only.iter().any(|n| n == name),
    };
    let locked = lock
        .get(name)
        .filter(|entry| entry.source == key && entry.requirement == requirement)
        .cloned();
    if let Some(entry) = locked.as_ref().filter(|_| !resolve_again) {
        if installed_sha.as_deref() == Some(entry.sha256.as_str()) {
            return Ok(outcome(entry, Action::UpToDate, None));
        }
        let fetched = fetch_locked(entry).await?;
        let sha256 = crate::runtime::sha256_hex(&fetched.bytes);
        if sha256 != entry.sha256 {
            return Err(LockMismatch {
                name: name.to_owned(),
                source_text: fetched.added_from,
                locked: entry.sha256.clone(),
                actual: sha256,
            }
            .into());
        }
        check_component(name, &fetched.bytes, &fetched.added_from)?;
        add_fetched(catalog, fetched)?;
        return Ok(outcome(entry, Action::Installed, None));
    }
    let fetched = resolve(source).await?;
    let metadata = check_component(name, &fetched.bytes, &fetched.added_from)?;
    let entry = Locked {
        name: name.to_owned(),
        source: key,
        requirement,
        version: metadata.version.clone(),
        reference: fetched
            .manifest_digest
            .as_ref()
            .map(|_| fetched.added_from.clone()),
        manifest_digest: fetched.manifest_digest.clone(),
        sha256: crate::runtime::sha256_hex(&fetched.bytes),
        contract: metadata.api.clone(),
    };
    if installed_sha.as_deref() != Some(entry.sha256.as_str()) {
        add_fetched(catalog, fetched)?;
    }
    let previous = lock.get(name).cloned();
    lock.set(entry.clone());
    Ok(match previous {
        Some(previous) if previous.sha256 != entry.sha256 => {
            outcome(&entry, Action::Updated, Some(previous.version))
        }
        Some(_) => outcome(&entry, Action::UpToDate, None),
        None => outcome(&entry, Action::Locked, None),
    })
}

fn outcome(entry: &Locked, action: Action, previous_version: Option<String>) -> Outcome {
    Outcome {
        name: entry.name.clone(),
        version: entry.version.clone(),
        sha256: entry.sha256.clone(),
        source: entry
            .reference
            .clone()
            .unwrap_or_else(|| entry.source.clone()),
        action,
        previous_version,
    }
}

/// A component's bytes and where they came from.
struct Fetched {
    bytes: Vec<u8>,
    /// A pinned reference, a URL or a path.
    added_from: String,
    manifest_digest: Option<String>,
}

/// Fetches what `entry` pins: by manifest digest from a registry, or the
/// URL with the locked sha256.
async fn fetch_locked(entry: &Locked) -> anyhow::Result<Fetched> {
    match &entry.reference {
        Some(reference) => {
            let reference = OciReference::parse(reference)?;
            pull(&reference).await
        }
        None => {
            let bytes = silt_registry::download::fetch(&entry.source, Some(&entry.sha256))
                .await
                .map_err(|err| match err {
                    silt_registry::RegistryError::DigestMismatch { actual, .. } => {
                        anyhow::Error::new(LockMismatch {
                            name: entry.name.clone(),
                            source_text: entry.source.clone(),
                            locked: entry.sha256.clone(),
                            actual: actual.trim_start_matches("sha256:").to_owned(),
                        })
                    }
                    other => other.into(),
                })?;
            Ok(Fetched {
                bytes,
                added_from: entry.source.clone(),
                manifest_digest: None,
            })
        }
    }
}

/// Resolves `source` afresh.
async fn resolve(source: &Source) -> anyhow::Result<Fetched> {
    match source {
        Source::OciTag(reference) => pull(reference).await,
        Source::OciVersion {
            repository,
            version,
        } => {
            let tags = silt_registry::oci::list_tags(repository).await?;
            let best = tags
                .iter()
                .filter_map(|tag| {
                    let parsed = semver::Version::parse(tag.strip_prefix('v').unwrap_or(tag));
                    parsed.ok().map(|v| (v, tag))
                })
                .filter(|(v, _)| version.matches(v))
                .max_by(|a, b| a.0.cmp(&b.0));
            let Some((_, tag)) = best else {
                let mut shown: Vec<&str> = tags.iter().map(String::as_str).take(20).collect();
                shown.sort_unstable();
                anyhow::bail!(
                    "no tag of {repository} matches version {version} (tags: {}); publish one or change the requirement",
                    if shown.is_empty() {
                        "none".to_owned()
                    } else {
                        crate::runtime::guest_text_limited(&shown.join(", "), 300)
                    }
                );
            };
            let mut reference = repository.clone();
            reference.tag = Some(tag.clone());
            pull(&reference).await
        }
        Source::Url { url, sha256 } => Ok(Fetched {
            bytes: silt_registry::download::fetch(url, Some(sha256)).await?,
            added_from: url.clone(),
            manifest_digest: None,
        }),
        Source::Path(_) => unreachable!("a path is installed, never resolved"),
    }
}

async fn pull(reference: &OciReference) -> anyhow::Result<Fetched> {
    let pulled = silt_registry::oci::pull(reference).await?;
    Ok(Fetched {
        bytes: pulled.component,
        added_from: pulled.reference.to_string(),
        manifest_digest: Some(pulled.manifest_digest),
    })
}

/// Validates `bytes` as an extension called `name`.
fn check_component(name: &str, bytes: &[u8], shown: &str) -> anyhow::Result<Metadata> {
    let info = ComponentInfo::parse(bytes, Path::new(shown))?;
    let metadata = info.validate(Path::new(shown))?.clone();
    if metadata.name != name {
        anyhow::bail!(
            "silt.toml requires `{name}`, but {} is an extension called `{}`: fix the name in [extensions.require] or the source",
            crate::runtime::guest_text_limited(shown, 200),
            metadata.name
        );
    }
    Ok(metadata)
}

fn add_fetched(catalog: &Catalog, fetched: Fetched) -> anyhow::Result<()> {
    add(
        catalog,
        &fetched.bytes,
        fetched.added_from,
        fetched.manifest_digest,
    )
}

fn add(
    catalog: &Catalog,
    bytes: &[u8],
    added_from: String,
    manifest_digest: Option<String>,
) -> anyhow::Result<()> {
    let shown = added_from.clone();
    catalog.add_bytes(
        bytes,
        crate::runtime::Source {
            shown: Path::new(&shown),
            added_from,
            manifest_digest,
        },
        true,
    )?;
    Ok(())
}
