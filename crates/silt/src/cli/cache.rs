//! `silt cache show|prune`: the artifact cache of compiled extensions.

use clap::Subcommand;
use serde::Serialize;

use super::Context;
use super::output::{human_bytes, plural};
use crate::runtime::{ArtifactCache, CacheEntry};

/// Cache commands.
#[derive(Debug, Subcommand)]
pub enum CacheCommand {
    /// Show where the cache is, its size and its cap.
    Show,
    /// Evict least recently used artifacts down to the cap (or less).
    Prune {
        /// Remove every artifact.
        #[arg(long, conflicts_with = "max_size_mib")]
        all: bool,
        /// Prune down to this many MiB instead of the configured cap.
        #[arg(long)]
        max_size_mib: Option<u64>,
    },
}

#[derive(Serialize)]
struct ShowReport {
    dir: std::path::PathBuf,
    max_bytes: u64,
    total_bytes: u64,
    entries: Vec<CacheEntry>,
}

pub(super) fn run(context: &Context, command: CacheCommand) -> anyhow::Result<()> {
    let max_bytes = context.locations.config.cache.max_size_mib << 20;
    let cache = ArtifactCache::new(&context.locations.cache_dir, max_bytes);
    match command {
        CacheCommand::Show => {
            let entries = cache.entries()?;
            let report = ShowReport {
                dir: cache.dir().to_owned(),
                max_bytes,
                total_bytes: entries.iter().map(|e| e.size).sum(),
                entries,
            };
            context.output.emit(&report, |out| {
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
                0
            } else {
                max_size_mib.map_or(max_bytes, |mib| mib << 20)
            };
            let report = cache.evict_to(target, None)?;
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
