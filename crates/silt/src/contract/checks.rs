//! The checks of the contract suite, in the order they run. Each returns
//! what it saw on success, or a failure saying what the contract asks and
//! what the extension did instead.

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
    LeaseFreeCommits,
    TypedErrors,
}

impl Check {
    const ALL: [Check; 11] = [
        Check::RoundTrip,
        Check::PullAndPush,
        Check::Conflicts,
        Check::LeaseExclusion,
        Check::Fencing,
        Check::HeldCommit,
        Check::NamespaceExclusion,
        Check::LazyHydration,
        Check::Gc,
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
            Check::RoundTrip | Check::PullAndPush | Check::Conflicts | Check::TypedErrors => None,
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
                Check::LeaseFreeCommits => lease_free_commits(&a, &b).await,
                Check::TypedErrors => typed_errors(&a).await,
            }
        };
        record(check.name(), checked);
    }
    Ok(results)
}

async fn describe(a: &Datastore, metadata: &crate::runtime::Metadata) -> Checked {
    let description = match a.describe().await {
        Ok(description) => description,
        Err(err) => return fail(format!("describe failed: {err}")),
    };
    if description.name != metadata.name || description.version != metadata.version {
        return fail(format!(
            "describe says {} {}, the metadata {} {}",
            description.name, description.version, metadata.name, metadata.version
        ));
    }
    let described = crate::runtime::metadata::feature_names(description.features);
    let mut declared: Vec<&str> = metadata.capabilities.iter().map(String::as_str).collect();
    declared.sort_unstable();
    let mut sorted = described.clone();
    sorted.sort_unstable();
    if sorted != declared {
        return fail(format!(
            "describe's features [{}] differ from the metadata's capabilities [{}]",
            sorted.join(", "),
            declared.join(", ")
        ));
    }
    Ok(format!("features: {}", described.join(", ")))
}

async fn setup(a: &Datastore, b: &Datastore) -> Checked {
    let created = a
        .setup(sync::SetupOptions {
            create: true,
            retain_versions: None,
        })
        .await
        .or_fail("sync.setup with create on an empty store")?;
    if !created.created {
        return fail("setup on an empty store reported that the datastore already existed");
    }
    let attached = b
        .setup(sync::SetupOptions {
            create: false,
            retain_versions: None,
        })
        .await
        .or_fail("sync.setup of a second clone")?;
    if attached.created {
        return fail("a second clone's setup claims to have created the datastore again");
    }
    Ok(format!("layout version {}", created.layout_version))
}

async fn round_trip(a: &Datastore) -> Checked {
    let model = model("round-trip");
    let content: Vec<u8> = (0..70_000u32).map(|i| (i * 7 % 251) as u8).collect();
    put(a, &model, "weights.bin", &content).await?;
    let readback = ".silt/staging/contract-readback";
    let version = a
        .get_file(&model, "weights.bin", None, readback)
        .await
        .or_fail("models.get-file of the file just put")?;
    if read_local(a, Path::new(readback)).as_deref() != Some(content.as_slice()) {
        return fail("get-file did not write the bytes that were put");
    }
    if version.size != content.len() as u64 || version.sha256 != sha256_hex(&content) {
        return fail(format!(
            "get-file reports size {} sha256 {}; the file has {} and {}",
            version.size,
            version.sha256,
            content.len(),
            sha256_hex(&content)
        ));
    }
    let files = a.list_files(&model).await.or_fail("models.list-files")?;
    if !files
        .iter()
        .any(|file| file.name == "weights.bin" && file.latest.size == content.len() as u64)
    {
        return fail(format!("list-files does not show weights.bin: {files:?}"));
    }
    let history = a
        .history(&model, "weights.bin")
        .await
        .or_fail("models.history")?;
    if history.len() != 1 {
        return fail(format!(
            "history of a file put once has {} versions",
            history.len()
        ));
    }
    let listed = a.list_models().await.or_fail("models.list-models")?;
    let same = |m: &ModelRef| m.model_type == model.model_type && m.model_id == model.model_id;
    if !listed.iter().any(same) {
        return fail("list-models does not show the model just written");
    }
    Ok(format!(
        "{} bytes, version {}",
        content.len(),
        version.version
    ))
}

