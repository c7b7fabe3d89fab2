//! The ids of a root host's worker, native or in a container. Its binds:
//! detached copies of the host's paths (`open_tree`), idmapped
//! (`mount_setattr` with `MOUNT_ATTR_IDMAP`), so that the files the host
//! owns appear owned by the worker's kernel uid and the files the worker
//! creates land owned by the host. Nothing on disk changes owner or mode,
//! and the worker never runs as kernel uid 0.
//!
//! They are made while still root (the native init before it drops to the
//! worker's uid; the host for a container runtime's CLI): an idmapped mount needs `CAP_SYS_ADMIN` over the
//! filesystem, which the worker must never hold. Paths are resolved here,
//! as root, so a cache directory beneath `/root` (mode 0700) binds as well
//! as any other.
//!
//! And its user namespace's maps ([`OutsideMapper`]): root creates the
//! namespace (so no system setting against unprivileged user namespaces
//! can stop it), and a helper left outside, still root, maps `nobody` in
//! it to the worker's kernel ids: a process may map another uid than its
//! own only from the parent namespace.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd as _, FromRawFd as _, OwnedFd};
use std::os::unix::ffi::OsStrExt as _;
use std::path::Path;

use crate::native_init::KernelIds;

/// A user namespace that maps `host`'s ids to `worker`'s, one id each: the
/// mapping an idmapped mount applies (a file of `host.uid` is seen as
/// `worker.uid`, and back). Made by a short-lived child that unshares a
/// user namespace and waits while this (privileged) process writes its
/// maps and opens it.
pub fn idmapping(host: KernelIds, worker: KernelIds) -> io::Result<OwnedFd> {
    let (ready_read, ready_write) = pipe()?;
    let (done_read, done_write) = pipe()?;
    // SAFETY: the child only makes async-signal-safe system calls on
    // descriptors it owns, then `_exit`s. It waits for the end of `done`:
    // the caller must not make two at once (the native init is
    // single-threaded; a host makes them under a lock, see
    // `container::idmapped_binds`), or each child would hold the other's
    // `done` open.
    let child = unsafe { libc::fork() };
    if child == -1 {
        return Err(io::Error::last_os_error());
    }
    if child == 0 {
        unsafe {
            // Only the parent may hold the write end of `done`: its close
            // is what releases this child.
            libc::close(done_write.as_raw_fd());
            let status = if libc::unshare(libc::CLONE_NEWUSER) == 0 {
                0
            } else {
                1
            };
            let byte = status as u8;
            libc::write(ready_write.as_raw_fd(), (&raw const byte).cast(), 1);
            let mut wait = 0u8;
            libc::read(done_read.as_raw_fd(), (&raw mut wait).cast(), 1);
            libc::_exit(0);
        }
    }
    // The child's end only: a child that died early reads as end of file.
    drop(ready_write);
    let result = (|| {
        let mut status = 1u8;
        // SAFETY: a one-byte read into a live byte.
        let read = unsafe { libc::read(ready_read.as_raw_fd(), (&raw mut status).cast(), 1) };
        if read != 1 || status != 0 {
            return Err(io::Error::other(
                "could not create the user namespace of the idmapping",
            ));
        }
        let proc = format!("/proc/{child}");
        std::fs::write(
            format!("{proc}/uid_map"),
            format!("{} {} 1\n", host.uid, worker.uid),
        )?;
        std::fs::write(
            format!("{proc}/gid_map"),
            format!("{} {} 1\n", host.gid, worker.gid),
        )?;
        let namespace = std::fs::File::open(format!("{proc}/ns/user"))?;
        Ok(OwnedFd::from(namespace))
    })();
    // Releases the child (its end of `done` closes) and reaps it; the
    // namespace lives on through the descriptor.
    drop(done_write);
    let mut status = 0;
    // SAFETY: waits for our own child.
    unsafe { libc::waitpid(child, &mut status, 0) };
    result
}

/// A detached, idmapped copy of the mount tree at `path` (and of the mounts
/// beneath it), read-only unless `writable`, never honouring set-user-ID
/// bits or device files. Attach it with [`attach`].
pub fn detach(path: &Path, writable: bool, idmapping: &OwnedFd) -> io::Result<OwnedFd> {
    let path_c = CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::other("a path contains NUL"))?;
    // SAFETY: a live NUL-terminated path; the descriptor returned is ours.
    let tree = unsafe {
        libc::syscall(
            libc::SYS_open_tree,
            libc::AT_FDCWD,
            path_c.as_ptr(),
            // A link in the last component is refused, not followed.
            libc::OPEN_TREE_CLONE
                | libc::OPEN_TREE_CLOEXEC
                | (libc::AT_RECURSIVE | libc::AT_SYMLINK_NOFOLLOW) as libc::c_uint,
        )
    };
    if tree == -1 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: open_tree returned a new descriptor that nothing else owns.
    let tree = unsafe { OwnedFd::from_raw_fd(tree as libc::c_int) };
    let mut attr_set = libc::MOUNT_ATTR_IDMAP | libc::MOUNT_ATTR_NOSUID | libc::MOUNT_ATTR_NODEV;
    if !writable {
        attr_set |= libc::MOUNT_ATTR_RDONLY;
    }
    let attr = libc::mount_attr {
        attr_set,
        attr_clr: 0,
        // A clone of a shared mount would stay in its peer group: host
        // mounts made later beneath the source would appear inside.
        propagation: libc::MS_PRIVATE,
        userns_fd: idmapping.as_raw_fd() as u64,
    };
    let empty = c"";
    // SAFETY: a live attribute struct of the size passed, on our descriptor.
    let set = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            tree.as_raw_fd(),
            empty.as_ptr(),
            libc::AT_EMPTY_PATH | libc::AT_RECURSIVE,
            &raw const attr,
            size_of::<libc::mount_attr>(),
        )
    };
    if set == -1 {
        let err = io::Error::last_os_error();
        return Err(match err.raw_os_error() {
            Some(libc::EINVAL | libc::ENOSYS | libc::EPERM) => io::Error::other(format!(
                "its filesystem cannot be idmapped here ({err}; idmapped mounts need Linux 5.12+ and a filesystem such as ext4, xfs, btrfs or tmpfs)"
            )),
            _ => err,
        });
    }
    Ok(tree)
}

