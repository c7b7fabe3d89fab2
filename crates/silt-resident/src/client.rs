//! The client's side: hand a command to the resident, or say why not.

use std::ffi::OsString;
use std::os::fd::{AsFd as _, BorrowedFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::Path;

use rustix::fs::{Mode, OFlags};

use crate::request::{Request, read_answer};
use crate::socket_dir::{self, SOCKET_NAME};
use crate::wire::WireError;

/// How a hand-over ended.
#[derive(Debug)]
pub enum HandOver {
    /// The resident ran the command: its exit code.
    Answered(u8),
    /// Nothing was handed over (no resident, or one that is not safe to
    /// use): the client may run the command itself.
    NotHandedOver(WireError),
    /// The command was handed over and then the resident went away without
    /// an answer. It may have run in part, so it must not be run again
    /// unasked.
    Lost(WireError),
}

/// Global flags of `silt` that take a value: what follows them is not the
/// command's name.
const FLAGS_WITH_VALUE: [&str; 3] = ["--hydration", "--execution", "--trace-file"];

/// Commands the resident does not run: those that set up a project or the
/// machine, print the manual, or are silt's own internals (a sandbox's
/// entry, a worker), and any asking for help or the version.
const RUN_BY_THE_HOST: [&str; 6] = ["init", "sandbox", "completions", "man", "worker", "help"];

/// True when the resident would run `args` (argv without the program).
pub fn served_by_resident(args: &[OsString]) -> bool {
    let mut args = args.iter().map(|arg| arg.to_str());
    while let Some(arg) = args.next() {
        let Some(arg) = arg else {
            return false;
        };
        if matches!(arg, "--help" | "-h" | "--version" | "-V") {
            return false;
        }
        if FLAGS_WITH_VALUE.contains(&arg) {
            args.next();
            continue;
        }
        if arg.starts_with('-') {
            continue;
        }
        // The first word that is not a flag names the command.
        if RUN_BY_THE_HOST.contains(&arg) || arg.starts_with("__") {
            return false;
        }
        // Any help or version flag further on is the host's too.
        return args.all(|rest| !matches!(rest, Some("--help" | "-h" | "--version" | "-V")));
    }
    false
}

/// Hands `argv` (the program first) to the resident whose socket is in
/// `dir`, with this process's environment, working directory and
/// descriptors 0–2, and waits for its exit code.
pub fn hand_over(dir: &Path, argv: &[OsString]) -> HandOver {
    let connected = socket_dir::check(dir)
        .and_then(|()| Ok(UnixStream::connect(dir.join(SOCKET_NAME))?))
        .and_then(|stream| crate::peer::check_same_user(&stream).map(|()| stream));
    let stream = match connected {
        Ok(stream) => stream,
        Err(err) => return HandOver::NotHandedOver(err),
    };
    let cwd = match rustix::fs::open(
        ".",
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    ) {
        Ok(cwd) => cwd,
        Err(err) => return HandOver::NotHandedOver(std::io::Error::from(err).into()),
    };
    let stdio = match Stdio::of_this_process() {
        Ok(stdio) => stdio,
        Err(err) => return HandOver::NotHandedOver(err.into()),
    };
    let env: Vec<(OsString, OsString)> = std::env::vars_os().collect();
    if let Err(err) = Request::send(&stream, argv, &env, cwd.as_fd(), stdio.borrow()) {
        // Part of a request is not a command: the resident refuses it.
        return HandOver::NotHandedOver(err);
    }
    match read_answer(&stream) {
        Ok(code) => HandOver::Answered(code),
        Err(err) => HandOver::Lost(err),
    }
}

/// Descriptors 0–2, with `/dev/null` standing in for any that is closed
/// (a descriptor that is not open cannot be sent).
struct Stdio {
    stand_ins: [Option<OwnedFd>; 3],
}

impl Stdio {
    fn of_this_process() -> std::io::Result<Self> {
        let mut stand_ins = [None, None, None];
        for (fd, stand_in) in stand_ins.iter_mut().enumerate() {
            if !is_open(fd) {
                *stand_in = Some(OwnedFd::from(
                    std::fs::OpenOptions::new()
                        .read(fd == 0)
                        .write(fd != 0)
                        .open("/dev/null")?,
                ));
            }
        }
        Ok(Self { stand_ins })
    }

    fn borrow(&self) -> [BorrowedFd<'_>; 3] {
        std::array::from_fn(|fd| match &self.stand_ins[fd] {
            Some(stand_in) => stand_in.as_fd(),
            // SAFETY: descriptors 0–2 were open when checked and nothing in
            // this process closes them; the borrow ends with `self`.
            None => unsafe { BorrowedFd::borrow_raw(fd as i32) },
        })
    }
}

fn is_open(fd: usize) -> bool {
    // SAFETY: only asks the kernel about the number; a closed one answers EBADF.
    let fd = unsafe { BorrowedFd::borrow_raw(fd as i32) };
    rustix::io::fcntl_getfd(fd).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn served(line: &str) -> bool {
        let args: Vec<OsString> = line.split_whitespace().map(OsString::from).collect();
        served_by_resident(&args)
    }

    #[test]
    fn datastore_commands_go_to_the_resident() {
        assert!(served("data list team/m"));
        assert!(served("--json -q data get team/m f"));
        assert!(served("--hydration lazy run team/m -- make"));
        assert!(served("--trace-file init.json datastore sync"));
        assert!(served("extension list"));
    }

    #[test]
    fn set_up_help_and_internals_stay_with_the_host() {
        for line in [
            "",
            "--json",
            "init",
            "-v init --backend dir",
            "sandbox check",
            "completions bash",
            "man",
            "worker",
            "__probe landlock",
            "help data",
            "--help",
            "data list --help",
            "--version",
            "--execution in-process -h",
        ] {
            assert!(!served(line), "{line:?}");
        }
    }

    #[test]
    fn no_resident_means_nothing_handed_over() {
        let (_parent, dir) = private_dir();
        assert!(matches!(
            hand_over(&dir, &["silt".into()]),
            HandOver::NotHandedOver(WireError::Io(_))
        ));
    }

    /// A resident in `dir` that takes one request and runs `then` on it.
    fn resident(
        dir: &Path,
        then: impl FnOnce(&UnixStream, Request) + Send + 'static,
    ) -> std::thread::JoinHandle<()> {
        let listener = std::os::unix::net::UnixListener::bind(dir.join(SOCKET_NAME)).unwrap();
        std::thread::spawn(move || {
            let (stream, _) = listener.accept().unwrap();
            crate::peer::check_same_user(&stream).unwrap();
            let request = Request::receive(&stream).unwrap();
            then(&stream, request);
        })
    }

    /// A private directory for a socket (temporary directories may be 0755).
    fn private_dir() -> (tempfile::TempDir, std::path::PathBuf) {
        let parent = tempfile::tempdir().unwrap();
        let dir = parent.path().join("silt");
        socket_dir::ensure(&dir).unwrap();
        (parent, dir)
    }

    #[test]
    fn the_resident_answers_the_exit_code() {
        let (_parent, dir) = private_dir();
        let served = resident(&dir, |stream, request| {
            assert_eq!(request.argv, ["silt", "data", "list"]);
            assert!(request.env.iter().any(|(key, _)| key == "PATH"));
            crate::answer(stream, 7).unwrap();
        });
        let argv: Vec<OsString> = ["silt", "data", "list"].map(OsString::from).to_vec();
        let answer = hand_over(&dir, &argv);
        assert!(matches!(answer, HandOver::Answered(7)), "{answer:?}");
        served.join().unwrap();
    }

    #[test]
    fn a_resident_that_goes_away_mid_command_is_lost_not_retried() {
        let (_parent, dir) = private_dir();
        let served = resident(&dir, |_, request| drop(request));
        assert!(matches!(
            hand_over(&dir, &["silt".into()]),
            HandOver::Lost(_)
        ));
        served.join().unwrap();
    }

    #[test]
    fn a_socket_directory_open_to_others_is_not_used() {
        use std::os::unix::fs::PermissionsExt as _;
        let (_parent, dir) = private_dir();
        let listener = std::os::unix::net::UnixListener::bind(dir.join(SOCKET_NAME)).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o711)).unwrap();
        assert!(matches!(
            hand_over(&dir, &["silt".into()]),
            HandOver::NotHandedOver(WireError::Unsafe(_))
        ));
        drop(listener);
    }
}
