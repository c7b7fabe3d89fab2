//! `silt data put|get|list|history|rm`: one file of one model at a time.
//! Writes take the model's lease (or none, for an extension that commits
//! without one); reads take none (they read the committed index, which is
//! always consistent). In a lazy clone, `get` of the latest version makes
//! that one file present (`hydrate-file`) and `list` makes the model
//! present (`hydrate-scope`) — what is read is then local. Every byte
//! delivered is checked against the index first. A `put` copies the file
//! into the local copy (staging it) for the extension to upload, unless it
//! is large and the extension takes a sending of it where it is (0.7.4,
//! [`send_given_from`]); either way the commit is checked against what the
//! host itself read. A staged `put` that holds the model's working-copy
//! lock ([`commit_one`]) lends the extension its staged file, which the
//! SDK moves into the working copy when the file there was the version the
//! commit replaces, so `status` does not report one's own commit as the
//! store's.

use std::io::{Read, Seek as _, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context as _;
use sha2::{Digest as _, Sha256};

use super::Project;
use super::given_path::{self, GivenPath};
use crate::beneath::{Beneath, LinkRefused};
use crate::capabilities::delivery::{DELIVERY_DIR, Delivered, Delivery};
use crate::capabilities::sending::{FileShape, GivenFile, SEND_DIR, StagedFile};
use crate::datastore::{
    Claim, Datastore, LAZY_HYDRATION, WorkingCopy, WorkingCopyGuard, commit_one, make_present,
    model_label, remove_stale_staging,
};
use crate::exit::{ContentMismatch, InputChanged, UsageError};
use crate::runtime::bindings::exports::silt::datastore::models::{FileEntry, FileVersion};
use crate::runtime::bindings::silt::datastore::types::{Base, LocalEdits, ModelRef};
use crate::runtime::guest_text;

/// Where `put` reads the file it commits.
pub enum Source<'a> {
    /// A file.
    File(&'a Path),
    /// Standard input, read unbuffered (nothing read ahead).
    Stdin,
}

/// Where `get` delivers the file.
pub enum Destination<'a> {
    /// A file, replaced atomically.
    File(&'a Path),
    /// Standard output (the command's product).
    Stdout,
}

/// A version committed, and the store requests the commit took (the lease
/// included).
#[derive(Debug)]
pub struct Committed {
    /// The new version (a tombstone for `rm`), or the latest one when a
    /// `put` gave its content again (`unchanged`).
    pub version: FileVersion,
    /// Store requests of the commit.
    pub requests: u64,
    /// The content given was the latest version's: nothing new was
    /// committed (told by its time: a new version is never older than the
    /// command).
    pub unchanged: bool,
}

/// Commits `source` as the new latest version of `name` (see the module's
/// doc).
///
/// # Errors
/// An unreadable source, a conflict with `base`, a lease that cannot be
/// taken, or a committed version that does not describe the bytes given
/// ([`ContentMismatch`]).
pub fn put(
    project: &Project,
    model: &ModelRef,
    name: &str,
    source: Source,
    base: &Base,
) -> anyhow::Result<Committed> {
    let policy = project.lease_policy()?;
    project.with_datastore(async |datastore| {
        let opened = match source {
            Source::File(path) => Some((path, open_given(datastore, path)?)),
            Source::Stdin => None,
        };
        let before = datastore.traffic().requests();
        let started_ms = crate::datastore::now_ms();
        let what = || {
            format!(
                "{} {}: the committed version",
                model_label(model),
                guest_text(name)
            )
        };
        // The index must describe the bytes the user gave, not whatever the
        // extension read (or made up).
        let committed = match opened {
            Some((path, file)) if sent_as_given(datastore, &file) => {
                let (committed, given) =
                    put_given(datastore, model, name, base, &policy, path, file).await?;
                given.check(&committed, what)?;
                committed
            }
            opened => {
                let (committed, given) =
                    put_staged(datastore, model, name, base, &policy, opened).await?;
                given.check(&committed, what)?;
                committed
            }
        };
        anyhow::Ok(Committed {
            unchanged: committed.committed_at < started_ms,
            version: committed,
            requests: datastore.traffic().requests() - before,
        })
    })
}

/// Opens the file given to `put`. One in the working copy is opened
/// beneath it: a link an extension planted there is refused, never
/// followed to a file of the user's that the commit would hand it.
fn open_given(datastore: &Datastore, path: &Path) -> anyhow::Result<std::fs::File> {
    let cannot = || format!("cannot read {}", path.display());
    match locate(datastore, path).with_context(cannot)? {
        GivenPath::Outside(outside) => std::fs::File::open(outside).with_context(cannot),
        GivenPath::InWorkingCopy(relative) => datastore
            .local()
            .and_then(|local| local.open_read(relative))
            .with_context(cannot),
    }
}

/// Where `path`, named by the user, leads (see [`given_path::locate`]).
/// The working copy is made first if missing: located against nothing, a
/// path could lead into it once a call has made it, with a guest's link
/// on the way.
fn locate(datastore: &Datastore, path: &Path) -> std::io::Result<GivenPath> {
    let local = datastore.local()?;
    given_path::locate(path, &std::env::current_dir()?, local.path())
}

/// The path to deliver `output` to: refused in the working copy (the
/// extension writes there, so a directory on the way may be a link it
/// planted, and a file delivered there would be taken for a local edit).
fn output_outside_working_copy(datastore: &Datastore, output: &Path) -> anyhow::Result<PathBuf> {
    match locate(datastore, output).with_context(|| format!("cannot write {}", output.display()))? {
        GivenPath::Outside(outside) => Ok(outside),
        GivenPath::InWorkingCopy(_) => Err(UsageError(format!(
            "{} is in the working copy ({}), which the extension manages: \
             give an output outside it (the working copy's own file is made present by \
             `silt datastore hydrate`)",
            output.display(),
            datastore.local_dir().display()
        ))
        .into()),
    }
}

/// From this size on, a file given to `put` is sent from where it is, to
/// an extension that takes that (contract 0.7.4), instead of being copied
/// into the local copy first. Below it the copy is small, and it lets a
/// commit that holds the model's working copy bring it along; above it,
/// writing every byte once more is what kept an upload below the speed of
/// `aws s3 cp`. It is the S3 store's default multipart threshold, from
/// which its upload hashes the parts as it sends them.
fn send_given_from() -> u64 {
    silt_store::PartSettings::default().threshold
}

/// True when `file` is sent as it is (see [`send_given_from`]).
fn sent_as_given(datastore: &Datastore, file: &std::fs::File) -> bool {
    datastore.takes_given_files()
        && file
            .metadata()
            .is_ok_and(|meta| meta.is_file() && meta.len() >= send_given_from())
}

/// Commits `file` (opened from `path`) with no copy of it in the local
/// copy: each `put-file` attempt is handed a path naming a sending of it
/// (see `capabilities/sending.rs`), and the digest of what its upload read
/// is what the commit is checked against. The working copy does not take
/// the file: a pull fetches it if the clone needs it.
async fn put_given(
    datastore: &Arc<Datastore>,
    model: &ModelRef,
    name: &str,
    base: &Base,
    policy: &crate::datastore::LeasePolicy,
    path: &Path,
    file: std::fs::File,
) -> anyhow::Result<(FileVersion, Fingerprint)> {
    // Nothing is staged here, but what killed commands staged still goes.
    if let Ok(local) = datastore.local() {
        sweep_staging(&local);
    }
    let given = GivenFile::new(file, path.display().to_string())
        .with_context(|| format!("cannot read {}", path.display()))?;
    let cache_path = format!("{SEND_DIR}/{}", unique_name());
    let (cache_path, sent) = (&cache_path, &given);
    let committed = commit_one(datastore, model, policy, |by, _| async move {
        let _sending = datastore.expect_given(cache_path, sent.clone());
        datastore.put_file(model, name, cache_path, base, &by).await
    })
    .await;
    if given.seen_changed() {
        // Whatever the extension made of it, the user's file moved under
        // the put: say that, in the host's words.
        return Err(InputChanged(given.changed()).into());
    }
    let committed = committed?;
    let digest = match given.sent() {
        Some(sent) => sent,
        // The extension committed without sending the file: what it
        // committed is checked against the file, unchanged since given.
        None => given
            .hash_unsent()
            .await
            .with_context(|| format!("cannot read {}", path.display()))?,
    };
    let fingerprint = Fingerprint {
        size: digest.size,
        sha256: digest.sha256,
    };
    Ok((committed, fingerprint))
}

/// Commits what `opened` holds (standard input when `None`) through a
/// staged copy in the local copy, which the extension reads.
async fn put_staged(
    datastore: &Arc<Datastore>,
    model: &ModelRef,
    name: &str,
    base: &Base,
    policy: &crate::datastore::LeasePolicy,
    opened: Option<(&Path, std::fs::File)>,
) -> anyhow::Result<(FileVersion, Fingerprint)> {
    // Copied into the local copy first: the extension reads only from
    // there, and stdin can be read only once.
    let staged = Staged::new(datastore)?;
    let given = match opened {
        Some((path, mut source)) => staged
            .fill(&mut source)
            .with_context(|| format!("cannot read {}", path.display()))?,
        // Unbuffered, from descriptor 0 itself: nothing is read ahead
        // into std's stdin buffer.
        None => {
            use std::os::fd::AsFd as _;
            let mut stdin = std::io::stdin()
                .as_fd()
                .try_clone_to_owned()
                .map(std::fs::File::from)
                .context("cannot read stdin")?;
            staged.fill(&mut stdin).context("cannot read stdin")?
        }
    };
    let staged = &staged;
    let committed = commit_one(datastore, model, policy, |by, working_copy| async move {
        let path = staged.for_commit(working_copy)?;
        // Its upload answers the hash taken while staging while the
        // file is the one written there (see `Sendings`).
        let _sending = staged
            .written()
            .map(|written| datastore.expect_sending(&path, written));
        datastore.put_file(model, name, &path, base, &by).await
    })
    .await?;
    Ok((committed, given))
}

/// Removes what killed commands staged (best effort: it is only disk
/// space).
fn sweep_staging(local: &Beneath) {
    let swept = [STAGING_DIR, LENT_DIR, DELIVERY_DIR]
        .into_iter()
        .try_fold(0, |removed, dir| {
            Ok::<_, std::io::Error>(removed + remove_stale_staging(local, Path::new(dir))?)
        });
    match swept {
        Ok(0) => {}
        Ok(removed) => tracing::info!("removed {removed} staged copies of killed commands"),
        Err(err) => tracing::warn!("cannot clean up the staging area: {err}"),
    }
}

/// A name no other command of this machine uses: this process's id and
/// the time.
fn unique_name() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("{}-{nanos}", std::process::id())
}

