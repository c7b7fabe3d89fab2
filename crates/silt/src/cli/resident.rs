//! `silt __resident SOCKET`: the resident process (issue 21, goal 5;
//! `docs/resident-process.md`). `silt-client` starts it on first use and
//! hands it the commands it serves; it runs them one at a time in this
//! process, on extension runtimes kept between commands, and exits when idle.
//!
//! A command reads its working directory, descriptors 0–2 and environment
//! from its process. The first two are the request's while the command runs
//! ([`ProcessState`]); the environment is this process's own, which is why
//! a resident serves only clients whose environment is the same as the one
//! it was started with ([`route`]). One command at a time: a request that
//! comes while one runs is answered "not run", and its client runs `silt`
//! itself. A request that comes before the command loop is waiting (just
//! after start, or between a command's answer and the loop's next turn)
//! waits for it: the accept loop hands it over whenever no command is
//! running ([`Shared::busy`]), and the loop marks itself free before it
//! answers, so a client's next command, sent once the answer arrives, is
//! not turned away for the one before.

use std::ffi::OsString;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, Sender, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use silt_resident::serve::{Listener, ProcessState};
use silt_resident::{Answer, Request, answer, client, peer, read_cancel, route, started};

use crate::datastore::{ForwardedSignal, Runtimes};

/// The hidden command that runs the resident (`silt-client` starts it).
pub const RESIDENT_ARG: &str = "__resident";

/// How long the resident stays without a command, in seconds, unless
/// `SILT_RESIDENT_IDLE_SECS` says otherwise.
const IDLE_SECS: u64 = 600;

/// How long a resident that has served at most one command stays idle: an
/// environment seen once (a loop's `FOO=$i silt ...`) does not keep a
/// resident for ten minutes.
const IDLE_AFTER_ONE: Duration = Duration::from_secs(60);

/// The longest a resident serves: what a command leaves in the process
/// (per-process caches, a pid that never dies for the sweeps keyed on it)
/// lasts no longer.
const MAX_AGE: Duration = Duration::from_secs(3600);

/// How long a command that listens for signals has, after a forwarded one,
/// to end by itself (its leases released) before the resident ends it as
/// the signal would have. Shorter than the client's own grace.
const CANCEL_GRACE: Duration = Duration::from_secs(3);

/// How often the accept loop looks at the clock, the socket's path and the
/// signals that stop the resident.
const TICK: Duration = Duration::from_secs(1);

/// Exit code of a command that panicked (as a process of its own).
const PANICKED: u8 = 101;

/// What the accept loop and the command loop share.
struct Shared {
    /// A command has been handed to the command loop and not yet answered.
    /// Set by the accept loop when it hands one over (only when it was
    /// clear), cleared by the command loop before it answers.
    busy: AtomicBool,
    /// The resident stops after the command running: a signal asked it
    /// to, or the command loop decided so (a command panicked or left work
    /// running). `busy` then stays set, so nothing more is handed over.
    stopping: AtomicBool,
    /// When the last command ended or connected (or the resident started).
    last_end: Mutex<Instant>,
    /// Commands handed to the command loop.
    served: std::sync::atomic::AtomicU64,
}

