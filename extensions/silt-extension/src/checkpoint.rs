//! The index checkpoint: the slices of every model as some full check held
//! them, each with its store version, so that a fresh clone reads the whole
//! index in a handful of requests instead of one read per model.
//!
//! **In the store**, under [`CHECKPOINT_PREFIX`], nothing is ever updated:
//! - `_checkpoint/chunk/<sha256>.json` holds the slices of a run of models,
//!   each with its store version. It is named by the SHA-256 of its bytes,
//!   which the host checks on download. A run ends after a model whose label
//!   hashes to 0 modulo [`CUT_ONE_IN`], or once it holds
//!   [`MAX_CHUNK_MODELS`] models or [`MAX_CHUNK_BYTES`]; so which chunk a
//!   model is in depends on it and its neighbours only, and a new checkpoint
//!   reuses every chunk whose models did not change.
//! - `_checkpoint/manifest/<as-of ms, 13 digits>.<sha256>.json` names the
//!   chunks with their models, versions and sizes. It is named by the
//!   SHA-256 of its bytes (checked by the reader), and created only once
//!   every chunk it names is in the store.
//! - There is no pointer to the latest: a reader lists the manifests (one
//!   request; gc keeps few) and takes the one the store wrote last (its
//!   clock, not the writer's) that verifies. A listing cannot go stale, and
//!   nothing is raced on.
//!
//! **A reader** is a fresh cache (no journal progress, no sidecars) pulling
//! everything. Its pull is a full check like any other — the recent journal
//! listed, then every partition — except that a slice whose listed version
//! the checkpoint holds is taken from the checkpoint instead of read. So the
//! checkpoint is a cache checked by version: stale, it serves fewer slices;
//! missing, truncated or corrupt, it is passed over; a chunk missing or
//! corrupt serves nothing, and its models are read from their partitions
//! (each said at debug). It can only save reads.
//!
//! **A writer** is a full check that read at least
//! `checkpoint.write-after-reads` partitions from the store (default
//! [`WRITE_AFTER_READS`]; 0: never), so the checkpoint was missing or that
//! far behind, when the newest checkpoint is at least
//! `checkpoint.write-every-minutes` old (default [`WRITE_EVERY_MINUTES`]). Afterwards it writes the chunks that changed, from the slices its
//! cache holds at the versions the full check listed, then the manifest. A
//! commit never waits for it; a writer killed before its manifest leaves
//! chunks no reader looks at, which gc deletes.
//!
//! Why a slice is never served at a version whose content it is not: a
//! chunk holds a sidecar's slice under the sidecar's version, and a sidecar
//! never holds a slice older than its version (it may hold a newer one,
//! after a partial hydration: then the store is past that version, and no
//! listing names it again, since every write of a partition changes it).

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::cache_file;
use crate::layout::{self, DATA_AREA};
use crate::local::{self, Sidecar};
use crate::partition::Partition;
use crate::silt::datastore::log::{self, Level};
use crate::silt::datastore::object_store::{
    self, DownloadItem, ObjectMeta, PutMode, StoreError, UploadItem,
};
use crate::silt::datastore::types::{Error, ModelRef};
use crate::store;

/// Prefix of every checkpoint object.
///
/// ```no_run,standalone_crate
/// use silt_extension::{checkpoint, store};
/// # fn main() -> Result<(), silt_extension::silt::datastore::types::Error> {
/// let objects = store::list_all(checkpoint::CHECKPOINT_PREFIX)?.len();
/// # let _ = objects;
/// # Ok(()) }
/// ```
pub const CHECKPOINT_PREFIX: &str = "_checkpoint/";
const MANIFEST_PREFIX: &str = "_checkpoint/manifest/";
const CHUNK_PREFIX: &str = "_checkpoint/chunk/";

/// The format this build writes and reads; a reader passes over a manifest
/// of another. Bump it whenever [`Partition`] or its entries gain a field:
/// a writer re-serializes the slices it parsed, so an older build's chunks
/// would hold them without it, under versions whose partitions have it.
const FORMAT: u32 = 2;

/// A run of models ends after one whose label hashes to 0 modulo this: 256
/// models a chunk on average.
///
/// ```no_run,standalone_crate
/// assert_eq!(silt_extension::checkpoint::CUT_ONE_IN, 256);
/// ```
pub const CUT_ONE_IN: u64 = 256;

/// A run of models ends at this many whatever the hashes say.
///
/// ```no_run,standalone_crate
/// assert!(silt_extension::checkpoint::MAX_CHUNK_MODELS > silt_extension::checkpoint::CUT_ONE_IN as usize);
/// ```
pub const MAX_CHUNK_MODELS: usize = 1024;

/// A run of models ends before a slice that would take it past this many
/// bytes: what a reader or writer holds of a chunk at once stays small
/// beside the extension's memory (a single slice larger than this is a
/// chunk alone).
///
/// ```no_run,standalone_crate
/// assert_eq!(silt_extension::checkpoint::MAX_CHUNK_BYTES, 8 << 20);
/// ```
pub const MAX_CHUNK_BYTES: u64 = 8 << 20;