/// Delivers the latest (or the given) version of `name` to `destination`,
/// checked against the index; answers the version delivered.
///
/// # Errors
/// No such file or version, the store's errors, bytes that are not the
/// version the index describes ([`ContentMismatch`]), or a destination that
/// cannot be written.
pub fn get(
    project: &Project,
    model: &ModelRef,
    name: &str,
    version: Option<&str>,
    destination: Destination,
) -> anyhow::Result<FileVersion> {
    let output = match destination {
        Destination::File(path) => Some(path),
        Destination::Stdout => None,
    };
    project.with_datastore(async |datastore| {
        let located = output
            .map(|path| output_outside_working_copy(datastore, path))
            .transpose()?;
        let output = located.as_deref();
        let what = || format!("{} {}", model_label(model), guest_text(name));
        if version.is_none()
            && let Some(present) = working_copy_file(datastore, model, name).await?
        {
            // Delivered straight from the working copy (no staged copy);
            // checked again as it is copied, so a file changed meanwhile
            // is refused before a byte is shown or renamed into place.
            tracing::debug!("{}: from the working copy", what());
            match deliver(datastore, present.file, &present.latest, output, &what) {
                Err(err) if err.downcast_ref::<ContentMismatch>().is_some() => {
                    tracing::debug!(
                        "{}: a local edit; the committed file from the store",
                        what()
                    );
                }
                delivered => return delivered.map(|()| present.latest),
            }
        }
        // Named a delivery: an extension of 0.7.3 hands the object to the
        // host, which lands it beside the output and hashes it on the way;
        // one before writes the staged path, copied from there (as is
        // what goes to stdout).
        let destination = delivery_destination(output);
        let staged = Staged::in_dir(
            datastore,
            if destination.is_some() {
                DELIVERY_DIR
            } else {
                STAGING_DIR
            },
        )?;
        let delivery = destination
            .map(|(dir, file_name)| datastore.expect_delivery(&staged.relative, dir, file_name));
        let fetched = datastore
            .get_file(model, name, version, &staged.relative)
            .await?;
        match (delivery.as_ref().and_then(Delivery::take), output) {
            (Some(delivered), Some(path)) => {
                tracing::debug!("{}: delivered by the host beside the output", what());
                put_delivered(delivered, &fetched, path, &what)?;
            }
            _ => deliver(datastore, staged.open()?, &fetched, output, &what)?,
        }
        anyhow::Ok(fetched)
    })
}

