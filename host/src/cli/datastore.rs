//! `silt datastore doctor`: can this store be trusted with concurrent writers?

use clap::Subcommand;

use super::Context;
use crate::exit::UntrustworthyStore;
use crate::store::{doctor, root};

/// Datastore commands.
#[derive(Debug, Subcommand)]
pub enum DatastoreCommand {
    /// Check that the store honours conditional writes (create-if-absent,
    /// update-if-match, delete-if-match, racing creates) and time a round trip.
    Doctor {
        /// Use a store that fails the checks anyway (unsafe: concurrent
        /// writers can lose updates). Same as `datastore.allow_unsafe_store`.
        #[arg(long)]
        allow_unsafe_store: bool,
    },
}

pub(super) fn run(context: &Context, command: DatastoreCommand) -> anyhow::Result<()> {
    match command {
        DatastoreCommand::Doctor { allow_unsafe_store } => doctor(context, allow_unsafe_store),
    }
}

fn doctor(context: &Context, allow_unsafe_store: bool) -> anyhow::Result<()> {
    let config = &context.locations.config.datastore;
    let allow = allow_unsafe_store || config.allow_unsafe_store;
    let store = root::open(config, &context.locations.store_dir)?;
    let report = super::block_on(doctor::diagnose(store))??;
    if !report.trustworthy && !allow {
        let failed: Vec<&str> = report
            .checks
            .iter()
            .filter(|c| !c.ok)
            .map(|c| c.name)
            .collect();
        return Err(UntrustworthyStore {
            store: report.store,
            failed: failed.join(", "),
        }
        .into());
    }
    context.output.emit(&report, |out| {
        writeln!(out, "store: {}", report.store)?;
        for check in &report.checks {
            writeln!(out, "  {:4}  {}: {}", if check.ok { "ok" } else { "FAIL" }, check.name, check.detail)?;
        }
        writeln!(out, "round trip: {:.1} ms (put + get of 1 KiB, median of 5)", report.round_trip_ms)?;
        if report.trustworthy {
            writeln!(out, "verdict: safe for concurrent writers")
        } else {
            writeln!(
                out,
                "verdict: UNSAFE — used only because it was explicitly allowed; concurrent writers can lose updates"
            )
        }
    })
}
