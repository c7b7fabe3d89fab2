//! What this machine supports for sandboxing workers: probed once per
//! process, cheaply (a syscall or a file read each, one short-lived child
//! for user namespaces), and reported by `silt sandbox check`.

use std::path::PathBuf;
use std::sync::OnceLock;

use serde::Serialize;

use super::cgroup::Hierarchies;

/// The sandboxing features of this machine.
#[derive(Debug, Clone, Serialize)]
pub struct Support {
    /// Whether user (and with them mount, net, pid, ipc, uts) namespaces
    /// can be created; why not otherwise.
    pub namespaces: Result<(), String>,
    /// The Landlock ABI version the kernel enforces, if any.
    pub landlock_abi: Option<u32>,
    /// Whether seccomp filters can be installed.
    pub seccomp: bool,
    /// Where the memory and pids controllers are mounted (read once: every
    /// native worker's cgroup is made under them).
    pub cgroups: Hierarchies,
    /// Whether this process may create cgroups under those (root or a
    /// delegated subtree).
    pub cgroups_writable: bool,
    /// Container runtimes found on PATH: name and path.
    pub container_runtimes: Vec<(String, PathBuf)>,
}

impl Support {
    /// This machine's support, probed on first use.
    pub fn get() -> &'static Support {
        static SUPPORT: OnceLock<Support> = OnceLock::new();
        SUPPORT.get_or_init(Support::probe)
    }

    fn probe() -> Self {
        let hierarchies = Hierarchies::detect();
        let cgroups_writable = [&hierarchies.memory, &hierarchies.pids]
            .into_iter()
            .flatten()
            .all(|(root, _)| writable(root));
        Self {
            namespaces: probe_namespaces(),
            landlock_abi: landlock_abi(),
            seccomp: seccomp_available(),
            cgroups: hierarchies,
            cgroups_writable,
            container_runtimes: ["runc", "crun", "docker", "podman"]
                .into_iter()
                .filter_map(|name| find_on_path(name).map(|path| (name.to_owned(), path)))
                .collect(),
        }
    }
}

fn writable(path: &std::path::Path) -> bool {
    let Ok(c_path) = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()) else {
        return false;
    };
    // SAFETY: a NUL-terminated path that outlives the call.
    unsafe { libc::access(c_path.as_ptr(), libc::W_OK) == 0 }
}

/// Finds `name` in `PATH`, or takes it as a path when it contains `/`.
pub fn find_on_path(name: &str) -> Option<PathBuf> {
    if name.contains('/') {
        let path = PathBuf::from(name);
        return path.is_file().then_some(path);
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

/// Forks a child that tries to create the namespaces a worker needs.
/// Asking the kernel is the only reliable test: sysctls, AppArmor and
/// container runtimes each can forbid it.
#[cfg(target_os = "linux")]
fn probe_namespaces() -> Result<(), String> {
    let flags = libc::CLONE_NEWUSER
        | libc::CLONE_NEWNS
        | libc::CLONE_NEWNET
        | libc::CLONE_NEWPID
        | libc::CLONE_NEWIPC
        | libc::CLONE_NEWUTS;
    // SAFETY: the child only makes raw system calls (async-signal-safe)
    // and leaves with `_exit`, so forking a multi-threaded process is fine.
    let pid = unsafe { libc::fork() };
    match pid {
        -1 => Err(format!("cannot fork: {}", std::io::Error::last_os_error())),
        0 => unsafe {
            let code = if libc::unshare(flags) == 0 {
                0
            } else {
                *libc::__errno_location()
            };
            libc::_exit(code)
        },
        child => {
            let mut status = 0;
            // SAFETY: waiting for our own child.
            unsafe { libc::waitpid(child, &mut status, 0) };
            match libc::WIFEXITED(status).then(|| libc::WEXITSTATUS(status)) {
                Some(0) => Ok(()),
                Some(errno) => Err(format!(
                    "the kernel refuses new user namespaces: {}",
                    std::io::Error::from_raw_os_error(errno)
                )),
                None => Err("the namespace probe died".to_owned()),
            }
        }
    }
}

#[cfg(not(target_os = "linux"))]
fn probe_namespaces() -> Result<(), String> {
    Err("Linux namespaces do not exist on this system".to_owned())
}

#[cfg(not(target_os = "linux"))]
fn landlock_abi() -> Option<u32> {
    None
}

#[cfg(not(target_os = "linux"))]
fn seccomp_available() -> bool {
    false
}

#[cfg(target_os = "linux")]
fn landlock_abi() -> Option<u32> {
    const LANDLOCK_CREATE_RULESET_VERSION: libc::c_uint = 1;
    // SAFETY: the documented version query: no ruleset, size 0.
    let abi = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            std::ptr::null::<libc::c_void>(),
            0usize,
            LANDLOCK_CREATE_RULESET_VERSION,
        )
    };
    (abi > 0).then_some(abi as u32)
}

#[cfg(target_os = "linux")]
fn seccomp_available() -> bool {
    // SAFETY: a query with no pointers.
    unsafe { libc::prctl(libc::PR_GET_SECCOMP, 0, 0, 0, 0) >= 0 }
}
