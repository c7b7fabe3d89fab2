//! The worker protocol: length-prefixed postcard frames over the worker's
//! stdin (host → worker) and stdout (worker → host). stderr is the worker's
//! log, which the host re-logs.
//!
//! A conversation:
//! 1. host: its [`PROTOCOL_VERSION`] (a bare `u32`, so that it decodes
//!    whatever else changed), then [`WorkerStart`]; worker:
//!    [`FromWorker::Ready`] once the bundle
//!    is checked and loaded (or [`FromWorker::Failed`] saying why not);
//! 2. host: [`ToWorker::Call`]; the worker runs it in a fresh instance and,
//!    while it runs, sends [`FromWorker::Import`] for every object-store call
//!    (answered by [`ToWorker::Import`]) and [`FromWorker::Notify`] for log
//!    and progress (not answered); finally [`FromWorker::Done`];
//! 3. repeat 2, or close stdin: the worker exits.
//!
//! The worker is one call at a time, so no message needs an id.

use std::io::{self, Read, Write};
use std::path::PathBuf;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use crate::capabilities::{Settings, StoreCall, StoreReply};
use crate::config::RuntimeConfig;
use crate::runtime::RuntimeError;
use crate::runtime::bindings::silt::datastore::log::Level;
use crate::runtime::call::{ExportCall, ExportReply};

/// Bumped whenever a message changes; host and worker must agree.
pub const PROTOCOL_VERSION: u32 = 6;

/// Frames larger than this are refused: objects moved whole through
/// `get`/`put` are small (bulk data never crosses the pipe), and a guest's
/// memory is capped far below it.
pub const MAX_FRAME_BYTES: usize = 512 << 20;

/// The second message, after the host's [`PROTOCOL_VERSION`] (a bare
/// `u32`): what to load and under which limits.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WorkerStart {
    /// The bundle's manifest, as the worker sees it.
    pub manifest: PathBuf,
    /// The bundle's artifact, as the worker sees it.
    pub artifact: PathBuf,
    /// The extension the host expects the bundle to hold.
    pub extension: String,
    /// sha256 of the component the host expects.
    pub component_sha256: String,
    /// Limits of every call (the same as in-process).
    pub runtime: RuntimeConfig,
    /// The extension's cache directory as the worker sees it, if granted.
    pub cache_dir: Option<PathBuf>,
    /// The project's settings for the extension (its `config` import).
    pub settings: Settings,
    /// `tracing` filter of the worker's own log.
    pub log_filter: String,
}

/// Host → worker.
#[derive(Debug, Serialize, Deserialize)]
pub enum ToWorker {
    /// Run one export in a fresh instance (boxed: a call is far larger
    /// than an import answer).
    Call(Box<ExportCall>),
    /// The answer to the worker's last [`FromWorker::Import`].
    Import(StoreReply),
}

/// Worker → host.
#[derive(Debug, Serialize, Deserialize)]
pub enum FromWorker {
    /// The bundle is loaded; calls may come.
    Ready,
    /// The worker cannot serve (bundle rejected, engine failed); it exits.
    Failed(String),
    /// The guest called an object-store import; answer with [`ToWorker::Import`].
    Import(StoreCall),
    /// The guest logged or reported progress; no answer.
    Notify(Notification),
    /// The call finished.
    Done(Result<ExportReply, WireError>),
}

/// A `log` or `progress` import call: one-way.
#[allow(missing_docs)] // Each variant is the WIT function of the same name.
#[derive(Debug, Serialize, Deserialize)]
pub enum Notification {
    Log {
        level: Level,
        message: String,
    },
    ProgressBegin {
        label: String,
        total_items: Option<u64>,
        total_bytes: Option<u64>,
    },
    ProgressAdvance {
        items: u64,
        bytes: u64,
    },
    ProgressFinish,
    /// Log lines the guest wrote past its budget (not sent): the host says
    /// how many, as it does in process.
    LogsDropped {
        count: u64,
    },
}

