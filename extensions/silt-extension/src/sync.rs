//! The `sync` interface: setup, verify, pull, push and status.
//!
//! Deciding what changed costs, for an index with a journal
//! ([`Index::JOURNAL`]), one listing of the journal after this cache's
//! horizon: only the models named since are read (see [`crate::journal`];
//! every ten minutes, and whenever the journal cannot vouch, a full check
//! instead). Otherwise it costs one listing of the index ([`Index::list`]),
//! compared with the versions the sidecars remember (through the local
//! summary, so an unchanged model costs nothing). Only changed models are
//! read, and only their files already present locally are refreshed.
//!
//! Every [`Index`] implements it (and [`crate::export!`] exports it):
//!
//! ```no_run,standalone_crate
//! use silt_extension::Index;
//! use silt_extension::exports::silt::datastore::sync::{Guest as _, SyncOptions};
//! use silt_extension::silt::datastore::types::{Error, Lease, LocalEdits, Scope};
//!
//! /// What `silt push` asks of the extension, under the leases the host took.
//! fn push<I: Index>(leases: Vec<Lease>) -> Result<String, Error> {
//!     let options = SyncOptions {
//!         scope: Scope::All,
//!         leases,
//!         dry_run: false,
//!         fetch_missing: false,
//!         local_edits: LocalEdits::Keep, // an edit whose base moved on is refused
//!     };
//!     Ok(I::push_changed(options)?.summary)
//! }
//! ```

use std::collections::BTreeMap;

use crate::Index;
use crate::cache_file;
use crate::change::{self, Base, Change, Committed};
use crate::checkpoint;
use crate::clock;
use crate::corrupt_models::CorruptModels;
use crate::exports::silt::datastore::sync::{
    Finding, GcOptions, GcReport, Guest, OrphanOptions, OrphanReport, SetupOptions, SetupReport,
    StatusReport, SyncOptions, SyncReport,
};
use crate::hydrate::{self, no_transfers};
use crate::journal;
use crate::layout::{self, DATA_AREA};
use crate::local::{self, LocalChange};
use crate::lock_object;
use crate::meta;
use crate::orphans::{self, Inventory};
use crate::set_aside::{self, SetAside};
use crate::silt::datastore::object_store::{self, PutMode, UploadItem};
use crate::silt::datastore::types::{
    Error, Lease, LocalEdits, LockScope, ModelRef, Scope, TransferStats,
};
use crate::store;
use crate::summary::{self, Summary};

/// The models a scope names, checked.
/// Revokes the unleased commits of `tokens` to `model` (a commit of its
/// own, itself unleased: refused with `lock-held` while a lease is live,
/// when the uploads are kept anyway). Returns the tokens whose commits had
/// landed meanwhile: their uploads are no orphans any more.
fn revoke_unleased<T: Index>(
    model: &ModelRef,
    tokens: &[String],
) -> Result<std::collections::BTreeSet<String>, Error> {
    let version = clock::version_token();
    let announced = crate::journal::announce(model, &version)?;
    let revoke = Change::Revoke {
        tokens: tokens.to_vec(),
        version,
    };
    let collector = crate::silt::datastore::types::Holder {
        name: "silt datastore gc".to_owned(),
        host: String::new(),
        pid: 0,
    };
    let committed = T::commit_unleased(model, &collector, &[revoke], announced, None)?;
    Ok(committed
        .partition
        .files
        .values()
        .flatten()
        .filter(|entry| tokens.contains(&entry.version))
        .map(|entry| entry.version.clone())
        .collect())
}

fn scoped_models(scope: &Scope) -> Result<Option<Vec<ModelRef>>, Error> {
    match scope {
        Scope::All => Ok(None),
        Scope::Models(models) => {
            for model in models {
                layout::check_model(model)?;
            }
            Ok(Some(models.clone()))
        }
    }
}

fn lease_for<'a>(leases: &'a [Lease], model: &ModelRef) -> Result<&'a Lease, Error> {
    leases
        .iter()
        .find(|lease| matches!(&lease.scope, LockScope::Model(held) if layout::same_model(held, model)))
        .ok_or_else(|| {
            Error::InvalidInput(format!(
                "pushing model {} needs its lease",
                layout::model_label(model)
            ))
        })
}

/// One model's push: what to upload, then what to commit.
struct Prepared {
    model: ModelRef,
    lease: Lease,
    changes: Vec<LocalChange>,
    uploads: Vec<UploadItem>,
    /// Files not hashed yet: their uploads answer the hash, and only then
    /// is their commit known ([`upload`]).
    host_hashed: Vec<HostHashed>,
    commit: Vec<Change>,
    sidecar: local::Sidecar,
}

/// The upload of a [`LocalChange::Unhashed`] file, and the version its
/// commit will name (sent only where the host hashes: contract 0.7.2 and
/// later).
#[cfg_attr(
    any(feature = "contract-0-6", feature = "contract-0-7-0"),
    allow(dead_code)
)]
struct HostHashed {
    change: LocalChange,
    version: String,
    base: Base,
    item: UploadItem,
}

impl Prepared {
    /// Whether nothing is to be sent: no commit and no upload that may
    /// make one.
    fn is_empty(&self) -> bool {
        self.commit.is_empty() && self.host_hashed.is_empty()
    }
}

/// The base a local change commits under: the version it was made from,
/// or none at all when the user said `ours`.
fn base_of(base: &Base, edits: LocalEdits) -> Base {
    match edits {
        LocalEdits::Ours => Base::Any,
        LocalEdits::Keep | LocalEdits::Theirs | LocalEdits::SetAside => base.clone(),
    }
}

