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

/// What an exporter exports: a shutdown's own error is said only when
/// no exporter of its pipeline said why already.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pipeline {
    /// Spans (OTLP, the trace file).
    Traces,
    /// Counters.
    Metrics,
}

impl Pipeline {
    fn name(self) -> &'static str {
        match self {
            Pipeline::Traces => "traces",
            Pipeline::Metrics => "metrics",
        }
    }
}

/// One noted failure.
#[derive(Debug)]
struct Failure {
    pipeline: Pipeline,
    /// `traces to URL`; `None` for the pipeline's shutdown.
    exporter: Option<String>,
    detail: String,
}

/// The first failure of each exporter.
#[derive(Debug, Clone, Default)]
pub(crate) struct Failures(Arc<Mutex<Vec<Failure>>>);

impl Failures {
    /// Notes that `exporter` (of `pipeline`) failed; only its first
    /// failure is kept.
    pub(crate) fn note(&self, pipeline: Pipeline, exporter: &str, detail: &str) {
        self.push(pipeline, Some(exporter), detail);
    }

    /// Notes that shutting `pipeline` down failed or timed out.
    pub(crate) fn note_shutdown(&self, pipeline: Pipeline, detail: &str) {
        self.push(pipeline, None, detail);
    }

    fn push(&self, pipeline: Pipeline, exporter: Option<&str>, detail: &str) {
        let mut seen = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if seen
            .iter()
            .any(|f| f.pipeline == pipeline && f.exporter.as_deref() == exporter)
        {
            return;
        }
        // The SDK's and the HTTP client's words: they may name the
        // endpoint (shown without credentials by the caller), never the
        // headers. Kept to one short line.
        let detail: String = detail
            .replace(['\n', '\r'], " ")
            .chars()
            .take(300)
            .collect();
        seen.push(Failure {
            pipeline,
            exporter: exporter.map(str::to_owned),
            detail,
        });
    }

    /// One line per failed exporter; a pipeline's shutdown error only when
    /// none of its exporters said why.
    pub(crate) fn take(&self) -> Vec<String> {
        let mut seen = std::mem::take(&mut *self.0.lock().unwrap_or_else(|e| e.into_inner()));
        // The exporters fail on threads of their own: said in one order
        // (traces, then metrics), whichever came first.
        seen.sort_by_key(|f| (f.pipeline == Pipeline::Metrics, f.exporter.clone()));
        let said = |pipeline: Pipeline| {
            seen.iter()
                .any(|f| f.pipeline == pipeline && f.exporter.is_some())
        };
        seen.iter()
            .filter(|f| f.exporter.is_some() || !said(f.pipeline))
            .map(|f| match &f.exporter {
                Some(exporter) => format!("could not export {exporter}: {}", f.detail),
                None => format!("could not export {}: {}", f.pipeline.name(), f.detail),
            })
            .collect()
    }
}

/// A span exporter whose failures are noted in [`Failures`].
#[derive(Debug)]
pub(crate) struct Reported<E> {
    inner: E,
    pipeline: Pipeline,
    what: String,
    failures: Failures,
}

impl<E> Reported<E> {
    /// Wraps `inner`, described as `what` (`traces to URL`).
    pub(crate) fn new(inner: E, pipeline: Pipeline, what: String, failures: Failures) -> Self {
        Self {
            inner,
            pipeline,
            what,
            failures,
        }
    }
}

impl<E: SpanExporter> SpanExporter for Reported<E> {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        let result = self.inner.export(batch).await;
        if let Err(err) = &result {
            self.failures
                .note(self.pipeline, &self.what, &err.to_string());
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
    /// Wraps `inner`, described as `what` (`metrics to URL`).
    pub(crate) fn new(inner: E, what: String, failures: Failures) -> Self {
        Self {
            inner,
            what,
            failures,
        }
    }
}

impl<E: PushMetricExporter> PushMetricExporter for ReportedMetrics<E> {
    async fn export(&self, metrics: &ResourceMetrics) -> OTelSdkResult {
        let result = self.inner.export(metrics).await;
        if let Err(err) = &result {
            self.failures
                .note(Pipeline::Metrics, &self.what, &err.to_string());
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
