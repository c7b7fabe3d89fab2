//! Reading and validating a component binary without compiling it.
//!
//! One pass of `wasmparser` over the bytes gives the encoding, the
//! component's imports and exports, and the `silt-extension` metadata; from
//! those we decide whether the file is an extension this host can run.
//! Nothing here validates or compiles function bodies: that is wasmtime's job
//! at first execution.

use std::path::{Path, PathBuf};

use serde::Serialize;
use sha2::{Digest, Sha256};
use wasmparser::{Encoding, Parser, Payload};

use super::metadata::{self, API_PACKAGE, Metadata, MetadataError, SECTION_NAME};

/// The interfaces an extension must export, without the package and version.
pub const REQUIRED_EXPORTS: &[&str] = &["capabilities", "sync", "hydration", "locks", "models"];

/// The interfaces an extension may import, by package: what the host
/// links, exactly (`capabilities::wasi` for WASI). Anything else (sockets,
/// http, ...) would fail to instantiate, so it is refused at `add`. WASI is
/// matched at any 0.2 version (the linker resolves them by semver);
/// `silt:datastore` at this host's API version.
pub(crate) const PROVIDED_IMPORTS: &[(&str, &[&str])] = &[
    (
        "silt:datastore",
        &["types", "object-store", "log", "progress", "config"],
    ),
    ("wasi:io", &["error", "poll", "streams"]),
    ("wasi:clocks", &["wall-clock", "monotonic-clock"]),
    ("wasi:random", &["random", "insecure", "insecure-seed"]),
    ("wasi:filesystem", &["types", "preopens"]),
    (
        "wasi:cli",
        &[
            "environment",
            "exit",
            "stdin",
            "stdout",
            "stderr",
            "terminal-input",
            "terminal-output",
            "terminal-stdin",
            "terminal-stdout",
            "terminal-stderr",
        ],
    ),
];

/// Why silt does not provide `import` to a component speaking `api_version`
/// of the contract, or `None` when it does.
fn unprovided(import: &str, api_version: &str) -> Option<&'static str> {
    let Some((package, rest)) = import.split_once('/') else {
        return Some("it is not an interface of a package");
    };
    let (interface, version) = rest.split_once('@').unwrap_or((rest, ""));
    let Some((_, interfaces)) = PROVIDED_IMPORTS.iter().find(|(name, _)| *name == package) else {
        return Some(
            "silt never grants it to extensions (granted: the object store, log, progress, its settings, clocks, random and its cache directory)",
        );
    };
    if !interfaces.contains(&interface) {
        return Some("this silt does not provide that interface");
    }
    if package == API_PACKAGE && interface == "config" && !metadata::is_current_minor(api_version) {
        return Some("`config` came with silt:datastore@0.7.0");
    }
    let version_ok = if package == API_PACKAGE {
        version == api_version
    } else {
        version.starts_with("0.2.")
    };
    if !version_ok {
        return Some("this silt does not provide that version of it");
    }
    None
}

/// What one pass over a component binary found.
#[derive(Debug, Clone, Serialize)]
pub struct ComponentInfo {
    /// Lowercase hex sha256 of the whole file.
    pub sha256: String,
    /// Size of the file in bytes.
    pub size: u64,
    /// Names of the component's imports, e.g. `wasi:clocks/wall-clock@0.2.6`.
    pub imports: Vec<String>,
    /// Names of the component's exports, e.g. `silt:datastore/sync@0.7.4`.
    pub exports: Vec<String>,
    /// The metadata section, if present and well formed.
    pub metadata: Option<Metadata>,
}