/// Plans one model's push from its local changes: the objects to upload and
/// the changes to commit (possibly none). Checks the model's lease.
fn prepare(
    model: &ModelRef,
    lease: &Lease,
    mut changes: Vec<LocalChange>,
    mut sidecar: local::Sidecar,
    edits: LocalEdits,
    stats: &mut TransferStats,
) -> Result<Prepared, Error> {
    let mut commit = Vec::new();
    let mut uploads = Vec::new();
    // A file not hashed yet waits beside the commit until its upload says
    // what it is.
    let mut host_hashed = Vec::new();
    for change in &changes {
        let version = clock::version_token();
        match change {
            LocalChange::Unhashed { name, base, .. } => host_hashed.push(HostHashed {
                item: UploadItem {
                    cache_path: layout::working_path(model, name),
                    key: layout::object_key(DATA_AREA, model, name, &version),
                    mode: PutMode::Create,
                },
                base: base_of(base, edits),
                version,
                change: change.clone(),
            }),
            LocalChange::Changed {
                name,
                size,
                sha256,
                base,
                ..
            } => {
                uploads.push(UploadItem {
                    cache_path: layout::working_path(model, name),
                    key: layout::object_key(DATA_AREA, model, name, &version),
                    mode: PutMode::Create,
                });
                stats.bytes_uploaded += size;
                commit.push(Change::Put {
                    name: name.clone(),
                    version,
                    size: *size,
                    sha256: sha256.clone(),
                    base: base_of(base, edits),
                });
            }
            LocalChange::Removed { name, base } => {
                // Removed locally but already gone from the store: nothing to commit.
                let live = sidecar.partition.as_ref().and_then(|p| p.live(name));
                if live.is_some() {
                    commit.push(Change::Remove {
                        name: name.clone(),
                        version,
                        base: base_of(base, edits),
                    });
                } else {
                    sidecar.local.remove(name);
                }
            }
        }
    }
    changes.retain(|change| !matches!(change, LocalChange::Unhashed { .. }));
    // Only that it covers the model: its freshness was checked at the start
    // of the call (this copy has aged by the scan since), and the index's
    // commit confirms it from the store.
    change::covers(lease, model)?;
    Ok(Prepared {
        model: model.clone(),
        lease: lease.clone(),
        changes,
        uploads,
        host_hashed,
        commit,
        sidecar,
    })
}

/// Uploads what every prepared model needs in bulk transfers — one call
/// for files hashed here, one for files the host hashes as it sends them,
/// so the host keeps all its transfer slots busy across models instead of
/// draining them at the end of each model. Checks that what was uploaded
/// is what was hashed here; then makes each host-hashed file an edit to
/// commit, or, holding a committed version's content, a stamp (its upload
/// deleted).
fn upload(prepared: &mut [Prepared], stats: &mut TransferStats) -> Result<(), Error> {
    upload_hashed_here(prepared, stats)?;
    upload_hashed_by_host(prepared, stats)
}

/// [`upload`]'s files the host hashes: before contract 0.7.2 there are none
/// ([`local::changes_to_upload`] hashes every file here).
#[cfg(any(feature = "contract-0-6", feature = "contract-0-7-0"))]
fn upload_hashed_by_host(_: &mut [Prepared], _: &mut TransferStats) -> Result<(), Error> {
    Ok(())
}

/// How the host's `upload-hashed` refuses a file written during its upload
/// (`invalid-path`, which also names a missing or unreadable file).
#[cfg(not(any(feature = "contract-0-6", feature = "contract-0-7-0")))]
const HOST_SAW_IT_CHANGE: &str = "changed while it was uploaded";

/// [`upload`]'s files the host hashes as it sends them (`upload-hashed`),
/// each then an edit to commit or a stamp.
#[cfg(not(any(feature = "contract-0-6", feature = "contract-0-7-0")))]
fn upload_hashed_by_host(
    prepared: &mut [Prepared],
    stats: &mut TransferStats,
) -> Result<(), Error> {
    let hashed: Vec<(usize, HostHashed)> = prepared
        .iter_mut()
        .enumerate()
        .flat_map(|(i, p)| {
            std::mem::take(&mut p.host_hashed)
                .into_iter()
                .map(move |h| (i, h))
        })
        .collect();
    if hashed.is_empty() {
        return Ok(());
    }
    let items: Vec<UploadItem> = hashed.iter().map(|(_, h)| h.item.clone()).collect();
    for ((i, upload), result) in hashed.into_iter().zip(object_store::upload_hashed(&items)) {
        let uploaded = result.map_err(|err| match err {
            // Written while the host sent it: what the user should hear.
            object_store::StoreError::InvalidPath(detail)
                if detail.contains(HOST_SAW_IT_CHANGE) =>
            {
                cache_file::changed_while_reading(&upload.item.cache_path)
            }
            err => store::error(&upload.item.key, err),
        })?;
        stats.objects_uploaded += 1;
        stats.bytes_uploaded += uploaded.size;
        let ready = &mut prepared[i];
        let HostHashed {
            change,
            version,
            base,
            item,
        } = upload;
        let name = change.name().to_owned();
        let resolved = local::resolve_uploaded(
            &ready.model,
            &mut ready.sidecar,
            change,
            &uploaded.sha256,
            uploaded.size,
        );
        match resolved {
            Some(edit) => {
                ready.commit.push(Change::Put {
                    name,
                    version,
                    size: uploaded.size,
                    sha256: uploaded.sha256,
                    base,
                });
                ready.changes.push(edit);
            }
            // Touched, not changed: nothing to commit, and the upload is
            // nobody's (were this delete lost, `collect-orphans` takes it).
            None => {
                let _ = store::delete(&item.key);
            }
        }
    }
    Ok(())
}

/// [`upload`]'s files hashed here: sent in one call, then checked unchanged
/// since they were hashed.
fn upload_hashed_here(prepared: &mut [Prepared], stats: &mut TransferStats) -> Result<(), Error> {
    let uploads: Vec<UploadItem> = prepared
        .iter_mut()
        .flat_map(|p| std::mem::take(&mut p.uploads))
        .collect();
    if uploads.is_empty() {
        return Ok(());
    }
    for (item, result) in uploads.iter().zip(object_store::upload(&uploads)) {
        result.map_err(|err| store::error(&item.key, err))?;
        stats.objects_uploaded += 1;
    }
    // A file written meanwhile would be committed under a checksum it does
    // not have.
    for ready in prepared.iter() {
        for change in &ready.changes {
            if let LocalChange::Changed {
                name,
                size,
                mtime_ns,
                ..
            } = change
            {
                cache_file::check_unchanged(
                    &layout::working_path(&ready.model, name),
                    *size,
                    *mtime_ns,
                )?;
            }
        }
    }
    Ok(())
}

