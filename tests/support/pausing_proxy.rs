//! An HTTP proxy on 127.0.0.1 in front of the SeaweedFS test server that
//! stops one request of a client in its tracks, so that a test can
//! `kill -9` the client at exactly that step of a protocol:
//! - [`Hold::BeforeServer`]: the request never reaches the server;
//! - [`Hold::AfterServer`]: the server carried it out and answered, and the
//!   answer never reaches the client (it took effect; nobody was told);
//! - [`Hold::MidAnswer`]: the client hears the answer's head and half its
//!   body, then nothing more (a download in the middle);
//! - [`Hold::UntilReleased`]: the request waits until [`Proxy::release`],
//!   then goes on (what others do meanwhile happens between the client's
//!   previous request and this one).
//!
//! With [`Trap::later_ones_wait`], the client's later requests of that kind
//! (its retries) wait until [`Proxy::release`]. Everything else passes
//! through untouched. Each connection carries one request (`Connection:
//! close` is added, an unsigned header).

use std::io::{BufReader, Read, Write};
use std::net::TcpStream;
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use super::http_head::{forward, listen, read_request};
use super::project::Project;
use super::seaweed;

/// Where the trapped request stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hold {
    /// Before it is sent to the server.
    BeforeServer,
    /// After the server answered, before the client hears the answer.
    AfterServer,
    /// After the client heard the answer's head and half its body.
    MidAnswer,
    /// Until [`Proxy::release`]; then it is relayed as any other.
    UntilReleased,
}

/// Which request to stop: the first `method` request whose request line
/// contains `path_contains`, once a request containing `armed_by` has passed.
#[derive(Debug, Clone)]
pub struct Trap {
    /// `PUT`, `GET`, ...
    pub method: &'static str,
    /// A substring of the request line (path and query).
    pub path_contains: String,
    /// The trap is armed once a request line containing this has passed.
    pub armed_by: String,
    /// Where the request stops.
    pub hold: Hold,
    /// Requests the trap would match, after it caught its one, wait until
    /// [`Proxy::release`] (a retry of the caught request cannot then
    /// overtake what the test does meanwhile).
    pub later_ones_wait: bool,
}

/// A running proxy; it serves until the test binary exits.
pub struct Proxy {
    /// `http://127.0.0.1:PORT`
    pub endpoint: String,
    caught: Receiver<String>,
    state: Arc<(Mutex<State>, Condvar)>,
}

impl Proxy {
    /// Waits until the trap has caught its request; returns its request line.
    pub fn wait_caught(&self, within: Duration) -> String {
        self.caught
            .recv_timeout(within)
            .expect("the trapped request never came")
    }

    /// Lets the requests waiting under [`Trap::later_ones_wait`] (and any
    /// later ones) through.
    pub fn release(&self) {
        let (state, released) = &*self.state;
        state.lock().unwrap().released = true;
        released.notify_all();
    }
}

impl Drop for Proxy {
    /// Lets waiting requests through, so a test that failed before its
    /// own [`Proxy::release`] leaves no connection held.
    fn drop(&mut self) {
        self.release();
    }
}

#[derive(Default)]
struct State {
    armed: bool,
    fired: bool,
    released: bool,
}

/// Starts a proxy to `upstream` (`http://127.0.0.1:PORT`) with one trap.
pub fn start(upstream: &str, trap: Trap) -> Proxy {
    let (tell, caught) = channel();
    let state = Arc::new((Mutex::new(State::default()), Condvar::new()));
    let shared = state.clone();
    let endpoint = listen(upstream, move |client, upstream| {
        serve(client, upstream, &trap, &state, &tell)
    });
    Proxy {
        endpoint,
        caught,
        state: shared,
    }
}

/// Relays one request and its answer, unless it is the trapped one.
fn serve(
    client: TcpStream,
    upstream: &str,
    trap: &Trap,
    state: &(Mutex<State>, Condvar),
    tell: &Sender<String>,
) -> std::io::Result<()> {
    let (head, body) = read_request(&mut BufReader::new(client.try_clone()?))?;
    let line = head[0].clone();

    let trapped = {
        let (state, released) = state;
        let mut state = state.lock().unwrap();
        let matches =
            line.starts_with(&format!("{} ", trap.method)) && line.contains(&trap.path_contains);
        if matches && state.fired && trap.later_ones_wait {
            let _state = released.wait_while(state, |state| !state.released).unwrap();
            false
        } else {
            let hit = state.armed && !state.fired && matches;
            state.fired |= hit;
            // Armed after the arming request passed, not by it.
            state.armed |= line.contains(&trap.armed_by);
            hit
        }
    };
    if trapped && trap.hold == Hold::BeforeServer {
        let _ = tell.send(line);
        return park(client);
    }
    let trapped = if trapped && trap.hold == Hold::UntilReleased {
        let _ = tell.send(line.clone());
        let (state, released) = state;
        let _state = released
            .wait_while(state.lock().unwrap(), |state| !state.released)
            .unwrap();
        false
    } else {
        trapped
    };

    let mut server = forward(upstream, &head, &body)?;
    let mut answer = Vec::new();
    server.read_to_end(&mut answer)?;
    let mut client = client;
    if trapped {
        if trap.hold == Hold::MidAnswer {
            let body = answer
                .windows(4)
                .position(|window| window == b"\r\n\r\n")
                .map_or(0, |end| end + 4);
            client.write_all(&answer[..body + (answer.len() - body) / 2])?;
            client.flush()?;
        }
        let _ = tell.send(line);
        return park(client);
    }
    client.write_all(&answer)?;
    client.flush()
}

/// Keeps the client's connection open and silent until the client is gone.
fn park(client: TcpStream) -> std::io::Result<()> {
    let mut client = client;
    let mut byte = [0u8; 1];
    // Returns when the killed client's socket closes.
    while client.read(&mut byte)? > 0 {}
    Ok(())
}

/// Another clone of `reader` (on the SeaweedFS test server) whose requests
/// go through a proxy with `trap`; `settings` are added to its
/// `[datastore]` table.
pub fn trapped_clone_with(reader: &Project, trap: Trap, settings: &str) -> (Project, Proxy) {
    let clone = reader.another_clone();
    let proxy = route_through(&clone, trap, settings);
    (clone, proxy)
}

/// Sends the requests of `project` (on the SeaweedFS test server) through
/// a proxy with `trap` from now on; `settings` are added to its
/// `[datastore]` table.
pub fn route_through(project: &Project, trap: Trap, settings: &str) -> Proxy {
    let proxy = start(&seaweed::server().endpoint, trap);
    let toml = project.path().join("silt.toml");
    let text = std::fs::read_to_string(&toml).unwrap();
    let text = text
        .replace(&seaweed::server().endpoint, &proxy.endpoint)
        .replacen("[datastore]\n", &format!("[datastore]\n{settings}"), 1);
    std::fs::write(&toml, text).unwrap();
    proxy
}

/// [`trapped_clone_with`] with no extra settings.
pub fn trapped_clone(reader: &Project, trap: Trap) -> (Project, Proxy) {
    trapped_clone_with(reader, trap, "")
}
