//! A command handed to the resident, and the exit code it answers.

use std::ffi::OsString;
use std::io::{Read as _, Write as _};
use std::os::fd::{BorrowedFd, OwnedFd};
use std::os::unix::net::UnixStream;

use crate::descriptors;
use crate::error::WireError;
use crate::wire::{self, ANSWER_MAGIC, CANCEL_MAGIC, HEADER_LEN, NOT_RUN_MAGIC, STARTED_MAGIC};

/// How long a request may take to arrive once connected: a client stopped
/// or stalled mid-request must not hold the resident's accept loop.
const RECEIVE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

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
    /// Hands a command over `stream`. A request the resident would refuse
    /// (over 8 MiB, over 65,536 arguments or variables, a variable's name
    /// empty or holding `=`) is not sent.
    ///
    /// # Errors
    /// When the request cannot be sent: nothing was handed over.
    pub fn send(
        stream: &UnixStream,
        argv: &[OsString],
        env: &[(OsString, OsString)],
        cwd: BorrowedFd<'_>,
        stdio: [BorrowedFd<'_>; 3],
    ) -> Result<(), WireError> {
        let payload = wire::encode(argv, env)?;
        let mut bytes = Vec::with_capacity(HEADER_LEN + payload.len());
        bytes.extend_from_slice(&wire::header(payload.len())?);
        bytes.extend_from_slice(&payload);
        let [stdin, stdout, stderr] = stdio;
        descriptors::send(stream, &bytes, &[cwd, stdin, stdout, stderr])
    }

    /// Receives one command from `stream`, after checking that the peer is
    /// this user ([`crate::peer::check_same_user`]). The request must
    /// arrive within 10 s.
    ///
    /// # Errors
    /// When the peer is another user, or the bytes or descriptors are not a
    /// request of this wire, or it does not arrive in time.
    pub fn receive(stream: &UnixStream) -> Result<Self, WireError> {
        Self::receive_within(stream, RECEIVE_TIMEOUT)
    }

    fn receive_within(
        stream: &UnixStream,
        timeout: std::time::Duration,
    ) -> Result<Self, WireError> {
        crate::peer::check_same_user(stream)?;
        stream.set_read_timeout(Some(timeout))?;
        let request = Self::read(stream);
        stream.set_read_timeout(None)?;
        request
    }

    fn read(stream: &UnixStream) -> Result<Self, WireError> {
        let mut header = [0; HEADER_LEN];
        let fds = descriptors::receive(stream, &mut header)?;
        let len = wire::payload_len(&header)?;
        let mut payload = vec![0; len];
        (&*stream).read_exact(&mut payload)?;
        let (argv, env) = wire::decode(&payload)?;
        let [cwd, stdin, stdout, stderr]: [OwnedFd; descriptors::COUNT] =
            fds.try_into().expect("checked: exactly COUNT descriptors");
        let cwd_type = rustix::fs::fstat(&cwd)
            .map_err(std::io::Error::from)?
            .st_mode;
        if !rustix::fs::FileType::from_raw_mode(cwd_type).is_dir() {
            return Err(WireError::Malformed(
                "the working directory is not a directory",
            ));
        }
        Ok(Self {
            argv,
            env,
            cwd,
            stdio: [stdin, stdout, stderr],
        })
    }
}

/// What the resident answers a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// The command ran: its exit code.
    Ran(u8),
    /// The command was not started (the resident is restarting, or it
    /// refuses the request): the client may run it itself.
    NotRun,
}

/// Answers a request. The resident closes the request's descriptors
/// first, so whoever reads the client's output sees its end when the
/// client exits.
///
/// # Errors
/// When the socket fails (the client went away).
pub fn answer(stream: &UnixStream, answer: Answer) -> Result<(), WireError> {
    let mut bytes = [0; 9];
    match answer {
        Answer::Ran(code) => {
            bytes[..8].copy_from_slice(&ANSWER_MAGIC);
            bytes[8] = code;
        }
        Answer::NotRun => bytes[..8].copy_from_slice(&NOT_RUN_MAGIC),
    }
    (&*stream).write_all(&bytes)?;
    Ok(())
}