/// By default a full check that read at least this many partitions from
/// the store may write a checkpoint (the setting
/// `checkpoint.write-after-reads`; 0: never). Fewer are about one round of
/// reads (a pull reads 128 together): a checkpoint would save nothing worth
/// its writes.
///
/// ```no_run,standalone_crate
/// assert_eq!(silt_extension::checkpoint::WRITE_AFTER_READS, 128);
/// ```
pub const WRITE_AFTER_READS: u64 = 128;

/// By default a checkpoint is written only when the newest is at least this
/// old (the setting `checkpoint.write-every-minutes`): clones that all read
/// many changed slices do not all write one.
///
/// ```no_run,standalone_crate
/// assert_eq!(silt_extension::checkpoint::WRITE_EVERY_MINUTES, 30);
/// ```
pub const WRITE_EVERY_MINUTES: u64 = 30;

/// gc keeps at least this many of the newest manifests, and every chunk
/// they name.
///
/// ```no_run,standalone_crate
/// assert!(silt_extension::checkpoint::KEEP_MANIFESTS >= 2);
/// ```
pub const KEEP_MANIFESTS: usize = 2;

/// gc deletes a manifest or a chunk only once it is this old: a reader may
/// still be fetching it, and a writer may be about to name a chunk.
///
/// ```no_run,standalone_crate
/// assert_eq!(silt_extension::checkpoint::PRUNE_AFTER_MS, 60 * 60_000);
/// ```
pub const PRUNE_AFTER_MS: u64 = 60 * 60_000;

/// Manifests a reader tries, newest first, before it reads the partitions.
const TRIED_MANIFESTS: usize = 2;

/// Where a pull's chunks are downloaded (a directory per pull), in the
/// cache; not the temporary directory, which other calls sweep.
const DOWNLOAD_DIR: &str = ".silt/checkpoint";

/// A download directory older than this was left by a killed pull.
const DOWNLOAD_DIR_MAX_AGE: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

/// One model in a chunk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    /// The model's type.
    pub model_type: String,
    /// The model's id.
    pub model_id: String,
    /// The store version of the slice the chunk holds.
    pub version: String,
    /// The size of its entry in the chunk.
    pub bytes: u64,
}

impl Member {
    /// The model.
    pub fn model(&self) -> ModelRef {
        ModelRef {
            model_type: self.model_type.clone(),
            model_id: self.model_id.clone(),
        }
    }

    /// Where it sorts: as [`crate::Listed`] orders models.
    fn order(&self) -> (&str, &str) {
        (&self.model_type, &self.model_id)
    }

    /// What identifies its entry: model and version.
    fn identity(&self) -> (&str, &str, &str) {
        (&self.model_type, &self.model_id, &self.version)
    }
}

/// A chunk as a manifest names it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChunkRef {
    /// The SHA-256 of its bytes (its name).
    pub sha256: String,
    /// Its size.
    pub bytes: u64,
    /// Its models, in order.
    pub members: Vec<Member>,
}

impl ChunkRef {
    /// What identifies its contents: its members' models and versions.
    fn identity(&self) -> Vec<(&str, &str, &str)> {
        self.members.iter().map(Member::identity).collect()
    }
}

/// A checkpoint's manifest.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    /// Its format ([`FORMAT`] when written by this build).
    pub format: u32,
    /// The writer's clock when its full check began (its name sorts by it).
    pub as_of_ms: u64,
    /// The chunks, in model order.
    pub chunks: Vec<ChunkRef>,
}

impl Manifest {
    /// Every model, with the version the checkpoint holds, in order.
    pub fn members(&self) -> impl Iterator<Item = &Member> {
        self.chunks.iter().flat_map(|chunk| chunk.members.iter())
    }
}

/// One slice in a chunk.
#[derive(Serialize, Deserialize)]
struct Slice {
    version: String,
    partition: Partition,
}

/// A chunk's contents.
#[derive(Deserialize)]
struct Chunk {
    format: u32,
    slices: Vec<Slice>,
}

fn sha256_hex(bytes: &[u8]) -> String {
    cache_file::hex(&Sha256::digest(bytes))
}

