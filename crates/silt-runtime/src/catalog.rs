//! Installed extensions: one directory each, holding the component and a
//! manifest written at install time.
//!
//! ```text
//! <extensions dir>/
//!   hello-extension/
//!     component.wasm     the component, byte for byte as added
//!     manifest.toml      its metadata + sha256, size, origin
//! ```
//!
//! Discovery reads manifests only: listing 100 extensions parses 100 small
//! TOML files and never opens a component, let alone compiles one. The
//! manifest is derived from the component's own `silt-extension` section
//! when it is added, so the two cannot disagree unless the directory is
//! edited by hand — and execution checks the sha256 before trusting it.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::inspect::{ComponentInfo, InvalidExtension};
use super::metadata::Metadata;

/// File name of the component inside an extension's directory.
pub const COMPONENT_FILE: &str = "component.wasm";
/// File name of the manifest inside an extension's directory.
pub const MANIFEST_FILE: &str = "manifest.toml";

/// What `manifest.toml` holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// The extension's own metadata, copied from its `silt-extension` section.
    pub metadata: Metadata,
    /// Facts about the installed file.
    pub component: ComponentRecord,
}

/// Facts about an installed component file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ComponentRecord {
    /// Lowercase hex sha256 of `component.wasm`.
    pub sha256: String,
    /// Its size in bytes.
    pub size: u64,
    /// Where it was added from: an absolute path, a URL, or an OCI
    /// reference pinned to its manifest digest (`oci://…@sha256:…`).
    pub added_from: String,
    /// The OCI manifest digest (`sha256:…`) it was pulled through, when it
    /// came from a registry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manifest_digest: Option<String>,
    /// When it was added, seconds since the Unix epoch.
    pub added_at: u64,
}

impl ComponentRecord {
    /// The first 12 hex digits of the digest (checked when the manifest is read).
    pub fn short_sha256(&self) -> &str {
        self.sha256.get(..12).unwrap_or(&self.sha256)
    }
}

impl Manifest {
    /// Parses and checks `manifest.toml` (written by silt, but a file anyone
    /// with access to the directory can edit): the metadata as strictly as
    /// the component's own section, the digest as 64 hex digits.
    ///
    /// # Errors
    /// What is wrong, in words (guest text escaped).
    pub fn parse(text: &str) -> Result<Self, String> {
        let manifest: Manifest =
            toml::from_str(text).map_err(|err| super::guest_text(err.message()))?;
        if !super::metadata::is_valid_name(&manifest.metadata.name) {
            return Err(format!(
                "extension name `{}` is not valid",
                super::guest_text_limited(&manifest.metadata.name, 80)
            ));
        }
        let sha256 = &manifest.component.sha256;
        if sha256.len() != 64 || !sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err("component.sha256 is not 64 hex digits".to_owned());
        }
        Ok(manifest)
    }
}

/// Where bytes being installed came from.
#[derive(Debug, Clone)]
pub struct Source<'a> {
    /// How errors name it (a path, or a reference shown as one).
    pub shown: &'a Path,
    /// What the manifest records as `added_from`.
    pub added_from: String,
    /// The OCI manifest digest, for a component from a registry.
    pub manifest_digest: Option<String>,
}

/// An installed extension.
#[derive(Debug, Clone, Serialize)]
pub struct Installed {
    /// Its directory.
    pub dir: PathBuf,
    /// Its manifest.
    pub manifest: Manifest,
}

impl Installed {
    /// The extension's name.
    pub fn name(&self) -> &str {
        &self.manifest.metadata.name
    }

    /// Path of its component file.
    pub fn component_path(&self) -> PathBuf {
        self.dir.join(COMPONENT_FILE)
    }
}

/// One row of a listing: an extension, or a directory that is not one.
// A listing holds one row per installed extension (tens, not millions):
// boxing the common variant would buy nothing measurable.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum Listed {
    /// A usable installed extension.
    Ok(Installed),
    /// A directory whose manifest is missing or unreadable.
    Broken {
        /// The directory.
        dir: PathBuf,
        /// What is wrong, and what to do.
        problem: String,
    },
}