/// After a model's commit: stamps the committed files, keeps the committed
/// slice, and refreshes files that others' merged commits changed. Returns
/// the cache paths committed.
fn finish<T: Index>(
    prepared: Prepared,
    committed: Committed,
    update: &mut summary::Update,
    stats: &mut TransferStats,
) -> Result<Vec<String>, Error> {
    let Prepared {
        model,
        changes,
        commit,
        mut sidecar,
        ..
    } = prepared;
    stats.partitions_written += 1;
    // A put of the latest version's content added no version (another
    // clone committed the same bytes): its upload is nobody's.
    for change in &commit {
        if let Change::Put { name, version, .. } = change
            && committed
                .entries
                .iter()
                .any(|(committed_name, entry)| committed_name == name && &entry.version != version)
        {
            let _ = store::delete(&layout::object_key(DATA_AREA, &model, name, version));
        }
    }
    let mut paths = Vec::new();
    for (name, entry) in &committed.entries {
        if entry.deleted {
            sidecar.local.remove(name);
        }
        paths.push(layout::working_path(&model, name));
    }
    for change in &changes {
        if let LocalChange::Changed {
            name,
            size,
            sha256,
            mtime_ns,
            ..
        } = change
            && let Some((_, entry)) = committed.entries.iter().find(|(n, _)| n == name)
        {
            local::stamp_as_hashed(&mut sidecar, name, &entry.version, sha256, *size, *mtime_ns);
        }
    }
    sidecar.partition = Some(committed.partition);
    let prior_version = sidecar.store_version.replace(committed.version);
    // Others' commits merged under ours: refresh the files present here
    // (`apply_many` saves the sidecar; if planning fails, the commit's
    // stamps are saved all the same, at the version they were read at).
    let plan = match hydrate::plan(&model, &mut sidecar, true) {
        Ok(plan) => plan,
        Err(err) => {
            hydrate::keep_slice_only(&mut sidecar, prior_version);
            update.save(&model, &sidecar)?;
            return Err(err);
        }
    };
    let mut planned = hydrate::Planned {
        model,
        sidecar,
        plan,
        prior_version,
        settles: true,
    };
    hydrate::apply_many::<T>(std::slice::from_mut(&mut planned), update, stats)?;
    Ok(paths)
}

/// Keeps the first error of a push, except that every model's conflicts
/// are reported together.
fn merge_error(first: &mut Option<Error>, err: Error) {
    match (first.as_mut(), err) {
        (Some(Error::Conflict(all)), Error::Conflict(more)) => all.extend(more),
        (Some(_), _) => {}
        (None, err) => *first = Some(err),
    }
}

/// Models a pull looks at, each with its listed version when every
/// partition was listed.
type Candidates = Vec<(ModelRef, Option<String>)>;

/// The models a scope names, with their listed versions when the scope is
/// `all` (then a model whose sidecar is at that version needs no request).
fn scoped_or_listed<T: Index>(scope: &Scope) -> Result<Candidates, Error> {
    Ok(match scoped_models(scope)? {
        Some(models) => models.into_iter().map(|m| (m, None)).collect(),
        None => T::list()?
            .into_values()
            .map(|(model, version)| (model, Some(version)))
            .collect(),
    })
}

/// Models whose slices a pull reads together: far from the store, a batch
/// costs about one round trip (the host fetches them concurrently), where
/// one read after another cost one each.
const READS_PER_BATCH: usize = 128;

/// What a pull looks at: its candidates, the journal pass to settle
/// afterwards, and the checkpoint it starts from.
type PullPlan = (Candidates, Option<JournalPass>, Option<checkpoint::Loaded>);

/// What a pull of everything learned from the journal, to settle once the
/// pull has landed.
struct JournalPass {
    /// The progress the pull started from (empty for a full check).
    progress: journal::Progress,
    /// The entries listed.
    listed: Vec<journal::Entry>,
    /// The reader's clock when it listed.
    now_ms: u64,
    /// Whether every partition was listed too.
    full_check: bool,
    /// Whether the pull fetches every missing file.
    fetch_missing: bool,
}

impl JournalPass {
    /// Saves the progress once the pull has landed: an entry is settled
    /// when the model's slice, as this cache now holds it, shows the commit.
    /// (Every model with an unsettled entry was read by this pull, or was
    /// listed as current by its full check: its sidecar is at the slice it
    /// holds.)
    fn finish(&self) -> Result<(), Error> {
        let mut slices: BTreeMap<String, Option<crate::partition::Partition>> = BTreeMap::new();
        let mut next = self.progress.advance(
            &self.listed,
            |entry| {
                slices
                    .entry(layout::model_label(&entry.model))
                    .or_insert_with(|| local::load(DATA_AREA, &entry.model).partition)
                    .as_ref()
                    .is_some_and(|slice| journal::holds_commit(slice, &entry.token))
            },
            self.now_ms,
            self.full_check,
        );
        next.complete = self.fetch_missing && (self.full_check || self.progress.complete);
        journal::save_progress(&next)
    }
}