/// Why a file is not an extension this host can run. Every case names the file.
#[derive(Debug, thiserror::Error)]
pub enum InvalidExtension {
    /// The file could not be read.
    #[error("cannot read {}: {cause}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        cause: std::io::Error,
    },
    /// Not WebAssembly at all, or truncated.
    #[error("{} is not a WebAssembly component: {detail}", path.display())]
    NotWasm {
        /// The file.
        path: PathBuf,
        /// What the parser said.
        detail: String,
    },
    /// A core module rather than a component.
    #[error(
        "{} is a core WebAssembly module, not a component; build it for `wasm32-wasip2` (or run `wasm-tools component new`)",
        path.display()
    )]
    CoreModule {
        /// The file.
        path: PathBuf,
    },
    /// Exports the API at another version.
    #[error(
        "{} implements {found}, but this silt speaks {expected}; rebuild the extension against wit/ of this silt (its SDK)",
        path.display()
    )]
    WrongApiVersion {
        /// The file.
        path: PathBuf,
        /// The version the component exports.
        found: String,
        /// The version this host speaks.
        expected: String,
    },
    /// Exports nothing of `silt:datastore`.
    #[error(
        "{} does not implement the `silt:datastore/datastore-extension` world (its exports: {exports})",
        path.display()
    )]
    WrongWorld {
        /// The file.
        path: PathBuf,
        /// What it exports instead.
        exports: String,
    },
    /// Some required interfaces are not exported.
    #[error("{} is missing required exports: {missing}", path.display())]
    MissingExports {
        /// The file.
        path: PathBuf,
        /// The missing interface names.
        missing: String,
    },
    /// Imports something the host does not provide.
    #[error("{} imports {import}: {reason}", path.display())]
    ForbiddenImport {
        /// The file.
        path: PathBuf,
        /// The refused import (made safe to print).
        import: String,
        /// Why it is refused.
        reason: &'static str,
    },
    /// No `silt-extension` section.
    #[error(
        "{} has no `{SECTION_NAME}` metadata section; embed one (see examples/hello-extension)",
        path.display()
    )]
    MissingMetadata {
        /// The file.
        path: PathBuf,
    },
    /// The metadata section is malformed.
    #[error("{}: {cause}", path.display())]
    BadMetadata {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        cause: MetadataError,
    },
}

impl ComponentInfo {
    /// Reads and inspects the file at `path`.
    ///
    /// # Errors
    /// [`InvalidExtension::Read`] or the errors of [`ComponentInfo::parse`].
    pub fn read(path: &Path) -> Result<Self, InvalidExtension> {
        let bytes = std::fs::read(path).map_err(|cause| InvalidExtension::Read {
            path: path.to_owned(),
            cause,
        })?;
        Self::parse(&bytes, path)
    }

    /// Inspects component bytes; `path` is used in error messages.
    ///
    /// # Errors
    /// [`InvalidExtension::NotWasm`] or [`InvalidExtension::CoreModule`] when
    /// the bytes are not a component, [`InvalidExtension::BadMetadata`] when
    /// its metadata section is malformed.
    pub fn parse(bytes: &[u8], path: &Path) -> Result<Self, InvalidExtension> {
        let not_wasm = |detail: String| InvalidExtension::NotWasm {
            path: path.to_owned(),
            detail,
        };
        let mut info = ComponentInfo {
            sha256: sha256_hex(bytes),
            size: bytes.len() as u64,
            imports: Vec::new(),
            exports: Vec::new(),
            metadata: None,
        };
        // Imports and exports of nested components or modules are not the
        // component's own: only depth 0 counts.
        let mut depth = 0usize;
        // Said plainly before the parser says it with a dump of bytes.
        if !bytes.starts_with(b"\0asm") {
            return Err(not_wasm(
                "it does not start with the WebAssembly magic bytes `\\0asm` (build the extension with \
                 `cargo build --release --target wasm32-wasip2` and add the .wasm it makes)"
                    .to_owned(),
            ));
        }
        for payload in Parser::new(0).parse_all(bytes) {
            let payload = payload.map_err(|err| not_wasm(err.message().to_owned()))?;
            match payload {
                Payload::Version { encoding, .. } => {
                    if depth == 0 && encoding == Encoding::Module {
                        return Err(InvalidExtension::CoreModule {
                            path: path.to_owned(),
                        });
                    }
                    depth += 1;
                }
                Payload::End(_) => depth = depth.saturating_sub(1),
                Payload::ComponentImportSection(reader) if depth == 1 => {
                    for import in reader {
                        let import = import.map_err(|err| not_wasm(err.message().to_owned()))?;
                        info.imports.push(import.name.name.to_owned());
                    }
                }
                Payload::ComponentExportSection(reader) if depth == 1 => {
                    for export in reader {
                        let export = export.map_err(|err| not_wasm(err.message().to_owned()))?;
                        info.exports.push(export.name.name.to_owned());
                    }
                }
                Payload::CustomSection(reader) if reader.name() == SECTION_NAME => {
                    let metadata = Metadata::parse(reader.data()).map_err(|cause| {
                        InvalidExtension::BadMetadata {
                            path: path.to_owned(),
                            cause,
                        }
                    })?;
                    info.metadata = Some(metadata);
                }
                _ => {}
            }
        }
        Ok(info)
    }

