//! `silt extension new`: a new author's path, tried as they would take it:
//! scaffold, one build command, `silt extension add` accepts the component,
//! `verify` calls it, and `silt extension test` runs the contract suite on it.

use crate::support;

use std::path::Path;
use std::process::Command;

/// `silt extension add` of `component`, then `verify` of `name`: both succeed.
fn add_and_verify(home: &Path, component: &Path, name: &str) {
    let (code, _, stderr) = support::output(
        support::silt(home)
            .args(["extension", "add"])
            .arg(component),
    );
    assert_eq!(code, 0, "silt extension add: {stderr}");
    let (code, stdout, stderr) =
        support::output(support::silt(home).args(["extension", "verify", name]));
    assert_eq!(code, 0, "silt extension verify: {stderr}");
    assert!(stdout.contains(&format!("{name} 0.1.0: ok")), "{stdout}");
}

/// `silt extension new ARGS` in `home`: (exit code, stdout, stderr).
fn new_project(home: &Path, args: &[&str]) -> (i32, String, String) {
    support::output(support::silt(home).args(["extension", "new"]).args(args))
}

/// `silt extension test component`: (exit code, stdout, stderr).
fn contract_suite(home: &Path, component: &Path) -> (i32, String, String) {
    support::output(
        support::silt(home)
            .args(["extension", "test"])
            .arg(component),
    )
}

/// `cargo build --release --locked` in `project`, as its author runs it. A target
/// dir shared across runs keeps wit-bindgen's build from being repeated.
/// Returns the component.
fn cargo_build(project: &Path, name: &str) -> std::path::PathBuf {
    let target = support::components_dir()
        .parent()
        .expect("components live in the target dir")
        .join("scaffold");
    let build = Command::new(env!("CARGO"))
        // `--locked`: the scaffold's own Cargo.lock (the template's) is
        // complete and needs no update.
        .args(["build", "--release", "--quiet", "--locked"])
        .current_dir(project)
        .env("CARGO_TARGET_DIR", &target)
        .env_remove("RUSTFLAGS")
        .output()
        .unwrap();
    assert!(
        build.status.success(),
        "cargo build of the scaffold failed:\n{}",
        String::from_utf8_lossy(&build.stderr)
    );
    let component = target.join(format!(
        "wasm32-wasip2/release/{}.wasm",
        name.replace('-', "_")
    ));
    assert!(component.is_file());
    component
}

#[test]
fn a_scaffolded_rust_datastore_builds_installs_and_passes_the_suite() {
    let home = tempfile::tempdir().unwrap();
    let (code, stdout, stderr) = new_project(home.path(), &["my-datastore"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("cargo build --release"), "{stdout}");
    let project = home.path().join("my-datastore");
    for file in [
        "Cargo.toml",
        "src/lib.rs",
        "src/leases.rs",
        "silt-extension/Cargo.toml",
        "silt-extension/src/lease.rs",
        "wit/world.wit",
        "README.md",
    ] {
        assert!(project.join(file).is_file(), "{file} missing");
    }
    let component = cargo_build(&project, "my-datastore");
    add_and_verify(home.path(), &component, "my-datastore");
    // The default template is a whole datastore: every check that applies passes.
    let (code, stdout, stderr) = contract_suite(home.path(), &component);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert!(
        stdout.contains("pass  a lease taken over cannot commit"),
        "{stdout}"
    );
    assert!(
        stdout.contains("pass  a commit held across a forced takeover never lands"),
        "{stdout}"
    );

    // A second scaffold into the same place is refused, not merged.
    let (code, _, stderr) = new_project(home.path(), &["my-datastore"]);
    assert_eq!(code, 1);
    assert!(stderr.contains("already exists"), "{stderr}");
    let (code, _, stderr) = new_project(home.path(), &["My_Ext"]);
    assert_eq!(code, 1);
    assert!(stderr.contains("not a valid extension name"), "{stderr}");
}

/// Replaces `from` in the project's `file` with `to`; the template must
/// still contain `from` (else this test no longer removes what it says).
fn edit(project: &Path, file: &str, from: &str, to: &str) {
    let path = project.join(file);
    let source = std::fs::read_to_string(&path).unwrap();
    assert!(source.contains(from), "{file} no longer contains:\n{from}");
    std::fs::write(&path, source.replace(from, to)).unwrap();
}

#[test]
fn a_datastore_that_never_raises_its_partition_fence_fails_the_suite() {
    // What an author did in the walk-through: took the template and removed
    // the partition fence (the partition as read stands in for the one the
    // raise would have written). Removing the raise at acquisition alone is
    // enough: the commit's own fence check stays, but nothing raised the
    // fence, so it has nothing to refuse. The SDK's look at the lock object
    // before each compare-and-swap still refuses a stale or forged lease,
    // so the fencing check passes it; a commit stopped after that look is
    // not fenced, and the held-commit check must say so.
    let home = tempfile::tempdir().unwrap();
    let (code, _, stderr) = new_project(home.path(), &["my-unfenced"]);
    assert_eq!(code, 0, "{stderr}");
    let project = home.path().join("my-unfenced");
    edit(
        &project,
        "src/leases.rs",
        "    match raise_fence(model, partition, body.generation, &body.token) {\n",
        "    let _ = raise_fence;\n    match Ok::<partition::Versioned, Error>(partition) {\n",
    );
    let component = cargo_build(&project, "my-unfenced");
    let (code, stdout, stderr) = contract_suite(home.path(), &component);
    assert_eq!(code, 1, "{stdout}\n{stderr}");
    assert!(
        stdout.contains("pass  a lease taken over cannot commit"),
        "{stdout}"
    );
    assert!(
        stdout.contains("FAIL  a commit held across a forced takeover never lands"),
        "{stdout}"
    );
    assert!(
        stdout.contains("the commit landed inside the new holder's lease"),
        "{stdout}"
    );
}

#[test]
fn a_minimal_rust_extension_builds_installs_and_runs() {
    let home = tempfile::tempdir().unwrap();
    let (code, _, stderr) = new_project(home.path(), &["my-minimal", "--template", "minimal"]);
    assert_eq!(code, 0, "{stderr}");
    let project = home.path().join("my-minimal");
    assert!(project.join("silt-extension.toml").is_file());
    let component = cargo_build(&project, "my-minimal");
    add_and_verify(home.path(), &component, "my-minimal");
    // The suite runs on it and says what it lacks (the minimal template,
    // like the example it comes from, has no leases).
    let (code, stdout, _) = contract_suite(home.path(), &component);
    assert_eq!(code, 1);
    assert!(
        stdout.contains("pass  describe matches the metadata"),
        "{stdout}"
    );
    assert!(stdout.contains("my-minimal has no locks"), "{stdout}");
    // TypeScript has no minimal template, and says so.
    let (code, _, stderr) =
        new_project(home.path(), &["x", "--lang", "ts", "--template", "minimal"]);
    assert_eq!(code, 1);
    assert!(stderr.contains("Rust only"), "{stderr}");
}

/// `cargo test ARGS` in `project` with this silt first on PATH (the
/// scaffold's `.cargo/config.toml` names `silt extension test-runner`):
/// (exit code, stdout and stderr together).
fn cargo_test(project: &Path, args: &[&str]) -> (i32, String) {
    let target = support::components_dir()
        .parent()
        .expect("components live in the target dir")
        .join("scaffold");
    let silt_dir = Path::new(env!("CARGO_BIN_EXE_silt")).parent().unwrap();
    let path = std::env::join_paths(std::iter::once(silt_dir.to_owned()).chain(
        std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()),
    ))
    .unwrap();
    let output = Command::new(env!("CARGO"))
        .args(["test", "--quiet"])
        .args(args)
        .current_dir(project)
        .env("CARGO_TARGET_DIR", &target)
        .env("PATH", path)
        .env_remove("RUSTFLAGS")
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.code().unwrap_or(-1), text)
}

