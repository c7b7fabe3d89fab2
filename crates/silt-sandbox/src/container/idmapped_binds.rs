//! The binds of a root host's container worker, idmapped to its
//! unprivileged uid.
//!
//! A runtime run by root would run the worker as kernel uid 0. Instead the
//! worker gets a user namespace of the runtime's in which its uid 0 is
//! `[sandbox] worker_uid` outside, and every bind is the host's path
//! idmapped to that uid ([`crate::idmap`]): the host's files appear as the
//! worker's own, and what the worker creates lands owned by the host.
//! Nothing on disk changes owner.
//!
//! runc 1.1 (and podman over it) cannot idmap a mount itself, so the host
//! makes the idmapped trees and the runtime's CLI attaches them, between
//! `fork` and `exec`, in a mount namespace of its own, at mount points
//! under the container's directory. The runtime binds those (a bind of an
//! idmapped mount keeps its idmapping; runc opens bind sources from the
//! host's user namespace). The namespace ends with the CLI and the
//! container: nothing is ever mounted in the host's namespace, so a killed
//! host leaves no mount behind.
//!
//! docker is the exception: its daemon, not the CLI, makes the
//! container's mounts, in the host's mount namespace. For docker the host
//! attaches the trees there itself ([`IdmappedBinds::attach_here`]) and
//! detaches them when the worker is gone; what a killed host leaves
//! attached is detached by the next host's sweep before anything is
//! removed ([`remove_container_dir`]).
//!
//! The container's directory lives under [`super::RUN_DIR`], not the cache: the
//! runtime's init, already the worker's uid, must traverse the path to the
//! root filesystem, and a cache beneath `/root` (mode 0700) is closed to
//! it.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd as _, OwnedFd};
use std::os::unix::ffi::OsStrExt as _;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::idmap;
use crate::native_init::KernelIds;

/// Creates `dir` and its parents with mode 0711: traversable by the
/// worker's uid, listable by root only.
pub fn create_traversable(dir: &Path) -> io::Result<()> {
    create_dirs_with_mode(dir, 0o711)
}

/// Creates `dir` and whichever of its parents are missing with `mode`,
/// whatever the process's umask (which `DirBuilder::mode` obeys); the
/// directories that exist are left as they are.
pub fn create_dirs_with_mode(dir: &Path, mode: u32) -> io::Result<()> {
    let mut path = PathBuf::new();
    for component in dir.components() {
        path.push(component);
        match std::fs::create_dir(&path) {
            Ok(()) => std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode))?,
            Err(err) if err.kind() == io::ErrorKind::AlreadyExists => {}
            Err(err) => return Err(err),
        }
    }
    Ok(())
}

/// The user namespace of the idmapping `host` → `worker`, made once per
/// process. Made under a lock: [`idmap::idmapping`] forks a child that
/// waits for the end of a pipe, and two made at once in this
/// multi-threaded process would each hold the other's pipe open: both
/// would wait for ever.
fn shared_idmapping(host: KernelIds, worker: KernelIds) -> io::Result<Arc<OwnedFd>> {
    type Known = Vec<((KernelIds, KernelIds), Arc<OwnedFd>)>;
    static KNOWN: Mutex<Known> = Mutex::new(Vec::new());
    let mut known = KNOWN
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some((_, namespace)) = known.iter().find(|(ids, _)| *ids == (host, worker)) {
        return Ok(Arc::clone(namespace));
    }
    let namespace = Arc::new(idmap::idmapping(host, worker)?);
    known.push(((host, worker), Arc::clone(&namespace)));
    Ok(namespace)
}

/// Idmapped trees and where the runtime's CLI attaches them.
pub struct IdmappedBinds {
    trees: Vec<(OwnedFd, CString)>,
}

