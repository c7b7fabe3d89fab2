//! `--trace-file PATH`: the spans an OTLP collector would receive, written
//! as OTLP/JSON, one `ExportTraceServiceRequest` per line (the layout of
//! the OpenTelemetry Collector's file exporter, which its `otlpjsonfile`
//! receiver and other OTLP tools read back).

use std::fs::File;
use std::io::{BufWriter, Write as _};
use std::path::Path;
use std::sync::Mutex;

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::transform::common::tonic::ResourceAttributesWithSchema;
use opentelemetry_proto::transform::trace::tonic::group_spans_by_resource_and_scope;
use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use opentelemetry_sdk::trace::{SpanData, SpanExporter};

/// A span exporter appending to one file.
#[derive(Debug)]
pub(crate) struct TraceFile {
    file: Mutex<BufWriter<File>>,
    resource: ResourceAttributesWithSchema,
}

impl TraceFile {
    /// Creates (or empties) the file at `path`, the user's own choice on
    /// the command line. A link in its last component is refused, not
    /// followed: a path into a working copy must not let an extension's
    /// planted link send the trace (and its truncation) elsewhere.
    pub(crate) fn create(path: &Path) -> std::io::Result<Self> {
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt as _;
            options.custom_flags(libc::O_NOFOLLOW);
        }
        let file = options.open(path)?;
        Ok(Self {
            file: Mutex::new(BufWriter::new(file)),
            resource: ResourceAttributesWithSchema::default(),
        })
    }
}

impl SpanExporter for TraceFile {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        if batch.is_empty() {
            return Ok(());
        }
        let request = ExportTraceServiceRequest {
            resource_spans: group_spans_by_resource_and_scope(batch, &self.resource),
        };
        let line = serde_json::to_string(&request)
            .map_err(|err| OTelSdkError::InternalFailure(err.to_string()))?;
        let mut file = self.file.lock().unwrap_or_else(|e| e.into_inner());
        writeln!(file, "{line}")
            .and_then(|()| file.flush())
            .map_err(|err| OTelSdkError::InternalFailure(err.to_string()))
    }

    fn shutdown_with_timeout(&self, _timeout: std::time::Duration) -> OTelSdkResult {
        self.force_flush()
    }

    fn force_flush(&self) -> OTelSdkResult {
        // Flushed, not synced: a trace file is worth no fsync per command.
        let mut file = self.file.lock().unwrap_or_else(|e| e.into_inner());
        file.flush()
            .map_err(|err| OTelSdkError::InternalFailure(err.to_string()))
    }

    fn set_resource(&mut self, resource: &opentelemetry_sdk::Resource) {
        self.resource = resource.into();
    }
}
