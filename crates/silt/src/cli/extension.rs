//! `silt extension list|inspect|add|publish|remove|verify` (`test`: see `extension_test`).

use std::path::{Path, PathBuf};

use clap::Subcommand;
use serde::Serialize;

use super::Context;
use super::output::{human_bytes, in_milliseconds};
use crate::ops::extension;
use crate::runtime::{Catalog, Installed, Listed, Origin};

/// Extension commands.
#[derive(Debug, Subcommand)]
pub enum ExtensionCommand {
    /// List installed extensions (reads manifests only; compiles nothing).
    #[command(after_help = super::examples::EXTENSION_LIST)]
    List,
    /// Show an installed extension, or a component file, without compiling it.
    #[command(after_help = super::examples::EXTENSION_INSPECT)]
    Inspect {
        /// An installed extension's name, or a path to a .wasm file.
        extension: String,
    },
    /// Validate a component and install it under the name in its metadata:
    /// from a file, from an OCI registry, or from an https URL.
    #[command(after_help = super::examples::EXTENSION_ADD)]
    Add {
        /// The component: a path to a .wasm file; `oci://HOST/REPO:TAG` or
        /// `oci://HOST/REPO@sha256:DIGEST` (a Wasm OCI artifact); or an
        /// `https://` URL, which needs `--sha256`. Plain http only to this
        /// machine.
        source: PathBuf,
        /// Refuse unless the component's sha256 is HEX (required for a URL).
        #[arg(long, value_name = "HEX")]
        sha256: Option<String>,
        /// Replace an installed extension of the same name.
        #[arg(long)]
        force: bool,
    },
    /// Publish a component to an OCI registry as a Wasm OCI artifact
    /// (config `application/vnd.wasm.config.v0+json`, one `application/wasm`
    /// layer), after validating it as `add` would. Credentials come from
    /// podman's or docker's auth file, or SILT_REGISTRY_USERNAME and
    /// SILT_REGISTRY_PASSWORD.
    #[command(after_help = super::examples::EXTENSION_PUBLISH)]
    Publish {
        /// The component (.wasm) to publish.
        path: PathBuf,
        /// Where: `oci://HOST/REPOSITORY:TAG` (the tag is usually its version).
        reference: String,
    },
    /// Install every extension silt.toml's [extensions.require] names,
    /// exactly as silt.lock pins them; resolve and lock those it does not
    /// pin yet. A component that differs from its lock is refused.
    #[command(after_help = super::examples::EXTENSION_INSTALL)]
    Install,
    /// Resolve required extensions again (all, or those named), install
    /// them and move silt.lock to what they resolve to now.
    #[command(after_help = super::examples::EXTENSION_UPDATE)]
    Update {
        /// Extension names (default: every required extension).
        names: Vec<String>,
    },
    /// Remove an installed extension.
    #[command(after_help = super::examples::EXTENSION_REMOVE)]
    Remove {
        /// Its name.
        name: String,
        /// Also the extension this project's datastore runs on.
        #[arg(long)]
        force: bool,
    },
    /// Load (compiling on first use), run `describe`, and check it against the metadata.
    #[command(after_help = super::examples::EXTENSION_VERIFY)]
    Verify {
        /// An installed extension's name, or a path to a .wasm file.
        extension: String,
    },
    /// Run the datastore contract suite against a component on a fresh
    /// datastore and print a pass/fail table.
    #[command(after_help = super::examples::EXTENSION_TEST)]
    Test(super::extension_test::TestArgs),
    /// Create a buildable extension project (Rust: a partitioned datastore on a
    /// vendored SDK, or `--template minimal`; TypeScript: `--lang ts`), with
    /// its own copy of the WIT contract.
    #[command(after_help = super::examples::EXTENSION_NEW)]
    New(super::scaffold::NewArgs),
    /// Run a wasm32-wasip2 test binary: the runner of `cargo test` in an
    /// extension project (its `.cargo/config.toml` names it). The binary gets
    /// its arguments, stdout and stderr; no files, environment or network.
    /// Exits with the binary's code (101 when it trapped, as a panic does).
    #[command(after_help = super::examples::EXTENSION_TEST_RUNNER)]
    TestRunner {
        /// The test binary cargo built (`target/wasm32-wasip2/.../deps/*.wasm`).
        binary: PathBuf,
        /// What cargo passes on to it (test filters, `--nocapture`, ...).
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
}

/// `silt extension test-runner`: needs no project, prints no JSON, and
/// exits with the test binary's code.
pub(super) fn test_runner(binary: &Path, args: &[String], output: &super::Output) -> u8 {
    let ran = super::block_on(crate::runtime::test_runner::run_test_binary(binary, args))
        .and_then(|ran| ran);
    match ran {
        Ok(code) => code,
        Err(err) => {
            output.error(&err, crate::exit::FAILURE);
            crate::exit::FAILURE
        }
    }
}

pub(super) fn run(context: &Context, command: ExtensionCommand) -> anyhow::Result<()> {
    let catalog = Catalog::new(&context.locations.extensions_dir);
    match command {
        ExtensionCommand::List => list(context, &catalog),
        ExtensionCommand::Inspect { extension } => inspect(context, &catalog, &extension),
        ExtensionCommand::Add {
            source,
            sha256,
            force,
        } => add(context, &catalog, &source, sha256.as_deref(), force),
        ExtensionCommand::Publish { path, reference } => publish(context, &path, &reference),
        ExtensionCommand::Install => {
            super::extension_install::run(context, crate::supply_chain::Update::Nothing)
        }
        ExtensionCommand::Update { names } => super::extension_install::run(
            context,
            if names.is_empty() {
                crate::supply_chain::Update::All
            } else {
                crate::supply_chain::Update::Only(&names)
            },
        ),
        ExtensionCommand::Remove { name, force } => remove(context, &catalog, &name, force),
        ExtensionCommand::Verify { extension } => verify(context, &catalog, &extension),
        ExtensionCommand::Test(args) => super::extension_test::run(context, args),
        ExtensionCommand::New(args) => super::scaffold::run(context, args),
        ExtensionCommand::TestRunner { .. } => unreachable!("run before any project is read"),
    }
}

/// When an extension was added: seconds in its manifest and in the v1
/// JSON, milliseconds in v2.
const ADDED_AT: &[(&str, &str)] = &[("added_at", "added_at")];

#[derive(Serialize)]
struct ListReport<'a> {
    dir: &'a Path,
    extensions: Vec<&'a Installed>,
    broken: Vec<&'a Listed>,
}

