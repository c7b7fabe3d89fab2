//! The coordinator: the host side of the datastore. It loads the datastore
//! extension ([`Datastore`]), scopes and keeps leases ([`LeaseSet`]), and
//! stops cleanly on signals ([`Signals`]). The index format and the lock
//! protocol belong to the extension; the coordinator only decides which
//! leases a command needs, how long to wait, and when to renew and release.

mod background;
mod client;
mod error;
mod gc;
mod holder;
mod hydration;
pub mod identity;
mod leases;
mod leftovers;
mod model_ref;
pub mod run_marker;
mod runtimes;
mod self_description;
mod signals;
pub(crate) mod transfer_marker;
pub mod trust;
mod working_copy_lock;

pub use background::{
    BackgroundHydration, BackgroundState, BackgroundStatus, Phase, lower_priority,
};
pub use client::Datastore;
pub use error::{DatastoreError, describe_holder, scope_label};
pub use gc::collect_garbage;
pub use holder::{current as current_holder, now_ms};
pub use hydration::{
    Fetched, HydrationProgress, LAZY_HYDRATION, Presence, full_pull, hydrate_everything,
    hydrate_models, make_present, remove_leftover_downloads,
};
pub use leases::{
    ENV_LOCK_MAX_WAIT, LEASE_FREE_COMMITS, LeasePolicy, LeaseSet, WaitNotice, WorkingCopy,
    commit_one, push_under_leases, under_leases,
};
pub use leftovers::{remove_stale_staging, remove_stale_temp_files_beside};
pub use model_ref::{InvalidModelRef, model_label, parse_model, parse_models, same_model};
pub use runtimes::Runtimes;
pub use signals::{Interrupted, Signals};
pub use working_copy_lock::{Claim, WorkingCopyGuard, WorkingCopyLocks, host_state_dir};
