//! `[extensions.require]` and `silt.lock` against a real registry: a fresh
//! clone installs exactly the locked bytes (by the first command that needs
//! them), `update` moves the lock on purpose, bytes that differ from the
//! lock are refused, and a development build by path is re-installed
//! whenever it changes, without `--force` and without a lock entry.

use std::path::Path;

use serde_json::Value;

use crate::json_schemas::assert_valid;
use crate::registry::{installed_names, json, sha256_hex, silt};
use crate::support::registry::Registry;
use crate::support::{self, output};

/// `bytes` (a component) with one more custom section: another build of
/// the same extension, valid, with another sha256.
fn rebuilt(bytes: &[u8], note: &str) -> Vec<u8> {
    let name = b"silt-test-build";
    let mut payload = vec![name.len() as u8];
    payload.extend_from_slice(name);
    payload.extend_from_slice(note.as_bytes());
    assert!(payload.len() < 128, "one-byte LEB128 sizes only");
    let mut out = bytes.to_vec();
    out.push(0); // custom section
    out.push(payload.len() as u8);
    out.extend_from_slice(&payload);
    out
}

fn write_project(dir: &Path, require: &str) {
    std::fs::write(
        dir.join("silt.toml"),
        format!("[datastore]\nbackend = \"dir\"\n\n[extensions.require]\n{require}\n"),
    )
    .unwrap();
}

/// A second clone of `project`: its silt.toml and silt.lock, nothing else.
fn clone_of(project: &Path) -> tempfile::TempDir {
    let clone = tempfile::tempdir().unwrap();
    for file in ["silt.toml", "silt.lock"] {
        std::fs::copy(project.join(file), clone.path().join(file)).unwrap();
    }
    clone
}

