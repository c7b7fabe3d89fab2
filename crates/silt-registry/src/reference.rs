//! What a user may name as an extension's source: `oci://HOST/REPO:TAG`,
//! `oci://HOST/REPO@sha256:DIGEST`, or an `https://` URL (whose sha256 the
//! user must also give). Plain `http://` is for loopback only, as for S3.

use std::fmt;
use std::net::IpAddr;

use crate::RegistryError;

/// Scheme prefix of a registry reference.
pub const OCI_SCHEME: &str = "oci://";

/// A component in an OCI registry: `HOST[:PORT]/REPO[:TAG][@sha256:HEX]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OciReference {
    /// The registry, `HOST[:PORT]`, exactly as written.
    pub registry: String,
    /// The repository path inside it.
    pub repository: String,
    /// The tag, when one was written.
    pub tag: Option<String>,
    /// The manifest digest `sha256:HEX`, when one was written.
    pub digest: Option<String>,
}

impl OciReference {
    /// Parses `oci://HOST[:PORT]/REPO[:TAG][@sha256:HEX]` (the scheme may be
    /// left out). The registry host must be written out: there is no default
    /// registry a bare `name:tag` would silently go to.
    ///
    /// # Errors
    /// [`RegistryError::BadReference`] saying what is wrong.
    pub fn parse(text: &str) -> Result<Self, RegistryError> {
        let reference = Self::parse_any(text)?;
        if reference.tag.is_none() && reference.digest.is_none() {
            return Err(RegistryError::BadReference {
                reference: crate::error::server_text(text),
                why: "name a version: add :TAG or @sha256:DIGEST".to_owned(),
            });
        }
        Ok(reference)
    }

    /// Parses `oci://HOST[:PORT]/REPO`: a repository, no tag or digest.
    ///
    /// # Errors
    /// As [`OciReference::parse`], and a tag or digest given.
    pub fn parse_repository(text: &str) -> Result<Self, RegistryError> {
        let reference = Self::parse_any(text)?;
        if reference.tag.is_some() || reference.digest.is_some() {
            return Err(RegistryError::BadReference {
                reference: crate::error::server_text(text),
                why: "a repository takes no :TAG or @DIGEST here (the version requirement picks the tag)"
                    .to_owned(),
            });
        }
        Ok(reference)
    }

    fn parse_any(text: &str) -> Result<Self, RegistryError> {
        let bad = |why: &str| RegistryError::BadReference {
            reference: crate::error::server_text(text),
            why: why.to_owned(),
        };
        let rest = text.strip_prefix(OCI_SCHEME).unwrap_or(text);
        let (name, digest) = match rest.split_once('@') {
            Some((name, digest)) => (name, Some(digest)),
            None => (rest, None),
        };
        if let Some(digest) = digest {
            check_digest(digest).map_err(|why| bad(&why))?;
        }
        let no_host = || {
            bad(
                "the registry host must be written out: oci://HOST/REPOSITORY:TAG (e.g. ghcr.io/org/name:1.0 or 127.0.0.1:5000/name:1.0)",
            )
        };
        let (registry, path) = name.split_once('/').ok_or_else(no_host)?;
        if !(registry.contains('.') || registry.contains(':') || registry == "localhost") {
            return Err(no_host());
        }
        if registry.is_empty()
            || !registry
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-.:[]".contains(&b))
        {
            return Err(bad("the registry is not a host name or address"));
        }
        // A tag follows the last ':' after the last '/'.
        let (repository, tag) = match path.rsplit_once(':') {
            Some((repository, tag)) if !tag.contains('/') => (repository, Some(tag)),
            _ => (path, None),
        };
        let component_ok = |part: &str| {
            !part.is_empty()
                && part
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
        };
        if !repository.split('/').all(component_ok) {
            return Err(bad(
                "a repository is lowercase letters, digits, '.', '_', '-' between '/'",
            ));
        }
        if let Some(tag) = tag {
            let valid = !tag.is_empty()
                && tag.len() <= 128
                && tag
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
                && !tag.starts_with(['.', '-']);
            if !valid {
                return Err(bad("a tag is up to 128 letters, digits, '.', '_', '-'"));
            }
        }
        Ok(Self {
            registry: registry.to_owned(),
            repository: repository.to_owned(),
            tag: tag.map(str::to_owned),
            digest: digest.map(str::to_owned),
        })
    }

