//! The extension supply chain against a real registry (the CNCF
//! distribution server on 127.0.0.1) and two clients not written here
//! (skopeo, oras-py): `silt extension publish` and `silt extension add
//! oci://…` / `https://… --sha256`. What is not exactly what was asked
//! for is refused, and nothing is installed then.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

use crate::json_schemas::assert_valid;
use crate::support::registry::{self, Registry};
use crate::support::{self, output};

/// `silt` with nothing of the user's: no auth files, no registry variables.
pub(crate) fn silt(home: &Path) -> Command {
    let mut command = support::silt(home);
    command
        .env("HOME", home)
        .env_remove("XDG_RUNTIME_DIR")
        .env_remove("XDG_CONFIG_HOME")
        .env_remove("REGISTRY_AUTH_FILE")
        .env_remove("DOCKER_CONFIG")
        .env_remove("SILT_REGISTRY_USERNAME")
        .env_remove("SILT_REGISTRY_PASSWORD");
    command
}

/// Runs `silt --json ARGS`, asserts exit 0, returns the JSON.
pub(crate) fn json(home: &Path, args: &[&str]) -> (Value, String) {
    let (code, stdout, stderr) = output(silt(home).arg("--json").args(args));
    assert_eq!(code, 0, "silt {args:?}: {stderr}");
    (serde_json::from_str(&stdout).unwrap(), stdout)
}

pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    silt_registry::sha256_digest(bytes)["sha256:".len()..].to_owned()
}

