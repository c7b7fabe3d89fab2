//! The `silt` command as a user runs it: discovery never compiles, errors
//! are clear and pick the right exit code, `--json` is machine-readable.

use crate::support;

use support::{component, hello_variants, output, silt};

#[test]
fn help_and_version_touch_nothing() {
    let home = tempfile::tempdir().unwrap();
    for args in [&["--help"][..], &["--version"], &["extension", "--help"]] {
        let (code, stdout, stderr) = output(silt(home.path()).args(args));
        assert_eq!(code, 0, "{args:?}: {stderr}");
        assert!(!stdout.is_empty());
    }
    assert!(
        !home.path().join("cache").exists(),
        "--help created the artifact cache"
    );
}

#[test]
fn listing_100_extensions_compiles_nothing() {
    let home = tempfile::tempdir().unwrap();
    let copies = hello_variants();
    for copy in &copies {
        let (code, _, stderr) =
            output(silt(home.path()).args(["-q", "extension", "add"]).arg(copy));
        assert_eq!(code, 0, "{stderr}");
    }
    let (code, stdout, stderr) = output(silt(home.path()).args(["extension", "list"]));
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(
        stdout
            .lines()
            .filter(|l| l.starts_with("hello-extensi"))
            .count(),
        100,
        "{stdout}"
    );
    let (code, stdout, _) = output(silt(home.path()).args(["--json", "extension", "list"]));
    assert_eq!(code, 0);
    assert_eq!(stdout.matches("\"sha256\"").count(), 100);
    let (code, _, _) = output(silt(home.path()).args(["extension", "inspect", "hello-extensi42"]));
    assert_eq!(code, 0);
    assert!(
        !home.path().join("cache").exists(),
        "discovery compiled something"
    );
}

#[test]
fn verify_compiles_on_first_use_and_reuses_in_the_next_process() {
    let home = tempfile::tempdir().unwrap();
    let (code, _, stderr) = output(
        silt(home.path())
            .args(["extension", "add"])
            .arg(component("hello-extension")),
    );
    assert_eq!(code, 0, "{stderr}");
    let (code, first, stderr) =
        output(silt(home.path()).args(["--json", "extension", "verify", "hello-extension"]));
    assert_eq!(code, 0, "{stderr}");
    assert!(first.contains("\"kind\": \"compiled\""), "{first}");
    let (code, second, stderr) =
        output(silt(home.path()).args(["--json", "extension", "verify", "hello-extension"]));
    assert_eq!(code, 0, "{stderr}");
    assert!(second.contains("\"kind\": \"cached\""), "{second}");
    let (code, shown, _) = output(silt(home.path()).args(["cache", "show"]));
    assert_eq!(code, 0);
    assert!(shown.contains("1 artifact,"), "{shown}");
    let (code, pruned, _) = output(silt(home.path()).args(["cache", "prune", "--all"]));
    assert_eq!(code, 0);
    assert!(pruned.contains("removed 1 artifact"), "{pruned}");
}

#[test]
fn a_malformed_config_names_file_line_and_column() {
    let home = tempfile::tempdir().unwrap();
    std::fs::write(
        home.path().join("silt.toml"),
        "[runtime]\ndeadline_ms = \"soon\"\n",
    )
    .unwrap();
    let (code, _, stderr) = output(silt(home.path()).args(["extension", "list"]));
    assert_eq!(code, 78, "{stderr}");
    assert!(
        stderr.contains("silt.toml") && stderr.contains("line 2, column 15"),
        "{stderr}"
    );
}

#[test]
fn a_forbidden_component_is_refused_with_exit_code_65() {
    let home = tempfile::tempdir().unwrap();
    let (code, _, stderr) = output(
        silt(home.path())
            .args(["extension", "add"])
            .arg(component("networked")),
    );
    assert_eq!(code, 65, "{stderr}");
    assert!(
        stderr.contains("networked.wasm") && stderr.contains("wasi:sockets"),
        "{stderr}"
    );
    let (code, stdout, _) = output(
        silt(home.path())
            .args(["--json", "extension", "add"])
            .arg(component("partial")),
    );
    assert_eq!(code, 65);
    assert!(stdout.contains("\"exit_code\":65"), "{stdout}");
}

