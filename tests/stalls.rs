//! A store that stops answering (SeaweedFS, fake-gcs-server or Azurite
//! frozen with SIGSTOP) is reported in bounded time, and signals are
//! honoured whatever the store does.
//!
//! One test function: the servers of this binary are frozen and resumed in
//! turn, so nothing else may use them meanwhile.

mod support;

use std::process::Stdio;
use std::time::{Duration, Instant};

use support::project::{Backend, Project};

const UNAVAILABLE: i32 = 69;

fn signal(pid: u32, signal: i32) {
    assert!(
        support::child::signal(pid, signal),
        "signal {signal} to {pid}"
    );
}

/// Resumes the server when dropped, so a failed assertion leaves it running.
struct Frozen(u32);

impl Frozen {
    fn new(pid: u32) -> Self {
        signal(pid, libc::SIGSTOP);
        Self(pid)
    }
}

impl Drop for Frozen {
    fn drop(&mut self) {
        signal(self.0, libc::SIGCONT);
    }
}

#[test]
fn a_stalled_store_ends_in_bounded_time_and_signals_are_honoured() {
    for backend in [Backend::S3, Backend::Gcs, Backend::Azure] {
        stall(backend);
    }
}

fn stall(backend: Backend) {
    let project = Project::new(backend, "");
    // The defaults' path with a fifth of their budget (25 s; the retry
    // defaults are held by config's unit tests): a stall costs this test 5 s.
    let config = project.path().join("silt.toml");
    let text = std::fs::read_to_string(&config).unwrap().replacen(
        "[datastore]\n",
        "[datastore]\noperation_timeout_ms = 5000\nrequest_timeout_ms = 1000\n",
        1,
    );
    std::fs::write(&config, text).unwrap();
    let input = project.write_input("input", "before the stall\n");
    project.ok(&["data", "put", "t/m", "a.txt", &input]);
    let server = match backend {
        Backend::S3 => support::seaweed::server().pid(),
        Backend::Gcs => support::fake_gcs::server().pid(),
        Backend::Azure => support::azurite::server().pid(),
        Backend::Dir => unreachable!("a directory does not stall"),
    };

    {
        let _frozen = Frozen::new(server);

        // Exit 69 once the operation's budget is spent, saying so while it waits.
        let started = Instant::now();
        let (code, _, stderr) = project.run(&["data", "list", "t/m"]);
        let took = started.elapsed();
        assert_eq!(code, UNAVAILABLE, "{backend:?}: {stderr}");
        assert!(
            took < Duration::from_secs(12),
            "{backend:?} took {took:?}: {stderr}"
        );
        assert!(stderr.contains("retrying for up to"), "{stderr}");
        assert!(stderr.contains("operation_timeout_ms"), "{stderr}");

        // SIGINT during a write (unleased, stalled on the store): out within about a second.
        let mut child = project
            .silt()
            .args(["data", "put", "t/m", "b.txt", &input])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(1500));
        let interrupted = Instant::now();
        signal(child.id(), libc::SIGINT);
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if interrupted.elapsed() > Duration::from_secs(10) {
                let _ = child.kill();
                panic!("silt ignored SIGINT for 10 s");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let waited = interrupted.elapsed();
        assert!(
            // Prompt, not the 10 s above; roomy for a loaded machine.
            waited < Duration::from_secs(3),
            "SIGINT took {waited:?} to act"
        );
        assert_ne!(status.code(), Some(0));
    }

    // Resumed: the datastore works again, the first write intact.
    let names = project.file_names("t/m");
    assert_eq!(names, ["a.txt"]);
    project.ok(&["data", "put", "t/m", "b.txt", &input]);
}

#[test]
fn the_operation_timeout_is_a_setting() {
    // Its own datastore, and no server frozen: a port nothing listens on.
    let port = support::seaweed::free_port();
    let project = Project::new(Backend::Dir, "");
    std::fs::write(
        project.path().join("silt.toml"),
        format!(
            "[datastore]\nbackend = \"s3\"\noperation_timeout_ms = 1500\nrequest_timeout_ms = 500\n[datastore.s3]\nbucket = \"b\"\nendpoint = \"http://127.0.0.1:{port}\"\n"
        ),
    )
    .unwrap();
    let started = Instant::now();
    let (code, _, stderr) = project.run(&["data", "list", "t/m"]);
    assert_eq!(code, UNAVAILABLE, "{stderr}");
    assert!(started.elapsed() < Duration::from_secs(5), "{stderr}");
    assert!(stderr.contains("gave up after"), "{stderr}");
}
