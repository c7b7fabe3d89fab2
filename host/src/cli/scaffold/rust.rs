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

use super::{WIT_FILES, Writer};
use crate::runtime::metadata::{API_VERSION, api_id};

const EXAMPLE_LIB: &str = include_str!("../../../../examples/hello-extension/src/lib.rs");
const EXAMPLE_NAME: &str = "hello-extension";

/// The component `cargo build --release` makes, relative to the project.
pub(super) fn component(name: &str) -> PathBuf {
    Path::new("target/wasm32-wasip2/release").join(format!("{}.wasm", name.replace('-', "_")))
}

/// Writes every file of the project into `dir`.
pub(super) fn write_project(dir: &Path, name: &str) -> anyhow::Result<()> {
    let write = Writer(dir);
    let write = |relative: &str, content: &str| write.file(relative, content);
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
