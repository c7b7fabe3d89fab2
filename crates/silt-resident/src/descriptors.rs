//! Bytes with descriptors attached (`SCM_RIGHTS`) over a Unix stream.
//!
//! The descriptors ride on the first byte sent; the receiver takes them
//! with the first read and keeps reading bytes plainly. Received
//! descriptors are close-on-exec, and any that come with a message the
//! receiver does not want are closed (they are `OwnedFd`s), never leaked.

use std::io::{IoSlice, IoSliceMut, Read as _};
use std::mem::MaybeUninit;
use std::os::fd::{BorrowedFd, OwnedFd};
use std::os::unix::net::UnixStream;

use rustix::net::{
    RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, ReturnFlags, SendAncillaryBuffer,
    SendAncillaryMessage, SendFlags,
};

use crate::error::WireError;

/// How many descriptors a request carries.
pub(crate) const COUNT: usize = 4;

/// Sends `bytes`, with `fds` attached to the first of them.
pub(crate) fn send(
    stream: &UnixStream,
    bytes: &[u8],
    fds: &[BorrowedFd<'_>; COUNT],
) -> Result<(), WireError> {
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(COUNT))];
    let mut control = SendAncillaryBuffer::new(&mut space);
    let pushed = control.push(SendAncillaryMessage::ScmRights(fds));
    assert!(pushed, "the buffer is sized for COUNT descriptors");
    let mut sent = loop {
        match rustix::net::sendmsg(
            stream,
            &[IoSlice::new(bytes)],
            &mut control,
            SendFlags::NOSIGNAL,
        ) {
            Ok(sent) => break sent,
            Err(rustix::io::Errno::INTR) => {}
            Err(err) => return Err(std::io::Error::from(err).into()),
        }
    };
    // A stream socket may take part of the bytes; the descriptors went with
    // the first, so the rest is sent plainly (without SIGPIPE, as above: a
    // resident gone mid-request is an error, not a signal).
    while sent < bytes.len() {
        match rustix::net::send(stream, &bytes[sent..], SendFlags::NOSIGNAL) {
            Ok(0) => return Err(std::io::Error::from(std::io::ErrorKind::WriteZero).into()),
            Ok(more) => sent += more,
            Err(rustix::io::Errno::INTR) => {}
            Err(err) => return Err(std::io::Error::from(err).into()),
        }
    }
    Ok(())
}

/// Reads exactly `buf.len()` bytes and the descriptors attached to them:
/// exactly [`COUNT`], or an error (the ones that came are closed).
pub(crate) fn receive(stream: &UnixStream, buf: &mut [u8]) -> Result<Vec<OwnedFd>, WireError> {
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(COUNT))];
    let mut control = RecvAncillaryBuffer::new(&mut space);
    let message = loop {
        match rustix::net::recvmsg(
            stream,
            &mut [IoSliceMut::new(buf)],
            &mut control,
            RecvFlags::CMSG_CLOEXEC,
        ) {
            Ok(message) => break message,
            Err(rustix::io::Errno::INTR) => {}
            Err(err) => return Err(std::io::Error::from(err).into()),
        }
    };
    let mut fds = Vec::new();
    for message in control.drain() {
        if let RecvAncillaryMessage::ScmRights(received) = message {
            fds.extend(received);
        }
    }
    if message.bytes == 0 {
        return Err(std::io::Error::from(std::io::ErrorKind::UnexpectedEof).into());
    }
    // More descriptors than the buffer holds are closed by the kernel and
    // flagged: the request is refused rather than run with some missing.
    if message.flags.contains(ReturnFlags::CTRUNC) || fds.len() != COUNT {
        return Err(WireError::Descriptors {
            received: fds.len(),
        });
    }
    (&*stream).read_exact(&mut buf[message.bytes..])?;
    Ok(fds)
}
