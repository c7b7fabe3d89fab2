//! A real OpenTelemetry collector on 127.0.0.1 for the telemetry tests:
//! rotel (`SILT_ROTEL`, installed by `cargo xtask test`, else by `cargo
//! xtask rotel` now), receiving OTLP over HTTP and handing what it decoded
//! to `rotel_otlp_json.py`, which writes it back as OTLP/JSON lines.

use std::io::{BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running collector; killed when dropped.
pub struct Collector {
    child: Child,
    /// Where it writes `traces.jsonl` and `metrics.jsonl`.
    pub dir: tempfile::TempDir,
    /// `http://127.0.0.1:PORT`, for `OTEL_EXPORTER_OTLP_ENDPOINT`.
    pub endpoint: String,
    port: u16,
}

/// The collector binary.
fn rotel_binary() -> PathBuf {
    match std::env::var_os("SILT_ROTEL") {
        Some(path) => PathBuf::from(path),
        None => super::xtask_path("rotel"),
    }
}

/// The name prefix of the harness's own spans.
const SENTINEL: &str = "silt-test-collector-sentinel";

/// An OTLP/JSON export of one span named `SENTINEL.mark`.
fn sentinel(mark: &str) -> Vec<u8> {
    format!(
        r#"{{"resourceSpans":[{{"scopeSpans":[{{"spans":[{{"traceId":"0af7651916cd43dd8448eb211c80319c","spanId":"b7ad6b7169203331","name":"{SENTINEL}.{mark}","kind":1,"startTimeUnixNano":"1","endTimeUnixNano":"2"}}]}}]}}]}}"#
    )
    .into_bytes()
}

/// A port free now (the collector binds it a moment later).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Collector {
    /// Starts a collector and waits until it answers an (empty) export.
    pub fn start() -> Self {
        let mut last = String::new();
        // A port taken between the look and the bind: try fresh ones.
        for _ in 0..3 {
            match Self::try_start() {
                Ok(collector) => return collector,
                Err(err) => last = err,
            }
        }
        panic!("the OTLP collector did not start: {last}");
    }

    fn try_start() -> Result<Self, String> {
        let dir = tempfile::tempdir().unwrap();
        let (port, grpc) = (free_port(), free_port());
        let processor = super::workspace_root().join("tests/support/rotel_otlp_json.py");
        let stderr = std::fs::File::create(dir.path().join("rotel.log")).unwrap();
        let child = Command::new(rotel_binary())
            .args(["start", "--otlp-http-endpoint"])
            .arg(format!("127.0.0.1:{port}"))
            .arg("--otlp-grpc-endpoint")
            .arg(format!("127.0.0.1:{grpc}"))
            .args(["--exporter", "blackhole", "--disable-batching"])
            .arg("--otlp-with-trace-processor")
            .arg(&processor)
            .arg("--otlp-with-metrics-processor")
            .arg(&processor)
            .env("SILT_COLLECTOR_DIR", dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .map_err(|err| format!("cannot start {}: {err}", rotel_binary().display()))?;
        let mut collector = Self {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
            dir,
            port,
        };
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(20) {
            if let Ok(Some(status)) = collector.child.try_wait() {
                return Err(format!("it exited ({status}): {}", collector.log()));
            }
            // Ready when what it is sent lands in its own directory (not
            // merely when something answers on the port: another test's
            // collector could have taken it).
            if collector.post("/v1/traces", &sentinel("ready")) == Some(200) {
                if collector.wait_for_sentinel("ready") {
                    return Ok(collector);
                }
                return Err(format!(
                    "port {port} answers but not for this collector: {}",
                    collector.log()
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Err(format!("no answer within 20 s: {}", collector.log()))
    }

    /// Waits until everything sent before now has been written: sends a
    /// marker span and waits for it (the collector writes what it receives
    /// in order of arrival). False after 10 s without it.
    pub fn settle(&self) -> bool {
        static MARKS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let mark = format!(
            "mark-{}",
            MARKS.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        );
        self.post("/v1/traces", &sentinel(&mark)) == Some(200) && self.wait_for_sentinel(&mark)
    }

    fn wait_for_sentinel(&self, mark: &str) -> bool {
        let started = Instant::now();
        let wanted = format!("{SENTINEL}.{mark}");
        while started.elapsed() < Duration::from_secs(10) {
            let text =
                std::fs::read_to_string(self.dir.path().join("traces.jsonl")).unwrap_or_default();
            if text.contains(&wanted) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    /// POSTs an OTLP/JSON body; the status code, if it answered.
    fn post(&self, path: &str, body: &[u8]) -> Option<u16> {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).ok()?;
        stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
        write!(
            stream,
            "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        )
        .ok()?;
        stream.write_all(body).ok()?;
        let head = super::http_head::read_head(&mut BufReader::new(stream)).ok()?;
        head.first()?.split_whitespace().nth(1)?.parse().ok()
    }

    /// What it wrote to `name` (`traces.jsonl`, `metrics.jsonl`) so far:
    /// whole lines only (one may be half written), the harness's own
    /// marker spans left out.
    pub fn received(&self, name: &str) -> String {
        let text = std::fs::read_to_string(self.dir.path().join(name)).unwrap_or_default();
        let whole = &text[..text.rfind('\n').map_or(0, |end| end + 1)];
        whole
            .lines()
            .filter(|line| !line.contains(SENTINEL))
            .map(|line| format!("{line}\n"))
            .collect()
    }

    /// Waits until `name` holds what `done` wants (exports are written as
    /// they arrive; a command's last one before it exits), at most 10 s.
    pub fn wait_for(&self, name: &str, done: impl Fn(&str) -> bool) -> String {
        let started = Instant::now();
        loop {
            let text = self.received(name);
            if done(&text) || started.elapsed() > Duration::from_secs(10) {
                return text;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The collector's own log.
    pub fn log(&self) -> String {
        let mut log = String::new();
        if let Ok(mut file) = std::fs::File::open(self.dir.path().join("rotel.log")) {
            let _ = file.read_to_string(&mut log);
        }
        log
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
