//! Probes: small programs run inside a worker's sandbox, through the same
//! drivers as real workers, to show what the sandbox allows. `silt sandbox
//! check` and the sandbox tests use them; nothing else does.
//!
//! Inside (`silt __probe WHAT [ARG]`), each prints one JSON object:
//!
//! | probe | does |
//! |---|---|
//! | `id` | uid, gid, effective capabilities, `no_new_privs`, pid, hostname, environment size |
//! | `connect HOST:PORT` | a TCP connection |
//! | `write PATH` / `read PATH` | creates a file / reads one |
//! | `chmod PATH MODE` | creates a file, then sets its mode (octal) |
//! | `fork N` | starts N processes that wait, counts how many started |
//! | `alloc MIB` | allocates and touches MIB MiB, 1 MiB at a time |
//! | `sleep MS` | sleeps (to watch it die with its host) |

use std::ffi::OsString;
use std::io::Write as _;
use std::net::ToSocketAddrs as _;
use std::time::Duration;

use serde_json::json;

use super::{Launch, Request, SandboxConfig};
use crate::SandboxError;

/// The first argument that selects a probe inside a sandbox.
pub const PROBE_ARG: &str = "__probe";

/// Runs the probe named by `args` in this process and prints its result;
/// returns its exit code.
pub fn main(args: &[OsString]) -> u8 {
    let args: Vec<String> = args
        .iter()
        .map(|arg| arg.to_string_lossy().into_owned())
        .collect();
    let what = args.first().map(String::as_str).unwrap_or("");
    let arg = args.get(1).map(String::as_str).unwrap_or("");
    let result = match what {
        "id" => id(),
        "connect" => connect(arg),
        "write" => match std::fs::write(arg, b"probe") {
            Ok(()) => json!({ "ok": true }),
            Err(err) => json!({ "ok": false, "error": err.to_string() }),
        },
        "read" => match std::fs::read(arg) {
            Ok(bytes) => json!({ "ok": true, "bytes": bytes.len() }),
            Err(err) => json!({ "ok": false, "error": err.to_string() }),
        },
        "chmod" => chmod(arg, args.get(2).map(String::as_str).unwrap_or("644")),
        "fork" => fork(arg.parse().unwrap_or(1)),
        "alloc" => alloc(arg.parse().unwrap_or(1)),
        "sleep" => {
            println!("{}", json!({ "sleeping": std::process::id() }));
            let _ = std::io::stdout().flush();
            std::thread::sleep(Duration::from_millis(arg.parse().unwrap_or(1000)));
            json!({ "ok": true })
        }
        other => {
            eprintln!("unknown probe `{other}`");
            return 2;
        }
    };
    println!("{result}");
    0
}

/// The effective capability set (Linux only; `null` elsewhere).
fn capabilities() -> Option<u64> {
    #[cfg(target_os = "linux")]
    return super::capabilities::effective().ok();
    #[cfg(not(target_os = "linux"))]
    return None;
}

fn id() -> serde_json::Value {
    let mut name = [0u8; 256];
    // SAFETY: a buffer of the given length, and plain queries.
    let hostname = unsafe {
        libc::gethostname(name.as_mut_ptr().cast(), name.len());
        std::ffi::CStr::from_ptr(name.as_ptr().cast())
            .to_string_lossy()
            .into_owned()
    };
    let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
    #[cfg(target_os = "linux")]
    // SAFETY: a plain query.
    let no_new_privs = Some(unsafe { libc::prctl(libc::PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) } == 1);
    #[cfg(not(target_os = "linux"))]
    let no_new_privs: Option<bool> = None;
    json!({
        "uid": uid,
        "gid": gid,
        "capabilities": capabilities(),
        "no_new_privs": no_new_privs,
        "pid": std::process::id(),
        "hostname": hostname,
        // The block the process was started with, as the kernel keeps it:
        // unsetting variables in the process does not empty it.
        "environment": std::fs::read("/proc/self/environ")
            .map(|block| block.split(|&byte| byte == 0).filter(|v| !v.is_empty()).count())
            .unwrap_or_else(|_| std::env::vars_os().count()),
    })
}

fn connect(address: &str) -> serde_json::Value {
    let addresses = match address.to_socket_addrs() {
        Ok(addresses) => addresses.collect::<Vec<_>>(),
        Err(err) => return json!({ "ok": false, "error": err.to_string() }),
    };
    let Some(address) = addresses.first() else {
        return json!({ "ok": false, "error": "no address" });
    };
    match std::net::TcpStream::connect_timeout(address, Duration::from_secs(2)) {
        Ok(_) => json!({ "ok": true }),
        Err(err) => json!({ "ok": false, "error": err.to_string() }),
    }
}

