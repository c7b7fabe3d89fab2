//! `silt extension new NAME` (Rust, the default template): silt's own
//! `partitioned-datastore`, renamed, on a vendored copy of the SDK
//! (`extensions/silt-extension`): a datastore that passes `silt extension
//! test` as it comes, whose policy (index layout, commits, leases) the
//! author changes while the SDK keeps the plumbing. Both are embedded at
//! build time, so the scaffold is always what CI builds.
//!
//! ```text
//! NAME/
//!   Cargo.toml              the crate (a cdylib) and the workspace
//!   .cargo/config.toml      builds for wasm32-wasip2 by default
//!   src/lib.rs              metadata! (with describe), export!
//!   src/index.rs            one index partition per model (the `Index` trait)
//!   src/commit.rs           compare-and-swap commits fenced by the lease
//!   src/leases.rs           model and namespace leases (policy over `silt_extension::lease`)
//!   silt-extension/         the SDK, vendored (its own crate, a workspace member;
//!                           its `wit/`: the WASI interfaces it calls directly)
//!   wit/                    silt:datastore@<version>, the contract
//!   README.md, .gitignore
//! ```

use std::path::Path;

use super::{Writer, cargo_manifest, rust_commands, write_rust_common};
use crate::runtime::metadata::API_VERSION;

/// The SDK crate, vendored into the project as `silt-extension/`.
const SDK_FILES: [(&str, &str); 35] = embedded!["extensions/silt-extension":
    "Cargo.toml",
    "src/cache_file.rs",
    "src/change.rs",
    "src/checkpoint.rs",
    "src/clock.rs",
    "src/corrupt_models.rs",
    "src/fixtures.rs",
    "src/hydrate.rs",
    "src/index_io.rs",
    "src/journal.rs",
    "src/layout.rs",
    "src/lease.rs",
    "src/leased_slice.rs",
    "src/lib.rs",
    "src/local.rs",
    "src/lock_object.rs",
    "src/meta.rs",
    "src/models.rs",
    "src/orphans.rs",
    "src/partition.rs",
    "src/plan.rs",
    "src/set_aside.rs",
    "src/settings.rs",
    "src/store.rs",
    "src/summary.rs",
    "src/sync.rs",
    "src/unleased.rs",
    "src/wasi_direct.rs",
    "src/wasi_file.rs",
    "src/wasi_stat.rs",
    "src/written_here.rs",
    "wit/deps/clocks.wit",
    "wit/deps/filesystem.wit",
    "wit/deps/io.wit",
    "wit/direct.wit",
];

/// The datastore's own sources.
const DATASTORE_FILES: [(&str, &str); 4] = embedded!["extensions/partitioned-datastore":
    "src/commit.rs",
    "src/index.rs",
    "src/leases.rs",
    "src/lib.rs",
];

const EXAMPLE_NAME: &str = "partitioned-datastore";

/// The template's lockfile: the versions silt's own build of it uses.
const TEMPLATE_LOCK: &str =
    include_str!("../../../../../extensions/partitioned-datastore/Cargo.lock");

/// The SDK's manifest stands alone in silt's tree (`[workspace]`); in the
/// project it is a member of the project's workspace.
const STANDALONE: &str =
    "\n# A standalone crate, not part of silt's host workspace.\n[workspace]\n";

/// Writes every file of the project into `dir`.
pub(super) fn write_project(dir: &Path, name: &str) -> anyhow::Result<()> {
    let write = Writer(dir);
    write.file("Cargo.toml", &cargo_manifest(name, DEPENDENCIES))?;
    write.file(
        "Cargo.lock",
        &super::lockfile(TEMPLATE_LOCK, "partitioned-datastore", name),
    )?;
    for (path, text) in SDK_FILES {
        write.file(&format!("silt-extension/{path}"), &vendored(path, text))?;
    }
    for (path, text) in DATASTORE_FILES {
        write.file(path, &renamed(path, text, name))?;
    }
    write.file("README.md", &readme(name))?;
    write_rust_common(&write)
}

/// The vendored SDK (a member of the project's workspace) and what the
/// datastore's own sources use.
const DEPENDENCIES: &str = r#"silt-extension = { path = "silt-extension" }
serde = { version = "1", default-features = false, features = ["derive", "std"] }
serde_json = { version = "1", default-features = false, features = ["std"] }
"#;