/// Serves `socket` until idle; the exit code.
pub(crate) fn main(socket: Option<&OsString>) -> u8 {
    let Some(socket) = socket.map(Path::new).filter(|socket| socket.is_absolute()) else {
        eprintln!("silt: {RESIDENT_ARG} needs the socket's absolute path (silt-client passes it)");
        // As clap's usage errors.
        return 2;
    };
    detach();
    silt_telemetry::init_per_command_log();
    let listener = match Listener::bind(socket) {
        Ok(Some(listener)) => listener,
        // Another resident serves this socket.
        Ok(None) => return 0,
        Err(err) => {
            eprintln!("silt resident: cannot serve {}: {err}", socket.display());
            return crate::exit::CANT_CREATE;
        }
    };
    let state = match ProcessState::save() {
        Ok(state) => state,
        Err(err) => {
            eprintln!("silt resident: cannot keep its own descriptors: {err}");
            return crate::exit::CANT_CREATE;
        }
    };
    let shared = Arc::new(Shared {
        busy: AtomicBool::new(false),
        stopping: AtomicBool::new(false),
        last_end: Mutex::new(Instant::now()),
        served: std::sync::atomic::AtomicU64::new(0),
    });
    watch_own_signals(&shared);
    // Everything the command loop needs is made before the accept loop
    // starts: a command it hands over is then always served or answered.
    let own_env: Vec<(OsString, OsString)> = std::env::vars_os().collect();
    let runtimes = Arc::new(Runtimes::default());
    let Some(watcher) = start_watcher() else {
        eprintln!("silt resident: cannot start its cancel watcher");
        return crate::exit::CANT_CREATE;
    };
    let (commands, incoming) = command_channel();
    let accepting = {
        let shared = shared.clone();
        std::thread::Builder::new()
            .name("silt-resident-accept".into())
            .spawn(move || accept_loop(listener, &commands, &shared, idle_timeout()))
    };
    let accepting = match accepting {
        Ok(accepting) => accepting,
        Err(err) => {
            eprintln!("silt resident: cannot start: {err}");
            return crate::exit::CANT_CREATE;
        }
    };
    for stream in &incoming {
        if shared.stopping.load(Ordering::SeqCst) {
            // Handed over before a signal asked the resident to stop: not
            // started, so its client runs it.
            let _ = answer(&stream, Answer::NotRun);
            break;
        }
        let served = serve_one(&stream, &state, &own_env, &runtimes, &watcher);
        *shared
            .last_end
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Instant::now();
        let go_on = served.go_on && !shared.stopping.load(Ordering::SeqCst);
        if go_on {
            // Free before the client hears: its next command, sent as soon
            // as this answer arrives, is handed over, not turned away.
            shared.busy.store(false, Ordering::SeqCst);
        } else {
            // Stays busy: nothing more is handed over.
            shared.stopping.store(true, Ordering::SeqCst);
        }
        if let Some(reply) = served.answer {
            let _ = answer(&stream, reply);
        }
        if !go_on {
            break;
        }
    }
    let _ = accepting.join();
    // A safeguard: `busy` stays set once the loop stops, so nothing should
    // be waiting here; anything that is gets an answer all the same.
    for stream in incoming.try_iter() {
        let _ = answer(&stream, Answer::NotRun);
    }
    0
}

/// What [`serve_one`] did with a command: the answer its client gets
/// (none when the client went away before it started), and whether the
/// resident goes on.
struct Served {
    answer: Option<Answer>,
    go_on: bool,
}

impl Served {
    /// Not started; the client may run it itself, the resident goes on.
    const NOT_RUN: Self = Self {
        answer: Some(Answer::NotRun),
        go_on: true,
    };
}

/// Leaves the first client's session (its terminal: a command reading the
/// terminal it was handed must not find the resident in a background
/// group of it) and closes what it inherited beyond 0–2 (a lock the
/// client's parent held, say): the resident keeps nothing of the command
/// that started it.
fn detach() {
    #[cfg(target_os = "linux")]
    // SAFETY: setsid takes no pointer; close_range closes descriptors this
    // process has not opened: none of them belongs to Rust code here, which
    // has opened nothing yet.
    unsafe {
        libc::setsid();
        libc::syscall(libc::SYS_close_range, 3_u32, u32::MAX, 0_u32);
    }
}

/// `SILT_RESIDENT_IDLE_SECS`, else ten minutes.
fn idle_timeout() -> Duration {
    let secs = std::env::var("SILT_RESIDENT_IDLE_SECS")
        .ok()
        .and_then(|secs| secs.parse().ok())
        .unwrap_or(IDLE_SECS);
    Duration::from_secs(secs)
}

/// SIGINT, SIGTERM and SIGHUP sent to the resident itself stop it after
/// the command running (which gets them too, and stops as it would).
fn watch_own_signals(shared: &Arc<Shared>) {
    let shared = shared.clone();
    let _ = std::thread::Builder::new()
        .name("silt-resident-signals".into())
        .spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                .enable_io()
                .build()
            else {
                return;
            };
            runtime.block_on(async {
                use tokio::signal::unix::{SignalKind, signal};
                let (Ok(mut interrupt), Ok(mut terminate), Ok(mut hangup)) = (
                    signal(SignalKind::interrupt()),
                    signal(SignalKind::terminate()),
                    signal(SignalKind::hangup()),
                ) else {
                    return;
                };
                tokio::select! {
                    _ = interrupt.recv() => {}
                    _ = terminate.recv() => {}
                    _ = hangup.recv() => {}
                }
            });
            shared.stopping.store(true, Ordering::SeqCst);
        });
}

