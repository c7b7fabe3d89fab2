//! A whole cache file read, or written, in as few WASI calls as it takes.
//!
//! Why not `std::fs`: `std::fs::read` is an open, a `stat` for the size
//! (two host calls in wasi-libc: `stat` and `metadata-hash`), a stream and
//! a read from it until its end; a write through a `File` is a stream, a
//! readiness check, the write and a flush. Each is a host call the host
//! hands to a thread of its pool, and a pull reads and saves a sidecar for
//! every model it touches. Here a read is the open and a positioned
//! `read` until one answers nothing; a write is the open and one
//! positioned `write` (more only if the host took less).

use crate::wasi_direct::{self, DescriptorFlags, OpenFlags, PathFlags};

/// The most one `read` asks for: what the host answers at most anyway
/// (wasmtime-wasi caps a read at 64 KiB).
const READ_CHUNK: u64 = 64 << 10;

/// The whole content of the cache file `relative` (symlinks followed, as
/// `std::fs::read`); `None` when there is no preopened cache to ask (off
/// wasm): the caller asks std.
pub(crate) fn read(relative: &str) -> Option<std::io::Result<Vec<u8>>> {
    wasi_direct::with_cache_dir(relative, |cache, path| {
        let file = cache
            .open_at(
                PathFlags::SYMLINK_FOLLOW,
                path,
                OpenFlags::empty(),
                DescriptorFlags::READ,
            )
            .map_err(wasi_direct::to_io_error)?;
        let mut content = Vec::new();
        loop {
            let (chunk, end) = file
                .read(READ_CHUNK, content.len() as u64)
                .map_err(wasi_direct::to_io_error)?;
            // Only an empty answer is certain to be the end: a short one
            // is the end on the file systems this runs on, but nothing
            // promises it.
            if chunk.is_empty() || end {
                content.extend_from_slice(&chunk);
                return Ok(content);
            }
            content.extend_from_slice(&chunk);
        }
    })
}

/// Creates (or truncates) the cache file `relative` and writes `bytes`
/// into it, then waits for the disk when `sync`; `None` when there is no
/// preopened cache (off wasm): the caller asks std. A missing directory
/// is `NotFound`, as std reports it. Unlike std's `File::create`, a
/// symlink at `relative` is not followed (the open fails): the SDK writes
/// only fresh temporary names and renames them into place.
pub(crate) fn write(relative: &str, bytes: &[u8], sync: bool) -> Option<std::io::Result<()>> {
    wasi_direct::with_cache_dir(relative, |cache, path| {
        let file = cache
            .open_at(
                PathFlags::empty(),
                path,
                OpenFlags::CREATE | OpenFlags::TRUNCATE,
                DescriptorFlags::WRITE,
            )
            .map_err(wasi_direct::to_io_error)?;
        let mut written = 0;
        while written < bytes.len() {
            let took = match file.write(&bytes[written..], written as u64) {
                Ok(took) => took,
                // As std's `write_all`: an interrupted write is tried again.
                Err(wasi_direct::ErrorCode::Interrupted) => continue,
                Err(err) => return Err(wasi_direct::to_io_error(err)),
            };
            if took == 0 {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::WriteZero,
                    "the file took no more bytes",
                ));
            }
            written += usize::try_from(took).expect("a write takes at most the bytes given");
        }
        if sync {
            file.sync().map_err(wasi_direct::to_io_error)?;
        }
        Ok(())
    })
}
