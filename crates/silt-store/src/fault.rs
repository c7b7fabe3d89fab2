//! A fault-injecting store for tests: deterministic by seed, it fails a
//! share of requests the way S3 does in the wild — 409
//! `ConditionalRequestConflict`, 5xx, timeouts — and, worst of all, lets a
//! request succeed and then loses the response.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::io::AsyncWrite;

use super::{
    GetOutcome, ListPage, ObjectKey, ObjectMeta, ObjectStore, PutMode, StoreError, UploadDigest,
    Version,
};

/// How often each fault happens, as a share of requests in `[0, 1]`.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct FaultRates {
    /// 409 `ConditionalRequestConflict` (the request did not happen).
    pub conflict: f64,
    /// 503 Slow Down / 500 (the request did not happen).
    pub server_error: f64,
    /// A timeout before the request reached the store.
    pub timeout: f64,
    /// The request happened, then its response was lost.
    pub lost_response: f64,
}

/// Counts of injected faults.
#[derive(Debug, Default)]
pub struct FaultCounts {
    /// Requests passed through.
    pub requests: AtomicU64,
    /// Faults that prevented a request.
    pub failed_before: AtomicU64,
    /// Requests that happened but whose response was lost.
    pub lost_responses: AtomicU64,
}

/// Wraps a store and injects faults.
pub struct FaultInjecting<S> {
    inner: S,
    rates: FaultRates,
    state: Mutex<u64>,
    budget: AtomicU64,
    /// What was injected.
    pub counts: FaultCounts,
}

enum Fault {
    Before(&'static str),
    LoseResponse,
}

impl<S: ObjectStore> FaultInjecting<S> {
    /// Wraps `inner`; the same `seed` gives the same sequence of faults.
    pub fn new(inner: S, rates: FaultRates, seed: u64) -> Self {
        Self {
            inner,
            rates,
            state: Mutex::new(seed.max(1)),
            budget: AtomicU64::new(u64::MAX),
            counts: FaultCounts::default(),
        }
    }

    /// Injects at most `faults` faults, then passes everything through.
    pub fn with_budget(self, faults: u64) -> Self {
        self.budget.store(faults, Ordering::Relaxed);
        self
    }

    /// xorshift64*: small, deterministic, good enough to pick faults.
    fn next_unit(&self) -> f64 {
        let mut state = self.state.lock().expect("fault state poisoned");
        let mut x = *state;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        *state = x;
        (x.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
    }

    fn pick(&self) -> Option<Fault> {
        self.counts.requests.fetch_add(1, Ordering::Relaxed);
        let roll = self.next_unit();
        let fault = self.roll_fault(roll);
        if fault.is_some()
            && self
                .budget
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |left| {
                    left.checked_sub(1)
                })
                .is_err()
        {
            return None;
        }
        fault
    }

    fn roll_fault(&self, roll: f64) -> Option<Fault> {
        let rates = self.rates;
        let mut edge = rates.conflict;
        if roll < edge {
            return Some(Fault::Before("injected 409 ConditionalRequestConflict"));
        }
        edge += rates.server_error;
        if roll < edge {
            return Some(Fault::Before("injected 503 SlowDown"));
        }
        edge += rates.timeout;
        if roll < edge {
            return Some(Fault::Before("injected timeout"));
        }
        edge += rates.lost_response;
        if roll < edge {
            return Some(Fault::LoseResponse);
        }
        None
    }

    fn fail(&self, detail: &str) -> StoreError {
        StoreError::Backend {
            store: self.inner.to_string(),
            retryable: true,
            detail: detail.to_owned(),
        }
    }

    async fn with_faults<T>(
        &self,
        request: impl Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        match self.pick() {
            Some(Fault::Before(detail)) => {
                self.counts.failed_before.fetch_add(1, Ordering::Relaxed);
                Err(self.fail(detail))
            }
            Some(Fault::LoseResponse) => {
                let _ = request.await;
                self.counts.lost_responses.fetch_add(1, Ordering::Relaxed);
                Err(self.fail("injected: the request succeeded but its response was lost"))
            }
            None => request.await,
        }
    }
}

impl<S: ObjectStore> std::fmt::Display for FaultInjecting<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (with injected faults)", self.inner)
    }
}

#[async_trait::async_trait]
impl<S: ObjectStore> super::StoreWrapper for FaultInjecting<S> {
    type Inner = S;

    fn inner(&self) -> &S {
        &self.inner
    }

    async fn get(
        &self,
        key: &ObjectKey,
        if_none_match: Option<&Version>,
    ) -> Result<GetOutcome, StoreError> {
        self.with_faults(self.inner.get(key, if_none_match)).await
    }

    async fn head(&self, key: &ObjectKey) -> Result<ObjectMeta, StoreError> {
        self.with_faults(self.inner.head(key)).await
    }

    async fn put(
        &self,
        key: &ObjectKey,
        data: Vec<u8>,
        mode: PutMode,
    ) -> Result<Version, StoreError> {
        self.with_faults(self.inner.put(key, data, mode)).await
    }

    async fn delete(&self, key: &ObjectKey, if_match: Option<&Version>) -> Result<(), StoreError> {
        self.with_faults(self.inner.delete(key, if_match)).await
    }

    async fn list(
        &self,
        prefix: &str,
        start_after: Option<&ObjectKey>,
        limit: u32,
    ) -> Result<ListPage, StoreError> {
        self.with_faults(self.inner.list(prefix, start_after, limit))
            .await
    }

    async fn get_into(
        &self,
        key: &ObjectKey,
        sink: &mut (dyn AsyncWrite + Unpin + Send),
    ) -> Result<ObjectMeta, StoreError> {
        self.with_faults(self.inner.get_into(key, sink)).await
    }

    async fn put_file(
        &self,
        key: &ObjectKey,
        file: std::fs::File,
        mode: PutMode,
    ) -> Result<Version, StoreError> {
        self.with_faults(self.inner.put_file(key, file, mode)).await
    }

    async fn put_file_hashed(
        &self,
        key: &ObjectKey,
        file: std::fs::File,
        mode: PutMode,
    ) -> Result<(Version, UploadDigest), StoreError> {
        self.with_faults(self.inner.put_file_hashed(key, file, mode))
            .await
    }
}
