//! What the standard `OTEL_*` variables ask for, read once at start-up.
//!
//! silt follows the OpenTelemetry environment specification for what it
//! supports, and says once on stderr what it does not (nothing is
//! exported for that signal then; the command itself runs as usual):
//!
//! | variable | silt |
//! |---|---|
//! | `OTEL_SDK_DISABLED=true` | nothing is exported |
//! | `OTEL_EXPORTER_OTLP_ENDPOINT` | base URL; `/v1/traces` and `/v1/metrics` are appended |
//! | `OTEL_EXPORTER_OTLP_{TRACES,METRICS}_ENDPOINT` | that signal's URL, used as is |
//! | `OTEL_EXPORTER_OTLP[_{TRACES,METRICS}]_PROTOCOL` | `http/protobuf` (default) or `http/json`; `grpc` is refused |
//! | `OTEL_EXPORTER_OTLP[_{TRACES,METRICS}]_HEADERS` | sent with every export (never printed) |
//! | `OTEL_EXPORTER_OTLP_TIMEOUT` | ms per export and for the final flush; default 3000 (the spec's 10 s would hold every command up that long behind a stalled collector) |
//! | `OTEL_TRACES_EXPORTER`, `OTEL_METRICS_EXPORTER` | `otlp` (default) or `none` |
//! | `OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES` | the resource (`service.name` defaults to `silt`) |
//! | `OTEL_TRACES_SAMPLER[_ARG]`, `OTEL_BSP_*` | read by the SDK |

use std::time::Duration;

use opentelemetry_otlp::WithExportConfig;

/// OTLP over HTTP, as silt sends it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// `http/protobuf`, the default.
    HttpProtobuf,
    /// `http/json`.
    HttpJson,
}

/// Where one signal goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signal {
    /// The full URL the exports are POSTed to.
    pub endpoint: String,
    /// The encoding.
    pub protocol: Protocol,
}

impl Signal {
    /// The endpoint as messages show it: without a `user:password@` and
    /// without the query (either may carry a credential).
    pub fn shown_endpoint(&self) -> String {
        let without_query = self.endpoint.split(['?', '#']).next().unwrap_or("");
        match without_query.split_once("://") {
            Some((scheme, rest)) => {
                let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
                let host = authority.rsplit('@').next().unwrap_or(authority);
                format!("{scheme}://{host}{path}")
            }
            None => without_query.to_owned(),
        }
    }
}

/// What the environment asks to export.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportSettings {
    /// Spans, if exported over OTLP.
    pub traces: Option<Signal>,
    /// Counters, if exported over OTLP.
    pub metrics: Option<Signal>,
    /// Bound of one export and of the final flush.
    pub timeout: Duration,
    /// What was asked and is not done, one line each.
    pub warnings: Vec<String>,
}

/// The export timeout when `OTEL_EXPORTER_OTLP_TIMEOUT` is not set.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(3);

impl ExportSettings {
    /// Nothing exported.
    pub fn none() -> Self {
        Self {
            traces: None,
            metrics: None,
            timeout: DEFAULT_TIMEOUT,
            warnings: Vec::new(),
        }
    }

    /// Reads the process's environment.
    pub fn from_env() -> Self {
        Self::from_lookup(|name| {
            std::env::var(name)
                .ok()
                .filter(|value| !value.trim().is_empty())
        })
    }

    /// Reads variables through `lookup` (unset and empty are alike).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Self {
        let mut settings = Self::none();
        if lookup("OTEL_SDK_DISABLED")
            .is_some_and(|value| value.trim().eq_ignore_ascii_case("true"))
        {
            return settings;
        }
        if let Some(value) = lookup("OTEL_EXPORTER_OTLP_TIMEOUT") {
            match value.trim().parse::<u64>() {
                Ok(ms) if ms > 0 => settings.timeout = Duration::from_millis(ms),
                _ => settings.warnings.push(format!(
                    "OTEL_EXPORTER_OTLP_TIMEOUT must be a positive number of milliseconds; using {} ms",
                    DEFAULT_TIMEOUT.as_millis()
                )),
            }
        }
        settings.traces = signal(&lookup, "TRACES", "traces", &mut settings.warnings);
        settings.metrics = signal(&lookup, "METRICS", "metrics", &mut settings.warnings);
        settings
    }
}

/// One signal's endpoint and protocol, if it is exported.
fn signal(
    lookup: &impl Fn(&str) -> Option<String>,
    upper: &str,
    path: &str,
    warnings: &mut Vec<String>,
) -> Option<Signal> {
    let exporter_var = format!("OTEL_{upper}_EXPORTER");
    if let Some(exporters) = lookup(&exporter_var) {
        let exporters: Vec<String> = exporters
            .split(',')
            .map(|name| name.trim().to_ascii_lowercase())
            .collect();
        if exporters.iter().any(|name| name == "none") {
            return None;
        }
        if !exporters.iter().any(|name| name == "otlp") {
            warnings.push(format!(
                "{exporter_var}: silt exports {path} over OTLP only; set it to `otlp` or `none`"
            ));
            return None;
        }
    }
    let signal_endpoint = format!("OTEL_EXPORTER_OTLP_{upper}_ENDPOINT");
    let endpoint = match lookup(&signal_endpoint) {
        Some(url) => url.trim().to_owned(),
        None => {
            let base = lookup("OTEL_EXPORTER_OTLP_ENDPOINT")?;
            format!("{}/v1/{path}", base.trim().trim_end_matches('/'))
        }
    };
    if !(endpoint.starts_with("http://") || endpoint.starts_with("https://")) {
        warnings.push(format!(
            "{signal_endpoint} or OTEL_EXPORTER_OTLP_ENDPOINT: not an http:// or https:// URL; not exporting {path}"
        ));
        return None;
    }
    let protocol_var = format!("OTEL_EXPORTER_OTLP_{upper}_PROTOCOL");
    let protocol = lookup(&protocol_var).or_else(|| lookup("OTEL_EXPORTER_OTLP_PROTOCOL"));
    let protocol = match protocol.as_deref().map(str::trim) {
        None | Some("http/protobuf") => Protocol::HttpProtobuf,
        Some("http/json") => Protocol::HttpJson,
        Some(other) => {
            // A value chosen by the user, not by a guest: safe to quote, but
            // kept short.
            let shown: String = other.chars().take(32).collect();
            warnings.push(format!(
                "OTLP protocol `{}`: silt exports OTLP over HTTP only (http/protobuf or http/json); not exporting {path}: point OTEL_EXPORTER_OTLP_ENDPOINT at the collector's OTLP/HTTP port (4318 by default) and unset the protocol",
                shown.escape_debug()
            ));
            return None;
        }
    };
    Some(Signal { endpoint, protocol })
}

