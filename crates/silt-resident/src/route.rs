//! Which resident serves a command: one per environment and `silt`
//! executable.
//!
//! A resident runs each command in its own process environment, the one it
//! was started with, and with its own file-creation mask and group. So a
//! resident serves only clients whose environment is the same as its own
//! (but for the variables a shell changes at every `cd` or command, which
//! silt never reads: [`IGNORED`]), and a client finds it by a name made from
//! its environment, its umask and effective group, and the `silt` executable
//! it would otherwise run (path, device, inode, size, modification time): a
//! changed environment, `umask`, `newgrp` or a new `silt` gets a resident of
//! its own, and the old one exits when idle. The name only routes; the resident compares the
//! environment itself ([`same_environment`]) and leaves a command whose
//! environment differs to the client.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt as _;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};

/// Variables a shell sets anew for every command or directory (`PWD`,
/// `OLDPWD`, and `_`, the last command's path). silt reads none of them;
/// the command's working directory travels as a descriptor.
pub const IGNORED: [&str; 3] = ["PWD", "OLDPWD", "_"];

/// The environment as a resident compares it: without [`IGNORED`], sorted.
pub fn comparable<'a>(
    env: impl IntoIterator<Item = (&'a OsStr, &'a OsStr)>,
) -> Vec<(&'a OsStr, &'a OsStr)> {
    let mut env: Vec<(&OsStr, &OsStr)> = env
        .into_iter()
        .filter(|(key, _)| !IGNORED.iter().any(|ignored| key == ignored))
        .collect();
    env.sort_unstable();
    env
}

/// True when `a` and `b` are the same environment but for [`IGNORED`].
pub fn same_environment(a: &[(OsString, OsString)], b: &[(OsString, OsString)]) -> bool {
    pairs(a) == pairs(b)
}

fn pairs(env: &[(OsString, OsString)]) -> Vec<(&OsStr, &OsStr)> {
    comparable(env.iter().map(|(k, v)| (k.as_os_str(), v.as_os_str())))
}

/// The socket of the resident for `env` and the `silt` executable `host`:
/// `SILT_RESIDENT_SOCKET` in `env` when it is an absolute path (tests and
/// benchmarks with a resident of their own), else [`socket_path`] in
/// [`crate::socket_dir::default_dir`]. Its directory is checked when it is
/// used, as any.
///
/// # Errors
/// As [`socket_path`].
pub fn socket_for(host: &Path, env: &[(OsString, OsString)]) -> std::io::Result<PathBuf> {
    let chosen = env
        .iter()
        .find(|(key, _)| key == "SILT_RESIDENT_SOCKET")
        .map(|(_, value)| PathBuf::from(value))
        .filter(|path| path.is_absolute());
    match chosen {
        Some(socket) => Ok(socket),
        None => socket_path(&crate::socket_dir::default_dir(), host, env),
    }
}

/// The socket of the resident for `env` and the `silt` executable `host`, in
/// `dir`: `resident-<16 hex digits>.sock`.
///
/// # Errors
/// When `host` cannot be looked at (it is not installed).
pub fn socket_path(
    dir: &Path,
    host: &Path,
    env: &[(OsString, OsString)],
) -> std::io::Result<PathBuf> {
    let meta = std::fs::metadata(host)?;
    let mut hash = Fnv1a::default();
    hash.field(host.as_os_str().as_bytes());
    hash.field(&rustix::process::getegid().as_raw().to_le_bytes());
    hash.field(umask().as_bytes());
    for number in [
        meta.dev(),
        meta.ino(),
        meta.size(),
        meta.mtime().cast_unsigned(),
        meta.mtime_nsec().cast_unsigned(),
    ] {
        hash.field(&number.to_le_bytes());
    }
    for (key, value) in pairs(env) {
        hash.field(key.as_bytes());
        hash.field(value.as_bytes());
    }
    Ok(dir.join(format!("resident-{:016x}.sock", hash.0)))
}

/// This process's file-creation mask, as `/proc/self/status` gives it (read,
/// not set: `umask(2)` can only be read by changing it).
fn umask() -> String {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status.lines().find_map(|line| {
                line.strip_prefix("Umask:")
                    .map(|mask| mask.trim().to_owned())
            })
        })
        .unwrap_or_default()
}

/// FNV-1a, 64 bits: stable across builds and enough to route (a collision
/// costs a fresh process, never a wrong environment: see the module's doc).
struct Fnv1a(u64);

impl Default for Fnv1a {
    fn default() -> Self {
        Self(0xcbf2_9ce4_8422_2325)
    }
}

impl Fnv1a {
    /// Adds `bytes` with their length first, so fields cannot run together.
    fn field(&mut self, bytes: &[u8]) {
        for byte in (bytes.len() as u64).to_le_bytes().iter().chain(bytes) {
            self.0 ^= u64::from(*byte);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(OsString, OsString)> {
        pairs
            .iter()
            .map(|(k, v)| (OsString::from(k), OsString::from(v)))
            .collect()
    }

    #[test]
    fn a_shells_per_command_variables_and_the_order_do_not_count() {
        let a = env(&[("HOME", "/h"), ("PWD", "/a"), ("AWS_PROFILE", "x")]);
        let b = env(&[
            ("AWS_PROFILE", "x"),
            ("HOME", "/h"),
            ("PWD", "/b"),
            ("_", "/bin/silt"),
        ]);
        assert!(same_environment(&a, &b));
        let dir = Path::new("/run/silt");
        let host = std::env::current_exe().unwrap();
        assert_eq!(
            socket_path(dir, &host, &a).unwrap(),
            socket_path(dir, &host, &b).unwrap()
        );
    }

    #[test]
    fn any_other_difference_is_another_resident() {
        let dir = Path::new("/run/silt");
        let host = std::env::current_exe().unwrap();
        let base = env(&[("HOME", "/h"), ("AWS_PROFILE", "x")]);
        for other in [
            env(&[("HOME", "/h"), ("AWS_PROFILE", "y")]),
            env(&[("HOME", "/h")]),
            env(&[("HOME", "/h"), ("AWS_PROFILE", "x"), ("SILT_CONFIG", "/c")]),
            // Fields do not run together.
            env(&[("HOME", "/h"), ("AWS_PROFILEx", "")]),
        ] {
            assert!(!same_environment(&base, &other), "{other:?}");
            assert_ne!(
                socket_path(dir, &host, &base).unwrap(),
                socket_path(dir, &host, &other).unwrap(),
                "{other:?}"
            );
        }
        let elsewhere = tempfile::tempdir().unwrap();
        let copy = elsewhere.path().join("silt");
        std::fs::copy(&host, &copy).unwrap();
        assert_ne!(
            socket_path(dir, &host, &base).unwrap(),
            socket_path(dir, &copy, &base).unwrap(),
            "another executable"
        );
    }

    #[test]
    fn the_umask_is_read_not_guessed() {
        let mask = umask();
        assert_eq!(mask.len(), 4, "{mask:?}");
        assert!(mask.chars().all(|c| c.is_ascii_digit()), "{mask:?}");
    }

    #[test]
    fn no_host_no_socket() {
        assert!(socket_path(Path::new("/run/silt"), Path::new("/nonexistent/silt"), &[]).is_err());
    }
}
