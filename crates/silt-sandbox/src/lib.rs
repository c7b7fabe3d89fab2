//! The OS sandbox of out-of-process workers.
//!
//! A worker is `silt worker` in a separate process; a driver decides how
//! it is confined (see [`config`] for `[sandbox]` in `silt.toml`):
//!
//! - `native` (Linux): `silt __sandbox-init` ([`native_init`]) builds
//!   namespaces, a read-only root, Landlock, seccomp and cgroup limits
//!   around itself, then execs the worker;
//! - `process`: a plain child with an empty environment, `RLIMIT_DATA`,
//!   no core dumps, its own process group, death with the parent;
//! - `container`: an OCI container through runc (or crun), docker or podman
//!   ([`container`]).
//!
//! [`prepare`] turns the configuration and one worker's [`Request`] into a
//! command to spawn, stepping down (`auto`) or refusing (`strict`) where
//! this machine lacks a layer ([`support`]).

#[cfg(target_os = "linux")]
pub mod capabilities;
pub mod cgroup;
pub mod config;
pub mod container;
mod error;
#[cfg(target_os = "linux")]
pub(crate) mod idmap;
pub mod native_init;
pub mod probe;
#[cfg(target_os = "linux")]
pub mod seccomp_filter;
pub mod support;

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Stdio;

pub use config::{
    ContainerConfig, Driver, Execution, ExtensionSandbox, Isolation, SandboxConfig,
    WORKER_OVERHEAD_MIB,
};
pub use error::SandboxError;
pub use native_init::Bind;
#[cfg(target_os = "linux")]
use native_init::{INIT_ARG, InitSpec};
pub use support::Support;

/// What one worker may see and use.
#[derive(Debug, Clone)]
pub struct Request {
    /// A name unique on this machine while the worker lives (its cgroup).
    pub name: String,
    /// Host files or directories shown read-only (the bundle).
    pub read_only: Vec<Bind>,
    /// Host directories shown writable (the scratch / cache directory).
    pub writable: Vec<Bind>,
    /// OS memory limit in bytes.
    pub memory_limit_bytes: u64,
    /// Processes and threads.
    pub pids_limit: u64,
    /// An empty directory of ours the native driver mounts its root on.
    pub root_dir: PathBuf,
    /// Arguments of `silt` inside (e.g. `worker`).
    pub args: Vec<OsString>,
}

/// A worker ready to spawn.
pub struct Launch {
    /// The command, with stdin, stdout and stderr piped.
    pub command: tokio::process::Command,
    /// Whether the worker sees [`Bind::guest`] paths (else host paths).
    pub guest_paths: bool,
    /// The worker's cgroups, removed when dropped (after the worker).
    pub cgroup: Option<cgroup::Group>,
    /// The driver actually used (after any step-down).
    pub driver: Driver,
    /// The container to remove once the worker is gone.
    pub container: Option<container::ContainerGuard>,
}

/// The `silt` binary workers run: `SILT_WORKER_BINARY`, else this
/// executable when it is `silt`, else a `silt` beside it or one directory
/// up (a test or bench binary in `target/*/deps`).
///
/// # Errors
/// When no `silt` binary can be found.
pub fn worker_binary() -> std::io::Result<PathBuf> {
    if let Some(path) = std::env::var_os("SILT_WORKER_BINARY") {
        return Ok(PathBuf::from(path));
    }
    let exe = std::env::current_exe()?;
    if exe.file_stem().is_some_and(|stem| stem == "silt") {
        return Ok(exe);
    }
    let dir = exe.parent().map(PathBuf::from).unwrap_or_default();
    [dir.join("silt"), dir.join("../silt")]
        .into_iter()
        .find(|candidate| candidate.is_file())
        .ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!(
                    "cannot find the `silt` binary for workers beside {} (set SILT_WORKER_BINARY)",
                    exe.display()
                ),
            )
        })
}

/// The kernel ids a `native` worker runs as: the dedicated
/// `[sandbox] worker_uid` when this process is root, else this process's
/// own (`nobody` inside maps to them either way).
pub fn native_worker_ids(config: &SandboxConfig) -> native_init::KernelIds {
    // SAFETY: plain queries.
    let (uid, gid) = unsafe { (libc::geteuid(), libc::getegid()) };
    if uid == 0 {
        native_init::KernelIds {
            uid: config.worker_uid,
            gid: config.worker_uid,
        }
    } else {
        native_init::KernelIds { uid, gid }
    }
}

/// The ids a root host's workers drop to (`[sandbox] worker_uid`), native
/// or in a container,
/// refused when they would be root or an account's; `None` for an
/// ordinary host, whose workers keep its own ids.
#[cfg(target_os = "linux")]
fn dropped_ids(worker_uid: u32) -> Result<Option<native_init::KernelIds>, String> {
    if !running_as_root() {
        return Ok(None);
    }
    if worker_uid == 0 {
        return Err(
            "[sandbox] worker_uid = 0 would run workers as root; choose an unprivileged uid"
                .to_owned(),
        );
    }
    if let Some(account) = account_of(worker_uid) {
        return Err(format!(
            "[sandbox] worker_uid = {worker_uid} is the account `{account}` (/etc/passwd); workers need a uid no account has"
        ));
    }
    Ok(Some(native_init::KernelIds {
        uid: worker_uid,
        gid: worker_uid,
    }))
}

