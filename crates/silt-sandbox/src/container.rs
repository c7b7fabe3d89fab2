//! The `container` driver: the worker inside an OCI container.
//!
//! - `runc`: an OCI bundle made per worker (a `config.json` and an empty
//!   read-only rootfs into which this machine's `/usr` and library
//!   directories, the `silt` binary, the bundle and the scratch directory
//!   are bind-mounted), run in the foreground so the worker's stdio is the
//!   pipe to the host;
//! - `docker` / `podman`: `run --rm -i` of `[sandbox.container] image` with
//!   the same mounts.
//!
//! Every runtime gets: no network, a read-only root, the bundle read-only,
//! one writable scratch directory, memory and pids limits, no capabilities,
//! `no_new_privs`, no core dumps; under runc also the seccomp denylist of
//! the native driver. The container is removed (`runc delete --force`,
//! `docker|podman rm --force`) when the worker is dropped. A host killed
//! with SIGKILL cannot do that: its runtime CLI then gets `SIGTERM` (its
//! parent-death signal), passes it on to the worker, which exits at once,
//! and removes the container itself; what a killed runtime leaves behind is
//! removed by the next host ([`leftovers`]).

#[cfg(target_os = "linux")]
pub mod idmapped_binds;
pub mod image;
pub mod leftovers;

use std::ffi::OsString;
#[cfg(target_os = "linux")]
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::Stdio;

#[cfg(target_os = "linux")]
use serde_json::json;

#[cfg(target_os = "linux")]
use self::idmapped_binds::IdmappedBinds;
use super::native_init::{GUEST_BINARY, KernelIds};
use super::support::find_on_path;
use super::{Bind, ContainerConfig, Driver, Launch, Request};

/// Where a root host keeps its containers' directories (runc's bundles,
/// the mount points of the idmapped binds; see `idmapped_binds`).
pub const RUN_DIR: &str = "/run/silt/containers";

/// The first argument of the `silt` binary inside a container: the worker
/// confines itself further ([`confine_self`]) before it runs.
pub const CONTAINED_ARG: &str = "__contained";

/// Which CLI the runtime is, from its file name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    /// `runc` (or `crun`, which takes the same command line): an OCI bundle.
    Runc,
    /// `docker`.
    Docker,
    /// `podman`.
    Podman,
}

impl Flavor {
    fn of(runtime: &Path) -> Result<Self, String> {
        let name = runtime
            .file_name()
            .and_then(|name| name.to_str())
            .unwrap_or_default();
        // crun takes runc's command line and OCI bundle.
        if name.contains("runc") || name.contains("crun") {
            Ok(Self::Runc)
        } else if name.contains("podman") {
            Ok(Self::Podman)
        } else if name.contains("docker") {
            Ok(Self::Docker)
        } else {
            Err(format!(
                "cannot tell which container runtime `{name}` is: name it runc, crun, docker or podman"
            ))
        }
    }
}

