//! Export failures, remembered and said once at the end of a command
//! instead of once per batch: a dead collector must not flood the user's
//! terminal, nor go unnoticed.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::metrics::Temporality;
use opentelemetry_sdk::metrics::data::ResourceMetrics;
use opentelemetry_sdk::metrics::exporter::PushMetricExporter;
use opentelemetry_sdk::trace::{SpanData, SpanExporter};

/// The first failure of each exporter, by what it exports.
#[derive(Debug, Clone, Default)]
pub(crate) struct Failures(Arc<Mutex<Vec<(String, String)>>>);

impl Failures {
    /// Notes that exporting `what` failed (only its first failure is kept).
    pub(crate) fn note(&self, what: &str, detail: &str) {
        let mut seen = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if !seen.iter().any(|(known, _)| known == what) {
            // The SDK's and the HTTP client's text; may name the endpoint,
            // never the headers. Kept to one short line.
            let detail: String = detail
                .replace(['\n', '\r'], " ")
                .chars()
                .take(300)
                .collect();
            seen.push((what.to_owned(), detail));
        }
    }

    /// True when a failure of an exporter whose description starts with
    /// one of `prefixes` was noted.
    pub(crate) fn has(&self, prefixes: &[&str]) -> bool {
        let seen = self.0.lock().unwrap_or_else(|e| e.into_inner());
        seen.iter()
            .any(|(what, _)| prefixes.iter().any(|prefix| what.starts_with(prefix)))
    }

    /// One line per failed exporter.
    pub(crate) fn take(&self) -> Vec<String> {
        let seen = std::mem::take(&mut *self.0.lock().unwrap_or_else(|e| e.into_inner()));
        seen.into_iter()
            .map(|(what, detail)| format!("could not export {what}: {detail}"))
            .collect()
    }
}

/// A span exporter whose failures are noted in [`Failures`].
#[derive(Debug)]
pub(crate) struct Reported<E> {
    inner: E,
    what: String,
    failures: Failures,
}

impl<E> Reported<E> {
    /// Wraps `inner`, which exports `what` to `destination`.
    pub(crate) fn new(inner: E, what: &str, destination: String, failures: Failures) -> Self {
        Self {
            inner,
            what: format!("{what} to {destination}"),
            failures,
        }
    }
}

impl<E: SpanExporter> SpanExporter for Reported<E> {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        let result = self.inner.export(batch).await;
        if let Err(err) = &result {
            self.failures.note(&self.what, &err.to_string());
        }
        result
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn set_resource(&mut self, resource: &opentelemetry_sdk::Resource) {
        self.inner.set_resource(resource);
    }
}

/// A metric exporter whose failures are noted in [`Failures`].
#[derive(Debug)]
pub(crate) struct ReportedMetrics<E> {
    inner: E,
    what: String,
    failures: Failures,
}

impl<E> ReportedMetrics<E> {
    /// Wraps `inner`, which exports to `destination`.
    pub(crate) fn new(inner: E, destination: String, failures: Failures) -> Self {
        Self {
            inner,
            what: format!("metrics to {destination}"),
            failures,
        }
    }
}

impl<E: PushMetricExporter> PushMetricExporter for ReportedMetrics<E> {
    async fn export(&self, metrics: &ResourceMetrics) -> OTelSdkResult {
        let result = self.inner.export(metrics).await;
        if let Err(err) = &result {
            self.failures.note(&self.what, &err.to_string());
        }
        result
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn temporality(&self) -> Temporality {
        self.inner.temporality()
    }
}