#[test]
fn unknown_extensions_say_what_to_do() {
    let home = tempfile::tempdir().unwrap();
    let (code, _, stderr) = output(silt(home.path()).args(["extension", "verify", "nope"]));
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("silt extension list"), "{stderr}");
}

#[test]
fn doctor_trusts_the_embedded_directory_store() {
    let home = tempfile::tempdir().unwrap();
    std::fs::write(
        home.path().join("silt.toml"),
        "[datastore]\nbackend = \"dir\"\n",
    )
    .unwrap();
    let (code, stdout, stderr) = output(silt(home.path()).args(["datastore", "doctor"]));
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("safe for concurrent writers"), "{stdout}");
    assert!(
        home.path().join(".silt/store").is_dir(),
        "the embedded default lives in .silt/store"
    );
}

fn s3_config(home: &std::path::Path, endpoint: &str) {
    let text = format!(
        "[datastore]\nbackend = \"s3\"\nnamespace = \"team/project\"\n[datastore.s3]\nbucket = \"cli-doctor\"\nendpoint = \"{endpoint}\"\n"
    );
    std::fs::write(home.join("silt.toml"), text).unwrap();
}

#[tokio::test]
async fn doctor_checks_an_s3_store_from_silt_toml() {
    let server = support::seaweed::server();
    support::seaweed::store("cli-doctor", "").await;

    let home = tempfile::tempdir().unwrap();
    s3_config(home.path(), &server.endpoint);
    let (code, stdout, stderr) = output(
        silt(home.path())
            .args(["--json", "datastore", "doctor"])
            .env("AWS_ACCESS_KEY_ID", support::seaweed::ACCESS_KEY)
            .env("AWS_SECRET_ACCESS_KEY", support::seaweed::SECRET_KEY),
    );
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("\"trustworthy\": true"), "{stdout}");
    assert!(stdout.contains("s3://cli-doctor"), "{stdout}");
}

#[test]
fn doctor_on_a_dead_server_says_so_with_exit_code_69() {
    let home = tempfile::tempdir().unwrap();
    let port = support::seaweed::free_port();
    s3_config(home.path(), &format!("http://127.0.0.1:{port}"));
    let (code, _, stderr) = output(
        silt(home.path())
            .args(["datastore", "doctor"])
            .env("AWS_ACCESS_KEY_ID", "x")
            .env("AWS_SECRET_ACCESS_KEY", "y"),
    );
    assert_eq!(code, 69, "{stderr}");
    assert!(stderr.contains("cannot reach the server"), "{stderr}");
}

#[test]
fn add_says_plainly_what_is_not_an_extension() {
    let home = tempfile::tempdir().unwrap();
    let (code, _, stderr) =
        output(silt(home.path()).args(["extension", "add", "https://example.com/x.wasm"]));
    assert_eq!(code, 1, "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("needs --sha256") && !stderr.contains("os error"),
        "{stderr}"
    );

    let text = home.path().join("Cargo.toml");
    std::fs::write(&text, "[workspace]\n").unwrap();
    let (code, _, stderr) = output(silt(home.path()).args(["extension", "add"]).arg(&text));
    assert_eq!(code, 65, "{stderr}");
    assert!(stderr.contains("magic bytes"), "{stderr}");
    // (The temporary directory's random name may hold `0x` itself.)
    let message = stderr.replace(text.to_str().unwrap(), "FILE");
    assert!(!message.contains("0x"), "a dump of bytes: {stderr}");

    std::fs::write(
        home.path().join("silt.toml"),
        "[datastore]\nextension = \"/tmp/x.wasm\"\n",
    )
    .unwrap();
    let (code, _, stderr) = output(silt(home.path()).args(["data", "list", "t/m"]));
    assert_eq!(code, 78, "{stderr}");
    assert!(
        stderr.contains("silt extension add /tmp/x.wasm") && !stderr.contains(".wasm.wasm"),
        "{stderr}"
    );
}

