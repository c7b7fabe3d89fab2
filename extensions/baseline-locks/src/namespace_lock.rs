//! The namespace lock every commit takes (the SDK's `lease` protocol):
//! retried every second up to a maximum wait, as today's datastores do.
//!
//! One lock object serves two purposes, told apart by the token's prefix:
//! `push-` for a commit (held for one pull-merge-push of the index) and
//! `ns-` for a structural namespace lease (held by the host).

use std::time::Duration;

use silt_extension::clock;
use silt_extension::layout::NAMESPACE_LOCK_KEY;
use silt_extension::lease;
use silt_extension::lock_object::{self, HolderBody, ScopeBody};
use silt_extension::silt::datastore::types::{Error, Holder};

/// Token prefix of a commit's hold.
const PUSH: &str = "push-";
/// Token prefix of a structural namespace lease.
pub const STRUCTURAL: &str = "ns-";

/// How long to wait between attempts (today's datastores: 1 s).
const RETRY: Duration = Duration::from_secs(1);

/// A namespace lock this call holds for a commit.
pub struct Held {
    token: String,
}

/// Takes the namespace lock for a commit, waiting (retry every second) up
/// to twice the TTL (60 s at the default 30 s); `lock-held` naming the
/// holder after that.
pub fn acquire_for_push(holder: &Holder, ttl_ms: u32) -> Result<Held, Error> {
    let holder = HolderBody::from_wit(holder);
    let started = clock::now_ms();
    let max_wait = 2 * u64::from(ttl_ms);
    loop {
        let mut body = lease::new_body(ScopeBody::Namespace, &holder, ttl_ms);
        body.token = format!("{PUSH}{}", body.token);
        match lease::create_or_take_over(NAMESPACE_LOCK_KEY, &mut body, 0)? {
            Ok(_) => return Ok(Held { token: body.token }),
            Err(current) if clock::now_ms().saturating_sub(started) >= max_wait => {
                return Err(lock_object::held(&current));
            }
            Err(_) => std::thread::sleep(RETRY),
        }
    }
}

/// Renews the hold (a long pull may have used part of the TTL).
pub fn heartbeat(held: &Held) -> Result<(), Error> {
    lease::renew_held(NAMESPACE_LOCK_KEY, &held.token).map(|_| ())
}

/// Releases the hold. Best effort: a lock left behind goes stale after its TTL.
pub fn release(held: &Held) {
    let _ = lease::release_held(NAMESPACE_LOCK_KEY, &held.token);
}
