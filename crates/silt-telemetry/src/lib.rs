//! silt's traces and metrics.
//!
//! silt's crates describe their work with `tracing` only: spans for a
//! command, a lease, an extension call, a store request, a bulk transfer,
//! and events on the target [`METRICS_TARGET`] whose `monotonic_counter.*`
//! fields are counters. None of them depends on OpenTelemetry. This crate
//! builds the process's subscriber ([`init`]) from three layers:
//!
//! - the log on stderr (`-v`, `RUST_LOG`), which prints events only, as it
//!   always did;
//! - spans into an OpenTelemetry tracer, when the standard
//!   `OTEL_EXPORTER_OTLP_ENDPOINT` (or `..._TRACES_ENDPOINT`) asks for OTLP
//!   export or `--trace-file` for a file ([`settings`]);
//! - counters into an OpenTelemetry meter, when `OTEL_EXPORTER_OTLP_ENDPOINT`
//!   (or `..._METRICS_ENDPOINT`) asks for them.
//!
//! When neither is asked for, the last two layers do not exist: a span
//! below the log's level is never created (`tracing`'s callsite filter
//! answers "never" once) and nothing is exported. The export runs on the
//! SDK's own threads; [`Telemetry::shutdown`] flushes it at the end of a
//! command, bounded in time, and says once if it failed.

mod failures;
mod http_client;
pub mod propagation;
pub mod settings;
mod trace_file;
mod user_log;

use std::path::PathBuf;
use std::time::Duration;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithHttpConfig as _;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::metrics::SdkMeterProvider;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing::level_filters::LevelFilter;
use tracing_subscriber::Layer as _;
use tracing_subscriber::filter::FilterExt as _;
use tracing_subscriber::filter::{EnvFilter, Targets};
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

use failures::{Failures, Pipeline};
pub use propagation::{continue_trace_from_env, traceparent};
pub use settings::{ExportSettings, Protocol};

/// The target of silt's counter events (`monotonic_counter.NAME = n`):
/// they feed the meter only, never the log or the spans.
pub const METRICS_TARGET: &str = "silt_metrics";

/// The targets of the log lines that carry an extension's own text
/// (escaped): kept out of exported spans.
const GUEST_TEXT_TARGETS: [&str; 2] = ["silt::extension", "silt::worker"];

/// The instrumentation scope silt's spans and counters carry.
const SCOPE: &str = "silt";

/// What the command line asks of the log and of telemetry.
#[derive(Debug, Clone)]
pub struct Options {
    /// The log's level when `RUST_LOG` is not set.
    pub log_level: LevelFilter,
    /// Colours in the log (a terminal).
    pub ansi: bool,
    /// `--trace-file`: write every span there as OTLP/JSON, one export
    /// request per line.
    pub trace_file: Option<PathBuf>,
    /// The `service.version` resource attribute.
    pub version: &'static str,
}

/// Why telemetry could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    /// `--trace-file` cannot be written.
    #[error("cannot write the trace file {path}: {source}; pass a path in a writable directory")]
    TraceFile {
        /// The path given.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// An exporter could not be built from the OTEL_* variables.
    #[error("cannot export telemetry: {0}")]
    Exporter(String),
}

/// The installed telemetry of this process; [`Telemetry::shutdown`] it
/// before the process exits, or spans still queued are lost.
#[must_use = "shut telemetry down before exiting, or queued spans are lost"]
pub struct Telemetry {
    tracer: Option<SdkTracerProvider>,
    meter: Option<SdkMeterProvider>,
    failures: Failures,
    flush_within: Duration,
    /// What the environment asked for that silt does not do (said once).
    pub warnings: Vec<String>,
}

impl Telemetry {
    /// True when spans are recorded (OTLP export or a trace file).
    pub fn traces_enabled(&self) -> bool {
        self.tracer.is_some()
    }