fn list(context: &Context, catalog: &Catalog) -> anyhow::Result<()> {
    let listed = catalog.list()?;
    let report = ListReport {
        dir: catalog.dir(),
        extensions: listed
            .iter()
            .filter_map(|l| match l {
                Listed::Ok(installed) => Some(installed),
                Listed::Broken { .. } => None,
            })
            .collect(),
        broken: listed
            .iter()
            .filter(|l| matches!(l, Listed::Broken { .. }))
            .collect(),
    };
    let v2 = in_milliseconds(&report, ADDED_AT)?;
    context.output.emit_versioned(&v2, &report, |out| {
        if report.extensions.is_empty() && report.broken.is_empty() {
            writeln!(out, "no extensions installed in {}", report.dir.display())?;
            return writeln!(out, "add one with: silt extension add PATH.wasm");
        }
        let width = report
            .extensions
            .iter()
            .map(|e| e.name().len())
            .max()
            .unwrap_or(4)
            .max(4);
        writeln!(out, "{:width$}  {:10}  CAPABILITIES", "NAME", "VERSION")?;
        for installed in &report.extensions {
            let metadata = &installed.manifest.metadata;
            writeln!(
                out,
                "{:width$}  {:10}  {}",
                metadata.name,
                metadata.version,
                capabilities_text(&metadata.capabilities)
            )?;
        }
        for broken in &report.broken {
            if let Listed::Broken { dir, problem } = broken {
                writeln!(out, "broken: {}: {problem}", dir.display())?;
            }
        }
        Ok(())
    })
}

fn capabilities_text(capabilities: &[String]) -> String {
    if capabilities.is_empty() {
        "none (full sync, host namespace lock)".to_owned()
    } else {
        capabilities.join(", ")
    }
}

