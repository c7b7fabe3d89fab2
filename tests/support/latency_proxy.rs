//! An HTTP proxy on 127.0.0.1 that puts a real cloud's distance between a
//! client and a store on the same machine (the kernel here has no netem):
//! each request waits half the round trip before it is relayed and half
//! before its answer, and the bytes each way can be capped to a link's
//! bandwidth (one link each way, shared by every request, first come first
//! served). It keeps when each request started and ended, so a benchmark
//! can tell how many requests a scenario made **in sequence**
//! ([`critical_path`]): at a round trip of R, no client can finish in less
//! than that many R. Each connection carries one request (`Connection:
//! close` is added, an unsigned header).

use std::io::{BufReader, Read as _, Write as _};
use std::net::TcpStream;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::http_head::{forward, listen, read_request};

/// One request relayed: when it reached the proxy and when its answer was
/// sent, and the bytes each way.
#[derive(Debug, Clone)]
pub struct Interval {
    /// The request line.
    pub line: String,
    /// When the request had arrived whole.
    pub start: Instant,
    /// When its answer had been written back.
    pub end: Instant,
    /// The request's body.
    pub bytes_up: u64,
    /// The answer, head included.
    pub bytes_down: u64,
}

/// The largest number of `intervals` that ran one after another, each
/// starting once the one before had ended: a lower bound, in round trips,
/// on the time they took.
pub fn critical_path(intervals: &[Interval]) -> usize {
    critical_path_of(
        intervals
            .iter()
            .map(|interval| (interval.start, interval.end)),
    )
}

/// The same over `(start, end)` spans (activity selection: by end, each
/// that starts after the last one taken).
pub fn critical_path_of(spans: impl IntoIterator<Item = (Instant, Instant)>) -> usize {
    let mut by_end: Vec<(Instant, Instant)> = spans.into_iter().collect();
    by_end.sort_by_key(|&(_, end)| end);
    let mut chain = 0;
    let mut last_end: Option<Instant> = None;
    for (start, end) in by_end {
        if last_end.is_none_or(|last| start >= last) {
            chain += 1;
            last_end = Some(end);
        }
    }
    chain
}

/// What the proxy adds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Distance {
    /// The round trip every request pays (half before, half after).
    pub rtt: Duration,
    /// Bytes per second each way; `None` for no cap.
    pub bandwidth: Option<u64>,
}

#[derive(Default)]
struct State {
    distance: Distance,
    log: Vec<Interval>,
    /// When each direction's link is next free.
    up_free: Option<Instant>,
    down_free: Option<Instant>,
}

/// A running proxy; it serves until the process exits.
pub struct LatencyProxy {
    /// `http://127.0.0.1:PORT`
    pub endpoint: String,
    state: Arc<Mutex<State>>,
}

impl LatencyProxy {
    /// Starts a proxy to `upstream` (`http://127.0.0.1:PORT`) adding
    /// nothing yet.
    pub fn start(upstream: &str) -> Self {
        let state = Arc::new(Mutex::new(State::default()));
        let shared = state.clone();
        let endpoint = listen(upstream, move |client, upstream| {
            serve(client, upstream, &shared)
        });
        Self { endpoint, state }
    }

    /// What every request from now on pays.
    pub fn set(&self, distance: Distance) {
        self.state.lock().unwrap().distance = distance;
    }

    /// The requests relayed since the last call, in the order they ended.
    pub fn take_log(&self) -> Vec<Interval> {
        std::mem::take(&mut self.state.lock().unwrap().log)
    }
}

/// Books `bytes` on a link free from `*free` at `bandwidth`; returns when
/// they are through.
fn book(free: &mut Option<Instant>, bytes: u64, bandwidth: Option<u64>) -> Option<Instant> {
    let rate = bandwidth.filter(|rate| *rate > 0)?;
    let now = Instant::now();
    let begin = free.filter(|free| *free > now).unwrap_or(now);
    let through = begin + Duration::from_secs_f64(bytes as f64 / rate as f64);
    *free = Some(through);
    Some(through)
}

fn sleep_until(when: Option<Instant>) {
    if let Some(when) = when {
        std::thread::sleep(when.saturating_duration_since(Instant::now()));
    }
}

/// Relays one request and its answer, each half of the round trip apart,
/// each direction's bytes paced by its link; logged however it ended, and
/// before the client's connection closes (a client that has read its
/// answer to the end finds it in the log).
fn serve(mut client: TcpStream, upstream: &str, state: &Mutex<State>) -> std::io::Result<()> {
    let (head, body) = read_request(&mut BufReader::new(client.try_clone()?))?;
    let start = Instant::now();
    let relayed = relay(&mut client, upstream, &head, &body, state);
    state.lock().unwrap().log.push(Interval {
        line: head[0].clone(),
        start,
        end: Instant::now(),
        bytes_up: body.len() as u64,
        bytes_down: *relayed.as_ref().unwrap_or(&0),
    });
    relayed.map(|_| ())
}

/// The relay itself; answers the bytes sent back.
fn relay(
    client: &mut TcpStream,
    upstream: &str,
    head: &[String],
    body: &[u8],
    state: &Mutex<State>,
) -> std::io::Result<u64> {
    let (distance, up) = {
        let mut state = state.lock().unwrap();
        let distance = state.distance;
        let up = book(&mut state.up_free, body.len() as u64, distance.bandwidth);
        (distance, up)
    };
    std::thread::sleep(distance.rtt / 2);
    sleep_until(up);
    let mut server = forward(upstream, head, body)?;
    let mut answer = Vec::new();
    // A server that answers before reading the body (SeaweedFS refusing a
    // precondition) closes with the body unread, which resets the
    // connection: its answer has arrived whole before the reset.
    if let Err(err) = server.read_to_end(&mut answer)
        && answer.is_empty()
    {
        return Err(err);
    }
    let down = book(
        &mut state.lock().unwrap().down_free,
        answer.len() as u64,
        distance.bandwidth,
    );
    std::thread::sleep(distance.rtt / 2);
    sleep_until(down);
    client.write_all(&answer)?;
    client.flush()?;
    Ok(answer.len() as u64)
}