/// An SDK file as the project needs it: a workspace member, reading the
/// project's `wit/`.
fn vendored(path: &str, text: &str) -> String {
    match path {
        "Cargo.toml" => text.replacen(STANDALONE, "\n", 1),
        "src/lib.rs" => text.replacen("path: \"../../wit\"", "path: \"../wit\"", 1),
        _ => text.to_owned(),
    }
}

/// A datastore source with the new extension's name in its title.
fn renamed(path: &str, text: &str, name: &str) -> String {
    if path == "src/lib.rs" {
        text.replacen(
            &format!("//! {EXAMPLE_NAME}: silt's datastore extension."),
            &format!(
                "//! {name}: a silt datastore extension, started from silt's `{EXAMPLE_NAME}`."
            ),
            1,
        )
    } else {
        text.to_owned()
    }
}

fn readme(name: &str) -> String {
    let commands = rust_commands(name);
    format!(
        r#"# {name}

A silt datastore extension (`silt:datastore@{API_VERSION}`), started from
silt's `partitioned-datastore`: one index partition per model,
compare-and-swap commits fenced by the writer's lease, model and namespace
leases, lazy hydration. It passes `silt extension test` as it comes.

{commands}

What is yours (the policy) is in `src/`: `index.rs` (how a model's slice
of the index is stored and read), `commit.rs` (how a change is committed),
`leases.rs` (where lease generations start, how model and namespace leases
exclude each other), `lib.rs` (metadata and capabilities). What every
datastore shares is the SDK in `silt-extension/` (vendored; its docs:
`cargo doc -p silt-extension --open`): the bindings, the lease protocol,
owner-token writes, the working copy, hydration, sync and the `models`
interface.

Declare a capability in `metadata!` (src/lib.rs; `describe` answers the
same) only while `silt extension test` passes its checks.
"#
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The files of `root` (relative to the repository) under `src/` and
    /// `wit/` (at any depth), relative to `root`.
    fn sources(root: &str) -> Vec<String> {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../..")
            .join(root);
        let mut files = Vec::new();
        let mut dirs = vec!["src".to_owned(), "wit".to_owned()];
        while let Some(dir) = dirs.pop() {
            let Ok(entries) = std::fs::read_dir(root.join(&dir)) else {
                continue;
            };
            for entry in entries {
                let entry = entry.unwrap();
                let path = format!("{dir}/{}", entry.file_name().to_string_lossy());
                if entry.file_type().unwrap().is_dir() {
                    dirs.push(path);
                } else {
                    files.push(path);
                }
            }
        }
        files.sort();
        files
    }

    #[test]
    fn every_source_of_the_sdk_and_the_datastore_is_embedded() {
        let embedded = |files: &[(&str, &str)]| -> Vec<String> {
            let mut paths: Vec<String> = files
                .iter()
                .map(|(path, _)| (*path).to_owned())
                .filter(|path| path.starts_with("src/") || path.starts_with("wit/"))
                .collect();
            paths.sort();
            paths
        };
        assert_eq!(
            sources("extensions/silt-extension"),
            embedded(&SDK_FILES),
            "add new SDK files to SDK_FILES"
        );
        assert_eq!(
            sources("extensions/partitioned-datastore"),
            embedded(&DATASTORE_FILES),
            "add new files to DATASTORE_FILES"
        );
    }

    #[test]
    fn the_vendored_sdk_is_a_member_reading_the_projects_wit() {
        let dir = tempfile::tempdir().unwrap();
        write_project(dir.path(), "my-store").unwrap();
        let manifest =
            std::fs::read_to_string(dir.path().join("silt-extension/Cargo.toml")).unwrap();
        assert!(!manifest.contains("[workspace]"), "{manifest}");
        let lib = std::fs::read_to_string(dir.path().join("silt-extension/src/lib.rs")).unwrap();
        assert!(lib.contains("path: \"../wit\""));
        let own = std::fs::read_to_string(dir.path().join("src/lib.rs")).unwrap();
        assert!(own.starts_with("//! my-store:"), "{}", &own[..80]);
        assert!(dir.path().join("wit/world.wit").is_file());
    }
}