/// Prepares a worker in a container. `worker` is the kernel ids a root
/// host's worker runs as (`[sandbox] worker_uid`), `None` for an ordinary
/// host, whose workers keep its own.
///
/// # Errors
/// When the runtime is not found, its bundle cannot be written or the binds
/// cannot be idmapped.
pub fn prepare(
    config: &ContainerConfig,
    binary: &Path,
    request: &Request,
    worker: Option<KernelIds>,
) -> Result<Launch, String> {
    let runtime = find_on_path(&config.runtime).ok_or_else(|| {
        format!(
            "container driver: `{}` is not on PATH (install runc, crun, docker or podman, or set [sandbox.container] runtime)",
            config.runtime
        )
    })?;
    let flavor = Flavor::of(&runtime)?;
    // A root host's are under /run (see `idmapped_binds`), one directory
    // per pid namespace (the pids in their names mean something only
    // there; the sweep looks at its own), others' in the cache.
    let containers = match worker {
        Some(_) => Path::new(RUN_DIR).join(silt_process::pid_namespace()),
        None => request.root_dir.with_file_name("containers"),
    };
    leftovers::remove_once(
        &runtime,
        flavor,
        (flavor == Flavor::Runc || worker.is_some()).then_some(containers.as_path()),
    );
    let id = format!("silt-{}", request.name);
    let dir = containers.join(&id);
    // Only a dead process of this pid can have left it (its sweep saw the
    // pid alive: it is ours now). Never removed through a mount.
    #[cfg(target_os = "linux")]
    if dir.exists() && !idmapped_binds::remove_container_dir(&dir) {
        return Err(format!(
            "container driver: {} is left by an earlier worker and is still mounted on; unmount what is beneath it",
            dir.display()
        ));
    }
    #[cfg(not(target_os = "linux"))]
    let _ = std::fs::remove_dir_all(&dir);
    // From here on, whatever fails leaves nothing: the guard removes the
    // directory (and a container, once there is one).
    #[cfg_attr(not(target_os = "linux"), allow(unused_mut))]
    let mut guard = ContainerGuard {
        runtime: runtime.clone(),
        remove: match flavor {
            Flavor::Runc => vec!["delete".into(), "--force".into(), id.clone()],
            // The container belongs to the daemon, not to this CLI process:
            // killing the CLI does not stop it, `rm -f` does.
            Flavor::Docker | Flavor::Podman => vec!["rm".into(), "--force".into(), id.clone()],
        },
        dir: (flavor == Flavor::Runc || worker.is_some()).then(|| dir.clone()),
        #[cfg(target_os = "linux")]
        attached: None,
    };
    #[cfg_attr(not(target_os = "linux"), allow(unused_mut))]
    let mut mounts = Mounts::of(binary, request);
    #[cfg(target_os = "linux")]
    let idmapped = match worker {
        Some(ids) => Some(mounts.idmap(&dir.join("binds"), ids).map_err(|err| {
            format!(
                "container driver: cannot idmap the worker's binds to uid {}: {err}",
                ids.uid
            )
        })?),
        None => None,
    };
    // docker's daemon makes the container's mounts in the host's mount
    // namespace: the trees are attached there, until the guard goes.
    #[cfg(target_os = "linux")]
    let idmapped = match idmapped {
        Some(binds) if flavor == Flavor::Docker => {
            let attach = || -> std::io::Result<idmapped_binds::AttachedBinds> {
                // In the host's namespace: no other user may walk in, and
                // nothing propagates out of the containers' directory.
                std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))?;
                idmapped_binds::make_private(&containers)?;
                binds.attach_here()
            };
            guard.attached = Some(attach().map_err(|err| {
                format!("container driver: cannot attach the worker's idmapped binds: {err}")
            })?);
            None
        }
        other => other,
    };
    let args = match flavor {
        // runc, and the OCI spec written for it, exist on Linux only.
        #[cfg(not(target_os = "linux"))]
        Flavor::Runc => {
            return Err(
                "container driver: runc runs on Linux only (use docker or podman)".to_owned(),
            );
        }
        #[cfg(target_os = "linux")]
        Flavor::Runc => {
            write_oci_bundle(&dir, &mounts, request, worker)
                .map_err(|err| format!("cannot write the OCI bundle {}: {err}", dir.display()))?;
            vec![
                OsString::from("run"),
                OsString::from("--bundle"),
                dir.clone().into_os_string(),
                OsString::from(&id),
            ]
        }
        Flavor::Docker | Flavor::Podman => {
            image::ensure_present(&runtime, flavor, &config.image)?;
            cli_args(flavor, &config.image, &id, &mounts, request, worker)
        }
    };
    let mut command = tokio::process::Command::new(&runtime);
    command
        .args(args)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .envs(client_variables(flavor))
        .current_dir("/")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    // SIGTERM, not SIGKILL: the CLI passes it on to the worker (which
    // exits at once, see `exit_on_termination_signals`) and removes the
    // container once the worker is gone; a killed CLI could not.
    super::die_with_parent(&mut command, libc::SIGTERM);
    #[cfg(target_os = "linux")]
    if let Some(idmapped) = idmapped {
        idmapped.attach_in_child(&mut command);
    }
    Ok(Launch {
        command,
        guest_paths: true,
        cgroup: None,
        driver: Driver::Container,
        container: Some(guard),
    })
}

