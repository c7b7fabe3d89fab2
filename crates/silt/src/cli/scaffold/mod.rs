//! `silt extension new NAME [--lang rust|ts] [--template datastore|minimal]`:
//! a buildable extension project that `silt extension add` accepts after
//! its build. Each starts from code CI builds (embedded at build time), with
//! its own copy of the WIT contract this silt speaks:
//! - Rust, `datastore` (the default): [`rust_datastore`], silt's
//!   `partitioned-datastore` on a vendored SDK; passes `silt extension test`;
//! - Rust, `minimal`: [`rust`], `examples/hello-extension`, no leases;
//! - TypeScript: [`typescript`], `examples/ts-datastore`; passes the suite.

/// `[(path, contents)]` of files under `root` (relative to the repository),
/// embedded at build time.
macro_rules! embedded {
    ($root:literal: $($path:literal),* $(,)?) => {
        [$(($path, include_str!(concat!("../../../../../", $root, "/", $path)))),*]
    };
}

mod rust;
mod rust_datastore;
mod typescript;

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use clap::{Args, ValueEnum};
use serde::Serialize;

use super::Context;

/// The language of a new extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Lang {
    /// Rust with wit-bindgen, built by cargo for wasm32-wasip2.
    Rust,
    /// TypeScript, componentized by componentize-js (needs Node.js and npm).
    #[value(alias = "typescript")]
    Ts,
}

/// What the new project starts as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Template {
    /// A complete datastore (index partitions, fenced commits, leases,
    /// lazy hydration) that passes `silt extension test`.
    Datastore,
    /// The smallest extension (every interface, no optional feature): without
    /// leases, `data put` and `run` fail on it (Rust only).
    Minimal,
}

/// Arguments of `silt extension new`.
#[derive(Debug, Args)]
pub struct NewArgs {
    /// The extension's name: lowercase letters, digits and `-`, starting
    /// with a letter (also its package and directory name).
    pub name: String,
    /// The language of the project.
    #[arg(long, value_enum, default_value_t = Lang::Rust)]
    pub lang: Lang,
    /// What the project starts as.
    #[arg(long, value_enum, default_value_t = Template::Datastore)]
    pub template: Template,
    /// Where to create it (default: `./NAME`).
    #[arg(long)]
    pub dir: Option<PathBuf>,
}

/// The contract, as this silt speaks it.
const WIT_FILES: [(&str, &str); 11] = embedded!["wit":
    "world.wit",
    "types.wit",
    "capabilities.wit",
    "sync.wit",
    "hydration.wit",
    "locks.wit",
    "models.wit",
    "object-store.wit",
    "log.wit",
    "progress.wit",
    "config.wit",
];

/// Writes the contract into `dir` of the project.
fn write_wit(write: &Writer, dir: &str) -> anyhow::Result<()> {
    for (file, text) in WIT_FILES {
        write.file(&format!("{dir}/{file}"), text)?;
    }
    Ok(())
}

/// A Rust project's `Cargo.toml`: a cdylib named `name` with
/// `dependencies` (TOML lines), the release profile extensions want, and
/// its own workspace (so no enclosing one claims it).
/// The template's `Cargo.lock` with its package renamed to `name`: a new
/// project builds against the very versions silt's tests built the
/// template with (cargo prunes what the project no longer uses).
fn lockfile(template_lock: &str, template: &str, name: &str) -> String {
    template_lock.replacen(
        &format!("\nname = \"{template}\"\n"),
        &format!("\nname = \"{name}\"\n"),
        1,
    )
}

fn cargo_manifest(name: &str, dependencies: &str) -> String {
    // The SDK hashes every file committed in wasm: its SHA-256 built for
    // speed, not size (as silt's own datastore is).
    let sha2 = if dependencies.contains("silt-extension") {
        "\n# SHA-256 of every file committed runs in wasm: optimised for speed.\n[profile.release.package.sha2]\nopt-level = 3\n"
    } else {
        ""
    };
    format!(
        r#"[package]
name = "{name}"
version = "0.1.0"
edition = "2024"
description = "A silt datastore extension"
publish = false

[lib]
crate-type = ["cdylib"]

[dependencies]
{dependencies}
[profile.release]
opt-level = "s"
lto = true
codegen-units = 1
debug = false
# Do not strip: the `silt-extension` metadata section must stay in the binary.
{sha2}
# The project's own workspace, not part of an enclosing one.
[workspace]
"#
    )
}

/// What every Rust project has besides its sources: the wasm32-wasip2
/// build default, the contract in `wit/`, a `.gitignore`.
fn write_rust_common(write: &Writer) -> anyhow::Result<()> {
    write.file(
        ".cargo/config.toml",
        "# Extensions are WebAssembly components: build for WASI 0.2 by default.\n[build]\ntarget = \"wasm32-wasip2\"\n\n\
         # `cargo test` runs the test binaries (wasm too) with silt: no other\n\
         # runtime to install. They get stdout and stderr, no files or network.\n\
         [target.wasm32-wasip2]\nrunner = [\"silt\", \"extension\", \"test-runner\"]\n",
    )?;
    write_wit(write, "wit")?;
    write.file(".gitignore", "/target\n")
}

