//! The command line's conventions, as a user of cargo, curl or ripgrep
//! expects them: `-o -` is stdout, `-q` is quiet, counts agree with their
//! nouns, nothing is laid down outside a project, and the completion
//! scripts and manual describe the command line silt parses.

use crate::support;

use support::project::{Backend, Project};
use support::{output, silt};

#[test]
fn dash_output_is_stdout_and_never_a_file_named_dash() {
    let project = Project::new(Backend::Dir, "");
    let input = project.write_input("in.txt", "hello\n");
    project.ok(&["-q", "data", "put", "t/m", "f.txt", &input]);
    let stdout = project.ok(&["data", "get", "t/m", "f.txt", "-o", "-"]);
    assert_eq!(stdout, "hello\n");
    assert!(
        !project.path().join("-").exists(),
        "`-o -` wrote a file named `-`"
    );
}

#[test]
fn quiet_prints_nothing_but_errors() {
    let project = Project::new(Backend::Dir, "");
    let input = project.write_input("in.txt", "hello\n");
    for args in [
        &["-q", "data", "put", "t/m", "f.txt", &input][..],
        &["-q", "data", "list", "t/m"],
        &["-q", "datastore", "sync"],
        &["-q", "run", "--model", "t/m", "--", "true"],
        &["-q", "data", "rm", "t/m", "f.txt"],
    ] {
        let (code, stdout, stderr) = project.run(args);
        assert_eq!(code, 0, "{args:?}: {stderr}");
        assert_eq!((stdout.as_str(), stderr.as_str()), ("", ""), "{args:?}");
    }
    // An error still says what happened.
    let (code, _, stderr) = project.run(&["-q", "data", "get", "t/m", "missing.txt"]);
    assert_ne!(code, 0);
    assert!(stderr.contains("silt: error:"), "{stderr}");
    // `--json` is what a script asked for: `-q` keeps it.
    let (code, stdout, _) = project.run(&["-q", "--json", "data", "list", "t/m"]);
    assert_eq!(code, 0);
    assert!(stdout.trim_start().starts_with('{'), "{stdout}");
}

#[test]
fn counts_agree_with_their_nouns() {
    let project = Project::new(Backend::Dir, "");
    let input = project.write_input("in.txt", "one\n");
    let put = project.ok(&["data", "put", "t/m", "f.txt", &input]);
    assert!(put.contains("committed version"), "{put}");
    let list = project.ok(&["data", "list", "t/m"]);
    assert!(list.contains("(1 version kept)"), "{list}");
    let input = project.write_input("in.txt", "two\n");
    project.ok(&["-q", "data", "put", "t/m", "f.txt", &input]);
    let list = project.ok(&["data", "list", "t/m"]);
    assert!(list.contains("(2 versions kept)"), "{list}");
    let status = project.ok(&["datastore", "status"]);
    assert!(status.contains("index: 1 file,"), "{status}");
    let (_, _, stderr) = project.run(&["run", "--model", "t/m", "--", "true"]);
    assert!(
        stderr.contains("fetched 0 files; committed 0 files"),
        "{stderr}"
    );
}

#[test]
fn a_datastore_command_outside_any_project_lays_nothing_down() {
    let home = tempfile::tempdir().unwrap();
    for args in [
        &["data", "list", "t/m"][..],
        &["datastore", "status"],
        &["datastore", "doctor"],
        &["run", "--model", "t/m", "--", "true"],
    ] {
        let (code, _, stderr) = output(silt(home.path()).args(args));
        assert_eq!(code, 78, "{args:?}: {stderr}");
        assert!(
            stderr.contains("there is no silt.toml") && stderr.contains("silt init"),
            "{args:?}: {stderr}"
        );
    }
    assert!(
        !home.path().join(".silt").exists(),
        "a command outside a project created .silt/"
    );
}

#[test]
fn init_on_an_empty_datastore_reports_no_empty_hydration() {
    let home = tempfile::tempdir().unwrap();
    let (code, _, stderr) = output(
        silt(home.path())
            .args(["-q", "extension", "add"])
            .arg(support::component("partitioned-datastore")),
    );
    assert_eq!(code, 0, "{stderr}");
    let (code, stdout, stderr) = output(silt(home.path()).arg("init"));
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("datastore ready"), "{stdout}");
    assert!(!stderr.contains("0/0 models"), "{stderr}");
    assert!(!stdout.contains("0/0 models"), "{stdout}");
}