/// The model's files and their latest versions; the model is made present
/// first (it is what a command works on next; a full pull when the
/// extension cannot do one model, said as a notice).
///
/// # Errors
/// The extension's and the store's errors.
pub fn list(project: &Project, model: &ModelRef) -> anyhow::Result<Vec<FileEntry>> {
    project.with_datastore(async |datastore| {
        let (presence, _held) =
            make_present(datastore, std::slice::from_ref(model), LocalEdits::Keep).await?;
        if let Some(reason) = &presence.full_pull_because {
            project.events.notice(reason);
        }
        datastore.list_files(model).await
    })
}

/// The versions of `name` the index keeps, oldest first.
///
/// # Errors
/// No such file, or the extension's errors.
pub fn history(
    project: &Project,
    model: &ModelRef,
    name: &str,
) -> anyhow::Result<Vec<FileVersion>> {
    project.with_datastore(async |datastore| datastore.history(model, name).await)
}

/// Removes `name` from the model (a tombstone version), if its latest
/// version is still `base`.
///
/// # Errors
/// No such file, a conflict with `base`, or a lease that cannot be taken.
pub fn remove(
    project: &Project,
    model: &ModelRef,
    name: &str,
    base: &Base,
) -> anyhow::Result<Committed> {
    let policy = project.lease_policy()?;
    project.with_datastore(async |datastore| {
        let before = datastore.traffic().requests();
        let tombstone = commit_one(datastore, model, &policy, |by, _| async move {
            datastore.remove_file(model, name, base, &by).await
        })
        .await?;
        anyhow::Ok(Committed {
            version: tombstone,
            requests: datastore.traffic().requests() - before,
            unchanged: false,
        })
    })
}

