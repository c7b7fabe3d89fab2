//! Retries of retryable backend failures (5xx, timeouts, S3's 409
//! `ConditionalRequestConflict`) with exponential backoff and full jitter,
//! bounded in attempts.
//!
//! Backends do not retry on their own (the S3 client's retries are turned
//! off) so this is the one place retries happen, and tests can inject
//! faults beneath it. A conditional write that is retried may report a
//! precondition failure although an earlier attempt landed; callers that
//! must know whether they won resolve that with [`super::owned`].

use std::time::Duration;

use tokio::io::AsyncWrite;

use super::{
    GetOutcome, Leftover, ListPage, ObjectKey, ObjectMeta, ObjectStore, PutMode, StoreError, Sweep,
    UploadDigest, Version,
};

/// How retries are spaced and bounded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included.
    pub max_attempts: u32,
    /// Delay cap before the first retry; doubles per retry.
    pub base_delay: Duration,
    /// Largest delay cap.
    pub max_delay: Duration,
    /// Wall-clock time one operation may take, its retries included
    /// (`[datastore] operation_timeout_ms`). A small request's attempt is
    /// cut when the budget runs out; a transfer's is not (it may be long,
    /// and the client's stall protection watches its progress), but it is
    /// not retried past the budget.
    pub budget: Duration,
}

/// Default of [`RetryPolicy::budget`]: a stalled store is reported (exit
/// 69) within 25 s.
pub const DEFAULT_OPERATION_TIMEOUT: Duration = Duration::from_secs(25);

impl Default for RetryPolicy {
    /// 6 attempts, 50 ms doubling to at most 2 s (≈ 4 s of waiting at
    /// worst), within [`DEFAULT_OPERATION_TIMEOUT`].
    fn default() -> Self {
        Self {
            max_attempts: 6,
            base_delay: Duration::from_millis(50),
            max_delay: Duration::from_secs(2),
            budget: DEFAULT_OPERATION_TIMEOUT,
        }
    }
}

impl RetryPolicy {
    /// The delay before retry number `retry` (1-based): uniformly random in
    /// `[0, min(max, base * 2^(retry-1))]` ("full jitter").
    pub fn delay(&self, retry: u32) -> Duration {
        let cap = self
            .base_delay
            .saturating_mul(1u32 << (retry.saturating_sub(1)).min(16))
            .min(self.max_delay);
        cap.mul_f64(jitter())
    }

    /// Runs `attempt` until it succeeds, fails for good, or the attempts or
    /// the budget run out; retryable backend failures are retried after
    /// [`Self::delay`]. Attempts are not cut (transfers: only the caller
    /// can restart the sink). The one retry loop: [`Retrying`] and
    /// streaming transfers both use it.
    ///
    /// # Errors
    /// The last failure; a retryable one says how many attempts were made.
    pub async fn run<T, F, Fut>(&self, operation: &str, attempt: F) -> Result<T, StoreError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, StoreError>>,
    {
        self.run_within(operation, None, attempt).await
    }

    /// [`Self::run`], each attempt cut when the budget runs out: for small
    /// requests, which a stalled store would otherwise hold for good.
    /// `store` names the store in the error.
    ///
    /// # Errors
    /// As [`Self::run`], and a retryable backend failure when the budget
    /// ran out during an attempt.
    pub async fn run_bounded<T, F, Fut>(
        &self,
        store: &(dyn std::fmt::Display + Sync),
        operation: &str,
        attempt: F,
    ) -> Result<T, StoreError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, StoreError>>,
    {
        self.run_within(operation, Some(store), attempt).await
    }

