//! Progress of a long hydration on stderr when it is not a terminal:
//! plain lines at most once a second (models, files, bytes, rate, ETA).
//! On a terminal the transfer bar shows the bytes as they land
//! ([`super::transfer_progress`]); nothing with `--json` or `--quiet`.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use super::output::{human_bytes, plural};
use crate::datastore::HydrationProgress;

/// Where progress goes.
enum Sink {
    Lines { last: Option<Instant> },
    Silent,
}

/// Reports [`HydrationProgress`] as it comes.
pub struct ProgressReporter {
    sink: Sink,
    started: Instant,
    what: &'static str,
}

impl ProgressReporter {
    /// A reporter for `what` (e.g. `hydrate`); silent when `silent`.
    pub fn new(what: &'static str, silent: bool) -> Self {
        let sink = if silent || std::io::stderr().is_terminal() {
            Sink::Silent
        } else {
            Sink::Lines { last: None }
        };
        Self {
            sink,
            started: Instant::now(),
            what,
        }
    }

    /// Shows `progress`.
    pub fn update(&mut self, progress: &HydrationProgress) {
        // Nothing to hydrate (an empty datastore): no "0/0 models" line.
        if progress.models_total == 0 {
            return;
        }
        let elapsed = self.started.elapsed().as_secs_f64().max(1e-3);
        let rate = progress.fetched.bytes as f64 / elapsed;
        let files = format!(
            "{}, {} fetched ({}/s)",
            plural(progress.fetched.objects, "file"),
            human_bytes(progress.fetched.bytes),
            human_bytes(rate as u64)
        );
        match &mut self.sink {
            Sink::Lines { last } => {
                let done = progress.models_done == progress.models_total;
                if done || last.is_none_or(|at| at.elapsed() >= Duration::from_secs(1)) {
                    *last = Some(Instant::now());
                    let eta =
                        eta(progress, elapsed).map_or(String::new(), |s| format!(", ETA {s:.0} s"));
                    eprintln!(
                        "{}: {}/{} models, {files}{eta}",
                        self.what, progress.models_done, progress.models_total
                    );
                }
            }
            Sink::Silent => {}
        }
    }

    /// Ends the report (nothing more to show: the summary follows).
    pub fn finish(self) {}
}

/// Seconds left at the pace so far, by models done.
fn eta(progress: &HydrationProgress, elapsed: f64) -> Option<f64> {
    (progress.models_done > 0 && progress.models_done < progress.models_total).then(|| {
        elapsed / progress.models_done as f64
            * (progress.models_total - progress.models_done) as f64
    })
}

/// Runs `work` with a reporter for `what` on stderr (silent with `--json`
/// or `--quiet`).
pub(super) fn with_progress<T>(
    context: &super::Context,
    what: &'static str,
    work: impl FnOnce(&mut dyn FnMut(&HydrationProgress)) -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    let mut reporter = ProgressReporter::new(what, context.silent_progress());
    let result = work(&mut |progress| reporter.update(progress));
    reporter.finish();
    result
}