/// The worker's binds: the `silt` binary, the request's read-only and
/// writable binds; their sources become the idmapped trees' mount points
/// under a root host.
pub struct Mounts {
    binds: Vec<(Bind, bool)>,
}

impl Mounts {
    fn of(binary: &Path, request: &Request) -> Self {
        let binary = Bind {
            host: binary.to_path_buf(),
            guest: GUEST_BINARY.into(),
        };
        let read_only = request.read_only.iter().map(|bind| (bind.clone(), false));
        let writable = request.writable.iter().map(|bind| (bind.clone(), true));
        Self {
            binds: std::iter::once((binary, false))
                .chain(read_only)
                .chain(writable)
                .collect(),
        }
    }

    /// Each bind's source, and whether the worker may write it.
    fn iter(&self) -> impl Iterator<Item = (&Bind, bool)> {
        self.binds.iter().map(|(bind, writable)| (bind, *writable))
    }

    #[cfg(target_os = "linux")]
    fn idmap(&mut self, dir: &Path, worker: KernelIds) -> std::io::Result<IdmappedBinds> {
        let sources: Vec<(&Path, bool)> = self
            .binds
            .iter()
            .map(|(bind, writable)| (bind.host.as_path(), *writable))
            .collect();
        let (idmapped, points) = IdmappedBinds::new(dir, &sources, worker)?;
        for ((bind, _), point) in self.binds.iter_mut().zip(points) {
            bind.host = point;
        }
        Ok(idmapped)
    }
}

/// What the `silt` binary does first inside a container (its first
/// argument is [`CONTAINED_ARG`]).
///
/// Started with any environment (docker sets `PATH`, `HOSTNAME` and
/// `HOME` in every container, and may add proxy settings from the user's
/// client configuration), it executes itself again with none: unsetting
/// variables would leave the block the kernel keeps, which
/// `/proc/self/environ` and the stack still show. Then it installs silt's
/// own seccomp filter, the native driver's, on top of the runtime's. It
/// names system calls by number, so it also refuses what a runtime's
/// profile by name cannot on an older libseccomp (`fchmodat2` with a
/// set-user-ID mode), x32 calls, and the namespace flags of `clone`.
/// Exits 125 when it cannot.
#[cfg(target_os = "linux")]
pub fn confine_self(args: &[OsString]) {
    use std::os::unix::process::CommandExt as _;
    let fail = |step: &str, err: &dyn std::fmt::Display| -> ! {
        eprintln!("silt sandbox: {step} inside the container: {err}");
        std::process::exit(super::native_init::EXIT_SETUP_FAILED);
    };
    if std::env::vars_os().next().is_some() {
        let exe = std::env::current_exe().unwrap_or_else(|err| fail("finding itself", &err));
        let err = std::process::Command::new(exe)
            .args(args.iter().skip(1))
            .env_clear()
            .exec();
        fail("starting again with no environment", &err);
    }
    if let Err(err) = crate::seccomp_filter::apply() {
        fail("installing the seccomp filter", &err);
    }
}

/// The command line inside the container: the worker applies silt's own
/// seccomp filter to itself ([`CONTAINED_ARG`]) on top of the runtime's.
fn guest_command(request: &Request) -> impl Iterator<Item = OsString> + '_ {
    [OsString::from(GUEST_BINARY), OsString::from(CONTAINED_ARG)]
        .into_iter()
        .chain(request.args.iter().cloned())
}