/// How an export is retried: once, 50 ms later. A command's exports are
/// few and at its end; the SDK's recommended three retries over ~0.7 s
/// would hold every command up that long behind a dead collector (measured:
/// 0.9 s added to `silt data list`, `cargo xtask bench telemetry`).
pub(crate) fn retry_policy() -> opentelemetry_otlp::RetryPolicy {
    opentelemetry_otlp::RetryPolicy::recommended()
        .with_max_retries(1)
        .with_initial_delay(Duration::from_millis(50))
        .with_max_delay(Duration::from_millis(50))
        .with_max_jitter(Duration::from_millis(25))
}

/// Gives an exporter builder the endpoint, protocol and timeout of
/// `signal`.
pub(crate) fn configure<B: WithExportConfig>(
    builder: B,
    signal: &Signal,
    settings: &ExportSettings,
) -> B {
    builder
        .with_endpoint(signal.endpoint.clone())
        .with_protocol(match signal.protocol {
            Protocol::HttpProtobuf => opentelemetry_otlp::Protocol::HttpBinary,
            Protocol::HttpJson => opentelemetry_otlp::Protocol::HttpJson,
        })
        .with_timeout(settings.timeout)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(vars: &[(&str, &str)]) -> ExportSettings {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        ExportSettings::from_lookup(|name| {
            vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
        })
    }

    #[test]
    fn nothing_is_exported_without_an_endpoint() {
        assert_eq!(settings(&[]), ExportSettings::none());
        assert_eq!(
            settings(&[("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json")]),
            ExportSettings::none()
        );
    }

    #[test]
    fn the_base_endpoint_gets_each_signals_path() {
        let s = settings(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318/")]);
        assert_eq!(
            s.traces.unwrap().endpoint,
            "http://127.0.0.1:4318/v1/traces"
        );
        assert_eq!(
            s.metrics.unwrap().endpoint,
            "http://127.0.0.1:4318/v1/metrics"
        );
        assert!(s.warnings.is_empty());
    }

    #[test]
    fn a_signal_endpoint_is_used_as_is_and_alone() {
        let s = settings(&[("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "https://c.example/t")]);
        assert_eq!(s.traces.unwrap().endpoint, "https://c.example/t");
        assert_eq!(s.metrics, None);
    }

    #[test]
    fn none_and_disabled_turn_export_off() {
        let base = ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318");
        let s = settings(&[base, ("OTEL_METRICS_EXPORTER", "none")]);
        assert!(s.traces.is_some() && s.metrics.is_none());
        assert_eq!(
            settings(&[base, ("OTEL_SDK_DISABLED", "TRUE")]),
            ExportSettings::none()
        );
    }

    #[test]
    fn grpc_and_other_exporters_are_refused_with_a_warning() {
        let base = ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4317");
        let s = settings(&[base, ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")]);
        assert_eq!((s.traces, s.metrics), (None, None));
        assert_eq!(s.warnings.len(), 2, "{:?}", s.warnings);
        assert!(s.warnings[0].contains("4318"), "{}", s.warnings[0]);
        let s = settings(&[base, ("OTEL_TRACES_EXPORTER", "zipkin")]);
        assert!(s.traces.is_none() && s.metrics.is_some());
        assert!(s.warnings[0].contains("OTEL_TRACES_EXPORTER"));
        let s = settings(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "127.0.0.1:4318")]);
        assert!(s.traces.is_none() && s.warnings.len() == 2);
    }

    #[test]
    fn endpoints_are_shown_without_credentials() {
        let shown = |endpoint: &str| {
            Signal {
                endpoint: endpoint.to_owned(),
                protocol: Protocol::HttpProtobuf,
            }
            .shown_endpoint()
        };
        assert_eq!(
            shown("https://user:s3cret@collector.example:4318/v1/traces?api-key=k#x"),
            "https://collector.example:4318/v1/traces"
        );
        assert_eq!(
            shown("http://127.0.0.1:4318/v1/metrics"),
            "http://127.0.0.1:4318/v1/metrics"
        );
        assert_eq!(shown("http://a@b@host"), "http://host");
    }

    #[test]
    fn the_timeout_is_read_and_checked() {
        let base = ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318");
        assert_eq!(
            settings(&[base, ("OTEL_EXPORTER_OTLP_TIMEOUT", "250")]).timeout,
            Duration::from_millis(250)
        );
        let s = settings(&[base, ("OTEL_EXPORTER_OTLP_TIMEOUT", "soon")]);
        assert_eq!(s.timeout, DEFAULT_TIMEOUT);
        assert_eq!(s.warnings.len(), 1);
    }
}
