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
    GetOutcome, ListPage, ObjectKey, ObjectMeta, ObjectStore, PutMode, StoreError, Version,
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
}

impl Default for RetryPolicy {
    /// 6 attempts, 50 ms doubling to at most 2 s: ≈ 4 s of waiting at worst.
    fn default() -> Self {
        Self {
            max_attempts: 6,
            base_delay: Duration::from_millis(50),
            max_delay: Duration::from_secs(2),
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

    /// Runs `attempt` until it succeeds, fails for good, or the attempts
    /// run out; retryable backend failures are retried after [`Self::delay`].
    /// The one retry loop: [`Retrying`] and streaming transfers (which must
    /// restart their sink) both use it.
    ///
    /// # Errors
    /// The last failure; a retryable one says how many attempts were made.
    pub async fn run<T, F, Fut>(&self, operation: &str, mut attempt: F) -> Result<T, StoreError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, StoreError>>,
    {
        let mut tries = 1;
        loop {
            match attempt().await {
                Err(StoreError::Backend {
                    retryable: true,
                    detail,
                    store,
                }) if tries < self.max_attempts => {
                    let delay = self.delay(tries);
                    tracing::debug!(%store, operation, attempt = tries, ?delay, "retrying after: {detail}");
                    tokio::time::sleep(delay).await;
                    tries += 1;
                }
                Err(StoreError::Backend {
                    retryable: true,
                    detail,
                    store,
                }) => {
                    return Err(StoreError::Backend {
                        store,
                        retryable: true,
                        detail: format!("{detail} (gave up after {tries} attempts)"),
                    });
                }
                other => return other,
            }
        }
    }
}

/// A uniform number in `[0, 1)` from the process's randomness, without a
/// random-number crate: every `RandomState` gets fresh random keys, so even
/// the hash of nothing differs each time.
fn jitter() -> f64 {
    use std::hash::{BuildHasher, Hasher};
    let hasher = std::collections::hash_map::RandomState::new().build_hasher();
    (hasher.finish() >> 11) as f64 / (1u64 << 53) as f64
}

/// A store that retries its inner store's retryable failures.
pub struct Retrying<S> {
    inner: S,
    policy: RetryPolicy,
}

impl<S: ObjectStore> Retrying<S> {
    /// Wraps `inner` with `policy`.
    pub fn new(inner: S, policy: RetryPolicy) -> Self {
        Self { inner, policy }
    }

    async fn run<T, F, Fut>(&self, operation: &str, attempt: F) -> Result<T, StoreError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, StoreError>>,
    {
        self.policy.run(operation, attempt).await
    }
}

impl<S: ObjectStore> std::fmt::Display for Retrying<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.inner.fmt(f)
    }
}

#[async_trait::async_trait]
impl<S: ObjectStore> ObjectStore for Retrying<S> {
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
        // Each attempt reads the file from its start through its own handle.
        self.run("put", || {
            let attempt = file.try_clone();
            let mode = mode.clone();
            async move {
                let attempt = attempt.map_err(|err| super::local_io(key, &err))?;
                self.inner.put_file(key, attempt, mode).await
            }
        })
        .await
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
