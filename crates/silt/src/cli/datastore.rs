//! `silt datastore setup|status|sync|gc|verify|hydrate|doctor|lock`.

use clap::{Args, Subcommand};
use serde::Serialize;

use super::hydration_progress::with_progress;
use super::output::{human_bytes, plural, write_list};
use super::{Context, scope_of};
use crate::config::Hydration;
use crate::datastore::{describe_holder, now_ms, parse_model, scope_label};
use crate::exit::ReportedFailure;
use crate::ops;
use crate::ops::gc::GcRequest;
use crate::ops::setup::SetupRequest;
use crate::ops::sync::SyncRequest;
use crate::runtime::bindings::silt::datastore::types::{LocalEdits, LockInfo, LockScope};

/// Datastore commands.
#[derive(Debug, Subcommand)]
pub enum DatastoreCommand {
    /// Create the datastore at the configured root (or check an existing
    /// one), after checking that the store honours conditional writes.
    #[command(after_help = super::examples::DATASTORE_SETUP)]
    Setup {
        /// Versions kept per file name (recorded in the datastore for every
        /// writer). Default: `datastore.retain_versions`, else the datastore's (10).
        #[arg(long)]
        retain_versions: Option<u32>,
        /// Use a store that fails the conditional-write checks anyway (unsafe).
        #[arg(long)]
        allow_unsafe_store: bool,
    },
    /// Compare the local copy with the store, without transferring data.
    #[command(after_help = super::examples::DATASTORE_STATUS)]
    Status {
        /// Only these models (`type/id`); default all.
        #[arg(long = "model", value_name = "TYPE/ID")]
        models: Vec<String>,
    },
    /// Pull what changed in the store, then push local changes (or only one
    /// direction).
    #[command(after_help = super::examples::DATASTORE_SYNC)]
    Sync {
        /// Only pull.
        #[arg(long, conflicts_with = "push")]
        pull: bool,
        /// Only push.
        #[arg(long)]
        push: bool,
        /// Report what would move, move nothing.
        #[arg(long)]
        dry_run: bool,
        /// Only these models (`type/id`); default all.
        #[arg(long = "model", value_name = "TYPE/ID")]
        models: Vec<String>,
        /// Resolve conflicts by committing your edits on top of the newer
        /// versions in the store (theirs stay in history); also commits
        /// what a killed `silt run` left.
        #[arg(long, conflicts_with_all = ["theirs", "pull"])]
        ours: bool,
        /// Resolve conflicts by taking the store's versions: your
        /// conflicting edits are moved to `.silt/conflicts/` in the local
        /// copy, never deleted; your other edits are then pushed.
        #[arg(long, conflicts_with = "push")]
        theirs: bool,
    },
    /// Delete what nothing needs: unreferenced objects (uploads whose
    /// commit never came) and, for the whole datastore, the store's
    /// temporary files of killed writes. With --keep N, also expire old
    /// versions so that every file keeps its newest N, under the leases of
    /// the models that have some (and only those).
    #[command(after_help = super::examples::DATASTORE_GC)]
    Gc {
        /// Versions kept per file. Without it, none are expired here: every
        /// commit already keeps the datastore's retention (`datastore setup
        /// --retain-versions`).
        #[arg(long, value_name = "N")]
        keep: Option<u32>,
        /// Report what would be expired; change nothing, take no lease.
        #[arg(long)]
        dry_run: bool,
        /// Only these models (`type/id`); default all.
        #[arg(long = "model", value_name = "TYPE/ID")]
        models: Vec<String>,
        /// Delete unreferenced objects (uploads whose commit never came)
        /// only when older than this many seconds and no one holds a lease
        /// they could be committed under.
        #[arg(long, value_name = "SECONDS", default_value_t = crate::ops::gc::DEFAULT_ORPHAN_MIN_AGE_SECS)]
        orphan_min_age: u64,
    },
    /// Check the index against the stored objects (reads only).
    #[command(after_help = super::examples::DATASTORE_VERIFY)]
    Verify {
        /// Only these models (`type/id`); default all.
        #[arg(long = "model", value_name = "TYPE/ID")]
        models: Vec<String>,
    },
    /// Check that the store honours conditional writes (create-if-absent,
    /// update-if-match, delete-if-match, racing creates) and time a round trip.
    #[command(after_help = super::examples::DATASTORE_DOCTOR)]
    Doctor {
        /// Use a store that fails the checks anyway (unsafe: concurrent
        /// writers can lose updates). Same as `datastore.allow_unsafe_store`.
        #[arg(long)]
        allow_unsafe_store: bool,
    },
    /// Fetch models' latest files now (what a lazy clone fetches on use):
    /// the named models, or every model, here or in the background; or show
    /// what is present and how the background hydrator is doing.
    #[command(after_help = super::examples::DATASTORE_HYDRATE)]
    Hydrate(super::hydrate::HydrateArgs),
    /// Inspect or break leases.
    #[command(subcommand)]
    Lock(LockCommand),
}