/// What the runtime's CLI needs of this process's environment: which
/// daemon to ask, and how (docker's client settings). Nothing reaches the
/// worker: `run` passes no variable on.
fn client_variables(flavor: Flavor) -> Vec<(&'static str, OsString)> {
    const DOCKER: [&str; 5] = [
        "DOCKER_HOST",
        "DOCKER_CONTEXT",
        "DOCKER_CONFIG",
        "DOCKER_CERT_PATH",
        "DOCKER_TLS_VERIFY",
    ];
    if flavor != Flavor::Docker {
        return Vec::new();
    }
    DOCKER
        .into_iter()
        .filter_map(|name| Some((name, std::env::var_os(name)?)))
        .collect()
}

/// Removes a worker's container (and its directory: runc's bundle, the
/// idmapped binds' mount points) once the worker is gone.
#[derive(Debug)]
pub struct ContainerGuard {
    runtime: PathBuf,
    remove: Vec<String>,
    dir: Option<PathBuf>,
    /// docker's idmapped binds, attached in the host's namespace.
    #[cfg(target_os = "linux")]
    attached: Option<idmapped_binds::AttachedBinds>,
}

impl Drop for ContainerGuard {
    fn drop(&mut self) {
        let _ = std::process::Command::new(&self.runtime)
            .args(&self.remove)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        // The container is gone: its binds can go, then their mount points.
        #[cfg(target_os = "linux")]
        drop(self.attached.take());
        if let Some(dir) = &self.dir {
            #[cfg(target_os = "linux")]
            idmapped_binds::remove_container_dir(dir);
            #[cfg(not(target_os = "linux"))]
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// `docker run` / `podman run` arguments.
pub fn cli_args(
    flavor: Flavor,
    image: &str,
    id: &str,
    mounts: &Mounts,
    request: &Request,
    worker: Option<KernelIds>,
) -> Vec<OsString> {
    let mut args: Vec<OsString> = [
        "run",
        "--rm",
        "-i",
        "--name",
        id,
        "--network",
        "none",
        "--read-only",
        "--cap-drop",
        "ALL",
        "--security-opt",
        "no-new-privileges",
        "--ulimit",
        "core=0",
        // The image is built here (`silt sandbox image build`), never pulled.
        "--pull",
        "never",
        "--hostname",
        "silt-worker",
    ]
    .into_iter()
    .map(OsString::from)
    .collect();
    if flavor == Flavor::Podman {
        // Podman sets these from the host's hard limits, which it cannot
        // raise on machines without CAP_SYS_RESOURCE.
        for ulimit in ["nofile=1024:1024", "nproc=1024:1024"] {
            args.push("--ulimit".into());
            args.push(ulimit.into());
        }
        // No variables but those the worker is given (none).
        args.push("--unsetenv-all".into());
    }
    // Which host's pids its name speaks of (see `leftovers`).
    args.push("--label".into());
    args.push(leftovers::host_label().into());
    match worker {
        // docker has no per-container user namespace: the worker's uid
        // itself, to which its binds are idmapped.
        Some(ids) if flavor == Flavor::Docker => {
            args.push("--user".into());
            args.push(format!("{}:{}", ids.uid, ids.gid).into());
        }
        // Root inside a user namespace of its own, the worker's uid outside.
        Some(ids) => {
            args.push("--uidmap".into());
            args.push(format!("0:{}:1", ids.uid).into());
            args.push("--gidmap".into());
            args.push(format!("0:{}:1", ids.gid).into());
            args.push("--user".into());
            args.push("0:0".into());
        }
        None => {
            // SAFETY: plain queries.
            let (uid, gid) = unsafe { (libc::geteuid(), libc::getegid()) };
            args.push("--user".into());
            args.push(format!("{uid}:{gid}").into());
        }
    }
    args.push("--memory".into());
    args.push(format!("{}b", request.memory_limit_bytes).into());
    args.push("--memory-swap".into());
    args.push(format!("{}b", request.memory_limit_bytes).into());
    args.push("--pids-limit".into());
    args.push(request.pids_limit.to_string().into());
    let mut volume = |host: &Path, guest: &Path, mode: &str| {
        let mut spec = host.as_os_str().to_owned();
        spec.push(":");
        spec.push(guest.as_os_str());
        spec.push(":");
        spec.push(mode);
        args.push("--volume".into());
        args.push(spec);
    };
    for (bind, writable) in mounts.iter() {
        volume(&bind.host, &bind.guest, if writable { "rw" } else { "ro" });
    }
    args.push(image.into());
    args.extend(guest_command(request));
    args
}

/// Writes `bundle/config.json` and `bundle/rootfs` for runc: a root
/// filesystem of mount points only (a worker in a user namespace could
/// not create them).
#[cfg(target_os = "linux")]
fn write_oci_bundle(
    bundle: &Path,
    mounts: &Mounts,
    request: &Request,
    worker: Option<KernelIds>,
) -> std::io::Result<()> {
    use idmapped_binds::create_dirs_with_mode;
    use std::os::unix::fs::PermissionsExt as _;
    // Modes set, not left to the umask (a root host's may be 077): the
    // runtime's init, already the worker's uid under a root host, must
    // traverse every directory.
    const TRAVERSABLE: u32 = 0o755;
    let rootfs = bundle.join("rootfs");
    create_dirs_with_mode(&rootfs, TRAVERSABLE)?;
    let config = oci_config(&rootfs, mounts, request, worker)?;
    for mount in config["mounts"].as_array().into_iter().flatten() {
        let (Some(destination), Some(source)) =
            (mount["destination"].as_str(), mount["source"].as_str())
        else {
            continue;
        };
        let point = rootfs.join(destination.trim_start_matches('/'));
        // A bind of a file needs a file; proc, tmpfs and directories a directory.
        let file = mount["type"] == "bind" && !Path::new(source).is_dir();
        if file {
            if let Some(parent) = point.parent() {
                create_dirs_with_mode(parent, TRAVERSABLE)?;
            }
            std::fs::File::create(&point)?;
            std::fs::set_permissions(&point, std::fs::Permissions::from_mode(0o644))?;
        } else {
            create_dirs_with_mode(&point, TRAVERSABLE)?;
        }
    }
    std::fs::write(
        bundle.join("config.json"),
        serde_json::to_vec_pretty(&config)?,
    )
}

/// The OCI runtime configuration of one worker. A root host's worker
/// (`worker` set) is root in a user namespace mapped to those ids alone.
#[cfg(target_os = "linux")]
pub fn oci_config(
    rootfs: &Path,
    mounts: &Mounts,
    request: &Request,
    worker: Option<KernelIds>,
) -> std::io::Result<serde_json::Value> {
    let bind = |source: &Path, destination: &Path, writable: bool| {
        json!({
            "destination": destination,
            "type": "bind",
            "source": source,
            "options": ["rbind", if writable { "rw" } else { "ro" }, "nosuid", "nodev"],
        })
    };
    let mut oci_mounts = vec![
        json!({"destination": "/proc", "type": "proc", "source": "proc"}),
        json!({"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
               "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]}),
    ];
    for dir in [
        "/usr", "/lib", "/lib64", "/lib32", "/libx32", "/bin", "/sbin",
    ] {
        let dir = Path::new(dir);
        match dir.symlink_metadata() {
            Ok(meta) if meta.file_type().is_symlink() => {
                // `/lib -> usr/lib` on merged-/usr systems: the same link in the rootfs.
                let link = std::fs::read_link(dir)?;
                let target = rootfs.join(dir.strip_prefix("/").unwrap_or(dir));
                match std::os::unix::fs::symlink(link, target) {
                    Err(err) if err.kind() != std::io::ErrorKind::AlreadyExists => {
                        return Err(err);
                    }
                    _ => {}
                }
            }
            Ok(meta) if meta.is_dir() => oci_mounts.push(bind(dir, dir, false)),
            _ => {}
        }
    }
    for (entry, writable) in mounts.iter() {
        oci_mounts.push(bind(&entry.host, &entry.guest, writable));
    }
    let args: Vec<String> = guest_command(request)
        .map(|arg| arg.to_string_lossy().into_owned())
        .collect();
    let mut namespaces = vec![
        json!({"type": "pid"}),
        json!({"type": "network"}),
        json!({"type": "ipc"}),
        json!({"type": "uts"}),
        json!({"type": "mount"}),
    ];
    let (user, id_mappings) = match worker {
        Some(ids) => {
            namespaces.push(json!({"type": "user"}));
            let one = |host: u32| json!([{"containerID": 0, "hostID": host, "size": 1}]);
            (
                json!({"uid": 0, "gid": 0}),
                Some((one(ids.uid), one(ids.gid))),
            )
        }
        None => {
            // SAFETY: plain queries.
            let (uid, gid) = unsafe { (libc::geteuid(), libc::getegid()) };
            (json!({"uid": uid, "gid": gid}), None)
        }
    };
    let mut linux = json!({
        "namespaces": namespaces,
        "resources": {
            "memory": {"limit": request.memory_limit_bytes, "swap": request.memory_limit_bytes},
            "pids": {"limit": request.pids_limit}
        },
        "seccomp": seccomp_profile(),
        "maskedPaths": ["/proc/kcore", "/proc/keys", "/proc/timer_list", "/proc/sched_debug", "/sys/firmware"],
        "readonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]
    });
    if let Some((uids, gids)) = id_mappings {
        linux["uidMappings"] = uids;
        linux["gidMappings"] = gids;
    }
    Ok(json!({
        "ociVersion": "1.0.2",
        "process": {
            "terminal": false,
            "user": user,
            "args": args,
            "env": [],
            "cwd": "/",
            "capabilities": {"bounding": [], "effective": [], "permitted": [], "inheritable": [], "ambient": []},
            "rlimits": [{"type": "RLIMIT_CORE", "hard": 0, "soft": 0}],
            "noNewPrivileges": true
        },
        "root": {"path": rootfs, "readonly": true},
        "hostname": "silt-worker",
        "mounts": oci_mounts,
        "linux": linux
    }))
}

/// runc's seccomp section: the native driver's denylist, and `clone3`
/// refused with `ENOSYS` (its flags cannot be filtered; callers fall back
/// to `clone`, which is).
#[cfg(target_os = "linux")]
fn seccomp_profile() -> serde_json::Value {
    json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [
            {
                "names": super::seccomp_filter::DENIED.iter().map(|(name, _)| *name).collect::<Vec<_>>(),
                "action": "SCMP_ACT_ERRNO",
                "errnoRet": libc::EPERM
            },
            {"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": libc::ENOSYS}
        ]
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Bind;

    fn request(dir: &Path) -> Request {
        Request {
            name: "worker-1-0".into(),
            read_only: vec![Bind {
                host: dir.join("x.bundle.json"),
                guest: "/bundle/bundle.json".into(),
            }],
            writable: vec![Bind {
                host: dir.join("cache"),
                guest: "/cache".into(),
            }],
            memory_limit_bytes: 512 << 20,
            pids_limit: 64,
            root_dir: dir.join("sandbox-root"),
            args: vec!["worker".into()],
        }
    }

    /// A fake CLI that records its arguments, one per line, and exits.
    fn fake_cli(dir: &Path, name: &str) -> PathBuf {
        use std::os::unix::fs::PermissionsExt as _;
        let path = dir.join(name);
        let record = dir.join(format!("{name}.args"));
        std::fs::write(
            &path,
            format!(
                "#!/bin/sh\nfor a in \"$@\"; do echo \"$a\"; done > '{}'\n",
                record.display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path
    }

    /// Runs the fake `runtime` as a worker would be; returns its arguments
    /// and the runc guard (dropping it deletes the OCI bundle).
    fn run_fake(runtime: &str, dir: &Path) -> (Vec<String>, Option<ContainerGuard>) {
        let config = ContainerConfig {
            runtime: dir.join(runtime).display().to_string(),
            image: "debian:bookworm-slim".into(),
        };
        let launch = prepare(&config, Path::new("/opt/silt"), &request(dir), None).unwrap();
        let Launch {
            mut command,
            container,
            ..
        } = launch;
        command.stdin(Stdio::null()).stdout(Stdio::null());
        let status = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(async { command.status().await })
            .unwrap();
        assert!(status.success());
        let args = std::fs::read_to_string(dir.join(format!("{runtime}.args")))
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect();
        (args, container)
    }

    fn has_pair(args: &[String], flag: &str, value: &str) -> bool {
        args.windows(2).any(|w| w[0] == flag && w[1] == value)
    }

    #[test]
    fn docker_gets_no_network_read_only_limits_and_read_only_bundle() {
        let dir = tempfile::tempdir().unwrap();
        fake_cli(dir.path(), "docker");
        let (args, _) = run_fake("docker", dir.path());
        assert_eq!(&args[..3], ["run", "--rm", "-i"]);
        assert!(has_pair(&args, "--network", "none"), "{args:?}");
        assert!(args.contains(&"--read-only".to_owned()));
        assert!(has_pair(&args, "--cap-drop", "ALL"));
        assert!(has_pair(&args, "--security-opt", "no-new-privileges"));
        assert!(has_pair(&args, "--memory", &format!("{}b", 512u64 << 20)));
        assert!(has_pair(&args, "--pids-limit", "64"));
        let bundle = format!(
            "{}:/bundle/bundle.json:ro",
            dir.path().join("x.bundle.json").display()
        );
        assert!(has_pair(&args, "--volume", &bundle), "{args:?}");
        let cache = format!("{}:/cache:rw", dir.path().join("cache").display());
        assert!(has_pair(&args, "--volume", &cache));
        assert!(has_pair(&args, "--volume", "/opt/silt:/silt:ro"));
        assert_eq!(
            &args[args.len() - 4..],
            ["debian:bookworm-slim", "/silt", CONTAINED_ARG, "worker"]
        );
        assert!(
            !args.iter().any(|a| a.starts_with("nofile")),
            "docker needs no ulimit workaround"
        );
    }

    #[test]
    fn podman_also_gets_the_ulimits_it_cannot_raise() {
        let dir = tempfile::tempdir().unwrap();
        fake_cli(dir.path(), "podman");
        let (args, _) = run_fake("podman", dir.path());
        assert!(has_pair(&args, "--ulimit", "nofile=1024:1024"), "{args:?}");
        assert!(has_pair(&args, "--ulimit", "nproc=1024:1024"));
        assert!(has_pair(&args, "--network", "none"));
    }

    #[test]
    fn runc_gets_a_bundle_with_no_network_and_limits() {
        let dir = tempfile::tempdir().unwrap();
        fake_cli(dir.path(), "runc");
        let (args, guard) = run_fake("runc", dir.path());
        assert_eq!(args[0], "run");
        assert_eq!(args[1], "--bundle");
        let config: serde_json::Value = serde_json::from_slice(
            &std::fs::read(Path::new(&args[2]).join("config.json")).unwrap(),
        )
        .unwrap();
        let namespaces: Vec<&str> = config["linux"]["namespaces"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["type"].as_str().unwrap())
            .collect();
        assert!(namespaces.contains(&"network"), "{namespaces:?}");
        assert_eq!(config["root"]["readonly"], true);
        assert_eq!(config["process"]["noNewPrivileges"], true);
        assert_eq!(config["linux"]["resources"]["pids"]["limit"], 64);
        let denied = &config["linux"]["seccomp"]["syscalls"][0]["names"];
        assert!(
            denied.as_array().unwrap().contains(&json!("ptrace")),
            "{denied}"
        );
        let mounts = config["mounts"].as_array().unwrap();
        let bundle = mounts
            .iter()
            .find(|m| m["destination"] == "/bundle/bundle.json")
            .unwrap();
        assert!(bundle["options"].as_array().unwrap().contains(&json!("ro")));
        let cache = mounts
            .iter()
            .find(|m| m["destination"] == "/cache")
            .unwrap();
        assert!(cache["options"].as_array().unwrap().contains(&json!("rw")));
        drop(guard);
        assert!(
            !Path::new(&args[2]).exists(),
            "the bundle is removed with the guard"
        );
    }

    const WORKER: KernelIds = KernelIds {
        uid: 2_080_000_000,
        gid: 2_080_000_001,
    };

    #[test]
    fn a_root_hosts_podman_worker_is_root_only_in_a_namespace_mapped_to_its_uid() {
        let dir = tempfile::tempdir().unwrap();
        let request = request(dir.path());
        let mounts = Mounts::of(Path::new("/opt/silt"), &request);
        let args: Vec<String> =
            cli_args(Flavor::Podman, "img", "c", &mounts, &request, Some(WORKER))
                .into_iter()
                .map(|arg| arg.into_string().unwrap())
                .collect();
        assert!(has_pair(&args, "--uidmap", "0:2080000000:1"), "{args:?}");
        assert!(has_pair(&args, "--gidmap", "0:2080000001:1"), "{args:?}");
        assert!(has_pair(&args, "--user", "0:0"), "{args:?}");
    }

    #[test]
    fn a_root_hosts_runc_worker_is_root_only_in_a_namespace_mapped_to_its_uid() {
        let dir = tempfile::tempdir().unwrap();
        let request = request(dir.path());
        let mounts = Mounts::of(Path::new("/opt/silt"), &request);
        let rootfs = dir.path().join("rootfs");
        std::fs::create_dir(&rootfs).unwrap();
        let config = oci_config(&rootfs, &mounts, &request, Some(WORKER)).unwrap();
        let namespaces = config["linux"]["namespaces"].as_array().unwrap();
        assert!(
            namespaces.contains(&json!({"type": "user"})),
            "{namespaces:?}"
        );
        assert_eq!(
            config["linux"]["uidMappings"],
            json!([{"containerID": 0, "hostID": 2_080_000_000u32, "size": 1}])
        );
        assert_eq!(
            config["linux"]["gidMappings"],
            json!([{"containerID": 0, "hostID": 2_080_000_001u32, "size": 1}])
        );
        assert_eq!(config["process"]["user"], json!({"uid": 0, "gid": 0}));
        // An ordinary host's worker keeps its ids and no user namespace.
        let config = oci_config(&rootfs, &mounts, &request, None).unwrap();
        assert!(config["linux"]["uidMappings"].is_null());
    }

    #[test]
    fn a_root_hosts_docker_worker_runs_as_its_uid_with_no_user_namespace() {
        let dir = tempfile::tempdir().unwrap();
        let request = request(dir.path());
        let mounts = Mounts::of(Path::new("/opt/silt"), &request);
        let args: Vec<String> =
            cli_args(Flavor::Docker, "img", "c", &mounts, &request, Some(WORKER))
                .into_iter()
                .map(|arg| arg.into_string().unwrap())
                .collect();
        assert!(
            has_pair(&args, "--user", "2080000000:2080000001"),
            "{args:?}"
        );
        assert!(!args.iter().any(|arg| arg == "--uidmap"), "{args:?}");
    }

    #[test]
    fn an_unknown_runtime_name_is_refused_with_a_reason() {
        let dir = tempfile::tempdir().unwrap();
        fake_cli(dir.path(), "youki-ish");
        let config = ContainerConfig {
            runtime: dir.path().join("youki-ish").display().to_string(),
            image: String::new(),
        };
        let Err(err) = prepare(&config, Path::new("/opt/silt"), &request(dir.path()), None) else {
            panic!("an unknown runtime was accepted");
        };
        assert!(err.contains("runc, crun, docker or podman"), "{err}");
    }
}