#[test]
fn cargo_test_runs_an_authors_unit_tests_in_wasm() {
    let home = tempfile::tempdir().unwrap();
    let (code, _, stderr) = new_project(home.path(), &["tested", "--template", "minimal"]);
    assert_eq!(code, 0, "{stderr}");
    let project = home.path().join("tested");
    let mut source = std::fs::read_to_string(project.join("src/lib.rs")).unwrap();
    source.push_str(
        "\n#[cfg(test)]\nmod author_tests {\n    #[test]\n    fn holds() {\n        assert_eq!(2 + 2, 4);\n    }\n\n    #[test]\n    fn fails() {\n        panic!(\"the author's assertion\");\n    }\n}\n",
    );
    std::fs::write(project.join("src/lib.rs"), source).unwrap();
    let (code, output) = cargo_test(&project, &["--", "holds"]);
    assert_eq!(code, 0, "{output}");
    assert!(output.contains("test result: ok. 1 passed"), "{output}");
    let (code, output) = cargo_test(&project, &["--", "fails", "--nocapture"]);
    assert_ne!(code, 0, "{output}");
    assert!(output.contains("the author's assertion"), "{output}");
    assert!(output.contains("silt: the test binary trapped"), "{output}");
}

#[test]
fn the_datastore_templates_cargo_test_runs_its_unit_tests() {
    let home = tempfile::tempdir().unwrap();
    let (code, stdout, stderr) = new_project(home.path(), &["tested-datastore"]);
    assert_eq!(code, 0, "{stderr}");
    // The hint names the tests.
    assert!(stdout.contains("cargo test"), "{stdout}");
    let (code, output) = cargo_test(&home.path().join("tested-datastore"), &[]);
    assert_eq!(code, 0, "{output}");
    assert!(output.contains("test result: ok. 1 passed"), "{output}");
}

/// Runs `program args` in `dir`, failing the test with its output.
fn run_in(dir: &Path, program: &str, args: &[&str]) {
    let output = Command::new(program)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|err| panic!("cannot run {program} (Node.js and npm are needed): {err}"));
    assert!(
        output.status.success(),
        "{program} {args:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn a_scaffolded_typescript_extension_builds_installs_and_passes_the_suite() {
    let home = tempfile::tempdir().unwrap();
    let (code, stdout, stderr) = new_project(home.path(), &["my-ts-store", "--lang", "ts"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("npm install && npm run build"), "{stdout}");
    let project = home.path().join("my-ts-store");

    // The author's commands: install the pinned toolchain, build.
    run_in(
        &project,
        "npm",
        &["install", "--no-audit", "--no-fund", "--loglevel=error"],
    );
    run_in(&project, "npm", &["run", "--silent", "build"]);
    let component = project.join("dist/my-ts-store.wasm");
    assert!(component.is_file());

    add_and_verify(home.path(), &component, "my-ts-store");

    // Unlike the Rust scaffold, it starts as a full datastore: the suite passes.
    let (code, stdout, stderr) = contract_suite(home.path(), &component);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert!(
        stdout.contains("pass  a lease taken over cannot commit"),
        "{stdout}"
    );
}
