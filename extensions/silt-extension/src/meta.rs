//! `_meta/datastore.json`: the index kind, layout version and retention
//! every writer shares. Written by `setup`; read once per operation that commits.
//!
//! ```no_run,standalone_crate
//! use silt_extension::meta;
//! # fn main() -> Result<(), silt_extension::silt::datastore::types::Error> {
//! // In a commit: how many versions of each file to keep.
//! let retain = meta::read("partitioned")?.retain_versions;
//! # let _ = retain;
//! # Ok(()) }
//! ```

use serde::{Deserialize, Serialize};

use crate::layout::META_KEY;
use crate::silt::datastore::object_store::PutMode;
use crate::silt::datastore::types::Error;
use crate::store::{self, Written};

/// The layout versions live with the key layout they describe.
pub use crate::layout::{LAYOUT_VERSION, LAYOUT_WITHOUT_JOURNAL};
/// Versions kept per name in a new datastore.
///
/// ```no_run,standalone_crate
/// use silt_extension::meta::{self, DEFAULT_RETAIN_VERSIONS};
/// # fn main() -> Result<(), silt_extension::silt::datastore::types::Error> {
/// let (meta, created) = meta::setup("partitioned", true, true, None)?;
/// if created {
///     assert_eq!(meta.retain_versions, DEFAULT_RETAIN_VERSIONS);
/// }
/// # Ok(()) }
/// ```
pub const DEFAULT_RETAIN_VERSIONS: u32 = 10;

/// The datastore's metadata.
///
/// ```no_run,standalone_crate
/// use silt_extension::meta::Meta;
///
/// fn describe(meta: &Meta) -> String {
///     format!(
///         "{} index, layout {}; keeps the last {} versions of each file",
///         meta.index, meta.layout, meta.retain_versions
///     )
/// }
/// ```
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Meta {
    /// Layout version.
    pub layout: u32,
    /// The index kind ([`crate::Index::KIND`]); datastores made before the
    /// field existed are partitioned.
    #[serde(default = "partitioned")]
    pub index: String,
    /// Versions kept per file name.
    pub retain_versions: u32,
    /// When the datastore was created.
    pub created_at: u64,
    /// Unique per write (for `put-owned`).
    pub nonce: String,
}

impl Meta {
    /// True when every commit to this datastore is announced in the change
    /// journal ([`crate::journal`]).
    ///
    /// ```no_run,standalone_crate
    /// # fn main() -> Result<(), silt_extension::silt::datastore::types::Error> {
    /// let journaled = silt_extension::meta::read("partitioned")?.journal();
    /// # let _ = journaled;
    /// # Ok(()) }
    /// ```
    pub fn journal(&self) -> bool {
        self.layout >= LAYOUT_VERSION
    }
}

fn partitioned() -> String {
    "partitioned".to_owned()
}

thread_local! {
    /// The metadata as this call read or wrote it (each call runs in a
    /// fresh instance): read once per call however many models it commits.
    static READ: std::cell::RefCell<Option<Meta>> = const { std::cell::RefCell::new(None) };
}

/// Reads the metadata of a datastore of index kind `kind`; `not-found` with what to do when the datastore was
/// never set up.
///
/// Read once per call (each call runs in a fresh instance) and remembered,
/// however many models the call commits.
///
/// # Errors
/// `not-found` when the datastore was never set up; `not-supported` for
/// another layout or another index kind (the message says what to do);
/// `corrupt` when the object does not parse.
///
/// ```no_run,standalone_crate
/// use silt_extension::change::Change;
/// use silt_extension::silt::datastore::types::{Error, Lease, ModelRef};
/// use silt_extension::{Index, meta};
///
/// fn commit<I: Index>(model: &ModelRef, lease: &Lease, changes: &[Change]) -> Result<(), Error> {
///     let retain = meta::read(I::KIND)?.retain_versions;
///     // ... apply `changes`, keeping `retain` versions of each name
/// #   let _ = (model, lease, changes, retain);
///     Ok(())
/// }
/// ```
pub fn read(kind: &str) -> Result<Meta, Error> {
    if let Some(meta) = READ.with_borrow(Clone::clone) {
        return Ok(meta);
    }
    match read_versioned(kind)? {
        Some((meta, _)) => {
            READ.with_borrow_mut(|memo| *memo = Some(meta.clone()));
            Ok(meta)
        }
        None => Err(Error::NotFound(format!(
            "no datastore at this root ({META_KEY} is missing): run `silt datastore setup`"
        ))),
    }
}