    /// The same component pinned to a manifest digest (`oci://…@sha256:…`).
    #[must_use]
    pub fn pinned(&self, digest: &str) -> Self {
        Self {
            digest: Some(digest.to_owned()),
            ..self.clone()
        }
    }

    /// Whether the registry is this machine, where plain HTTP is allowed.
    #[must_use]
    pub fn is_loopback(&self) -> bool {
        host_is_loopback(host_of(&self.registry))
    }

    /// The reference as oci-client takes it (no scheme).
    pub(crate) fn to_client(&self) -> Result<oci_client::Reference, RegistryError> {
        let text = self.to_string();
        text[OCI_SCHEME.len()..]
            .parse()
            .map_err(|err: oci_client::ParseError| RegistryError::BadReference {
                reference: text.clone(),
                why: err.to_string(),
            })
    }
}

impl fmt::Display for OciReference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{OCI_SCHEME}{}/{}", self.registry, self.repository)?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

/// `sha256:` and 64 lowercase hex digits.
pub(crate) fn check_digest(digest: &str) -> Result<(), String> {
    match digest.strip_prefix("sha256:") {
        Some(hex) if is_sha256_hex(hex) => Ok(()),
        _ => Err("a digest is sha256: and 64 lowercase hex digits".to_owned()),
    }
}

/// 64 lowercase hex digits.
#[must_use]
pub fn is_sha256_hex(hex: &str) -> bool {
    hex.len() == 64
        && hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// `HOST` of `HOST[:PORT]` (an IPv6 address keeps no brackets).
pub(crate) fn host_of(authority: &str) -> &str {
    if let Some(rest) = authority.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    authority.split(':').next().unwrap_or(authority)
}

/// `localhost` or a loopback address: this machine, reached without a network.
pub(crate) fn host_is_loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_tags_digests_and_ports() {
        let r = OciReference::parse("oci://127.0.0.1:5000/team/store:1.2.0").unwrap();
        assert_eq!(r.registry, "127.0.0.1:5000");
        assert_eq!(r.repository, "team/store");
        assert_eq!(r.tag.as_deref(), Some("1.2.0"));
        assert!(r.is_loopback());
        assert_eq!(r.to_string(), "oci://127.0.0.1:5000/team/store:1.2.0");

        let digest = format!("sha256:{}", "a".repeat(64));
        let r = OciReference::parse(&format!("ghcr.io/org/x@{digest}")).unwrap();
        assert_eq!(r.tag, None);
        assert_eq!(r.digest.as_deref(), Some(digest.as_str()));
        assert!(!r.is_loopback());
        let pinned = OciReference::parse("ghcr.io/org/x:1")
            .unwrap()
            .pinned(&digest);
        assert_eq!(
            pinned.to_string(),
            format!("oci://ghcr.io/org/x:1@{digest}")
        );
    }

    #[test]
    fn refuses_what_would_go_somewhere_unexpected() {
        for bad in [
            "oci://store:1.0",                  // no registry host
            "oci://ghcr.io/org/store",          // no version
            "oci://ghcr.io/Org/store:1",        // uppercase repository
            "oci://ghcr.io/org/store:-x",       // bad tag
            "oci://ghcr.io/org/store@sha256:z", // bad digest
            "oci://gh\u{1b}cr.io/org/store:1",  // control byte in the host
            "oci:///org/store:1",
        ] {
            assert!(OciReference::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn loopback_hosts() {
        for host in ["localhost", "127.0.0.1", "127.3.2.1", "::1"] {
            assert!(host_is_loopback(host), "{host}");
        }
        for host in ["10.0.0.1", "localhost.example.com", "example.com"] {
            assert!(!host_is_loopback(host), "{host}");
        }
        assert_eq!(host_of("[::1]:5000"), "::1");
        assert_eq!(host_of("127.0.0.1:5000"), "127.0.0.1");
    }
}
