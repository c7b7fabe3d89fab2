//! Processes as `/proc` shows them: a process's state and parent, and
//! stopping a process for a look at what it left (SIGSTOP, then a wait
//! until the stop has taken hold in every thread).

use std::path::Path;
use std::time::Duration;

/// The state letter and parent pid of `pid`, from `/proc/PID/stat`.
pub fn state_and_parent(pid: u32) -> Option<(char, u32)> {
    read_stat(&Path::new("/proc").join(pid.to_string()).join("stat"))
}

/// The state letter and parent pid in one `stat` file (a process's or a
/// thread's, `/proc/PID/task/TID/stat`).
fn read_stat(path: &Path) -> Option<(char, u32)> {
    let stat = std::fs::read_to_string(path).ok()?;
    // `pid (comm) state ppid ...`: comm may hold spaces, so split after `)`.
    let mut fields = stat[stat.rfind(')')? + 2..].split(' ');
    let state = fields.next()?.chars().next()?;
    let ppid = fields.next()?.parse().ok()?;
    Some((state, ppid))
}

/// Stops `pid` (SIGSTOP) and returns once every one of its threads is
/// stopped. The signal is delivered asynchronously: a thread inside a
/// system call (a `rename`, an `fsync`) finishes that call before it
/// stops, so a look at what the process writes right after kill(2) can
/// race the call (a temporary seen, then renamed away before the stop).
pub fn stop_every_thread(pid: u32) {
    // SAFETY: kill(2) sends a signal and touches no memory of ours.
    unsafe { libc::kill(pid as i32, libc::SIGSTOP) };
    let stopped = super::poll_until(Duration::from_secs(30), || {
        let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).unwrap();
        tasks
            .flatten()
            .all(|task| {
                read_stat(&task.path().join("stat"))
                    // `T` stopped; `Z`/`X` a thread that exited meanwhile.
                    .is_none_or(|(state, _)| matches!(state, 'T' | 't' | 'Z' | 'X'))
            })
            .then_some(())
    });
    assert!(stopped.is_some(), "pid {pid} did not stop within 30 s");
}
