//! A command handed to the resident, and the exit code it answers.

use std::ffi::OsString;
use std::io::{Read as _, Write as _};
use std::os::fd::{BorrowedFd, OwnedFd};
use std::os::unix::net::UnixStream;

use crate::descriptors;
use crate::wire::{self, ANSWER_MAGIC, HEADER_LEN, WireError};

/// Everything a command reads from its process, as the resident receives it.
#[derive(Debug)]
pub struct Request {
    /// The command line, `silt` first.
    pub argv: Vec<OsString>,
    /// The client's whole environment: configuration and credentials come
    /// from it. Used for this command only.
    pub env: crate::Environment,
    /// The client's working directory, opened `O_PATH`.
    pub cwd: OwnedFd,
    /// The client's descriptors 0, 1 and 2.
    pub stdio: [OwnedFd; 3],
}

impl Request {
    /// Hands a command over `stream`.
    ///
    /// # Errors
    /// When the socket fails or argv and the environment exceed 4 MiB.
    pub fn send(
        stream: &UnixStream,
        argv: &[OsString],
        env: &[(OsString, OsString)],
        cwd: BorrowedFd<'_>,
        stdio: [BorrowedFd<'_>; 3],
    ) -> Result<(), WireError> {
        let payload = wire::encode(argv, env);
        let mut bytes = Vec::with_capacity(HEADER_LEN + payload.len());
        bytes.extend_from_slice(&wire::header(payload.len())?);
        bytes.extend_from_slice(&payload);
        let [stdin, stdout, stderr] = stdio;
        descriptors::send(stream, &bytes, &[cwd, stdin, stdout, stderr])
    }

    /// Receives one command from `stream`. The caller checks the peer
    /// ([`crate::peer::check_same_user`]) first.
    ///
    /// # Errors
    /// When the bytes or descriptors are not a request of this wire.
    pub fn receive(stream: &UnixStream) -> Result<Self, WireError> {
        let mut header = [0; HEADER_LEN];
        let fds = descriptors::receive(stream, &mut header)?;
        let len = wire::payload_len(&header)?;
        let mut payload = vec![0; len];
        (&*stream).read_exact(&mut payload)?;
        let (argv, env) = wire::decode(&payload)?;
        let [cwd, stdin, stdout, stderr]: [OwnedFd; descriptors::COUNT] =
            fds.try_into().expect("checked: exactly COUNT descriptors");
        Ok(Self {
            argv,
            env,
            cwd,
            stdio: [stdin, stdout, stderr],
        })
    }
}

/// Answers a command's exit code.
///
/// # Errors
/// When the socket fails (the client went away).
pub fn answer(stream: &UnixStream, code: u8) -> Result<(), WireError> {
    let mut bytes = [0; 9];
    bytes[..8].copy_from_slice(&ANSWER_MAGIC);
    bytes[8] = code;
    (&*stream).write_all(&bytes)?;
    Ok(())
}

/// Waits for the exit code of the command handed over `stream`.
///
/// # Errors
/// When the resident closed the socket without answering (it died) or
/// answered something else.
pub fn read_answer(stream: &UnixStream) -> Result<u8, WireError> {
    let mut bytes = [0; 9];
    (&*stream).read_exact(&mut bytes)?;
    if bytes[..8] != ANSWER_MAGIC {
        return Err(WireError::NotThisProtocol);
    }
    Ok(bytes[8])
}

#[cfg(test)]
mod tests {
    use std::io::Write as _;
    use std::os::fd::AsFd as _;

    use super::*;

    #[test]
    fn a_request_arrives_with_its_descriptors_and_an_answer_returns() {
        let (client, resident) = UnixStream::pair().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let cwd = std::fs::File::open(dir.path()).unwrap();
        let (out_read, out_write) = UnixStream::pair().unwrap();
        let argv: Vec<OsString> = vec!["silt".into(), "data".into(), "list".into()];
        let env = vec![("SILT_X".into(), "1".into())];
        let server = std::thread::spawn(move || {
            let request = Request::receive(&resident).unwrap();
            // What came as stdout writes where the client's stdout goes.
            let mut stdout = std::fs::File::from(request.stdio[1].try_clone().unwrap());
            stdout.write_all(b"hello").unwrap();
            answer(&resident, 3).unwrap();
            request
        });
        Request::send(
            &client,
            &argv,
            &env,
            cwd.as_fd(),
            [out_write.as_fd(), out_write.as_fd(), out_write.as_fd()],
        )
        .unwrap();
        assert_eq!(read_answer(&client).unwrap(), 3);
        let request = server.join().unwrap();
        assert_eq!(request.argv, argv);
        assert_eq!(request.env, env);
        let mut said = [0; 5];
        (&out_read).read_exact(&mut said).unwrap();
        assert_eq!(&said, b"hello");
        // The working directory is the one sent, whatever its path now.
        let here = std::fs::read_link(format!(
            "/proc/self/fd/{}",
            std::os::fd::AsRawFd::as_raw_fd(&request.cwd)
        ))
        .unwrap();
        assert_eq!(here, dir.path().canonicalize().unwrap());
    }

    #[test]
    fn a_request_without_its_descriptors_is_refused() {
        let (client, resident) = UnixStream::pair().unwrap();
        let payload = wire::encode(&["silt".into()], &[]);
        (&client)
            .write_all(&wire::header(payload.len()).unwrap())
            .unwrap();
        (&client).write_all(&payload).unwrap();
        assert!(matches!(
            Request::receive(&resident),
            Err(WireError::Descriptors { received: 0 })
        ));
    }

    #[test]
    fn a_closed_socket_is_not_an_answer() {
        let (client, resident) = UnixStream::pair().unwrap();
        drop(resident);
        assert!(read_answer(&client).is_err());
    }
}
