//! What a benchmark needs to run one scenario near its store and again far
//! from it, on the same datastore: [`Switch`] sends every request straight
//! to the store or through a [`LatencyProxy`], and [`Timeline`] keeps when
//! each request started and ended, so the requests a scenario made in
//! sequence can be counted ([`critical_path`]) wherever the store is.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use silt::store::{
    GetOutcome, ListPage, ObjectKey, ObjectMeta, ObjectStore, PutMode, StoreError, StoreWrapper,
    Version,
};
use tokio::io::AsyncWrite;

use super::latency_proxy::{Distance, LatencyProxy, critical_path_of};

/// How far the far runs of a benchmark are from their store:
/// `SILT_BENCH_RTT_MS` (default 20 ms, a bucket in a nearby region) and
/// `SILT_BENCH_BANDWIDTH_MIB_S` (default: uncapped).
pub fn far() -> Distance {
    let number = |name: &str| {
        std::env::var(name).ok().map(|value| {
            value
                .parse::<u64>()
                .unwrap_or_else(|_| panic!("{name}={value}: expected a whole number"))
        })
    };
    Distance {
        rtt: std::time::Duration::from_millis(number("SILT_BENCH_RTT_MS").unwrap_or(20)),
        bandwidth: number("SILT_BENCH_BANDWIDTH_MIB_S").map(|mib| mib << 20),
    }
}

/// The least time a client far from its store could take for `requests`
/// in sequence and `bytes` through the link: each request one round trip,
/// the bytes at the link's bandwidth, whichever is longer.
pub fn limit_ms(distance: Distance, in_sequence: usize, bytes: u64) -> f64 {
    let trips = in_sequence as f64 * distance.rtt.as_secs_f64();
    let transfer = distance
        .bandwidth
        .map_or(0.0, |rate| bytes as f64 / rate as f64);
    trips.max(transfer) * 1e3
}

/// `endpoint` (`http://HOST:PORT[/path]`) with its host and port replaced
/// by `proxy`'s: the same service, reached through the proxy.
pub fn through(proxy: &LatencyProxy, endpoint: &str) -> String {
    let rest = endpoint.strip_prefix("http://").expect("an http endpoint");
    let path = rest.find('/').map_or("", |slash| &rest[slash..]);
    format!("{}{path}", proxy.endpoint)
}

/// The host and port of `endpoint`, as [`LatencyProxy::start`] takes it.
pub fn upstream(endpoint: &str) -> String {
    let rest = endpoint.strip_prefix("http://").expect("an http endpoint");
    format!("http://{}", rest.split('/').next().unwrap())
}

/// One store reached two ways: `near` (straight to the server) and `far`
/// (the same server through a [`LatencyProxy`]); every request takes the
/// way set last.
pub struct Switch {
    near: Arc<dyn ObjectStore>,
    far: Arc<dyn ObjectStore>,
    proxy: LatencyProxy,
    is_far: AtomicBool,
}

impl Switch {
    /// Near until [`Switch::set`] says otherwise.
    pub fn new(near: Arc<dyn ObjectStore>, far: Arc<dyn ObjectStore>, proxy: LatencyProxy) -> Self {
        Self {
            near,
            far,
            proxy,
            is_far: AtomicBool::new(false),
        }
    }

    /// Every request from now on goes straight to the store (a zero round
    /// trip) or through the proxy at `distance`.
    pub fn set(&self, distance: Distance) {
        let far = !distance.rtt.is_zero() || distance.bandwidth.is_some();
        self.proxy.set(distance);
        self.is_far.store(far, Ordering::SeqCst);
    }
}

impl std::fmt::Display for Switch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.near.fmt(f)
    }
}

#[async_trait::async_trait]
impl StoreWrapper for Switch {
    type Inner = dyn ObjectStore;

    fn inner(&self) -> &Self::Inner {
        if self.is_far.load(Ordering::SeqCst) {
            &*self.far
        } else {
            &*self.near
        }
    }

    async fn put_file_hashed(
        &self,
        key: &ObjectKey,
        file: std::fs::File,
        mode: PutMode,
    ) -> Result<(Version, silt::store::UploadDigest), StoreError> {
        self.inner().put_file_hashed(key, file, mode).await
    }
}

/// A store that keeps when each request to `inner` started and ended.
pub struct Timeline<S> {
    inner: S,
    spans: Mutex<Vec<(Instant, Instant)>>,
}

impl<S: ObjectStore> Timeline<S> {
    /// Keeps nothing yet.
    pub fn new(inner: S) -> Self {
        Self {
            inner,
            spans: Mutex::new(Vec::new()),
        }
    }

    /// The requests that ended since the last call.
    pub fn take(&self) -> Vec<(Instant, Instant)> {
        std::mem::take(&mut self.spans.lock().unwrap())
    }

    /// How many of the requests since the last [`Timeline::take`] ran one
    /// after another (and forgets them).
    pub fn take_in_sequence(&self) -> usize {
        critical_path_of(self.take())
    }

    async fn timed<T>(&self, request: impl Future<Output = T>) -> T {
        let start = Instant::now();
        let answer = request.await;
        self.spans.lock().unwrap().push((start, Instant::now()));
        answer
    }
}

impl<S: ObjectStore> std::fmt::Display for Timeline<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.inner.fmt(f)
    }
}

#[async_trait::async_trait]
impl<S: ObjectStore> StoreWrapper for Timeline<S> {
    type Inner = S;

    fn inner(&self) -> &S {
        &self.inner
    }

    async fn get(
        &self,
        key: &ObjectKey,
        if_none_match: Option<&Version>,
    ) -> Result<GetOutcome, StoreError> {
        self.timed(self.inner.get(key, if_none_match)).await
    }

    async fn head(&self, key: &ObjectKey) -> Result<ObjectMeta, StoreError> {
        self.timed(self.inner.head(key)).await
    }

    async fn put(
        &self,
        key: &ObjectKey,
        data: Vec<u8>,
        mode: PutMode,
    ) -> Result<Version, StoreError> {
        self.timed(self.inner.put(key, data, mode)).await
    }

    async fn delete(&self, key: &ObjectKey, if_match: Option<&Version>) -> Result<(), StoreError> {
        self.timed(self.inner.delete(key, if_match)).await
    }

    async fn list(
        &self,
        prefix: &str,
        start_after: Option<&ObjectKey>,
        limit: u32,
    ) -> Result<ListPage, StoreError> {
        self.timed(self.inner.list(prefix, start_after, limit))
            .await
    }

    async fn get_into(
        &self,
        key: &ObjectKey,
        sink: &mut (dyn AsyncWrite + Unpin + Send),
    ) -> Result<ObjectMeta, StoreError> {
        self.timed(self.inner.get_into(key, sink)).await
    }

    async fn put_file(
        &self,
        key: &ObjectKey,
        file: std::fs::File,
        mode: PutMode,
    ) -> Result<Version, StoreError> {
        self.timed(self.inner.put_file(key, file, mode)).await
    }

    async fn put_file_hashed(
        &self,
        key: &ObjectKey,
        file: std::fs::File,
        mode: PutMode,
    ) -> Result<(Version, silt::store::UploadDigest), StoreError> {
        self.timed(self.inner.put_file_hashed(key, file, mode))
            .await
    }
}
