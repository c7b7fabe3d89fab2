//! Output: human text or `--json`, chosen once; a closed pipe is not an error.
//!
//! Human text often carries what an extension said (file and model names,
//! error details): everything written as text, and every error, passes
//! through [`TerminalSafe`], which shows control characters escaped, so no
//! guest string can drive the user's terminal. JSON escapes them by itself.

use std::io::Write;

use serde::Serialize;

/// Which shapes `--json` prints (docs/json/README.md): `v2`, or `v1` for
/// this release when `SILT_JSON_VERSION=1` asks for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JsonVersion {
    /// `docs/json/v1/`: four commands print a bare array; extensions'
    /// `added_at` in seconds.
    V1,
    /// `docs/json/v2/`: an object at the top of every document; every time
    /// in milliseconds.
    V2,
}

/// The variable a script sets to keep reading `v1` shapes.
pub const JSON_VERSION_VAR: &str = "SILT_JSON_VERSION";

impl JsonVersion {
    /// From `SILT_JSON_VERSION` (unset: the current version).
    ///
    /// # Errors
    /// A value that names no version, saying which ones there are.
    pub fn from_env() -> Result<Self, String> {
        match std::env::var(JSON_VERSION_VAR).as_deref() {
            Err(_) | Ok("" | "2") => Ok(Self::V2),
            Ok("1") => Ok(Self::V1),
            Ok(other) => Err(format!(
                "{JSON_VERSION_VAR}={}: the --json shapes are versions 1 and 2 (docs/json/README.md); unset it for the current one",
                terminal_safe(other)
            )),
        }
    }
}

/// `value` as JSON with each field `(name, v2_name)` of `fields`, at any
/// depth, turned from seconds into whole milliseconds under `v2_name`: the
/// v2 shape of a report whose v1 shape counted time in seconds.
///
/// # Errors
/// When `value` does not serialize.
pub fn in_milliseconds(
    value: &impl Serialize,
    fields: &[(&str, &str)],
) -> anyhow::Result<serde_json::Value> {
    fn walk(value: &mut serde_json::Value, fields: &[(&str, &str)]) {
        match value {
            serde_json::Value::Object(map) => {
                for (name, v2_name) in fields {
                    if let Some(seconds) = map.get(*name).and_then(serde_json::Value::as_f64) {
                        map.remove(*name);
                        let ms = (seconds * 1000.0).round() as u64;
                        map.insert((*v2_name).to_owned(), ms.into());
                    }
                }
                map.values_mut().for_each(|inner| walk(inner, fields));
            }
            serde_json::Value::Array(items) => {
                items.iter_mut().for_each(|inner| walk(inner, fields))
            }
            _ => {}
        }
    }
    let mut value = serde_json::to_value(value)?;
    walk(&mut value, fields);
    Ok(value)
}

/// Renders results and errors for the chosen format.
#[derive(Debug, Clone)]
pub struct Output {
    json: bool,
    quiet: bool,
    version: JsonVersion,
}

impl Output {
    /// Text output, or JSON of `version`'s shapes when `json`; with `quiet`
    /// (`-q`) text results and notices are left out (JSON, which a script
    /// asked for, is not).
    pub fn new(json: bool, quiet: bool, version: JsonVersion) -> Self {
        Self {
            json,
            quiet,
            version,
        }
    }

    /// The shapes `--json` prints.
    pub fn json_version(&self) -> JsonVersion {
        self.version
    }

    /// Prints `v2` (or, when a script asked for the `v1` shapes, `v1`) as
    /// JSON, or runs `human` to write text (unless `-q`).
    ///
    /// # Errors
    /// As [`Output::emit`].
    pub fn emit_versioned<V2: Serialize, V1: Serialize>(
        &self,
        v2: &V2,
        v1: &V1,
        human: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
    ) -> anyhow::Result<()> {
        match self.version {
            JsonVersion::V2 => self.emit(v2, human),
            JsonVersion::V1 => self.emit(v1, human),
        }
    }

    /// True for `--json`.
    pub fn is_json(&self) -> bool {
        self.json
    }