/// Where [`Staged`] files live, in the local copy.
const STAGING_DIR: &str = ".silt/staging";

/// Where a staged file is lent to a `put-file` whose model's working copy
/// the put holds: the extension may move it into the working copy (the
/// SDK does when the file there is the version the commit replaces). The
/// SDK knows this path (`models.rs`, `LENT_STAGING`).
const LENT_DIR: &str = ".silt/staging/lent";

/// A file in the local copy's staging area (`.silt/staging/<pid>-<nanos>`),
/// where the extension reads what `put` commits and writes what `get`
/// fetches. The host reaches it only through [`Beneath`] (the extension can
/// plant links in its cache directory) and removes it when dropped.
struct Staged {
    local: Beneath,
    relative: String,
    /// Its name, under [`STAGING_DIR`] and [`LENT_DIR`].
    name: String,
    /// True while it is under [`LENT_DIR`].
    lent: std::cell::Cell<bool>,
    /// What [`Self::fill`] wrote, while the file is still that.
    written: std::cell::RefCell<Option<StagedFile>>,
}

impl Staged {
    /// A name in the staging area, for a `put`.
    fn new(datastore: &Datastore) -> anyhow::Result<Self> {
        Self::in_dir(datastore, STAGING_DIR)
    }

    /// A name in `dir` of the local copy: [`STAGING_DIR`], or
    /// [`DELIVERY_DIR`] for a `get`.
    fn in_dir(datastore: &Datastore, dir: &str) -> anyhow::Result<Self> {
        let local = datastore.local().context("cannot open the local copy")?;
        // Checked before the extension is asked to write here: a link in
        // the way is the user's to remove (exit 65), not a store failure.
        let needed = if dir == STAGING_DIR { LENT_DIR } else { dir };
        local
            .create_dir_all(needed)
            .context("cannot prepare the staging area")?;
        sweep_staging(&local);
        let name = unique_name();
        Ok(Self {
            local,
            relative: format!("{dir}/{name}"),
            name,
            lent: std::cell::Cell::new(false),
            written: std::cell::RefCell::new(None),
        })
    }

