//! The work of every `silt` command, the way `cargo::ops` does it: an
//! operation takes an open [`Datastore`](crate::datastore::Datastore) (or
//! the project's [`Locations`](crate::locations::Locations)) and a typed
//! request, carries out the whole workflow — leases, hydration, run
//! markers, commits, the store's checks — and returns a typed report.
//! `cli` parses the arguments, calls one operation and renders its report
//! as text or JSON. Nothing here prints a message (`data get` delivers the
//! file it was asked for to stdout, the command's product).
//!
//! What a workflow must tell the user while it runs (what it moved aside
//! before the command it starts, say) goes through [`Events`], which the
//! CLI implements.

pub mod cache;
pub mod data;
pub mod extension;
pub mod gc;
mod given_path;
pub mod hydrate;
pub mod init;
pub mod locks;
pub mod run;
pub mod sandbox;
pub mod session;
pub mod setup;
pub mod status;
pub mod sync;
pub mod verify;

use crate::runtime::bindings::silt::datastore::types::ModelRef;

/// What a workflow tells the user while it runs, before its report.
pub trait Events {
    /// Something worth knowing now, while the work goes on (a full pull
    /// replacing a lazy one, say). Not shown under `--quiet`.
    fn notice(&self, text: &str);
    /// A warning about the user's data or the store: shown even under
    /// `--quiet`.
    fn warning(&self, text: &str);
    /// Uncommitted local edits were moved aside (to the paths given) before
    /// a command starts from the latest committed state: shown even under
    /// `--quiet`.
    fn set_aside(&self, paths: &[String]);
    /// Where the bytes of the command's transfers are shown as they move
    /// (none: not shown).
    fn transfer_progress(
        &self,
    ) -> Option<std::sync::Arc<dyn crate::capabilities::progress::ProgressSink>> {
        None
    }
    /// Who hears, as it happens, that a command waits for a lease another
    /// holds (none: no one).
    fn lease_waits(&self) -> Option<crate::datastore::WaitNotice> {
        None
    }
}

/// [`Events`] that go nowhere: for callers with no one to tell.
pub struct Silent;

impl Events for Silent {
    fn notice(&self, _: &str) {}
    fn warning(&self, _: &str) {}
    fn set_aside(&self, _: &[String]) {}
}

/// What every operation on a project works with: its configuration and
/// directories, the process's extension runtimes, and who hears the
/// workflow's [`Events`].
pub struct Project<'a> {
    /// Configuration and directories.
    pub locations: &'a crate::locations::Locations,
    /// The extension runtimes of this process.
    pub runtimes: &'a std::sync::Arc<crate::datastore::Runtimes>,
    /// Who hears what the workflow says while it runs.
    pub events: &'a dyn Events,
}

impl Project<'_> {
    /// Opens the project's datastore on a runtime and runs `work` with it
    /// ([`session::with_datastore`]).
    pub fn with_datastore<T>(
        &self,
        work: impl AsyncFnOnce(&std::sync::Arc<crate::datastore::Datastore>) -> anyhow::Result<T>,
    ) -> anyhow::Result<T> {
        session::with_datastore(self.locations, self.runtimes, self.events, work)
    }

    /// The lease policy `silt.toml` configures.
    ///
    /// # Errors
    /// When the `[locks]` settings are out of range.
    pub fn lease_policy(&self) -> anyhow::Result<crate::datastore::LeasePolicy> {
        let mut policy = crate::datastore::LeasePolicy::from_config(&self.locations.config.locks)?;
        policy.on_wait = self.events.lease_waits();
        Ok(policy)
    }
}

/// The models of `asked` the datastore's index does not hold, in order.
///
/// # Errors
/// The extension's, listing the models.
pub(crate) async fn unindexed_models(
    datastore: &crate::datastore::Datastore,
    asked: &[ModelRef],
) -> anyhow::Result<Vec<ModelRef>> {
    let known = datastore.list_models().await?;
    Ok(asked
        .iter()
        .filter(|model| !known.iter().any(|k| same_model(k, model)))
        .cloned()
        .collect())
}

pub(crate) use crate::datastore::same_model;
