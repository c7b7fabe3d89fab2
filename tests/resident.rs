//! The resident process, as real processes: `silt-client` starts
//! `silt __resident` on first use and hands it commands, which run as they
//! would in `silt` (output, exit codes, working directory, stdin,
//! credentials from the environment); Ctrl-C of the client reaches a
//! command waiting for a lease; a resident killed mid-command is reported
//! and replaced; one command at a time; one resident an environment; it
//! exits when idle.

use std::os::unix::ffi::OsStrExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::project::{BACKENDS, Backend, Project};
use crate::support::{output, poll_until};

/// `silt-client`, built beside `silt` (`cargo xtask test` builds it; so
/// does any `cargo test --workspace`).
fn client_binary() -> PathBuf {
    let silt = Path::new(env!("CARGO_BIN_EXE_silt"));
    let client = silt.with_file_name("silt-client");
    assert!(
        client.exists(),
        "{} is missing: run `cargo build -p silt-resident` (cargo xtask test does)",
        client.display()
    );
    client
}

/// A private socket directory for one test's residents, which are stopped
/// (SIGKILL) when it is dropped.
struct Residents {
    _parent: tempfile::TempDir,
    dir: PathBuf,
}

impl Residents {
    fn new() -> Self {
        let parent = tempfile::tempdir().unwrap();
        let dir = parent.path().join("silt");
        silt_resident::socket_dir::ensure(&dir).unwrap();
        Self {
            _parent: parent,
            dir,
        }
    }

    /// `silt-client` in `project` with `project`'s environment, this
    /// directory's residents, and `SILT_RESIDENT=required`: a command not
    /// handed over fails with 69.
    fn client(&self, project: &Project) -> Command {
        let template = project.silt();
        let mut command = Command::new(client_binary());
        command.current_dir(project.path());
        for (name, value) in template.get_envs() {
            match value {
                Some(value) => command.env(name, value),
                None => command.env_remove(name),
            };
        }
        command
            .env("SILT_RESIDENT_DIR", &self.dir)
            .env("SILT_RESIDENT", "required")
            .env("SILT_RESIDENT_IDLE_SECS", "120")
            .env("SILT_LOCK_MAX_WAIT", "60");
        command
    }

    /// Starts the resident for `command`'s environment: its first command
    /// is not handed over (69) and starts it; returns its pid once it
    /// serves.
    fn start(&self, mut command: Command) -> u32 {
        let before = self.pids();
        let sockets_before = self.socket_inodes();
        let (code, _, stderr) = output(command.args(["data", "list", "none/yet"]));
        assert_eq!(code, 69, "{stderr}");
        poll_until(Duration::from_secs(30), || {
            let new: Vec<u32> = self
                .pids()
                .into_iter()
                .filter(|pid| !before.contains(pid))
                .collect();
            // Bound: a socket that was not there (a dead resident's stays
            // until the next one replaces it).
            let bound = self
                .socket_inodes()
                .iter()
                .any(|inode| !sockets_before.contains(inode));
            (new.len() == 1 && bound).then(|| new[0])
        })
        .expect("no resident started")
    }

    /// The sockets in this directory, by inode and change time (a new
    /// socket may get the inode number of the one it replaced).
    fn socket_inodes(&self) -> Vec<(u64, i64, i64)> {
        use std::os::unix::fs::MetadataExt as _;
        std::fs::read_dir(&self.dir)
            .unwrap()
            .flatten()
            .filter(|entry| entry.path().extension().is_some_and(|e| e == "sock"))
            .filter_map(|entry| {
                entry
                    .metadata()
                    .ok()
                    .map(|meta| (meta.ino(), meta.ctime(), meta.ctime_nsec()))
            })
            .collect()
    }