fn inspect(context: &Context, catalog: &Catalog, name_or_path: &str) -> anyhow::Result<()> {
    let report = extension::inspect(catalog, name_or_path)?;
    context.output.emit(&report, |out| {
        writeln!(out, "file:         {}", report.path.display())?;
        writeln!(out, "size:         {}", human_bytes(report.size))?;
        writeln!(out, "sha256:       {}", report.sha256)?;
        if let Some(metadata) = &report.metadata {
            writeln!(out, "name:         {}", metadata.name)?;
            writeln!(out, "version:      {}", metadata.version)?;
            let current = crate::runtime::metadata::api_id();
            let api = crate::runtime::guest_text(&metadata.api);
            if metadata.api == current {
                writeln!(out, "api:          {api}")?;
            } else {
                // Valid or not, say what this silt makes of its contract.
                let version = crate::runtime::metadata::api_version(&metadata.api);
                let supported = version.is_some_and(|version| {
                    crate::runtime::metadata::SUPPORTED_API_VERSIONS.contains(&version)
                });
                let note = if version.is_some_and(crate::runtime::metadata::is_current_minor) {
                    format!(
                        "an earlier patch of this contract, run as it is; rebuild against {current} for what it added"
                    )
                } else if supported {
                    format!("the previous contract, still run; rebuild against {current}")
                } else {
                    format!(
                        "this silt runs {}",
                        crate::runtime::metadata::supported_api_ids()
                    )
                };
                writeln!(out, "api:          {api} ({note})")?;
            }
            writeln!(out, "description:  {}", metadata.description)?;
            writeln!(
                out,
                "capabilities: {}",
                capabilities_text(&metadata.capabilities)
            )?;
        }
        match &report.problem {
            None => writeln!(out, "valid:        yes")?,
            Some(problem) => writeln!(out, "valid:        no: {problem}")?,
        }
        writeln!(out, "exports:")?;
        for export in &report.exports {
            writeln!(out, "  {export}")?;
        }
        writeln!(out, "imports:")?;
        for import in &report.imports {
            writeln!(out, "  {import}")?;
        }
        Ok(())
    })
}

fn add(
    context: &Context,
    catalog: &Catalog,
    source: &Path,
    sha256: Option<&str>,
    force: bool,
) -> anyhow::Result<()> {
    let installed = extension::add(catalog, source, sha256, force)?;
    let v2 = in_milliseconds(&installed, ADDED_AT)?;
    context.output.emit_versioned(&v2, &installed, |out| {
        let metadata = &installed.manifest.metadata;
        writeln!(
            out,
            "added {} {} ({}, sha256 {}) to {}",
            metadata.name,
            metadata.version,
            human_bytes(installed.manifest.component.size),
            installed.manifest.component.short_sha256(),
            installed.dir.display()
        )?;
        if installed.manifest.component.manifest_digest.is_some() {
            writeln!(out, "  from {}", installed.manifest.component.added_from)?;
        }
        Ok(())
    })
}

fn publish(context: &Context, path: &Path, reference: &str) -> anyhow::Result<()> {
    let report = extension::publish(path, reference)?;
    context.output.emit(&report, |out| {
        writeln!(
            out,
            "published {} {} ({}) to {}",
            report.name,
            report.version,
            human_bytes(report.size),
            report.to
        )?;
        writeln!(out, "  manifest {}", report.manifest_digest)?;
        writeln!(
            out,
            "  install with: silt extension add {}",
            report.reference
        )
    })
}

fn remove(context: &Context, catalog: &Catalog, name: &str, force: bool) -> anyhow::Result<()> {
    let removed = extension::remove(&context.locations, catalog, name, force)?;
    let v2 = in_milliseconds(&removed, ADDED_AT)?;
    context.output.emit_versioned(&v2, &removed, |out| {
        writeln!(
            out,
            "removed {} {}",
            removed.name(),
            removed.manifest.metadata.version
        )
    })
}

fn verify(context: &Context, catalog: &Catalog, name_or_path: &str) -> anyhow::Result<()> {
    let report = extension::verify(&context.locations, catalog, name_or_path)?;
    context.output.emit(&report, |out| {
        writeln!(out, "{} {}: ok", report.name, report.version)?;
        let features: Vec<String> = report.features.iter().map(|f| f.to_string()).collect();
        writeln!(out, "capabilities: {}", capabilities_text(&features))?;
        match &report.origin {
            Origin::Compiled { took, artifact } => {
                write!(out, "compiled in {} ms", took.as_millis())?;
                match artifact {
                    Some(path) => writeln!(out, "; artifact cached at {}", path.display()),
                    None => writeln!(out, "; artifact not cached (see log)"),
                }
            }
            Origin::Cached { took, artifact } => writeln!(
                out,
                "loaded cached artifact in {:.2} ms from {}",
                took.as_secs_f64() * 1e3,
                artifact.display()
            ),
        }
    })
}