impl IdmappedBinds {
    /// Idmaps each of `sources` (a host path, and whether the worker may
    /// write it) from the host's ids to `worker`'s, and creates its mount
    /// point `dir/<n>` (a file or a directory, as the tree is). Returns the
    /// mount points in the order of `sources`.
    ///
    /// # Errors
    /// When the kernel or a source's filesystem cannot idmap, or a mount
    /// point cannot be made.
    pub fn new(
        dir: &Path,
        sources: &[(&Path, bool)],
        worker: KernelIds,
    ) -> io::Result<(Self, Vec<PathBuf>)> {
        // SAFETY: plain queries.
        let host = unsafe {
            KernelIds {
                uid: libc::geteuid(),
                gid: libc::getegid(),
            }
        };
        let idmapping = shared_idmapping(host, worker)?;
        create_traversable(dir)?;
        let mut trees = Vec::with_capacity(sources.len());
        let mut points = Vec::with_capacity(sources.len());
        for (n, (source, writable)) in sources.iter().enumerate() {
            let tree = idmap::detach(source, *writable, &idmapping).map_err(|err| {
                io::Error::new(err.kind(), format!("idmapping {}: {err}", source.display()))
            })?;
            let point = dir.join(n.to_string());
            if idmap::is_directory(&tree) {
                std::fs::create_dir(&point)?;
                std::fs::set_permissions(&point, std::fs::Permissions::from_mode(0o711))?;
            } else {
                std::fs::File::create(&point)?;
            }
            let point_c = CString::new(point.as_os_str().as_bytes())
                .map_err(|_| io::Error::other("a path contains NUL"))?;
            trees.push((tree, point_c));
            points.push(point);
        }
        Ok((Self { trees }, points))
    }

    /// Attaches the trees in this process's mount namespace (docker's
    /// daemon makes its mounts in the host's); they are detached when the
    /// returned value is dropped.
    ///
    /// # Errors
    /// When a tree cannot be attached (those attached are detached again).
    pub fn attach_here(self) -> io::Result<AttachedBinds> {
        let mut attached = AttachedBinds { points: Vec::new() };
        for (tree, point) in &self.trees {
            idmap::attach_at(tree.as_raw_fd(), point)?;
            attached.points.push(point.clone());
        }
        Ok(attached)
    }

    /// Has `command`'s child make a mount namespace of its own and attach
    /// the trees there before it execs the runtime. The trees' descriptors
    /// close with `command`.
    pub fn attach_in_child(self, command: &mut tokio::process::Command) {
        let trees = Arc::new(self.trees);
        // SAFETY: between fork and exec the child makes only system calls
        // on descriptors and C strings made before the fork; nothing is
        // allocated.
        unsafe {
            command.pre_exec(move || {
                if libc::unshare(libc::CLONE_NEWNS) != 0 {
                    return Err(io::Error::last_os_error());
                }
                // Nothing attached here may propagate to the host.
                let slash = c"/";
                if libc::mount(
                    std::ptr::null(),
                    slash.as_ptr(),
                    std::ptr::null(),
                    libc::MS_REC | libc::MS_PRIVATE,
                    std::ptr::null(),
                ) != 0
                {
                    return Err(io::Error::last_os_error());
                }
                for (tree, point) in trees.iter() {
                    idmap::attach_at(tree.as_raw_fd(), point)?;
                }
                Ok(())
            });
        }
    }
}

/// Idmapped trees attached in the host's mount namespace (for docker);
/// detached on drop.
#[derive(Debug)]
pub struct AttachedBinds {
    points: Vec<CString>,
}

impl Drop for AttachedBinds {
    fn drop(&mut self) {
        for point in &self.points {
            detach_mount(point);
        }
    }
}

/// Lazily detaches the mount at `point`, never following a link there;
/// nothing mounted there is fine.
fn detach_mount(point: &std::ffi::CStr) {
    // SAFETY: a live NUL-terminated path.
    unsafe { libc::umount2(point.as_ptr(), libc::MNT_DETACH | libc::UMOUNT_NOFOLLOW) };
}

