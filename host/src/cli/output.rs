//! Output: human text or `--json`, chosen once; a closed pipe is not an error.

use std::io::Write;

use serde::Serialize;

/// Renders results and errors for the chosen format.
#[derive(Debug, Clone)]
pub struct Output {
    json: bool,
}

impl Output {
    /// Text output, or JSON when `json`.
    pub fn new(json: bool) -> Self {
        Self { json }
    }

    /// True for `--json`.
    pub fn is_json(&self) -> bool {
        self.json
    }

    /// Prints `value` as JSON, or runs `human` to write text.
    ///
    /// # Errors
    /// When stdout fails for a reason other than a closed pipe.
    pub fn emit<T: Serialize>(
        &self,
        value: &T,
        human: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
    ) -> anyhow::Result<()> {
        let stdout = std::io::stdout();
        let mut out = stdout.lock();
        let result = if self.json {
            serde_json::to_writer_pretty(&mut out, value)
                .map_err(std::io::Error::from)
                .and_then(|()| writeln!(out))
        } else {
            human(&mut out)
        };
        match result.and_then(|()| out.flush()) {
            Err(err) if err.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
            other => Ok(other?),
        }
    }

    /// Reports an error: `silt: error: ...` on stderr, and with `--json` an
    /// `{"error": {...}}` object on stdout as well.
    pub fn error(&self, err: &anyhow::Error, code: u8) {
        eprintln!("silt: error: {err:#}");
        if self.json {
            let value = serde_json::json!({
                "error": { "message": format!("{err:#}"), "exit_code": code }
            });
            println!("{value}");
        }
    }
}

/// `1234567` → `1.2 MiB`.
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}
