//! The log as a user reads it on stderr.
//!
//! At the default level, a warning is a line like silt's other messages
//! (`silt: warning: …`), not a log record with a time and a level column
//! ([`PlainEvents`]).
//!
//! With `-v`, each of silt's spans (a store request, an extension call, a
//! lease taken, a transfer, the command itself) is one line when it ends,
//! with what it was about and how long it took ([`SpanLog`]):
//!
//! ```text
//! silt: store.request op=put key_prefix=data status=ok bytes=1048576 (12.4 ms)
//! ```
//!
//! Fields are the span's own, each named by the last part of its name;
//! `otel.*` fields (the exporter's) are not shown. Text is escaped: a key
//! or a holder's name may come from an extension.

use std::fmt::Write as _;
use std::time::Instant;

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;

/// Events as `silt: warning: …` (or `error`, `info`, `debug`) lines.
pub(crate) struct PlainEvents;

impl<S, N> FormatEvent<S, N> for PlainEvents
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> std::fmt::Result {
        let kind = match *event.metadata().level() {
            Level::ERROR => "error",
            Level::WARN => "warning",
            Level::INFO => "info",
            _ => "debug",
        };
        write!(writer, "silt: {kind}: ")?;
        ctx.field_format().format_fields(writer.by_ref(), event)?;
        writeln!(writer)
    }
}

/// The layer; filter it to the spans to show.
pub(crate) struct SpanLog;

/// What is kept on a span until it closes.
struct Timed {
    started: Instant,
    fields: Fields,
}

/// A span's fields as `name=value` pairs, in the order recorded.
#[derive(Default)]
struct Fields(String);

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.pair(field, &format!("{value:?}"));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.pair(field, value);
    }
}

impl Fields {
    fn pair(&mut self, field: &Field, value: &str) {
        let name = field.name();
        if name.starts_with("otel.") {
            return;
        }
        let name = name.strip_prefix("silt.").unwrap_or(name);
        // `silt.store.op` of `store.request` reads as `op`.
        let name = name.rsplit_once('.').map_or(name, |(_, last)| last);
        let _ = write!(self.0, " {name}={}", escaped(value));
    }
}

/// `text` with control characters (and invisible reordering ones) shown
/// as escapes, never acted on by a terminal.
fn escaped(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for ch in text.chars() {
        let reorders = matches!(ch, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}');
        if ch.is_control() || reorders {
            out.extend(ch.escape_default());
        } else {
            out.push(ch);
        }
    }
    out
}

impl<S> tracing_subscriber::Layer<S> for SpanLog
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let mut fields = Fields::default();
        attrs.record(&mut fields);
        span.extensions_mut().insert(Timed {
            started: Instant::now(),
            fields,
        });
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        if let Some(timed) = span.extensions_mut().get_mut::<Timed>() {
            values.record(&mut timed.fields);
        }
    }

    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(&id) else { return };
        let extensions = span.extensions();
        let Some(timed) = extensions.get::<Timed>() else {
            return;
        };
        let millis = timed.started.elapsed().as_secs_f64() * 1000.0;
        eprintln!("silt: {}{} ({millis:.1} ms)", span.name(), timed.fields.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_from_an_extension_cannot_drive_the_terminal() {
        assert_eq!(escaped("plain key/1"), "plain key/1");
        assert_eq!(escaped("a\u{1b}[2Jb"), "a\\u{1b}[2Jb");
        assert_eq!(escaped("x\u{202e}y"), "x\\u{202e}y");
        assert_eq!(escaped("line\nbreak"), "line\\nbreak");
    }
}