/// Workers keep the host's ids outside Linux.
#[cfg(not(target_os = "linux"))]
fn dropped_ids(_worker_uid: u32) -> Result<Option<native_init::KernelIds>, String> {
    Ok(None)
}

/// The name of the account `/etc/passwd` gives `uid`, if any.
#[cfg(target_os = "linux")]
fn account_of(uid: u32) -> Option<String> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|line| {
        let mut fields = line.split(':');
        let name = fields.next()?;
        let id: u32 = fields.nth(1)?.parse().ok()?;
        (id == uid).then(|| name.to_owned())
    })
}

/// Whether this process runs as root (effective uid 0).
pub fn running_as_root() -> bool {
    // SAFETY: a plain query.
    unsafe { libc::geteuid() == 0 }
}

/// Prepares the command that starts a worker for `extension` under `config`.
///
/// # Errors
/// [`SandboxError::Unavailable`] when `isolation = "strict"` and a
/// layer is missing; [`SandboxError::Worker`] when the binary is missing.
pub fn prepare(
    config: &SandboxConfig,
    request: &Request,
    extension: &str,
) -> Result<Launch, SandboxError> {
    let unavailable = |detail: String| SandboxError::Unavailable {
        extension: extension.to_owned(),
        detail,
    };
    let binary = worker_binary().map_err(|err| SandboxError::Worker {
        extension: extension.to_owned(),
        detail: err.to_string(),
    })?;
    let strict = config.isolation == Isolation::Strict;
    if config.isolation == Isolation::Off {
        return Ok(plain(&binary, request, false));
    }
    let support = Support::get();
    let mut driver = config.driver();
    loop {
        let attempt = match driver {
            Driver::Process => return Ok(plain(&binary, request, true)),
            Driver::Container => dropped_ids(config.worker_uid)
                .and_then(|worker| container::prepare(&config.container, &binary, request, worker)),
            Driver::Native => match &support.namespaces {
                #[cfg(target_os = "linux")]
                Ok(()) => native(&binary, request, config.worker_uid, support, strict),
                #[cfg(not(target_os = "linux"))]
                Ok(()) => Err("native driver: needs Linux".to_owned()),
                Err(why) => Err(format!("native driver: {why}")),
            },
        };
        match attempt {
            Ok(launch) => return Ok(launch),
            Err(why) if strict => return Err(unavailable(why)),
            Err(why) => {
                // `auto`: the next weaker driver, said once.
                let next = match driver {
                    Driver::Container => Driver::Native,
                    Driver::Native | Driver::Process => Driver::Process,
                };
                if next == Driver::Process && running_as_root() {
                    // The process driver keeps the host's ids: root's.
                    return Err(unavailable(format!(
                        "{why}; stepping down to the process driver would run a root host's worker as root (mend the above, or set [sandbox] driver = \"process\" to accept that)"
                    )));
                }
                warn_once(&format!("{why}; using the {} driver instead", next.name()));
                driver = next;
            }
        }
    }
}

/// A plain child process: empty environment, own process group, and,
/// unless `isolation = "off"`, rlimits and death with the parent.
fn plain(binary: &std::path::Path, request: &Request, limits: bool) -> Launch {
    let mut command = base_command(binary);
    command.args(&request.args);
    if limits {
        die_with_parent(&mut command, libc::SIGKILL);
        let memory = request.memory_limit_bytes;
        // SAFETY: only async-signal-safe system calls between fork and exec.
        unsafe {
            command.pre_exec(move || {
                let data = libc::rlimit {
                    rlim_cur: memory,
                    rlim_max: memory,
                };
                libc::setrlimit(libc::RLIMIT_DATA, &data);
                let core = libc::rlimit {
                    rlim_cur: 0,
                    rlim_max: 0,
                };
                libc::setrlimit(libc::RLIMIT_CORE, &core);
                Ok(())
            });
        }
    }
    Launch {
        command,
        guest_paths: false,
        cgroup: None,
        driver: Driver::Process,
        container: None,
    }
}

