//! `silt-client`: hands a `silt` command to the resident process, or runs
//! `silt` itself when there is none (issue 21, goal 5).
//!
//! The resident is not built yet, so today this always runs `silt`,
//! except against the start-up benchmark's stand-in that answers at once
//! (`cargo xtask bench datastore --only=startup`). `SILT_RESIDENT=0`
//! skips the resident.

use std::ffi::OsString;
use std::os::unix::process::CommandExt as _;
use std::process::ExitCode;

use silt_resident::client::{self, HandOver};
use silt_resident::{WireError, socket_dir};

/// The host's binary, beside this one.
const HOST: &str = "silt";

/// Exit code when the resident went away mid-command (sysexits
/// `EX_PROTOCOL`). Not 75, which `silt` uses for "try again": a script
/// retrying on it would run a command that may have run in part.
const LOST: u8 = 76;

fn main() -> ExitCode {
    let argv: Vec<OsString> = std::env::args_os().collect();
    let skip = std::env::var_os("SILT_RESIDENT").is_some_and(|value| value == "0");
    if !skip && client::served_by_resident(argv.get(1..).unwrap_or_default()) {
        match client::hand_over(&socket_dir::default_dir(), &argv) {
            HandOver::Answered(code) => return ExitCode::from(code),
            // Someone else's directory or socket where ours should be is
            // worth a word; no resident at all is the normal case.
            HandOver::NotHandedOver(err @ (WireError::Unsafe(_) | WireError::OtherUser(_))) => {
                eprintln!("silt: warning: {err}");
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
    run_host(&argv)
}

/// Replaces this process with the host, same arguments.
fn run_host(argv: &[OsString]) -> ExitCode {
    let (exe, host) = match std::env::current_exe() {
        Ok(exe) => {
            let host = exe.with_file_name(HOST);
            (exe, host)
        }
        Err(err) => {
            eprintln!("silt: error: cannot find this program's directory to run {HOST}: {err}");
            return ExitCode::from(1);
        }
    };
    if host == exe {
        // Installed under the host's name: running "the host" would run
        // this again, for ever.
        eprintln!(
            "silt: error: {} is the client itself; install the host beside it as {HOST}",
            exe.display()
        );
        return ExitCode::from(1);
    }
    let mut command = std::process::Command::new(&host);
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
