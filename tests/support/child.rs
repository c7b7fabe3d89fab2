//! The test's own child processes: started with their output captured,
//! waited for, and signalled, in one way for every test binary.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Starts `command` with no stdin and its stdout and stderr captured.
pub fn spawn(command: &mut Command) -> Child {
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("cannot start the command")
}

/// Waits for `child`: its exit code (-1 when a signal ended it), stdout and
/// stderr.
pub fn finish(child: Child) -> (i32, String, String) {
    let output = child.wait_with_output().unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// Sends `signal` to process `pid`; false when there is no such process.
pub fn signal(pid: u32, signal: i32) -> bool {
    // SAFETY: kill(2) with a pid the test started (or its child's).
    unsafe { libc::kill(pid as i32, signal) == 0 }
}

/// Sends `signal` to the process group `group` (a child started with
/// `process_group(0)`); false when the group has no process left.
pub fn signal_group(group: u32, signal: i32) -> bool {
    // SAFETY: kill(2) of a process group the test started.
    unsafe { libc::kill(-(group as i32), signal) == 0 }
}

/// Waits until `path` exists (a child says it is ready); panics after a
/// minute.
pub fn wait_for_file(path: &Path) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !path.exists() {
        assert!(
            Instant::now() < deadline,
            "{} never appeared",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}