fn chmod(path: &str, mode: &str) -> serde_json::Value {
    use std::os::unix::fs::PermissionsExt as _;
    let Ok(mode) = u32::from_str_radix(mode, 8) else {
        return json!({ "ok": false, "error": "the mode is not octal" });
    };
    let result = std::fs::write(path, b"probe")
        .and_then(|()| std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)));
    match result {
        Ok(()) => json!({ "ok": true }),
        Err(err) => json!({ "ok": false, "error": err.to_string() }),
    }
}

fn fork(count: u32) -> serde_json::Value {
    let mut children = Vec::new();
    let mut error = None;
    for _ in 0..count {
        // SAFETY: the child only pauses until it is killed.
        match unsafe { libc::fork() } {
            -1 => {
                error = Some(std::io::Error::last_os_error().to_string());
                break;
            }
            0 => loop {
                unsafe { libc::pause() };
            },
            pid => children.push(pid),
        }
    }
    let forked = children.len();
    for pid in children {
        // SAFETY: our own children.
        unsafe {
            libc::kill(pid, libc::SIGKILL);
            libc::waitpid(pid, std::ptr::null_mut(), 0);
        }
    }
    json!({ "forked": forked, "error": error })
}

fn alloc(mib: usize) -> serde_json::Value {
    let mut blocks: Vec<Vec<u8>> = Vec::new();
    for _ in 0..mib {
        let mut block = Vec::new();
        if block.try_reserve_exact(1 << 20).is_err() {
            return json!({ "allocated_mib": blocks.len(), "error": "allocation failed" });
        }
        block.resize(1 << 20, 1u8);
        blocks.push(block);
    }
    json!({ "allocated_mib": blocks.len() })
}

/// What a probe printed and how it ended.
#[derive(Debug)]
pub struct ProbeOutcome {
    /// The driver that ran it.
    pub driver: super::Driver,
    /// Its exit status.
    pub status: std::process::ExitStatus,
    /// Its stdout, one JSON object per line.
    pub stdout: String,
    /// Its stderr (a sandbox set-up failure says why here).
    pub stderr: String,
    /// Whether its memory cgroup recorded an OOM kill.
    pub oom_killed: bool,
}

impl ProbeOutcome {
    /// The last JSON object it printed.
    pub fn result(&self) -> Option<serde_json::Value> {
        self.stdout
            .lines()
            .rev()
            .find_map(|line| serde_json::from_str(line).ok())
    }
}

/// Runs the probe `args` in a sandbox made by `config`, with `scratch` as
/// its writable directory (seen at `/scratch` under sandboxing drivers).
///
/// # Errors
/// When the sandbox cannot be prepared or the probe not started.
pub async fn run(
    config: &SandboxConfig,
    args: &[OsString],
    scratch: &std::path::Path,
    root_dir: &std::path::Path,
    memory_limit_bytes: u64,
) -> Result<ProbeOutcome, SandboxError> {
    let mut probe_args = vec![OsString::from(PROBE_ARG)];
    probe_args.extend(args.iter().cloned());
    let request = Request {
        name: format!("probe-{}-{}", std::process::id(), next_sequence()),
        read_only: Vec::new(),
        writable: vec![super::Bind {
            host: scratch.to_owned(),
            guest: "/scratch".into(),
        }],
        memory_limit_bytes,
        pids_limit: config.pids_limit,
        root_dir: root_dir.to_owned(),
        args: probe_args,
    };
    let Launch {
        mut command,
        cgroup,
        driver,
        container,
        ..
    } = super::prepare(config, &request, "probe")?;
    let child = command.spawn().map_err(|err| SandboxError::Worker {
        extension: "probe".into(),
        detail: format!("cannot start the probe: {err}"),
    })?;
    let output = child
        .wait_with_output()
        .await
        .map_err(|err| SandboxError::Worker {
            extension: "probe".into(),
            detail: format!("cannot wait for the probe: {err}"),
        })?;
    let oom_killed = cgroup.as_ref().is_some_and(|group| group.oom_killed());
    drop(container);
    Ok(ProbeOutcome {
        driver,
        status: output.status,
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        oom_killed,
    })
}

fn next_sequence() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}