/// Asks the resident to stop the command handed over `stream` as the signal
/// `signal` (its number) stops a command in a process of its own: a command
/// holding leases releases them and ends with 128 + `signal`.
///
/// # Errors
/// When the socket fails (the resident went away).
pub fn cancel(stream: &UnixStream, signal: u8) -> Result<(), WireError> {
    let mut bytes = [0; 9];
    bytes[..8].copy_from_slice(&CANCEL_MAGIC);
    bytes[8] = signal;
    (&*stream).write_all(&bytes)?;
    Ok(())
}

/// Waits, on the resident's side, for the client's next word after its
/// request: `Some(signal)` for a [`cancel`], `None` when the client closed
/// its side (it exited or was killed).
///
/// # Errors
/// When the bytes are not a cancel, or the socket fails.
pub fn read_cancel(stream: &UnixStream) -> Result<Option<u8>, WireError> {
    let mut bytes = [0; 9];
    let mut filled = 0;
    while filled < bytes.len() {
        match (&*stream).read(&mut bytes[filled..]) {
            Ok(0) if filled == 0 => return Ok(None),
            Ok(0) => return Err(WireError::Malformed("a cancel cut short")),
            Ok(read) => filled += read,
            Err(err) if err.kind() == std::io::ErrorKind::Interrupted => {}
            Err(err) => return Err(err.into()),
        }
    }
    if bytes[..8] != CANCEL_MAGIC {
        return Err(WireError::NotThisProtocol);
    }
    if FORWARDED_SIGNALS.contains(&bytes[8]) {
        Ok(Some(bytes[8]))
    } else {
        Err(WireError::Malformed(
            "a cancel for a signal that is not forwarded",
        ))
    }
}

/// The signals a cancel may carry: SIGHUP, SIGINT, SIGTERM.
pub(crate) const FORWARDED_SIGNALS: [u8; 3] = [1, 2, 15];

/// Tells the client, on the resident's side, that the command starts now:
/// from here on a resident that goes away may have run it in part.
///
/// # Errors
/// When the socket fails (the client went away).
pub fn started(stream: &UnixStream) -> Result<(), WireError> {
    let mut bytes = [0; 9];
    bytes[..8].copy_from_slice(&STARTED_MAGIC);
    (&*stream).write_all(&bytes)?;
    Ok(())
}

/// Why no answer came, and whether the command had started.
#[derive(Debug)]
pub struct NoAnswer {
    /// The resident said the command starts ([`started`]) before it went.
    pub started: bool,
    /// What failed.
    pub error: WireError,
}

/// One frame the resident sends after a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Frame {
    /// The command starts now.
    Started,
    /// The answer.
    Answer(Answer),
}

/// Reads the next frame (each is written whole, in one write).
pub(crate) fn read_frame(stream: &UnixStream) -> Result<Frame, WireError> {
    let mut bytes = [0; 9];
    (&*stream).read_exact(&mut bytes)?;
    if bytes[..8] == STARTED_MAGIC {
        Ok(Frame::Started)
    } else if bytes[..8] == ANSWER_MAGIC {
        Ok(Frame::Answer(Answer::Ran(bytes[8])))
    } else if bytes[..8] == NOT_RUN_MAGIC {
        Ok(Frame::Answer(Answer::NotRun))
    } else {
        Err(WireError::NotThisProtocol)
    }
}

/// Whether the resident had started the command, given the frames so far;
/// what the next frame means. `Ok(None)`: wait for the next.
pub(crate) fn next_answer(
    started: &mut bool,
    frame: Result<Frame, WireError>,
) -> Result<Option<Answer>, NoAnswer> {
    match frame {
        Ok(Frame::Started) if !*started => {
            *started = true;
            Ok(None)
        }
        Ok(Frame::Answer(Answer::Ran(code))) => Ok(Some(Answer::Ran(code))),
        Ok(Frame::Answer(Answer::NotRun)) if !*started => Ok(Some(Answer::NotRun)),
        Ok(_) => Err(NoAnswer {
            started: *started,
            error: WireError::NotThisProtocol,
        }),
        Err(error) => Err(NoAnswer {
            started: *started,
            error,
        }),
    }
}

