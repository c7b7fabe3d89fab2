//! A cache file's size and modification time in one WASI call.
//!
//! Why not `std::fs::metadata`: wasi-libc's `stat` makes two host calls,
//! `stat-at` and then `metadata-hash-at` (to fill `st_ino`), and the host
//! hands each to a thread of its own pool. A stamp needs neither the inode
//! nor the device, and hydration stamps every file it lands, so the second
//! call was one hand-off per file. This asks `stat-at` alone, on the same
//! preopened directory and with the same flags (symlinks followed, as
//! `metadata` does), so the answer is the same.

wit_bindgen::generate!({
    path: "wit",
    world: "silt:sdk-wasi/direct",
    generate_all,
});

use wasi::filesystem::types::{Descriptor, DescriptorType, PathFlags};

use crate::layout::CACHE_ROOT;

thread_local! {
    /// The cache's preopened directory, asked for once per instance (each
    /// `get-directories` makes new handles).
    static CACHE: Option<Descriptor> = wasi::filesystem::preopens::get_directories()
        .into_iter()
        .find(|(_, path)| path == CACHE_ROOT)
        .map(|(dir, _)| dir);
}

/// What a stat of `relative` (a path in the cache) found.
pub(crate) enum Stat {
    /// A regular file: its size and modification time in nanoseconds
    /// since the epoch (0 when the platform keeps none).
    File { size: u64, mtime_ns: u64 },
    /// Missing, not a regular file, or unreadable.
    NotAFile,
    /// No preopened cache directory to ask (outside silt): ask std.
    Unavailable,
}

/// `relative`'s size and modification time, following symlinks.
pub(crate) fn stat(relative: &str) -> Stat {
    if !cfg!(target_arch = "wasm32") {
        // Off wasm (the SDK's native unit tests) the imports are stubs.
        return Stat::Unavailable;
    }
    CACHE.with(|cache| {
        let Some(cache) = cache else {
            return Stat::Unavailable;
        };
        // As wasi-libc resolves `/cache//x`: relative to the preopen.
        match cache.stat_at(PathFlags::SYMLINK_FOLLOW, relative.trim_start_matches('/')) {
            Ok(stat) if stat.type_ == DescriptorType::RegularFile => Stat::File {
                size: stat.size,
                mtime_ns: stat.data_modification_timestamp.map_or(0, |time| {
                    time.seconds
                        .saturating_mul(1_000_000_000)
                        .saturating_add(u64::from(time.nanoseconds))
                }),
            },
            _ => Stat::NotAFile,
        }
    })
}