#[cfg(target_os = "linux")]
fn native(
    binary: &std::path::Path,
    request: &Request,
    worker_uid: u32,
    support: &Support,
    strict: bool,
) -> Result<Launch, String> {
    // Refused before anything is made for the worker (its cgroups).
    let worker_ids = dropped_ids(worker_uid)?;
    let mut missing = Vec::new();
    let landlock = match support.landlock_abi {
        Some(_) => Some(strict),
        None => {
            missing.push("Landlock (this kernel does not enforce it)".to_owned());
            None
        }
    };
    if !support.seccomp {
        missing.push("seccomp (this kernel has no seccomp filters)".to_owned());
    }
    let group = cgroup::Group::create(
        &support.cgroups,
        &request.name,
        request.memory_limit_bytes,
        request.pids_limit,
    );
    missing.extend(group.missing().iter().cloned());
    if !missing.is_empty() {
        if strict {
            return Err(format!("native driver: missing {}", missing.join("; ")));
        }
        for layer in &missing {
            warn_once(&format!("native sandbox without {layer}"));
        }
    }
    // SAFETY: plain queries.
    let (outer_uid, outer_gid) = unsafe { (libc::geteuid(), libc::getegid()) };
    std::fs::create_dir_all(&request.root_dir)
        .map_err(|err| format!("cannot create {}: {err}", request.root_dir.display()))?;
    let spec = InitSpec {
        root: request.root_dir.clone(),
        parent_pid: std::process::id(),
        read_only: request.read_only.clone(),
        writable: request.writable.clone(),
        cgroup_procs: group.procs().to_vec(),
        rlimit_data: (!group.limits_memory()).then_some(request.memory_limit_bytes),
        outer_uid,
        outer_gid,
        worker_ids,
        landlock,
        seccomp: support.seccomp,
    };
    let spec = serde_json::to_string(&spec).map_err(|err| err.to_string())?;
    let mut command = base_command(binary);
    command.arg(INIT_ARG).arg(spec).args(&request.args);
    Ok(Launch {
        command,
        guest_paths: true,
        cgroup: Some(group),
        driver: Driver::Native,
        container: None,
    })
}

fn base_command(binary: &std::path::Path) -> tokio::process::Command {
    let mut command = tokio::process::Command::new(binary);
    command
        .env_clear()
        .current_dir("/")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Terminal signals go to silt, which decides; not to its workers.
        .process_group(0)
        .kill_on_drop(true);
    command
}

/// Sends the child `signal` when the thread that spawned it exits (the
/// host's runtime threads live as long as the host): `SIGKILL` for a
/// worker, `SIGTERM` for a container runtime's CLI, which passes it on to
/// the worker and then removes the container.
#[cfg(target_os = "linux")]
fn die_with_parent(command: &mut tokio::process::Command, signal: libc::c_int) {
    // SAFETY: one async-signal-safe system call between fork and exec.
    unsafe {
        command.pre_exec(move || {
            libc::prctl(libc::PR_SET_PDEATHSIG, signal, 0, 0, 0);
            Ok(())
        });
    }
}

/// No parent-death signal outside Linux. A worker whose host died of
/// SIGKILL still exits at its next read or write on the pipe (end of
/// file); only a guest busy in wasm runs on, until its deadline.
#[cfg(not(target_os = "linux"))]
fn die_with_parent(_command: &mut tokio::process::Command, _signal: libc::c_int) {}

/// Makes `SIGTERM`, `SIGINT` and `SIGHUP` end this process at once, even
/// as pid 1 of a container's pid namespace (which ignores signals that
/// have no handler): a worker or probe asked to stop by its runtime (its
/// host died) has nothing to finish. Called first by what runs inside a
/// sandbox.
pub fn exit_on_termination_signals() {
    extern "C" fn exit_now(signal: libc::c_int) {
        // SAFETY: `_exit` is async-signal-safe.
        unsafe { libc::_exit(128 + signal) }
    }
    for signal in [libc::SIGTERM, libc::SIGINT, libc::SIGHUP] {
        // SAFETY: reads the disposition, then installs a handler that only
        // calls `_exit`, unless the signal was ignored on purpose (`nohup`,
        // a background job), which stays so.
        unsafe {
            let mut current: libc::sigaction = std::mem::zeroed();
            if libc::sigaction(signal, std::ptr::null(), &mut current) == 0
                && current.sa_sigaction == libc::SIG_IGN
            {
                continue;
            }
            libc::signal(signal, exit_now as *const () as libc::sighandler_t);
        }
    }
}

/// Whether the host that named a worker `<kind>-<host pid>-<sequence>`
/// (its cgroup, its container) is gone; `false` for any other name. A pid
/// reused by another process keeps the leftover until that one ends.
pub(crate) fn host_is_gone(name: &str) -> bool {
    let mut fields = name.split('-');
    let (Some(_kind), Some(pid), Some(sequence), None) =
        (fields.next(), fields.next(), fields.next(), fields.next())
    else {
        return false;
    };
    if pid.parse::<u32>().is_err() || sequence.parse::<u64>().is_err() {
        return false;
    }
    !Path::new("/proc").join(pid).exists()
}

/// Warns once per process about each missing layer.
fn warn_once(message: &str) {
    use std::collections::HashSet;
    use std::sync::Mutex;
    static WARNED: Mutex<Option<HashSet<String>>> = Mutex::new(None);
    let mut warned = WARNED.lock().unwrap_or_else(|e| e.into_inner());
    if warned
        .get_or_insert_with(HashSet::new)
        .insert(message.to_owned())
    {
        tracing::warn!("{message}");
    }
}