/// A Rust project's README lines from nothing to a tested extension.
fn rust_commands(name: &str) -> String {
    let wasm = name.replace('-', "_");
    format!(
        "```sh\n\
         rustup target add wasm32-wasip2          # once per machine\n\
         cargo build --release\n\
         cargo test                               # unit tests, run in wasm by silt\n\
         silt extension add target/wasm32-wasip2/release/{wasm}.wasm\n\
         silt extension test target/wasm32-wasip2/release/{wasm}.wasm\n\
         ```"
    )
}

/// Writes files under a project directory, creating parents.
struct Writer<'a>(&'a Path);

impl Writer<'_> {
    fn file(&self, relative: &str, content: &str) -> anyhow::Result<()> {
        let path = self.0.join(relative);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("cannot create {}", parent.display()))?;
        }
        std::fs::write(&path, content).with_context(|| format!("cannot write {}", path.display()))
    }
}

#[derive(Serialize)]
struct Created {
    name: String,
    lang: Lang,
    template: Template,
    dir: PathBuf,
    /// The component the build makes, relative to `dir`.
    component: PathBuf,
    /// The commands that build it, run in `dir`.
    build: Vec<&'static str>,
    /// What the machine lacks for the build, if anything.
    missing: Option<String>,
}

pub(super) fn run(context: &Context, args: NewArgs) -> anyhow::Result<()> {
    check_name(&args.name)?;
    let dir = args
        .dir
        .clone()
        .unwrap_or_else(|| PathBuf::from(&args.name));
    if dir.exists()
        && std::fs::read_dir(&dir)
            .map(|mut d| d.next().is_some())
            .unwrap_or(true)
    {
        anyhow::bail!(
            "{} already exists and is not empty: choose another name or --dir",
            dir.display()
        );
    }
    if (args.lang, args.template) == (Lang::Ts, Template::Minimal) {
        anyhow::bail!(
            "--template minimal exists for Rust only; a TypeScript project starts as the datastore (drop --template)"
        );
    }
    let created = match args.lang {
        Lang::Rust => {
            match args.template {
                Template::Datastore => rust_datastore::write_project(&dir, &args.name)?,
                Template::Minimal => rust::write_project(&dir, &args.name)?,
            }
            Created {
                name: args.name.clone(),
                lang: args.lang,
                template: args.template,
                component: rust::component(&args.name),
                dir,
                build: vec!["cargo build --release"],
                missing: (rust::wasm_target_installed() == Some(false)).then(|| {
                    "the wasm32-wasip2 target: run `rustup target add wasm32-wasip2` once"
                        .to_owned()
                }),
            }
        }
        Lang::Ts => {
            typescript::write_project(&dir, &args.name)?;
            Created {
                name: args.name.clone(),
                lang: args.lang,
                template: args.template,
                component: typescript::component(&args.name),
                dir,
                build: vec!["npm install", "npm run build"],
                missing: (!typescript::node_found()).then(|| {
                    "Node.js and npm (20 or newer): install them from your system's packages"
                        .to_owned()
                }),
            }
        }
    };
    context.output.emit(&created, |out| {
        writeln!(out, "created {} in {}", created.name, created.dir.display())?;
        if let Some(missing) = &created.missing {
            writeln!(out, "this machine lacks {missing}")?;
        }
        writeln!(out, "next:")?;
        writeln!(
            out,
            "  cd {} && {}",
            created.dir.display(),
            created.build.join(" && ")
        )?;
        if created.lang == Lang::Rust {
            writeln!(
                out,
                "  cargo test   # its unit tests, run in wasm by `silt extension test-runner`"
            )?;
        }
        writeln!(out, "  silt extension add {}", created.component.display())?;
        writeln!(out, "  silt extension test {}", created.component.display())
    })
}

fn check_name(name: &str) -> anyhow::Result<()> {
    let valid = name.len() <= 64
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.ends_with('-');
    if !valid {
        anyhow::bail!(
            "`{name}` is not a valid extension name: use lowercase letters, digits and `-`, starting with a letter (e.g. `my-datastore`)"
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked() {
        for good in ["my-datastore", "a", "x2-y"] {
            check_name(good).unwrap();
        }
        for bad in ["", "My", "2fast", "a_b", "a-", "../x", &"a".repeat(65)] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn every_wit_file_of_the_contract_is_embedded() {
        let mut files: Vec<String> =
            std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../../wit"))
                .unwrap()
                .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
                // `since_v0_6/`: the previous contract, not a project's.
                .filter(|name| name.ends_with(".wit"))
                .collect();
        files.sort();
        let mut embedded: Vec<String> = WIT_FILES.iter().map(|(f, _)| (*f).to_owned()).collect();
        embedded.sort();
        assert_eq!(files, embedded, "add new WIT files to WIT_FILES");
    }
}
