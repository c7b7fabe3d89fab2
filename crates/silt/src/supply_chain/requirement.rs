//! `[extensions.require]` in `silt.toml`: the extensions a project needs,
//! each by where it comes from and which versions will do.
//!
//! ```toml
//! [extensions.require]
//! # From a registry: the highest tag matching a semver requirement...
//! partitioned-datastore = { oci = "ghcr.io/team/partitioned", version = "^0.1" }
//! # ...or one tag.
//! audit-store = { oci = "ghcr.io/team/audit:2.0.1" }
//! # From a URL: pinned by its sha256 here already.
//! hello = { url = "https://example.com/hello.wasm", sha256 = "9f2c…" }
//! # During development: a build on disk, re-installed whenever it changes.
//! my-store = { path = "../my-store/target/wasm32-wasip2/release/my_store.wasm" }
//! ```

use std::path::PathBuf;

use serde::Deserialize;
use silt_registry::OciReference;

/// One entry of `[extensions.require]`, as written.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Requirement {
    /// `HOST/REPOSITORY` (with `version`) or `HOST/REPOSITORY:TAG`; the
    /// `oci://` prefix is optional.
    pub oci: Option<String>,
    /// A semver requirement over the repository's tags (`^0.1`, `=1.2.0`).
    pub version: Option<String>,
    /// An `https://` URL of the component.
    pub url: Option<String>,
    /// The component's sha256 (hex): required with `url`.
    pub sha256: Option<String>,
    /// A component file, for development: never locked.
    pub path: Option<PathBuf>,
}

/// Where a requirement's component comes from, checked.
#[derive(Debug, Clone)]
pub enum Source {
    /// One tag of a repository.
    OciTag(OciReference),
    /// The highest tag of `repository` that `version` matches.
    OciVersion {
        /// The repository (its reference carries no tag).
        repository: OciReference,
        /// The requirement.
        version: semver::VersionReq,
    },
    /// A URL, pinned by sha256 (hex).
    Url {
        /// The URL.
        url: String,
        /// The sha256 the project expects.
        sha256: String,
    },
    /// A file on disk (development).
    Path(PathBuf),
}

impl Requirement {
    /// The source this entry names, or what is wrong with it.
    ///
    /// # Errors
    /// Not exactly one of `oci`, `url`, `path`; `version` or `sha256` where
    /// they do not belong or missing where they do; a bad reference.
    pub fn source(&self) -> Result<Source, String> {
        match (&self.oci, &self.url, &self.path) {
            (Some(oci), None, None) => {
                if self.sha256.is_some() {
                    return Err(
                        "`sha256` goes with `url`; an oci source is pinned in silt.lock".into(),
                    );
                }
                match &self.version {
                    Some(version) => {
                        let version = semver::VersionReq::parse(version)
                            .map_err(|err| format!("version = {version:?}: {err}"))?;
                        let repository =
                            OciReference::parse_repository(oci).map_err(|err| err.to_string())?;
                        Ok(Source::OciVersion {
                            repository,
                            version,
                        })
                    }
                    None => {
                        let no_tag = || {
                            format!(
                                "oci = {oci:?}: name a tag (REPOSITORY:TAG) or give `version`; digests are silt.lock's"
                            )
                        };
                        if OciReference::parse_repository(oci).is_ok() {
                            return Err(no_tag());
                        }
                        let reference = OciReference::parse(oci).map_err(|err| err.to_string())?;
                        if reference.digest.is_some() || reference.tag.is_none() {
                            return Err(no_tag());
                        }
                        Ok(Source::OciTag(reference))
                    }
                }
            }
            (None, Some(url), None) => {
                if self.version.is_some() {
                    return Err("`version` goes with `oci`".into());
                }
                let sha256 = self.sha256.as_deref().ok_or_else(|| {
                    format!("url = {url:?} needs `sha256`, the component's digest as its publisher gives it")
                })?;
                let sha256 = sha256.strip_prefix("sha256:").unwrap_or(sha256);
                if !silt_registry::reference::is_sha256_hex(sha256) {
                    return Err("sha256 must be 64 lowercase hex digits".into());
                }
                if !(url.starts_with("https://") || url.starts_with("http://")) {
                    return Err(format!("url = {url:?} is not an http(s) URL"));
                }
                Ok(Source::Url {
                    url: url.clone(),
                    sha256: sha256.to_owned(),
                })
            }
            (None, None, Some(path)) => {
                if self.version.is_some() || self.sha256.is_some() {
                    return Err("a `path` source takes neither `version` nor `sha256`".into());
                }
                Ok(Source::Path(path.clone()))
            }
            _ => Err("give exactly one of `oci`, `url` or `path`".into()),
        }
    }
}

impl Source {
    /// What `silt.lock` records as this entry's source: when it changes in
    /// `silt.toml`, the lock entry no longer applies.
    #[must_use]
    pub fn lock_key(&self) -> (String, Option<String>) {
        match self {
            Source::OciTag(reference) => (reference.to_string(), None),
            Source::OciVersion {
                repository,
                version,
            } => (repository.to_string(), Some(version.to_string())),
            Source::Url { url, sha256 } => (url.clone(), Some(format!("sha256:{sha256}"))),
            Source::Path(path) => (path.display().to_string(), None),
        }
    }

    /// Whether this source is locked (a path is not: it is a build in
    /// progress).
    #[must_use]
    pub fn is_locked(&self) -> bool {
        !matches!(self, Source::Path(_))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn requirement(text: &str) -> Requirement {
        toml::from_str(text).unwrap()
    }

    #[test]
    fn each_kind_of_source() {
        let source = requirement(
            r#"oci = "127.0.0.1:5000/team/store"
version = "^0.1""#,
        )
        .source()
        .unwrap();
        assert_eq!(
            source.lock_key(),
            (
                "oci://127.0.0.1:5000/team/store".into(),
                Some("^0.1".into())
            )
        );
        let source = requirement(r#"oci = "oci://ghcr.io/team/store:2.0.1""#)
            .source()
            .unwrap();
        assert!(matches!(source, Source::OciTag(_)));
        let sha = "a".repeat(64);
        let source = requirement(&format!(
            "url = \"https://x.io/s.wasm\"\nsha256 = \"{sha}\""
        ))
        .source()
        .unwrap();
        assert!(source.is_locked());
        assert!(
            !requirement("path = \"s.wasm\"")
                .source()
                .unwrap()
                .is_locked()
        );
    }

    #[test]
    fn mistakes_are_named() {
        for (text, says) in [
            ("", "exactly one of"),
            ("oci = \"ghcr.io/a/b\"\npath = \"x\"", "exactly one of"),
            ("oci = \"ghcr.io/a/b\"", "name a tag"),
            (
                "oci = \"ghcr.io/a/b\"\nversion = \"not a req\"",
                "version =",
            ),
            ("url = \"https://x.io/s.wasm\"", "needs `sha256`"),
            (
                "url = \"ftp://x.io/s.wasm\"\nsha256 = \"00\"",
                "64 lowercase hex",
            ),
            ("path = \"x\"\nversion = \"1\"", "neither"),
        ] {
            let err = requirement(text).source().unwrap_err();
            assert!(err.contains(says), "{text:?}: {err}");
        }
    }
}
