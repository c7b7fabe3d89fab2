//! Time, randomness and waiting, from the WASI clocks and random the host grants.

use std::hash::BuildHasher;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// 128 random bits as 32 hex digits: owner tokens, write nonces, version suffixes.
///
/// ```ignore
/// let token = silt_extension::clock::random_hex();
/// assert_eq!(token.len(), 32);
/// ```
///
/// `RandomState` is seeded from `wasi:random` once per instance and differs
/// for every `new()`, so two calls never repeat and two processes never share.
pub fn random_hex() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let a = std::collections::hash_map::RandomState::new().hash_one(nanos);
    let b = std::collections::hash_map::RandomState::new().hash_one(a);
    format!("{a:016x}{b:016x}")
}

/// A new version token: commit time (sortable, 13 digits) and 64 random bits.
pub fn version_token() -> String {
    format!("{:013}-{}", now_ms(), &random_hex()[..16])
}

/// Sleeps before retry `attempt` (0-based) of a lost compare-and-swap:
/// full jitter over 10 ms × 2^attempt, capped at 500 ms.
pub fn backoff(attempt: u32) {
    let cap = (10u64 << attempt.min(6)).min(500);
    let random = u64::from_str_radix(&random_hex()[..8], 16).unwrap_or(0);
    std::thread::sleep(Duration::from_millis(1 + random % cap));
}