pub(crate) fn installed_names(home: &Path) -> Vec<String> {
    let (list, _) = json(home, &["extension", "list"]);
    list["extensions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            e["manifest"]["metadata"]["name"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect()
}

#[test]
fn a_published_component_installs_by_tag_and_by_digest_and_other_clients_agree() {
    let registry = Registry::start();
    let home = tempfile::tempdir().unwrap();
    let component = support::component("partitioned-datastore");
    let bytes = std::fs::read(&component).unwrap();
    let tag_ref = registry.reference("team/partitioned:0.1.0");

    let (published, text) = json(
        home.path(),
        &[
            "extension",
            "publish",
            component.to_str().unwrap(),
            &tag_ref,
        ],
    );
    assert_valid("extension-publish", &text);
    let manifest_digest = published["manifest_digest"].as_str().unwrap().to_owned();
    assert_eq!(published["component_sha256"], sha256_hex(&bytes));
    assert_eq!(
        published["reference"],
        format!("{tag_ref}@{manifest_digest}"),
        "the reference printed is pinned to the manifest"
    );

    // skopeo reads the same manifest: its digest is the one silt printed,
    // in the CNCF Wasm layout.
    let raw = registry::skopeo_raw_manifest(&format!("{}/team/partitioned:0.1.0", registry.host));
    assert_eq!(silt_registry::sha256_digest(&raw), manifest_digest);
    let manifest: Value = serde_json::from_slice(&raw).unwrap();
    assert_eq!(
        manifest["config"]["mediaType"],
        "application/vnd.wasm.config.v0+json"
    );
    assert_eq!(manifest["layers"].as_array().unwrap().len(), 1);
    assert_eq!(manifest["layers"][0]["mediaType"], "application/wasm");

    // oras-py pulls the component silt pushed, byte for byte.
    let pulled_dir = home.path().join("oras-pull");
    let pulled = registry::oras_python(&format!(
        "import oras.client\n\
         c = oras.client.OrasClient(hostname='{host}', insecure=True)\n\
         print('\\n'.join(c.pull(target='{host}/team/partitioned:0.1.0', outdir='{out}')))",
        host = registry.host,
        out = pulled_dir.display()
    ));
    let files: Vec<&str> = pulled.lines().collect();
    assert_eq!(files.len(), 1, "{pulled}");
    assert_eq!(
        sha256_hex(&std::fs::read(files[0]).unwrap()),
        sha256_hex(&bytes)
    );

    // Installed by tag: the manifest records the pinned reference.
    let (added, text) = json(home.path(), &["extension", "add", &tag_ref]);
    assert_valid("extension-add", &text);
    let record = &added["manifest"]["component"];
    assert_eq!(record["sha256"], sha256_hex(&bytes));
    assert_eq!(record["manifest_digest"], manifest_digest);
    assert_eq!(record["added_from"], published["reference"]);
    let (code, _, stderr) =
        output(silt(home.path()).args(["extension", "verify", "partitioned-datastore"]));
    assert_eq!(code, 0, "{stderr}");

    // By digest, in another home: the same bytes.
    let other = tempfile::tempdir().unwrap();
    let by_digest = registry.reference(&format!("team/partitioned@{manifest_digest}"));
    let (added, _) = json(other.path(), &["extension", "add", &by_digest]);
    assert_eq!(added["manifest"]["component"]["sha256"], sha256_hex(&bytes));

    // --sha256 pins the component too.
    let (code, _, stderr) = output(silt(other.path()).args([
        "extension",
        "add",
        "--force",
        "--sha256",
        &"0".repeat(64),
        &tag_ref,
    ]));
    assert_eq!(code, 65, "{stderr}");
    assert!(stderr.contains("not the sha256:0000"), "{stderr}");
}

#[test]
fn a_component_another_client_pushed_installs() {
    let registry = Registry::start();
    let home = tempfile::tempdir().unwrap();
    let component = support::component("hello-extension");
    let work = home.path().join("push");
    std::fs::create_dir(&work).unwrap();
    std::fs::copy(&component, work.join("hello.wasm")).unwrap();
    std::fs::write(
        work.join("config.json"),
        r#"{"architecture":"wasm","os":"wasip2","layerDigests":[]}"#,
    )
    .unwrap();
    registry::oras_python(&format!(
        "import os, oras.client\n\
         os.chdir('{work}')\n\
         c = oras.client.OrasClient(hostname='{host}', insecure=True)\n\
         r = c.push(files=['hello.wasm:application/wasm'], target='{host}/other/hello:1.0',\n\
                    manifest_config='config.json:application/vnd.wasm.config.v0+json',\n\
                    disable_path_validation=True)\n\
         assert r.status_code == 201, r.status_code",
        work = work.display(),
        host = registry.host
    ));
    let (added, _) = json(
        home.path(),
        &["extension", "add", &registry.reference("other/hello:1.0")],
    );
    assert_eq!(added["manifest"]["metadata"]["name"], "hello-extension");
    assert_eq!(
        added["manifest"]["component"]["sha256"],
        sha256_hex(&std::fs::read(&component).unwrap())
    );
}

#[test]
fn what_is_not_a_component_or_not_as_pinned_is_refused_and_nothing_installed() {
    let registry = Registry::start();
    let home = tempfile::tempdir().unwrap();
    let refused = |reference: &str, code: i32, says: &str| {
        let (actual, _, stderr) = output(silt(home.path()).args(["extension", "add", reference]));
        assert_eq!(actual, code, "{reference}: {stderr}");
        assert!(stderr.contains(says), "{reference}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(
            installed_names(home.path()).is_empty(),
            "{reference}: something was installed"
        );
    };

    // Pushed by another client: a text file as application/wasm, and a
    // container image's config.
    let work = home.path().join("push");
    std::fs::create_dir(&work).unwrap();
    std::fs::write(work.join("notes.wasm"), "not a component\n").unwrap();
    std::fs::write(work.join("config.json"), "{}").unwrap();
    registry::oras_python(&format!(
        "import os, oras.client\n\
         os.chdir('{work}')\n\
         c = oras.client.OrasClient(hostname='{host}', insecure=True)\n\
         def push(target, config): r = c.push(files=['notes.wasm:application/wasm'], target='{host}/' + target, manifest_config='config.json:' + config, disable_path_validation=True); assert r.status_code == 201, r.status_code\n\
         push('x/text:1', 'application/vnd.wasm.config.v0+json')\n\
         push('x/image:1', 'application/vnd.oci.image.config.v1+json')",
        work = work.display(),
        host = registry.host
    ));
    refused(&registry.reference("x/text:1"), 65, "magic bytes");
    refused(
        &registry.reference("x/image:1"),
        65,
        "not a Wasm component artifact",
    );
    refused(
        &registry.reference("x/missing:1"),
        1,
        "was not found in the registry",
    );

    // A registry (or a disk under it) that changed the component after it
    // was published: the bytes are refused by their digest.
    let component = support::component("hello-extension");
    let (published, _) = json(
        home.path(),
        &[
            "extension",
            "publish",
            component.to_str().unwrap(),
            &registry.reference("t/hello:1"),
        ],
    );
    let layer = silt_registry::sha256_digest(&std::fs::read(&component).unwrap());
    let blob = registry.blob_file(&layer);
    let mut damaged = std::fs::read(&blob).unwrap();
    let middle = damaged.len() / 2;
    damaged[middle] ^= 0x55;
    std::fs::write(&blob, &damaged).unwrap();
    refused(
        &registry.reference("t/hello:1"),
        65,
        "it was changed or replaced",
    );

    // A pinned manifest digest that is not the tag's manifest.
    let other_digest = format!("sha256:{}", "1".repeat(64));
    refused(
        &registry.reference(&format!("t/hello:1@{other_digest}")),
        1,
        "was not found",
    );
    assert!(published["manifest_digest"].as_str().unwrap() != other_digest);

    // Nobody listening.
    let dead = format!(
        "oci://127.0.0.1:{}/t/hello:1",
        support::seaweed::free_port()
    );
    refused(&dead, 69, "check that the address is right");
    // No registry host, no version.
    refused("oci://hello:1", 1, "the registry host must be written out");
    refused(&registry.reference("t/hello"), 1, "name a version");
}

#[test]
fn credentials_come_from_the_auth_file_or_the_environment() {
    let registry = Registry::start_with_auth();
    let home = tempfile::tempdir().unwrap();
    let component = support::component("hello-extension");
    let reference = registry.reference("private/hello:1");
    let publish = |command: &mut Command| {
        output(command.args([
            "extension",
            "publish",
            component.to_str().unwrap(),
            &reference,
        ]))
    };

    let (code, _, stderr) = publish(&mut silt(home.path()));
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains("refused access") && stderr.contains("podman login"),
        "{stderr}"
    );
    assert!(!stderr.contains(registry::PASSWORD), "{stderr}");

    let auth_file = registry.auth_file(home.path());
    let (code, _, stderr) = publish(silt(home.path()).env("REGISTRY_AUTH_FILE", &auth_file));
    assert_eq!(code, 0, "{stderr}");

    // Pull: anonymous is refused, the environment's user is let in.
    let (code, _, stderr) = output(silt(home.path()).args(["extension", "add", &reference]));
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("refused access"), "{stderr}");
    let (code, _, stderr) = output(
        silt(home.path())
            .env("SILT_REGISTRY_USERNAME", registry::USER)
            .env("SILT_REGISTRY_PASSWORD", registry::PASSWORD)
            .args(["extension", "add", &reference]),
    );
    assert_eq!(code, 0, "{stderr}");

    // A wrong password is refused, and not printed.
    let (code, _, stderr) = output(
        silt(home.path())
            .env("SILT_REGISTRY_USERNAME", registry::USER)
            .env("SILT_REGISTRY_PASSWORD", "wrong-password-xyz")
            .args(["extension", "add", "--force", &reference]),
    );
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("refused access"), "{stderr}");
    assert!(!stderr.contains("wrong-password-xyz"), "{stderr}");
}