#[test]
fn an_endpoint_that_is_not_a_url_is_a_configuration_error() {
    let home = tempfile::tempdir().unwrap();
    // No scheme; a space in the host (which passed the scheme check and
    // was then exit 69, as if unreachable); a port out of range.
    for endpoint in [
        "127.0.0.1:8333",
        "https://exa mple.com",
        "https://s3.example.com:99999",
    ] {
        s3_config(home.path(), endpoint);
        let (code, _, stderr) = output(
            silt(home.path())
                .args(["datastore", "doctor"])
                .env("AWS_ACCESS_KEY_ID", "x")
                .env("AWS_SECRET_ACCESS_KEY", "y"),
        );
        assert_eq!(code, 78, "{endpoint}: {stderr}");
        assert!(stderr.contains("not an http(s) URL"), "{stderr}");
        assert!(stderr.contains("[datastore.s3]"), "{stderr}");
        assert!(!stderr.contains("cannot reach"), "{stderr}");
    }
}

#[test]
fn bad_command_lines_exit_2_and_say_how_to_write_them() {
    let project = support::project::Project::new(support::project::Backend::Dir, "");
    for reference in ["a", "../x", "t//m", "t/.", "t/m\u{7}"] {
        let (code, _, stderr) = project.run(&["data", "list", reference]);
        assert_eq!(code, 2, "{reference:?}: {stderr}");
        assert!(stderr.contains("is not a model reference"), "{stderr}");
        assert!(stderr.contains("<type>/<id>"), "{stderr}");
        assert!(!stderr.contains('\u{7}'), "raw control character: {stderr}");
    }
    let (code, _, stderr) = project.run(&["--json", "data", "get", "t/m", "a.txt"]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("pass -o"), "{stderr}");
    let (code, _, stderr) = project.run(&["data", "rm", "t/m", "a.txt", "--base", "none"]);
    assert_eq!(code, 2, "{stderr}");
    // hydrate without saying what: every way is named, not only --model.
    let (code, _, stderr) = project.run(&["datastore", "hydrate"]);
    assert_eq!(code, 2, "{stderr}");
    for way in ["--model", "--all", "--status", "--background"] {
        assert!(stderr.contains(way), "{way}: {stderr}");
    }
}

#[test]
fn a_command_line_refused_under_json_prints_the_error_document() {
    let project = support::project::Project::new(support::project::Backend::Dir, "");
    for args in [
        &["--json", "data", "put", "t/m"][..],
        &["--json", "data", "list", "t/m", "--no-such-flag"],
        &["data", "--json", "no-such-command"],
    ] {
        let (code, stdout, stderr) = project.run(args);
        assert_eq!(code, 2, "{args:?}: {stderr}");
        let document: serde_json::Value = serde_json::from_str(&stdout)
            .unwrap_or_else(|err| panic!("{args:?}: not one JSON document ({err}): {stdout}"));
        assert_eq!(document["error"]["exit_code"], 2, "{stdout}");
        let message = document["error"]["message"].as_str().unwrap();
        assert!(message.contains("Usage:"), "{message}");
        // The same message on stderr, as clap prints it.
        assert!(stderr.contains("Usage:"), "{stderr}");
    }
    // Without --json (or with it only after `--`), clap's text alone.
    let (code, stdout, _) = project.run(&["data", "put", "t/m"]);
    assert_eq!((code, stdout.as_str()), (2, ""));
    // Help is help, with or without --json.
    let (code, stdout, _) = project.run(&["--json", "data", "--help"]);
    assert_eq!(code, 0);
    assert!(stdout.contains("Usage:"), "{stdout}");
}