fn is_sha256(text: &str) -> bool {
    text.len() == 64 && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

fn debug(message: &str) {
    log::log(Level::Debug, message);
}

/// The key of the manifest of a checkpoint as of `as_of_ms` whose bytes
/// hash to `sha256`.
///
/// ```no_run,standalone_crate
/// use silt_extension::checkpoint::{manifest_key, parse_manifest_key};
/// let sha = "0".repeat(64);
/// let key = manifest_key(1767225600000, &sha);
/// assert_eq!(key, format!("_checkpoint/manifest/1767225600000.{sha}.json"));
/// assert_eq!(parse_manifest_key(&key), Some((1767225600000, sha)));
/// ```
pub fn manifest_key(as_of_ms: u64, sha256: &str) -> String {
    format!("{MANIFEST_PREFIX}{as_of_ms:013}.{sha256}.json")
}

/// The as-of time and SHA-256 a manifest key names; `None` for a key that
/// is no manifest's.
pub fn parse_manifest_key(key: &str) -> Option<(u64, String)> {
    let rest = key.strip_prefix(MANIFEST_PREFIX)?.strip_suffix(".json")?;
    let (at, sha) = rest.split_once('.')?;
    let plausible = at.len() == 13 && at.bytes().all(|b| b.is_ascii_digit()) && is_sha256(sha);
    plausible.then(|| Some((at.parse().ok()?, sha.to_owned())))?
}

fn chunk_key(sha256: &str) -> String {
    format!("{CHUNK_PREFIX}{sha256}.json")
}

/// The first 8 bytes of a label's SHA-256: where runs of models end.
fn label_hash(model_type: &str, model_id: &str) -> u64 {
    let digest = Sha256::digest(format!("{model_type}/{model_id}").as_bytes());
    u64::from_be_bytes(digest[..8].try_into().expect("8 bytes"))
}

/// Where runs end: before a member that would take a run past
/// `MAX_CHUNK_BYTES`, and after a member whose label hashes so or that
/// brings the run to `MAX_CHUNK_MODELS` members.
#[derive(Default)]
struct Cutter {
    models: usize,
    bytes: u64,
}

/// Where a member goes: whether the run ends before it, and after it.
struct Cut {
    before: bool,
    after: bool,
}

impl Cutter {
    /// Takes `member` into the runs.
    fn place(&mut self, member: &Member) -> Cut {
        let before = self.models > 0 && self.bytes.saturating_add(member.bytes) > MAX_CHUNK_BYTES;
        if before {
            *self = Self::default();
        }
        self.models += 1;
        self.bytes = self.bytes.saturating_add(member.bytes);
        let after = label_hash(&member.model_type, &member.model_id).is_multiple_of(CUT_ONE_IN)
            || self.models >= MAX_CHUNK_MODELS;
        if after {
            *self = Self::default();
        }
        Cut { before, after }
    }
}

/// Cuts `members` (in order) into the runs chunks hold.
///
/// ```no_run,standalone_crate
/// use silt_extension::checkpoint::{cut, Member};
/// let members: Vec<Member> = (0..1000)
///     .map(|i| Member { model_type: "t".into(), model_id: format!("m{i:04}"), version: "v".into(), bytes: 100 })
///     .collect();
/// let runs = cut(members.clone());
/// assert_eq!(runs.concat(), members);
/// ```
pub fn cut(members: Vec<Member>) -> Vec<Vec<Member>> {
    let mut cutter = Cutter::default();
    let mut runs = Vec::new();
    let mut run = Vec::new();
    for member in members {
        let cut = cutter.place(&member);
        if cut.before {
            runs.push(std::mem::take(&mut run));
        }
        run.push(member);
        if cut.after {
            runs.push(std::mem::take(&mut run));
        }
    }
    if !run.is_empty() {
        runs.push(run);
    }
    runs
}

/// Parses and checks a manifest read at `key`: its bytes hash to its name,
/// its format is this build's, its models are in order, each once, and its
/// chunks within the bounds a writer keeps.
fn parse_manifest(key: &str, data: &[u8]) -> Result<Manifest, String> {
    let (as_of_ms, sha256) = parse_manifest_key(key).ok_or("not a manifest's key")?;
    if sha256_hex(data) != sha256 {
        return Err("its bytes do not hash to its name (truncated or corrupt)".to_owned());
    }
    let manifest: Manifest =
        serde_json::from_slice(data).map_err(|err| format!("does not parse: {err}"))?;
    if manifest.format != FORMAT {
        return Err(format!(
            "format {} (this build reads {FORMAT})",
            manifest.format
        ));
    }
    if manifest.as_of_ms != as_of_ms {
        return Err("its as-of time disagrees with its name".to_owned());
    }
    let mut previous: Option<&Member> = None;
    for chunk in &manifest.chunks {
        let members_bytes = chunk
            .members
            .iter()
            .fold(0u64, |sum, member| sum.saturating_add(member.bytes));
        let bounded = !chunk.members.is_empty()
            && chunk.members.len() <= MAX_CHUNK_MODELS
            && members_bytes <= chunk.bytes
            && (chunk.members.len() == 1 || chunk.bytes <= 2 * MAX_CHUNK_BYTES);
        if !is_sha256(&chunk.sha256) || !bounded {
            return Err("names a chunk without a hash, or out of bounds".to_owned());
        }
        for member in &chunk.members {
            if previous.is_some_and(|before| before.order() >= member.order()) {
                return Err("its models are out of order".to_owned());
            }
            layout::check_model(&member.model()).map_err(|err| format!("{err:?}"))?;
            previous = Some(member);
        }
    }
    Ok(manifest)
}

/// Parses and checks a chunk against what its manifest says it holds.
fn parse_chunk(chunk: &ChunkRef, data: &[u8]) -> Result<Vec<Partition>, Error> {
    let key = chunk_key(&chunk.sha256);
    let parsed: Chunk = serde_json::from_slice(data).map_err(|err| store::corrupt(&key, err))?;
    if parsed.format != FORMAT || parsed.slices.len() != chunk.members.len() {
        return Err(store::corrupt(&key, "not the chunk its manifest names"));
    }
    parsed
        .slices
        .into_iter()
        .zip(&chunk.members)
        .map(|(slice, member)| {
            if slice.version != member.version {
                return Err(store::corrupt(&key, "a slice at another version"));
            }
            slice.partition.checked(&key, DATA_AREA, &member.model())
        })
        .collect()
}

/// The manifests in the store, the one the store wrote last first.
fn manifests_newest_first() -> Result<Vec<ObjectMeta>, Error> {
    let mut manifests: Vec<ObjectMeta> = store::list_all(MANIFEST_PREFIX)?
        .into_iter()
        .filter(|meta| parse_manifest_key(&meta.key).is_some())
        .collect();
    manifests.sort_by(|a, b| (b.last_modified, &b.key).cmp(&(a.last_modified, &a.key)));
    Ok(manifests)
}

/// The newest manifest that verifies, and when the store wrote it; each
/// one passed over is said at debug.
fn newest_manifest() -> Option<(u64, Manifest)> {
    let manifests = match manifests_newest_first() {
        Ok(manifests) => manifests,
        Err(err) => {
            debug(&format!(
                "no index checkpoint: cannot list {MANIFEST_PREFIX} ({err:?})"
            ));
            return None;
        }
    };
    if manifests.is_empty() {
        debug("no index checkpoint yet: every partition is read");
    }
    manifests
        .into_iter()
        .take(TRIED_MANIFESTS)
        .find_map(|meta| {
            let read = match store::get(&meta.key) {
                Ok(Some(found)) => parse_manifest(&meta.key, &found.data),
                Ok(None) => Err("gone (deleted by gc)".to_owned()),
                Err(err) => Err(format!("cannot be read ({err:?})")),
            };
            match read {
                Ok(manifest) => Some((meta.last_modified, manifest)),
                Err(why) => {
                    debug(&format!("index checkpoint {} passed over: {why}", meta.key));
                    None
                }
            }
        })
}

/// Model → its chunk's index and version.
type ChunkOf = BTreeMap<(String, String), (usize, String)>;

/// A chunk's slices, by model.
type Slices = BTreeMap<(String, String), Partition>;

/// A checkpoint read for a pull: its manifest, and its chunks downloaded
/// into the cache, parsed one at a time as the pull reaches their models.
pub struct Loaded {
    /// When the store wrote it (its clock, ms since the epoch).
    pub written_ms: u64,
    /// The manifest.
    pub manifest: Manifest,
    chunk_of: ChunkOf,
    /// Each chunk's downloaded file; `None` once parsed or unusable.
    files: Vec<Option<String>>,
    /// Chunks found missing or corrupt.
    unusable: BTreeSet<usize>,
    /// The chunk parsed last: its index and slices.
    open: Option<(usize, Slices)>,
    /// This pull's download directory, in the cache.
    dir: String,
}

/// The newest checkpoint that verifies, its chunks downloaded (one request
/// to list the manifests, one to read the newest, one bulk download of its
/// chunks); `None` when there is none (each passed over is said at debug).
pub fn load_newest() -> Option<Loaded> {
    let (written_ms, manifest) = newest_manifest()?;
    Some(Loaded::download(written_ms, manifest))
}

/// Removes download directories killed pulls left (best effort).
fn sweep_download_dirs() {
    let Ok(entries) = std::fs::read_dir(layout::in_cache(DOWNLOAD_DIR)) else {
        return;
    };
    let now = std::time::SystemTime::now();
    for entry in entries.flatten() {
        let old = entry
            .metadata()
            .and_then(|meta| meta.modified())
            .is_ok_and(|at| {
                now.duration_since(at)
                    .is_ok_and(|age| age > DOWNLOAD_DIR_MAX_AGE)
            });
        if old {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

impl Loaded {
    /// Downloads every chunk `manifest` names at once, each checked against
    /// its hash by the host and its size against the manifest.
    fn download(written_ms: u64, manifest: Manifest) -> Self {
        sweep_download_dirs();
        let dir = format!("{DOWNLOAD_DIR}/{}", crate::clock::random_hex());
        let items: Vec<DownloadItem> = manifest
            .chunks
            .iter()
            .enumerate()
            .map(|(i, chunk)| DownloadItem {
                key: chunk_key(&chunk.sha256),
                cache_path: format!("{dir}/{i}.json"),
                expected_version: None,
                sha256: Some(chunk.sha256.clone()),
            })
            .collect();
        let mut unusable = BTreeSet::new();
        let mut files = Vec::with_capacity(items.len());
        let results = object_store::download(&items);
        for (i, (item, result)) in items.iter().zip(results).enumerate() {
            let why = match result {
                Ok(meta) if meta.size == manifest.chunks[i].bytes => None,
                Ok(meta) => Some(format!(
                    "{} bytes, not {}",
                    meta.size, manifest.chunks[i].bytes
                )),
                Err(err) => Some(format!("{err:?}")),
            };
            if let Some(why) = why {
                debug(&format!(
                    "index checkpoint chunk {} unusable ({why}): its models are read from their partitions",
                    item.key
                ));
                unusable.insert(i);
                files.push(None);
            } else {
                files.push(Some(item.cache_path.clone()));
            }
        }
        let chunk_of = manifest
            .chunks
            .iter()
            .enumerate()
            .flat_map(|(i, chunk)| {
                chunk.members.iter().map(move |member| {
                    (
                        (member.model_type.clone(), member.model_id.clone()),
                        (i, member.version.clone()),
                    )
                })
            })
            .collect();
        Self {
            written_ms,
            manifest,
            chunk_of,
            files,
            unusable,
            open: None,
            dir,
        }
    }

    /// Fills `sidecar` with `model`'s slice at `version` if the checkpoint
    /// holds it (each slice is served once); false when it does not, or its
    /// chunk is unusable (then read the partition).
    pub fn serve(&mut self, model: &ModelRef, version: &str, sidecar: &mut Sidecar) -> bool {
        let order = (model.model_type.clone(), model.model_id.clone());
        let Some((chunk, held)) = self.chunk_of.get(&order) else {
            return false;
        };
        if held != version {
            return false;
        }
        let chunk = *chunk;
        if self.open.as_ref().is_none_or(|(open, _)| *open != chunk) {
            self.open = self.parse(chunk).map(|slices| (chunk, slices));
        }
        let Some(partition) = self
            .open
            .as_mut()
            .and_then(|(_, slices)| slices.remove(&order))
        else {
            return false;
        };
        sidecar.partition = Some(partition);
        sidecar.store_version = Some(version.to_owned());
        true
    }

    /// Chunk `index`'s slices by model, its file removed; `None` (said at
    /// debug) when it cannot be had.
    fn parse(&mut self, index: usize) -> Option<Slices> {
        let path = self.files.get_mut(index)?.take()?;
        let chunk = &self.manifest.chunks[index];
        let data = cache_file::read_file(&path);
        let _ = std::fs::remove_file(layout::in_cache(&path));
        let parsed = data
            .map_err(|err| cache_file::io_error(&path, err))
            .and_then(|data| parse_chunk(chunk, &data));
        match parsed {
            Ok(partitions) => Some(
                partitions
                    .into_iter()
                    .map(|p| ((p.model_type.clone(), p.model_id.clone()), p))
                    .collect(),
            ),
            Err(err) => {
                debug(&format!(
                    "index checkpoint chunk {} unusable ({err:?}): its models are read from their partitions",
                    chunk_key(&chunk.sha256)
                ));
                self.unusable.insert(index);
                None
            }
        }
    }

    /// True when a chunk was found missing or corrupt.
    pub fn damaged(&self) -> bool {
        !self.unusable.is_empty()
    }

    /// The manifest, without the chunks found unusable: what a writer may
    /// reuse.
    pub fn reusable(&self) -> Manifest {
        Manifest {
            chunks: self
                .manifest
                .chunks
                .iter()
                .enumerate()
                .filter(|(i, _)| !self.unusable.contains(i))
                .map(|(_, chunk)| chunk.clone())
                .collect(),
            ..self.manifest.clone()
        }
    }
}

impl Drop for Loaded {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(layout::in_cache(&self.dir));
    }
}

/// True when a full check that read `reads` partitions from the store
/// should write a checkpoint, given the newest one's store time (asked of
/// `newest_written_ms` only then; `None` when there is none) and the
/// settings `checkpoint.write-after-reads` and
/// `checkpoint.write-every-minutes`.
///
/// # Errors
/// `invalid-input` for a setting out of its range.
pub fn due(
    reads: u64,
    newest_written_ms: impl FnOnce() -> Option<u64>,
    now_ms: u64,
) -> Result<bool, Error> {
    let after_reads = crate::settings::parsed("checkpoint.write-after-reads", 0..=1_000_000)?
        .unwrap_or(WRITE_AFTER_READS);
    let every_minutes = crate::settings::parsed("checkpoint.write-every-minutes", 0..=1440)?
        .unwrap_or(WRITE_EVERY_MINUTES);
    Ok(after_reads > 0
        && reads >= after_reads
        && newest_written_ms()
            .is_none_or(|written| now_ms.saturating_sub(written) >= every_minutes * 60_000))
}

/// A checkpoint written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    /// Its manifest's key.
    pub key: String,
    /// Its chunks.
    pub chunks: usize,
    /// The chunks uploaded (the others were reused).
    pub uploaded: usize,
    /// The bytes uploaded, manifest included.
    pub bytes: u64,
}

/// One model's entry in a chunk being built: its member and, once loaded,
/// its bytes.
struct Entry {
    member: Member,
    bytes: Option<Vec<u8>>,
}

/// A slice's entry in a chunk, from this cache's sidecar of `model`, if it
/// holds a slice at `version`.
fn entry_bytes(model: &ModelRef, version: &str) -> Option<Vec<u8>> {
    let sidecar = local::load(DATA_AREA, model);
    let partition = sidecar.partition?;
    (sidecar.store_version.as_deref() == Some(version)).then(|| {
        serde_json::to_vec(&Slice {
            version: version.to_owned(),
            partition,
        })
        .expect("a slice serializes")
    })
}

/// Writes a checkpoint of `listed` (every model a full check that began at
/// `as_of_ms` listed, in order, with its listed version) from this cache's
/// sidecars: a model whose sidecar is not at the listed version is left out
/// (a reader reads its partition). Chunks whose models and versions a chunk
/// of `previous` (else the newest manifest) has, and that are still in the
/// store, are reused; the others are uploaded, then the manifest.
///
/// # Errors
/// The store's failure (nothing a reader takes is left half written).
pub fn write(
    listed: &[(ModelRef, String)],
    as_of_ms: u64,
    previous: Option<Manifest>,
) -> Result<Written, Error> {
    let previous = previous.or_else(|| newest_manifest().map(|(_, manifest)| manifest));
    let in_store: BTreeSet<String> = store::list_all(CHUNK_PREFIX)?
        .into_iter()
        .map(|meta| meta.key)
        .collect();
    let reusable: Vec<&ChunkRef> = previous
        .iter()
        .flat_map(|manifest| manifest.chunks.iter())
        .filter(|chunk| in_store.contains(&chunk_key(&chunk.sha256)))
        .collect();
    let sizes: BTreeMap<(&str, &str, &str), u64> = reusable
        .iter()
        .flat_map(|chunk| chunk.members.iter())
        .map(|member| (member.identity(), member.bytes))
        .collect();
    let chunks_by_identity: BTreeMap<Vec<(&str, &str, &str)>, &ChunkRef> = reusable
        .iter()
        .map(|chunk| (chunk.identity(), *chunk))
        .collect();
    let dir = format!("{DOWNLOAD_DIR}/{}-write", crate::clock::random_hex());
    let mut builder = Builder {
        dir: &dir,
        chunks_by_identity: &chunks_by_identity,
        chunks: Vec::new(),
        uploads: Vec::new(),
    };
    let built = (|| {
        let mut cutter = Cutter::default();
        let mut run: Vec<Entry> = Vec::new();
        for (model, version) in listed {
            let known = sizes
                .get(&(
                    model.model_type.as_str(),
                    model.model_id.as_str(),
                    version.as_str(),
                ))
                .copied();
            let (bytes, loaded) = match known {
                Some(bytes) => (bytes, None),
                None => {
                    let Some(loaded) = entry_bytes(model, version) else {
                        continue;
                    };
                    (loaded.len() as u64, Some(loaded))
                }
            };
            let member = Member {
                model_type: model.model_type.clone(),
                model_id: model.model_id.clone(),
                version: version.clone(),
                bytes,
            };
            let cut = cutter.place(&member);
            if cut.before {
                builder.finish_run(std::mem::take(&mut run))?;
            }
            run.push(Entry {
                member,
                bytes: loaded,
            });
            if cut.after {
                builder.finish_run(std::mem::take(&mut run))?;
            }
        }
        builder.finish_run(run)
    })();
    let result = built.and_then(|()| builder.publish(as_of_ms));
    let _ = std::fs::remove_dir_all(layout::in_cache(&dir));
    result
}

/// A checkpoint's chunks as they are decided: reused, or written to the
/// cache to upload.
struct Builder<'a> {
    dir: &'a str,
    chunks_by_identity: &'a BTreeMap<Vec<(&'a str, &'a str, &'a str)>, &'a ChunkRef>,
    chunks: Vec<ChunkRef>,
    uploads: Vec<UploadItem>,
}