/// Why a catalog operation failed.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    /// The component is not a valid extension.
    #[error(transparent)]
    Invalid(#[from] InvalidExtension),
    /// No extension of that name.
    #[error("no extension named `{name}` is installed (see `silt extension list`)")]
    NotInstalled {
        /// The name.
        name: String,
    },
    /// Adding would replace an installed extension.
    #[error(
        "an extension named `{name}` is already installed (version {version}); pass --force to replace it"
    )]
    AlreadyInstalled {
        /// The name.
        name: String,
        /// The installed version.
        version: String,
    },
    /// A manifest is unreadable.
    #[error("the manifest {} is damaged: {detail}; remove the extension and add it again", path.display())]
    BadManifest {
        /// The manifest.
        path: PathBuf,
        /// What is wrong.
        detail: String,
    },
    /// Filesystem trouble.
    #[error("{action} {}: {cause}", path.display())]
    Io {
        /// What was being done.
        action: &'static str,
        /// Where.
        path: PathBuf,
        /// Why it failed.
        cause: std::io::Error,
    },
}

fn io<'a>(
    action: &'static str,
    path: &'a Path,
) -> impl FnOnce(std::io::Error) -> CatalogError + 'a {
    move |cause| CatalogError::Io {
        action,
        path: path.to_owned(),
        cause,
    }
}

/// The directory of installed extensions.
#[derive(Debug, Clone)]
pub struct Catalog {
    dir: PathBuf,
}

impl Catalog {
    /// A catalog in `dir` (created on first add).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    /// The catalog directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Every installed extension, by name; reads manifests only.
    ///
    /// # Errors
    /// When the directory exists but cannot be read.
    pub fn list(&self) -> Result<Vec<Listed>, CatalogError> {
        let read_dir = match std::fs::read_dir(&self.dir) {
            Ok(read_dir) => read_dir,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(err) => return Err(io("cannot read", &self.dir)(err)),
        };
        let mut listed = Vec::new();
        for item in read_dir {
            let item = item.map_err(io("cannot read", &self.dir))?;
            let name = item.file_name();
            let name = name.to_string_lossy();
            // Work directories of an add or remove in progress start with a dot.
            if name.starts_with('.') || !item.file_type().is_ok_and(|t| t.is_dir()) {
                continue;
            }
            listed.push(match read_manifest(&item.path()) {
                Ok(installed) => Listed::Ok(installed),
                Err(err) => Listed::Broken {
                    dir: item.path(),
                    problem: err.to_string(),
                },
            });
        }
        listed.sort_by(|a, b| listed_key(a).cmp(listed_key(b)));
        Ok(listed)
    }

    /// The installed extension called `name`.
    ///
    /// # Errors
    /// [`CatalogError::NotInstalled`], or a damaged manifest.
    pub fn get(&self, name: &str) -> Result<Installed, CatalogError> {
        let dir = self.dir.join(name);
        if !super::metadata::is_valid_name(name) || !dir.join(MANIFEST_FILE).exists() {
            return Err(CatalogError::NotInstalled {
                name: name.to_owned(),
            });
        }
        read_manifest(&dir)
    }

    /// Validates the component at `path` and installs it under the name its
    /// metadata gives. The install is atomic: a reader sees the old
    /// extension or the new one, never a half-copied one.
    ///
    /// # Errors
    /// [`CatalogError::Invalid`] naming what is wrong with the component,
    /// [`CatalogError::AlreadyInstalled`] for other bytes under an installed
    /// name unless `force` (the same bytes again are installed already:
    /// `Ok`), or I/O errors.
    pub fn add(&self, path: &Path, force: bool) -> Result<Installed, CatalogError> {
        let bytes = std::fs::read(path).map_err(|cause| InvalidExtension::Read {
            path: path.to_owned(),
            cause,
        })?;
        let from = std::path::absolute(path).unwrap_or_else(|_| path.to_owned());
        let source = Source {
            shown: path,
            added_from: from.to_string_lossy().into_owned(),
            manifest_digest: None,
        };
        self.add_bytes(&bytes, source, force)
    }