    /// True when counters are exported.
    pub fn metrics_enabled(&self) -> bool {
        self.meter.is_some()
    }

    /// Exports what is still queued and stops the exporters within the
    /// export timeout: both at once against one deadline (the SDK's own
    /// shutdowns may wait longer than asked: the meter's up to 5 s).
    /// Returns one line per exporter that failed; nothing when all went
    /// well or nothing was exported.
    pub fn shutdown(self) -> Vec<String> {
        let Telemetry {
            tracer,
            meter,
            failures,
            flush_within,
            ..
        } = self;
        let deadline = std::time::Instant::now() + flush_within;
        let (done, finished) = std::sync::mpsc::channel();
        let mut pending = Vec::new();
        if let Some(tracer) = tracer {
            pending.push(Pipeline::Traces);
            let done = done.clone();
            std::thread::spawn(move || {
                let result = tracer.shutdown_with_timeout(flush_within);
                let _ = done.send((Pipeline::Traces, result));
            });
        }
        if let Some(meter) = meter {
            pending.push(Pipeline::Metrics);
            let done = done.clone();
            std::thread::spawn(move || {
                let result = meter.shutdown_with_timeout(flush_within);
                let _ = done.send((Pipeline::Metrics, result));
            });
        }
        drop(done);
        while !pending.is_empty() {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            let Ok((pipeline, result)) = finished.recv_timeout(left) else {
                break;
            };
            pending.retain(|p| *p != pipeline);
            if let Err(err) = result {
                failures.note_shutdown(pipeline, &err.to_string());
            }
        }
        // What has not finished is left behind: the process exits now.
        for pipeline in pending {
            failures.note_shutdown(
                pipeline,
                &format!(
                    "no answer within {} ms (OTEL_EXPORTER_OTLP_TIMEOUT)",
                    flush_within.as_millis()
                ),
            );
        }
        failures.take()
    }
}

/// Installs the process's subscriber: the log, and the tracer and meter
/// the environment and `options` ask for.
///
/// # Errors
/// When the trace file cannot be created or an exporter cannot be built.
/// Nothing is installed then.
pub fn init(options: &Options) -> Result<Telemetry, TelemetryError> {
    let settings = ExportSettings::from_env();
    init_with(options, &settings)
}

