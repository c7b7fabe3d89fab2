//! Who is at the other end of the socket, by the kernel's word.

use std::os::unix::net::UnixStream;

use crate::error::WireError;

/// This process's effective uid.
pub fn own_uid() -> u32 {
    rustix::process::geteuid().as_raw()
}

/// Checks that the peer runs as this process's user (`SO_PEERCRED`: the
/// credentials it had when it connected or listened). A request carries the
/// environment, credentials included, and descriptors: neither side hands
/// anything to another user.
///
/// # Errors
/// [`WireError::OtherUser`], or the socket's error; on systems without
/// `SO_PEERCRED`, always (the client then runs the command itself).
pub fn check_same_user(stream: &UnixStream) -> Result<(), WireError> {
    #[cfg(target_os = "linux")]
    {
        let uid = peer_credentials(stream)?.uid;
        if uid == own_uid() {
            Ok(())
        } else {
            Err(WireError::OtherUser(uid))
        }
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = stream;
        Err(WireError::Unsafe(
            "peer credentials are checked on Linux only".to_owned(),
        ))
    }
}

/// The peer's `SO_PEERCRED`, as the kernel gives it (its pid may be 0: a
/// peer in a pid namespace this process cannot see).
#[cfg(target_os = "linux")]
fn peer_credentials(stream: &UnixStream) -> std::io::Result<libc::ucred> {
    use std::os::fd::AsRawFd as _;
    let mut credentials = libc::ucred {
        pid: 0,
        uid: u32::MAX,
        gid: u32::MAX,
    };
    let mut len =
        libc::socklen_t::try_from(std::mem::size_of::<libc::ucred>()).expect("a ucred's size fits");
    // SAFETY: getsockopt writes at most `len` bytes into `credentials`, a
    // plain struct for which any bytes are a value.
    let result = unsafe {
        libc::getsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            std::ptr::from_mut(&mut credentials).cast(),
            &mut len,
        )
    };
    if result != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(credentials)
}

/// True when the peer sees the files this process sees, under the same
/// group: the same mount and user namespaces, the same root directory
/// (`/proc/<pid>/ns/*`, `/proc/<pid>/root`) and the same effective gid
/// (`SO_PEERCRED`). A client of this user in a container, a chroot or a
/// private `/tmp` names paths that mean something else here, so the
/// resident leaves its command to it. False when any of it cannot be read.
pub fn same_view(stream: &UnixStream) -> bool {
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::fs::MetadataExt as _;
        let Ok(peer) = peer_credentials(stream) else {
            return false;
        };
        // pid 0: the peer is in a pid namespace this process cannot see.
        if peer.pid <= 0 || peer.gid != rustix::process::getegid().as_raw() {
            return false;
        }
        let theirs = format!("/proc/{}", peer.pid);
        let same_link = |name: &str| {
            let own = std::fs::read_link(format!("/proc/self/{name}"));
            let peer = std::fs::read_link(format!("{theirs}/{name}"));
            matches!((own, peer), (Ok(own), Ok(peer)) if own == peer)
        };
        let root = |base: &str| {
            std::fs::metadata(format!("{base}/root")).map(|meta| (meta.dev(), meta.ino()))
        };
        let same_root =
            matches!((root("/proc/self"), root(&theirs)), (Ok(own), Ok(peer)) if own == peer);
        same_link("ns/mnt") && same_link("ns/user") && same_root
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = stream;
        false
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_peer_in_this_process_sees_what_it_sees() {
        let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
        assert!(super::same_view(&a));
    }
}
