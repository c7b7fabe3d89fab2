//! The clock of one extension call: what counts against its deadline, and
//! the watchdog that ends it when the deadline passes, whatever the guest
//! is doing.
//!
//! A call has two budgets:
//! - the **deadline** (`runtime.deadline_ms`) bounds the guest's own time:
//!   running wasm, sleeping or polling through WASI, anything but waiting
//!   on the object store;
//! - the **store budget** (`runtime.store_budget_ms`) bounds the wall-clock
//!   time its object-store requests and bulk transfers may take *on top of*
//!   the deadline. Hydrating a large model is legitimately long; once a
//!   call has used its store budget, further store time counts against the
//!   deadline like anything else.
//!
//! So every call ends within `deadline + store budget + grace` of wall
//! time. Two mechanisms enforce it: the epoch deadline callback traps the
//! guest while it runs wasm, and [`CallClock::expired`] (awaited beside the
//! call) cancels it while it waits in the host — a WASI sleep, a poll, a
//! store request — where no epoch can reach it.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a call may run past the deadline before it is cut: the
/// epoch callback normally stops a running guest first; this bounds a
/// guest blocked in the host. Every call ends within
/// `deadline + store budget + grace(deadline)`.
pub fn grace(deadline: Duration) -> Duration {
    (deadline / 10).max(Duration::from_secs(1))
}

/// How long after the deadline the in-process watchdog fires. Small, so a
/// blocked guest is stopped promptly; not zero, so a guest running wasm is
/// stopped by its epoch trap (the more precise report) first.
const WATCHDOG_SLACK: Duration = Duration::from_millis(50);

/// The time budgets of calls (from `[runtime]` in `silt.toml`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CallBudget {
    /// The guest's own time.
    pub deadline: Duration,
    /// Store time that does not count against the deadline.
    pub store: Duration,
}

/// The timing of the current call of one instance, shared between the
/// store's data (imports add store time) and the watchdog.
#[derive(Debug)]
pub struct CallClock {
    budget: CallBudget,
    inner: Mutex<Timing>,
}

#[derive(Debug)]
struct Timing {
    started: Instant,
    /// Store time of requests that finished.
    store: Duration,
    /// When the request in flight started, if one is.
    store_since: Option<Instant>,
}

impl CallClock {
    /// A clock for calls with `budget`.
    pub fn new(budget: CallBudget) -> Self {
        Self {
            budget,
            inner: Mutex::new(Timing {
                started: Instant::now(),
                store: Duration::ZERO,
                store_since: None,
            }),
        }
    }

    /// The budgets in force.
    pub fn budget(&self) -> CallBudget {
        self.budget
    }

    /// Starts timing a new call.
    pub fn start_call(&self) {
        *self.timing() = Timing {
            started: Instant::now(),
            store: Duration::ZERO,
            store_since: None,
        };
    }

    /// Marks the start of a store request; [`Self::store_done`] ends it.
    pub fn store_begin(&self) {
        self.timing().store_since = Some(Instant::now());
    }

    /// Ends the store request in flight, adding its time to the store's.
    pub fn store_done(&self) {
        let mut timing = self.timing();
        if let Some(since) = timing.store_since.take() {
            timing.store += since.elapsed();
        }
    }

    /// The time that counts against the deadline: wall time less the store
    /// time, and store time only up to the store budget.
    pub fn guest_time(&self) -> Duration {
        let timing = self.timing();
        let now = Instant::now();
        let store = timing.store
            + timing
                .store_since
                .map_or(Duration::ZERO, |since| now.duration_since(since));
        now.duration_since(timing.started)
            .saturating_sub(store.min(self.budget.store))
    }

    /// The store budget, if this call has used it all up (its store time
    /// now counts against the deadline): for the message that stops it.
    pub fn store_budget_spent(&self) -> Option<Duration> {
        let timing = self.timing();
        let store = timing.store
            + timing
                .store_since
                .map_or(Duration::ZERO, |since| since.elapsed());
        // Without a store budget there is none to spend (as the host says
        // of a worker).
        (!self.budget.store.is_zero() && store >= self.budget.store).then_some(self.budget.store)
    }

    /// Resolves once the call's guest time passes its deadline (plus a
    /// small slack): the caller then drops the call, which cancels whatever
    /// the guest was waiting on.
    pub async fn expired(&self) {
        let limit = self.budget.deadline + WATCHDOG_SLACK;
        loop {
            let remaining = limit.saturating_sub(self.guest_time());
            if remaining.is_zero() {
                return;
            }
            // Store time may have been excluded meanwhile: look again then.
            tokio::time::sleep(remaining).await;
        }
    }

    fn timing(&self) -> std::sync::MutexGuard<'_, Timing> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clock(deadline_ms: u64, store_ms: u64) -> CallClock {
        CallClock::new(CallBudget {
            deadline: Duration::from_millis(deadline_ms),
            store: Duration::from_millis(store_ms),
        })
    }

    #[test]
    fn store_time_is_excluded_only_up_to_its_budget() {
        // A budget far above the first sleep, so that a loaded machine's
        // late wake-up stays within it.
        let clock = clock(10_000, 1_000);
        clock.store_begin();
        std::thread::sleep(Duration::from_millis(30));
        // In flight and within budget: (almost) none of it is guest time.
        assert!(clock.guest_time() < Duration::from_millis(15));
        std::thread::sleep(Duration::from_millis(1_050));
        clock.store_done();
        // At least 1,080 ms in the store, 1,000 of them excluded.
        let guest = clock.guest_time();
        assert!(guest >= Duration::from_millis(80), "{guest:?}");
        clock.start_call();
        assert!(clock.guest_time() < Duration::from_millis(15));
    }

    #[tokio::test]
    async fn the_watchdog_fires_at_the_deadline_not_before() {
        let clock = clock(100, 0);
        let started = Instant::now();
        clock.expired().await;
        let waited = started.elapsed();
        assert!(waited >= Duration::from_millis(100), "{waited:?}");
    }

    #[test]
    fn grace_is_a_tenth_of_the_deadline_and_at_least_a_second() {
        assert_eq!(grace(Duration::from_secs(5)), Duration::from_secs(1));
        assert_eq!(grace(Duration::from_secs(30)), Duration::from_secs(3));
    }
}