/// The models a pull must look at, with their listed versions when every
/// partition was listed (then a model whose sidecar is at that version
/// needs no request), and the journal pass to settle afterwards.
///
/// A pull of everything reads the journal after this cache's horizon and
/// looks only at the models named there by entries it has not settled
/// (one conditional read each). It lists every partition instead (and the
/// recent journal, to start from) when the index keeps no journal, a full
/// check is due, edits are being set aside (that looks at every working
/// copy), or it must fetch every missing file and the progress does not
/// vouch that earlier pulls did.
///
/// A fresh cache (no progress, no sidecars) of an index with a checkpoint
/// makes its full check with the newest one ([`checkpoint`]): each slice
/// the checkpoint holds at the listed version is taken from it, not read.
fn pull_candidates<T: Index>(
    scope: &Scope,
    fetch_missing: bool,
    resolving: bool,
) -> Result<PullPlan, Error> {
    if !T::JOURNAL || !matches!(scope, Scope::All) {
        return Ok((scoped_or_listed::<T>(scope)?, None, None));
    }
    let now_ms = clock::now_ms();
    let every_ms = journal::full_check_every_ms()?;
    let usable = |progress: &journal::Progress| {
        !resolving
            && !progress.full_check_due(now_ms, every_ms)
            && (!fetch_missing || progress.complete)
    };
    let progress = journal::load_progress();
    let fresh = progress.is_none();
    if let Some(progress) = progress.filter(usable) {
        let listed = journal::list_after(&progress.horizon)?;
        let models = progress
            .unsettled(&listed)
            .into_values()
            .map(|entries| (entries[0].model.clone(), None))
            .collect();
        let pass = JournalPass {
            progress,
            listed,
            now_ms,
            full_check: false,
            fetch_missing,
        };
        return Ok((models, Some(pass), None));
    }
    if !meta::journaled(T::KIND)? {
        journal::forget_progress();
        return Ok((scoped_or_listed::<T>(scope)?, None, None));
    }
    // A fresh cache's full check may take slices from the index checkpoint.
    let checkpoint =
        if T::CHECKPOINT && fresh && !resolving && Summary::read(DATA_AREA).versions.is_empty() {
            checkpoint::load_newest()
        } else {
            None
        };
    // The recent journal before the partitions: a commit announced before
    // they are listed may land after, and is then read by the next pull.
    let listed = journal::list_after(&journal::horizon_key(
        now_ms.saturating_sub(journal::SETTLE_MS),
    ))?;
    let pass = JournalPass {
        progress: journal::Progress::default(),
        listed,
        now_ms,
        full_check: true,
        fetch_missing,
    };
    Ok((scoped_or_listed::<T>(scope)?, Some(pass), checkpoint))
}

/// After a full check of everything that began at `as_of_ms`: writes an
/// index checkpoint of the `listed` models if one is due (see
/// [`checkpoint::due`]; `loaded` is the checkpoint the pull started from).
/// Returns what the pull's summary says of it. A failed write is a warning:
/// the pull itself succeeded.
///
/// # Errors
/// `invalid-input` for a `checkpoint.*` setting out of its range.
fn write_checkpoint(
    listed: &Candidates,
    as_of_ms: u64,
    loaded: Option<checkpoint::Loaded>,
    stats: &TransferStats,
) -> Result<String, Error> {
    let now = clock::now_ms();
    // A checkpoint with a chunk gone or corrupt is written again now.
    let newest = || match &loaded {
        Some(loaded) if !loaded.damaged() => Some(loaded.written_ms),
        Some(_) => None,
        None => checkpoint::newest_written_ms(),
    };
    if !checkpoint::due(stats.partitions_read, newest, now)? {
        return Ok(String::new());
    }
    let listed: Vec<(ModelRef, String)> = listed
        .iter()
        .filter_map(|(model, version)| Some((model.clone(), version.clone()?)))
        .collect();
    let previous = loaded.as_ref().map(checkpoint::Loaded::reusable);
    drop(loaded);
    Ok(match checkpoint::write(&listed, as_of_ms, previous) {
        Ok(written) => format!(
            "; index checkpoint written in {} ms ({} of {} chunks new, {} bytes)",
            clock::now_ms().saturating_sub(now),
            written.uploaded,
            written.chunks,
            written.bytes
        ),
        Err(err) => {
            crate::log_warn(&format!(
                "could not write the index checkpoint (a later full check tries again): {err:?}"
            ));
            String::new()
        }
    })
}