#[test]
fn run_json_keeps_stdout_for_its_report_and_the_commands_output_goes_to_stderr() {
    let project = support::project::Project::new(support::project::Backend::Dir, "");
    let (code, stdout, stderr) = project.run(&[
        "--json",
        "run",
        "--model",
        "t/m",
        "--",
        "sh",
        "-c",
        "echo from-the-command; echo made > \"$SILT_MODEL_DIR/a.txt\"",
    ]);
    assert_eq!(code, 0, "{stderr}");
    let report: serde_json::Value = serde_json::from_str(&stdout)
        .unwrap_or_else(|err| panic!("not one JSON document ({err}): {stdout}"));
    assert_eq!(report["models"][0], "t/m", "{stdout}");
    assert!(stderr.contains("from-the-command"), "{stderr}");
    // Without --json the command's stdout is silt's.
    let (code, stdout, stderr) = project.run(&["run", "--model", "t/m", "--", "echo", "plain"]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(stdout, "plain\n");
}

#[test]
fn warnings_read_as_silts_messages_and_v_shows_requests_calls_and_leases() {
    let project = support::project::Project::new(support::project::Backend::Dir, "");
    let input = project.write_input("in", "one\n");
    project.ok(&["data", "put", "t/m", "a.txt", &input]);
    project.ok(&["data", "list", "t/m"]);
    // A link where the working copy's file was: never followed, said as a
    // warning, and the file comes from the store.
    let file = project.model_dir("t/m").join("a.txt");
    assert!(file.is_file());
    std::fs::remove_file(&file).unwrap();
    std::os::unix::fs::symlink(&input, &file).unwrap();
    let (code, stdout, stderr) = project.run(&["data", "get", "t/m", "a.txt"]);
    assert_eq!((code, stdout.as_str()), (0, "one\n"), "{stderr}");
    let warning = stderr
        .lines()
        .find(|line| line.contains("reading the committed version"))
        .unwrap_or_else(|| panic!("no warning: {stderr}"));
    assert!(warning.starts_with("silt: warning: "), "{stderr}");

    // Without -v: nothing but the command's own output.
    let (code, _, stderr) = project.run(&["run", "--model", "t/m", "--", "true"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(!stderr.contains("store.request"), "{stderr}");
    // -v: each request, extension call and lease, with its time; none of
    // wasmtime's or WASI's internals.
    let (code, _, stderr) = project.run(&["-v", "run", "--model", "t/m", "--", "true"]);
    assert_eq!(code, 0, "{stderr}");
    for span in [
        "silt: store.request op=",
        "silt: extension.call",
        "silt: lease.acquire",
        "silt: silt.command",
    ] {
        assert!(
            stderr
                .lines()
                .any(|line| line.starts_with(span) && line.ends_with(" ms)")),
            "no `{span}` line: {stderr}"
        );
    }
    for internal in ["wasmtime", "cranelift", "wasi"] {
        assert!(!stderr.contains(internal), "{internal}: {stderr}");
    }
}

#[test]
fn a_run_whose_command_cannot_start_exits_as_a_shell_does() {
    let project = support::project::Project::new(support::project::Backend::Dir, "");
    let (code, _, stderr) =
        project.run(&["run", "--model", "t/m", "--", "silt-test-no-such-command"]);
    assert_eq!(code, 127, "{stderr}");
    assert!(stderr.contains("no such command"), "{stderr}");
    assert!(stderr.contains("nothing ran"), "{stderr}");
    let script = project.path().join("not-executable.sh");
    std::fs::write(&script, "#!/bin/sh\nexit 0\n").unwrap();
    let (code, _, stderr) = project.run(&["run", "--model", "t/m", "--", script.to_str().unwrap()]);
    assert_eq!(code, 126, "{stderr}");
    assert!(stderr.contains("not executable"), "{stderr}");
    // No lease is left behind.
    let (code, stdout, stderr) = project.run(&["datastore", "lock", "status"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("no leases are held"), "{stdout}");
}

#[test]
fn verify_that_finds_problems_prints_one_json_document() {
    let project = support::project::Project::new(support::project::Backend::Dir, "");
    let input = project.write_input("in", "one\n");
    project.ok(&["data", "put", "t/m", "f.txt", &input]);
    project.overwrite_object("data/t/m/f.txt/1700000000000-00000000000000aa", b"stray\n");
    let (code, stdout, stderr) = project.run(&["--json", "datastore", "verify"]);
    assert_eq!(code, 1, "{stderr}");
    // One document: the findings, not the findings and then an error.
    let findings: serde_json::Value = serde_json::from_str(&stdout)
        .unwrap_or_else(|err| panic!("not one JSON document ({err}): {stdout}"));
    assert_eq!(
        findings["findings"].as_array().map(Vec::len),
        Some(1),
        "{stdout}"
    );
    assert!(stderr.contains("verify found 1 problem"), "{stderr}");
}

#[test]
fn a_put_with_its_file_forgotten_at_a_terminal_refuses_instead_of_waiting() {
    let project = support::project::Project::new(support::project::Backend::Dir, "");
    // `silt data put t/m a.txt` with a terminal on stdin (a pty python makes).
    let silt = project.silt();
    let mut python = std::process::Command::new("python3");
    python.current_dir(project.path());
    for (name, value) in silt.get_envs() {
        match value {
            Some(value) => python.env(name, value),
            None => python.env_remove(name),
        };
    }
    python
        .args([
            "-c",
            "import os, pty, sys; sys.exit(os.waitstatus_to_exitcode(pty.spawn(sys.argv[1:])))",
        ])
        .arg(silt.get_program())
        .args(["data", "put", "t/m", "a.txt"]);
    let started = std::time::Instant::now();
    let (code, stdout, stderr) = output(&mut python);
    assert_eq!(code, 2, "{stdout}{stderr}");
    assert!(stdout.contains("stdin is a terminal"), "{stdout}{stderr}");
    assert!(started.elapsed() < std::time::Duration::from_secs(30));
    // Nothing was committed.
    let (code, stdout, _) = project.run(&["data", "list", "t/m"]);
    assert_eq!(code, 0);
    assert!(stdout.contains("no files"), "{stdout}");
}

/// The README's order: `silt extension add` outside any project installs
/// into the user's extensions; `silt init` in a new directory then finds
/// it there, copies it into the project and sets the datastore up, and the
/// same file added again is a no-op, not an error.
#[test]
fn a_new_project_finds_the_extension_the_user_added_outside_any_project() {
    let home = tempfile::tempdir().unwrap();
    let data = home.path().join("data");
    let user = |dir: &std::path::Path| {
        let mut command = silt(dir);
        command
            .env_remove("SILT_EXTENSIONS_DIR")
            .env("XDG_DATA_HOME", &data)
            .env("HOME", home.path());
        command
    };
    let outside = home.path().join("outside");
    std::fs::create_dir(&outside).unwrap();
    let datastore = component("partitioned-datastore");
    for _ in 0..2 {
        let (code, _, stderr) = output(
            user(&outside)
                .args(["-q", "extension", "add"])
                .arg(&datastore),
        );
        assert_eq!(code, 0, "{stderr}");
    }
    assert!(data.join("silt/extensions/partitioned-datastore").is_dir());

    let project = home.path().join("project");
    std::fs::create_dir(&project).unwrap();
    let (code, stdout, stderr) = output(user(&project).arg("init"));
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(
        format!("{stdout}{stderr}").contains("installed into this project from your extensions"),
        "{stdout}{stderr}"
    );
    assert!(
        project
            .join(".silt/extensions/partitioned-datastore")
            .is_dir()
    );
    // The working copy and the local datastore stay out of version control.
    let ignored = std::fs::read_to_string(project.join(".silt/.gitignore")).unwrap();
    assert!(ignored.lines().any(|line| line == "*"), "{ignored}");
    std::fs::write(project.join("w.bin"), b"weights").unwrap();
    let (code, _, stderr) = output(user(&project).args(["data", "put", "t/m", "w.bin", "w.bin"]));
    assert_eq!(code, 0, "{stderr}");

    // Removing the extension the datastore runs on needs --force.
    let remove = ["extension", "remove", "partitioned-datastore"];
    let (code, _, stderr) = output(user(&project).args(remove));
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("--force"), "{stderr}");
    assert!(
        project
            .join(".silt/extensions/partitioned-datastore")
            .is_dir()
    );
    // A model the datastore does not hold is not "verified".
    let (code, _, stderr) =
        output(user(&project).args(["datastore", "verify", "--model", "no/such"]));
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("has no model no/such"), "{stderr}");
    let (code, _, stderr) = output(user(&project).args(["datastore", "verify", "--model", "t/m"]));
    assert_eq!(code, 0, "{stderr}");
    // Nor is its status "nothing changed".
    let (code, _, stderr) =
        output(user(&project).args(["datastore", "status", "--model", "no/such"]));
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("has no model no/such"), "{stderr}");
    let (code, _, stderr) = output(user(&project).args(["datastore", "status", "--model", "t/m"]));
    assert_eq!(code, 0, "{stderr}");
    // A model only this working copy holds (never committed) has a status.
    let fresh = project.join(".silt/local/data/t/fresh");
    std::fs::create_dir_all(&fresh).unwrap();
    std::fs::write(fresh.join("new.txt"), b"new").unwrap();
    let (code, stdout, stderr) =
        output(user(&project).args(["datastore", "status", "--model", "t/fresh"]));
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("1 uncommitted change"), "{stdout}");
    let (code, _, stderr) = output(user(&project).args(remove).arg("--force"));
    assert_eq!(code, 0, "{stderr}");
}