    /// The pids of the residents serving a socket in this directory.
    fn pids(&self) -> Vec<u32> {
        let mut pids = Vec::new();
        for entry in std::fs::read_dir("/proc").unwrap().flatten() {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<u32>().ok())
            else {
                continue;
            };
            let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
                continue;
            };
            let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
            let ours = args.len() >= 3
                && args[1] == b"__resident"
                && Path::new(std::ffi::OsStr::from_bytes(args[2])).starts_with(&self.dir);
            let zombie = std::fs::read_to_string(entry.path().join("stat")).is_ok_and(|stat| {
                stat.rsplit(')')
                    .next()
                    .is_some_and(|s| s.trim_start().starts_with('Z'))
            });
            if ours && !zombie {
                pids.push(pid);
            }
        }
        pids
    }

    fn sockets(&self) -> usize {
        std::fs::read_dir(&self.dir)
            .unwrap()
            .flatten()
            .filter(|entry| entry.path().extension().is_some_and(|e| e == "sock"))
            .count()
    }
}

impl Drop for Residents {
    fn drop(&mut self) {
        for pid in self.pids() {
            signal(pid, "KILL");
        }
    }
}

fn signal(pid: u32, name: &str) {
    let _ = Command::new("kill")
        .args([&format!("-{name}"), &pid.to_string()])
        .status();
}

