//! The checks of the contract suite, in the order they run ([`run_all`]),
//! one module a concern: the basics, leases, a held commit, lease-free
//! commits, the optional features. Each returns what it saw on success, or
//! a failure saying what the contract asks and what the extension did
//! instead. The helpers they share are here.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use super::paused_writes::PausedWrites;
use super::{CheckResult, Fixture, Outcome, SuiteOptions, read_local, stage, write_local};
use crate::config::RuntimeConfig;
use crate::datastore::{Datastore, DatastoreError};
use crate::runtime::bindings::exports::silt::datastore::{hydration, sync};
use crate::runtime::bindings::silt::datastore::types::{
    Base, Committer, Lease, LocalEdits, LockScope, ModelRef, Scope,
};
use crate::runtime::{ArtifactCache, Runtime, RuntimeError, sha256_hex};
use crate::store::ObjectStore;

mod basics;
mod features;
mod held_commit;
mod inventory;
mod lease_free;
mod leases;

use basics::{conflicts, describe, pull_and_push, round_trip, setup};
use features::{gc, lazy_hydration, typed_errors};
use held_commit::held_commit;
use inventory::inventory;
use lease_free::lease_free_commits;
use leases::{fencing, lease_exclusion, namespace_exclusion};

/// Why a check did not pass.
enum NotPassed {
    Fail(String),
    Skip(String),
}

type Checked = Result<String, NotPassed>;

fn fail<T>(message: impl Into<String>) -> Result<T, NotPassed> {
    Err(NotPassed::Fail(message.into()))
}

/// `?` on a call of the check: any error fails the check, saying which call.
trait OrFail<T> {
    fn or_fail(self, what: &str) -> Result<T, NotPassed>;
}

impl<T, E: std::fmt::Display> OrFail<T> for Result<T, E> {
    fn or_fail(self, what: &str) -> Result<T, NotPassed> {
        self.map_err(|err| NotPassed::Fail(format!("{what} failed: {err:#}")))
    }
}

/// The contract's name for the kind of a failed call.
fn kind(err: &anyhow::Error) -> String {
    if let Some(err) = err.downcast_ref::<DatastoreError>() {
        return err.case().to_owned();
    }
    if let Some(err) = err.downcast_ref::<RuntimeError>() {
        return format!("a crash ({err})");
    }
    format!("an untyped error ({err:#})")
}

/// Expects `result` to be an error of one of `kinds`.
fn expect_error<T: std::fmt::Debug>(
    result: anyhow::Result<T>,
    kinds: &[&str],
    what: &str,
) -> Result<String, NotPassed> {
    match result {
        Ok(value) => fail(format!(
            "{what}: expected {}, but it succeeded ({value:?})",
            kinds.join(" or ")
        )),
        Err(err) => {
            let found = kind(&err);
            if kinds.contains(&found.as_str()) {
                Ok(found)
            } else {
                fail(format!(
                    "{what}: expected {}, got {found}",
                    kinds.join(" or ")
                ))
            }
        }
    }
}

fn model(id: &str) -> ModelRef {
    ModelRef {
        model_type: "contract/suite".to_owned(),
        model_id: id.to_owned(),
    }
}

/// The working-copy path of `name` in `model`, relative to the local copy.
fn working_path(model: &ModelRef, name: &str) -> PathBuf {
    Path::new("data")
        .join(&model.model_type)
        .join(&model.model_id)
        .join(name)
}

const TTL_MS: u32 = 30_000;

fn pull_all(fetch_missing: bool) -> sync::SyncOptions {
    sync::SyncOptions {
        scope: Scope::All,
        leases: Vec::new(),
        dry_run: false,
        fetch_missing,
        local_edits: LocalEdits::Keep,
    }
}