/// Accepts connections and hands each to the command loop, or answers "not
/// run" when a command is running; ends when idle, stopped, or no longer
/// reachable at its path, then answers "not run" to whatever connected
/// meanwhile.
fn accept_loop(
    listener: Listener,
    commands: &SyncSender<UnixStream>,
    shared: &Shared,
    idle: Duration,
) {
    let born = Instant::now();
    loop {
        if shared.stopping.load(Ordering::SeqCst) || !listener.still_reachable() {
            break;
        }
        // `busy` first: the command loop notes a command's end before it
        // clears `busy`, so a clear `busy` comes with that end's time.
        let busy = shared.busy.load(Ordering::SeqCst);
        let idle_for = shared
            .last_end
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .elapsed();
        let idle = if shared.served.load(Ordering::SeqCst) < 2 {
            idle.min(IDLE_AFTER_ONE)
        } else {
            idle
        };
        if !busy && (idle_for >= idle || born.elapsed() >= MAX_AGE) {
            break;
        }
        match listener.accept_within(TICK) {
            Ok(Some(stream)) => {
                if let Err(stream) = hand_over(shared, commands, stream) {
                    let _ = answer(&stream, Answer::NotRun);
                }
            }
            Ok(None) => {}
            Err(err) => {
                eprintln!("silt resident: accepting failed: {err}");
                break;
            }
        }
    }
    listener.close(|stream| {
        let _ = answer(&stream, Answer::NotRun);
    });
}

/// The accept loop's way to the command loop. Room for the one command
/// `busy` lets through: the accept loop never waits on the command loop,
/// which may still be starting, or answering the command before (a
/// rendezvous channel would turn such a command away).
fn command_channel() -> (SyncSender<UnixStream>, Receiver<UnixStream>) {
    std::sync::mpsc::sync_channel(1)
}

/// Hands `stream` to the command loop when no command is running, or gives
/// it back. It never waits for the loop: a command handed over while the
/// loop is still starting, or answering the one before, waits in the
/// channel (room for one) until the loop takes it.
fn hand_over(
    shared: &Shared,
    commands: &SyncSender<UnixStream>,
    stream: UnixStream,
) -> Result<(), UnixStream> {
    if shared
        .busy
        .compare_exchange(false, true, Ordering::SeqCst, Ordering::SeqCst)
        .is_err()
    {
        return Err(stream);
    }
    // Counted as activity at the hand-off, not only when it ends: the
    // accept loop must not find the resident idle while it waits.
    *shared
        .last_end
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner) = Instant::now();
    shared.served.fetch_add(1, Ordering::SeqCst);
    // `busy` was clear, so the channel is empty: it is only refused when
    // the command loop has ended (and then nothing clears `busy` again).
    commands.try_send(stream).map_err(|err| match err {
        TrySendError::Full(stream) | TrySendError::Disconnected(stream) => stream,
    })
}

/// Runs the command `stream` carries, if this resident may, and says what
/// to answer; the resident should stop when the command panicked or left
/// work running. The caller answers, after marking the loop free.
fn serve_one(
    stream: &UnixStream,
    state: &ProcessState,
    own_env: &[(OsString, OsString)],
    runtimes: &Arc<Runtimes>,
    watcher: &Sender<Watch>,
) -> Served {
    let request = match Request::receive(stream) {
        Ok(request) => request,
        Err(err) => {
            // Nothing started: the client may run the command itself.
            eprintln!("silt resident: refused a request: {err}");
            return Served::NOT_RUN;
        }
    };
    // The client routes by environment; a client of another version, or a
    // collision of the route's hash, ends here; so does one that sees
    // other files (another mount namespace or root) or runs as another
    // group.
    if !route::same_environment(&request.env, own_env)
        || !client::served_by_resident(request.argv.get(1..).unwrap_or_default())
        || !peer::same_view(stream)
    {
        return Served::NOT_RUN;
    }
    if let Err(err) = state.enter(&request) {
        state.leave();
        eprintln!("silt resident: cannot take the request's directory and descriptors: {err}");
        return Served::NOT_RUN;
    }
    if started(stream).is_err() {
        // The client went away before anything ran.
        state.leave();
        return Served {
            answer: None,
            go_on: true,
        };
    }
    let forwarding = Arc::new(ForwardedSignal::install());
    let done = Arc::new(Mutex::new(false));
    if let Ok(watched) = stream.try_clone() {
        let _ = watcher.send(Watch {
            stream: watched,
            forwarding: forwarding.clone(),
            done: done.clone(),
        });
    }
    let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        crate::cli::run_in_process(&request.argv, runtimes)
    }));
    // Before anything is answered (the watcher may be ending the resident
    // as the signal would have: then this waits for the exit); and before
    // the end of the stream that follows, so the watcher takes that end
    // for this command's, not for a hang-up.
    *done
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner) = true;
    state.leave();
    let _ = stream.shutdown(std::net::Shutdown::Read);
    drop(forwarding);
    drop(request);
    // A panic may have left this process's state half-way (a lock
    // poisoned, a runtime mid-drop), and work a command left on a blocked
    // thread runs on into the next: answer as a process of its own would,
    // then stop; the next command starts a new resident.
    let (code, go_on) = match ran {
        Ok(code) => (code, !crate::cli::left_work_behind()),
        Err(_) => (PANICKED, false),
    };
    Served {
        answer: Some(Answer::Ran(code)),
        go_on,
    }
}

