//! `silt-client` as a real process against a resident listening on a real
//! socket: what it hands over, and what it does when the resident dies.

use std::io::Write as _;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::process::Command;

use silt_resident::socket_dir;
use silt_resident::{Answer, Request, answer};

const CLIENT: &str = env!("CARGO_BIN_EXE_silt-client");

/// A private socket directory (temporary directories may be 0755).
fn private_dir() -> (tempfile::TempDir, PathBuf) {
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("silt");
    socket_dir::ensure(&dir).unwrap();
    (parent, dir)
}

/// The socket a test's stand-in resident listens on (`SILT_RESIDENT_SOCKET`).
fn socket(dir: &Path) -> PathBuf {
    dir.join("resident-test.sock")
}

/// Takes one request in `dir` and runs `then` on it, on a thread.
fn resident(
    dir: &Path,
    then: impl FnOnce(&std::os::unix::net::UnixStream, Request) + Send + 'static,
) -> std::thread::JoinHandle<()> {
    let listener = UnixListener::bind(socket(dir)).unwrap();
    std::thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        let request = Request::receive(&stream).unwrap();
        then(&stream, request);
    })
}

#[test]
fn the_command_runs_in_the_resident_with_the_clients_terminal_directory_and_environment() {
    let (_parent, dir) = private_dir();
    let work = tempfile::tempdir().unwrap();
    let (seen_tx, seen_rx) = std::sync::mpsc::channel();
    let served = resident(&dir, move |stream, request| {
        let mut stdout = std::fs::File::from(request.stdio[1].try_clone().unwrap());
        stdout.write_all(b"listed by the resident\n").unwrap();
        let cwd = std::fs::read_link(format!(
            "/proc/self/fd/{}",
            std::os::fd::AsRawFd::as_raw_fd(&request.cwd)
        ))
        .unwrap();
        seen_tx
            .send((request.argv.clone(), request.env.clone(), cwd))
            .unwrap();
        drop(stdout);
        drop(request);
        answer(stream, Answer::Ran(42)).unwrap();
    });
    let output = Command::new(CLIENT)
        .args(["data", "list", "team/m"])
        .current_dir(work.path())
        .env("SILT_RESIDENT_SOCKET", socket(&dir))
        .env("SILT_TEST_MARK", "handed over")
        .output()
        .unwrap();
    served.join().unwrap();
    assert_eq!(output.status.code(), Some(42), "{output:?}");
    assert_eq!(output.stdout, b"listed by the resident\n");
    let (argv, env, cwd) = seen_rx.recv().unwrap();
    assert_eq!(argv[1..], ["data", "list", "team/m"]);
    assert!(
        env.iter()
            .any(|(k, v)| k == "SILT_TEST_MARK" && v == "handed over")
    );
    assert_eq!(cwd, work.path().canonicalize().unwrap());
}

#[test]
fn a_resident_dying_mid_command_is_reported_not_run_again() {
    let (_parent, dir) = private_dir();
    let served = resident(&dir, |stream, request| {
        silt_resident::started(stream).unwrap();
        drop(request);
    });
    let work = tempfile::tempdir().unwrap();
    let output = Command::new(CLIENT)
        .args(["data", "put", "team/m", "f", "x"])
        .current_dir(work.path())
        .env("SILT_RESIDENT_SOCKET", socket(&dir))
        .output()
        .unwrap();
    served.join().unwrap();
    assert_eq!(output.status.code(), Some(76), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("may have run in part"), "{stderr}");
}

#[test]
fn skipped_or_unsafe_residents_get_nothing() {
    use std::os::unix::fs::PermissionsExt as _;
    let (_parent, dir) = private_dir();
    let listener = UnixListener::bind(socket(&dir)).unwrap();
    listener.set_nonblocking(true).unwrap();
    // SILT_RESIDENT=0, a command the host runs, and a directory others may
    // enter: the client runs `silt` itself, never connecting. `silt` may be
    // built beside it, so it runs in an empty directory, on commands that
    // write nothing there.
    let work = tempfile::tempdir().unwrap();
    let cases: [(&[&str], Option<&str>, u32); 3] = [
        (&["data", "list"], Some("0"), 0o700),
        (&["completions", "bash"], None, 0o700),
        (&["data", "list"], None, 0o755),
    ];
    for (args, skip, mode) in cases {
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(mode)).unwrap();
        let mut command = Command::new(CLIENT);
        command
            .args(args)
            .current_dir(work.path())
            .env("SILT_RESIDENT_SOCKET", socket(&dir));
        if let Some(skip) = skip {
            command.env("SILT_RESIDENT", skip);
        }
        let _ = command.output().unwrap();
        assert!(
            listener.accept().is_err(),
            "{args:?} (SILT_RESIDENT={skip:?}, mode {mode:o}) connected"
        );
    }
}
