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