    async fn run_within<T, F, Fut>(
        &self,
        operation: &str,
        cut_at_budget: Option<&(dyn std::fmt::Display + Sync)>,
        mut attempt: F,
    ) -> Result<T, StoreError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, StoreError>>,
    {
        let started = tokio::time::Instant::now();
        let mut tries = 1;
        loop {
            let outcome = match cut_at_budget {
                None => attempt().await,
                Some(store) => {
                    let left = self.budget.saturating_sub(started.elapsed());
                    match tokio::time::timeout(left, attempt()).await {
                        Ok(outcome) => outcome,
                        Err(_) => Err(StoreError::Backend {
                            store: store.to_string(),
                            retryable: true,
                            detail: format!("{operation}: no answer"),
                        }),
                    }
                }
            };
            match outcome {
                Err(StoreError::Backend {
                    retryable: true,
                    detail,
                    store,
                }) if tries < self.max_attempts && started.elapsed() < self.budget => {
                    let delay = self.delay(tries);
                    if tries == 1 {
                        warn_retrying(&store, &detail, self.budget);
                    }
                    tracing::debug!(%store, operation, attempt = tries, ?delay, "retrying after: {detail}");
                    tokio::time::sleep(delay).await;
                    tries += 1;
                    super::traced::note_retry(operation, tries - 1);
                }
                Err(StoreError::Backend {
                    retryable: true,
                    detail,
                    store,
                }) => {
                    return Err(StoreError::Backend {
                        store,
                        retryable: true,
                        detail: format!(
                            "{detail} (gave up after {tries} attempts in {:.1} s; [datastore] operation_timeout_ms sets how long to try)",
                            started.elapsed().as_secs_f64()
                        ),
                    });
                }
                other => return other,
            }
        }
    }
}

/// Says on stderr that the store is being retried — at most once every
/// 5 s for the whole process (many transfers may be retrying at once).
fn warn_retrying(store: &str, detail: &str, budget: Duration) {
    use std::sync::atomic::{AtomicU64, Ordering};
    static LAST_MS: AtomicU64 = AtomicU64::new(0);
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let last = LAST_MS.load(Ordering::Relaxed);
    if now_ms.saturating_sub(last) >= 5_000
        && LAST_MS
            .compare_exchange(last, now_ms, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
    {
        tracing::warn!(
            "{store}: {detail}; retrying for up to {:.0} s",
            budget.as_secs_f64()
        );
    }
}

/// A random number from the process's randomness, without a random-number
/// crate: every `RandomState` gets fresh random keys, so even the hash of
/// nothing differs each time.
pub(crate) fn random_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish()
}

/// A uniform number in `[0, 1)` ([`random_u64`]).
fn jitter() -> f64 {
    (random_u64() >> 11) as f64 / (1u64 << 53) as f64
}

/// A store that retries its inner store's retryable failures.
pub struct Retrying<S> {
    inner: S,
    policy: RetryPolicy,
    /// Until when operations fail at once: set when one gave up on a store
    /// that stopped answering, so a command's next operations do not each
    /// wait out a budget of their own (a stalled store ends a command in
    /// one budget, not one per request it would have made).
    silent_until: std::sync::Mutex<Option<(tokio::time::Instant, String)>>,
}

impl<S: ObjectStore> Retrying<S> {
    /// Wraps `inner` with `policy`.
    pub fn new(inner: S, policy: RetryPolicy) -> Self {
        Self {
            inner,
            policy,
            silent_until: std::sync::Mutex::new(None),
        }
    }

    async fn run<T, F, Fut>(&self, operation: &str, attempt: F) -> Result<T, StoreError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, StoreError>>,
    {
        self.unless_silent(self.policy.run_bounded(&self.inner, operation, attempt))
            .await
    }

    /// Runs `operation` unless the store recently stopped answering; notes
    /// when it gave up on one that did.
    async fn unless_silent<T>(
        &self,
        operation: impl Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        let silent = self
            .silent_until
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        if let Some((until, detail)) = silent
            && tokio::time::Instant::now() < until
        {
            return Err(StoreError::Backend {
                store: self.inner.to_string(),
                retryable: true,
                detail: format!("{detail}; not asked again in this command"),
            });
        }
        let started = tokio::time::Instant::now();
        let outcome = operation.await;
        // Only when the whole budget went by without an answer: a burst of
        // 5xx answers that used up the attempts quickly says nothing about
        // the next request.
        if let Err(StoreError::Backend {
            retryable: true,
            detail,
            ..
        }) = &outcome
            && started.elapsed() >= self.policy.budget
        {
            *self.silent_until.lock().unwrap_or_else(|e| e.into_inner()) = Some((
                tokio::time::Instant::now() + self.policy.budget,
                detail.clone(),
            ));
        }
        outcome
    }
}

