//! The WASI calls the SDK makes itself, beside what Rust's std
//! (wasi-libc) makes for it: the bindings (`wit/direct.wit`) and the
//! cache's preopened directory they work in.
//!
//! Why: std's file operations go through wasi-libc, which turns one
//! operation into several host calls (a `stat` is `stat-at` then
//! `metadata-hash-at`; a write is a stream, a readiness check, the write
//! and a flush), and the host hands each file-system call to a thread of
//! its own pool. The SDK makes such calls for every model a pull touches,
//! so it asks for what it needs in one call where one will do
//! ([`crate::wasi_stat`], [`crate::wasi_file`]).

wit_bindgen::generate!({
    path: "wit",
    world: "silt:sdk-wasi/direct",
    generate_all,
});

pub(crate) use wasi::filesystem::types::{
    Descriptor, DescriptorFlags, DescriptorType, ErrorCode, OpenFlags, PathFlags,
};

use crate::layout::CACHE_ROOT;

thread_local! {
    /// The cache's preopened directory, asked for once per instance (each
    /// `get-directories` makes new handles).
    static CACHE: Option<Descriptor> = if cfg!(target_arch = "wasm32") {
        wasi::filesystem::preopens::get_directories()
            .into_iter()
            .find(|(_, path)| path == CACHE_ROOT)
            .map(|(dir, _)| dir)
    } else {
        // Off wasm (the SDK's native unit tests) the imports are stubs.
        None
    };
}

/// Runs `call` on the cache's preopened directory and the path of
/// `relative` (a path in the cache) within it; `None` when there is no
/// such directory (off wasm, or outside silt): the caller asks std.
pub(crate) fn with_cache_dir<T>(
    relative: &str,
    call: impl FnOnce(&Descriptor, &str) -> T,
) -> Option<T> {
    CACHE.with(|cache| {
        // As wasi-libc resolves `/cache//x`: relative to the preopen.
        cache
            .as_ref()
            .map(|cache| call(cache, relative.trim_start_matches('/')))
    })
}

/// A WASI error as an `std::io::Error` of the kind std gives the same
/// failure, named as WASI names it (`no-entry`, `read-only`, ...).
pub(crate) fn to_io_error(code: ErrorCode) -> std::io::Error {
    use std::io::ErrorKind;
    let kind = match code {
        ErrorCode::NoEntry => ErrorKind::NotFound,
        ErrorCode::Exist => ErrorKind::AlreadyExists,
        ErrorCode::Access | ErrorCode::NotPermitted => ErrorKind::PermissionDenied,
        ErrorCode::ReadOnly => ErrorKind::ReadOnlyFilesystem,
        ErrorCode::IsDirectory => ErrorKind::IsADirectory,
        ErrorCode::NotDirectory => ErrorKind::NotADirectory,
        ErrorCode::NotEmpty => ErrorKind::DirectoryNotEmpty,
        ErrorCode::InsufficientSpace => ErrorKind::StorageFull,
        ErrorCode::InsufficientMemory => ErrorKind::OutOfMemory,
        ErrorCode::Quota => ErrorKind::QuotaExceeded,
        ErrorCode::FileTooLarge => ErrorKind::FileTooLarge,
        ErrorCode::Busy | ErrorCode::TextFileBusy => ErrorKind::ResourceBusy,
        ErrorCode::WouldBlock => ErrorKind::WouldBlock,
        ErrorCode::Interrupted => ErrorKind::Interrupted,
        ErrorCode::CrossDevice => ErrorKind::CrossesDevices,
        ErrorCode::NameTooLong => ErrorKind::InvalidFilename,
        ErrorCode::Unsupported => ErrorKind::Unsupported,
        ErrorCode::Invalid => ErrorKind::InvalidInput,
        _ => ErrorKind::Other,
    };
    std::io::Error::new(kind, code.name())
}
