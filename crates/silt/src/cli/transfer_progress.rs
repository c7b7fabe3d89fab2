//! Bytes moving between the store and this machine, as one bar on stderr:
//! what has landed, the rate, and the time left as far as the sizes are
//! known. Only on a terminal, and never with `--quiet` or `--json`
//! ([`TransferBar::for_terminal`]).
//!
//! A command's transfers come in phases (a download, then an upload; one
//! phase per hydration batch, two at once): the counts add up over the
//! command, so the bar never jumps back, and it is drawn only while a
//! phase runs, so nothing redraws over what a `silt run` command prints.

use std::io::IsTerminal;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::capabilities::progress::ProgressSink;

/// The command's transfer bar.
pub struct TransferBar {
    /// Drawn while a phase runs and a size is known; cleared between.
    bar: Mutex<Option<ProgressBar>>,
    /// Bytes moved, and bytes known to come, over the whole command.
    moved: AtomicU64,
    expected: AtomicU64,
    /// Phases begun and not finished.
    active: AtomicUsize,
    /// What the last phase moves (the host's own phase names).
    label: Mutex<&'static str>,
}

impl TransferBar {
    /// A bar on stderr when it is a terminal and `quiet` is not set.
    pub fn for_terminal(quiet: bool) -> Option<Self> {
        (!quiet && std::io::stderr().is_terminal()).then(|| Self {
            bar: Mutex::new(None),
            moved: AtomicU64::new(0),
            expected: AtomicU64::new(0),
            active: AtomicUsize::new(0),
            label: Mutex::new("transfer"),
        })
    }

    /// Brings the bar up to date: drawn (made if need be) while a phase
    /// runs and a size is known (a bar of 0/0 would show as full).
    fn refresh(&self) {
        let Ok(mut slot) = self.bar.lock() else {
            return;
        };
        let (moved, expected) = (
            self.moved.load(Ordering::Relaxed),
            self.expected.load(Ordering::Relaxed),
        );
        if slot.is_none() && self.active.load(Ordering::SeqCst) > 0 && expected > 0 {
            let bar = ProgressBar::with_draw_target(
                Some(expected),
                ProgressDrawTarget::stderr_with_hz(4),
            );
            bar.set_style(
                ProgressStyle::with_template(
                    "{prefix:>8} [{bar:24}] {bytes}/{total_bytes} {binary_bytes_per_sec} ETA {eta}",
                )
                .expect("the template is valid")
                .progress_chars("=> "),
            );
            bar.set_position(moved);
            bar.set_prefix(self.label.lock().map_or("transfer", |label| *label));
            bar.enable_steady_tick(Duration::from_millis(250));
            *slot = Some(bar);
        }
        if let Some(bar) = slot.as_ref() {
            bar.set_prefix(self.label.lock().map_or("transfer", |label| *label));
            bar.set_length(expected.max(moved));
            bar.set_position(moved);
        }
    }
}

impl ProgressSink for TransferBar {
    fn begin(&self, label: &str, _total_items: Option<u64>, total_bytes: Option<u64>) {
        self.active.fetch_add(1, Ordering::SeqCst);
        // Never guest text: only the host's own phase names are shown.
        if let Ok(mut shown) = self.label.lock() {
            *shown = match label {
                "upload" => "upload",
                "download" => "download",
                _ => "transfer",
            };
        }
        if let Some(total) = total_bytes {
            self.expected.fetch_add(total, Ordering::Relaxed);
        }
        self.refresh();
    }

    fn advance(&self, _items: u64, bytes: u64) {
        self.moved.fetch_add(bytes, Ordering::Relaxed);
        self.refresh();
    }

    fn expect(&self, bytes: u64) {
        self.expected.fetch_add(bytes, Ordering::Relaxed);
        self.refresh();
    }

    fn finish(&self) {
        // A finish without its begin (an extension's own calls) counts
        // nothing down.
        let before = self
            .active
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1));
        if before == Ok(1)
            && let Ok(mut slot) = self.bar.lock()
            && let Some(bar) = slot.take()
        {
            bar.finish_and_clear();
        }
    }
}

impl Drop for TransferBar {
    fn drop(&mut self) {
        if let Ok(mut slot) = self.bar.lock()
            && let Some(bar) = slot.take()
        {
            bar.finish_and_clear();
        }
    }
}
