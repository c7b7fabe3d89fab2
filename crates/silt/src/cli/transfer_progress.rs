//! Bytes moving between the store and this machine, as one bar on stderr
//! for the whole command: what has landed, the rate, and the time left as
//! far as the sizes are known. Only on a terminal, and never with
//! `--quiet` or `--json` ([`TransferBar::for_terminal`]).
//!
//! A command's transfers come in phases (a download, then an upload; one
//! phase per hydration batch, two at once): the bar adds them up, so it
//! never jumps back, and it is cleared when the command's datastore goes.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::capabilities::progress::ProgressSink;

/// The command's transfer bar: drawn from the first phase's start; its
/// length grows as objects name their sizes, so it starts empty and fills
/// as bytes land.
pub struct TransferBar {
    bar: ProgressBar,
}

impl TransferBar {
    /// A bar on stderr when it is a terminal and `quiet` is not set.
    pub fn for_terminal(quiet: bool) -> Option<Self> {
        if quiet || !std::io::stderr().is_terminal() {
            return None;
        }
        // Hidden until a phase begins: a command that moves nothing
        // draws nothing.
        let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::hidden());
        bar.set_style(
            ProgressStyle::with_template(
                "{prefix:>8} [{bar:24}] {bytes}/{total_bytes} {binary_bytes_per_sec} ETA {eta}",
            )
            .expect("the template is valid")
            .progress_chars("=> "),
        );
        Some(Self { bar })
    }
}

impl TransferBar {
    /// Draws the bar once there is a size to measure against (a bar of
    /// 0/0 would show as full), its rate and ETA counted from now.
    fn show(&self) {
        if self.bar.is_hidden() && self.bar.length().unwrap_or(0) > 0 {
            self.bar.reset_elapsed();
            self.bar.reset_eta();
            self.bar
                .set_draw_target(ProgressDrawTarget::stderr_with_hz(4));
            self.bar.enable_steady_tick(Duration::from_millis(250));
        }
    }
}

impl ProgressSink for TransferBar {
    fn begin(&self, label: &str, _total_items: Option<u64>, total_bytes: Option<u64>) {
        // The host's own phase names, never guest text.
        self.bar.set_prefix(match label {
            "upload" => "upload",
            "download" => "download",
            _ => "transfer",
        });
        if let Some(total) = total_bytes {
            self.bar.inc_length(total);
            self.show();
        }
    }

    fn advance(&self, _items: u64, bytes: u64) {
        self.bar.inc(bytes);
    }

    fn expect(&self, bytes: u64) {
        self.bar.inc_length(bytes);
        self.show();
    }

    fn finish(&self) {}
}

impl Drop for TransferBar {
    fn drop(&mut self) {
        self.bar.finish_and_clear();
    }
}
