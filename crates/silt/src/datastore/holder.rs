//! Who this process is, as lock objects record it.

use crate::runtime::bindings::silt::datastore::types::Holder;

/// `user@host`, the host name and our pid.
pub fn current() -> Holder {
    let user = ["USER", "LOGNAME"]
        .iter()
        .find_map(|name| std::env::var(name).ok().filter(|value| !value.is_empty()))
        .or_else(user_from_passwd)
        .unwrap_or_else(|| "unknown".to_owned());
    let host = host_name();
    Holder {
        name: format!("{user}@{host}"),
        host,
        pid: std::process::id(),
    }
}

fn host_name() -> String {
    ["/proc/sys/kernel/hostname", "/etc/hostname"]
        .iter()
        .find_map(|path| std::fs::read_to_string(path).ok())
        .map(|name| name.trim().to_owned())
        .filter(|name| !name.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "localhost".to_owned())
}

/// Milliseconds since the Unix epoch (the clock lock objects use).
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// The name of our uid in `/etc/passwd` (for processes started without `USER`,
/// such as CI jobs and services).
fn user_from_passwd() -> Option<String> {
    use std::os::unix::fs::MetadataExt as _;
    let uid = std::fs::metadata("/proc/self").ok()?.uid().to_string();
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|line| {
        let mut fields = line.split(':');
        let name = fields.next()?;
        (fields.nth(1)? == uid).then(|| name.to_owned())
    })
}