impl Builder<'_> {
    /// Reuses the chunk of a previous checkpoint that holds `run`, else
    /// writes one to the cache (entries not loaded yet are loaded now; one
    /// whose sidecar moved on meanwhile is left out).
    fn finish_run(&mut self, run: Vec<Entry>) -> Result<(), Error> {
        if run.is_empty() {
            return Ok(());
        }
        let identity: Vec<(&str, &str, &str)> =
            run.iter().map(|entry| entry.member.identity()).collect();
        if let Some(reused) = self.chunks_by_identity.get(&identity) {
            self.chunks.push((*reused).clone());
            return Ok(());
        }
        let mut members = Vec::with_capacity(run.len());
        let mut bytes = format!(r#"{{"format":{FORMAT},"slices":["#).into_bytes();
        for Entry {
            mut member,
            bytes: loaded,
        } in run
        {
            let Some(slice) = loaded.or_else(|| entry_bytes(&member.model(), &member.version))
            else {
                continue;
            };
            if !members.is_empty() {
                bytes.push(b',');
            }
            member.bytes = slice.len() as u64;
            bytes.extend_from_slice(&slice);
            members.push(member);
        }
        bytes.extend_from_slice(b"]}");
        if members.is_empty() {
            return Ok(());
        }
        let sha256 = sha256_hex(&bytes);
        let cache_path = format!("{}/{}.json", self.dir, self.chunks.len());
        std::fs::create_dir_all(layout::in_cache(self.dir))
            .and_then(|()| std::fs::write(layout::in_cache(&cache_path), &bytes))
            .map_err(|err| cache_file::io_error(&cache_path, err))?;
        self.uploads.push(UploadItem {
            cache_path,
            key: chunk_key(&sha256),
            mode: PutMode::Create,
        });
        self.chunks.push(ChunkRef {
            sha256,
            bytes: bytes.len() as u64,
            members,
        });
        Ok(())
    }

    /// Uploads the new chunks, then the manifest.
    fn publish(self, as_of_ms: u64) -> Result<Written, Error> {
        for (item, result) in self.uploads.iter().zip(object_store::upload(&self.uploads)) {
            match result {
                // The same name is the same bytes.
                Ok(_) | Err(StoreError::AlreadyExists) => {}
                Err(err) => return Err(store::error(&item.key, err)),
            }
        }
        let uploaded: u64 = self
            .chunks
            .iter()
            .filter(|chunk| {
                let key = chunk_key(&chunk.sha256);
                self.uploads.iter().any(|item| item.key == key)
            })
            .map(|chunk| chunk.bytes)
            .sum();
        let manifest = Manifest {
            format: FORMAT,
            as_of_ms,
            chunks: self.chunks,
        };
        let bytes = serde_json::to_vec(&manifest).expect("a manifest serializes");
        let key = manifest_key(as_of_ms, &sha256_hex(&bytes));
        match object_store::put(&key, &bytes, &PutMode::Create) {
            Ok(_) | Err(StoreError::AlreadyExists) => {}
            Err(err) => return Err(store::error(&key, err)),
        }
        Ok(Written {
            key,
            chunks: manifest.chunks.len(),
            uploaded: self.uploads.len(),
            bytes: uploaded + bytes.len() as u64,
        })
    }
}