/// Waits for the answer to the request handed over `stream`.
///
/// # Errors
/// When the resident closed the socket without answering (it died) or
/// answered something else; [`NoAnswer::started`] says whether it had
/// started the command.
pub fn read_answer(stream: &UnixStream) -> Result<Answer, NoAnswer> {
    let mut started = false;
    loop {
        if let Some(answer) = next_answer(&mut started, read_frame(stream))? {
            return Ok(answer);
        }
    }
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
            answer(&resident, Answer::Ran(3)).unwrap();
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
        assert_eq!(read_answer(&client).unwrap(), Answer::Ran(3));
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
        let payload = wire::encode(&["silt".into()], &[]).unwrap();
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
    fn a_working_directory_that_is_not_one_is_refused() {
        let (client, resident) = UnixStream::pair().unwrap();
        let file = tempfile::tempfile().unwrap();
        Request::send(
            &client,
            &["silt".into()],
            &[],
            file.as_fd(),
            [client.as_fd(), client.as_fd(), client.as_fd()],
        )
        .unwrap();
        assert!(matches!(
            Request::receive(&resident),
            Err(WireError::Malformed(why)) if why.contains("not a directory")
        ));
    }

    #[test]
    fn a_request_that_stops_halfway_times_out_rather_than_hangs() {
        let (client, resident) = UnixStream::pair().unwrap();
        // The header with its descriptors, then silence: 100 bytes promised.
        let header = wire::header(100).unwrap();
        let fd = client.as_fd();
        descriptors::send(&client, &header, &[fd, fd, fd, fd]).unwrap();
        let started = std::time::Instant::now();
        let stalled = Request::receive_within(&resident, std::time::Duration::from_millis(50));
        assert!(matches!(stalled, Err(WireError::Io(_))), "{stalled:?}");
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
    }

    #[test]
    fn not_run_is_an_answer_of_its_own() {
        let (client, resident) = UnixStream::pair().unwrap();
        answer(&resident, Answer::NotRun).unwrap();
        assert_eq!(read_answer(&client).unwrap(), Answer::NotRun);
    }

    #[test]
    fn a_closed_socket_is_not_an_answer() {
        let (client, resident) = UnixStream::pair().unwrap();
        drop(resident);
        assert!(read_answer(&client).is_err());
    }

    #[test]
    fn a_resident_gone_before_it_started_the_command_did_not_run_it() {
        let (client, resident) = UnixStream::pair().unwrap();
        drop(resident);
        assert!(matches!(
            read_answer(&client),
            Err(NoAnswer { started: false, .. })
        ));
        let (client, resident) = UnixStream::pair().unwrap();
        started(&resident).unwrap();
        drop(resident);
        assert!(matches!(
            read_answer(&client),
            Err(NoAnswer { started: true, .. })
        ));
        let (client, resident) = UnixStream::pair().unwrap();
        started(&resident).unwrap();
        answer(&resident, Answer::Ran(3)).unwrap();
        assert_eq!(read_answer(&client).unwrap(), Answer::Ran(3));
        // "Not run" after "started" is not an answer this wire gives.
        let (client, resident) = UnixStream::pair().unwrap();
        started(&resident).unwrap();
        answer(&resident, Answer::NotRun).unwrap();
        assert!(matches!(
            read_answer(&client),
            Err(NoAnswer { started: true, .. })
        ));
    }

    #[test]
    fn a_cancel_carries_its_signal_and_a_closed_client_is_none() {
        let (client, resident) = UnixStream::pair().unwrap();
        cancel(&client, 2).unwrap();
        assert_eq!(read_cancel(&resident).unwrap(), Some(2));
        drop(client);
        assert_eq!(read_cancel(&resident).unwrap(), None);
    }

    #[test]
    fn anything_else_after_a_request_is_not_a_cancel() {
        let (client, resident) = UnixStream::pair().unwrap();
        answer(&client, Answer::Ran(0)).unwrap();
        assert!(matches!(
            read_cancel(&resident),
            Err(WireError::NotThisProtocol)
        ));
        let (client, resident) = UnixStream::pair().unwrap();
        (&client).write_all(b"siltc").unwrap();
        drop(client);
        assert!(matches!(
            read_cancel(&resident),
            Err(WireError::Malformed(_))
        ));
    }
}