impl DatastoreCommand {
    /// True for the commands after which a lazy clone configured with
    /// `background = "after-command"` fetches the rest in the background.
    pub(super) fn starts_background_hydration(&self) -> bool {
        match self {
            Self::Setup { .. } | Self::Sync { .. } => true,
            Self::Hydrate(args) => args.fetches_some_models(),
            _ => false,
        }
    }
}

/// `silt datastore lock ...`
#[derive(Debug, Subcommand)]
pub enum LockCommand {
    /// Who holds which lease (every lease, or one scope).
    #[command(after_help = super::examples::LOCK_STATUS)]
    Status(LockTarget),
    /// Remove someone else's lease. Refuses if the lease changed (new holder
    /// or renewal) between inspection and removal.
    #[command(after_help = super::examples::LOCK_RELEASE)]
    Release {
        /// Required: breaking a lease someone may still be using is a decision.
        #[arg(long, required = true)]
        force: bool,
        #[command(flatten)]
        target: LockTarget,
    },
}

/// Which lease.
#[derive(Debug, Args)]
pub struct LockTarget {
    /// A model's lease (`type/id`).
    #[arg(long, value_name = "TYPE/ID", conflicts_with = "namespace")]
    model: Option<String>,
    /// The namespace lease.
    #[arg(long)]
    namespace: bool,
}

impl LockTarget {
    fn scope(&self) -> anyhow::Result<Option<LockScope>> {
        Ok(match (&self.model, self.namespace) {
            (Some(model), _) => Some(LockScope::Model(parse_model(model)?)),
            (None, true) => Some(LockScope::Namespace),
            (None, false) => None,
        })
    }
}

pub(super) fn run(context: &Context, command: DatastoreCommand) -> anyhow::Result<()> {
    match command {
        DatastoreCommand::Setup {
            retain_versions,
            allow_unsafe_store,
        } => setup(context, retain_versions, allow_unsafe_store),
        DatastoreCommand::Status { models } => status(context, &models),
        DatastoreCommand::Sync {
            pull,
            push,
            dry_run,
            models,
            ours,
            theirs,
        } => {
            let edits = match (ours, theirs) {
                (true, _) => LocalEdits::Ours,
                (_, true) => LocalEdits::Theirs,
                _ => LocalEdits::Keep,
            };
            sync(
                context,
                !push || pull,
                !pull || push,
                dry_run,
                &models,
                edits,
            )
        }
        DatastoreCommand::Gc {
            keep,
            dry_run,
            models,
            orphan_min_age,
        } => gc(context, keep, dry_run, &models, orphan_min_age),
        DatastoreCommand::Verify { models } => verify(context, &models),
        DatastoreCommand::Hydrate(args) => super::hydrate::run(context, args),
        DatastoreCommand::Doctor { allow_unsafe_store } => doctor(context, allow_unsafe_store),
        DatastoreCommand::Lock(LockCommand::Status(target)) => lock_status(context, &target),
        DatastoreCommand::Lock(LockCommand::Release { target, .. }) => {
            lock_release(context, &target)
        }
    }
}

fn setup(
    context: &Context,
    retain_versions: Option<u32>,
    allow_unsafe_store: bool,
) -> anyhow::Result<()> {
    let request = SetupRequest {
        retain_versions,
        allow_unsafe_store,
        hydration: context.hydration(),
    };
    let report = with_progress(context, "hydrate", |on_progress| {
        ops::setup::setup(&context.project(), &request, on_progress)
    })?;
    context.output.emit(&report, |out| {
        let verb = if report.created { "created" } else { "found" };
        writeln!(out, "{verb} the datastore at {}", report.store)?;
        writeln!(out, "  {}", report.detail)?;
        writeln!(out, "  local copy: {}", report.local_dir)?;
        match report.hydration {
            Hydration::Lazy => writeln!(
                out,
                "  hydration: lazy — fetched index metadata only ({}, {}); data comes when a command uses it",
                plural(report.requests, "request"),
                human_bytes(report.bytes_read)
            ),
            Hydration::Full => writeln!(
                out,
                "  hydration: full — fetched {} ({}); {}",
                plural(report.fetched.objects, "file"),
                human_bytes(report.fetched.bytes),
                plural(report.requests, "request")
            ),
        }
    })
}