    /// Prints `value` as JSON, or runs `human` to write text (unless `-q`).
    ///
    /// # Errors
    /// When stdout fails for a reason other than a closed pipe.
    pub fn emit<T: Serialize>(
        &self,
        value: &T,
        human: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
    ) -> anyhow::Result<()> {
        if self.quiet && !self.json {
            return Ok(());
        }
        let stdout = std::io::stdout();
        let mut out = stdout.lock();
        let result = if self.json {
            serde_json::to_writer_pretty(&mut out, value)
                .map_err(std::io::Error::from)
                .and_then(|()| writeln!(out))
        } else {
            human(&mut TerminalSafe(&mut out))
        };
        match result.and_then(|()| out.flush()) {
            Err(err) if err.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
            other => Ok(other?),
        }
    }

    /// A notice on stderr (`silt: ...`), for text output without `-q`:
    /// what a person watching should know, never what a script reads.
    pub fn notice(&self, text: &str) {
        if !self.json && !self.quiet {
            eprintln!("silt: {}", terminal_safe(text));
        }
    }

    /// Reports an error: `silt: error: ...` on stderr, and with `--json` an
    /// `{"error": {...}}` object on stdout as well — unless the command's
    /// report on stdout already holds the details
    /// ([`crate::exit::ReportedFailure`]): stdout stays one document.
    pub fn error(&self, err: &anyhow::Error, code: u8) {
        eprintln!("silt: error: {}", terminal_safe(&format!("{err:#}")));
        let reported = err
            .chain()
            .any(|cause| cause.is::<crate::exit::ReportedFailure>());
        if self.json && !reported {
            let value = serde_json::json!({
                "error": { "message": format!("{err:#}"), "exit_code": code }
            });
            println!("{value}");
        }
    }
}

/// A writer that passes text through with its control characters (but
/// newlines and tabs) and invisible reordering characters escaped.
pub struct TerminalSafe<W>(pub W);

impl<W: Write> Write for TerminalSafe<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        // `write!` hands over whole `str` pieces, so a chunk is whole UTF-8.
        let text = String::from_utf8_lossy(buf);
        self.0.write_all(terminal_safe(&text).as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

/// `text` with every control character but newline and tab escaped.
pub fn terminal_safe(text: &str) -> String {
    if !text
        .chars()
        .any(|ch| crate::runtime::needs_escape(ch) && ch != '\n' && ch != '\t')
    {
        return text.to_owned();
    }
    text.split('\n')
        .map(|line| {
            line.split('\t')
                .map(|part| crate::runtime::guest_text_limited(part, usize::MAX))
                .collect::<Vec<_>>()
                .join("\t")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Lines of a list shown in text output before the rest is summarised.
pub const LIST_LIMIT: usize = 200;

/// Writes `items`, one per line indented by two spaces, at most
/// [`LIST_LIMIT`] of them, then how many more there are (`--json` has all).
///
/// # Errors
/// When writing fails.
pub fn write_list<T: std::fmt::Display>(out: &mut dyn Write, items: &[T]) -> std::io::Result<()> {
    for item in items.iter().take(LIST_LIMIT) {
        // One line per item, whatever it holds (items are often guest text).
        writeln!(out, "  {}", crate::runtime::guest_text(&item.to_string()))?;
    }
    if items.len() > LIST_LIMIT {
        writeln!(
            out,
            "  … and {} more (--json lists them all)",
            items.len() - LIST_LIMIT
        )?;
    }
    Ok(())
}

pub use crate::text::{human_bytes, plural};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_output_cannot_drive_the_terminal() {
        let mut written = Vec::new();
        let mut out = TerminalSafe(&mut written);
        let hostile = "\u{1b}]0;pwned\u{7}\u{1b}[2J\rsilt: ok";
        writeln!(out, "name\t{hostile}").unwrap();
        let text = String::from_utf8(written).unwrap();
        assert_eq!(text, "name\t\\u{1b}]0;pwned\\u{7}\\u{1b}[2J\\rsilt: ok\n");
    }

    #[test]
    fn long_lists_are_cut_and_counted() {
        let items: Vec<String> = (0..1000).map(|n| n.to_string()).collect();
        let mut written = Vec::new();
        write_list(&mut written, &items).unwrap();
        let text = String::from_utf8(written).unwrap();
        assert_eq!(text.lines().count(), LIST_LIMIT + 1);
        assert!(
            text.ends_with("… and 800 more (--json lists them all)\n"),
            "{text}"
        );
    }
}