#[test]
fn a_component_by_url_needs_its_sha256_and_must_match_it() {
    // The registry's blob URL is a real HTTP server handing out a component.
    let registry = Registry::start();
    let home = tempfile::tempdir().unwrap();
    let component = support::component("hello-extension");
    let bytes = std::fs::read(&component).unwrap();
    json(
        home.path(),
        &[
            "extension",
            "publish",
            component.to_str().unwrap(),
            &registry.reference("t/hello:1"),
        ],
    );
    let digest = silt_registry::sha256_digest(&bytes);
    let url = format!("http://{}/v2/t/hello/blobs/{digest}", registry.host);
    let add = |extra: &[&str]| {
        output(
            silt(home.path())
                .args(["extension", "add"])
                .args(extra)
                .arg(&url),
        )
    };

    let (code, _, stderr) = add(&[]);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("needs --sha256"), "{stderr}");
    let (code, _, stderr) = add(&["--sha256", &"ab".repeat(32)]);
    assert_eq!(code, 65, "{stderr}");
    assert!(stderr.contains("not the sha256:abab"), "{stderr}");
    assert!(installed_names(home.path()).is_empty());

    let (code, _, stderr) = add(&["--sha256", &sha256_hex(&bytes)]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(installed_names(home.path()), ["hello-extension"]);

    // Plain http off this machine is refused before anything is sent.
    let (code, _, stderr) = output(silt(home.path()).args([
        "extension",
        "add",
        "--sha256",
        &sha256_hex(&bytes),
        "http://example.com/hello.wasm",
    ]));
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains("plain http is allowed only to this machine"),
        "{stderr}"
    );
}
