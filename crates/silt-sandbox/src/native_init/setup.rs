//! The native init on Linux: builds the sandbox around itself (see the
//! parent module for the steps), then runs the worker inside it.

use std::ffi::{CString, OsStr};
use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt as _;
use std::path::{Path, PathBuf};

use super::{Bind, EXIT_SETUP_FAILED, InitSpec, KernelIds, NOBODY, Worker};
use crate::idmap;

/// Runs the init with `spec` (JSON), then `worker` with `args` in the
/// sandbox. Never returns.
pub fn main(spec: &OsStr, args: &[std::ffi::OsString], worker: Worker) -> ! {
    let spec: InitSpec = match serde_json::from_slice(spec.as_bytes()) {
        Ok(spec) => spec,
        Err(err) => fail("reading the sandbox spec", &io::Error::other(err)),
    };
    run(&spec, args, worker)
}

fn run(spec: &InitSpec, args: &[std::ffi::OsString], worker: Worker) -> ! {
    // SAFETY (every `unsafe` in this file): plain system calls on a
    // single-threaded process, with pointers to live, NUL-terminated
    // buffers owned by the caller for the duration of the call.
    die_with_host(spec, "starting");
    // The new root's directories and mount points must be traversable by
    // the worker's uid whatever the user's umask; the worker gets the
    // user's back before it runs.
    let user_umask = unsafe { libc::umask(0o022) };
    let pid = std::process::id().to_string();
    for procs in &spec.cgroup_procs {
        if let Err(err) = std::fs::write(procs, &pid) {
            fail(&format!("joining cgroup {}", procs.display()), &err);
        }
    }
    set_rlimit(libc::RLIMIT_CORE, 0);
    if let Some(bytes) = spec.rlimit_data {
        set_rlimit(libc::RLIMIT_DATA, bytes);
    }

    match spec.worker_ids {
        Some(ids) => enter_as_unprivileged_worker(spec, ids),
        None => enter_as_invoking_user(spec),
    }

    match unsafe { libc::fork() } {
        -1 => fail(
            "forking into the new pid namespace",
            &io::Error::last_os_error(),
        ),
        0 => child(spec, args, worker, user_umask),
        child_pid => wait_and_exit(child_pid),
    }
}

/// A worker's namespaces; the user namespace is created first, so that
/// the others belong to it.
const NAMESPACES: libc::c_int = libc::CLONE_NEWUSER
    | libc::CLONE_NEWNS
    | libc::CLONE_NEWNET
    | libc::CLONE_NEWPID
    | libc::CLONE_NEWIPC
    | libc::CLONE_NEWUTS;

/// An ordinary host: the user namespace first, `nobody` mapped to the
/// host's own ids (the only mapping an unprivileged process may write),
/// then the new root, as the user namespace's owner.
fn enter_as_invoking_user(spec: &InitSpec) {
    check("creating namespaces (unshare)", unsafe {
        libc::unshare(NAMESPACES)
    });
    write_id_maps(KernelIds {
        uid: spec.outer_uid,
        gid: spec.outer_gid,
    });
    build_root(spec, &Sources::Paths);
}

/// A root host: the new root is built while the init is still root, from
/// binds idmapped to `worker`; then root creates the user namespace, a
/// helper outside maps `nobody` in it to `worker`, and the init becomes
/// `nobody` there (kernel `worker`) before it creates the other
/// namespaces. Nothing of the worker runs as kernel uid 0, the host's
/// files keep their owner, and unprivileged user namespaces need not be
/// allowed.
fn enter_as_unprivileged_worker(spec: &InitSpec, worker: KernelIds) {
    if worker.uid == 0 || worker.gid == 0 {
        fail(
            "choosing the worker's ids",
            &io::Error::other("the worker's uid and gid must not be 0"),
        );
    }
    // `/proc` is gone once the new root is in place: the maps are written
    // through this descriptor.
    let proc = std::fs::File::open("/proc").unwrap_or_else(|err| fail("opening /proc", &err));
    let host = KernelIds {
        uid: spec.outer_uid,
        gid: spec.outer_gid,
    };
    let idmapping = idmap::idmapping(host, worker)
        .unwrap_or_else(|err| fail("creating the idmapping of the binds", &err));
    let detach = |bind: &Bind, writable: bool| {
        idmap::detach(&bind.host, writable, &idmapping)
            .unwrap_or_else(|err| fail(&format!("idmapping {}", bind.host.display()), &err))
    };
    let read_only = spec.read_only.iter().map(|b| detach(b, false)).collect();
    let writable = spec.writable.iter().map(|b| detach(b, true)).collect();
    drop(idmapping);
    check("creating the mount namespace (unshare)", unsafe {
        libc::unshare(libc::CLONE_NEWNS)
    });
    build_root(
        spec,
        &Sources::Detached {
            read_only,
            writable,
        },
    );
    let mapper = idmap::OutsideMapper::start(&proc, NOBODY, worker)
        .unwrap_or_else(|err| fail("starting the helper that writes the id maps", &err));
    drop(proc);
    check("creating the user namespace (unshare)", unsafe {
        libc::unshare(libc::CLONE_NEWUSER)
    });
    if let Err(err) = mapper.map() {
        fail("writing the id maps", &err);
    }
    become_nobody(spec);
    check("creating namespaces (unshare)", unsafe {
        libc::unshare(NAMESPACES & !libc::CLONE_NEWUSER)
    });
}