/// A [`RuntimeError`] of a call, as it crosses the pipe. The host knows the
/// extension and the function, so they are not sent.
#[allow(missing_docs)] // Mirrors `RuntimeError`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum WireError {
    Trap {
        trap: String,
        stderr: String,
    },
    DeadlineExceeded {
        deadline_ms: u64,
        store_budget_ms: Option<u64>,
    },
    MemoryLimitExceeded {
        limit_mib: u64,
    },
    Instantiate {
        detail: String,
    },
    Host {
        detail: String,
    },
    Other {
        message: String,
    },
}

impl WireError {
    /// The wire form of `err`.
    pub fn from_runtime(err: &RuntimeError) -> Self {
        match err {
            RuntimeError::Trap { trap, stderr, .. } => Self::Trap {
                trap: trap.clone(),
                stderr: stderr.clone(),
            },
            RuntimeError::DeadlineExceeded {
                deadline_ms,
                store_budget_ms,
                ..
            } => Self::DeadlineExceeded {
                deadline_ms: *deadline_ms,
                store_budget_ms: *store_budget_ms,
            },
            RuntimeError::MemoryLimitExceeded { limit_mib, .. } => Self::MemoryLimitExceeded {
                limit_mib: *limit_mib,
            },
            RuntimeError::Instantiate { detail, .. } => Self::Instantiate {
                detail: detail.clone(),
            },
            RuntimeError::Host { detail, .. } => Self::Host {
                detail: detail.clone(),
            },
            other => Self::Other {
                message: other.to_string(),
            },
        }
    }

    /// The host's [`RuntimeError`] for this failure of `function` in `extension`.
    pub fn into_runtime(self, extension: &str, function: &'static str) -> RuntimeError {
        // A worker whose guest escaped could write anything here.
        let safe = |text: String| crate::runtime::guest_text_limited(&text, 8 << 10);
        let extension = extension.to_owned();
        match self {
            Self::Trap { trap, stderr } => RuntimeError::Trap {
                extension,
                function,
                trap: safe(trap),
                // Line by line, as in process: a panic's message keeps its
                // lines, each escaped.
                stderr: crate::runtime::guest_lines(&stderr, 16, 4096),
            },
            Self::DeadlineExceeded {
                deadline_ms,
                store_budget_ms,
            } => RuntimeError::DeadlineExceeded {
                extension,
                function,
                deadline_ms,
                store_budget_ms,
            },
            Self::MemoryLimitExceeded { limit_mib } => RuntimeError::MemoryLimitExceeded {
                extension,
                function,
                limit_mib,
            },
            Self::Instantiate { detail } => RuntimeError::Instantiate {
                extension,
                detail: safe(detail),
            },
            Self::Host { detail } => RuntimeError::Host {
                extension,
                function,
                detail: safe(detail),
            },
            Self::Other { message } => RuntimeError::Host {
                extension,
                function,
                detail: safe(message),
            },
        }
    }
}

fn encode<T: Serialize>(message: &T) -> io::Result<Vec<u8>> {
    let body = postcard::to_allocvec(message)
        .map_err(|err| io::Error::new(io::ErrorKind::InvalidData, err))?;
    if body.len() > MAX_FRAME_BYTES {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("message of {} bytes exceeds the frame limit", body.len()),
        ));
    }
    let mut frame = Vec::with_capacity(4 + body.len());
    frame.extend_from_slice(&(body.len() as u32).to_le_bytes());
    frame.extend_from_slice(&body);
    Ok(frame)
}

fn frame_len(header: [u8; 4]) -> io::Result<usize> {
    let len = u32::from_le_bytes(header) as usize;
    if len > MAX_FRAME_BYTES {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("frame of {len} bytes exceeds the limit of {MAX_FRAME_BYTES}"),
        ));
    }
    Ok(len)
}

fn decode<T: DeserializeOwned>(body: &[u8]) -> io::Result<T> {
    postcard::from_bytes(body).map_err(|err| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("malformed message: {err}"),
        )
    })
}

/// Writes one message (blocking; the worker's side).
///
/// # Errors
/// When the pipe is closed or the message too large.
pub fn write_message<T: Serialize>(writer: &mut impl Write, message: &T) -> io::Result<()> {
    writer.write_all(&encode(message)?)?;
    writer.flush()
}

