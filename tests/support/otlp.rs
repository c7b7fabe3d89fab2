//! Reading OTLP/JSON back: the spans of `ExportTraceServiceRequest`s and
//! the sums of `ExportMetricsServiceRequest`s, one request per line (as
//! `--trace-file` and the OpenTelemetry Collector's file exporter write
//! them).

use std::collections::BTreeMap;

use serde_json::Value;

/// One span, as the tests look at it.
#[derive(Debug, Clone)]
pub struct Span {
    /// Hex trace id.
    pub trace_id: String,
    /// Hex span id.
    pub span_id: String,
    /// Hex id of the parent span; empty for a root.
    pub parent: String,
    /// The span's name.
    pub name: String,
    /// Attributes, values as text (ints and bools written out).
    pub attributes: BTreeMap<String, String>,
    /// The status code (`STATUS_CODE_ERROR` or 2 when failed).
    pub error: bool,
}

impl Span {
    /// An attribute's value, or "" when missing.
    pub fn attr(&self, key: &str) -> &str {
        self.attributes.get(key).map_or("", String::as_str)
    }
}

/// Every span in `text` (one JSON request per non-empty line).
pub fn spans(text: &str) -> Vec<Span> {
    let mut found = Vec::new();
    for line in text.lines().filter(|line| !line.trim().is_empty()) {
        let request: Value = serde_json::from_str(line).expect("an OTLP/JSON line");
        for resource in array(&request, "resourceSpans") {
            for scope in array(resource, "scopeSpans") {
                for span in array(scope, "spans") {
                    found.push(Span {
                        trace_id: text_of(span, "traceId"),
                        span_id: text_of(span, "spanId"),
                        parent: text_of(span, "parentSpanId"),
                        name: text_of(span, "name"),
                        attributes: attributes(span),
                        error: span
                            .get("status")
                            .and_then(|status| status.get("code"))
                            .is_some_and(|code| code == 2 || code == "STATUS_CODE_ERROR"),
                    });
                }
            }
        }
    }
    found
}

/// The resource attributes of the first resource in `text`.
pub fn resource(text: &str) -> BTreeMap<String, String> {
    let line = text
        .lines()
        .find(|line| !line.trim().is_empty())
        .unwrap_or("{}");
    let request: Value = serde_json::from_str(line).expect("an OTLP/JSON line");
    array(&request, "resourceSpans")
        .first()
        .and_then(|resource| resource.get("resource"))
        .map(attributes)
        .unwrap_or_default()
}

/// Each counter (`sum` metric) of the last export in `text` (counters are
/// cumulative: the last export holds the totals), by metric name and then
/// by the points' attributes (`key=value,...`).
pub fn counters(text: &str) -> BTreeMap<String, BTreeMap<String, f64>> {
    let mut sums: BTreeMap<String, BTreeMap<String, f64>> = BTreeMap::new();
    if let Some(line) = text.lines().rfind(|line| !line.trim().is_empty()) {
        let request: Value = serde_json::from_str(line).expect("an OTLP/JSON line");
        for resource in array(&request, "resourceMetrics") {
            for scope in array(resource, "scopeMetrics") {
                for metric in array(scope, "metrics") {
                    let Some(sum) = metric.get("sum") else {
                        continue;
                    };
                    let by_attributes = sums.entry(text_of(metric, "name")).or_default();
                    for point in array(sum, "dataPoints") {
                        let value = point
                            .get("asInt")
                            .or_else(|| point.get("asDouble"))
                            .map_or(0.0, number);
                        let key = attributes(point)
                            .into_iter()
                            .map(|(k, v)| format!("{k}={v}"))
                            .collect::<Vec<_>>()
                            .join(",");
                        *by_attributes.entry(key).or_default() += value;
                    }
                }
            }
        }
    }
    sums
}

fn array<'a>(value: &'a Value, key: &str) -> &'a [Value] {
    value
        .get(key)
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

fn text_of(value: &Value, key: &str) -> String {
    value
        .get(key)
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned()
}

fn number(value: &Value) -> f64 {
    match value {
        Value::Number(n) => n.as_f64().unwrap_or(0.0),
        Value::String(s) => s.parse().unwrap_or(0.0),
        _ => 0.0,
    }
}

fn attributes(value: &Value) -> BTreeMap<String, String> {
    array(value, "attributes")
        .iter()
        .map(|kv| {
            let any = kv.get("value").cloned().unwrap_or(Value::Null);
            let shown = ["stringValue", "intValue", "boolValue", "doubleValue"]
                .iter()
                .find_map(|kind| any.get(*kind))
                .map(|v| match v {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                })
                .unwrap_or_default();
            (text_of(kv, "key"), shown)
        })
        .collect()
}
