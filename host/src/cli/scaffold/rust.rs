//! `silt extension new NAME`: a buildable Rust extension project, started
//! from `examples/hello-extension` (embedded at build time, so the scaffold
//! is always the example that CI builds) with its own copy of the WIT
//! contract this silt speaks.
//!
//! ```text
//! NAME/
//!   Cargo.toml              the crate, a cdylib; wit-bindgen
//!   .cargo/config.toml      builds for wasm32-wasip2 by default
//!   silt-extension.toml     the metadata silt reads without compiling
//!   src/lib.rs              one `impl` per exported interface
//!   wit/                    silt:datastore@<version>, the contract
//!   README.md, .gitignore
//! ```

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use clap::Args;
use serde::Serialize;

use super::Context;
use crate::runtime::metadata::{API_VERSION, api_id};

/// Arguments of `silt extension new`.
#[derive(Debug, Args)]
pub struct NewArgs {
    /// The extension's name: lowercase letters, digits and `-`, starting
    /// with a letter (also its crate and directory name).
    pub name: String,
    /// Where to create it (default: `./NAME`).
    #[arg(long)]
    pub dir: Option<PathBuf>,
}

/// The contract, as this silt speaks it.
const WIT_FILES: [(&str, &str); 10] = [
    ("world.wit", include_str!("../../../wit/world.wit")),
    ("types.wit", include_str!("../../../wit/types.wit")),
    (
        "capabilities.wit",
        include_str!("../../../wit/capabilities.wit"),
    ),
    ("sync.wit", include_str!("../../../wit/sync.wit")),
    ("hydration.wit", include_str!("../../../wit/hydration.wit")),
    ("locks.wit", include_str!("../../../wit/locks.wit")),
    ("models.wit", include_str!("../../../wit/models.wit")),
    (
        "object-store.wit",
        include_str!("../../../wit/object-store.wit"),
    ),
    ("log.wit", include_str!("../../../wit/log.wit")),
    ("progress.wit", include_str!("../../../wit/progress.wit")),
];

const EXAMPLE_LIB: &str = include_str!("../../../examples/hello-extension/src/lib.rs");
const EXAMPLE_NAME: &str = "hello-extension";

#[derive(Serialize)]
struct Created {
    name: String,
    dir: PathBuf,
    component: PathBuf,
    wasm_target_installed: Option<bool>,
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
    write_project(&dir, &args.name)?;
    let created = Created {
        name: args.name.clone(),
        component: Path::new("target/wasm32-wasip2/release")
            .join(format!("{}.wasm", args.name.replace('-', "_"))),
        dir,
        wasm_target_installed: wasm_target_installed(),
    };
    context.output.emit(&created, |out| {
        writeln!(out, "created {} in {}", created.name, created.dir.display())?;
        if created.wasm_target_installed == Some(false) {
            writeln!(
                out,
                "the wasm32-wasip2 target is missing: run `rustup target add wasm32-wasip2` once"
            )?;
        }
        writeln!(out, "next:")?;
        writeln!(
            out,
            "  cd {} && cargo build --release",
            created.dir.display()
        )?;
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

/// Writes every file of the project into `dir`.
fn write_project(dir: &Path, name: &str) -> anyhow::Result<()> {
    let write = |relative: &str, content: &str| -> anyhow::Result<()> {
        let path = dir.join(relative);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("cannot create {}", parent.display()))?;
        }
        std::fs::write(&path, content).with_context(|| format!("cannot write {}", path.display()))
    };
    write("Cargo.toml", &cargo_toml(name))?;
    write(
        ".cargo/config.toml",
        "# Extensions are WebAssembly components: build for WASI 0.2 by default.\n[build]\ntarget = \"wasm32-wasip2\"\n",
    )?;
    write("silt-extension.toml", &metadata(name))?;
    write("src/lib.rs", &library(name))?;
    for (file, text) in WIT_FILES {
        write(&format!("wit/{file}"), text)?;
    }
    write("README.md", &readme(name))?;
    write(".gitignore", "/target\n")?;
    Ok(())
}

fn cargo_toml(name: &str) -> String {
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
wit-bindgen = {{ version = "0.61", default-features = false, features = ["macros", "realloc", "bitflags"] }}

[profile.release]
opt-level = "s"
lto = true
codegen-units = 1
debug = false
# Do not strip: the `silt-extension` metadata section must stay in the binary.

# A crate of its own, not part of an enclosing workspace.
[workspace]
"#
    )
}

fn metadata(name: &str) -> String {
    format!(
        r#"# Read by silt without compiling the component: keep `name` and `version`
# in sync with Cargo.toml, and `capabilities` with `describe` in src/lib.rs
# (`silt extension verify` checks both).
api = "{api}"
name = "{name}"
version = "0.1.0"
description = "A silt datastore extension"
capabilities = []
"#,
        api = api_id()
    )
}

/// The example's source, pointed at the project's own `wit/` and renamed.
fn library(name: &str) -> String {
    let source = EXAMPLE_LIB
        .replacen("path: \"../../wit\"", "path: \"wit\"", 1)
        .replacen(
            &format!("//! {EXAMPLE_NAME}: the smallest complete silt datastore extension."),
            &format!("//! {name}: a silt datastore extension, started from `{EXAMPLE_NAME}`."),
            1,
        );
    source.replace(&format!("\"{EXAMPLE_NAME} "), &format!("\"{name} "))
}

fn readme(name: &str) -> String {
    let wasm = name.replace('-', "_");
    format!(
        r#"# {name}

A silt datastore extension (`silt:datastore@{API_VERSION}`), started from
silt's `hello-extension`: a flat datastore with full syncs and no leases of
its own. Make it yours in `src/lib.rs`; the contract is in `wit/`.

```sh
rustup target add wasm32-wasip2          # once per machine
cargo build --release
silt extension add target/wasm32-wasip2/release/{wasm}.wasm
silt extension test target/wasm32-wasip2/release/{wasm}.wasm
```

`silt extension test` runs the datastore contract suite on a throwaway
datastore and prints what passes, what fails and why. Declare a capability
in `silt-extension.toml` (and in `describe`) only once the suite passes
its checks.
"#
    )
}

/// Whether rustup has the wasm32-wasip2 target (`None`: no rustup).
fn wasm_target_installed() -> Option<bool> {
    let output = std::process::Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
        .ok()?;
    Some(
        String::from_utf8_lossy(&output.stdout)
            .lines()
            .any(|line| line.trim() == "wasm32-wasip2"),
    )
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
    fn the_library_points_at_its_own_wit_and_carries_its_name() {
        let source = library("my-datastore");
        assert!(source.contains("path: \"wit\""));
        assert!(!source.contains("../../wit"));
        assert!(
            source.contains("my-datastore has no locks"),
            "errors name the extension"
        );
        assert!(source.starts_with("//! my-datastore:"));
    }

    #[test]
    fn every_wit_file_of_the_contract_is_embedded() {
        let mut files: Vec<String> =
            std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../wit"))
                .unwrap()
                .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
        files.sort();
        let mut embedded: Vec<String> = WIT_FILES.iter().map(|(f, _)| (*f).to_owned()).collect();
        embedded.sort();
        assert_eq!(files, embedded, "add new WIT files to WIT_FILES");
    }
}