/// Reads one message (blocking); `None` when the peer closed the pipe
/// between messages.
///
/// # Errors
/// When the pipe breaks mid-message or the message is malformed.
pub fn read_message<T: DeserializeOwned>(reader: &mut impl Read) -> io::Result<Option<T>> {
    let mut header = [0u8; 4];
    match reader.read_exact(&mut header) {
        Ok(()) => {}
        Err(err) if err.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(err) => return Err(err),
    }
    // Grown as bytes arrive, not allocated from the header: a peer that
    // announces 512 MiB and sends 4 bytes costs 4 bytes.
    let len = frame_len(header)?;
    let mut body = Vec::new();
    reader.take(len as u64).read_to_end(&mut body)?;
    if body.len() < len {
        return Err(io::ErrorKind::UnexpectedEof.into());
    }
    decode(&body).map(Some)
}

/// Writes one message (the host's side).
///
/// # Errors
/// When the pipe is closed or the message too large.
pub async fn send<T: Serialize>(
    writer: &mut (impl tokio::io::AsyncWrite + Unpin),
    message: &T,
) -> io::Result<()> {
    writer.write_all(&encode(message)?).await?;
    writer.flush().await
}

/// Reads one message (the host's side); `None` when the worker closed its
/// stdout between messages (it exited).
///
/// # Errors
/// When the pipe breaks mid-message or the message is malformed.
pub async fn receive<T: DeserializeOwned>(
    reader: &mut (impl tokio::io::AsyncRead + Unpin),
) -> io::Result<Option<T>> {
    let mut header = [0u8; 4];
    match reader.read_exact(&mut header).await {
        Ok(_) => {}
        Err(err) if err.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(err) => return Err(err),
    }
    let len = frame_len(header)?;
    let mut body = Vec::new();
    tokio::io::AsyncReadExt::take(reader, len as u64)
        .read_to_end(&mut body)
        .await?;
    if body.len() < len {
        return Err(io::ErrorKind::UnexpectedEof.into());
    }
    decode(&body).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_frame_announced_larger_than_it_is_fails_without_waiting_for_it() {
        // The header claims the largest frame; four bytes follow.
        let mut frame = (MAX_FRAME_BYTES as u32).to_le_bytes().to_vec();
        frame.extend_from_slice(&[1, 2, 3, 4]);
        let err = read_message::<ToWorker>(&mut frame.as_slice()).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
    }

    #[test]
    fn a_message_round_trips_and_eof_between_frames_is_none() {
        let mut buffer = Vec::new();
        let call = ToWorker::Call(Box::new(ExportCall::HydrateFile {
            path: "data/a/b/c".into(),
        }));
        write_message(&mut buffer, &call).unwrap();
        let mut reader = buffer.as_slice();
        let read: ToWorker = read_message(&mut reader).unwrap().unwrap();
        assert!(
            matches!(read, ToWorker::Call(call) if matches!(&*call, ExportCall::HydrateFile { path } if path == "data/a/b/c"))
        );
        assert!(read_message::<ToWorker>(&mut reader).unwrap().is_none());
    }

    #[test]
    fn a_description_keeps_its_feature_flags_across_the_pipe() {
        use crate::runtime::bindings::{Description, Features};
        let features = Features::SCOPED_SYNC | Features::LAZY_HYDRATION | Features::GC;
        let reply = FromWorker::Done(Ok(ExportReply::Describe(Description {
            name: "x".into(),
            version: "1.0.0".into(),
            features,
        })));
        let mut buffer = Vec::new();
        write_message(&mut buffer, &reply).unwrap();
        let read: FromWorker = read_message(&mut buffer.as_slice()).unwrap().unwrap();
        let FromWorker::Done(Ok(ExportReply::Describe(description))) = read else {
            panic!("{read:?}");
        };
        assert_eq!(description.features, features);
        assert!(!description.features.contains(Features::MODEL_LOCKS));
    }

    #[test]
    fn oversized_and_truncated_frames_are_errors() {
        let mut reader: &[u8] = &u32::MAX.to_le_bytes();
        let err = read_message::<ToWorker>(&mut reader).unwrap_err();
        assert!(err.to_string().contains("exceeds the limit"), "{err}");
        let mut reader: &[u8] = &[8, 0, 0, 0, 1, 2];
        assert!(read_message::<ToWorker>(&mut reader).is_err());
    }
}