fn installed_sha(home: &Path, name: &str) -> String {
    let (list, _) = json(home, &["extension", "list"]);
    list["extensions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["manifest"]["metadata"]["name"] == name)
        .map(|e| {
            e["manifest"]["component"]["sha256"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .unwrap_or_default()
}

fn lock_of(project: &Path) -> toml::Table {
    toml::from_str(&std::fs::read_to_string(project.join("silt.lock")).unwrap()).unwrap()
}

/// The project's one lock entry pins `component`, through a reference
/// containing `pinned`, speaking this silt's contract.
#[track_caller]
fn assert_locked(project: &Path, component: &[u8], pinned: &str) {
    let lock = lock_of(project);
    let locked = &lock["extension"].as_array().unwrap()[0];
    assert_eq!(locked["sha256"].as_str().unwrap(), sha256_hex(component));
    let reference = locked["reference"].as_str().unwrap();
    assert!(reference.contains(pinned), "{reference}");
    assert_eq!(locked["contract"].as_str().unwrap(), "silt:datastore@0.7.4");
}

#[test]
fn a_fresh_clone_installs_the_locked_component_until_update_moves_the_lock() {
    let registry = Registry::start();
    let original = std::fs::read(support::component("partitioned-datastore")).unwrap();
    let next = rebuilt(&original, "0.1.1");
    let scratch = tempfile::tempdir().unwrap();
    let publish = |bytes: &[u8], tag: &str| {
        let file = scratch.path().join(format!("{tag}.wasm"));
        std::fs::write(&file, bytes).unwrap();
        json(
            scratch.path(),
            &[
                "extension",
                "publish",
                file.to_str().unwrap(),
                &registry.reference(&format!("team/store:{tag}")),
            ],
        )
        .0
    };
    publish(&original, "0.1.0");
    publish(&original, "0.2.0"); // outside ^0.1

    let project = tempfile::tempdir().unwrap();
    write_project(
        project.path(),
        &format!(
            "partitioned-datastore = {{ oci = \"{}/team/store\", version = \"^0.1\" }}",
            registry.host
        ),
    );
    let (report, text) = json(project.path(), &["extension", "install"]);
    assert_valid("extension-install", &text);
    assert_eq!(report["extensions"][0]["action"], "locked");
    assert_locked(project.path(), &original, "team/store:0.1.0@sha256:");

    // A newer build appears under ^0.1, and the tag 0.1.0 is moved to it
    // too. A clone still gets the locked bytes, by the first command that
    // needs the extension.
    publish(&next, "0.1.1");
    publish(&next, "0.1.0");
    let clone = clone_of(project.path());
    let (code, _, stderr) = output(silt(clone.path()).args(["datastore", "setup"]));
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stderr.contains("installed as silt.lock pins it"),
        "{stderr}"
    );
    assert_eq!(
        installed_sha(clone.path(), "partitioned-datastore"),
        sha256_hex(&original)
    );
    let (code, _, stderr) = output(silt(clone.path()).args(["data", "list", "t/m"]));
    assert_eq!(code, 0, "{stderr}");
    assert!(!stderr.contains("installed"), "installed twice: {stderr}");
    let (report, _) = json(clone.path(), &["extension", "install"]);
    assert_eq!(report["extensions"][0]["action"], "up-to-date");
    assert_eq!(
        std::fs::read(clone.path().join("silt.lock")).unwrap(),
        std::fs::read(project.path().join("silt.lock")).unwrap()
    );

    // update moves the lock to the highest matching tag, on purpose.
    let (report, text) = json(
        clone.path(),
        &["extension", "update", "partitioned-datastore"],
    );
    assert_valid("extension-update", &text);
    assert_eq!(report["extensions"][0]["action"], "updated");
    assert_eq!(report["extensions"][0]["previous_version"], "0.1.0");
    assert_eq!(
        installed_sha(clone.path(), "partitioned-datastore"),
        sha256_hex(&next)
    );
    assert_locked(clone.path(), &next, "team/store:0.1.1@sha256:");
}

#[test]
fn bytes_that_differ_from_the_lock_are_refused_and_nothing_is_installed() {
    let registry = Registry::start();
    let component = support::component("partitioned-datastore");
    let bytes = std::fs::read(&component).unwrap();
    let project = tempfile::tempdir().unwrap();
    json(
        project.path(),
        &[
            "extension",
            "publish",
            component.to_str().unwrap(),
            &registry.reference("team/store:1"),
        ],
    );
    // By URL (the registry's blob URL is a real server): the lock pins it.
    let url = format!(
        "http://{}/v2/team/store/blobs/{}",
        registry.host,
        silt_registry::sha256_digest(&bytes)
    );
    write_project(
        project.path(),
        &format!(
            "partitioned-datastore = {{ url = \"{url}\", sha256 = \"{}\" }}",
            sha256_hex(&bytes)
        ),
    );
    let (report, _) = json(project.path(), &["extension", "install"]);
    assert_eq!(report["extensions"][0]["action"], "locked");

    // The server's bytes change under the URL: a fresh clone refuses them.
    let blob = registry.blob_file(&silt_registry::sha256_digest(&bytes));
    let mut damaged = std::fs::read(&blob).unwrap();
    let last = damaged.len() - 1;
    damaged[last] ^= 1;
    std::fs::write(&blob, &damaged).unwrap();
    let clone = clone_of(project.path());
    for args in [&["extension", "install"][..], &["data", "list", "t/m"]] {
        let (code, _, stderr) = output(silt(clone.path()).args(args));
        assert_eq!(code, 65, "{args:?}: {stderr}");
        assert!(
            stderr.contains("silt.lock pins")
                && stderr.contains("silt extension update partitioned-datastore"),
            "{stderr}"
        );
        assert!(installed_names(clone.path()).is_empty());
    }

    // A damaged silt.lock is named, with what to do.
    std::fs::write(
        clone.path().join("silt.lock"),
        "version = 1\n[[extension]]\nname = 3\n",
    )
    .unwrap();
    let (code, _, stderr) = output(silt(clone.path()).args(["extension", "install"]));
    assert_ne!(code, 0);
    assert!(
        stderr.contains("silt.lock") && stderr.contains("restore it from version control"),
        "{stderr}"
    );
}

#[test]
fn what_a_requirement_resolves_to_must_be_that_extension() {
    let registry = Registry::start();
    let project = tempfile::tempdir().unwrap();
    let hello = support::component("hello-extension");
    json(
        project.path(),
        &[
            "extension",
            "publish",
            hello.to_str().unwrap(),
            &registry.reference("team/hello:1.0.0"),
        ],
    );
    for (require, code, says) in [
        (
            format!(
                "my-store = {{ oci = \"{}/team/hello:1.0.0\" }}",
                registry.host
            ),
            1,
            "is an extension called `hello-extension`",
        ),
        (
            format!(
                "hello-extension = {{ oci = \"{}/team/hello\", version = \"^2\" }}",
                registry.host
            ),
            1,
            "no tag of",
        ),
        (
            "hello-extension = { oci = \"127.0.0.1:1/team/hello:1\", url = \"https://x\" }"
                .to_owned(),
            78,
            "exactly one of",
        ),
    ] {
        write_project(project.path(), &require);
        let (actual, _, stderr) = output(silt(project.path()).args(["extension", "install"]));
        assert_eq!(actual, code, "{require}: {stderr}");
        assert!(stderr.contains(says), "{require}: {stderr}");
        assert!(
            !project.path().join("extensions").exists()
                || std::fs::read_dir(project.path().join("extensions"))
                    .unwrap()
                    .count()
                    == 0,
            "{require}: something was installed"
        );
        assert!(!project.path().join("silt.lock").exists(), "{require}");
    }
}

#[test]
fn a_development_build_by_path_is_reinstalled_when_it_changes_and_never_locked() {
    let project = tempfile::tempdir().unwrap();
    let build = project.path().join("build");
    std::fs::create_dir(&build).unwrap();
    let original = std::fs::read(support::component("partitioned-datastore")).unwrap();
    std::fs::write(build.join("store.wasm"), &original).unwrap();
    write_project(
        project.path(),
        "partitioned-datastore = { path = \"build/store.wasm\" }",
    );
    let (code, _, stderr) = output(silt(project.path()).args(["datastore", "setup"]));
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("(development; not locked)"), "{stderr}");
    assert_eq!(
        installed_sha(project.path(), "partitioned-datastore"),
        sha256_hex(&original)
    );

    // A new build of the same version: the next command installs it, no --force.
    let changed = rebuilt(&original, "dev 2");
    std::fs::write(build.join("store.wasm"), &changed).unwrap();
    let (code, _, stderr) = output(silt(project.path()).args(["data", "list", "t/m"]));
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(
        installed_sha(project.path(), "partitioned-datastore"),
        sha256_hex(&changed)
    );
    let (report, _): (Value, _) = json(project.path(), &["extension", "install"]);
    assert_eq!(report["extensions"][0]["action"], "up-to-date");
    let (code, _, stderr) = output(silt(project.path()).args(["data", "list", "t/m"]));
    assert_eq!(code, 0, "{stderr}");
    assert!(
        !stderr.contains("installed"),
        "an unchanged build reinstalled: {stderr}"
    );
    assert!(
        !project.path().join("silt.lock").exists(),
        "a path was locked"
    );
}

#[test]
fn init_names_the_datastore_extension_by_reference_and_locks_it() {
    let registry = Registry::start();
    let component = support::component("partitioned-datastore");
    let project = tempfile::tempdir().unwrap();
    json(
        project.path(),
        &[
            "extension",
            "publish",
            component.to_str().unwrap(),
            &registry.reference("team/store:0.1.0"),
        ],
    );
    let (report, text) = json(
        project.path(),
        &[
            "init",
            "--extension",
            &registry.reference("team/store:0.1.0"),
        ],
    );
    assert_valid("init", &text);
    assert_eq!(report["datastore_ready"], true, "{report}");
    let config = std::fs::read_to_string(project.path().join("silt.toml")).unwrap();
    assert!(
        config.contains(&format!(
            "partitioned-datastore = {{ oci = \"{}/team/store:0.1.0\" }}",
            registry.host
        )),
        "{config}"
    );
    let lock = lock_of(project.path());
    assert_eq!(
        lock["extension"].as_array().unwrap()[0]["sha256"]
            .as_str()
            .unwrap(),
        sha256_hex(&std::fs::read(&component).unwrap())
    );

    // A reference that does not resolve leaves nothing behind.
    let other = tempfile::tempdir().unwrap();
    let (code, _, stderr) = output(silt(other.path()).args([
        "init",
        "--extension",
        &registry.reference("team/missing:1"),
    ]));
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("was not found"), "{stderr}");
    assert_eq!(std::fs::read_dir(other.path()).unwrap().count(), 0);
}