/// `1 model`, `2 models`: what a person reads in a summary.
fn plural(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// The versions of `slice` beyond the newest `keep` of each name, oldest
/// first, as (name, size, tombstone).
fn expirable(slice: &crate::partition::Partition, keep: u32) -> Vec<(String, u64, bool)> {
    slice
        .files
        .iter()
        .flat_map(|(name, versions)| {
            let excess = versions.len().saturating_sub(keep as usize);
            versions[..excess]
                .iter()
                .map(|entry| (name.clone(), entry.size, entry.deleted))
        })
        .collect()
}

impl<T: Index> Guest for T {
    fn setup(options: SetupOptions) -> Result<SetupReport, Error> {
        let (meta, created) =
            meta::setup(T::KIND, T::JOURNAL, options.create, options.retain_versions)?;
        std::fs::create_dir_all(layout::in_cache(layout::CACHE_STATE_DIR))
            .map_err(|err| Error::InvalidInput(format!("cannot prepare the cache: {err}")))?;
        Ok(SetupReport {
            created,
            layout_version: meta.layout,
            detail: format!(
                "{} index, layout {}{}; keeps the last {} versions of each file",
                T::KIND,
                meta.layout,
                if meta.journal() {
                    " (commits announced in the journal)"
                } else {
                    ""
                },
                meta.retain_versions
            ),
        })
    }

    fn verify(scope: Scope) -> Result<Vec<Finding>, Error> {
        meta::read(T::KIND)?;
        // One listing of the objects (sizes included) against the slices:
        // no request per object.
        let inventory = Inventory::take::<T>(&scope)?;
        let mut findings: Vec<Finding> = inventory
            .corrupt
            .iter()
            .map(|(_, corrupt)| Finding {
                object: corrupt.object.clone(),
                problem: corrupt.detail.clone(),
            })
            .collect();
        findings.extend(
            inventory
                .damaged()
                .into_iter()
                .map(|(object, problem)| Finding { object, problem }),
        );
        let now = clock::now_ms();
        findings.extend(inventory.orphans().into_iter().map(|orphan| Finding {
            problem: format!(
                "unreferenced by the index ({} bytes, {} s old): an upload whose commit never came; `silt datastore gc` deletes it",
                orphan.size,
                now.saturating_sub(orphan.last_modified) / 1000
            ),
            object: orphan.key,
        }));
        Ok(findings)
    }

    fn collect_orphans(options: OrphanOptions) -> Result<OrphanReport, Error> {
        meta::read(T::KIND)?;
        // Leases first: a lease taken after this is a writer whose uploads
        // are younger than the window.
        let locks = lock_object::list_all()?;
        let inventory = Inventory::take::<T>(&options.scope)?;
        let now = clock::now_ms();
        let mut report = OrphanReport {
            found: 0,
            bytes_found: 0,
            deleted: 0,
            bytes_deleted: 0,
            kept: 0,
        };
        let mut deletable = Vec::new();
        for orphan in inventory.orphans() {
            report.found += 1;
            report.bytes_found += orphan.size;
            let young = now.saturating_sub(orphan.last_modified) < options.min_age_ms;
            if young || orphans::may_be_committed(&orphan, &locks) {
                report.kept += 1;
            } else {
                deletable.push(orphan);
            }
        }
        // The uploads of unleased commits that may still land are deleted
        // only once those commits are revoked: they would be refused.
        let mut spared = std::collections::BTreeSet::new();
        if T::UNLEASED && !options.dry_run {
            for (model, tokens) in orphans::unleased_in_flight(&deletable, now)?.into_values() {
                match revoke_unleased::<T>(&model, &tokens) {
                    // Landed between the inventory and the revocation.
                    Ok(landed) => spared.extend(landed),
                    Err(err) => {
                        crate::log_warn(&format!(
                            "kept the uploads of {} unfinished write(s) to {} (the next gc tries again): {err:?}",
                            tokens.len(),
                            layout::model_label(&model)
                        ));
                        spared.extend(tokens);
                    }
                }
            }
        }
        for orphan in deletable {
            let token = orphan.key.rsplit('/').next().unwrap_or_default();
            if spared.contains(token) {
                report.kept += 1;
                continue;
            }
            if options.dry_run {
                continue;
            }
            match store::delete(&orphan.key) {
                Ok(()) => {
                    report.deleted += 1;
                    report.bytes_deleted += orphan.size;
                }
                Err(err) => crate::log_warn(&format!(
                    "could not delete the orphan {} (left for the next gc): {err:?}",
                    orphan.key
                )),
            }
        }
        // Journal entries no reader lists any more (readers list every
        // partition at least every FULL_CHECK_MS): empty objects, but one
        // per commit.
        if T::JOURNAL && !options.dry_run && matches!(options.scope, Scope::All) {
            journal::prune(now, journal::PRUNE_AFTER_MS.max(options.min_age_ms))?;
        }
        // Checkpoints beyond the newest few, and chunks none of those names.
        if T::CHECKPOINT && !options.dry_run && matches!(options.scope, Scope::All) {
            let pruned =
                checkpoint::prune(now, checkpoint::PRUNE_AFTER_MS.max(options.min_age_ms))?;
            report.found += pruned.objects;
            report.bytes_found += pruned.bytes;
            report.deleted += pruned.objects;
            report.bytes_deleted += pruned.bytes;
        }
        Ok(report)
    }

    fn pull_changed(options: SyncOptions) -> Result<SyncReport, Error> {
        let mut stats = no_transfers();
        let mut changed = Vec::new();
        let mut partitions_changed = 0u64;
        let mut not_hydrated = 0u64;
        let fetch_missing = options.fetch_missing;
        // A dry run moves nothing aside.
        let edits = if options.dry_run {
            LocalEdits::Keep
        } else {
            options.local_edits
        };
        // Setting edits aside looks at every model's working copy, changed
        // in the store or not: an edit kept by an earlier pull is in a model
        // whose sidecar is current.
        let resolving = set_aside::resolves(edits);
        let (models, journal_pass, mut checkpoint) =
            pull_candidates::<T>(&options.scope, fetch_missing, resolving)?;
        // The summary answers only for listed models; a journal pass names
        // a few models and skips reading it (at 8,192 models it is ~1 MB).
        let known = if models.iter().any(|(_, listed)| listed.is_some()) {
            Summary::read(DATA_AREA)
        } else {
            Summary::default()
        };
        let mut update = summary::Update::begin(DATA_AREA);
        let mut aside = SetAside::default();
        let mut corrupt = CorruptModels::default();
        let mut work = Vec::new();
        let mut pending = 0;
        let mut served_count = 0u64;
        for batch in models.chunks(READS_PER_BATCH) {
            // The models of this batch whose slice must be read, read
            // together (far from the store, one round trip for the batch).
            let mut looked = Vec::new();
            for (model, listed_version) in batch {
                // From the listing we know the version already: skip
                // unchanged models without a request, and without reading
                // their sidecar when the summary already says so (and, when
                // fetching what is missing, that nothing is).
                let label = layout::model_label(model);
                if let Some(listed) = listed_version
                    && !resolving
                    && known.is_current(&label, listed, fetch_missing)
                {
                    continue;
                }
                let mut sidecar = local::load(DATA_AREA, model);
                let current = listed_version.is_some() && sidecar.store_version == *listed_version;
                if current && !resolving && (!fetch_missing || local::all_stamped(&sidecar)) {
                    // The summary said otherwise: repair its entry.
                    update.note_current(model);
                    continue;
                }
                let prior_version = sidecar.store_version.clone();
                // A fresh clone's checkpoint holds the slice at the version
                // listed: no read.
                let mut served = false;
                if !current
                    && let (Some(checkpoint), Some(listed)) =
                        (checkpoint.as_mut(), listed_version.as_deref())
                {
                    served = checkpoint.serve(model, listed, &mut sidecar);
                    served_count += u64::from(served);
                }
                looked.push((model, sidecar, prior_version, current || served, served));
            }
            let mut stale: Vec<(&ModelRef, &mut local::Sidecar)> = looked
                .iter_mut()
                .filter(|(_, _, _, current, _)| !current)
                .map(|(model, sidecar, _, _, _)| (*model, sidecar))
                .collect();
            let mut reads = hydrate::refresh_many::<T>(&mut stale, &mut stats).into_iter();
            for (model, mut sidecar, prior_version, current, served) in looked {
                let refreshed = if served {
                    true
                } else if current {
                    false
                } else {
                    let read = reads.next().expect("one read a stale model");
                    match corrupt.skip(model, read)? {
                        Some(refreshed) => refreshed,
                        None => continue,
                    }
                };
                if refreshed {
                    partitions_changed += 1;
                } else if !fetch_missing && !resolving {
                    continue;
                }
                let restored = aside.apply(
                    model,
                    &mut sidecar,
                    edits,
                    prior_version.clone(),
                    &mut update,
                )?;
                let mut plan = hydrate::plan(model, &mut sidecar, !fetch_missing)?;
                set_aside::restore(&mut plan, &sidecar, &restored);
                not_hydrated += sidecar
                    .partition
                    .as_ref()
                    .map_or(0, |p| p.live_files().count() as u64)
                    .saturating_sub(plan.present + plan.downloads.len() as u64);
                if options.dry_run {
                    changed.extend(
                        plan.downloads
                            .iter()
                            .map(|(name, _)| layout::working_path(model, name)),
                    );
                    continue;
                }
                // Every model held counts (its sidecar is in memory), not only
                // its downloads.
                pending += plan.downloads.len().max(1);
                work.push(hydrate::Planned {
                    model: model.clone(),
                    sidecar,
                    plan,
                    prior_version,
                    settles: true,
                });
                // Models' downloads go out together, a bounded batch at a time
                // (memory stays small however large the pull).
                if pending >= hydrate::DOWNLOADS_PER_BATCH {
                    let applied = hydrate::apply_many::<T>(&mut work, &mut update, &mut stats);
                    work.clear();
                    pending = 0;
                    changed.extend(applied?);
                }
            }
        }
        changed.extend(hydrate::apply_many::<T>(
            &mut work,
            &mut update,
            &mut stats,
        )?);
        update.finish()?;
        corrupt.finish(models.len())?;
        let looked_at = match &journal_pass {
            Some(pass) if !pass.full_check => format!(
                "{} changed ({} read, named by {} since the last pull)",
                plural(partitions_changed, "model", "models"),
                models.len(),
                plural(pass.listed.len() as u64, "journal entry", "journal entries")
            ),
            _ if checkpoint.is_some() => format!(
                "{partitions_changed} of {} changed ({served_count} from the index checkpoint)",
                plural(models.len() as u64, "model", "models")
            ),
            _ => format!(
                "{partitions_changed} of {} changed",
                plural(models.len() as u64, "model", "models")
            ),
        };
        let mut checkpoint_written = String::new();
        if let Some(pass) = journal_pass.filter(|_| !options.dry_run) {
            pass.finish()?;
            // A full check that had to read many slices from the store: the
            // checkpoint is missing or that far behind.
            if T::CHECKPOINT && pass.full_check {
                checkpoint_written = write_checkpoint(&models, pass.now_ms, checkpoint, &stats)?;
            }
        }
        let summary = format!(
            "{looked_at}; {} refreshed; {} of changed models not present locally (fetched on use){checkpoint_written}",
            plural(changed.len() as u64, "file", "files"),
            plural(not_hydrated, "file", "files")
        );
        Ok(SyncReport {
            stats,
            changed,
            summary,
            set_aside: aside.moved,
        })
    }

    fn push_changed(options: SyncOptions) -> Result<SyncReport, Error> {
        let models = match scoped_models(&options.scope)? {
            Some(models) => models,
            None => local::known_models(DATA_AREA),
        };
        if !options.dry_run {
            // While the host's copies of the leases are fresh: scanning a
            // large working copy (hashing what a pull moved the base of) can
            // take longer than a copy stays fresh.
            for lease in &options.leases {
                if let LockScope::Model(model) = &lease.scope {
                    change::check_lease(lease, model)?;
                }
            }
        }
        let mut stats = no_transfers();
        let mut changed = Vec::new();
        let mut committed_models = 0;
        let mut prepared = Vec::new();
        let mut conflicts = Vec::new();
        let mut update = summary::Update::begin(DATA_AREA);
        for model in &models {
            let mut sidecar = local::load(DATA_AREA, model);
            // A dry run names only real edits (hashed here); a push sends
            // what looks changed, and its upload says whether it is.
            let changes = if options.dry_run {
                local::changes(model, &mut sidecar)?
            } else {
                local::changes_to_upload(model, &mut sidecar)?
            };
            if changes.is_empty() {
                continue;
            }
            if options.dry_run {
                changed.extend(
                    changes
                        .iter()
                        .map(|change| layout::working_path(model, change.name())),
                );
                continue;
            }
            let lease = lease_for(&options.leases, model)?;
            let ready = prepare(
                model,
                lease,
                changes,
                sidecar,
                options.local_edits,
                &mut stats,
            )?;
            if ready.is_empty() {
                update.save(model, &ready.sidecar)?;
                continue;
            }
            // The slice last read already shows the store moved on from a
            // base (versions only move forward): refuse before uploading.
            // The commit checks again on the slice it writes over.
            if let Some(slice) = &ready.sidecar.partition {
                conflicts.extend(change::conflicts(model, slice, &ready.commit));
            }
            prepared.push(ready);
        }
        if !conflicts.is_empty() {
            for ready in &prepared {
                update.save(&ready.model, &ready.sidecar)?;
            }
            update.finish()?;
            return Err(Error::Conflict(conflicts));
        }
        upload(&mut prepared, &mut stats)?;
        // Models whose files were all touched, not changed: only stamps.
        let (prepared, stamped_only): (Vec<Prepared>, Vec<Prepared>) = prepared
            .into_iter()
            .partition(|ready| !ready.commit.is_empty());
        for ready in &stamped_only {
            update.save(&ready.model, &ready.sidecar)?;
        }
        // One commit call for every model: the index decides whether that is
        // one commit per model or one for all.
        let batch: Vec<(&ModelRef, &Lease, &[Change])> = prepared
            .iter()
            .map(|p| (&p.model, &p.lease, p.commit.as_slice()))
            .collect();
        let results = if batch.is_empty() {
            Vec::new()
        } else {
            T::commit_many(&batch)
        };
        let mut first_error = None;
        for (ready, result) in prepared.into_iter().zip(results) {
            match result {
                // A model that committed keeps its sidecar up to date even
                // when another's refresh fails: else the next push would
                // commit its files again as new versions.
                Ok(committed) => {
                    committed_models += 1;
                    match finish::<T>(ready, committed, &mut update, &mut stats) {
                        Ok(paths) => changed.extend(paths),
                        Err(err) => {
                            first_error.get_or_insert(err);
                        }
                    }
                }
                Err(err) => merge_error(&mut first_error, err),
            }
        }
        if let Some(err) = first_error {
            update.finish()?;
            return Err(err);
        }
        let summary = if options.dry_run {
            format!(
                "would commit {}",
                plural(changed.len() as u64, "changed file", "changed files")
            )
        } else {
            format!(
                "committed {} in {}",
                plural(changed.len() as u64, "file", "files"),
                plural(committed_models, "model", "models")
            )
        };
        update.finish()?;
        Ok(SyncReport {
            stats,
            changed,
            summary,
            set_aside: Vec::new(),
        })
    }

    fn status(scope: Scope) -> Result<StatusReport, Error> {
        let listed = T::list()?;
        let models: Vec<ModelRef> = match scoped_models(&scope)? {
            Some(models) => models,
            None => {
                let mut all: Vec<ModelRef> = local::known_models(DATA_AREA);
                all.extend(listed.values().map(|(model, _)| model.clone()));
                all.sort_by(|a, b| (&a.model_type, &a.model_id).cmp(&(&b.model_type, &b.model_id)));
                all.dedup_by(|a, b| layout::same_model(a, b));
                all
            }
        };
        let mut report = StatusReport {
            objects_total: 0,
            bytes_total: 0,
            objects_local: 0,
            bytes_local: 0,
            local_changes: Vec::new(),
            local_models: Vec::new(),
            remote_changes: Vec::new(),
        };
        let mut update = summary::Update::begin(DATA_AREA);
        for model in &models {
            let mut sidecar = local::load(DATA_AREA, model);
            let listed_version = listed
                .get(&(model.model_type.clone(), model.model_id.clone()))
                .map(|(_, version)| version);
            if listed_version != sidecar.store_version.as_ref() {
                report.remote_changes.push(layout::model_label(model));
                // A model this clone never read (a lazy clone), nothing of
                // it present: read its slice once and keep it, so the
                // totals cover the whole store. (A model with files present
                // is not refreshed here: its sidecar must not claim a
                // version its files were not brought to.)
                if sidecar.partition.is_none()
                    && sidecar.local.is_empty()
                    && listed_version.is_some()
                {
                    let mut stats = hydrate::no_transfers();
                    hydrate::refresh::<T>(model, &mut sidecar, &mut stats)?;
                    update.save(model, &sidecar)?;
                }
            }
            if let Some(partition) = &sidecar.partition {
                for (_, latest) in partition.live_files() {
                    report.objects_total += 1;
                    report.bytes_total += latest.size;
                }
            }
            for stamp in sidecar.local.values() {
                report.objects_local += 1;
                report.bytes_local += stamp.size;
            }
            let changes = local::changes(model, &mut sidecar)?;
            if !changes.is_empty() {
                report.local_models.push(model.clone());
            }
            for change in changes {
                report
                    .local_changes
                    .push(layout::working_path(model, change.name()));
            }
        }
        update.finish()?;
        Ok(report)
    }

    fn gc(options: GcOptions) -> Result<GcReport, Error> {
        if options.keep_versions == 0 {
            return Err(Error::InvalidInput(
                "gc must keep at least 1 version of each file".to_owned(),
            ));
        }
        meta::read(T::KIND)?;
        let mut report = GcReport {
            models: Vec::new(),
            entries_expired: 0,
            objects_deleted: 0,
            bytes_freed: 0,
        };
        let mut update = summary::Update::begin(DATA_AREA);
        if !options.dry_run {
            // The real pass: the dry run chose the models and the host took
            // their leases; each commit re-reads its model anyway.
            let Some(models) = scoped_models(&options.scope)? else {
                return Err(Error::InvalidInput(
                    "gc changes only the models a dry run named, under their leases; run it with those models".to_owned(),
                ));
            };
            for model in &models {
                let lease = lease_for(&options.leases, model)?;
                let trim = Change::Trim {
                    keep: options.keep_versions,
                    version: clock::version_token(),
                };
                let committed = T::commit(model, lease, &[trim])?;
                if !committed.expired.is_empty() {
                    report.models.push(model.clone());
                }
                report.entries_expired += committed.expired.len() as u64;
                report.objects_deleted += committed.deleted.0;
                report.bytes_freed += committed.deleted.1;
                let mut sidecar = local::load(DATA_AREA, model);
                sidecar.partition = Some(committed.partition);
                // Files present here were not brought to this version.
                let prior = sidecar.store_version.replace(committed.version);
                hydrate::keep_slice_only(&mut sidecar, prior);
                update.save(model, &sidecar)?;
            }
            update.finish()?;
            return Ok(report);
        }
        // The dry run: each model's slice from its sidecar when the listing
        // says it is current, else from the store (and kept in the sidecar).
        let mut stats = no_transfers();
        for (model, listed_version) in scoped_or_listed::<T>(&options.scope)? {
            let mut sidecar = local::load(DATA_AREA, &model);
            let prior = sidecar.store_version.clone();
            if (listed_version.is_none() || sidecar.store_version != listed_version)
                && hydrate::refresh::<T>(&model, &mut sidecar, &mut stats)?
            {
                hydrate::keep_slice_only(&mut sidecar, prior);
                update.save(&model, &sidecar)?;
            }
            let Some(slice) = &sidecar.partition else {
                continue;
            };
            let expirable = expirable(slice, options.keep_versions);
            if expirable.is_empty() {
                continue;
            }
            report.models.push(model.clone());
            report.entries_expired += expirable.len() as u64;
            for (_, size, deleted) in &expirable {
                if !deleted {
                    report.objects_deleted += 1;
                    report.bytes_freed += size;
                }
            }
        }
        update.finish()?;
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::{lease, model};
    use crate::partition::{Entry, Partition};
    use crate::silt::datastore::types::Conflict;

    fn conflict(id: &str, name: &str) -> Conflict {
        Conflict {
            model: model(id),
            name: name.to_owned(),
            base: None,
            latest: Some("v2".to_owned()),
            latest_writer: "bo@laptop".to_owned(),
            latest_deleted: false,
        }
    }

    fn entry(version: &str, size: u64, deleted: bool) -> Entry {
        Entry {
            version: version.to_owned(),
            size,
            sha256: if deleted {
                String::new()
            } else {
                "ab".repeat(32)
            },
            generation: 1,
            writer: "ana@build-1".to_owned(),
            committed_at: 1_000,
            deleted,
        }
    }

    #[test]
    fn a_scope_of_models_is_checked_and_all_is_no_list() {
        assert!(scoped_models(&Scope::All).unwrap().is_none());
        let named = vec![model("m-1"), model("m-2")];
        let scoped = scoped_models(&Scope::Models(named.clone()))
            .unwrap()
            .unwrap();
        assert!(
            scoped
                .iter()
                .zip(&named)
                .all(|(a, b)| layout::same_model(a, b))
        );
        let escaping = ModelRef {
            model_type: "vision/..".to_owned(),
            model_id: "m-1".to_owned(),
        };
        let refused = scoped_models(&Scope::Models(vec![model("m-1"), escaping]));
        assert!(
            matches!(refused, Err(Error::InvalidInput(_))),
            "{refused:?}"
        );
    }

    #[test]
    fn a_push_finds_the_lease_on_its_own_model_only() {
        let leases = vec![
            lease(LockScope::Model(model("m-1"))),
            lease(LockScope::Model(model("m-2"))),
            lease(LockScope::Namespace),
        ];
        let found = lease_for(&leases, &model("m-2")).unwrap();
        assert!(matches!(&found.scope, LockScope::Model(held) if held.model_id == "m-2"));
        // A namespace lease is not a model's lease, nor is another model's.
        let missing = lease_for(&leases[..1], &model("m-3")).unwrap_err();
        match missing {
            Error::InvalidInput(text) => assert!(text.contains("vision/detector/m-3"), "{text}"),
            other => panic!("expected invalid-input, got {other:?}"),
        }
        assert!(lease_for(&leases[2..], &model("m-1")).is_err());
    }

    #[test]
    fn ours_commits_over_anything_every_other_policy_keeps_the_base() {
        let base = Base::Version("v1".to_owned());
        assert_eq!(base_of(&base, LocalEdits::Ours), Base::Any);
        for edits in [LocalEdits::Keep, LocalEdits::Theirs, LocalEdits::SetAside] {
            assert_eq!(base_of(&base, edits), base, "{edits:?}");
        }
        assert_eq!(base_of(&Base::Absent, LocalEdits::Keep), Base::Absent);
    }

    #[test]
    fn a_push_reports_its_first_error_or_every_models_conflicts_together() {
        let mut first = None;
        merge_error(&mut first, Error::Conflict(vec![conflict("m-1", "a.bin")]));
        merge_error(&mut first, Error::NotFound("later".to_owned()));
        merge_error(&mut first, Error::Conflict(vec![conflict("m-2", "b.bin")]));
        match first {
            Some(Error::Conflict(all)) => {
                let names: Vec<_> = all.iter().map(|c| c.name.as_str()).collect();
                assert_eq!(names, ["a.bin", "b.bin"]);
            }
            other => panic!("expected the conflicts, got {other:?}"),
        }
        // Another error first: it wins, conflicts after it are dropped.
        let mut first = None;
        merge_error(&mut first, Error::LockLost("taken over".to_owned()));
        merge_error(&mut first, Error::Conflict(vec![conflict("m-1", "a.bin")]));
        assert!(matches!(first, Some(Error::LockLost(_))), "{first:?}");
    }

    #[test]
    fn expirable_versions_are_those_beyond_the_newest_kept_tombstones_included() {
        let mut slice = Partition::empty(DATA_AREA, &model("m-1"));
        slice.files.insert(
            "a.bin".to_owned(),
            vec![
                entry("v1", 10, false),
                entry("v2", 20, true),
                entry("v3", 30, false),
            ],
        );
        slice
            .files
            .insert("b.bin".to_owned(), vec![entry("w1", 5, false)]);
        assert_eq!(
            expirable(&slice, 1),
            [
                ("a.bin".to_owned(), 10, false),
                ("a.bin".to_owned(), 20, true),
            ]
        );
        assert_eq!(expirable(&slice, 2), [("a.bin".to_owned(), 10, false)]);
        assert!(expirable(&slice, 3).is_empty());
    }

    #[test]
    fn counts_read_in_the_singular_for_one_only() {
        assert_eq!(plural(0, "model", "models"), "0 models");
        assert_eq!(plural(1, "model", "models"), "1 model");
        assert_eq!(
            plural(2, "journal entry", "journal entries"),
            "2 journal entries"
        );
    }
}