fn spawn(command: &mut Command) -> Child {
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn finish(child: Child) -> (i32, String, String) {
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Holds `model`'s lease with `silt run` until killed; returns once held.
fn hold_lease(project: &Project, model: &str) -> Child {
    let ready = project.path().join("held");
    let holder = spawn(
        project
            .silt()
            .args([
                "run",
                "--model",
                model,
                "--",
                "sh",
                "-c",
                "touch \"$0\"; exec sleep 120",
            ])
            .arg(&ready),
    );
    poll_until(Duration::from_secs(60), || ready.exists().then_some(()))
        .expect("the holder never took the lease");
    holder
}

/// A put queued behind a `silt run` holding `team/held`'s lease.
struct Queued {
    holder: Child,
    put: Child,
    /// The put's stderr, read to its end on a thread (its `-v` log says
    /// when it started waiting).
    stderr: std::thread::JoinHandle<String>,
}

impl Queued {
    /// Waits for the put to end (interrupted, or its resident killed):
    /// the holder, and the put's exit code and stderr.
    fn finish(self) -> (Child, i32, String) {
        let (code, stderr) = finish_put(self.put, self.stderr);
        (self.holder, code, stderr)
    }
}

/// Waits for a queued put to end: its exit code and stderr.
fn finish_put(put: Child, stderr: std::thread::JoinHandle<String>) -> (i32, String) {
    let ended = put.wait_with_output().unwrap();
    (ended.status.code().unwrap_or(-1), stderr.join().unwrap())
}

/// Holds `team/held`'s lease, then starts `client` (a client command, or a
/// shell that runs one) putting a file into that model with `-v`, and
/// returns once the put says it waits for the lease (an unleased commit is
/// refused while a lease is held, so it waits for the lease): seen, not
/// guessed from a sleep, so a loaded machine cannot make the signal that
/// follows come before the put is queued.
fn put_queued_behind_a_lease(project: &Project, mut client: Command) -> Queued {
    let holder = hold_lease(project, "team/held");
    let input = project.write_input("in.txt", "x\n");
    let mut put = spawn(client.args(["-v", "data", "put", "team/held", "f.txt", &input]));
    let (waiting, stderr) =
        crate::support::watch_for(put.stderr.take().unwrap(), "waiting for the lease");
    if waiting.recv_timeout(Duration::from_secs(60)).is_err() {
        // It ended, or waits for something else: say what it printed.
        signal(put.id(), "KILL");
        release(holder);
        let (code, stderr) = finish_put(put, stderr);
        panic!("the put never said it waits for the lease (exit {code}): {stderr}");
    }
    Queued {
        holder,
        put,
        stderr,
    }
}

/// Stops a `silt run` holder and the program it runs.
fn release(mut holder: Child) {
    signal(holder.id(), "TERM");
    let _ = holder.wait();
}

#[test]
fn commands_in_the_resident_answer_as_silt_does() {
    for backend in BACKENDS {
        let project = Project::new(backend, "");
        let residents = Residents::new();
        let pid = residents.start(residents.client(&project));

        // Input from stdin, and a relative path from a subdirectory: the
        // request's descriptors and working directory, not the resident's.
        let mut put = residents.client(&project);
        put.args(["data", "put", "team/m", "piped.txt", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = put.spawn().unwrap();
        std::io::Write::write_all(&mut child.stdin.take().unwrap(), b"from stdin\n").unwrap();
        let (code, _, stderr) = finish(child);
        assert_eq!(code, 0, "{backend:?}: {stderr}");
        let sub = project.path().join("sub");
        std::fs::create_dir(&sub).unwrap();
        std::fs::write(sub.join("input.txt"), "relative\n").unwrap();
        let (code, _, stderr) = output(residents.client(&project).current_dir(&sub).args([
            "data",
            "put",
            "team/m",
            "relative.txt",
            "input.txt",
        ]));
        assert_eq!(code, 0, "{backend:?}: {stderr}");

        // The same answers as `silt`, byte for byte: output, errors and
        // exit codes.
        for args in [
            &["data", "list", "team/m"][..],
            &["--json", "data", "list", "team/m"],
            &["data", "history", "team/m", "piped.txt"],
            &["data", "history", "team/m", "missing.txt"],
            &["data", "put", "team/m", "x.txt", "sub/no-such-input"],
            &["datastore", "status"],
        ] {
            let handed = output(residents.client(&project).args(args));
            let own = output(project.silt().args(args));
            assert_eq!(handed, own, "{backend:?}: {args:?}");
        }
        let listed = project.ok(&["data", "list", "team/m"]);
        assert!(
            listed.contains("piped.txt") && listed.contains("relative.txt"),
            "{listed}"
        );
        // Outside a project: the resident's own directory is not used.
        let elsewhere = tempfile::tempdir().unwrap();
        let handed = output(
            residents
                .client(&project)
                .current_dir(elsewhere.path())
                .args(["data", "list", "team/m"]),
        );
        let own = output(
            project
                .silt()
                .current_dir(elsewhere.path())
                .args(["data", "list", "team/m"]),
        );
        assert_eq!(handed, own, "{backend:?}: outside a project");
        assert_ne!(handed.0, 0);
        assert_eq!(
            residents.pids(),
            [pid],
            "{backend:?}: one resident ran them all"
        );
    }
}

#[test]
fn ctrl_c_of_the_client_reaches_a_command_waiting_for_a_lease() {
    let project = Project::new(Backend::Dir, "");
    let residents = Residents::new();
    let pid = residents.start(residents.client(&project));
    let queued = put_queued_behind_a_lease(&project, residents.client(&project));
    let started = Instant::now();
    signal(queued.put.id(), "INT");
    let (holder, code, stderr) = queued.finish();
    assert_eq!(code, 130, "{stderr}");
    assert!(
        stderr.contains("interrupted by SIGINT"),
        "the command's own answer, not the client giving up: {stderr}"
    );
    // Long before the lease wait would end by itself (SILT_LOCK_MAX_WAIT,
    // 60 s); roomy for a loaded machine.
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    release(holder);
    // Nothing was committed, and the resident serves on.
    let (code, stdout, stderr) =
        output(
            residents
                .client(&project)
                .args(["data", "list", "team/held"]),
        );
    assert_eq!(code, 0, "{stderr}");
    assert!(!stdout.contains("f.txt"), "{stdout}");
    assert_eq!(residents.pids(), [pid]);
    project.assert_no_leases();
}

#[test]
fn a_resident_killed_mid_command_is_reported_and_the_next_command_starts_another() {
    let project = Project::new(Backend::Dir, "");
    let residents = Residents::new();
    let first = residents.start(residents.client(&project));
    let queued = put_queued_behind_a_lease(&project, residents.client(&project));
    // A second command meanwhile: the resident is busy, so it is not run
    // there (and with SILT_RESIDENT=required, not at all).
    let (code, _, stderr) = output(residents.client(&project).args(["data", "list", "team/m"]));
    assert_eq!(code, 69, "{stderr}");
    signal(first, "KILL");
    let (holder, code, stderr) = queued.finish();
    assert_eq!(code, 76, "{stderr}");
    assert!(stderr.contains("may have run in part"), "{stderr}");
    release(holder);
    // The dead resident's socket is still there; the next command finds it
    // refused, starts another, and that one serves.
    let second = residents.start(residents.client(&project));
    assert_ne!(first, second);
    let (code, _, stderr) = output(
        residents
            .client(&project)
            .args(["data", "list", "team/held"]),
    );
    assert_eq!(code, 0, "{stderr}");
}

#[test]
fn another_environment_gets_another_resident_and_an_idle_one_exits() {
    let project = Project::new(Backend::Dir, "");
    let residents = Residents::new();
    let mut quick = residents.client(&project);
    quick.env("SILT_RESIDENT_IDLE_SECS", "20");
    let a = residents.start(quick);
    let first: Vec<u64> = residents.socket_inodes().iter().map(|s| s.0).collect();
    let mut other = residents.client(&project);
    other
        .env("SILT_RESIDENT_IDLE_SECS", "20")
        .env("AWS_PROFILE", "another");
    let b = residents.start(other);
    assert_ne!(a, b);
    assert_eq!(residents.sockets(), 2, "a socket of its own");
    assert!(
        residents
            .socket_inodes()
            .iter()
            .any(|s| first.contains(&s.0)),
        "the first resident's socket is still its own"
    );
    // Both go once idle, and take their sockets with them.
    poll_until(Duration::from_secs(60), || {
        (residents.pids().is_empty() && residents.sockets() == 0).then_some(())
    })
    .expect("idle residents stayed");
}

#[test]
fn output_a_closed_pipe_refused_is_not_the_next_commands() {
    let project = Project::new(Backend::Dir, "");
    let residents = Residents::new();
    let pid = residents.start(residents.client(&project));
    let input = project.write_input("in.txt", "x\n");
    project.ok(&["data", "put", "team/m", "f.txt", &input]);
    // Its reader gone before it writes: every write fails (EPIPE).
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let (code, _, stderr) = output(
        residents
            .client(&project)
            .args(["--json", "data", "list", "team/m"])
            .stdout(writer),
    );
    assert!(code == 0 || code == 101, "{code}: {stderr}");
    if code == 101 {
        // A panic stops the resident; start the next one.
        residents.start(residents.client(&project));
    } else {
        assert_eq!(residents.pids(), [pid]);
    }
    let handed = output(residents.client(&project).args(["data", "list", "team/m"]));
    let own = output(project.silt().args(["data", "list", "team/m"]));
    assert_eq!(handed, own);
}

#[test]
fn a_signal_the_client_ignores_is_not_forwarded() {
    let project = Project::new(Backend::Dir, "");
    let residents = Residents::new();
    residents.start(residents.client(&project));
    // As under `nohup`: SIGHUP ignored, then the client.
    let template = residents.client(&project);
    let mut nohup = Command::new("sh");
    nohup
        .current_dir(project.path())
        .args(["-c", "trap '' HUP; exec \"$0\" \"$@\""])
        .arg(template.get_program());
    for (name, value) in template.get_envs() {
        match value {
            Some(value) => nohup.env(name, value),
            None => nohup.env_remove(name),
        };
    }
    let queued = put_queued_behind_a_lease(&project, nohup);
    signal(queued.put.id(), "HUP");
    std::thread::sleep(Duration::from_millis(500));
    let Queued {
        holder,
        put,
        stderr,
    } = queued;
    release(holder);
    let (code, stderr) = finish_put(put, stderr);
    assert_eq!(code, 0, "the command went on and committed: {stderr}");
    let listed = project.ok(&["data", "list", "team/held"]);
    assert!(listed.contains("f.txt"), "{listed}");
}