    fn lent_path(&self) -> String {
        format!("{LENT_DIR}/{}", self.name)
    }

    /// The path to hand `put-file`: lent (moved under [`LENT_DIR`]) while
    /// the put holds the model's working copy, else where it was staged.
    fn for_commit(&self, working_copy: WorkingCopy) -> anyhow::Result<String> {
        let lend = working_copy == WorkingCopy::Held;
        if lend != self.lent.get() {
            let (from, to) = if lend {
                (self.relative.clone(), self.lent_path())
            } else {
                (self.lent_path(), self.relative.clone())
            };
            self.rename_keeping_written(&from, &to)
                .context("cannot move the staged file in the local copy")?;
            self.lent.set(lend);
        }
        Ok(if lend {
            self.lent_path()
        } else {
            self.relative.clone()
        })
    }

    /// Creates the staged file from `source`; returns what was written.
    fn fill(&self, source: &mut dyn Read) -> anyhow::Result<Fingerprint> {
        let mut target = self
            .local
            .create_new(&self.relative)
            .context("cannot stage the file in the local copy")?;
        let written = copy_hashing(source, &mut target)?;
        target.flush()?;
        *self.written.borrow_mut() = FileShape::of(&target)
            .ok()
            .filter(|shape| shape.size() == written.size)
            .map(|shape| StagedFile {
                shape,
                sha256: written.sha256.clone(),
            });
        Ok(written)
    }

    /// The staged file as [`Self::fill`] wrote it, if nothing but the
    /// host's own renames touched it since: `None` otherwise (its upload
    /// then hashes it).
    fn written(&self) -> Option<StagedFile> {
        self.written.borrow().clone()
    }

    /// Keeps [`Self::written`] true across a rename of the staged file
    /// from `from` to `to`: the rename changes its change time.
    fn rename_keeping_written(&self, from: &str, to: &str) -> std::io::Result<()> {
        let shape_at = |path: &str| {
            self.local
                .open_read(path)
                .and_then(|file| FileShape::of(&file))
                .ok()
        };
        let before = shape_at(from);
        self.local.rename(from, to)?;
        let mut written = self.written.borrow_mut();
        *written = match written.take() {
            Some(staged) if before == Some(staged.shape) => {
                shape_at(to).map(|shape| StagedFile { shape, ..staged })
            }
            _ => None,
        };
        Ok(())
    }

    /// Opens the staged file to read what the extension left there.
    fn open(&self) -> anyhow::Result<std::fs::File> {
        self.local
            .open_read(&self.relative)
            .context("cannot read the staged file")
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        // Lent, the extension may have moved it into the working copy.
        let _ = self.local.remove_file(&self.relative);
        let _ = self.local.remove_file(self.lent_path());
    }
}

/// What the host itself read of a file: its size and sha256.
struct Fingerprint {
    size: u64,
    sha256: String,
}

