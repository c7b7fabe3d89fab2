//! The trace across processes, by the OpenTelemetry environment carrier:
//! `TRACEPARENT` (W3C trace context) in a process's environment.
//!
//! A command silt is started under (a CI job, a wrapper script that traces
//! its steps) continues its trace when it sets `TRACEPARENT`; the command
//! `silt run` starts gets `TRACEPARENT` naming silt's span, so what it
//! traces hangs beneath the run. Both only while spans are recorded.

use std::collections::HashMap;

use opentelemetry::propagation::TextMapPropagator as _;
use opentelemetry::trace::TraceContextExt as _;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

/// The environment variable of the carrier.
pub const TRACEPARENT: &str = "TRACEPARENT";

/// Makes `span` a child of the trace `TRACEPARENT` names, if it is set,
/// well-formed and spans are recorded; otherwise leaves it a root.
pub fn continue_trace_from_env(span: &tracing::Span) {
    if span.is_disabled() {
        return;
    }
    let Ok(value) = std::env::var(TRACEPARENT) else {
        return;
    };
    let carrier = HashMap::from([("traceparent".to_owned(), value)]);
    let context = TraceContextPropagator::new().extract(&carrier);
    // A malformed value extracts an invalid span context: ignored.
    if context.span().span_context().is_valid() {
        let _ = span.set_parent(context);
    }
}

/// The `TRACEPARENT` that continues `span`'s trace in a child process, or
/// `None` when spans are not recorded.
pub fn traceparent(span: &tracing::Span) -> Option<String> {
    if span.is_disabled() {
        return None;
    }
    let context = span.context();
    if !context.span().span_context().is_valid() {
        return None;
    }
    let mut carrier: HashMap<String, String> = HashMap::new();
    TraceContextPropagator::new().inject_context(&context, &mut carrier);
    carrier.remove("traceparent")
}