/// Becomes `nobody` of the user namespace for good (kernel: the worker's
/// ids): no supplementary groups (root's are gone), then gid, then uid.
/// The capabilities it holds in its own namespace stay until the child
/// drops them; it has none outside. The parent-death signal does not
/// survive a change of credentials, so it is armed again.
fn become_nobody(spec: &InitSpec) {
    check("dropping supplementary groups", unsafe {
        libc::setgroups(0, std::ptr::null())
    });
    check("setting the worker's gid", unsafe {
        libc::setresgid(NOBODY, NOBODY, NOBODY)
    });
    check("setting the worker's uid", unsafe {
        libc::setresuid(NOBODY, NOBODY, NOBODY)
    });
    die_with_host(spec, "becoming the worker");
}

/// Arms the parent-death signal, then checks the host did not die before
/// it was armed (the init would have been adopted by another process).
fn die_with_host(spec: &InitSpec, step: &str) {
    check("dying with the parent", unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0)
    });
    if unsafe { libc::getppid() } as u32 != spec.parent_pid {
        fail(
            step,
            &io::Error::other("the host died while the sandbox was set up"),
        );
    }
}

/// The parent stays outside the pid namespace only to wait: when it dies
/// (the host killed it, or the host died), the child dies with it.
fn wait_and_exit(child: libc::pid_t) -> ! {
    let mut status = 0;
    loop {
        let waited = unsafe { libc::waitpid(child, &mut status, 0) };
        if waited == child {
            break;
        }
        if waited == -1 && io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
            fail("waiting for the worker", &io::Error::last_os_error());
        }
    }
    if libc::WIFEXITED(status) {
        std::process::exit(libc::WEXITSTATUS(status));
    }
    // Killed by a signal: report it the way a shell does.
    std::process::exit(128 + libc::WTERMSIG(status));
}

fn child(
    spec: &InitSpec,
    args: &[std::ffi::OsString],
    worker: Worker,
    user_umask: libc::mode_t,
) -> ! {
    // The worker runs here (see the module doc), so its parent is the init.
    check("dying with the parent", unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0)
    });
    let hostname = b"silt-worker";
    check("setting the hostname", unsafe {
        libc::sethostname(hostname.as_ptr().cast(), hostname.len())
    });
    if let Some(required) = spec.landlock {
        apply_landlock(spec, required);
    }
    check("setting no_new_privs", unsafe {
        libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
    });
    if spec.seccomp
        && let Err(err) = crate::seccomp_filter::apply()
    {
        fail("installing the seccomp filter", &err);
    }
    drop_capabilities();
    unsafe { libc::umask(user_umask) };
    let code = worker(args);
    std::process::exit(i32::from(code))
}

/// Maps `nobody` inside to `outer` (the only mapping an unprivileged
/// process may write for itself), then makes the process non-dumpable: no
/// process of the same user outside may attach to the worker or read its
/// memory through /proc.
fn write_id_maps(outer: KernelIds) {
    let write = |file: &str, text: String| {
        if let Err(err) = std::fs::write(format!("/proc/self/{file}"), text) {
            fail(&format!("writing /proc/self/{file}"), &err);
        }
    };
    write("setgroups", "deny".to_owned());
    write("uid_map", format!("{NOBODY} {} 1\n", outer.uid));
    write("gid_map", format!("{NOBODY} {} 1\n", outer.gid));
    check("making the process non-dumpable", unsafe {
        libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0)
    });
}

