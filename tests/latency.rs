//! The benchmark's latency proxy (`support::latency_proxy`), which stands
//! for a real cloud's distance on this machine: it adds the round trip it
//! is set to, paces bytes to its bandwidth, and counts the requests a
//! client made in sequence. Only lower bounds on time are asserted.

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::support::latency_proxy::{Distance, Interval, LatencyProxy, critical_path};
use crate::support::seaweed;

/// Sends one request (a `body` of that many bytes) through `proxy` and
/// reads whatever answer comes (SeaweedFS refuses it unsigned).
fn request(proxy: &LatencyProxy, body: usize) -> Vec<u8> {
    let address = proxy.endpoint.trim_start_matches("http://");
    let mut stream = TcpStream::connect(address).unwrap();
    let head = format!(
        "PUT /latency-probe/x HTTP/1.1\r\nHost: {address}\r\nContent-Length: {body}\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(&vec![b'x'; body]).unwrap();
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    answer
}

fn interval(start_ms: u64, end_ms: u64, origin: Instant) -> Interval {
    Interval {
        line: String::new(),
        start: origin + Duration::from_millis(start_ms),
        end: origin + Duration::from_millis(end_ms),
        bytes_up: 0,
        bytes_down: 0,
    }
}

#[test]
fn the_critical_path_is_the_longest_chain_of_requests_one_after_another() {
    let t = Instant::now();
    assert_eq!(critical_path(&[]), 0);
    // Three in a row, each starting as the one before ends.
    let chain = [interval(0, 20, t), interval(20, 40, t), interval(40, 60, t)];
    assert_eq!(critical_path(&chain), 3);
    // Thirty-two at once are one round trip.
    let wave: Vec<Interval> = (0..32).map(|_| interval(0, 20, t)).collect();
    assert_eq!(critical_path(&wave), 1);
    // A long request beside a chain does not hide the chain (a renewal
    // running through a write's three steps).
    let mut write = chain.to_vec();
    write.push(interval(0, 60, t));
    assert_eq!(critical_path(&write), 3);
    // Two waves of a pool: two round trips.
    let mut waves: Vec<Interval> = (0..8).map(|_| interval(0, 20, t)).collect();
    waves.extend((0..8).map(|_| interval(21, 41, t)));
    assert_eq!(critical_path(&waves), 2);
}

#[test]
fn requests_through_the_proxy_pay_its_round_trip_and_its_bandwidth() {
    let proxy = LatencyProxy::start(&seaweed::server().endpoint);
    let rtt = Duration::from_millis(20);
    proxy.set(Distance {
        rtt,
        bandwidth: None,
    });
    let started = Instant::now();
    for _ in 0..3 {
        let answer = request(&proxy, 0);
        assert!(answer.starts_with(b"HTTP/1.1 "), "{answer:?}");
    }
    assert!(started.elapsed() >= rtt * 3, "{:?}", started.elapsed());
    let log = proxy.take_log();
    assert_eq!(log.len(), 3);
    assert_eq!(critical_path(&log), 3);

    // Eight at once, each a long round trip: one wave, not eight.
    proxy.set(Distance {
        rtt: Duration::from_millis(300),
        bandwidth: None,
    });
    let gate = std::sync::Arc::new(std::sync::Barrier::new(8));
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let gate = gate.clone();
            let endpoint = proxy.endpoint.clone();
            std::thread::spawn(move || {
                gate.wait();
                let address = endpoint.trim_start_matches("http://").to_owned();
                let mut stream = TcpStream::connect(&address).unwrap();
                let head = format!("GET /latency-probe HTTP/1.1\r\nHost: {address}\r\n\r\n");
                stream.write_all(head.as_bytes()).unwrap();
                let mut answer = Vec::new();
                stream.read_to_end(&mut answer).unwrap();
            })
        })
        .collect();
    threads
        .into_iter()
        .for_each(|thread| thread.join().unwrap());
    let log = proxy.take_log();
    assert_eq!(log.len(), 8);
    assert!(critical_path(&log) <= 2, "{log:?}");

    // 256 KiB up at 1 MiB/s: at least a quarter of a second.
    proxy.set(Distance {
        rtt: Duration::ZERO,
        bandwidth: Some(1 << 20),
    });
    let started = Instant::now();
    request(&proxy, 256 << 10);
    assert!(
        started.elapsed() >= Duration::from_millis(250),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(proxy.take_log()[0].bytes_up, 256 << 10);
}