/// A command's client to watch for a cancel while the command runs.
struct Watch {
    stream: UnixStream,
    forwarding: Arc<ForwardedSignal>,
    /// The command ended: what the stream says now is not for it. Set
    /// under the lock, which the watcher holds from its decision to end
    /// the resident until the process is gone: the command loop cannot
    /// answer this command, or start the next, once it decided.
    done: Arc<Mutex<bool>>,
}

/// The thread that watches each command's client, one after another (a
/// thread a command would cost a spawn and a join each).
fn start_watcher() -> Option<Sender<Watch>> {
    let (watches, to_watch) = std::sync::mpsc::channel::<Watch>();
    std::thread::Builder::new()
        .name("silt-resident-cancel".into())
        .spawn(move || {
            for watch in to_watch {
                watch_for_cancel(&watch.stream, &watch.forwarding, &watch.done);
            }
        })
        .ok()?;
    Some(watches)
}

/// Forwards the client's cancel to the command; a client gone (its side
/// closed) is a hang-up. A command that does not listen for signals, or
/// does not end within [`CANCEL_GRACE`], is ended as the signal would have
/// ended a process of its own: the client is answered 128 + the signal and
/// the resident exits at once.
fn watch_for_cancel(stream: &UnixStream, forwarding: &ForwardedSignal, done: &Mutex<bool>) {
    let finished = || {
        *done
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    };
    let signal = match read_cancel(stream) {
        Ok(Some(signal)) => signal,
        // SIGHUP, as a closed terminal.
        Ok(None) | Err(_) => 1,
    };
    if finished() {
        return;
    }
    let listening = forwarding.listening();
    forwarding.send(signal);
    let deadline = Instant::now() + CANCEL_GRACE;
    while listening && Instant::now() < deadline {
        if finished() {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let ended = done
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if *ended {
        return;
    }
    let code = 128 + signal;
    let _ = answer(stream, Answer::Ran(code));
    // SAFETY: _exit ends the process without running anything of the
    // command's: what a signal's default action does. The lock is held to
    // the end, so the command loop answers nothing more.
    unsafe { libc::_exit(i32::from(code)) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shared() -> Shared {
        Shared {
            busy: AtomicBool::new(false),
            stopping: AtomicBool::new(false),
            last_end: Mutex::new(Instant::now()),
            served: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// A resident's first command can connect before its command loop
    /// waits (the socket is bound first); a script's next command can
    /// connect before the loop has come round after answering the last.
    /// Neither is turned away: only a command while one runs is.
    #[test]
    fn a_command_is_handed_over_whenever_none_runs_even_before_the_loop_waits() {
        let shared = shared();
        let (commands, incoming) = command_channel();
        let (first, _first_client) = UnixStream::pair().unwrap();
        assert!(
            hand_over(&shared, &commands, first).is_ok(),
            "no loop waiting yet"
        );
        let (second, _second_client) = UnixStream::pair().unwrap();
        assert!(
            hand_over(&shared, &commands, second).is_err(),
            "one runs (or waits to)"
        );
        let _running = incoming.try_recv().unwrap();
        let (third, _third_client) = UnixStream::pair().unwrap();
        assert!(hand_over(&shared, &commands, third).is_err(), "one runs");
        // The loop marks itself free before it answers, then comes round.
        shared.busy.store(false, Ordering::SeqCst);
        let (fourth, _fourth_client) = UnixStream::pair().unwrap();
        assert!(hand_over(&shared, &commands, fourth).is_ok());
        assert_eq!(shared.served.load(Ordering::SeqCst), 2);
        // A loop that has ended takes nothing, and nothing more is handed
        // over (`busy` is cleared here by the test's hand only).
        let _ = incoming.try_recv().unwrap();
        drop(incoming);
        shared.busy.store(false, Ordering::SeqCst);
        let (fifth, _fifth_client) = UnixStream::pair().unwrap();
        assert!(hand_over(&shared, &commands, fifth).is_err());
        assert!(shared.busy.load(Ordering::SeqCst));
    }
}
