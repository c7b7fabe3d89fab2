//! A cache file's size and modification time in one WASI call.
//!
//! Why not `std::fs::metadata`: wasi-libc's `stat` makes two host calls,
//! `stat-at` and then `metadata-hash-at` (to fill `st_ino`), and the host
//! hands each to a thread of its own pool. A stamp needs neither the inode
//! nor the device, and hydration stamps every file it lands, so the second
//! call was one hand-off per file. This asks `stat-at` alone, on the same
//! preopened directory and with the same flags (symlinks followed, as
//! `metadata` does), so the answer is the same.

use crate::wasi_direct::{self, DescriptorType, PathFlags};

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
    wasi_direct::with_cache_dir(relative, |cache, path| {
        match cache.stat_at(PathFlags::SYMLINK_FOLLOW, path) {
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
    .unwrap_or(Stat::Unavailable)
}
