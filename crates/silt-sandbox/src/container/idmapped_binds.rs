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
use std::sync::Arc;

use crate::idmap;
use crate::native_init::KernelIds;

/// Creates `dir` and its parents with mode 0711: traversable by the
/// worker's uid, listable by root only.
pub fn create_traversable(dir: &Path) -> io::Result<()> {
    let mut path = PathBuf::new();
    for component in dir.components() {
        path.push(component);
        match std::fs::create_dir(&path) {
            Ok(()) => std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o711))?,
            Err(err) if err.kind() == io::ErrorKind::AlreadyExists => {}
            Err(err) => return Err(err),
        }
    }
    Ok(())
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
        let idmapping = idmap::idmapping(host, worker)?;
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
