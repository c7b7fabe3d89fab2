//! The guest's stdout and stderr, forwarded line by line to the host's log.
//!
//! Output never fills up or fails (a chatty extension must not trap because
//! of its logging); the last lines of stderr are kept so an error message
//! can show what the guest said before it failed (usually a panic message).
//! Every line is guest text: escaped ([`guest_text`]) and counted against
//! the instance's [`LogBudget`], shared with the `log` import, so a guest
//! cannot flood the user's terminal.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use super::guest_text::guest_text_limited;
use tokio::io::AsyncWrite;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};

/// Lines an instance may log (stdout and stderr lines and `log` calls
/// together); later ones are dropped and counted.
pub const MAX_LOG_LINES: u64 = 1000;

/// Longest line logged, in characters (the rest is dropped, and said so).
const MAX_LOGGED_CHARS: usize = 1024;

/// How many lines one instance has logged, shared by its output streams
/// and its `log` import.
#[derive(Clone, Default)]
pub struct LogBudget {
    counts: Arc<Mutex<LogCounts>>,
}

#[derive(Default)]
struct LogCounts {
    logged: u64,
    dropped: u64,
}

impl LogBudget {
    /// Takes one line from the budget: false when it is spent (the line is
    /// then dropped and counted).
    pub fn take(&self) -> bool {
        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        if counts.logged < MAX_LOG_LINES {
            counts.logged += 1;
            true
        } else {
            counts.dropped += 1;
            false
        }
    }

    /// How many lines were dropped since the last call; resets the count.
    pub fn take_dropped(&self) -> u64 {
        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        std::mem::take(&mut counts.dropped)
    }
}

/// Says how many log lines of `extension` were dropped, if any.
pub fn report_dropped(extension: &str, dropped: u64) {
    if dropped > 0 {
        tracing::warn!(
            target: "silt::extension",
            extension,
            "{dropped} more log lines dropped (at most {MAX_LOG_LINES} per operation are shown)"
        );
    }
}

/// A guest line as it may be logged: escaped and cut.
pub fn loggable(line: &str) -> String {
    guest_text_limited(line, MAX_LOGGED_CHARS)
}

/// Lines of stderr kept for error messages.
const TAIL_LINES: usize = 8;
/// Longest line forwarded; longer ones are cut (the rest is dropped).
const MAX_LINE: usize = 4096;

/// Which guest stream this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    /// The guest's stdout (logged at info).
    Stdout,
    /// The guest's stderr (logged at warn, tail kept).
    Stderr,
}

/// A `StdoutStream` that logs complete lines under the extension's name.
#[derive(Clone)]
pub struct GuestOutput {
    inner: Arc<Mutex<Inner>>,
}

struct Inner {
    extension: String,
    stream: Stream,
    budget: LogBudget,
    partial: Vec<u8>,
    tail: VecDeque<String>,
}

impl GuestOutput {
    /// A new stream for `extension`, logging within `budget`.
    pub fn new(extension: &str, stream: Stream, budget: LogBudget) -> Self {
        Self {
            inner: Arc::new(Mutex::new(Inner {
                extension: extension.to_owned(),
                stream,
                budget,
                partial: Vec::new(),
                tail: VecDeque::new(),
            })),
        }
    }

    /// Logs any unterminated last line and returns the last lines written.
    pub fn flush_and_tail(&self) -> String {
        let mut inner = self.inner.lock().expect("guest output poisoned");
        if !inner.partial.is_empty() {
            let line = std::mem::take(&mut inner.partial);
            inner.emit(&line);
        }
        inner.tail.iter().cloned().collect::<Vec<_>>().join("\n")
    }

    fn write(&self, bytes: &[u8]) {
        let mut inner = self.inner.lock().expect("guest output poisoned");
        for &byte in bytes {
            if byte == b'\n' {
                let line = std::mem::take(&mut inner.partial);
                inner.emit(&line);
            } else if inner.partial.len() < MAX_LINE {
                inner.partial.push(byte);
            }
        }
    }
}

impl Inner {
    fn emit(&mut self, line: &[u8]) {
        let line = String::from_utf8_lossy(line);
        let line = loggable(line.trim_end_matches('\r'));
        if self.stream == Stream::Stderr {
            if self.tail.len() == TAIL_LINES {
                self.tail.pop_front();
            }
            self.tail.push_back(line.clone());
        }
        if !self.budget.take() {
            return;
        }
        match self.stream {
            Stream::Stdout => {
                tracing::info!(target: "silt::extension", extension = %self.extension, "{line}")
            }
            Stream::Stderr => {
                tracing::warn!(target: "silt::extension", extension = %self.extension, "{line}")
            }
        }
    }
}

impl IsTerminal for GuestOutput {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for GuestOutput {
    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

impl AsyncWrite for GuestOutput {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.write(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}
