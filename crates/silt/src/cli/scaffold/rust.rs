//! `silt extension new NAME --template minimal` (Rust): the smallest
//! buildable extension project, started from `examples/hello-extension`
//! (embedded at build time, so the scaffold is always the example that CI
//! builds) with its own copy of the WIT contract this silt speaks. It has
//! no leases: a place to learn the contract, not a datastore to ship (the
//! default template, [`super::rust_datastore`], is that).
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

use super::{Writer, cargo_manifest, rust_commands, write_rust_common};
use crate::runtime::metadata::{API_VERSION, api_id};

const EXAMPLE_LIB: &str = include_str!("../../../../../examples/hello-extension/src/lib.rs");
const EXAMPLE_NAME: &str = "hello-extension";
const EXAMPLE_LOCK: &str = include_str!("../../../../../examples/hello-extension/Cargo.lock");

/// The component `cargo build --release` makes, relative to the project.
pub(super) fn component(name: &str) -> PathBuf {
    Path::new("target/wasm32-wasip2/release").join(format!("{}.wasm", name.replace('-', "_")))
}

/// Writes every file of the project into `dir`.
pub(super) fn write_project(dir: &Path, name: &str) -> anyhow::Result<()> {
    let write = Writer(dir);
    write.file(
        "Cargo.toml",
        &cargo_manifest(
            name,
            "wit-bindgen = { version = \"0.61\", default-features = false, features = [\"macros\", \"realloc\", \"bitflags\"] }\n",
        ),
    )?;
    write.file(
        "Cargo.lock",
        &super::lockfile(EXAMPLE_LOCK, EXAMPLE_NAME, name),
    )?;
    write.file("silt-extension.toml", &metadata(name))?;
    write.file("src/lib.rs", &library(name))?;
    write.file("README.md", &readme(name))?;
    write_rust_common(&write)
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
            &format!("//! {EXAMPLE_NAME}: the smallest silt datastore extension."),
            &format!("//! {name}: a silt datastore extension, started from `{EXAMPLE_NAME}`."),
            1,
        );
    source.replace(&format!("\"{EXAMPLE_NAME} "), &format!("\"{name} "))
}

fn readme(name: &str) -> String {
    let commands = rust_commands(name);
    format!(
        r#"# {name}

A silt datastore extension (`silt:datastore@{API_VERSION}`), started from
silt's `hello-extension`: a flat datastore with full syncs and no leases of
its own. Make it yours in `src/lib.rs`; the contract is in `wit/`.

{commands}

`silt extension test` runs the datastore contract suite on a throwaway
datastore and prints what passes, what fails and why. Declare a capability
in `silt-extension.toml` (and in `describe`) only once the suite passes
its checks.
"#
    )
}

/// Whether rustup has the wasm32-wasip2 target (`None`: no rustup).
pub(super) fn wasm_target_installed() -> Option<bool> {
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
}
