//! Every `--json` output has a schema under `docs/json/v2/` (one file per
//! command, `additionalProperties: false` throughout, so a field added to
//! an output without its documentation fails here), and what each command
//! prints validates against it; with `SILT_JSON_VERSION=1`, what the
//! commands whose shape changed print validates against `docs/json/v1/`.

use std::path::PathBuf;

use clap::CommandFactory as _;
use serde_json::Value;

use crate::support;

use support::project::{Backend, Project};

/// The schemas' folder of `version`: the version is in the path (and in
/// each `$id`).
fn schema_dir(version: u8) -> PathBuf {
    support::workspace_root().join(format!("docs/json/v{version}"))
}

fn schema(version: u8, name: &str) -> Value {
    let path = schema_dir(version).join(format!("{name}.json"));
    let text =
        std::fs::read_to_string(&path).unwrap_or_else(|err| panic!("{}: {err}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|err| panic!("{}: {err}", path.display()))
}

/// Asserts `output` (what `silt --json ...` printed) is valid under the
/// current (v2) schema `name`.
#[track_caller]
pub(crate) fn assert_valid(name: &str, output: &str) {
    assert_valid_in(2, name, output);
}

/// Asserts `output` is valid under schema `name` of `version`.
#[track_caller]
fn assert_valid_in(version: u8, name: &str, output: &str) {
    let instance: Value = serde_json::from_str(output)
        .unwrap_or_else(|err| panic!("{name}: not JSON ({err}):\n{output}"));
    let validator = jsonschema::validator_for(&schema(version, name))
        .unwrap_or_else(|err| panic!("{name}: the schema is invalid: {err}"));
    let errors: Vec<String> = validator
        .iter_errors(&instance)
        .map(|err| format!("at {}: {err}", err.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "{name}: the output does not match docs/json/v{version}/{name}.json:\n{}\n{instance:#}",
        errors.join("\n")
    );
}

/// The leaf commands a user can run, as schema names (`data put` →
/// `data-put`); hidden ones and those that print no JSON (docs/json/README.md)
/// are left out.
fn leaf_commands(command: &clap::Command, prefix: &str, into: &mut Vec<String>) {
    for sub in command.get_subcommands() {
        let name = if prefix.is_empty() {
            sub.get_name().to_owned()
        } else {
            format!("{prefix}-{}", sub.get_name())
        };
        let no_json = ["completions", "man", "help", "extension-test-runner"];
        if sub.is_hide_set() || no_json.contains(&name.as_str()) || sub.get_name() == "help" {
            continue;
        }
        if sub.has_subcommands() {
            leaf_commands(sub, &name, into);
        } else {
            into.push(name);
        }
    }
}

#[test]
fn every_command_has_a_schema_and_every_schema_a_command() {
    let mut commands = Vec::new();
    // Built whole first: a command group's subcommands are deferred until
    // clap builds it.
    let mut cli = silt::cli::Cli::command();
    cli.build();
    leaf_commands(&cli, "", &mut commands);
    commands.push("error".to_owned());
    commands.sort();
    for version in [1, 2] {
        let mut schemas: Vec<String> = std::fs::read_dir(schema_dir(version))
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .filter_map(|file| file.strip_suffix(".json").map(str::to_owned))
            .collect();
        schemas.sort();
        assert_eq!(commands, schemas, "v{version}");
        for name in &schemas {
            let schema = schema(version, name);
            assert_eq!(
                schema["$id"],
                format!("urn:silt:json:v{version}:{name}"),
                "{name}"
            );
            jsonschema::validator_for(&schema).unwrap_or_else(|err| panic!("{name}: {err}"));
        }
    }
    // v2: an object at the top of every document (of each shape, for a
    // command that prints one of several).
    for name in &commands {
        let schema = schema(2, name);
        let shapes = match schema["oneOf"].as_array() {
            Some(shapes) => shapes.clone(),
            None => vec![schema.clone()],
        };
        for shape in shapes {
            assert_eq!(shape["type"], "object", "v2 {name}");
        }
    }
}

#[test]
fn the_v1_shapes_are_printed_on_request_and_a_version_that_is_none_is_refused() {
    let project = Project::new(Backend::Dir, "");
    let p = &project;
    let input = p.write_input("in.txt", "one\n");
    p.ok(&["-q", "data", "put", "t/m", "f.txt", &input]);
    let v1 = |args: &[&str]| {
        let (code, stdout, stderr) = support::output(
            p.silt()
                .env("SILT_JSON_VERSION", "1")
                .arg("--json")
                .args(args),
        );
        assert_eq!(code, 0, "{args:?}: {stderr}");
        stdout
    };
    for (name, args) in [
        ("data-list", &["data", "list", "t/m"][..]),
        ("data-history", &["data", "history", "t/m", "f.txt"]),
        ("datastore-lock-status", &["datastore", "lock", "status"]),
        ("datastore-verify", &["datastore", "verify"]),
        ("extension-list", &["extension", "list"]),
        ("cache-show", &["cache", "show"]),
        (
            "datastore-hydrate",
            &["datastore", "hydrate", "--model", "t/m"],
        ),
    ] {
        let printed = v1(args);
        assert_valid_in(1, name, &printed);
        // And the same command's current shape is not v1's.
        assert_valid(name, &json_of(p, 0, args));
    }
    let listed: Value = serde_json::from_str(&v1(&["data", "list", "t/m"])).unwrap();
    assert!(listed.is_array(), "{listed}");
    let listed: Value = serde_json::from_str(&json_of(p, 0, &["data", "list", "t/m"])).unwrap();
    assert_eq!(listed["files"][0]["name"], "f.txt", "{listed}");

    let (code, stdout, stderr) = support::output(
        p.silt()
            .env("SILT_JSON_VERSION", "3")
            .args(["--json", "data", "list", "t/m"]),
    );
    assert_eq!(code, 78, "{stderr}");
    assert!(stderr.contains("SILT_JSON_VERSION=3"), "{stderr}");
    assert_valid("error", &stdout);
}

/// Runs `silt --json ARGS` in `project`, expecting `code`; returns stdout.
#[track_caller]
fn json_of(project: &Project, code: i32, args: &[&str]) -> String {
    let (got, stdout, stderr) = support::output(project.silt().arg("--json").args(args));
    assert_eq!(got, code, "{args:?}: {stderr}");
    stdout
}

#[test]
fn every_json_output_matches_its_schema() {
    let project = Project::new(Backend::Dir, "");
    let p = &project;
    let component = support::component("partitioned-datastore");
    let component = component.to_str().unwrap();
    let scratch = tempfile::tempdir().unwrap();

    assert_valid("extension-list", &json_of(p, 0, &["extension", "list"]));
    assert_valid(
        "extension-add",
        &json_of(p, 0, &["extension", "add", "--force", component]),
    );
    let hello = support::component("hello-extension");
    assert_valid(
        "extension-add",
        &json_of(p, 0, &["extension", "add", hello.to_str().unwrap()]),
    );
    assert_valid(
        "extension-remove",
        &json_of(p, 0, &["extension", "remove", "hello-extension"]),
    );
    for target in [
        "partitioned-datastore",
        support::component("networked").to_str().unwrap(),
    ] {
        assert_valid(
            "extension-inspect",
            &json_of(p, 0, &["extension", "inspect", target]),
        );
    }
    assert_valid(
        "extension-verify",
        &json_of(p, 0, &["extension", "verify", "partitioned-datastore"]),
    );
    let new_dir = scratch.path().join("new");
    assert_valid(
        "extension-new",
        &json_of(
            p,
            0,
            &[
                "extension",
                "new",
                "my-store",
                "--dir",
                new_dir.to_str().unwrap(),
            ],
        ),
    );
    assert_valid(
        "extension-test",
        &json_of(p, 0, &["extension", "test", component]),
    );
    assert_valid("cache-show", &json_of(p, 0, &["cache", "show"]));
    assert_valid(
        "cache-prune",
        &json_of(p, 0, &["cache", "prune", "--max-size-mib", "1024"]),
    );

    assert_valid("datastore-setup", &json_of(p, 0, &["datastore", "setup"]));
    let input = p.write_input("in.txt", "one\n");
    assert_valid(
        "data-put",
        &json_of(p, 0, &["data", "put", "t/m", "f.txt", &input]),
    );
    let got = scratch.path().join("got.txt");
    assert_valid(
        "data-get",
        &json_of(
            p,
            0,
            &["data", "get", "t/m", "f.txt", "-o", got.to_str().unwrap()],
        ),
    );
    assert_valid("data-list", &json_of(p, 0, &["data", "list", "t/m"]));
    assert_valid(
        "data-history",
        &json_of(p, 0, &["data", "history", "t/m", "f.txt"]),
    );
    let script = "echo two > \"$SILT_MODEL_DIR/g.txt\"";
    assert_valid(
        "run",
        &json_of(p, 0, &["run", "--model", "t/m", "--", "sh", "-c", script]),
    );
    assert_valid("datastore-status", &json_of(p, 0, &["datastore", "status"]));
    assert_valid("datastore-verify", &json_of(p, 0, &["datastore", "verify"]));
    for args in [
        &["datastore", "sync"][..],
        &["datastore", "sync", "--pull"],
        &["datastore", "sync", "--push", "--dry-run"],
    ] {
        assert_valid("datastore-sync", &json_of(p, 0, args));
    }
    for args in [
        &["datastore", "gc", "--keep", "1", "--dry-run"][..],
        &["datastore", "gc", "--keep", "1"],
    ] {
        assert_valid("datastore-gc", &json_of(p, 0, args));
    }
    assert_valid(
        "datastore-hydrate",
        &json_of(p, 0, &["datastore", "hydrate", "--model", "t/m"]),
    );
    assert_valid(
        "datastore-hydrate",
        &json_of(p, 0, &["datastore", "hydrate", "--background"]),
    );
    // The status once the background hydrator has recorded its end.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let status = json_of(p, 0, &["datastore", "hydrate", "--status"]);
        assert_valid("datastore-hydrate", &status);
        let value: Value = serde_json::from_str(&status).unwrap();
        let background = &value["background"];
        if background["running"] == false && background["last"].is_object() {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{value:#}");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_valid("datastore-doctor", &json_of(p, 0, &["datastore", "doctor"]));

    // Leases: none, then one held by a run in progress.
    assert_valid(
        "datastore-lock-status",
        &json_of(p, 0, &["datastore", "lock", "status"]),
    );
    let mut holder = p
        .silt()
        .args(["-q", "run", "--model", "t/m", "--", "sleep", "30"])
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let status = json_of(p, 0, &["datastore", "lock", "status", "--model", "t/m"]);
        assert_valid("datastore-lock-status", &status);
        if status.contains("\"generation\"") {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the run never held its lease"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    holder.kill().unwrap();
    holder.wait().unwrap();
    let released = json_of(
        p,
        0,
        &["datastore", "lock", "release", "--force", "--model", "t/m"],
    );
    assert_valid("datastore-lock-release", &released);
    assert!(released.contains("\"holder\""), "{released}");
    assert_valid(
        "datastore-lock-release",
        &json_of(
            p,
            0,
            &["datastore", "lock", "release", "--force", "--model", "t/m"],
        ),
    );

    assert_valid("data-rm", &json_of(p, 0, &["data", "rm", "t/m", "f.txt"]));
    assert_valid("sandbox-check", &json_of(p, 0, &["sandbox", "check"]));
    assert_valid(
        "error",
        &json_of(p, 1, &["data", "get", "t/m", "missing.txt", "-o", "x"]),
    );

    // The init of a new project last: it writes its own silt.toml.
    let fresh = tempfile::tempdir().unwrap();
    let (code, stdout, stderr) = support::output(
        support::silt(fresh.path())
            .env("SILT_EXTENSIONS_DIR", p.path().join("extensions"))
            .args(["--json", "init"]),
    );
    assert_eq!(code, 0, "{stderr}");
    assert_valid("init", &stdout);
}