/// [`init`] with the export settings given (tests, benchmarks).
///
/// # Errors
/// As [`init`].
pub fn init_with(
    options: &Options,
    settings: &ExportSettings,
) -> Result<Telemetry, TelemetryError> {
    let failures = Failures::default();
    let mut warnings = settings.warnings.clone();
    // One HTTP client for both exporters (building one starts a thread).
    let http = if settings.traces.is_some() || settings.metrics.is_some() {
        let tls = [&settings.traces, &settings.metrics]
            .into_iter()
            .flatten()
            .any(|signal| signal.endpoint.starts_with("https://"));
        http_client::BlockingHttp::new(settings.timeout, tls)
            .map_err(|err| warnings.push(format!("not exporting over OTLP: {err}")))
            .ok()
    } else {
        None
    };
    let tracer = tracer_provider(options, settings, http.as_ref(), &failures, &mut warnings)?;
    let meter = meter_provider(
        settings,
        http.as_ref(),
        options.version,
        &failures,
        &mut warnings,
    );

    // The log: events only (spans would prefix every line with their
    // fields), never the counters. Without RUST_LOG, the level is silt's
    // own (`-v`: info, `-vv`: debug) and others' warnings; everything
    // (wasmtime's and WASI's internals too) at `-vvv`.
    let from_env = EnvFilter::try_from_default_env().ok();
    let plain = from_env.is_none() && options.log_level <= LevelFilter::WARN;
    let log_filter = from_env
        .unwrap_or_else(|| EnvFilter::new(log_directives(options.log_level)))
        .add_directive(
            format!("{METRICS_TARGET}=off")
                .parse()
                .expect("a valid directive"),
        );
    let events_only = tracing_subscriber::filter::filter_fn(|meta| meta.is_event())
        // Without a hint the pair has none, and the process's max level
        // (workers are started with it) would be TRACE: the log's own
        // level stays the hint.
        .with_max_level_hint(LevelFilter::TRACE);
    let log = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(options.ansi)
        .with_target(false);
    let log = if plain {
        log.event_format(user_log::PlainEvents)
            .with_filter(log_filter.and(events_only))
            .boxed()
    } else {
        log.with_filter(log_filter.and(events_only)).boxed()
    };
    // `-v` and more: silt's spans, one line each as it ends.
    let span_log = (options.log_level >= LevelFilter::INFO).then(|| {
        user_log::SpanLog.with_filter(
            Targets::new()
                .with_target("silt", options.log_level)
                .with_target(METRICS_TARGET, LevelFilter::OFF)
                .and(tracing_subscriber::filter::filter_fn(|meta| meta.is_span())),
        )
    });

    // Spans: silt's own (its crates' targets all start with `silt`), at
    // info and above; neither the SDK's nor wasmtime's or aws-sdk's.
    let spans = tracer.as_ref().map(|provider| {
        tracing_opentelemetry::layer()
            .with_tracer(provider.tracer(SCOPE))
            // Spans carry what they are about, not where in silt's source
            // they were made: no code.* or target attributes.
            .with_threads(false)
            .with_location(false)
            .with_target(false)
            .with_tracked_inactivity(false)
            // An error line is not the span's outcome: each span sets its
            // own status.
            .with_error_events_to_status(false)
            .with_error_events_to_exceptions(false)
            .with_filter(
                Targets::new()
                    .with_target("silt", LevelFilter::INFO)
                    .with_target(METRICS_TARGET, LevelFilter::OFF)
                    // What an extension wrote (its log, stdout, stderr,
                    // relayed from a worker) is never exported.
                    .with_target(GUEST_TEXT_TARGETS[0], LevelFilter::OFF)
                    .with_target(GUEST_TEXT_TARGETS[1], LevelFilter::OFF),
            )
    });
    let counters = meter.as_ref().map(|provider| {
        tracing_opentelemetry::MetricsLayer::new(provider.clone())
            .with_filter(Targets::new().with_target(METRICS_TARGET, LevelFilter::INFO))
    });
    // Another subscriber already installed (a test harness) keeps its own.
    let _ = tracing_subscriber::registry()
        .with(log)
        .with(span_log)
        .with(spans)
        .with(counters)
        .try_init();

    Ok(Telemetry {
        tracer,
        meter,
        failures,
        flush_within: settings.timeout,
        warnings,
    })
}

/// The log's filter at `level` when `RUST_LOG` does not say: up to
/// warnings, from everyone; `-v` and `-vv` add silt's own info and debug
/// events, not its dependencies' (HTTP, the AWS SDK, wasmtime); `-vvv`
/// everything.
fn log_directives(level: LevelFilter) -> String {
    if level <= LevelFilter::WARN {
        level.to_string()
    } else if level <= LevelFilter::DEBUG {
        format!("warn,silt={level}")
    } else {
        "trace".to_owned()
    }
}

/// `service.name` is silt unless `OTEL_SERVICE_NAME` or
/// `OTEL_RESOURCE_ATTRIBUTES` says otherwise (the SDK reads both).
///
/// Built only by a tracer or a meter that exports: the SDK's resource
/// detectors read the environment and the host, work a command that
/// exports nothing skips.
fn resource(version: &'static str) -> Resource {
    let named = std::env::var_os("OTEL_SERVICE_NAME").is_some()
        || std::env::var("OTEL_RESOURCE_ATTRIBUTES").is_ok_and(|attrs| {
            attrs
                .split(',')
                .any(|pair| pair.trim_start().starts_with("service.name="))
        });
    let builder = Resource::builder()
        .with_attribute(opentelemetry::KeyValue::new("service.version", version));
    if named {
        builder.build()
    } else {
        builder.with_service_name(SCOPE).build()
    }
}

