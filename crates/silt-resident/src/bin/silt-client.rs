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
use silt_resident::socket_dir;

/// The host's binary, beside this one.
const HOST: &str = "silt";

/// Exit code when the resident went away mid-command (sysexits
/// `EX_TEMPFAIL`, as silt uses it for "try again").
const LOST: u8 = 75;

fn main() -> ExitCode {
    let argv: Vec<OsString> = std::env::args_os().collect();
    let skip = std::env::var_os("SILT_RESIDENT").is_some_and(|value| value == "0");
    if !skip && client::served_by_resident(argv.get(1..).unwrap_or_default()) {
        match client::hand_over(&socket_dir::default_dir(), &argv) {
            HandOver::Answered(code) => return ExitCode::from(code),
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
    let host = match std::env::current_exe() {
        Ok(exe) => exe.with_file_name(HOST),
        Err(err) => {
            eprintln!("silt: error: cannot find this program's directory to run {HOST}: {err}");
            return ExitCode::from(1);
        }
    };
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