/// Where [`read_cached`] keeps the metadata, under the cache's state directory.
const CACHED_PATH: &str = "meta.json";

/// The metadata as last read in this cache, else [`read`] from the store
/// (and kept): what a commit that must cost no request beyond its own
/// writes reads (an unleased `put-file`).
///
/// The layout and the index kind never change once a datastore is set
/// up, so they are as good as fresh. The retention may have changed since
/// (`setup --retain-versions`): read the metadata from the store before
/// letting any version go by it.
///
/// # Errors
/// As [`read`] when nothing is cached.
///
/// ```no_run,standalone_crate
/// use silt_extension::meta;
/// # fn main() -> Result<(), silt_extension::silt::datastore::types::Error> {
/// let journaled = meta::read_cached("partitioned")?.journal();
/// # let _ = journaled;
/// # Ok(()) }
/// ```
pub fn read_cached(kind: &str) -> Result<Meta, Error> {
    if let Some(meta) = READ.with_borrow(Clone::clone) {
        return Ok(meta);
    }
    let path = format!("{}/{CACHED_PATH}", crate::layout::CACHE_STATE_DIR);
    let cached = crate::cache_file::read_file(&path)
        .ok()
        .and_then(|bytes| serde_json::from_slice::<Meta>(&bytes).ok())
        .filter(|meta| meta.index == kind && meta.retain_versions > 0);
    if let Some(meta) = cached {
        return Ok(meta);
    }
    refresh_cached(kind)
}

/// [`read`]s the metadata from the store (once per call) and keeps it for
/// [`read_cached`]: before letting versions go by a cached retention.
///
/// # Errors
/// As [`read`].
///
/// ```no_run,standalone_crate
/// use silt_extension::meta;
/// # fn main() -> Result<(), silt_extension::silt::datastore::types::Error> {
/// let retain = meta::refresh_cached("partitioned")?.retain_versions;
/// # let _ = retain;
/// # Ok(()) }
/// ```
pub fn refresh_cached(kind: &str) -> Result<Meta, Error> {
    let meta = read(kind)?;
    let bytes = serde_json::to_vec(&meta).expect("metadata serializes");
    // A cache: a failed write costs a read next time.
    let path = format!("{}/{CACHED_PATH}", crate::layout::CACHE_STATE_DIR);
    let _ = crate::cache_file::write_atomic_unsynced(&path, &bytes);
    Ok(meta)
}

/// Whether the datastore of index kind `kind` announces its commits in the
/// journal: `false` also when it was never set up (nothing to announce).
///
/// # Errors
/// As [`read`], except for a datastore that was never set up.
///
/// ```no_run,standalone_crate
/// # fn main() -> Result<(), silt_extension::silt::datastore::types::Error> {
/// if silt_extension::meta::journaled("partitioned")? {
///     // a pull of everything may read the journal instead of every partition
/// }
/// # Ok(()) }
/// ```
pub fn journaled(kind: &str) -> Result<bool, Error> {
    match read(kind) {
        Ok(meta) => Ok(meta.journal()),
        Err(Error::NotFound(_)) => Ok(false),
        Err(err) => Err(err),
    }
}