/// Where the binds of the new root come from.
enum Sources {
    /// The host's paths, bound by this (namespaced) process.
    Paths,
    /// Trees made by [`idmap::detach`], one per bind, in the spec's order.
    Detached {
        read_only: Vec<OwnedFd>,
        writable: Vec<OwnedFd>,
    },
}

fn build_root(spec: &InitSpec, sources: &Sources) {
    let root = &spec.root;
    // Nothing we mount may propagate back to the host.
    mount(
        None,
        Path::new("/"),
        None,
        libc::MS_REC | libc::MS_PRIVATE,
        "making / private",
    );
    mount(
        Some(Path::new("tmpfs")),
        root,
        Some("tmpfs"),
        libc::MS_NOSUID | libc::MS_NODEV,
        "mounting the new root",
    );
    let inside = |guest: &Path| root.join(guest.strip_prefix("/").unwrap_or(guest));
    match sources {
        Sources::Paths => {
            for entry in &spec.read_only {
                bind(&entry.host, &inside(&entry.guest), false);
            }
            for entry in &spec.writable {
                bind(&entry.host, &inside(&entry.guest), true);
            }
        }
        Sources::Detached {
            read_only,
            writable,
        } => {
            let binds = spec.read_only.iter().zip(read_only);
            for (entry, tree) in binds.chain(spec.writable.iter().zip(writable)) {
                let target = inside(&entry.guest);
                // What was detached, not what the path names now.
                create_mount_point(idmap::is_directory(tree), &target);
                if let Err(err) = idmap::attach(tree, &target) {
                    fail(&format!("attaching {}", entry.host.display()), &err);
                }
            }
        }
    }
    mount(
        None,
        root,
        None,
        libc::MS_REMOUNT | libc::MS_BIND | libc::MS_RDONLY | libc::MS_NOSUID | libc::MS_NODEV,
        "making the new root read-only",
    );
    let root_c = c_path(root);
    check("entering the new root", unsafe {
        libc::chdir(root_c.as_ptr())
    });
    let dot = c_path(Path::new("."));
    check("pivot_root", unsafe {
        libc::syscall(libc::SYS_pivot_root, dot.as_ptr(), dot.as_ptr()) as libc::c_int
    });
    check("detaching the old root", unsafe {
        libc::umount2(dot.as_ptr(), libc::MNT_DETACH)
    });
    let slash = c_path(Path::new("/"));
    check("entering /", unsafe { libc::chdir(slash.as_ptr()) });
}

/// Bind-mounts `source` at `target` (created as a file or directory to
/// match), then remounts it read-only unless `writable`, keeping the flags
/// the kernel locks for mounts inherited into a user namespace.
fn bind(source: &Path, target: &Path, writable: bool) {
    create_mount_point(source.is_dir(), target);
    let what = format!("binding {}", source.display());
    mount(
        Some(source),
        target,
        None,
        libc::MS_BIND | libc::MS_REC,
        &what,
    );
    let mut flags =
        libc::MS_BIND | libc::MS_REMOUNT | libc::MS_NOSUID | libc::MS_NODEV | locked_flags(target);
    if !writable {
        flags |= libc::MS_RDONLY;
    }
    mount(
        None,
        target,
        None,
        flags,
        &format!("remounting {}", target.display()),
    );
}

/// Creates `target` as a directory or an empty file, for a bind of one.
fn create_mount_point(directory: bool, target: &Path) {
    create_parent(target);
    let created = if directory {
        std::fs::create_dir_all(target)
    } else {
        std::fs::File::create(target).map(drop)
    };
    if let Err(err) = created {
        fail(&format!("creating mount point {}", target.display()), &err);
    }
}

