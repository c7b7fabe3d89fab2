//! The `native` driver's init: a fresh, single-threaded exec of `silt`
//! (`silt __sandbox-init SPEC ARGS...`) that builds the sandbox around
//! itself, then becomes the worker inside it.
//!
//! It runs first thing in `main`, before any thread or async runtime
//! exists: `unshare(CLONE_NEWUSER)` requires a single-threaded process, and
//! doing this in a `pre_exec` hook of the multi-threaded host would not be
//! fork-safe. In order:
//!
//! 1. die with the parent (`PR_SET_PDEATHSIG`); join the worker's cgroups;
//!    rlimits (`RLIMIT_CORE` 0, `RLIMIT_DATA` when no memory cgroup);
//! 2. a new root on a tmpfs holding only the bundle, read-only (executable
//!    mappings allowed), and one scratch directory, writable; `pivot_root`
//!    into it and detach the old root; the tmpfs itself is read-only;
//! 3. new user, mount, net, pid, ipc and uts namespaces; inside, the
//!    process is `nobody` (65534). Outside it is never kernel uid 0:
//!    - when the host is an ordinary user, `nobody` maps to that user, so
//!      the scratch directory stays writable; the new root (step 2) is
//!      built just after the user namespace exists;
//!    - when the host is root, the init builds the new root first, as root,
//!      from idmapped binds (`native_init/idmap.rs`): the host's files
//!      appear owned by the worker's own kernel uid ([`KernelIds`],
//!      `[sandbox] worker_uid`), and what it creates lands owned by the
//!      host. Then root creates the user namespace (no setting against
//!      unprivileged user namespaces applies to root), a helper left
//!      outside maps `nobody` in it to that uid, and the init becomes
//!      `nobody` there (no supplementary groups) before it creates the
//!      other namespaces;
//! 4. fork: the child is pid 1 of the new pid namespace (the parent waits
//!    and passes on its exit status);
//! 5. Landlock (filesystem: only those two; network: no TCP bind or
//!    connect; no signals or abstract sockets outside), `no_new_privs`, a
//!    seccomp denylist; then every capability is dropped (bounding,
//!    ambient, effective, permitted, inheritable);
//! 6. the child runs the worker (`ARGS`: `worker` or a probe) itself, with
//!    the environment it was started with (empty). Not exec'ing again
//!    saves loading the 45 MB binary a second time; nothing of the host's
//!    filesystem is needed after the exec that started the init.
//!
//! Any failure prints `silt sandbox: STEP: ERROR` on stderr and exits 125.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

// The init itself: namespaces, mounts, Landlock, seccomp (Linux only; on
// other systems the native driver steps down to `process`).
#[cfg(target_os = "linux")]
mod setup;
#[cfg(target_os = "linux")]
pub use setup::main;

/// The first argument that selects the init.
pub const INIT_ARG: &str = "__sandbox-init";
/// Where the `silt` binary appears inside a container.
pub const GUEST_BINARY: &str = "/silt";
/// The uid and gid the worker runs as inside its user namespace.
pub const NOBODY: u32 = 65534;
/// The kernel uid and gid of workers of a host that runs as root, unless
/// `[sandbox] worker_uid` says: a uid no account has, from the range that
/// systemd leaves unallocated (between its container ranges, which end at
/// 1879048191, and its foreign range, which starts at 2147352576).
pub const DEFAULT_WORKER_UID: u32 = 2_080_000_000;

/// A kernel uid and gid (outside any user namespace).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct KernelIds {
    /// The user.
    pub uid: u32,
    /// Its group.
    pub gid: u32,
}
/// Exit code of an init that could not build the sandbox.
pub const EXIT_SETUP_FAILED: i32 = 125;

/// A path of the host shown at another path inside the sandbox.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Bind {
    /// On the host.
    pub host: PathBuf,
    /// Inside the sandbox (absolute).
    pub guest: PathBuf,
}

/// Everything the init needs, passed as one JSON argument.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InitSpec {
    /// An empty directory of the host the new root is mounted on (only in
    /// the sandbox's mount namespace: the host never sees the mount).
    pub root: PathBuf,
    /// The host's pid: the init's parent, until the host dies.
    pub parent_pid: u32,
    /// Files or directories shown read-only.
    pub read_only: Vec<Bind>,
    /// Directories shown writable.
    pub writable: Vec<Bind>,
    /// `cgroup.procs` files to join before anything else.
    pub cgroup_procs: Vec<PathBuf>,
    /// `RLIMIT_DATA` in bytes, when no memory cgroup limits the worker.
    pub rlimit_data: Option<u64>,
    /// The invoking user, who owns the scratch directory.
    pub outer_uid: u32,
    /// The invoking user's group.
    pub outer_gid: u32,
    /// When the invoking user is root: the unprivileged ids the worker
    /// runs as (binds idmapped from the invoking user's). Otherwise `None`,
    /// and `nobody` inside maps to the invoking user.
    pub worker_ids: Option<KernelIds>,
    /// Apply Landlock; `Some(true)`: fail unless fully enforced.
    pub landlock: Option<bool>,
    /// Apply the seccomp denylist.
    pub seccomp: bool,
}

/// What runs as the worker once the sandbox is up: the embedding binary's
/// own entry point for `args` (silt's `sandboxed_main`), returning the
/// exit code. Passed in, so the sandbox knows nothing of its caller.
pub type Worker = fn(&[std::ffi::OsString]) -> u8;