fn read_versioned(kind: &str) -> Result<Option<(Meta, String)>, Error> {
    let Some(found) = store::get(META_KEY)? else {
        return Ok(None);
    };
    let meta: Meta =
        serde_json::from_slice(&found.data).map_err(|err| store::corrupt(META_KEY, err))?;
    if !(LAYOUT_WITHOUT_JOURNAL..=LAYOUT_VERSION).contains(&meta.layout) {
        return Err(Error::NotSupported(format!(
            "{META_KEY}: layout {} (this extension reads layouts {LAYOUT_WITHOUT_JOURNAL} to {LAYOUT_VERSION}); use a silt and extension that match the datastore",
            meta.layout
        )));
    }
    if meta.index != kind {
        return Err(Error::NotSupported(format!(
            "{META_KEY}: this datastore's index is of kind `{}` and this build of the extension reads kind `{kind}` \
             (a build that changed the layout, or another extension). Install the build of the extension that reads it \
             (`silt extension add`; silt.lock pins one), or point silt.toml at another store or namespace",
            meta.index
        )));
    }
    if meta.retain_versions == 0 {
        return Err(store::corrupt(META_KEY, "retain_versions is 0"));
    }
    Ok(Some((meta, found.version)))
}

/// Creates the metadata if asked and missing, and updates the retention if
/// asked. Returns the metadata in force and whether this call created it.
/// A new datastore gets [`LAYOUT_VERSION`] when `journal` (the index
/// announces every commit, [`crate::Index::JOURNAL`]), else
/// [`LAYOUT_WITHOUT_JOURNAL`]; an existing one keeps its layout.
///
/// [`crate::sync`] answers `sync.setup` with it; an index kind with objects
/// of its own to create at setup calls it first:
///
/// ```no_run,standalone_crate
/// use silt_extension::meta;
/// use silt_extension::silt::datastore::types::Error;
///
/// fn setup(create: bool, retain_versions: Option<u32>) -> Result<String, Error> {
///     // `false`: this index does not announce its commits in the journal.
///     let (meta, created) = meta::setup("my-index", false, create, retain_versions)?;
///     Ok(match created {
///         true => format!("created; keeps {} versions", meta.retain_versions),
///         false => format!("already set up; keeps {} versions", meta.retain_versions),
///     })
/// }
/// ```
///
/// # Errors
/// `invalid-input` for a retention of 0; as [`read`] when the metadata is
/// missing (and `create` is false) or not this kind's; `precondition-failed`
/// when others kept changing it.
pub fn setup(
    kind: &str,
    journal: bool,
    create: bool,
    retain_versions: Option<u32>,
) -> Result<(Meta, bool), Error> {
    if retain_versions == Some(0) {
        return Err(Error::InvalidInput(
            "retain-versions must be at least 1".to_owned(),
        ));
    }
    for attempt in 0..8 {
        let (mode, mut meta, created) = match read_versioned(kind)? {
            Some((meta, version)) => {
                if retain_versions.is_none_or(|keep| keep == meta.retain_versions) {
                    return Ok((meta, false));
                }
                (PutMode::Update(version), meta, false)
            }
            None if create => (
                PutMode::Create,
                Meta {
                    layout: if journal {
                        LAYOUT_VERSION
                    } else {
                        LAYOUT_WITHOUT_JOURNAL
                    },
                    index: kind.to_owned(),
                    retain_versions: DEFAULT_RETAIN_VERSIONS,
                    created_at: crate::clock::now_ms(),
                    nonce: String::new(),
                },
                true,
            ),
            None => return read(kind).map(|meta| (meta, false)),
        };
        if let Some(keep) = retain_versions {
            meta.retain_versions = keep;
        }
        meta.nonce = crate::clock::random_hex();
        let body = serde_json::to_vec_pretty(&meta).expect("metadata serializes");
        match store::put_owned(META_KEY, &body, &mode, &meta.nonce)? {
            Written::Landed(_) => {
                READ.with_borrow_mut(|memo| *memo = Some(meta.clone()));
                return Ok((meta, created));
            }
            // Another setup raced us: read what it wrote and decide again.
            Written::Lost => crate::clock::backoff(attempt),
        }
    }
    Err(Error::PreconditionFailed(format!(
        "{META_KEY}: changed by others on every attempt; try again"
    )))
}
