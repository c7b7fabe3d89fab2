//! `silt cache show|prune`: the artifact cache of compiled extensions.

use clap::Subcommand;

use super::Context;
use super::output::{human_bytes, in_milliseconds, plural};
use crate::ops;

/// Cache commands.
#[derive(Debug, Subcommand)]
pub enum CacheCommand {
    /// Show where the cache is, its size and its cap.
    #[command(after_help = super::examples::CACHE_SHOW)]
    Show,
    /// Evict least recently used artifacts down to the cap (or less).
    #[command(after_help = super::examples::CACHE_PRUNE)]
    Prune {
        /// Remove every artifact.
        #[arg(long, conflicts_with = "max_size_mib")]
        all: bool,
        /// Prune down to this many MiB instead of the configured cap.
        #[arg(long)]
        max_size_mib: Option<u64>,
    },
}

pub(super) fn run(context: &Context, command: CacheCommand) -> anyhow::Result<()> {
    match command {
        CacheCommand::Show => {
            let report = ops::cache::show(&context.locations)?;
            // Seconds in v1, milliseconds in v2.
            let v2 = in_milliseconds(&report, &[("last_used", "last_used")])?;
            context.output.emit_versioned(&v2, &report, |out| {
                writeln!(out, "artifact cache: {}", report.dir.display())?;
                writeln!(
                    out,
                    "{}, {} of {} cap",
                    plural(report.entries.len() as u64, "artifact"),
                    human_bytes(report.total_bytes),
                    human_bytes(report.max_bytes)
                )
            })
        }
        CacheCommand::Prune { all, max_size_mib } => {
            let target = if all {
                Some(0)
            } else {
                max_size_mib.map(|mib| mib << 20)
            };
            let report = ops::cache::prune(&context.locations, target)?;
            context.output.emit(&report, |out| {
                writeln!(
                    out,
                    "removed {} ({}); kept {} ({})",
                    plural(report.removed, "artifact"),
                    human_bytes(report.freed_bytes),
                    report.kept,
                    human_bytes(report.kept_bytes)
                )
            })
        }
    }
}
