//! `silt.lock`: the exact component each required extension resolved to,
//! so that every clone installs the same bytes. Written by silt (`silt
//! extension install` the first time, `silt extension update` when asked);
//! committed beside `silt.toml`; never edited by hand.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The lockfile's name, beside `silt.toml`.
pub const LOCK_FILE_NAME: &str = "silt.lock";
/// The format written (and the only one read).
const FORMAT: u32 = 1;

/// The whole file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Lockfile {
    /// The format, 1.
    pub version: u32,
    /// One entry per locked extension, by name.
    #[serde(default, rename = "extension")]
    pub extensions: Vec<Locked>,
}

/// What one extension is locked to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Locked {
    /// The name it is required (and installed) under.
    pub name: String,
    /// The source as `silt.toml` wrote it (a repository, tag or URL).
    pub source: String,
    /// The version requirement (or, for a URL, the required digest) it was
    /// resolved under.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requirement: Option<String>,
    /// The extension's own version.
    pub version: String,
    /// For a registry: the reference pinned to its manifest digest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
    /// For a registry: the manifest digest (`sha256:…`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manifest_digest: Option<String>,
    /// The component's sha256 (hex): what is installed must be exactly this.
    pub sha256: String,
    /// The contract it speaks, e.g. `silt:datastore@0.7.4`.
    pub contract: String,
}

/// A lockfile that cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("{}: {detail}; restore it from version control, or run `silt extension update` to lock again", path.display())]
pub struct LockfileError {
    /// The file.
    pub path: PathBuf,
    /// What is wrong.
    pub detail: String,
}

impl Lockfile {
    /// Reads `path`; an absent file is an empty lock.
    ///
    /// # Errors
    /// A file that cannot be read, is not this format, or holds a digest
    /// that is not one.
    pub fn read(path: &Path) -> Result<Self, LockfileError> {
        let fail = |detail: String| LockfileError {
            path: path.to_owned(),
            detail,
        };
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Self {
                    version: FORMAT,
                    extensions: Vec::new(),
                });
            }
            Err(err) => return Err(fail(err.to_string())),
        };
        let lock: Lockfile = toml::from_str(&text)
            .map_err(|err| fail(crate::runtime::guest_text(err.to_string().trim_end())))?;
        if lock.version != FORMAT {
            return Err(fail(format!(
                "format {} is not the {FORMAT} this silt reads (a newer silt wrote it?)",
                lock.version
            )));
        }
        for entry in &lock.extensions {
            let name = crate::runtime::guest_text_limited(&entry.name, 80);
            if !silt_registry::reference::is_sha256_hex(&entry.sha256) {
                return Err(fail(format!(
                    "{name}: sha256 is not 64 lowercase hex digits"
                )));
            }
            if let Some(digest) = &entry.manifest_digest
                && !digest
                    .strip_prefix("sha256:")
                    .is_some_and(silt_registry::reference::is_sha256_hex)
            {
                return Err(fail(format!("{name}: manifest_digest is not sha256:HEX")));
            }
            if lock
                .extensions
                .iter()
                .filter(|e| e.name == entry.name)
                .count()
                > 1
            {
                return Err(fail(format!("{name} is locked twice")));
            }
        }
        Ok(lock)
    }

    /// Writes the lock to `path` atomically (a reader sees the old file or
    /// the new one), entries sorted by name.
    ///
    /// # Errors
    /// I/O errors.
    pub fn write(&mut self, path: &Path) -> anyhow::Result<()> {
        self.extensions.sort_by(|a, b| a.name.cmp(&b.name));
        let body = toml::to_string(self).expect("the lock serializes");
        let text = format!(
            "# silt.lock: the exact extension components this project uses.\n\
             # Written by `silt extension install` and `silt extension update`;\n\
             # commit it beside silt.toml and do not edit it.\n\n{body}"
        );
        let temporary = path.with_extension(format!("lock.tmp.{}", std::process::id()));
        std::fs::write(&temporary, text)
            .map_err(|err| anyhow::anyhow!("cannot write {}: {err}", temporary.display()))?;
        std::fs::rename(&temporary, path).map_err(|err| {
            let _ = std::fs::remove_file(&temporary);
            anyhow::anyhow!("cannot write {}: {err}", path.display())
        })
    }

    /// The entry for `name`.
    #[must_use]
    pub fn get(&self, name: &str) -> Option<&Locked> {
        self.extensions.iter().find(|entry| entry.name == name)
    }

    /// Puts `entry` in place of any entry of its name.
    pub fn set(&mut self, entry: Locked) {
        self.extensions.retain(|e| e.name != entry.name);
        self.extensions.push(entry);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(name: &str) -> Locked {
        Locked {
            name: name.to_owned(),
            source: "oci://127.0.0.1:5000/team/store".to_owned(),
            requirement: Some("^0.1".to_owned()),
            version: "0.1.2".to_owned(),
            reference: Some(format!(
                "oci://127.0.0.1:5000/team/store:0.1.2@sha256:{}",
                "b".repeat(64)
            )),
            manifest_digest: Some(format!("sha256:{}", "b".repeat(64))),
            sha256: "a".repeat(64),
            contract: "silt:datastore@0.7.4".to_owned(),
        }
    }

    #[test]
    fn round_trips_sorted_and_replaces_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(LOCK_FILE_NAME);
        assert!(Lockfile::read(&path).unwrap().extensions.is_empty());
        let mut lock = Lockfile::read(&path).unwrap();
        lock.set(entry("zeta"));
        lock.set(entry("alpha"));
        let mut newer = entry("alpha");
        newer.version = "0.1.3".to_owned();
        lock.set(newer);
        lock.write(&path).unwrap();
        let read = Lockfile::read(&path).unwrap();
        let names: Vec<&str> = read.extensions.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, ["alpha", "zeta"]);
        assert_eq!(read.get("alpha").unwrap().version, "0.1.3");
    }

    #[test]
    fn a_damaged_lock_is_named_and_says_what_to_do() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(LOCK_FILE_NAME);
        std::fs::write(&path, "version = 1\n[[extension]]\nname = \"x\"\n").unwrap();
        let err = Lockfile::read(&path).unwrap_err().to_string();
        assert!(
            err.contains("silt.lock") && err.contains("silt extension update"),
            "{err}"
        );
        let mut lock = Lockfile {
            version: FORMAT,
            ..Lockfile::default()
        };
        let mut bad = entry("x");
        bad.sha256 = "XYZ".to_owned();
        lock.extensions.push(bad);
        std::fs::write(&path, toml::to_string(&lock).unwrap()).unwrap();
        let err = Lockfile::read(&path).unwrap_err().to_string();
        assert!(err.contains("x: sha256 is not"), "{err}");
        std::fs::write(&path, "version = 2\n").unwrap();
        let err = Lockfile::read(&path).unwrap_err().to_string();
        assert!(err.contains("format 2"), "{err}");
    }
}