impl Fingerprint {
    /// Checks that these bytes are `version` as the index describes it.
    fn check(
        &self,
        version: &FileVersion,
        what: impl FnOnce() -> String,
    ) -> Result<(), ContentMismatch> {
        if self.size == version.size && self.sha256.eq_ignore_ascii_case(&version.sha256) {
            return Ok(());
        }
        Err(ContentMismatch {
            what: what(),
            expected_size: version.size,
            expected_sha256: crate::runtime::guest_text(&version.sha256),
            actual_size: self.size,
            actual_sha256: self.sha256.clone(),
        })
    }
}

/// Copies `from` into `to`, hashing the bytes on the way.
fn copy_hashing(from: &mut dyn Read, to: &mut dyn Write) -> std::io::Result<Fingerprint> {
    let mut digest = Sha256::new();
    let mut buffer = vec![0; 256 << 10];
    let mut size = 0;
    loop {
        let read = match from.read(&mut buffer) {
            Ok(0) => break,
            Ok(read) => read,
            Err(err) if err.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(err) => return Err(err),
        };
        digest.update(&buffer[..read]);
        to.write_all(&buffer[..read])?;
        size += read as u64;
    }
    Ok(Fingerprint {
        size,
        sha256: crate::runtime::hex(&digest.finalize()),
    })
}

/// `name`'s latest version, present in the working copy.
struct PresentFile {
    latest: FileVersion,
    /// The working-copy file, opened beneath the local copy.
    file: std::fs::File,
    /// The model's working-copy lock, held while the file is read.
    _held: WorkingCopyGuard,
}

/// The latest version of `name` through the working copy: `hydrate-file`
/// makes it present (fetching only that file, verified, atomically; nothing
/// when it is present already), and it is opened under the model's lock.
/// `None` when the extension does not hydrate lazily, the file is not in
/// the index, or the file there is not the committed version (a local
/// edit) — the caller then reads the committed version from the store.
async fn working_copy_file(
    datastore: &Datastore,
    model: &ModelRef,
    name: &str,
) -> anyhow::Result<Option<PresentFile>> {
    if !datastore.supports(LAZY_HYDRATION) {
        return Ok(None);
    }
    let held = datastore
        .working_copy_locks()
        .foreground(Claim::Models(std::slice::from_ref(model)))
        .await?;
    let path = format!("data/{}/{}/{name}", model.model_type, model.model_id);
    if let Err(err) = datastore.hydrate_file(&path).await {
        tracing::debug!("{path}: not through the working copy: {err:#}");
        return Ok(None);
    }
    let files = datastore.list_files(model).await?;
    let Some(entry) = files.into_iter().find(|f| f.name == name) else {
        return Ok(None);
    };
    let local = datastore.local().context("cannot open the local copy")?;
    let file = match local.open_read(datastore.model_path(model).join(name)) {
        Ok(file) => file,
        Err(err) => {
            if LinkRefused::in_io(&err).is_some() {
                tracing::warn!("{err}; reading the committed version from the store");
            }
            return Ok(None);
        }
    };
    if file.metadata().map(|meta| meta.len()).ok() != Some(entry.latest.size) {
        // A local edit of another size: nothing to read to see that.
        return Ok(None);
    }
    // Hashed where it is, writing nothing: a file that is not the committed
    // version (a local edit of the same size, or a sparse file of any size
    // the extension planted) costs a read, never the disk a copy would.
    let mut file = file;
    let unchanged = copy_hashing(
        &mut (&file).take(entry.latest.size.saturating_add(1)),
        &mut std::io::sink(),
    )
    .is_ok_and(|read| read.check(&entry.latest, String::new).is_ok());
    if !unchanged || file.seek(std::io::SeekFrom::Start(0)).is_err() {
        return Ok(None);
    }
    Ok(Some(PresentFile {
        latest: entry.latest,
        file,
        _held: held,
    }))
}

