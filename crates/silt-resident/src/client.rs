//! The client's side: hand a command to the resident, or say why not.

use std::ffi::OsString;
use std::os::fd::{AsFd as _, BorrowedFd};
use std::os::unix::net::UnixStream;
use std::path::Path;

use rustix::fs::{Mode, OFlags};

use crate::error::WireError;
use crate::request::{Answer, NoAnswer, Request};
use crate::socket_dir;

/// How a hand-over ended.
#[derive(Debug)]
pub enum HandOver {
    /// The resident ran the command: its exit code.
    Answered(u8),
    /// Nothing was handed over, or the resident answered that it did not
    /// start the command (no resident, one that is not safe to use, one
    /// restarting): the client may run the command itself.
    NotHandedOver(WireError),
    /// The command was handed over and then the resident went away without
    /// an answer. It may have run in part, so it must not be run again
    /// unasked.
    Lost(WireError),
}

/// Global flags of `silt` that take a value: what follows them is not the
/// command's name.
const FLAGS_WITH_VALUE: [&str; 2] = ["--hydration", "--execution"];

/// Flags that keep a command with the host: a trace file is written by the
/// command's own process, at its exit; the background hydrator
/// (`datastore hydrate --worker`) lowers its own process's priority.
const FLAGS_RUN_BY_THE_HOST: [&str; 2] = ["--trace-file", "--worker"];

/// Commands the resident does not run, by their first word: those that set
/// up a project or the machine, print the manual, or are silt's own
/// internals (a sandbox's entry, a worker); and `run`, which holds a lease
/// for as long as the user's program runs and gives that program silt's
/// own environment and working directory.
const RUN_BY_THE_HOST: [&str; 7] = [
    "init",
    "sandbox",
    "completions",
    "man",
    "worker",
    "help",
    "run",
];

/// Environment variables that keep a command with the host: traces and
/// metrics are exported by the command's own process (`OTEL_*`), and a
/// trace continued from a parent (`TRACEPARENT`) is the command's own.
fn exports_telemetry(name: &std::ffi::OsStr) -> bool {
    name.to_str()
        .is_some_and(|name| name.starts_with("OTEL_") || name == "TRACEPARENT")
}

/// True when a resident may run commands in environment `env`: none asks
/// for telemetry ([`exports_telemetry`]) and `SILT_RESIDENT` is not `0`.
pub fn environment_served(env: &[(OsString, OsString)]) -> bool {
    !env.iter()
        .any(|(name, value)| exports_telemetry(name) || (name == "SILT_RESIDENT" && value == "0"))
}

/// Commands the resident does not run, by their first two words: publishing
/// reads the user's registry credentials, which stay with the command's
/// own process (docs/resident-process.md).
const RUN_BY_THE_HOST_TWO_WORDS: [[&str; 2]; 1] = [["extension", "publish"]];

/// True when the resident would run `args` (argv without the program).
/// Anything asking for help or the version, anywhere before `--`, stays
/// with the host; so does an argument that is not UTF-8 before the
/// command's name.
pub fn served_by_resident(args: &[OsString]) -> bool {
    let mut words: Vec<&str> = Vec::new();
    let mut args = args.iter().map(|arg| arg.to_str());
    while let Some(arg) = args.next() {
        let Some(arg) = arg else {
            if words.is_empty() {
                return false;
            }
            continue;
        };
        if arg == "--" {
            // What follows is a command's own (`silt run M -- make -h`).
            break;
        }
        if asks_for_help_or_version(arg)
            || FLAGS_RUN_BY_THE_HOST.iter().any(|flag| {
                arg == *flag
                    || arg
                        .strip_prefix(flag)
                        .is_some_and(|rest| rest.starts_with('='))
            })
        {
            return false;
        }
        if FLAGS_WITH_VALUE.contains(&arg) {
            args.next();
        } else if !arg.starts_with('-') {
            words.push(arg);
        }
    }
    let Some(first) = words.first() else {
        return false;
    };
    let two_words = words.get(1).map(|second| [*first, *second]);
    !(RUN_BY_THE_HOST.contains(first)
        || first.starts_with("__")
        || words.get(1) == Some(&"help")
        || two_words.is_some_and(|pair| RUN_BY_THE_HOST_TWO_WORDS.contains(&pair)))
}

/// `--help`, `--version`, or a bundle of short flags holding `h` or `V`
/// (`-qh`).
fn asks_for_help_or_version(arg: &str) -> bool {
    match arg.strip_prefix("--") {
        Some(long) => matches!(long, "help" | "version"),
        None => arg
            .strip_prefix('-')
            .is_some_and(|short| short.contains(['h', 'V'])),
    }
}

