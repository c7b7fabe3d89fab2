//! `silt extension new NAME --lang ts`: a TypeScript extension project,
//! `examples/ts-datastore` renamed, its README aside (a partitioned datastore with leases,
//! fenced commits and lazy hydration that passes `silt extension test`).
//!
//! ```text
//! NAME/
//!   package.json, package-lock.json   componentize-js, jco, TypeScript (pinned)
//!   build.mjs                         types → tsc → componentize → metadata section
//!   test/                             `npm test`: the SHA-256 against node:crypto
//!   tsconfig.json
//!   src/*.ts                          one module per concern; extension.ts exports
//!   wit/world.wit                     the contract + WASI filesystem for /cache
//!   wit/deps/                         silt:datastore@<version>, wasi 0.2.12
//!   README.md, .gitignore
//! ```

use std::path::{Path, PathBuf};

use super::{Writer, write_wit};
use crate::runtime::metadata::API_VERSION;

/// The example's name, replaced by the new extension's everywhere.
const EXAMPLE_NAME: &str = "ts-datastore";

/// Every file of the example a project needs (the example's README, its
/// build output and `node_modules` excepted; the contract comes from
/// [`WIT_FILES`]).
const EXAMPLE_FILES: [(&str, &str); 27] = embedded!["examples/ts-datastore":
    ".gitignore",
    "build.mjs",
    "package-lock.json",
    "package.json",
    "tsconfig.json",
    "src/cache.ts",
    "src/commit.ts",
    "src/dict.ts",
    "src/errors.ts",
    "src/extension.ts",
    "src/hydration.ts",
    "src/layout.ts",
    "src/leases.ts",
    "src/models.ts",
    "src/partition.ts",
    "src/set_aside.ts",
    "src/sha256.ts",
    "src/store.ts",
    "src/sync.ts",
    "src/token.ts",
    "src/upload.ts",
    "src/working_copy.ts",
    "test/sha256.test.mjs",
    "wit/world.wit",
    "wit/deps/wasi-clocks/package.wit",
    "wit/deps/wasi-filesystem/package.wit",
    "wit/deps/wasi-io/package.wit",
];

/// The component `npm run build` makes, relative to the project.
pub(super) fn component(name: &str) -> PathBuf {
    Path::new("dist").join(format!("{name}.wasm"))
}

/// Whether `npm` runs here.
pub(super) fn node_found() -> bool {
    std::process::Command::new("npm")
        .arg("--version")
        .output()
        .is_ok_and(|output| output.status.success())
}

/// Writes every file of the project into `dir`.
pub(super) fn write_project(dir: &Path, name: &str) -> anyhow::Result<()> {
    let write = Writer(dir);
    for (path, text) in EXAMPLE_FILES.iter() {
        write.file(path, &renamed(text, name))?;
    }
    write_wit(&write, "wit/deps/silt-datastore")?;
    write.file("README.md", &readme(name))
}

/// `text` with the example's name replaced by `name` (package name, layout
/// keys, messages). The world's package is `local:extension` whatever the
/// name (some valid names are WIT keywords).
fn renamed(text: &str, name: &str) -> String {
    text.replace(EXAMPLE_NAME, name)
}

fn readme(name: &str) -> String {
    format!(
        r#"# {name}

A silt datastore extension (`silt:datastore@{API_VERSION}`) in TypeScript,
started from silt's `examples/ts-datastore`: a partitioned datastore (one
index partition and one lease object per model, fenced compare-and-swap
commits, lazy hydration) that passes `silt extension test`.

```sh
npm install
npm run build                          # → dist/{name}.wasm
silt extension add dist/{name}.wasm
silt extension test dist/{name}.wasm
```

`npm run build` runs `build.mjs`: it generates TypeScript declarations of
the WIT world into `build/types`, compiles `src/` with tsc, turns
`build/js/extension.js` into a component with componentize-js, and appends
the `silt-extension` metadata section that silt reads without compiling.
Name, version, description and capabilities come from `package.json` (the
`silt` object); `describe` reads the same values, so they cannot disagree.

- `src/extension.ts`: the exported interfaces (`capabilities`, `sync`,
  `hydration`, `locks`, `models`); methods in camelCase; errors are thrown
  as the contract's `error` variant (`src/errors.ts`).
- `src/leases.ts`: model leases and fencing; `src/partition.ts`: the index
  and its commits; `src/sync.ts`, `src/hydration.ts`, `src/models.ts`: the
  rest of the contract; `src/cache.ts`: the `/cache` directory through WASI.
- `wit/`: the world this project builds (the contract plus the WASI
  filesystem); `wit/deps/silt-datastore` is the contract itself.

Limits: each call runs in a fresh instance under silt's deadline and
memory limit, with no network and no environment. JavaScript runs in an
interpreter inside the component, so hashing large files is slow (see
silt's `examples/README.md` for numbers).
"#
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_file_of_the_example_is_embedded() {
        let root = Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../examples/ts-datastore"
        ));
        let ignored = [
            "node_modules",
            "build",
            "dist",
            "README.md",
            "src/metadata.ts",
        ];
        let mut found = Vec::new();
        let mut pending = vec![PathBuf::new()];
        while let Some(relative) = pending.pop() {
            for entry in std::fs::read_dir(root.join(&relative)).unwrap() {
                let entry = entry.unwrap();
                let path = relative.join(entry.file_name());
                let shown = path.to_string_lossy().into_owned();
                if ignored.contains(&shown.as_str()) || shown.starts_with("wit/deps/silt-datastore")
                {
                    continue;
                }
                if entry.file_type().unwrap().is_dir() {
                    pending.push(path);
                } else {
                    found.push(shown);
                }
            }
        }
        found.sort();
        let mut embedded: Vec<String> = EXAMPLE_FILES
            .iter()
            .map(|(path, _)| (*path).to_owned())
            .collect();
        embedded.sort();
        assert_eq!(
            found, embedded,
            "add new files of examples/ts-datastore to EXAMPLE_FILES"
        );
    }

    #[test]
    fn the_project_carries_its_name() {
        let dir = tempfile::tempdir().unwrap();
        write_project(dir.path(), "my-store").unwrap();
        let package = std::fs::read_to_string(dir.path().join("package.json")).unwrap();
        assert!(package.contains("\"name\": \"my-store\""), "{package}");
        let layout = std::fs::read_to_string(dir.path().join("src/layout.ts")).unwrap();
        assert!(layout.contains("'my-store/layout.json'"), "{layout}");
        assert!(
            dir.path()
                .join("wit/deps/silt-datastore/world.wit")
                .is_file()
        );
        assert!(!package.contains(EXAMPLE_NAME));
        // A name that is a WIT keyword must not end up in WIT.
        let world = std::fs::read_to_string(dir.path().join("wit/world.wit")).unwrap();
        assert!(world.contains("package local:extension;"), "{world}");
    }
}