/// Puts `content` as `name` of `model` under a fresh lease of `datastore`.
async fn put(
    datastore: &Datastore,
    model: &ModelRef,
    name: &str,
    content: &[u8],
) -> Result<(), NotPassed> {
    let lease = datastore
        .acquire(&LockScope::Model(model.clone()), TTL_MS)
        .await
        .or_fail("locks.acquire of a free model")?;
    let staged = stage(datastore, name, content).or_fail("staging a file")?;
    let result = datastore
        .put_file(
            model,
            name,
            &staged,
            &Base::Any,
            &Committer::Leased(lease.clone()),
        )
        .await;
    let released = datastore.release(&lease).await;
    result.or_fail("models.put-file under a fresh lease")?;
    released.or_fail("locks.release")?;
    Ok(())
}

/// The checks after setup, in the order they run.
#[derive(Clone, Copy)]
enum Check {
    RoundTrip,
    PullAndPush,
    Conflicts,
    LeaseExclusion,
    Fencing,
    HeldCommit,
    NamespaceExclusion,
    LazyHydration,
    Gc,
    Inventory,
    LeaseFreeCommits,
    TypedErrors,
}

impl Check {
    const ALL: [Check; 12] = [
        Check::RoundTrip,
        Check::PullAndPush,
        Check::Conflicts,
        Check::LeaseExclusion,
        Check::Fencing,
        Check::HeldCommit,
        Check::NamespaceExclusion,
        Check::LazyHydration,
        Check::Gc,
        Check::Inventory,
        Check::LeaseFreeCommits,
        Check::TypedErrors,
    ];

    /// Its line in the report.
    fn name(self) -> &'static str {
        match self {
            Check::RoundTrip => "put, get, list and history round-trip",
            Check::PullAndPush => "pull and push between clones",
            Check::Conflicts => "an edit of an older version is a conflict, never committed on top",
            Check::LeaseExclusion => "a model lease excludes, renews, releases",
            Check::Fencing => "a lease taken over cannot commit (fencing)",
            Check::HeldCommit => {
                "a commit held across a forced takeover never lands (fencing by generation)"
            }
            Check::NamespaceExclusion => "namespace and model leases exclude each other",
            Check::LazyHydration => "lazy hydration fetches what is asked",
            Check::Gc => "gc keeps the newest versions",
            Check::Inventory => "verify and the orphan listing agree with what was committed",
            Check::LeaseFreeCommits => {
                "an unleased commit lands only while no lease is live, and fences a stale one out"
            }
            Check::TypedErrors => "mistakes get typed errors",
        }
    }

    /// The capability it needs declared, if any.
    fn capability(self) -> Option<&'static str> {
        match self {
            Check::LeaseExclusion | Check::Fencing | Check::HeldCommit => Some("model-locks"),
            Check::NamespaceExclusion => Some("namespace-locks"),
            Check::LazyHydration => Some("lazy-hydration"),
            Check::Gc => Some("gc"),
            Check::LeaseFreeCommits => Some("lease-free-commits"),
            Check::RoundTrip
            | Check::PullAndPush
            | Check::Conflicts
            | Check::Inventory
            | Check::TypedErrors => None,
        }
    }
}

