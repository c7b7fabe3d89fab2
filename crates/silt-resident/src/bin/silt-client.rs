//! `silt-client`: hands a `silt` command to a resident `silt` process, or
//! runs `silt` itself (issue 21, goal 5; `docs/resident-process.md`).
//!
//! The resident for this environment and `silt` executable
//! ([`silt_resident::route`]) is started on first use: the first command
//! starts it and runs in `silt` as before, the next ones are handed over.
//! A command the resident does not run, a resident busy with another
//! command, or `SILT_RESIDENT=0` runs in `silt` directly.
//! `SILT_RESIDENT=required` makes a command that was not handed over fail
//! (exit 69) instead (tests and benchmarks: proof the resident ran it); the
//! resident is still started when there is none.

use std::ffi::OsString;
use std::os::unix::fs::OpenOptionsExt as _;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use silt_resident::client::{self, HandOver};
use silt_resident::{WireError, route, socket_dir};

/// The host's binary, beside this one.
const HOST: &str = "silt";

/// The host's hidden command that serves a socket as the resident.
const RESIDENT_COMMAND: &str = "__resident";

/// Exit code under `SILT_RESIDENT=required` for a command not handed over
/// (sysexits `EX_UNAVAILABLE`).
const NOT_HANDED_OVER: u8 = 69;

/// Exit code when the resident went away mid-command (sysexits
/// `EX_PROTOCOL`). Not 75, which `silt` uses for "try again": a script
/// retrying on it would run a command that may have run in part.
const LOST: u8 = 76;

fn main() -> ExitCode {
    let argv: Vec<OsString> = std::env::args_os().collect();
    let host = match host() {
        Ok(host) => host,
        Err(message) => {
            eprintln!("silt: error: {message}");
            return ExitCode::from(1);
        }
    };
    let env: Vec<(OsString, OsString)> = std::env::vars_os().collect();
    let required = env
        .iter()
        .any(|(name, value)| name == "SILT_RESIDENT" && value == "required");
    if client::environment_served(&env)
        && client::served_by_resident(argv.get(1..).unwrap_or_default())
    {
        // No resident for a `silt` that is not there: the exec below says so.
        if let Ok(socket) = route::socket_for(&host, &env) {
            match client::hand_over(&socket, &argv, &env) {
                HandOver::Answered(code) => return ExitCode::from(code),
                // Someone else's directory or socket where ours should be
                // is worth a word; no resident at all is the normal case.
                HandOver::NotHandedOver(err @ (WireError::Unsafe(_) | WireError::OtherUser(_))) => {
                    eprintln!("silt: warning: not using the resident silt process: {err}");
                }
                HandOver::NotHandedOver(WireError::Io(err))
                    if matches!(
                        err.kind(),
                        std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused
                    ) =>
                {
                    start_resident(&host, &socket);
                }
                HandOver::NotHandedOver(_) => {}
                HandOver::Lost(err) => {
                    eprintln!(
                        "silt: error: the resident silt process ended without answering ({err}); \
                         the command may have run in part: look with `silt data list` or \
                         `silt datastore status` before running it again"
                    );
                    return ExitCode::from(LOST);
                }
            }
        }
    }
    if required {
        eprintln!(
            "silt: error: SILT_RESIDENT=required and no resident silt process ran the command"
        );
        return ExitCode::from(NOT_HANDED_OVER);
    }
    run_host(&host, &argv)
}

/// `silt`, beside this program.
fn host() -> Result<PathBuf, String> {
    let exe = std::env::current_exe()
        .map_err(|err| format!("cannot find this program's directory to run {HOST}: {err}"))?;
    let host = exe.with_file_name(HOST);
    if host == exe {
        // Installed under the host's name: running "the host" would run
        // this again, for ever.
        return Err(format!(
            "{} is the client itself; install the host beside it as {HOST}",
            exe.display()
        ));
    }
    Ok(host)
}

/// Starts the resident for `socket` in the background, in this process's
/// environment, and does not wait for it: this command runs in `silt` as
/// usual, the next ones find the resident. Its own messages go to
/// `<socket>.log`. Nothing is said when it cannot start: the command runs
/// as it would without one.
fn start_resident(host: &Path, socket: &Path) {
    if socket
        .parent()
        .is_none_or(|dir| socket_dir::ensure(dir).is_err())
    {
        return;
    }
    let mut log_path = socket.as_os_str().to_owned();
    log_path.push(".log");
    let Ok(log) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(&log_path)
    else {
        return;
    };
    let _ = std::process::Command::new(host)
        .arg(RESIDENT_COMMAND)
        .arg(socket)
        .current_dir("/")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(log)
        // It leaves this session itself (`setsid`), first thing.
        .spawn();
}

/// Replaces this process with the host, same arguments.
fn run_host(host: &Path, argv: &[OsString]) -> ExitCode {
    let mut command = std::process::Command::new(host);
    if let Some(name) = argv.first() {
        command.arg0(name);
    }
    let err = command.args(argv.get(1..).unwrap_or_default()).exec();
    eprintln!(
        "silt: error: cannot run {}: {err} (it is installed beside silt-client)",
        host.display()
    );
    ExitCode::from(1)
}