fn status(context: &Context, models: &[String]) -> anyhow::Result<()> {
    let report = ops::status::status(&context.project(), &scope_of(models)?)?;
    context.output.emit(&report, |out| {
        writeln!(
            out,
            "index: {}, {}; present locally: {} ({}), {} ({})",
            plural(report.objects_total, "file"),
            human_bytes(report.bytes_total),
            plural(report.objects_local, "file"),
            percent(report.objects_local, report.objects_total),
            human_bytes(report.bytes_local),
            percent(report.bytes_local, report.bytes_total)
        )?;
        if report.remote_changes.is_empty() {
            writeln!(out, "store: no changes since the last pull")?;
        } else {
            writeln!(
                out,
                "store: {} changed since the last pull (silt datastore sync --pull):",
                plural(report.remote_changes.len() as u64, "model")
            )?;
            write_list(out, &report.remote_changes)?;
        }
        if report.local_changes.is_empty() {
            writeln!(out, "local: no uncommitted changes")
        } else {
            writeln!(
                out,
                "local: {} (silt datastore sync --push):",
                plural(report.local_changes.len() as u64, "uncommitted change")
            )?;
            write_list(out, &report.local_changes)
        }
    })
}

fn percent(part: u64, whole: u64) -> String {
    if whole == 0 {
        return "-".to_owned();
    }
    format!("{:.1}%", part as f64 * 100.0 / whole as f64)
}

fn sync(
    context: &Context,
    pull: bool,
    push: bool,
    dry_run: bool,
    models: &[String],
    edits: LocalEdits,
) -> anyhow::Result<()> {
    let request = SyncRequest {
        scope: scope_of(models)?,
        pull,
        push,
        dry_run,
        edits,
        fetch_missing: context.hydration() == Hydration::Full,
    };
    let report = ops::sync::sync(&context.project(), &request)?;
    context.output.emit(&report, |out| {
        for (label, direction) in [("pull", &report.pulled), ("push", &report.pushed)] {
            let Some(direction) = direction else { continue };
            writeln!(
                out,
                "{label}: {} ({})",
                direction.summary,
                plural(direction.requests, "request")
            )?;
            write_list(out, &direction.changed)?;
            if !direction.set_aside.is_empty() {
                writeln!(
                    out,
                    "{label}: moved {} local edits aside (the working copy has the store's versions):",
                    direction.set_aside.len()
                )?;
                write_list(out, &direction.set_aside)?;
            }
        }
        Ok(())
    })
}

fn gc(
    context: &Context,
    keep: Option<u32>,
    dry_run: bool,
    models: &[String],
    orphan_min_age: u64,
) -> anyhow::Result<()> {
    let request = GcRequest {
        scope: scope_of(models)?,
        keep,
        dry_run,
        orphan_min_age: std::time::Duration::from_secs(orphan_min_age),
    };
    let report = ops::gc::gc(&context.project(), &request)?;
    context.output.emit(&report, |out| {
        let (verb, deleted) = if report.dry_run {
            ("would expire", "would delete")
        } else {
            ("expired", "deleted")
        };
        if keep.is_some() {
            writeln!(
                out,
                "{verb} {} in {} ({}, {})",
                plural(report.entries_expired, "version"),
                plural(report.models.len() as u64, "model"),
                plural(report.objects_deleted, "object"),
                human_bytes(report.bytes_freed)
            )?;
            write_list(out, &report.models)?;
        } else {
            writeln!(
                out,
                "no version expired: commits keep the datastore's retention (--keep N keeps fewer)"
            )?;
        }
        if report.orphans_found > 0 {
            let deletable = report.orphans_found.saturating_sub(report.orphans_kept);
            writeln!(
                out,
                "orphans (objects no index entry references): {} found; {deleted} {}{}; kept {} (younger than {orphan_min_age} s, or of a model someone holds a lease on)",
                report.orphans_found,
                if report.dry_run { deletable } else { report.orphans_deleted },
                if report.dry_run { String::new() } else { format!(" ({})", human_bytes(report.orphan_bytes_deleted)) },
                report.orphans_kept
            )?;
        }
        if report.leftovers_removed > 0 {
            writeln!(
                out,
                "temporary files of interrupted writes in the store: {deleted} {} ({})",
                report.leftovers_removed,
                human_bytes(report.leftover_bytes_removed)
            )?;
        }
        Ok(())
    })
}

