//! A hostile extension, contained: `broken-datastore` answers lies, escape
//! codes, huge messages and floods for models of type `attack` (see its
//! `attacks` module). Each attack runs through the real `silt` command (and
//! out of process under `cargo xtask test`); the host must answer with the
//! right exit code and a clear error naming the extension, print nothing raw
//! and stay within bounded output.

use crate::support;

use support::project::{Backend, Project};

const DATA_ERROR: i32 = 65;
const EXTENSION_FAILED: i32 = 70;

fn hostile() -> Project {
    Project::with_extension(Backend::Dir, "broken-datastore", "")
}

/// No byte of a terminal escape, bell or carriage return reached the user.
fn assert_nothing_raw(what: &str, output: &str) {
    for raw in ['\u{1b}', '\u{7}', '\r', '\u{9b}'] {
        assert!(
            !output.contains(raw),
            "{what}: a raw {raw:?} reached the terminal: {output:?}"
        );
    }
}

fn put(project: &Project, model: &str) -> (i32, String, String) {
    let input = project.write_input("input", "some data\n");
    project.run(&["data", "put", model, "f.txt", &input])
}

#[test]
fn lying_lease_answers_are_refused_before_any_commit() {
    let project = hostile();
    for attack in ["other-scope", "other-holder", "ttl-zero", "generation-max"] {
        let model = format!("attack/{attack}");
        let (code, stdout, stderr) = put(&project, &model);
        assert_eq!(code, EXTENSION_FAILED, "{attack}: {stderr}");
        assert!(
            stderr.contains("extension `broken-datastore` misbehaved in `locks.acquire`"),
            "{attack}: {stderr}"
        );
        assert_nothing_raw(attack, &stderr);
        assert_nothing_raw(attack, &stdout);
        let listing = project.json(&["data", "list", &model])["files"].clone();
        assert_eq!(
            listing,
            serde_json::json!([]),
            "{attack}: something was committed"
        );
    }
}

#[test]
fn escape_codes_in_an_error_are_shown_escaped() {
    let project = hostile();
    let (code, stdout, stderr) = put(&project, "attack/escape-error");
    assert_eq!(code, DATA_ERROR, "{stderr}");
    assert_nothing_raw("escape-error", &stderr);
    assert_nothing_raw("escape-error", &stdout);
    assert!(stderr.contains("\\u{1b}[2J"), "{stderr}");
}

#[test]
fn a_huge_error_is_cut_and_says_so() {
    let project = hostile();
    let (code, _, stderr) = put(&project, "attack/long-error");
    assert_eq!(code, DATA_ERROR, "{stderr}");
    assert!(stderr.len() < 16 << 10, "{} bytes of error", stderr.len());
    assert!(stderr.contains("more characters dropped"), "{stderr}");
    assert_nothing_raw("long-error", &stderr);
}

#[test]
fn a_log_flood_is_bounded_and_counted() {
    let project = hostile();
    let (code, _, stderr) = put(&project, "attack/log-flood");
    assert_eq!(code, 0, "{}", &stderr[stderr.len().saturating_sub(2000)..]);
    // A million lines of ~70 bytes were logged; a thousand are shown.
    assert!(stderr.len() < 1 << 20, "{} bytes of log", stderr.len());
    assert!(
        stderr.contains("more log lines dropped"),
        "{}",
        &stderr[..2000]
    );
    assert_nothing_raw("log-flood", &stderr);
}

#[test]
fn an_index_entry_that_is_not_what_was_given_is_refused() {
    let project = hostile();
    let (code, _, stderr) = put(&project, "attack/wrong-checksum");
    assert_eq!(code, DATA_ERROR, "{stderr}");
    assert!(stderr.contains("the committed version"), "{stderr}");
    assert!(stderr.contains("sha256"), "{stderr}");
}

/// Regression: a digest from the index was cut at byte 12 for display, which
/// panics inside a multi-byte character.
#[test]
fn a_digest_that_is_not_hex_is_shown_without_panicking() {
    let project = hostile();
    let (code, _, stderr) = put(&project, "attack/unicode-checksum");
    assert_eq!(code, DATA_ERROR, "{stderr}");
    let (code, stdout, stderr) =
        project.run(&["data", "history", "attack/unicode-checksum", "f.txt"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains(&"é".repeat(12)), "{stdout}");
}

#[test]
fn names_with_escape_codes_never_reach_the_terminal() {
    let project = hostile();
    let (code, _, stderr) = put(&project, "attack/escape-name");
    assert_eq!(code, 0, "{stderr}");
    // The put left the file in the working copy, so the model is present
    // and listed; were it not, making it present would fail on a name that
    // is no valid key. Either way the name is shown escaped.
    let (code, stdout, stderr) = project.run(&["data", "list", "attack/escape-name"]);
    assert!(code == 0 || code == DATA_ERROR, "{code}: {stderr}");
    assert!(
        format!("{stdout}{stderr}").contains("f.txt\\u{1b}[2J"),
        "{stdout}{stderr}"
    );
    assert_nothing_raw("data list", &stdout);
    assert_nothing_raw("data list", &stderr);

    // A name that reverses the text after it is a valid key: listed, escaped.
    // (Another datastore: this extension pulls everything to list a model.)
    let project = hostile();
    let (code, _, stderr) = put(&project, "attack/bidi-name");
    assert_eq!(code, 0, "{stderr}");
    let (code, stdout, stderr) = project.run(&["data", "list", "attack/bidi-name"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("f.txt\\u{202e}txt.exe"), "{stdout}");
    assert!(!stdout.contains('\u{202e}'), "{stdout}");
    let (code, stdout, _) = project.run(&["--json", "data", "list", "attack/bidi-name"]);
    assert_eq!(code, 0);
    assert!(
        stdout.contains("f.txt\u{202e}txt.exe"),
        "JSON keeps the name as it is"
    );
}