/// `silt init --hydration lazy` is the project's choice: written to
/// silt.toml, so every later command is lazy too.
#[test]
fn init_keeps_the_hydration_it_was_given() {
    let home = tempfile::tempdir().unwrap();
    let mut init = silt(home.path());
    init.args(["-q", "--hydration", "lazy", "init"]);
    std::fs::create_dir_all(home.path().join("extensions")).unwrap();
    let (code, _, stderr) = output(
        silt(home.path())
            .args(["-q", "extension", "add"])
            .arg(component("partitioned-datastore")),
    );
    assert_eq!(code, 0, "{stderr}");
    let (code, _, stderr) = output(&mut init);
    assert_eq!(code, 0, "{stderr}");
    let written = std::fs::read_to_string(home.path().join("silt.toml")).unwrap();
    assert!(written.contains("hydration = \"lazy\""), "{written}");
}

/// The README's quick start, run as written in an empty directory with a
/// clean `HOME`, after what `cargo xtask install` leaves: silt on `PATH`
/// and the datastore extension in the user's extensions.
#[test]
fn the_readme_quick_start_works_as_written() {
    let readme = std::fs::read_to_string(support::workspace_root().join("README.md")).unwrap();
    let section = &readme[readme.find("## Quick start").expect("a quick start")..];
    let open = section.find("```sh\n").expect("its commands") + "```sh\n".len();
    let script = &section[open..open + section[open..].find("```").unwrap()];
    assert!(script.contains("silt init"), "{script}");

    let home = tempfile::tempdir().unwrap();
    let bin = std::path::Path::new(env!("CARGO_BIN_EXE_silt"))
        .parent()
        .unwrap();
    let clean = |command: &mut std::process::Command| {
        command
            .env("HOME", home.path())
            .env("PATH", format!("{}:/usr/bin:/bin", bin.display()))
            .env("SILT_CACHE_DIR", support::shared_artifact_cache())
            .env_remove("SILT_EXTENSIONS_DIR")
            .env_remove("SILT_CONFIG")
            .env_remove("XDG_DATA_HOME")
            .env_remove("XDG_CONFIG_HOME")
            .current_dir(home.path());
    };
    let mut install = std::process::Command::new(env!("CARGO_BIN_EXE_silt"));
    clean(&mut install);
    install
        .args(["-q", "extension", "add"])
        .arg(component("partitioned-datastore"));
    let (code, _, stderr) = output(&mut install);
    assert_eq!(code, 0, "{stderr}");

    let mut quick_start = std::process::Command::new("sh");
    clean(&mut quick_start);
    quick_start.args(["-e", "-c", script]);
    let (code, stdout, stderr) = output(&mut quick_start);
    assert_eq!(
        code, 0,
        "the quick start failed:\n{script}\n{stdout}\n{stderr}"
    );
    // The command's output, committed by `silt run` and read back.
    assert!(stdout.lines().any(|line| line.trim() == "11"), "{stdout}");
}