    /// Checks that the component is an extension this host can run: it exports
    /// every required interface at our API version, imports only what we
    /// grant, and carries metadata for our API.
    ///
    /// # Errors
    /// The first problem found, as an [`InvalidExtension`] naming `path`.
    pub fn validate(&self, path: &Path) -> Result<&Metadata, InvalidExtension> {
        let ours: Vec<&str> = self
            .exports
            .iter()
            .filter_map(|name| name.strip_prefix(API_PACKAGE)?.strip_prefix('/'))
            .collect();
        if ours.is_empty() {
            return Err(InvalidExtension::WrongWorld {
                path: path.to_owned(),
                exports: list_or_none(&self.exports),
            });
        }
        // The version its first export speaks; every export must agree.
        let speaks = ours[0].split_once('@').map_or("", |(_, version)| version);
        let wrong_version = |found: String| InvalidExtension::WrongApiVersion {
            path: path.to_owned(),
            found: super::guest_text(&found),
            expected: metadata::supported_api_ids(),
        };
        if !metadata::SUPPORTED_API_VERSIONS.contains(&speaks) {
            let found = if speaks.is_empty() {
                "an unversioned API"
            } else {
                speaks
            };
            return Err(wrong_version(format!("{API_PACKAGE}@{found}")));
        }
        let wanted_suffix = format!("@{speaks}");
        if let Some(other) = ours.iter().find(|name| !name.ends_with(&wanted_suffix)) {
            return Err(wrong_version(format!(
                "{API_PACKAGE}@{speaks} and {API_PACKAGE}/{other} at once"
            )));
        }
        let missing: Vec<&str> = REQUIRED_EXPORTS
            .iter()
            .copied()
            .filter(|required| !ours.contains(&format!("{required}{wanted_suffix}").as_str()))
            .collect();
        if !missing.is_empty() {
            return Err(InvalidExtension::MissingExports {
                path: path.to_owned(),
                missing: missing
                    .iter()
                    .map(|name| format!("{API_PACKAGE}/{name}{wanted_suffix}"))
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        }
        for import in &self.imports {
            if let Some(reason) = unprovided(import, speaks) {
                return Err(InvalidExtension::ForbiddenImport {
                    path: path.to_owned(),
                    import: super::guest_text(import),
                    reason,
                });
            }
        }
        let metadata = self
            .metadata
            .as_ref()
            .ok_or_else(|| InvalidExtension::MissingMetadata {
                path: path.to_owned(),
            })?;
        if metadata.api != format!("{API_PACKAGE}@{speaks}") {
            return Err(wrong_version(format!(
                "{} (its metadata) and {API_PACKAGE}@{speaks} (its exports)",
                metadata.api
            )));
        }
        Ok(metadata)
    }
}

fn list_or_none(names: &[String]) -> String {
    if names.is_empty() {
        "none".to_owned()
    } else {
        names.join(", ")
    }
}

/// Lowercase hex sha256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

/// Lowercase hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    // By table, not `write!` a byte: every download hex-encodes its digest,
    // and 32 formatting calls were a measurable share of a small one's CPU.
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for &byte in bytes {
        out.push(char::from(DIGITS[usize::from(byte >> 4)]));
        out.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_is_lowercase_two_digits_a_byte() {
        assert_eq!(hex(&[]), "");
        assert_eq!(hex(&[0x00, 0x0f, 0xa0, 0xff, 0x5c]), "000fa0ff5c");
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn garbage_is_not_wasm() {
        let err = ComponentInfo::parse(b"hello, world", Path::new("x.wasm")).unwrap_err();
        assert!(matches!(err, InvalidExtension::NotWasm { .. }), "{err}");
        assert!(err.to_string().contains("x.wasm"));
    }

    #[test]
    fn empty_core_module_is_refused_as_core_module() {
        let module = b"\0asm\x01\0\0\0";
        let err = ComponentInfo::parse(module, Path::new("m.wasm")).unwrap_err();
        assert!(matches!(err, InvalidExtension::CoreModule { .. }), "{err}");
    }

    #[test]
    fn truncated_component_is_not_wasm() {
        // Component preamble followed by a section header that runs past the end.
        let bytes = b"\0asm\x0d\0\x01\0\x01\x10";
        let err = ComponentInfo::parse(bytes, Path::new("t.wasm")).unwrap_err();
        assert!(matches!(err, InvalidExtension::NotWasm { .. }), "{err}");
    }

    fn info(exports: &[&str], imports: &[&str], api: &str) -> ComponentInfo {
        ComponentInfo {
            sha256: String::new(),
            size: 0,
            imports: imports.iter().map(|s| s.to_string()).collect(),
            exports: exports.iter().map(|s| s.to_string()).collect(),
            metadata: Some(Metadata {
                api: api.to_owned(),
                name: "x".to_owned(),
                version: "1.0.0".to_owned(),
                description: String::new(),
                capabilities: vec![],
                layout: None,
            }),
        }
    }

    const GOOD: &[&str] = &[
        "silt:datastore/capabilities@0.7.4",
        "silt:datastore/sync@0.7.4",
        "silt:datastore/hydration@0.7.4",
        "silt:datastore/locks@0.7.4",
        "silt:datastore/models@0.7.4",
    ];

    #[test]
    fn validation_decides_from_imports_and_exports() {
        let p = Path::new("e.wasm");
        let api = "silt:datastore@0.7.4";
        let ok = info(
            GOOD,
            &["wasi:clocks/wall-clock@0.2.6", "silt:datastore/log@0.7.4"],
            api,
        );
        assert!(ok.validate(p).is_ok());

        let wrong_world = info(&["example:greet/hello"], &[], api);
        assert!(matches!(
            wrong_world.validate(p),
            Err(InvalidExtension::WrongWorld { .. })
        ));

        let old = info(&["silt:datastore/capabilities@0.0.9"], &[], api);
        let err = old.validate(p).unwrap_err();
        assert!(err.to_string().contains("silt:datastore@0.0.9"), "{err}");

        let partial = info(&GOOD[..1], &[], api);
        let err = partial.validate(p).unwrap_err();
        assert!(
            err.to_string().contains("silt:datastore/locks@0.7.4"),
            "{err}"
        );

        let network = info(GOOD, &["wasi:sockets/tcp@0.2.6"], api);
        let err = network.validate(p).unwrap_err();
        assert!(
            matches!(err, InvalidExtension::ForbiddenImport { .. }),
            "{err}"
        );

        // Our own package, but an interface (or version) the host does not
        // link: refused at add, not at first use.
        for import in [
            "silt:datastore/unknown-thing@0.7.4",
            "silt:datastore/log@0.3.0",
            "wasi:io/teleport@0.2.6",
            "wasi:clocks/wall-clock@0.3.0",
            "nonsense",
        ] {
            let err = info(GOOD, &[import], api).validate(p).unwrap_err();
            assert!(
                matches!(err, InvalidExtension::ForbiddenImport { .. }),
                "{import}: {err}"
            );
        }

        let mismatched_meta = info(GOOD, &[], "silt:datastore@9.0.0");
        assert!(matches!(
            mismatched_meta.validate(p),
            Err(InvalidExtension::WrongApiVersion { .. })
        ));
    }
}
