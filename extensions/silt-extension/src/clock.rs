//! Time, randomness and waiting, from the WASI clocks and random the host grants.
//!
//! ```no_run,standalone_crate
//! use silt_extension::clock;
//!
//! let now = clock::now_ms();
//! let token = clock::random_hex(); // proves a write or a lease is ours
//! let version = clock::version_token(); // names a new version of a file
//! # let _ = (now, token, version);
//! ```

use std::hash::BuildHasher;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch.
///
/// ```no_run,standalone_crate
/// use silt_extension::clock;
/// use silt_extension::silt::datastore::types::Lease;
///
/// fn expired(lease: &Lease) -> bool {
///     clock::now_ms() > lease.renewed_at + u64::from(lease.ttl_ms)
/// }
/// ```
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// 128 random bits as 32 hex digits: owner tokens, write nonces, version suffixes.
///
/// `RandomState` is seeded from `wasi:random` once per instance and differs
/// for every `new()`, so two calls never repeat and two processes never share.
///
/// ```no_run,standalone_crate
/// use silt_extension::clock;
/// use silt_extension::silt::datastore::object_store::PutMode;
/// use silt_extension::store::{self, Written};
/// # fn main() -> Result<(), silt_extension::silt::datastore::types::Error> {
/// let token = clock::random_hex();
/// assert_eq!(token.len(), 32);
/// // The token goes into the body, so the host can tell our retried write from another's.
/// let body = format!(r#"{{"owner":"{token}"}}"#);
/// if let Written::Lost = store::put_owned("_meta/owner.json", body.as_bytes(), &PutMode::Create, &token)? {
///     // someone else got there first
/// }
/// # Ok(()) }
/// ```
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
///
/// ```no_run,standalone_crate
/// use silt_extension::change::{Base, Change};
/// use silt_extension::clock;
///
/// let version = clock::version_token(); // e.g. `1767225600000-9f2c4e1a7b3d5c60`
/// assert_eq!(version.len(), 13 + 1 + 16);
/// let removal = Change::Remove { name: "old.bin".into(), version, base: Base::Any };
/// ```
pub fn version_token() -> String {
    format!("{:013}-{}", now_ms(), &random_hex()[..16])
}

/// Sleeps before retry `attempt` (0-based) of a lost compare-and-swap:
/// full jitter over 10 ms × 2^attempt, capped at 500 ms.
///
/// [`crate::store::retry_lost`] is this loop ready-made; written out, for
/// a generation counter raised by compare-and-swap:
///
/// ```no_run,standalone_crate
/// use silt_extension::clock;
/// use silt_extension::silt::datastore::object_store::PutMode;
/// use silt_extension::silt::datastore::types::Error;
/// use silt_extension::store::{self, Written};
///
/// fn next_generation() -> Result<u64, Error> {
///     const KEY: &str = "_meta/generation.json";
///     for attempt in 0..16 {
///         let (current, mode) = match store::get(KEY)? {
///             Some(found) => {
///                 let body: serde_json::Value =
///                     serde_json::from_slice(&found.data).map_err(|err| store::corrupt(KEY, err))?;
///                 (body["generation"].as_u64().unwrap_or(0), PutMode::Update(found.version))
///             }
///             None => (0, PutMode::Create),
///         };
///         let nonce = clock::random_hex();
///         let next = serde_json::json!({ "generation": current + 1, "nonce": nonce });
///         match store::put_owned(KEY, next.to_string().as_bytes(), &mode, &nonce)? {
///             Written::Landed(_) => return Ok(current + 1),
///             Written::Lost => clock::backoff(attempt),
///         }
///     }
///     Err(Error::PreconditionFailed(format!("{KEY}: kept changing; try again")))
/// }
/// ```
pub fn backoff(attempt: u32) {
    backoff_within(attempt, 10, 500);
}

/// Sleeps before retry `attempt` of a lost compare-and-swap on an object
/// that every loser reads again at once: full jitter over
/// `base_ms` × 2^attempt, capped at `cap_ms`.
///
/// A lost swap means another writer's landed: the object makes progress
/// every round, so long waits only leave it idle. [`backoff`]'s 500 ms
/// suits objects written rarely (a generation counter); a model's index
/// partition under many lease-free writers wants a short cap: with 16
/// writers on one model, 10 → 500 ms kept the partition idle most of the
/// 2–4 s they took.
pub fn backoff_within(attempt: u32, base_ms: u64, cap_ms: u64) {
    let cap = (base_ms.max(1) << attempt.min(10)).min(cap_ms.max(1));
    let random = u64::from_str_radix(&random_hex()[..8], 16).unwrap_or(0);
    std::thread::sleep(Duration::from_millis(1 + random % cap));
}

/// The time (ms since the epoch) in a token made by
/// [`version_token`], or `None` for any other string.
///
/// ```no_run,standalone_crate
/// use silt_extension::clock::token_ms;
/// assert_eq!(token_ms("1767225600000-9f2c4e1a7b3d5c60"), Some(1_767_225_600_000));
/// assert_eq!(token_ms("v1"), None);
/// ```
pub fn token_ms(token: &str) -> Option<u64> {
    let (ms, _) = token.split_once('-')?;
    (ms.len() == 13 && ms.bytes().all(|b| b.is_ascii_digit()))
        .then(|| ms.parse().ok())
        .flatten()
}