#[test]
fn completion_scripts_and_the_manual_describe_the_parsed_command_line() {
    let home = tempfile::tempdir().unwrap();
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let (code, script, stderr) = output(silt(home.path()).args(["completions", shell]));
        assert_eq!(code, 0, "{shell}: {stderr}");
        for word in ["datastore", "hydrate", "hydration"] {
            assert!(script.contains(word), "{shell}: no `{word}`");
        }
    }
    // bash reads the script without a syntax error.
    let dir = tempfile::tempdir().unwrap();
    let (_, bash, _) = output(silt(home.path()).args(["completions", "bash"]));
    // What users type, not silt's internals.
    assert!(
        bash.contains("--hydration") && bash.contains("lock"),
        "{bash}"
    );
    for internal in ["--worker", "probe", "__probe"] {
        assert!(!bash.contains(internal), "offers {internal}");
    }
    let script = dir.path().join("silt.bash");
    std::fs::write(&script, bash).unwrap();
    let checked = std::process::Command::new("bash")
        .arg("-n")
        .arg(&script)
        .output()
        .unwrap();
    assert!(
        checked.status.success(),
        "{}",
        String::from_utf8_lossy(&checked.stderr)
    );
    let (code, page, stderr) = output(silt(home.path()).arg("man"));
    assert_eq!(code, 0, "{stderr}");
    assert!(
        page.starts_with(".ie") || page.contains(".TH silt"),
        "{page}"
    );
    assert!(page.contains("datastore"), "{page}");
    for heading in ["EXIT STATUS", "ENVIRONMENT", "FILES"] {
        assert!(
            page.contains(&format!(".SH \"{heading}\"")),
            "no {heading}: {page}"
        );
    }
    assert!(
        page.contains("SILT_LOCK_MAX_WAIT") && page.contains("silt.lock"),
        "{page}"
    );
    let pages = dir.path().join("man");
    let (code, _, stderr) = output(silt(home.path()).args(["man", "--out-dir"]).arg(&pages));
    assert_eq!(code, 0, "{stderr}");
    for page in [
        "silt.1",
        "silt-data.1",
        "silt-data-put.1",
        "silt-datastore-sync.1",
    ] {
        assert!(pages.join(page).is_file(), "no {page}");
    }
    let put = std::fs::read_to_string(pages.join("silt-data-put.1")).unwrap();
    assert!(
        put.contains(".SH \"EXAMPLES\"") && put.contains("silt data put vision/detector"),
        "{put}"
    );
    // Every page a page names is there; hidden commands have none.
    for entry in std::fs::read_dir(&pages).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        let plain = text
            .replace("\\fB", "")
            .replace("\\fR", "")
            .replace("\\fI", "")
            .replace("\\-", "-");
        for named in plain.split(|c: char| !(c.is_ascii_alphanumeric() || c == '-')) {
            if named.starts_with("silt") && plain.contains(&format!("{named}(1)")) {
                assert!(
                    pages.join(format!("{named}.1")).is_file(),
                    "{named}(1) is named, not generated"
                );
            }
        }
    }
    assert!(!pages.join("silt-help.1").exists());
    assert!(!pages.join("silt-sandbox-probe.1").exists());
    // Help shows examples.
    let (code, help, _) = output(silt(home.path()).args(["data", "put", "--help"]));
    assert_eq!(code, 0);
    assert!(help.contains("Examples:\n"), "{help}");
    // Neither needs a project, nor minds a broken one.
    std::fs::write(home.path().join("silt.toml"), "[datastore\n").unwrap();
    let (code, _, stderr) = output(silt(home.path()).args(["completions", "fish"]));
    assert_eq!(code, 0, "{stderr}");
    assert!(
        !home.path().join(".silt").exists() && !home.path().join("cache").exists(),
        "completions touched the project or the cache"
    );
}
