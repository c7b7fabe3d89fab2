//! The OTLP exporters' HTTP client: reqwest's blocking client, which the
//! SDK's export threads (plain threads, no async runtime) can call.
//!
//! It is reqwest 0.13 on rustls, the client silt already builds for its
//! registry, rather than the exporter's own reqwest 0.12 feature.

use std::io::Read as _;
use std::time::Duration;

use opentelemetry_http::{Bytes, HttpClient, HttpError, Request, Response};

use crate::TelemetryError;

/// The most of a collector's answer read (an OTLP answer is a few bytes;
/// a misdirected endpoint may answer a large page).
const MAX_RESPONSE_BYTES: u64 = 64 << 10;

/// [`HttpClient`] over `reqwest::blocking`.
#[derive(Debug, Clone)]
pub(crate) struct BlockingHttp {
    client: reqwest::blocking::Client,
}

impl BlockingHttp {
    /// A client whose every request (connect, send, answer) ends within
    /// `timeout`. Must not be built or dropped inside an async runtime
    /// (the blocking client runs one of its own): silt builds it before
    /// its runtime starts and drops it after.
    ///
    /// Without `tls` (every endpoint is `http://`) no root certificate is
    /// loaded: reading the system's store opened 147 files, ~5 ms of every
    /// command (strace; `cargo xtask bench telemetry`), for a connection that never uses it.
    pub(crate) fn new(timeout: Duration, tls: bool) -> Result<Self, TelemetryError> {
        let mut builder = reqwest::blocking::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            // Exports are not redirected (the spec says so for OTLP/HTTP).
            .redirect(reqwest::redirect::Policy::none());
        if !tls {
            builder = builder.tls_certs_only([]);
        }
        let client = builder.build().map_err(|err| {
            TelemetryError::Exporter(format!("cannot build an HTTP client: {err}"))
        })?;
        Ok(Self { client })
    }
}

#[async_trait::async_trait]
impl HttpClient for BlockingHttp {
    async fn send_bytes(&self, request: Request<Bytes>) -> Result<Response<Bytes>, HttpError> {
        let (parts, body) = request.into_parts();
        let mut builder = self
            .client
            .request(parts.method, parts.uri.to_string())
            .body(body.to_vec());
        for (name, value) in &parts.headers {
            builder = builder.header(name, value);
        }
        let answer = builder.send()?;
        let status = answer.status();
        let mut body = Vec::new();
        answer.take(MAX_RESPONSE_BYTES).read_to_end(&mut body)?;
        Ok(Response::builder()
            .status(status.as_u16())
            .body(Bytes::from(body))?)
    }
}