/// The flags of the mount at `path` that a remount must keep.
fn locked_flags(path: &Path) -> libc::c_ulong {
    let path_c = c_path(path);
    let mut stat: libc::statvfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statvfs(path_c.as_ptr(), &mut stat) } != 0 {
        return 0;
    }
    let mut flags = 0;
    for (st, ms) in [
        (libc::ST_NOEXEC, libc::MS_NOEXEC),
        (libc::ST_NOATIME, libc::MS_NOATIME),
        (libc::ST_NODIRATIME, libc::MS_NODIRATIME),
        (libc::ST_RELATIME, libc::MS_RELATIME),
        (libc::ST_RDONLY, libc::MS_RDONLY),
    ] {
        if stat.f_flag & st != 0 {
            flags |= ms;
        }
    }
    flags
}

fn create_parent(path: &Path) {
    if let Some(parent) = path.parent()
        && let Err(err) = std::fs::create_dir_all(parent)
    {
        fail(&format!("creating {}", parent.display()), &err);
    }
}

fn apply_landlock(spec: &InitSpec, required: bool) {
    use landlock::{
        ABI, Access, AccessFs, AccessNet, Ruleset, RulesetAttr, RulesetCreatedAttr, RulesetStatus,
        Scope, path_beneath_rules,
    };
    let abi = ABI::V6;
    let read_only: Vec<PathBuf> = spec
        .read_only
        .iter()
        .map(|bind| bind.guest.clone())
        .collect();
    let writable: Vec<PathBuf> = spec
        .writable
        .iter()
        .map(|bind| bind.guest.clone())
        .collect();
    let status = Ruleset::default()
        .handle_access(AccessFs::from_all(abi))
        .and_then(|ruleset| ruleset.handle_access(AccessNet::from_all(abi)))
        .and_then(|ruleset| ruleset.scope(Scope::from_all(abi)))
        .and_then(|ruleset| ruleset.create())
        .and_then(|ruleset| {
            ruleset.add_rules(path_beneath_rules(&read_only, AccessFs::from_read(abi)))
        })
        .and_then(|ruleset| {
            ruleset.add_rules(path_beneath_rules(&writable, AccessFs::from_all(abi)))
        })
        .and_then(|ruleset| ruleset.restrict_self());
    match status {
        Ok(status) if required && status.ruleset == RulesetStatus::NotEnforced => fail(
            "Landlock",
            &io::Error::other("this kernel does not enforce Landlock"),
        ),
        Ok(_) => {}
        Err(err) => fail("Landlock", &io::Error::other(err)),
    }
}

/// Drops every capability this process holds in its user namespace: the
/// worker must not be able to undo the sandbox (remount, unshare, ...),
/// even where seccomp would let a call through.
fn drop_capabilities() {
    for capability in 0..64 {
        // EINVAL past the last capability this kernel knows: nothing to drop.
        unsafe { libc::prctl(libc::PR_CAPBSET_DROP, capability, 0, 0, 0) };
    }
    check("clearing ambient capabilities", unsafe {
        libc::prctl(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_CLEAR_ALL,
            0,
            0,
            0,
        )
    });
    if let Err(err) = crate::capabilities::clear() {
        fail("dropping capabilities", &err);
    }
}

fn set_rlimit(resource: libc::__rlimit_resource_t, value: u64) {
    let limit = libc::rlimit {
        rlim_cur: value,
        rlim_max: value,
    };
    check("setting an rlimit", unsafe {
        libc::setrlimit(resource, &limit)
    });
}

fn mount(
    source: Option<&Path>,
    target: &Path,
    fstype: Option<&str>,
    flags: libc::c_ulong,
    what: &str,
) {
    let source = source.map(c_path);
    let target = c_path(target);
    let fstype = fstype.map(|t| CString::new(t).expect("fstype has no NUL"));
    let result = unsafe {
        libc::mount(
            source.as_ref().map_or(std::ptr::null(), |s| s.as_ptr()),
            target.as_ptr(),
            fstype.as_ref().map_or(std::ptr::null(), |t| t.as_ptr()),
            flags,
            std::ptr::null(),
        )
    };
    check(what, result);
}

fn c_path(path: &Path) -> CString {
    CString::new(path.as_os_str().as_bytes())
        .unwrap_or_else(|_| fail("preparing a path", &io::Error::other("a path contains NUL")))
}

fn check(what: &str, result: libc::c_int) {
    if result == -1 {
        fail(what, &io::Error::last_os_error());
    }
}

fn fail(what: &str, err: &io::Error) -> ! {
    eprintln!("silt sandbox: {what}: {err}");
    std::process::exit(EXIT_SETUP_FAILED)
}
