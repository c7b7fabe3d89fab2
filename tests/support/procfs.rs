//! Stopping a process for a look at what it left: SIGSTOP, then a wait
//! until the stop has taken hold in every thread.

use std::time::{Duration, Instant};

/// Stops `pid` (SIGSTOP) and returns once every one of its threads is
/// stopped. The signal is delivered asynchronously: a thread inside a
/// system call (a `rename`, an `fsync`) finishes that call before it
/// stops, so a look at what the process writes right after kill(2) can
/// race the call (a temporary seen, then renamed away before the stop).
pub fn stop_every_thread(pid: u32) {
    // SAFETY: kill(2) sends a signal and touches no memory of ours.
    unsafe { libc::kill(pid as i32, libc::SIGSTOP) };
    let state = |stat: &str| {
        // `tid (comm) state ...`: comm may hold spaces, so split after `)`.
        stat.rfind(')')
            .and_then(|end| stat[end + 2..].chars().next())
    };
    let started = Instant::now();
    loop {
        let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).unwrap();
        let all_stopped = tasks.flatten().all(|task| {
            std::fs::read_to_string(task.path().join("stat"))
                .ok()
                .and_then(|stat| state(&stat))
                // `T` stopped; `Z`/`X` a thread that exited meanwhile.
                .is_none_or(|state| matches!(state, 'T' | 't' | 'Z' | 'X'))
        });
        if all_stopped {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "pid {pid} did not stop within 30 s"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}