/// Delivers `source` as `version` to `output` (a file) or stdout, checked
/// first: at most one byte more than the index says is read, enough to see
/// a file that is larger (a guest can make a sparse one of any size), and
/// never held in memory.
fn deliver(
    datastore: &Datastore,
    source: std::fs::File,
    version: &FileVersion,
    output: Option<&Path>,
    what: &dyn Fn() -> String,
) -> anyhow::Result<()> {
    let mut source = source.take(version.size.saturating_add(1));
    match output {
        Some(path) => deliver_to_file(&mut source, path, version, what),
        None => {
            // Verified before a byte is shown: through an unnamed file of
            // the host's own, so what is checked is what is printed.
            let mut copy = datastore
                .host_state()
                .and_then(|dir| dir.anonymous_file())
                .context("cannot make a temporary file")?;
            copy_hashing(&mut source, &mut copy)?.check(version, what)?;
            copy.seek(std::io::SeekFrom::Start(0))?;
            let stdout = std::io::stdout();
            let mut out = stdout.lock();
            match std::io::copy(&mut copy, &mut out).and_then(|_| out.flush()) {
                Err(err) if err.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
                other => other.context("cannot write to stdout"),
            }
        }
    }
}

/// Where a delivery for `output` lands: the output's directory (opened
/// now; what a killed `get -o` left there removed) and its file name.
/// `None` for stdout (copied through an unnamed file of the host's own, as
/// it always was), a name that is not UTF-8, or a directory that cannot be
/// opened (write-only, say): the staged copy then, written by path.
fn delivery_destination(output: Option<&Path>) -> Option<(Arc<Beneath>, String)> {
    let path = output?;
    let (dir, file_name) = output_parts(path).ok()?;
    let file_name = file_name.to_str()?;
    let opened = match Beneath::open(&dir) {
        Ok(opened) => opened,
        Err(err) => {
            tracing::debug!("{}: not delivered in place: {err}", path.display());
            return None;
        }
    };
    remove_what_a_killed_get_left(&dir, path, file_name.as_ref());
    Some((Arc::new(opened), file_name.to_owned()))
}

/// Puts what the host delivered over `output` (synced, then renamed) once
/// it is `version`; a delivery that is not is removed, and `output` left
/// as it was.
fn put_delivered(
    delivered: Delivered,
    version: &FileVersion,
    output: &Path,
    what: &dyn Fn() -> String,
) -> anyhow::Result<()> {
    let landed = Fingerprint {
        size: delivered.size,
        sha256: delivered.sha256.clone(),
    };
    landed.check(version, what)?;
    delivered
        .rename_into_place()
        .with_context(|| format!("cannot write {}", output.display()))
}

/// `path`'s directory (`.` for a bare name) and file name.
fn output_parts(path: &Path) -> anyhow::Result<(PathBuf, &std::ffi::OsStr)> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_owned(),
        _ => PathBuf::from("."),
    };
    let file_name = path
        .file_name()
        .with_context(|| format!("{} is not a file path", path.display()))?;
    Ok((dir, file_name))
}

/// Removes what a killed `get -o` to `path` left beside it: its writer is
/// gone (best effort: only disk space).
fn remove_what_a_killed_get_left(dir: &Path, path: &Path, file_name: &std::ffi::OsStr) {
    if let Err(err) = crate::datastore::remove_stale_temp_files_beside(dir, file_name) {
        tracing::warn!(
            "cannot remove what a killed command left beside {}: {err}",
            path.display()
        );
    }
}

/// Writes `source` to `path` atomically, checking it is `version`: `path`
/// is the old file or the complete, verified new one, never partial or
/// unverified. The bytes go to a temporary file beside `path` (hashed on
/// the way), which is synced and renamed over `path` only if they match.
fn deliver_to_file(
    source: &mut dyn Read,
    path: &Path,
    version: &FileVersion,
    what: impl FnOnce() -> String,
) -> anyhow::Result<()> {
    let (dir, file_name) = output_parts(path)?;
    remove_what_a_killed_get_left(&dir, path, file_name);
    // A name no other process takes, a killed predecessor with this pid
    // included (the shape the working copy's downloads use).
    let temp = dir.join(crate::process::temp_name(file_name));
    let written = (|| {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&temp)
            .with_context(|| format!("cannot write {}", temp.display()))?;
        let written = copy_hashing(source, &mut file)?;
        file.sync_all()?;
        written.check(version, what)?;
        std::fs::rename(&temp, path).with_context(|| format!("cannot write {}", path.display()))
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    written
}