/// Hands `argv` (the program first) to the resident listening on
/// `socket`, with `env` (this process's environment), its working directory
/// and descriptors 0–2, and waits for its answer. While it waits, SIGINT,
/// SIGTERM and SIGHUP are forwarded to the command as a cancel
/// ([`crate::cancel`]); a second one, or none answered within
/// [`CANCEL_GRACE`], ends this process with 128 + the signal.
///
/// Descriptors 0–2 are sent as they are: Rust's runtime opens `/dev/null`
/// on any of them that is closed before `main` runs, so they are open.
pub fn hand_over(socket: &Path, argv: &[OsString], env: &[(OsString, OsString)]) -> HandOver {
    let connected = socket
        .parent()
        .ok_or(WireError::Malformed("a socket path without a directory"))
        .and_then(socket_dir::check)
        .and_then(|()| Ok(UnixStream::connect(socket)?))
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
    // SAFETY: 0–2 are open (see above) and nothing in this process closes
    // them while the request is sent.
    let stdio: [BorrowedFd<'_>; 3] = std::array::from_fn(|fd| unsafe {
        BorrowedFd::borrow_raw(i32::try_from(fd).expect("0-2"))
    });
    let mut forwarding = match crate::signals::Forwarding::block() {
        Ok(forwarding) => forwarding,
        Err(err) => return HandOver::NotHandedOver(err.into()),
    };
    // Signals are blocked while it is sent: a resident that stopped reading
    // must not hold the client for good.
    let sent = stream
        .set_write_timeout(Some(SEND_TIMEOUT))
        .map_err(WireError::from)
        .and_then(|()| Request::send(&stream, argv, env, cwd.as_fd(), stdio))
        .and_then(|()| Ok(stream.set_write_timeout(None)?));
    if let Err(err) = sent {
        // A request cut short is not a command: the resident refuses it.
        forwarding.stop();
        return HandOver::NotHandedOver(err);
    }
    match forwarding.await_answer(&stream) {
        Ok(Answer::Ran(code)) => HandOver::Answered(code),
        Ok(Answer::NotRun) => {
            forwarding.stop();
            HandOver::NotHandedOver(WireError::NotRun)
        }
        Err(NoAnswer {
            started: false,
            error,
        }) => {
            forwarding.stop();
            HandOver::NotHandedOver(error)
        }
        Err(NoAnswer {
            started: true,
            error,
        }) => {
            forwarding.end_forwarding();
            HandOver::Lost(error)
        }
    }
}

/// How long sending a request may take: as long as the resident gives one
/// to arrive.
const SEND_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// How long the client waits for the command's answer after forwarding a
/// signal. The resident answers within its own grace
/// (`crates/silt/src/cli/resident.rs`), shorter than this; past it, the
/// client ends by itself as a process of its own would.
pub const CANCEL_GRACE: std::time::Duration = std::time::Duration::from_secs(5);

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
        assert!(served("--hydration lazy data get team/m f"));
        assert!(served("extension list"));
        assert!(served("data put team/m f ./x -- -h --version"));
        assert!(served("-v data put team/m f ./help"));
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
            "-qh data list",
            "-vV",
            "data help list",
            "extension publish oci://127.0.0.1:5000/x:1",
            "--json extension publish x",
            "run team/m -- make",
            "--trace-file t.json data list",
            "data list --trace-file=t.json",
            "-v datastore hydrate --worker",
        ] {
            assert!(!served(line), "{line:?}");
        }
    }

    #[test]
    fn no_resident_means_nothing_handed_over() {
        let (_parent, dir) = private_dir();
        assert!(matches!(
            hand_over(&dir.join("resident-test.sock"), &["silt".into()], &[]),
            HandOver::NotHandedOver(WireError::Io(_))
        ));
    }

    /// A resident in `dir` that takes one request and runs `then` on it.
    fn resident(
        dir: &Path,
        then: impl FnOnce(&UnixStream, Request) + Send + 'static,
    ) -> std::thread::JoinHandle<()> {
        let listener =
            std::os::unix::net::UnixListener::bind(dir.join("resident-test.sock")).unwrap();
        std::thread::spawn(move || {
            let (stream, _) = listener.accept().unwrap();
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
            crate::answer(stream, Answer::Ran(7)).unwrap();
        });
        let argv: Vec<OsString> = ["silt", "data", "list"].map(OsString::from).to_vec();
        let env: Vec<(OsString, OsString)> = std::env::vars_os().collect();
        let answer = hand_over(&dir.join("resident-test.sock"), &argv, &env);
        assert!(matches!(answer, HandOver::Answered(7)), "{answer:?}");
        served.join().unwrap();
    }

    #[test]
    fn a_resident_that_goes_away_mid_command_is_lost_not_retried() {
        let (_parent, dir) = private_dir();
        let served = resident(&dir, |stream, request| {
            crate::started(stream).unwrap();
            drop(request);
        });
        assert!(matches!(
            hand_over(&dir.join("resident-test.sock"), &["silt".into()], &[]),
            HandOver::Lost(_)
        ));
        served.join().unwrap();
    }

    #[test]
    fn a_resident_that_goes_away_before_starting_leaves_the_command_to_the_client() {
        let (_parent, dir) = private_dir();
        let served = resident(&dir, |_, request| drop(request));
        assert!(matches!(
            hand_over(&dir.join("resident-test.sock"), &["silt".into()], &[]),
            HandOver::NotHandedOver(_)
        ));
        served.join().unwrap();
    }

    #[test]
    fn a_resident_that_did_not_start_the_command_leaves_it_to_the_client() {
        let (_parent, dir) = private_dir();
        let served = resident(&dir, |stream, request| {
            drop(request);
            crate::answer(stream, Answer::NotRun).unwrap();
        });
        assert!(matches!(
            hand_over(&dir.join("resident-test.sock"), &["silt".into()], &[]),
            HandOver::NotHandedOver(WireError::NotRun)
        ));
        served.join().unwrap();
    }

    #[test]
    fn a_socket_directory_open_to_others_is_not_used() {
        use std::os::unix::fs::PermissionsExt as _;
        let (_parent, dir) = private_dir();
        let listener =
            std::os::unix::net::UnixListener::bind(dir.join("resident-test.sock")).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o711)).unwrap();
        assert!(matches!(
            hand_over(&dir.join("resident-test.sock"), &["silt".into()], &[]),
            HandOver::NotHandedOver(WireError::Unsafe(_))
        ));
        drop(listener);
    }
}