/// Runs every check; a check whose prerequisite failed is skipped.
pub(super) async fn run_all(
    options: SuiteOptions,
    root: PathBuf,
    store: Arc<dyn ObjectStore>,
) -> anyhow::Result<Vec<CheckResult>> {
    let mut results = Vec::new();
    let mut record = |check: &'static str, checked: Checked| {
        let (outcome, detail) = match checked {
            Ok(detail) => (Outcome::Pass, detail),
            Err(NotPassed::Fail(detail)) => (Outcome::Fail, detail),
            Err(NotPassed::Skip(detail)) => (Outcome::Skip, detail),
        };
        results.push(CheckResult {
            check,
            outcome,
            detail,
        });
        outcome == Outcome::Pass
    };

    let runtime = Runtime::new(
        RuntimeConfig::default(),
        ArtifactCache::new(&options.cache_dir, 1 << 30),
    );
    let loaded = match runtime.load(&options.component).await {
        Ok(loaded) => loaded,
        Err(err) => {
            record("loads and validates", fail(format!("{err}")));
            return Ok(results);
        }
    };
    let metadata = loaded.metadata.clone();
    record(
        "loads and validates",
        Ok(format!(
            "{} {} ({}), capabilities: {}",
            metadata.name,
            metadata.version,
            metadata.api,
            if metadata.capabilities.is_empty() {
                "none".to_owned()
            } else {
                metadata.capabilities.join(", ")
            }
        )),
    );
    let fixture = Fixture::new(
        options,
        root,
        store,
        metadata.name.clone(),
        metadata.capabilities.clone(),
    );
    // Two clones, as two machines: every check uses A, and those about
    // more than one holder use B too (each on its own models).
    let (a, b) = match (
        fixture.clone_datastore(false).await,
        fixture.clone_datastore(false).await,
    ) {
        (Ok(a), Ok(b)) => (a, b),
        (Err(err), _) | (_, Err(err)) => {
            record("opens a datastore", fail(format!("{err:#}")));
            return Ok(results);
        }
    };

    record(
        "describe matches the metadata",
        describe(&a, &metadata).await,
    );
    let set_up = record(
        "setup creates a datastore; a clone attaches",
        setup(&a, &b).await,
    );
    for check in Check::ALL {
        let checked = if !set_up {
            Err(NotPassed::Skip("needs setup".to_owned()))
        } else if let Some(capability) = check.capability().filter(|c| !fixture.declares(c)) {
            Err(NotPassed::Skip(format!("does not declare `{capability}`")))
        } else {
            match check {
                Check::RoundTrip => round_trip(&a).await,
                Check::PullAndPush => pull_and_push(&a, &b).await,
                Check::Conflicts => conflicts(&a, &b).await,
                Check::LeaseExclusion => lease_exclusion(&a, &b).await,
                Check::Fencing => fencing(&a, &b).await,
                Check::HeldCommit => held_commit(&fixture, &b).await,
                Check::NamespaceExclusion => namespace_exclusion(&a, &b).await,
                Check::LazyHydration => lazy_hydration(&fixture, &a).await,
                Check::Gc => gc(&a).await,
                Check::Inventory => inventory(&fixture, &a).await,
                Check::LeaseFreeCommits => lease_free_commits(&a, &b).await,
                Check::TypedErrors => typed_errors(&a).await,
            }
        };
        record(check.name(), checked);
    }
    Ok(results)
}

/// Commits `content` as `name` on `datastore` if `base` holds, under a
/// fresh lease of the model.
async fn put_on(
    datastore: &Datastore,
    model: &ModelRef,
    name: &str,
    content: &[u8],
    base: Base,
) -> anyhow::Result<String> {
    let lease = datastore
        .acquire(&LockScope::Model(model.clone()), TTL_MS)
        .await?;
    let result = put_as(
        datastore,
        model,
        name,
        content,
        base,
        Committer::Leased(lease.clone()),
    )
    .await;
    datastore.release(&lease).await?;
    result
}

/// Commits `content` as `name` on `datastore` if `base` holds, as `by`.
async fn put_as(
    datastore: &Datastore,
    model: &ModelRef,
    name: &str,
    content: &[u8],
    base: Base,
    by: Committer,
) -> anyhow::Result<String> {
    let staged = stage(datastore, name, content)?;
    Ok(datastore
        .put_file(model, name, &staged, &base, &by)
        .await?
        .version)
}

/// Whether `name` is a live file of `model`, as `datastore` lists it now.
async fn lists(datastore: &Datastore, model: &ModelRef, name: &str) -> Result<bool, NotPassed> {
    match datastore.list_files(model).await {
        Ok(files) => Ok(files.iter().any(|file| file.name == name)),
        Err(err) if kind(&err) == "not-found" => Ok(false),
        Err(err) => fail(format!("models.list-files failed: {err:#}")),
    }
}
