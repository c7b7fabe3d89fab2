//! CPU time of a process (all its threads, user + system), read from
//! `/proc/<pid>/stat`: what a benchmark adds up to tell whether a path
//! was bound by the client's or the server's CPU on a machine they share.

/// The user + system CPU seconds `pid` has used so far, or `None` when
/// it is gone or its `stat` does not parse.
pub fn of(pid: u32) -> Option<f64> {
    parse(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// This process's CPU seconds so far.
pub fn of_self() -> f64 {
    of(std::process::id()).expect("/proc/self/stat is readable")
}

/// `utime + stime` from one `stat` line. The command name (field 2) is in
/// parentheses and may hold spaces, so fields are counted from the last
/// `)`: utime and stime are fields 14 and 15.
fn parse(stat: &str) -> Option<f64> {
    let after_name = &stat[stat.rfind(')')? + 1..];
    let mut fields = after_name.split_whitespace().skip(11);
    let user: u64 = fields.next()?.parse().ok()?;
    let system: u64 = fields.next()?.parse().ok()?;
    // SAFETY: sysconf only reads a system constant.
    let ticks_per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    Some((user + system) as f64 / ticks_per_second as f64)
}
