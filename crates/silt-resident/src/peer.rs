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
        let peer = rustix::net::sockopt::socket_peercred(stream).map_err(std::io::Error::from)?;
        let uid = peer.uid.as_raw();
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
        let Ok(peer) = rustix::net::sockopt::socket_peercred(stream) else {
            return false;
        };
        if peer.gid != rustix::process::getegid() {
            return false;
        }
        let theirs = format!("/proc/{}", peer.pid.as_raw_nonzero());
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