/// Attaches a tree made by [`detach`] at `target` (an existing file or
/// directory).
pub fn attach(tree: &OwnedFd, target: &Path) -> io::Result<()> {
    let target = CString::new(target.as_os_str().as_bytes())
        .map_err(|_| io::Error::other("a path contains NUL"))?;
    attach_at(tree.as_raw_fd(), &target)
}

/// [`attach`] by raw descriptor and C path: one system call, nothing
/// allocated, so it may run between `fork` and `exec`.
pub fn attach_at(tree: std::os::fd::RawFd, target: &std::ffi::CStr) -> io::Result<()> {
    let empty = c"";
    // SAFETY: live NUL-terminated paths; the caller owns the descriptor.
    let moved = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            tree,
            empty.as_ptr(),
            libc::AT_FDCWD,
            target.as_ptr(),
            libc::MOVE_MOUNT_F_EMPTY_PATH,
        )
    };
    if moved == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Whether the tree behind `fd` is a directory (else a file): what was
/// detached, not what its path names now.
pub fn is_directory(fd: &OwnedFd) -> bool {
    // SAFETY: fstat of our own descriptor into a zeroed struct.
    let mut stat: libc::stat = unsafe { std::mem::zeroed() };
    let done = unsafe { libc::fstat(fd.as_raw_fd(), &mut stat) };
    done == 0 && stat.st_mode & libc::S_IFMT == libc::S_IFDIR
}

/// A helper, forked before this process creates its user namespace, that
/// writes the namespace's maps from outside once told to.
pub struct OutsideMapper {
    helper: libc::pid_t,
    go: OwnedFd,
    done: OwnedFd,
}

impl OutsideMapper {
    /// Forks the helper, which waits. `proc` is a descriptor of `/proc`
    /// (the helper may run after the new root hid it); `inside` is the id
    /// the process will have in its namespace, mapped to `worker`.
    pub fn start(proc: &std::fs::File, inside: u32, worker: KernelIds) -> io::Result<Self> {
        let pid = std::process::id();
        // Everything the helper needs is made before the fork.
        let maps = [
            (
                CString::new(format!("{pid}/uid_map")).expect("no NUL"),
                format!("{inside} {} 1\n", worker.uid),
            ),
            (
                CString::new(format!("{pid}/gid_map")).expect("no NUL"),
                format!("{inside} {} 1\n", worker.gid),
            ),
        ];
        let (go_read, go_write) = pipe()?;
        let (done_read, done_write) = pipe()?;
        // SAFETY: the init is single-threaded; the helper makes plain
        // system calls on descriptors and buffers it owns, then `_exit`s.
        let helper = unsafe { libc::fork() };
        if helper == -1 {
            return Err(io::Error::last_os_error());
        }
        if helper == 0 {
            unsafe {
                libc::close(go_write.as_raw_fd());
                libc::close(done_read.as_raw_fd());
                let mut go = 0u8;
                // End of file: the process gave up; write nothing.
                if libc::read(go_read.as_raw_fd(), (&raw mut go).cast(), 1) != 1 {
                    libc::_exit(0);
                }
                let mut status: i32 = 0;
                for (file, text) in &maps {
                    let fd = libc::openat(proc.as_raw_fd(), file.as_ptr(), libc::O_WRONLY);
                    if fd == -1
                        || libc::write(fd, text.as_ptr().cast(), text.len()) != text.len() as isize
                    {
                        status = *libc::__errno_location();
                        break;
                    }
                    libc::close(fd);
                }
                libc::write(
                    done_write.as_raw_fd(),
                    (&raw const status).cast(),
                    size_of::<i32>(),
                );
                libc::_exit(0);
            }
        }
        Ok(Self {
            helper,
            go: go_write,
            done: done_read,
        })
    }

    /// Has the helper write the maps of the namespace this process is in
    /// now, and waits for it.
    pub fn map(self) -> io::Result<()> {
        let go = 1u8;
        let mut status: i32 = -1;
        // SAFETY: one-byte and four-byte transfers on our own pipes.
        let read = unsafe {
            libc::write(self.go.as_raw_fd(), (&raw const go).cast(), 1);
            libc::read(
                self.done.as_raw_fd(),
                (&raw mut status).cast(),
                size_of::<i32>(),
            )
        };
        // SAFETY: waits for our own child.
        unsafe { libc::waitpid(self.helper, std::ptr::null_mut(), 0) };
        match (read, status) {
            (4, 0) => Ok(()),
            (4, errno) => Err(io::Error::from_raw_os_error(errno)),
            _ => Err(io::Error::other("the helper that writes the id maps died")),
        }
    }
}

fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: a two-element array, as pipe2 expects.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } == -1 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: pipe2 returned two new descriptors that nothing else owns.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}