    /// Validates `bytes` (fetched from `source`) and installs them, as
    /// [`Catalog::add`] does a file.
    ///
    /// # Errors
    /// As [`Catalog::add`].
    pub fn add_bytes(
        &self,
        bytes: &[u8],
        source: Source<'_>,
        force: bool,
    ) -> Result<Installed, CatalogError> {
        let path = source.shown;
        let info = ComponentInfo::parse(bytes, path)?;
        let metadata = info.validate(path)?.clone();
        let name = metadata.name.clone();
        let final_dir = self.dir.join(&name);
        if let Ok(existing) = self.get(&name) {
            // The same bytes again: already done, nothing to replace.
            if existing.manifest.component.sha256 == info.sha256 {
                return Ok(existing);
            }
            if !force {
                return Err(CatalogError::AlreadyInstalled {
                    name,
                    version: existing.manifest.metadata.version,
                });
            }
        }

        std::fs::create_dir_all(&self.dir).map_err(io("cannot create", &self.dir))?;
        let work = self.dir.join(format!(".add-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&work);
        std::fs::create_dir(&work).map_err(io("cannot create", &work))?;
        let manifest = Manifest {
            metadata,
            component: ComponentRecord {
                sha256: info.sha256,
                size: info.size,
                added_from: source.added_from,
                manifest_digest: source.manifest_digest,
                added_at: std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs()),
            },
        };
        let result = (|| {
            let component = work.join(COMPONENT_FILE);
            std::fs::write(&component, bytes).map_err(io("cannot write", &component))?;
            let text = toml::to_string(&manifest).expect("manifest serializes");
            let manifest_path = work.join(MANIFEST_FILE);
            std::fs::write(&manifest_path, text).map_err(io("cannot write", &manifest_path))?;
            if final_dir.exists() {
                // Move the old one aside first: rename cannot replace a
                // non-empty directory.
                let trash = self
                    .dir
                    .join(format!(".remove-{name}-{}", std::process::id()));
                let _ = std::fs::remove_dir_all(&trash);
                std::fs::rename(&final_dir, &trash).map_err(io("cannot replace", &final_dir))?;
                let _ = std::fs::remove_dir_all(&trash);
            }
            std::fs::rename(&work, &final_dir).map_err(io("cannot install into", &final_dir))
        })();
        if result.is_err() {
            let _ = std::fs::remove_dir_all(&work);
        }
        result?;
        Ok(Installed {
            dir: final_dir,
            manifest,
        })
    }

    /// Removes the extension called `name`.
    ///
    /// # Errors
    /// [`CatalogError::NotInstalled`] or I/O errors.
    pub fn remove(&self, name: &str) -> Result<Installed, CatalogError> {
        let installed = self.get(name)?;
        let trash = self
            .dir
            .join(format!(".remove-{name}-{}", std::process::id()));
        std::fs::rename(&installed.dir, &trash).map_err(io("cannot remove", &installed.dir))?;
        std::fs::remove_dir_all(&trash).map_err(io("cannot remove", &trash))?;
        Ok(installed)
    }
}

fn listed_key(listed: &Listed) -> &Path {
    match listed {
        Listed::Ok(installed) => &installed.dir,
        Listed::Broken { dir, .. } => dir,
    }
}

fn read_manifest(dir: &Path) -> Result<Installed, CatalogError> {
    let path = dir.join(MANIFEST_FILE);
    let text = std::fs::read_to_string(&path).map_err(|err| CatalogError::BadManifest {
        path: path.clone(),
        detail: err.to_string(),
    })?;
    let manifest = Manifest::parse(&text).map_err(|detail| CatalogError::BadManifest {
        path: path.clone(),
        detail,
    })?;
    Ok(Installed {
        dir: dir.to_owned(),
        manifest,
    })
}
