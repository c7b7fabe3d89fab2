//! `silt datastore setup|status|sync|gc|verify|hydrate|doctor|lock`.

use std::sync::Arc;

use clap::{Args, Subcommand};
use serde::Serialize;

use super::hydration_progress::with_progress;
use super::output::{human_bytes, plural, write_list};
use super::{Context, scope_of};
use crate::beneath::Beneath;
use crate::config::Hydration;
use crate::datastore::host_state_dir;
use crate::datastore::trust;
use crate::datastore::{
    Claim, Datastore, Fetched, LeasePolicy, collect_garbage, describe_holder, hydrate_everything,
    model_label, now_ms, parse_model, push_under_leases, remove_leftover_downloads, scope_label,
};
use crate::datastore::{DatastoreError, run_marker};
use crate::exit::{KilledRunLeftovers, UntrustworthyStore};
use crate::runtime::bindings::exports::silt::datastore::sync::{
    OrphanOptions, OrphanReport, SetupOptions, SyncOptions, SyncReport as WitSyncReport,
};
use crate::runtime::bindings::silt::datastore::types::{LocalEdits, LockInfo, LockScope, Scope};
use crate::store::{Sweep, doctor, root};

/// Datastore commands.
#[derive(Debug, Subcommand)]
pub enum DatastoreCommand {
    /// Create the datastore at the configured root (or check an existing
    /// one), after checking that the store honours conditional writes.
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
    Status {
        /// Only these models (`type/id`); default all.
        #[arg(long = "model", value_name = "TYPE/ID")]
        models: Vec<String>,
    },
    /// Pull what changed in the store, then push local changes (or only one
    /// direction).
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
    /// Expire old versions: every file keeps its newest N. Takes the leases
    /// of the models that have versions to expire, and only those. Also
    /// deletes unreferenced objects, and (for the whole datastore) the
    /// store's temporary files of killed writes.
    Gc {
        /// Versions kept per file.
        #[arg(long, value_name = "N")]
        keep: u32,
        /// Report what would be expired; change nothing, take no lease.
        #[arg(long)]
        dry_run: bool,
        /// Only these models (`type/id`); default all.
        #[arg(long = "model", value_name = "TYPE/ID")]
        models: Vec<String>,
        /// Delete unreferenced objects (uploads whose commit never came)
        /// only when older than this many seconds and no one holds a lease
        /// they could be committed under.
        #[arg(long, value_name = "SECONDS", default_value_t = 3600)]
        orphan_min_age: u64,
    },
    /// Check the index against the stored objects (reads only).
    Verify {
        /// Only these models (`type/id`); default all.
        #[arg(long = "model", value_name = "TYPE/ID")]
        models: Vec<String>,
    },
    /// Check that the store honours conditional writes (create-if-absent,
    /// update-if-match, delete-if-match, racing creates) and time a round trip.
    Doctor {
        /// Use a store that fails the checks anyway (unsafe: concurrent
        /// writers can lose updates). Same as `datastore.allow_unsafe_store`.
        #[arg(long)]
        allow_unsafe_store: bool,
    },
    /// Fetch models' latest files now (what a lazy clone fetches on use):
    /// the named models, or every model, here or in the background; or show
    /// what is present and how the background hydrator is doing.
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
    Status(LockTarget),
    /// Remove someone else's lease. Refuses if the lease changed (new holder
    /// or renewal) between inspection and removal.
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

/// Runs the doctor's checks; an untrustworthy store is an error unless
/// allowed, and then the decision is recorded in the store for every clone
/// to see ([`trust`]); a store that passes loses any such record.
fn check_store(context: &Context, allow: bool) -> anyhow::Result<doctor::DoctorReport> {
    let config = &context.locations.config.datastore;
    let allow = allow || config.allow_unsafe_store;
    let store = root::open(&config.root(&context.locations.store_dir))?;
    let report = super::block_on(doctor::diagnose(store.clone()))??;
    let failed = report.failed_checks().join(", ");
    if !report.trustworthy && !allow {
        return Err(UntrustworthyStore {
            store: report.store,
            failed,
        }
        .into());
    }
    let host_state = Beneath::create(&host_state_dir(&context.locations.local_dir))?;
    super::block_on(async {
        if report.trustworthy {
            trust::clear(&store, &host_state).await
        } else {
            let decision = trust::UnsafeStore {
                failed,
                allowed_by: crate::datastore::current_holder().name,
                allowed_at_ms: now_ms(),
            };
            eprintln!("silt: {}", decision.warning());
            trust::record(&store, &host_state, &decision).await
        }
    })?
    .map_err(|err| anyhow::anyhow!("cannot record the store's check in the store: {err}"))?;
    Ok(report)
}

#[derive(Serialize)]
struct SetupReport {
    store: String,
    created: bool,
    layout_version: u32,
    detail: String,
    local_dir: String,
    hydration: Hydration,
    /// Data files fetched (none when lazy).
    fetched: Fetched,
    /// Every request of the setup, metadata included, and the bytes read.
    requests: u64,
    bytes_read: u64,
}

/// `setup` without printing: for `silt init`.
pub(super) fn setup_quietly(context: &Context) -> anyhow::Result<()> {
    set_up(context, None, false).map(|_| ())
}

fn setup(
    context: &Context,
    retain_versions: Option<u32>,
    allow_unsafe_store: bool,
) -> anyhow::Result<()> {
    let report = set_up(context, retain_versions, allow_unsafe_store)?;
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

fn set_up(
    context: &Context,
    retain_versions: Option<u32>,
    allow_unsafe_store: bool,
) -> anyhow::Result<SetupReport> {
    let checked = check_store(context, allow_unsafe_store)?;
    let retain_versions = retain_versions.or(context.locations.config.datastore.retain_versions);
    let hydration = context.hydration();
    let (report, fetched, traffic) = super::with_datastore(context, async |datastore| {
        let report = datastore
            .setup(SetupOptions {
                create: true,
                retain_versions,
            })
            .await?;
        datastore.record_identity().await?;
        let fetched = match hydration {
            Hydration::Lazy => Fetched::default(),
            Hydration::Full => {
                with_progress(context, "hydrate", async |on_progress| {
                    hydrate_everything(datastore, on_progress).await
                })
                .await?
            }
        };
        anyhow::Ok((report, fetched, datastore.traffic()))
    })?;
    Ok(SetupReport {
        store: checked.store,
        created: report.created,
        layout_version: report.layout_version,
        detail: report.detail,
        local_dir: context.locations.local_dir.display().to_string(),
        hydration,
        fetched,
        requests: traffic.requests(),
        bytes_read: traffic.get_bytes,
    })
}

#[derive(Serialize)]
struct StatusReport {
    objects_total: u64,
    bytes_total: u64,
    objects_local: u64,
    bytes_local: u64,
    local_changes: Vec<String>,
    remote_changes: Vec<String>,
}

fn status(context: &Context, models: &[String]) -> anyhow::Result<()> {
    let scope = scope_of(models)?;
    let status = super::with_datastore(context, async |datastore| datastore.status(&scope).await)?;
    let report = StatusReport {
        objects_total: status.objects_total,
        bytes_total: status.bytes_total,
        objects_local: status.objects_local,
        bytes_local: status.bytes_local,
        local_changes: status.local_changes,
        remote_changes: status.remote_changes,
    };
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
                "local: {} uncommitted changes (silt datastore sync --push):",
                report.local_changes.len()
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

#[derive(Serialize, Default)]
struct SyncReport {
    pulled: Option<Direction>,
    pushed: Option<Direction>,
}

#[derive(Serialize)]
struct Direction {
    summary: String,
    changed: Vec<String>,
    /// Local edits moved aside: where they are now.
    set_aside: Vec<String>,
    objects_downloaded: u64,
    bytes_downloaded: u64,
    objects_uploaded: u64,
    bytes_uploaded: u64,
    partitions_read: u64,
    partitions_written: u64,
    /// Requests to the object store in this direction (leases included).
    requests: u64,
}

impl From<WitSyncReport> for Direction {
    fn from(report: WitSyncReport) -> Self {
        Self {
            summary: report.summary,
            changed: report.changed,
            set_aside: report.set_aside,
            objects_downloaded: report.stats.objects_downloaded,
            bytes_downloaded: report.stats.bytes_downloaded,
            objects_uploaded: report.stats.objects_uploaded,
            bytes_uploaded: report.stats.bytes_uploaded,
            partitions_read: report.stats.partitions_read,
            partitions_written: report.stats.partitions_written,
            requests: 0,
        }
    }
}

fn sync(
    context: &Context,
    pull: bool,
    push: bool,
    dry_run: bool,
    models: &[String],
    edits: LocalEdits,
) -> anyhow::Result<()> {
    let scope = scope_of(models)?;
    let policy = LeasePolicy::from_config(&context.locations.config.locks)?;
    let report = super::with_datastore(context, async |datastore| {
        let mut report = SyncReport::default();
        if pull {
            // A pull writes files and sidecars anywhere in its scope: keep
            // the hydrator (and this clone's other commands) out of it.
            let claim = match &scope {
                Scope::All => Claim::Everything,
                Scope::Models(models) => Claim::Models(models),
            };
            let _working_copy = datastore.working_copy_locks().foreground(claim).await?;
            if !dry_run {
                remove_leftover_downloads(datastore, &scope);
            }
            // A full clone's pull also fetches what is not present yet.
            let options = SyncOptions {
                scope: scope.clone(),
                leases: Vec::new(),
                dry_run,
                fetch_missing: context.hydration() == Hydration::Full,
                // `ours` is the push's business: a pull keeps the edits.
                local_edits: edits,
            };
            let before = datastore.traffic().requests();
            let mut pulled: Direction = datastore.pull(&options).await?.into();
            pulled.requests = datastore.traffic().requests() - before;
            pulled.set_aside = datastore
                .set_aside_locations(&pulled.set_aside)
                .iter()
                .map(|path| path.display().to_string())
                .collect();
            report.pulled = Some(pulled);
        }
        if push {
            let before = datastore.traffic().requests();
            let mut pushed: Direction = push_changes(datastore, scope, &policy, dry_run, edits)
                .await?
                .into();
            pushed.requests = datastore.traffic().requests() - before;
            report.pushed = Some(pushed);
        }
        anyhow::Ok(report)
    })?;
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

/// Pushes local changes: finds the models that have some, takes their leases
/// (sorted), commits, releases.
async fn push_changes(
    datastore: &Arc<Datastore>,
    scope: Scope,
    policy: &LeasePolicy,
    dry_run: bool,
    edits: LocalEdits,
) -> anyhow::Result<WitSyncReport> {
    let status = datastore.status(&scope).await?;
    let changed_models = status.local_models;
    let host_state = datastore.host_state()?;
    let killed = run_marker::killed_runs(&host_state, &changed_models);
    if !killed.is_empty() && edits != LocalEdits::Ours {
        return Err(KilledRunLeftovers {
            models: killed.iter().map(|run| run.model.clone()).collect(),
            runs: killed
                .iter()
                .map(|run| format!("pid {}", run.pid))
                .collect::<Vec<_>>()
                .join(", "),
        }
        .into());
    }
    if dry_run || changed_models.is_empty() {
        return datastore
            .push(&SyncOptions {
                scope: Scope::Models(changed_models),
                leases: Vec::new(),
                dry_run,
                fetch_missing: false,
                local_edits: edits,
            })
            .await;
    }
    let pushed = push_under_leases(datastore, changed_models, policy, edits).await?;
    // Committed as they were, on the user's word.
    run_marker::clear(&host_state, &killed);
    Ok(pushed)
}

fn gc(
    context: &Context,
    keep: u32,
    dry_run: bool,
    models: &[String],
    orphan_min_age: u64,
) -> anyhow::Result<()> {
    let scope = scope_of(models)?;
    let policy = LeasePolicy::from_config(&context.locations.config.locks)?;
    let (expired, orphans, leftovers) = super::with_datastore(context, async |datastore| {
        let expired = collect_garbage(datastore, scope.clone(), keep, &policy, dry_run).await?;
        // Unreferenced objects: no lease taken, none needed (see the
        // contract's `collect-orphans`).
        let collected = datastore
            .collect_orphans(&OrphanOptions {
                scope,
                min_age_ms: orphan_min_age.saturating_mul(1000),
                dry_run,
            })
            .await;
        let orphans = match collected {
            Ok(report) => Some(report),
            Err(err)
                if matches!(
                    err.downcast_ref::<DatastoreError>(),
                    Some(DatastoreError::NotSupported { .. })
                ) =>
            {
                None
            }
            Err(err) => return Err(err),
        };
        // The backend's own leftovers (a directory store's temporaries of
        // killed writes) belong to no model: collected by a whole-datastore gc.
        // The same age floor as orphans: on a shared directory whose locks
        // may not reach every host, a writer elsewhere is left alone.
        let leftovers = if models.is_empty() {
            datastore
                .store_leftovers(Sweep {
                    older_than: std::time::Duration::from_secs(orphan_min_age),
                    remove: !dry_run,
                })
                .await?
        } else {
            Vec::new()
        };
        anyhow::Ok((expired, orphans, leftovers))
    })?;
    #[derive(Serialize)]
    struct GcReport {
        dry_run: bool,
        models: Vec<String>,
        entries_expired: u64,
        objects_deleted: u64,
        bytes_freed: u64,
        orphans_found: u64,
        orphans_deleted: u64,
        orphan_bytes_deleted: u64,
        orphans_kept: u64,
        leftovers_removed: u64,
        leftover_bytes_removed: u64,
    }
    let orphans = orphans.unwrap_or(OrphanReport {
        found: 0,
        bytes_found: 0,
        deleted: 0,
        bytes_deleted: 0,
        kept: 0,
    });
    let report = GcReport {
        dry_run,
        models: expired.models.iter().map(model_label).collect(),
        entries_expired: expired.entries_expired,
        objects_deleted: expired.objects_deleted,
        bytes_freed: expired.bytes_freed,
        orphans_found: orphans.found,
        orphans_deleted: orphans.deleted,
        orphan_bytes_deleted: orphans.bytes_deleted,
        orphans_kept: orphans.kept,
        leftovers_removed: leftovers.len() as u64,
        leftover_bytes_removed: leftovers.iter().map(|leftover| leftover.size).sum(),
    };
    context.output.emit(&report, |out| {
        let (verb, deleted) = if report.dry_run {
            ("would expire", "would delete")
        } else {
            ("expired", "deleted")
        };
        writeln!(
            out,
            "{verb} {} in {} ({}, {})",
            plural(report.entries_expired, "version"),
            plural(report.models.len() as u64, "model"),
            plural(report.objects_deleted, "object"),
            human_bytes(report.bytes_freed)
        )?;
        write_list(out, &report.models)?;
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
    let scope = scope_of(models)?;
    let whole_datastore = models.is_empty();
    let (findings, leftovers) = super::with_datastore(context, async |datastore| {
        let findings = datastore.verify(&scope).await?;
        let leftovers = if whole_datastore {
            datastore
                .store_leftovers(Sweep {
                    older_than: std::time::Duration::ZERO,
                    remove: false,
                })
                .await?
        } else {
            Vec::new()
        };
        anyhow::Ok((findings, leftovers))
    })?;
    #[derive(Serialize)]
    struct Finding {
        object: String,
        problem: String,
    }
    let now = now_ms();
    let findings: Vec<Finding> = findings
        .into_iter()
        .map(|f| Finding {
            object: f.object,
            problem: f.problem,
        })
        .chain(leftovers.into_iter().map(|leftover| Finding {
            object: leftover.path,
            problem: format!(
                "a temporary file of an interrupted write to the store ({}, last written {} s ago); `silt datastore gc` removes it",
                human_bytes(leftover.size),
                now.saturating_sub(leftover.modified_ms) / 1000
            ),
        }))
        .collect();
    let problems = findings.len();
    context.output.emit(&findings, |out| {
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
    })?;
    if problems > 0 {
        anyhow::bail!(
            "verify found {} (listed above)",
            plural(problems as u64, "problem")
        );
    }
    Ok(())
}

fn doctor(context: &Context, allow_unsafe_store: bool) -> anyhow::Result<()> {
    let report = check_store(context, allow_unsafe_store)?;
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
    let infos = super::with_datastore(context, async |datastore| match &scope {
        Some(scope) => Ok(datastore.inspect(scope).await?.into_iter().collect()),
        None => datastore.list_locks().await,
    })?;
    let views: Vec<LockView> = infos.iter().map(LockView::new).collect();
    context.output.emit(&views, |out| {
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

/// Renewals a forced release races before it gives up: one every TTL/3,
/// and a release takes two requests.
const RENEWALS_RACED: usize = 3;

/// True when `a` and `b` describe one holder's lease (renewals apart): a
/// new holder gets a new fencing generation.
fn same_lease(a: &LockInfo, b: &LockInfo) -> bool {
    a.generation == b.generation && a.acquired_at == b.acquired_at
}

fn lock_release(context: &Context, target: &LockTarget) -> anyhow::Result<()> {
    let Some(scope) = target.scope()? else {
        anyhow::bail!("say which lease to release: --model <type>/<id> or --namespace");
    };
    let released = super::with_datastore(context, async |datastore| {
        let Some(mut info) = datastore.inspect(&scope).await? else {
            return anyhow::Ok(None);
        };
        // Conditional on the version just inspected: a new holder in
        // between makes this fail rather than break a lease it was not
        // aimed at. A renewal by the same holder (every TTL/3) only moves
        // the version: the lease inspected again is the same one, released
        // then.
        for _ in 0..RENEWALS_RACED {
            let Err(err) = datastore.force_release(&info).await else {
                return Ok(Some(info));
            };
            match datastore.inspect(&scope).await? {
                Some(now) if same_lease(&now, &info) && now.version != info.version => info = now,
                _ => return Err(err),
            }
        }
        datastore.force_release(&info).await?;
        Ok(Some(info))
    })?;
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