async fn pull_and_push(a: &Datastore, b: &Datastore) -> Checked {
    let model = model("sync");
    let name = "data.txt";
    put(a, &model, name, b"written by clone A\n").await?;
    b.pull(&pull_all(true))
        .await
        .or_fail("sync.pull-changed on clone B")?;
    let path = working_path(&model, name);
    if read_local(b, &path).as_deref() != Some(b"written by clone A\n".as_slice()) {
        return fail(format!(
            "after a full pull, clone B has no {}",
            path.display()
        ));
    }
    write_local(b, &path, b"changed by clone B\n").or_fail("editing B's working copy")?;
    let pushed = push_under_a_fresh_lease(b, &model)
        .await?
        .or_fail("sync.push-changed of an edited file")?;
    if pushed.stats.objects_uploaded == 0 {
        return fail("push-changed of an edited file uploaded nothing");
    }
    a.pull(&pull_all(true))
        .await
        .or_fail("sync.pull-changed on clone A")?;
    if read_local(a, &path).as_deref() != Some(b"changed by clone B\n".as_slice()) {
        return fail("after B pushed, A's pull did not bring B's change");
    }
    Ok("A → B by pull, B → A by push and pull".to_owned())
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

/// Base versions: a put or push whose base is not the latest is refused
/// with `conflict` and commits nothing; `theirs` sets the edit aside.
async fn conflicts(a: &Datastore, b: &Datastore) -> Checked {
    let model = model("conflicts");
    let name = "shared.txt";
    let v1 = put_on(a, &model, name, b"v1\n", Base::Absent)
        .await
        .or_fail("put-file of a new name with base `absent`")?;
    b.pull(&pull_all(true))
        .await
        .or_fail("sync.pull-changed on clone B")?;
    let path = working_path(&model, name);
    write_local(b, &path, b"B's edit of v1\n").or_fail("editing B's working copy")?;
    let v2 = put_on(a, &model, name, b"v2\n", Base::Version(v1.clone()))
        .await
        .or_fail("put-file with the latest version as its base")?;
    let stale_put = expect_error(
        put_on(a, &model, name, b"stale\n", Base::Version(v1.clone())).await,
        &["conflict"],
        "put-file with an older version as its base",
    )?;
    expect_error(
        put_on(a, &model, name, b"stale\n", Base::Absent).await,
        &["conflict"],
        "put-file with base `absent` of a name that exists",
    )?;
    let stale_push = expect_error(
        push_under_a_fresh_lease(b, &model).await?,
        &["conflict"],
        "push-changed of an edit made from a version the store moved on from",
    )?;
    let files = a.list_files(&model).await.or_fail("models.list-files")?;
    if files
        .iter()
        .find(|f| f.name == name)
        .map(|f| &f.latest.version)
        != Some(&v2)
    {
        return fail(format!(
            "after the refused push, the latest of {name} is not {v2} any more: the edit was committed on top"
        ));
    }
    let theirs = b
        .pull(&sync::SyncOptions {
            local_edits: LocalEdits::Theirs,
            ..pull_all(false)
        })
        .await
        .or_fail("sync.pull-changed with local-edits `theirs`")?;
    if read_local(b, &path).as_deref() != Some(b"v2\n".as_slice()) {
        return fail(
            "after a pull with `theirs`, B's working copy does not hold the latest version",
        );
    }
    let Some(aside) = theirs.set_aside.first() else {
        return fail("a pull with `theirs` reported no edit set aside");
    };
    if read_local(b, Path::new(aside)).as_deref() != Some(b"B's edit of v1\n".as_slice()) {
        return fail(format!("the edit set aside is not at {aside}, as reported"));
    }
    Ok(format!(
        "stale put: {stale_put}; stale push: {stale_push}; `theirs` set the edit aside"
    ))
}

/// Pushes `model`'s local edits on clone `datastore` under a lease taken
/// for it and given back; the push's own outcome is the caller's to judge.
async fn push_under_a_fresh_lease(
    datastore: &Datastore,
    model: &ModelRef,
) -> Result<anyhow::Result<sync::SyncReport>, NotPassed> {
    let lease = datastore
        .acquire(&LockScope::Model(model.clone()), TTL_MS)
        .await
        .or_fail("locks.acquire on clone B")?;
    let pushed = datastore
        .push(&sync::SyncOptions {
            scope: Scope::Models(vec![model.clone()]),
            leases: vec![lease.clone()],
            dry_run: false,
            fetch_missing: false,
            local_edits: LocalEdits::Keep,
        })
        .await;
    datastore.release(&lease).await.or_fail("locks.release")?;
    Ok(pushed)
}

/// Takes `scope` on `datastore` (it must be free) and gives it back.
async fn acquire_and_release(
    datastore: &Datastore,
    scope: &LockScope,
    what: &str,
) -> Result<(), NotPassed> {
    let lease = datastore.acquire(scope, TTL_MS).await.or_fail(what)?;
    datastore.release(&lease).await.or_fail("locks.release")
}

/// Expects `b`'s acquire of `scope` to be refused as held; a lease it
/// wrongly got is released so later checks start clean.
async fn expect_held(b: &Datastore, scope: &LockScope, what: &str) -> Result<String, NotPassed> {
    match b.acquire(scope, TTL_MS).await {
        Ok(lease) => {
            let _ = b.release(&lease).await;
            fail(format!("{what}: expected lock-held, but it was granted"))
        }
        Err(err) => expect_error(Err::<(), _>(err), &["lock-held"], what),
    }
}

async fn lease_exclusion(a: &Datastore, b: &Datastore) -> Checked {
    let model = model("leases");
    let scope = LockScope::Model(model.clone());
    let lease = a
        .acquire(&scope, TTL_MS)
        .await
        .or_fail("locks.acquire of a free model")?;
    let checked = async {
        let second = expect_held(b, &scope, "a second holder's acquire").await?;
        let info = a
            .inspect(&scope)
            .await
            .or_fail("locks.inspect of a held lease")?;
        let Some(info) = info else {
            return fail("locks.inspect of a held lease found nothing");
        };
        if info.holder.name != a.holder().name {
            return fail(format!(
                "locks.inspect names {} as the holder, not {}",
                info.holder.name,
                a.holder().name
            ));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        let renewed = a
            .renew(&lease, None)
            .await
            .or_fail("locks.renew of our lease")?;
        if renewed.renewed_at <= lease.renewed_at {
            return fail("locks.renew did not move renewed-at forward");
        }
        a.release(&renewed)
            .await
            .or_fail("locks.release of the renewed lease")?;
        Ok(second)
    }
    .await;
    if checked.is_err() {
        let _ = a.release(&lease).await;
    }
    let second = checked?;
    acquire_and_release(b, &scope, "locks.acquire after release").await?;
    Ok(format!(
        "second holder got {second}; renewed, released, re-acquired"
    ))
}

async fn fencing(a: &Datastore, b: &Datastore) -> Checked {
    let model = model("fencing");
    let scope = LockScope::Model(model.clone());
    let ttl = 600;
    let old = a
        .acquire(&scope, ttl)
        .await
        .or_fail("locks.acquire with a short TTL")?;
    // Let it go stale: not renewed within its TTL.
    tokio::time::sleep(Duration::from_millis(u64::from(ttl) + 400)).await;
    let new = b
        .acquire(&scope, TTL_MS)
        .await
        .or_fail("taking over a stale lease")?;
    let checked = async {
        let staged = stage(a, "fenced", b"must not land").or_fail("staging a file")?;
        let refused = expect_error(
            a.put_file(&model, "fenced.bin", &staged, &Base::Any, &Committer::Leased(old.clone()))
                .await,
            &["lock-lost"],
            "a commit under the taken-over lease",
        )?;
        let files = b.list_files(&model).await.or_fail("models.list-files")?;
        if files.iter().any(|file| file.name == "fenced.bin") {
            return fail("the taken-over lease's commit landed");
        }
        if new.generation <= old.generation {
            return fail(format!(
                "the takeover has generation {}, not above the stale lease's {} (generations only grow)",
                new.generation, old.generation
            ));
        }
        Ok(format!(
            "generation {} → {}; the old holder got {refused}",
            old.generation, new.generation
        ))
    }
    .await;
    let _ = b.release(&new).await;
    checked
}

/// The most writes of one commit the held-commit check holds, one a round.
const MOST_HELD_WRITES: u32 = 32;

/// The file every round of the held-commit check commits.
const HELD_FILE: &str = "held.bin";

/// How one round of the held-commit check ended.
enum Round {
    /// The commit was refused after the takeover: the fence held.
    Refused(String),
    /// Nothing to judge: the commit had landed before the takeover (the
    /// held write came after its commit point), landed while the takeover
    /// ran, or the takeover waited for it.
    NotJudged(String),
}

/// `model-locks`: a commit whose writes are held one at a time (a round
/// each) while another clone force-releases its lease and takes the model
/// over never lands after the takeover. A look at the lock object before
/// the commit's last write does not pass this: a writer stopped between
/// that look and the write (a GC pause, `SIGSTOP`) passes the look. The
/// takeover must change what the commit compare-and-swaps, as a fence
/// raised in the model's index does.
async fn held_commit(fixture: &Fixture, b: &Datastore) -> Checked {
    let store = Arc::new(PausedWrites::new(fixture.store.clone()));
    let writer = fixture
        .clone_over(store.clone(), false)
        .await
        .or_fail("opening a clone whose writes can be held")?;
    writer
        .pull(&pull_all(false))
        .await
        .or_fail("a pull of a new clone")?;
    let mut rounds = Vec::new();
    let mut refused = 0;
    for nth in 1..=MOST_HELD_WRITES + 1 {
        let round = hold_one_write(&store, &writer, b, nth).await?;
        if nth > MOST_HELD_WRITES && round.is_some() {
            return fail(format!(
                "models.put-file made more than {MOST_HELD_WRITES} writes: the check holds at most \
                 that many, so its commit point may not have been held"
            ));
        }
        match round {
            Some(Round::Refused(detail)) => {
                refused += 1;
                rounds.push(detail);
            }
            Some(Round::NotJudged(detail)) => rounds.push(detail),
            None if rounds.is_empty() => return fail("models.put-file made no write"),
            None => break,
        }
    }
    if refused == 0 {
        return fail(format!(
            "no held write of a commit was ever refused after a takeover, so nothing showed \
             the commit fenced: {}",
            rounds.join("; ")
        ));
    }
    Ok(format!(
        "each of a commit's {} writes held while another clone took over: {}",
        rounds.len(),
        rounds.join("; ")
    ))
}

/// One round: holds the `nth` write of a leased put-file by `writer`, has
/// `b` force-release the lease and take the model over, lets the write go
/// and looks whether the commit landed after the takeover. `None` when the
/// put ended with fewer than `nth` writes.
async fn hold_one_write(
    store: &PausedWrites,
    writer: &Arc<Datastore>,
    b: &Datastore,
    nth: u32,
) -> Result<Option<Round>, NotPassed> {
    let model = model(&format!("held-{nth}"));
    let scope = LockScope::Model(model.clone());
    // A long TTL: nothing here is about staleness or the self-fence.
    let lease = writer
        .acquire(&scope, TTL_MS)
        .await
        .or_fail("locks.acquire of a free model")?;
    let staged = match stage(writer, "held", b"held across a takeover") {
        Ok(staged) => staged,
        Err(err) => {
            let _ = writer.release(&lease).await;
            return fail(format!("staging a file failed: {err:#}"));
        }
    };
    let reached = store.arm(nth);
    let mut put = tokio::spawn({
        let (writer, model, lease) = (writer.clone(), model.clone(), lease.clone());
        async move {
            let by = Committer::Leased(lease);
            writer
                .put_file(&model, HELD_FILE, &staged, &Base::Any, &by)
                .await
        }
    });
    let held = tokio::select! {
        held = reached => held.ok(),
        ended = &mut put => {
            store.disarm();
            let _ = writer.release(&lease).await;
            return match ended {
                Ok(Ok(_)) => Ok(None),
                Ok(Err(err)) => fail(format!("models.put-file under a fresh lease failed: {err:#}")),
                Err(err) => fail(format!("models.put-file under a fresh lease did not finish: {err}")),
            };
        }
    };
    let Some(held) = held else {
        store.disarm();
        let _ = put.await;
        let _ = writer.release(&lease).await;
        return fail("the held write was neither held nor finished");
    };
    let what = held.kind;
    let taken = take_over(b, &scope, &model).await;
    // Listed once the takeover is done, the write still held: a commit
    // that shows now landed before it or while it ran (concurrent writes).
    let landed_by_takeover = match &taken {
        Ok(Takeover {
            lease: Some(_),
            landed_before,
        }) => match *landed_before {
            true => Ok(true),
            false => lists(b, &model, HELD_FILE).await,
        },
        _ => Ok(false),
    };
    held.resume();
    let ended = put
        .await
        .map_err(|err| anyhow::anyhow!("the put did not finish: {err}"))
        .and_then(|result| result);
    let landed_after = lists(b, &model, HELD_FILE).await;
    if let Ok(Takeover {
        lease: Some(new), ..
    }) = &taken
    {
        let _ = b.release(new).await;
    }
    let _ = writer.release(&lease).await;

    let Takeover {
        lease: new,
        landed_before,
    } = taken?;
    let (landed_by_takeover, landed_after) = (landed_by_takeover?, landed_after?);
    let Some(new) = new else {
        // A design may keep a takeover out while a commit is under way,
        // but not once it has ended.
        let new = b
            .acquire(&scope, TTL_MS)
            .await
            .or_fail("locks.acquire after a force-release, once the held commit had ended")?;
        let _ = b.release(&new).await;
        return Ok(Some(Round::NotJudged(format!(
            "#{nth} ({what}): the takeover waited for it"
        ))));
    };
    Ok(Some(
        match (landed_before, landed_by_takeover, landed_after, ended) {
            (true, _, _, _) => Round::NotJudged(format!("#{nth} ({what}): had landed before")),
            (false, true, _, _) => {
                Round::NotJudged(format!("#{nth} ({what}): landed while the takeover ran"))
            }
            (false, false, true, ended) => {
                return fail(format!(
                    "the commit's write #{nth} ({what}) was held while another clone force-released \
                 its lease and took the model over (generation {}); let go, the commit landed \
                 inside the new holder's lease (put-file answered {}). A look at the lock \
                 object before writing does not fence a writer stopped after the look: the \
                 takeover must change what the commit compare-and-swaps (a fence in the \
                 model's index that refuses an older generation)",
                    new.generation,
                    match ended {
                        Ok(_) => "success".to_owned(),
                        Err(err) => kind(&err),
                    }
                ));
            }
            (false, false, false, Ok(version)) => {
                return fail(format!(
                    "models.put-file answered version {} after its held write #{nth} ({what}) \
                 was let go, but the file is not listed",
                    crate::runtime::guest_text(&version.version)
                ));
            }
            (false, false, false, Err(err)) => {
                Round::Refused(format!("#{nth} ({what}): refused with {}", kind(&err)))
            }
        },
    ))
}

/// What a takeover found and got.
struct Takeover {
    /// Whether the held commit was listed once the lock was force-released.
    landed_before: bool,
    /// The new holder's lease; `None` when the extension kept it out
    /// (`lock-held`) while the commit was under way.
    lease: Option<Lease>,
}

/// `b` force-releases the model's lock and takes the model over: the
/// operator's way past a machine that stopped.
async fn take_over(
    b: &Datastore,
    scope: &LockScope,
    model: &ModelRef,
) -> Result<Takeover, NotPassed> {
    let Some(current) = b
        .inspect(scope)
        .await
        .or_fail("locks.inspect of a held model")?
    else {
        return fail("locks.inspect found no lock on a model whose lease is held");
    };
    b.force_release(&current)
        .await
        .or_fail("locks.force-release of the held lease")?;
    // A force-release that answered success must have let the lock go.
    if let Some(still) = b
        .inspect(scope)
        .await
        .or_fail("locks.inspect after a force-release")?
        && still.generation == current.generation
        && still.holder.name == current.holder.name
        && still.holder.pid == current.holder.pid
    {
        return fail(format!(
            "locks.force-release answered success, but the lock (generation {}) is still there",
            still.generation
        ));
    }
    let landed_before = lists(b, model, HELD_FILE).await?;
    let lease = match b.acquire(scope, TTL_MS).await {
        Ok(lease) => Some(lease),
        Err(err) if kind(&err) == "lock-held" => None,
        Err(err) => {
            return fail(format!(
                "locks.acquire after a force-release failed: {err:#}"
            ));
        }
    };
    Ok(Takeover {
        landed_before,
        lease,
    })
}

/// Whether `name` is a live file of `model`, as `datastore` lists it now.
async fn lists(datastore: &Datastore, model: &ModelRef, name: &str) -> Result<bool, NotPassed> {
    match datastore.list_files(model).await {
        Ok(files) => Ok(files.iter().any(|file| file.name == name)),
        Err(err) if kind(&err) == "not-found" => Ok(false),
        Err(err) => fail(format!("models.list-files failed: {err:#}")),
    }
}

/// Commits `content` as `name` with no lease, as `datastore`'s holder.
async fn put_unleased(
    datastore: &Datastore,
    model: &ModelRef,
    name: &str,
    content: &[u8],
    base: Base,
) -> anyhow::Result<String> {
    let by = Committer::Unleased(datastore.holder().clone());
    put_as(datastore, model, name, content, base, by).await
}

/// `lease-free-commits`: an unleased commit lands and honours its base; it
/// is refused (`lock-held`, nothing committed) while another holds the
/// model's lease, lands once that lease is released or has expired, and
/// then the expired holder cannot commit; a holder that comes after sees
/// the unleased commit as the latest version.
async fn lease_free_commits(a: &Datastore, b: &Datastore) -> Checked {
    let model = model("lease-free");
    let scope = LockScope::Model(model.clone());
    let first = put_unleased(a, &model, "free.bin", b"one", Base::Absent)
        .await
        .or_fail("an unleased put of a new name")?;
    let files = b.list_files(&model).await.or_fail("models.list-files")?;
    match files.iter().find(|file| file.name == "free.bin") {
        Some(file) if file.latest.version == first && file.latest.writer == a.holder().name => {}
        other => {
            return fail(format!(
                "after an unleased put, the other clone lists {other:?}, not version {first} by {}",
                a.holder().name
            ));
        }
    }
    let conflict = expect_error(
        put_unleased(a, &model, "free.bin", b"again", Base::Absent).await,
        &["conflict"],
        "an unleased put with base `absent` of a name that exists",
    )?;

    // A live lease shuts unleased commits out.
    let held = b
        .acquire(&scope, TTL_MS)
        .await
        .or_fail("locks.acquire after an unleased commit")?;
    let while_held = put_unleased(a, &model, "free.bin", b"two", Base::Any).await;
    let released = b.release(&held).await;
    let refused = expect_error(
        while_held,
        &["lock-held"],
        "an unleased put while another holds the model's lease",
    )?;
    released.or_fail("locks.release")?;
    let files = a.list_files(&model).await.or_fail("models.list-files")?;
    if files
        .iter()
        .any(|file| file.name == "free.bin" && file.latest.version != first)
    {
        return fail("an unleased put refused with lock-held committed all the same");
    }
    let after_release = put_unleased(a, &model, "free.bin", b"two", Base::Version(first.clone()))
        .await
        .or_fail("an unleased put once the lease was released")?;

    // An expired lease: the unleased commit lands, the expired holder cannot.
    let short = 600;
    let stale = b
        .acquire(&scope, short)
        .await
        .or_fail("locks.acquire with a short TTL")?;
    tokio::time::sleep(Duration::from_millis(u64::from(short) + 400)).await;
    let over_stale = put_unleased(a, &model, "free.bin", b"three", Base::Any)
        .await
        .or_fail("an unleased put over an expired lease")?;
    let staged = stage(b, "late", b"must not land").or_fail("staging a file")?;
    let late = expect_error(
        b.put_file(
            &model,
            "late.bin",
            &staged,
            &Base::Any,
            &Committer::Leased(stale.clone()),
        )
        .await,
        &["lock-lost"],
        "a commit under a lease that expired while an unleased commit landed",
    )?;
    let _ = b.release(&stale).await;

    // A holder that comes after builds on the unleased commit.
    let on_top = put_on(
        b,
        &model,
        "free.bin",
        b"four",
        Base::Version(over_stale.clone()),
    )
    .await
    .or_fail("a leased put based on the last unleased commit")?;
    let history = a
        .history(&model, "free.bin")
        .await
        .or_fail("models.history")?;
    let versions: Vec<&str> = history.iter().map(|v| v.version.as_str()).collect();
    let expected = [
        first.as_str(),
        after_release.as_str(),
        over_stale.as_str(),
        on_top.as_str(),
    ];
    if versions != expected {
        return fail(format!("history is {versions:?}, expected {expected:?}"));
    }
    Ok(format!(
        "base absent on an existing name: {conflict}; under a live lease: {refused}; the expired holder: {late}"
    ))
}

async fn namespace_exclusion(a: &Datastore, b: &Datastore) -> Checked {
    let model = model("namespace");
    let namespace = a
        .acquire(&LockScope::Namespace, TTL_MS)
        .await
        .or_fail("locks.acquire of the namespace")?;
    let refused = expect_held(
        b,
        &LockScope::Model(model.clone()),
        "a model lease while another holds the namespace",
    )
    .await;
    let released = a.release(&namespace).await;
    let refused = refused?;
    released.or_fail("locks.release of the namespace")?;
    acquire_and_release(
        b,
        &LockScope::Model(model),
        "a model lease once the namespace is free",
    )
    .await?;
    Ok(format!(
        "a model lease under a held namespace got {refused}"
    ))
}

async fn lazy_hydration(fixture: &Fixture, a: &Datastore) -> Checked {
    let model = model("lazy");
    put(a, &model, "one.bin", b"first file").await?;
    put(a, &model, "two.bin", b"second file").await?;
    let (one, two) = (
        working_path(&model, "one.bin"),
        working_path(&model, "two.bin"),
    );

    let c = fixture
        .clone_datastore(true)
        .await
        .or_fail("opening a lazy clone")?;
    c.pull(&pull_all(false)).await.or_fail("a lazy pull")?;
    if read_local(&c, &one).is_some() || read_local(&c, &two).is_some() {
        return fail("a lazy pull (fetch-missing off) fetched file content");
    }
    c.hydrate_file(&two.to_string_lossy())
        .await
        .or_fail("hydration.hydrate-file")?;
    if read_local(&c, &two).as_deref() != Some(b"second file".as_slice()) {
        return fail("hydrate-file did not fetch the file asked for");
    }
    if read_local(&c, &one).is_some() {
        return fail("hydrate-file fetched a file it was not asked for");
    }
    c.hydrate_scope(
        std::slice::from_ref(&model),
        hydration::HydrateOptions {
            include_history: false,
            dry_run: false,
            max_objects: None,
            local_edits: LocalEdits::Keep,
        },
    )
    .await
    .or_fail("hydration.hydrate-scope")?;
    if read_local(&c, &one).as_deref() != Some(b"first file".as_slice()) {
        return fail("hydrate-scope of the model did not fetch all its files");
    }
    Ok("lazy pull fetched no content; hydrate-file one file; hydrate-scope the rest".to_owned())
}

async fn gc(a: &Datastore) -> Checked {
    let model = model("gc");
    for round in 0..3u8 {
        put(a, &model, "versions.bin", &[round; 16]).await?;
    }
    let lease = a
        .acquire(&LockScope::Model(model.clone()), TTL_MS)
        .await
        .or_fail("locks.acquire")?;
    let result = a
        .gc(&sync::GcOptions {
            scope: Scope::Models(vec![model.clone()]),
            keep_versions: 1,
            leases: vec![lease.clone()],
            dry_run: false,
        })
        .await;
    let _ = a.release(&lease).await;
    result.or_fail("sync.gc keeping 1 version")?;
    let history = a
        .history(&model, "versions.bin")
        .await
        .or_fail("models.history")?;
    let live: Vec<_> = history.iter().filter(|v| !v.deleted).collect();
    if live.len() != 1 || live[0].sha256 != sha256_hex(&[2u8; 16]) {
        return fail(format!(
            "after gc keeping 1, history holds {} versions",
            live.len()
        ));
    }
    Ok("3 versions → 1 (the newest)".to_owned())
}

async fn typed_errors(a: &Datastore) -> Checked {
    let model = model("errors");
    put(a, &model, "present.bin", b"here").await?;
    let missing = expect_error(
        a.get_file(&model, "absent.bin", None, ".silt/staging/contract-absent")
            .await,
        &["not-found"],
        "get-file of a file that was never put",
    )?;
    let real = a
        .acquire(&LockScope::Model(model.clone()), TTL_MS)
        .await
        .or_fail("locks.acquire")?;
    let forged = Lease {
        token: "forged-token-0000".to_owned(),
        ..real.clone()
    };
    let staged = stage(a, "forged", b"forged").or_fail("staging a file")?;
    let forged_result = a
        .put_file(
            &model,
            "forged.bin",
            &staged,
            &Base::Any,
            &Committer::Leased(forged.clone()),
        )
        .await;
    let _ = a.release(&real).await;
    let refused = expect_error(
        forged_result,
        &[
            "lock-lost",
            "lock-held",
            "invalid-input",
            "precondition-failed",
        ],
        "put-file under a forged lease",
    )?;
    let malformed = ModelRef {
        model_type: "../escape".to_owned(),
        model_id: "x".to_owned(),
    };
    let invalid = expect_error(
        a.list_files(&malformed).await,
        &["invalid-input", "not-found"],
        "list-files of a model named `../escape`",
    )?;
    Ok(format!(
        "missing file: {missing}; forged lease: {refused}; `../escape`: {invalid}"
    ))
}