impl<S: ObjectStore> std::fmt::Display for Retrying<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.inner.fmt(f)
    }
}

#[async_trait::async_trait]
impl<S: ObjectStore> super::StoreWrapper for Retrying<S> {
    type Inner = S;

    fn inner(&self) -> &S {
        &self.inner
    }

    async fn get(
        &self,
        key: &ObjectKey,
        if_none_match: Option<&Version>,
    ) -> Result<GetOutcome, StoreError> {
        self.run("get", || self.inner.get(key, if_none_match)).await
    }

    async fn head(&self, key: &ObjectKey) -> Result<ObjectMeta, StoreError> {
        self.run("head", || self.inner.head(key)).await
    }

    async fn put(
        &self,
        key: &ObjectKey,
        data: Vec<u8>,
        mode: PutMode,
    ) -> Result<Version, StoreError> {
        self.run("put", || self.inner.put(key, data.clone(), mode.clone()))
            .await
    }

    async fn delete(&self, key: &ObjectKey, if_match: Option<&Version>) -> Result<(), StoreError> {
        self.run("delete", || self.inner.delete(key, if_match))
            .await
    }

    async fn list(
        &self,
        prefix: &str,
        start_after: Option<&ObjectKey>,
        limit: u32,
    ) -> Result<ListPage, StoreError> {
        self.run("list", || self.inner.list(prefix, start_after, limit))
            .await
    }

    async fn get_into(
        &self,
        key: &ObjectKey,
        sink: &mut (dyn AsyncWrite + Unpin + Send),
    ) -> Result<ObjectMeta, StoreError> {
        // Not retried here: only the caller can restart the sink.
        self.inner.get_into(key, sink).await
    }

    async fn put_file(
        &self,
        key: &ObjectKey,
        file: std::fs::File,
        mode: PutMode,
    ) -> Result<Version, StoreError> {
        // Each attempt reads the file from its start through its own handle;
        // a transfer's attempt is not cut (see `RetryPolicy::budget`).
        self.unless_silent(self.policy.run("put", || {
            let attempt = file.try_clone();
            let mode = mode.clone();
            async move {
                let attempt = attempt.map_err(|err| super::local_io(key, &err))?;
                self.inner.put_file(key, attempt, mode).await
            }
        }))
        .await
    }

    async fn put_file_hashed(
        &self,
        key: &ObjectKey,
        file: std::fs::File,
        mode: PutMode,
    ) -> Result<(Version, UploadDigest), StoreError> {
        self.unless_silent(self.policy.run("put", || {
            let attempt = file.try_clone();
            let mode = mode.clone();
            async move {
                let attempt = attempt.map_err(|err| super::local_io(key, &err))?;
                self.inner.put_file_hashed(key, attempt, mode).await
            }
        }))
        .await
    }

    async fn leftovers(&self, prefix: &str, sweep: Sweep) -> Result<Vec<Leftover>, StoreError> {
        // Not retried or bounded: a walk of a large directory store may
        // take longer than an operation's budget, and its errors (local
        // I/O) are never retryable.
        self.inner.leftovers(prefix, sweep).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_and_stay_bounded() {
        let policy = RetryPolicy::default();
        for retry in 1..20 {
            let delay = policy.delay(retry);
            assert!(delay <= policy.max_delay, "{retry}: {delay:?}");
        }
        let first_caps: Vec<Duration> = (0..200).map(|_| policy.delay(1)).collect();
        assert!(first_caps.iter().all(|d| *d <= Duration::from_millis(50)));
        assert!(first_caps.iter().any(|d| *d != first_caps[0]), "no jitter");
    }
}