/// Removes a container's directory (runc's bundle, the binds' mount
/// points), never through a mount: each bind's mount point is detached
/// (a docker worker's binds whose host was killed are still attached in
/// the host's namespace) and removed on its own, never recursively; the
/// rest goes only if nothing at all is mounted beneath the directory any
/// more. A recursive removal through a bind would delete what it shows:
/// the extension's own directory, or a host directory. Returns whether the
/// directory is gone.
pub fn remove_container_dir(dir: &Path) -> bool {
    let binds = dir.join("binds");
    if let Ok(points) = std::fs::read_dir(&binds) {
        for point in points.flatten() {
            let path = point.path();
            if let Ok(point) = CString::new(path.as_os_str().as_bytes()) {
                detach_mount(&point);
            }
            // An empty file or directory once detached; one still mounted
            // on (EBUSY) or not empty stays.
            if std::fs::remove_file(&path).is_err() {
                let _ = std::fs::remove_dir(&path);
            }
        }
        let _ = std::fs::remove_dir(&binds);
    }
    if let Some(mount) = mounted_beneath(dir) {
        tracing::warn!(
            "left {} in place: {} is still mounted beneath it",
            dir.display(),
            mount.display()
        );
        return false;
    }
    // The bundle: a rootfs of mount points (mounted on only in the
    // runtime's namespaces), `config.json`; `binds` if it is still there
    // is not emptied.
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            if entry.file_name() == "binds" {
                continue;
            }
            let path = entry.path();
            match entry.file_type() {
                Ok(kind) if kind.is_dir() => {
                    let _ = std::fs::remove_dir_all(&path);
                }
                _ => {
                    let _ = std::fs::remove_file(&path);
                }
            }
        }
    }
    std::fs::remove_dir(dir).is_ok() || !dir.exists()
}

/// Makes `dir` a mount of its own, private: the binds docker's workers
/// attach beneath it in the host's namespace are not copied into the
/// namespaces that share the host's `/run` (on systemd machines `/run` is
/// a shared mount). Done once per process; a `dir` that already is a
/// mount point is made private as it is.
pub fn make_private(dir: &Path) -> io::Result<()> {
    static DONE: Mutex<bool> = Mutex::new(false);
    let mut done = DONE.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if *done {
        return Ok(());
    }
    std::fs::create_dir_all(dir)?;
    let dir_c = CString::new(dir.as_os_str().as_bytes())
        .map_err(|_| io::Error::other("a path contains NUL"))?;
    let is_mount_point = mount_points()?.iter().any(|point| point == dir);
    if !is_mount_point {
        mount(Some(&dir_c), &dir_c, libc::MS_BIND)?;
    }
    mount(None, &dir_c, libc::MS_PRIVATE)?;
    *done = true;
    Ok(())
}

/// `mount(2)` with no file system type or data: a bind, or a change of
/// propagation.
fn mount(
    source: Option<&std::ffi::CStr>,
    target: &std::ffi::CStr,
    flags: libc::c_ulong,
) -> io::Result<()> {
    let source = source.map_or(std::ptr::null(), std::ffi::CStr::as_ptr);
    // SAFETY: live NUL-terminated paths (or null, which mount(2) takes).
    let done = unsafe {
        libc::mount(
            source,
            target.as_ptr(),
            std::ptr::null(),
            flags,
            std::ptr::null(),
        )
    };
    if done != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Every mount point in this process's mount namespace.
fn mount_points() -> io::Result<Vec<PathBuf>> {
    Ok(std::fs::read_to_string("/proc/self/mountinfo")?
        .lines()
        .filter_map(|line| line.split(' ').nth(4))
        .map(|point| PathBuf::from(crate::cgroup::unescape(point)))
        .collect())
}

/// A mount point at or beneath `dir` in this process's mount namespace
/// (`dir` itself when the mount table cannot be read: nothing is known).
fn mounted_beneath(dir: &Path) -> Option<PathBuf> {
    let Ok(points) = mount_points() else {
        return Some(dir.to_path_buf());
    };
    points.into_iter().find(|point| point.starts_with(dir))
}