/// The store time of the newest manifest, for [`due`] (`None`: none).
pub fn newest_written_ms() -> Option<u64> {
    manifests_newest_first()
        .ok()?
        .first()
        .map(|meta| meta.last_modified)
}

/// What [`prune`] deleted.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Pruned {
    /// Objects deleted.
    pub objects: u64,
    /// Their bytes.
    pub bytes: u64,
}

/// Deletes the manifests beyond the newest [`KEEP_MANIFESTS`] and the
/// chunks no kept manifest names, each only once `min_age_ms` old by the
/// store's clock compared with `now_ms`. A manifest that does not verify
/// keeps no chunk alive.
///
/// # Errors
/// The store's failure on a listing; a failed delete is left for the next
/// time.
pub fn prune(now_ms: u64, min_age_ms: u64) -> Result<Pruned, Error> {
    let old = |last_modified: u64| now_ms.saturating_sub(last_modified) >= min_age_ms;
    let mut pruned = Pruned::default();
    let mut named = BTreeSet::new();
    for (i, meta) in manifests_newest_first()?.into_iter().enumerate() {
        if i < KEEP_MANIFESTS || !old(meta.last_modified) {
            let manifest = store::get(&meta.key)?
                .and_then(|found| parse_manifest(&meta.key, &found.data).ok());
            named.extend(
                manifest
                    .into_iter()
                    .flat_map(|m| m.chunks)
                    .map(|c| c.sha256),
            );
        } else if store::delete(&meta.key).is_ok() {
            pruned.objects += 1;
            pruned.bytes += meta.size;
        }
    }
    for meta in store::list_all(CHUNK_PREFIX)? {
        let sha = meta
            .key
            .strip_prefix(CHUNK_PREFIX)
            .and_then(|rest| rest.strip_suffix(".json"));
        if sha.is_some_and(|sha| named.contains(sha)) || !old(meta.last_modified) {
            continue;
        }
        if store::delete(&meta.key).is_ok() {
            pruned.objects += 1;
            pruned.bytes += meta.size;
        }
    }
    Ok(pruned)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn members(n: usize, version: &str) -> Vec<Member> {
        (0..n)
            .map(|i| Member {
                model_type: "vision/detector".to_owned(),
                model_id: format!("m-{i:05}"),
                version: version.to_owned(),
                bytes: 25_000,
            })
            .collect()
    }

    #[test]
    fn runs_end_where_the_hashes_say_so_a_change_touches_one_chunk() {
        let all = members(8192, "v1");
        let runs = cut(all.clone());
        assert_eq!(runs.concat(), all, "every model once, in order");
        // About 256 a run (8,192 models in 16 to 64 runs), none above the
        // bounds.
        assert!((16..=64).contains(&runs.len()), "{} runs", runs.len());
        assert!(runs.iter().all(|run| run.len() <= MAX_CHUNK_MODELS));
        let bytes = |run: &Vec<Member>| run.iter().map(|m| m.bytes).sum::<u64>();
        assert!(runs.iter().all(|run| bytes(run) < MAX_CHUNK_BYTES + 25_000));
        // One model changed: only its run differs.
        let mut changed = all.clone();
        changed[4000].version = "v2".to_owned();
        let after = cut(changed);
        let differ = runs.iter().zip(&after).filter(|(a, b)| a != b).count();
        assert_eq!((after.len(), differ), (runs.len(), 1));
        // One model added: its run and no other.
        let mut added = all.clone();
        let mut new = all[4000].clone();
        new.model_id = "m-04000a".to_owned();
        added.insert(4001, new);
        let after = cut(added);
        let kept = after.iter().filter(|run| runs.contains(run)).count();
        assert_eq!(kept, runs.len() - 1, "{kept} of {} runs kept", runs.len());
        // Large slices: runs end by size, and a slice larger than a chunk
        // is a chunk alone.
        let mut large = members(100, "v1");
        large.iter_mut().for_each(|m| m.bytes = 1 << 20);
        large[50].bytes = 12 << 20;
        let runs = cut(large);
        assert!(runs.iter().all(|run| run.len() <= 8));
        assert!(
            runs.iter()
                .all(|run| run.len() == 1 || bytes(run) <= MAX_CHUNK_BYTES)
        );
        assert!(
            runs.iter()
                .any(|run| run.len() == 1 && run[0].bytes == 12 << 20)
        );
    }

    fn manifest_of(runs: Vec<Vec<Member>>) -> (String, Vec<u8>) {
        let manifest = Manifest {
            format: FORMAT,
            as_of_ms: 1_767_225_600_000,
            chunks: runs
                .into_iter()
                .map(|members| ChunkRef {
                    sha256: "a".repeat(64),
                    bytes: members.iter().map(|member| member.bytes + 1).sum(),
                    members,
                })
                .collect(),
        };
        let bytes = serde_json::to_vec(&manifest).unwrap();
        (manifest_key(manifest.as_of_ms, &sha256_hex(&bytes)), bytes)
    }

    #[test]
    fn a_manifest_is_taken_only_whole_in_order_and_within_bounds() {
        let (key, bytes) = manifest_of(cut(members(600, "v1")));
        assert_eq!(parse_manifest(&key, &bytes).unwrap().members().count(), 600);
        // Truncated, or a byte changed: its name no longer matches.
        assert!(parse_manifest(&key, &bytes[..bytes.len() - 1]).is_err());
        let mut flipped = bytes.clone();
        flipped[10] ^= 1;
        assert!(parse_manifest(&key, &flipped).is_err());
        // Models out of order, or twice.
        let mut runs = cut(members(600, "v1"));
        runs.swap(0, 1);
        let (key, bytes) = manifest_of(runs);
        assert!(parse_manifest(&key, &bytes).unwrap_err().contains("order"));
        let twice = vec![members(2, "v1"), members(1, "v1")];
        let (key, bytes) = manifest_of(twice);
        assert!(parse_manifest(&key, &bytes).is_err());
        // A chunk above the bounds.
        let (key, bytes) = manifest_of(vec![members(MAX_CHUNK_MODELS + 1, "v1")]);
        assert!(parse_manifest(&key, &bytes).unwrap_err().contains("bounds"));
        // Another format is passed over.
        let (key, bytes) = manifest_of(cut(members(3, "v1")));
        let text = String::from_utf8(bytes)
            .unwrap()
            .replace(&format!("\"format\":{FORMAT}"), "\"format\":1");
        let key = manifest_key(
            parse_manifest_key(&key).unwrap().0,
            &sha256_hex(text.as_bytes()),
        );
        assert!(
            parse_manifest(&key, text.as_bytes())
                .unwrap_err()
                .contains("format 1")
        );
    }

    #[test]
    fn a_chunk_is_taken_only_as_its_manifest_names_it() {
        let run = members(3, "v1");
        let slices: Vec<String> = run
            .iter()
            .map(|member| {
                serde_json::to_string(&Slice {
                    version: member.version.clone(),
                    partition: Partition::empty(DATA_AREA, &member.model()),
                })
                .unwrap()
            })
            .collect();
        let bytes =
            format!(r#"{{"format":{FORMAT},"slices":[{}]}}"#, slices.join(",")).into_bytes();
        let chunk = ChunkRef {
            sha256: sha256_hex(&bytes),
            bytes: bytes.len() as u64,
            members: run.clone(),
        };
        assert_eq!(parse_chunk(&chunk, &bytes).unwrap().len(), 3);
        // Another version, another model, a slice missing.
        let mut other = chunk.clone();
        other.members[1].version = "v2".to_owned();
        assert!(parse_chunk(&other, &bytes).is_err());
        other.members[1] = members(4, "v1")[3].clone();
        assert!(parse_chunk(&other, &bytes).is_err());
        other.members = run[..2].to_vec();
        assert!(parse_chunk(&other, &bytes).is_err());
    }
}