/// The tracer, when spans go anywhere. An OTLP exporter the environment
/// describes wrongly is left out with a warning: telemetry never stops a
/// command.
fn tracer_provider(
    options: &Options,
    settings: &ExportSettings,
    http: Option<&http_client::BlockingHttp>,
    failures: &Failures,
    warnings: &mut Vec<String>,
) -> Result<Option<SdkTracerProvider>, TelemetryError> {
    let otlp = match (&settings.traces, http) {
        (Some(signal), Some(http)) => otlp_spans(signal, settings, http)
            .map_err(|err| warnings.push(format!("not exporting traces: {err}")))
            .ok()
            .map(|exporter| (signal, exporter)),
        _ => None,
    };
    if otlp.is_none() && options.trace_file.is_none() {
        return Ok(None);
    }
    let mut builder = SdkTracerProvider::builder().with_resource(resource(options.version));
    if let Some((signal, exporter)) = otlp {
        builder = builder.with_batch_exporter(failures::Reported::new(
            exporter,
            Pipeline::Traces,
            format!("traces to {}", signal.shown_endpoint()),
            failures.clone(),
        ));
    }
    if let Some(path) = &options.trace_file {
        let file =
            trace_file::TraceFile::create(path).map_err(|source| TelemetryError::TraceFile {
                path: path.clone(),
                source,
            })?;
        builder = builder.with_batch_exporter(failures::Reported::new(
            file,
            Pipeline::Traces,
            format!("traces to the trace file {}", path.display()),
            failures.clone(),
        ));
    }
    Ok(Some(builder.build()))
}

fn otlp_spans(
    signal: &settings::Signal,
    settings: &ExportSettings,
    http: &http_client::BlockingHttp,
) -> Result<opentelemetry_otlp::SpanExporter, TelemetryError> {
    let builder = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_http_client(http.clone())
        .with_retry_policy(settings::retry_policy());
    settings::configure(builder, signal, settings)
        .build()
        .map_err(|err| TelemetryError::Exporter(err.to_string()))
}

/// The meter, when counters are exported (as the tracer, a wrongly
/// described exporter is left out with a warning).
fn meter_provider(
    settings: &ExportSettings,
    http: Option<&http_client::BlockingHttp>,
    version: &'static str,
    failures: &Failures,
    warnings: &mut Vec<String>,
) -> Option<SdkMeterProvider> {
    let signal = settings.metrics.as_ref()?;
    let exporter = opentelemetry_otlp::MetricExporter::builder()
        .with_http()
        .with_http_client(http?.clone())
        .with_retry_policy(settings::retry_policy());
    let exporter = settings::configure(exporter, signal, settings)
        .build()
        .map_err(|err| warnings.push(format!("not exporting metrics: {err}")))
        .ok()?;
    let exporter = failures::ReportedMetrics::new(
        exporter,
        format!("metrics to {}", signal.shown_endpoint()),
        failures.clone(),
    );
    Some(
        SdkMeterProvider::builder()
            .with_resource(resource(version))
            .with_periodic_exporter(exporter)
            .build(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Workers are started at the process's max level: with nothing
    /// asked, it must stay the log's own (warn), not TRACE.
    #[test]
    fn the_max_level_is_the_logs_when_nothing_is_exported() {
        let options = Options {
            log_level: LevelFilter::WARN,
            ansi: false,
            trace_file: None,
            version: "test",
        };
        let telemetry = init_with(&options, &ExportSettings::none()).unwrap();
        assert!(!telemetry.traces_enabled() && !telemetry.metrics_enabled());
        assert_eq!(LevelFilter::current(), LevelFilter::WARN);
        assert!(telemetry.shutdown().is_empty());
    }
}