fn verify(context: &Context, models: &[String]) -> anyhow::Result<()> {
    let findings = ops::verify::verify(&context.project(), &scope_of(models)?)?;
    let problems = findings.len();
    /// The v2 document: what is wrong (nothing, when verified).
    #[derive(Serialize)]
    struct Verified<'a> {
        findings: &'a [ops::verify::Finding],
    }
    context.output.emit_versioned(
        &Verified {
            findings: &findings,
        },
        &findings,
        |out| {
            if findings.is_empty() {
                return writeln!(
                    out,
                    "verified: every indexed object is present with its size"
                );
            }
            for finding in &findings {
                writeln!(out, "{}: {}", finding.object, finding.problem)?;
            }
            Ok(())
        },
    )?;
    if problems > 0 {
        return Err(ReportedFailure(format!(
            "verify found {} (listed above)",
            plural(problems as u64, "problem")
        ))
        .into());
    }
    Ok(())
}

fn doctor(context: &Context, allow_unsafe_store: bool) -> anyhow::Result<()> {
    let report = ops::setup::check_store(&context.project(), allow_unsafe_store)?;
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

/// A lease as `lock status` shows it.
#[derive(Serialize)]
pub(super) struct LockView {
    scope: String,
    holder: String,
    host: String,
    pid: u32,
    generation: u64,
    age_ms: u64,
    since_renewal_ms: u64,
    ttl_ms: u32,
    stale: bool,
}

impl LockView {
    fn new(info: &LockInfo) -> Self {
        let now = now_ms();
        Self {
            scope: scope_label(&info.scope),
            holder: info.holder.name.clone(),
            host: info.holder.host.clone(),
            pid: info.holder.pid,
            generation: info.generation,
            age_ms: now.saturating_sub(info.acquired_at),
            since_renewal_ms: now.saturating_sub(info.renewed_at),
            ttl_ms: info.ttl_ms,
            stale: info.stale,
        }
    }
}

fn lock_status(context: &Context, target: &LockTarget) -> anyhow::Result<()> {
    let scope = target.scope()?;
    let infos = ops::locks::status(&context.project(), scope.as_ref())?;
    let views: Vec<LockView> = infos.iter().map(LockView::new).collect();
    /// The v2 document: the leases held (of the scope asked, or all).
    #[derive(Serialize)]
    struct Leases<'a> {
        locks: &'a [LockView],
    }
    context
        .output
        .emit_versioned(&Leases { locks: &views }, &views, |out| {
            if infos.is_empty() {
                return match &scope {
                    Some(scope) => writeln!(out, "{}: free", scope_label(scope)),
                    None => writeln!(out, "no leases are held"),
                };
            }
            for info in &infos {
                writeln!(
                    out,
                    "{}: {}",
                    scope_label(&info.scope),
                    describe_holder(info)
                )?;
            }
            Ok(())
        })
}

fn lock_release(context: &Context, target: &LockTarget) -> anyhow::Result<()> {
    let Some(scope) = target.scope()? else {
        anyhow::bail!("say which lease to release: --model <type>/<id> or --namespace");
    };
    let released = ops::locks::release(&context.project(), &scope)?;
    #[derive(Serialize)]
    struct ReleaseReport {
        scope: String,
        /// The lease that was released; `null` when there was none.
        released: Option<LockView>,
    }
    let report = ReleaseReport {
        scope: scope_label(&scope),
        released: released.as_ref().map(LockView::new),
    };
    context.output.emit(&report, |out| match &released {
        Some(info) => writeln!(
            out,
            "released the lease on {} ({})",
            scope_label(&scope),
            describe_holder(info)
        ),
        None => writeln!(out, "{}: no lease to release", scope_label(&scope)),
    })
}
