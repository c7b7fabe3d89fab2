//! silt-extension: the SDK for silt datastore extensions.
//!
//! A datastore extension decides two things: how the index is stored and
//! committed, and how leases work. Everything else is the same for all of
//! them and lives here:
//!
//! - the generated bindings of `silt:datastore` ([`exports`], [`silt`],
//!   [`export!`]), so an extension needs no `wit_bindgen` of its own;
//! - [`metadata!`]: the `silt-extension` custom section silt reads without
//!   compiling the component;
//! - the plumbing every datastore needs: key layout ([`layout`]), lock
//!   objects ([`lock_object`]) and the lease protocol on them ([`lease`]:
//!   create or take over one generation up, renew, release, confirm before
//!   a commit), owner
//!   tokens and conditional writes that know when they won
//!   ([`store::put_owned`], [`clock::random_hex`]), retries after a lost
//!   compare-and-swap ([`clock::backoff`]);
//! - the working copy under `/cache/data/` with a sidecar per model
//!   ([`local`]), hydration ([`hydrate`]), sync ([`sync`]), the `models`
//!   interface ([`models`]) and the datastore's metadata ([`meta`]).
//!
//! An extension implements [`Index`] (read a model's slice of the index,
//! list what the store has, commit changes to one model) plus the `locks`
//! and `capabilities` interfaces, and exports itself — policy, not
//! plumbing (`capabilities` comes with [`metadata!`]):
//!
//! ```no_run,standalone_crate
//! use silt_extension::change::{Change, Committed};
//! use silt_extension::exports::silt::datastore::locks;
//! use silt_extension::layout::DATA_AREA;
//! use silt_extension::silt::datastore::types::{Error, Lease, LockInfo, LockScope, ModelRef};
//! use silt_extension::lock_object::{HolderBody, ScopeBody};
//! use silt_extension::{Fresh, Index, Listed, index_io, layout, lease, lock_object};
//!
//! struct Mine;
//!
//! // The metadata silt reads without compiling the component, and `describe`.
//! silt_extension::metadata! {
//!     extension: Mine,
//!     description: "My datastore",
//!     capabilities: ["scoped-sync", "model-locks"],
//! }
//!
//! impl Index for Mine {
//!     const KIND: &'static str = "mine";
//!
//!     fn read_if_changed(model: &ModelRef, known: Option<&str>) -> Result<Fresh, Error> {
//!         let key = format!("_mine/{}/{}.json", model.model_type, model.model_id);
//!         index_io::read_object(&key, DATA_AREA, model, known)
//!     }
//!
//!     fn list() -> Result<Listed, Error> {
//!         // One LIST of `_mine/` (see `Index` for the whole of it).
//! #       Ok(Listed::new())
//!     }
//!
//!     fn commit(model: &ModelRef, lease: &Lease, changes: &[Change]) -> Result<Committed, Error> {
//!         // Read, `change::apply`, write back by compare-and-swap (see `Index`).
//! #       let _ = (model, lease, changes);
//! #       todo!()
//!     }
//! }
//!
//! /// Raises the model slice's fence to `generation` by compare-and-swap
//! /// (the template's `leases.rs` has the whole of it).
//! fn raise_fence(model: &ModelRef, generation: u64, token: &str) -> Result<(), Error> {
//! #   let _ = (model, generation, token);
//! #   todo!()
//! }
//!
//! impl locks::Guest for Mine {
//!     // The protocol is the SDK's; the policy (where generations start,
//!     // what fences a commit, how model and namespace leases exclude each
//!     // other) is yours.
//!     fn acquire(scope: LockScope, options: locks::AcquireOptions) -> Result<Lease, Error> {
//!         lock_object::check_ttl(options.ttl_ms)?;
//!         let LockScope::Model(model) = &scope else {
//!             return Err(Error::NotSupported("namespace leases".into()));
//!         };
//!         let key = layout::lock_key(&scope)?;
//!         let holder = HolderBody::from_wit(&options.holder);
//!         let mut body = lease::new_body(ScopeBody::from_wit(&scope), &holder, options.ttl_ms);
//!         // Generations start above the slice's fence: a stale holder may
//!         // have stopped before raising it to its own.
//!         let fence = Mine::read(model)?.partition.fence;
//!         let version = match lease::create_or_take_over(&key, &mut body, fence)? {
//!             Ok(version) => version,
//!             Err(live) => return Err(lock_object::held(&live)),
//!         };
//!         // The fence, raised before the lease is handed out, is what stops
//!         // a holder this lease took over from: its commit compares and
//!         // swaps the slice, which the raise changed, and its retry finds
//!         // the slice fenced above it (`Index::commit`). The lock object
//!         // alone cannot: a holder paused after looking at it wakes later.
//!         if let Err(err) = raise_fence(model, body.generation, &body.token) {
//!             silt_extension::store::delete_if(&key, &version)?;
//!             return Err(err);
//!         }
//!         Ok(body.lease(version))
//!     }
//!     fn renew(lease: Lease) -> Result<Lease, Error> {
//!         lease::renew(&lease)
//!     }
//!     fn release(lease: Lease) -> Result<(), Error> {
//!         lease::release(&lease)
//!     }
//!     fn inspect(scope: LockScope) -> Result<Option<LockInfo>, Error> {
//!         lock_object::inspect(&scope)
//!     }
//!     fn list() -> Result<Vec<LockInfo>, Error> {
//!         lock_object::list_all()
//!     }
//!     fn force_release(expected: LockInfo) -> Result<(), Error> {
//!         lock_object::force_release(&expected)
//!     }
//! }
//!
//! // `models`, `hydration` and `sync` come with `Index`.
//! silt_extension::export!(Mine);
//! # fn main() {}
//! ```
//!
//! The full example is the datastore `silt extension new` makes (silt's own
//! `partitioned-datastore`): its `src/index.rs` (the `Index`),
//! `src/commit.rs` (commits fenced by the lease) and `src/leases.rs` (the
//! `locks` policy, raising the fence) beside this SDK.
//!
//! The cache directory (`/cache`) holds the working copy at
//! `data/<type>/<id>/<name>` and, under `.silt/`, a sidecar per model (its
//! slice of the index as last seen, and stamps of the files present locally).
//!
//! The examples in these docs are compiled for `wasm32-wasip2` but never
//! run: they call silt's host, which only silt itself provides.

// Doc examples are ```no_run,standalone_crate, and compiled by
//
//   cargo test --doc --release --target wasm32-wasip2 --config 'target.wasm32-wasip2.runner="true"'
//
// `no_run`: nothing here can run them (they import silt's host interfaces).
// `standalone_crate`: the 2024 edition otherwise merges doctests into one
// binary that rustdoc must run. One merged doctest remains: wit-bindgen's
// own example on the generated export macro, which we cannot mark; with
// `true` as the runner it is compiled but not executed (rustdoc would
// otherwise exec the .wasm and fail). An example added without
// `no_run,standalone_crate` would likewise be compiled but never run.

#[cfg(all(feature = "contract-0-6", feature = "contract-0-7-0"))]
compile_error!(
    "features `contract-0-6` and `contract-0-7-0` each pick the contract to build for: enable one"
);

#[cfg(not(any(feature = "contract-0-6", feature = "contract-0-7-0")))]
wit_bindgen::generate!({
    path: "../../wit",
    world: "silt:datastore/datastore-extension",
    pub_export_macro: true,
    default_bindings_module: "silt_extension",
});

// The first patch of this version (feature `contract-0-7-0`): the same
// interfaces but for what 0.7.1 to 0.7.3 added to `object-store`
// (`download-landed`, `upload-hashed`, `deliver`).
#[cfg(all(feature = "contract-0-7-0", not(feature = "contract-0-6")))]
wit_bindgen::generate!({
    path: "../../wit/since_v0_7_0",
    world: "silt:datastore/datastore-extension",
    pub_export_macro: true,
    default_bindings_module: "silt_extension",
});

// The previous contract (feature `contract-0-6`): the same interfaces but
// for the `config` import.
#[cfg(feature = "contract-0-6")]
wit_bindgen::generate!({
    path: "../../wit/since_v0_6",
    world: "silt:datastore/datastore-extension",
    pub_export_macro: true,
    default_bindings_module: "silt_extension",
});

/// The WIT package this SDK's bindings were generated from; a silt host
/// runs extensions of its own minor version (earlier patches included) and
/// of the minor version before it.
///
/// ```no_run,standalone_crate
/// // Say which contract the extension speaks, e.g. in `sync.setup`'s detail.
/// let detail = format!("my-index, built for {}", silt_extension::API);
/// assert!(silt_extension::API.starts_with("silt:datastore@"));
/// ```
pub const API: &str = __api!();

/// The contract's package and version as a literal, for [`API`] and
/// [`metadata!`] alike (`concat!` takes literals, not constants).
#[cfg(not(any(feature = "contract-0-6", feature = "contract-0-7-0")))]
#[doc(hidden)]
#[macro_export]
macro_rules! __api {
    () => {
        "silt:datastore@0.7.4"
    };
}

/// The contract's package and version as a literal (feature `contract-0-7-0`).
#[cfg(all(feature = "contract-0-7-0", not(feature = "contract-0-6")))]
#[doc(hidden)]
#[macro_export]
macro_rules! __api {
    () => {
        "silt:datastore@0.7.0"
    };
}

/// The contract's package and version as a literal (feature `contract-0-6`).
#[cfg(feature = "contract-0-6")]
#[doc(hidden)]
#[macro_export]
macro_rules! __api {
    () => {
        "silt:datastore@0.6.0"
    };
}

/// Embeds the extension's metadata in the `silt-extension` custom section,
/// where silt reads it without compiling the component (`silt extension
/// add`, `list`, `inspect`). Name and version come from `Cargo.toml`; the
/// API version from this SDK ([`API`]). Declare a capability only if
/// `silt extension test` passes its checks.
///
/// With `extension: Type` first, it also implements `capabilities::Guest`
/// for `Type`: `describe()` answers the same name, version and
/// capabilities ([`features_of`]), so they are declared once and the two
/// cannot disagree (silt refuses an extension whose `describe` differs
/// from its metadata).
///
/// Strings are written into TOML as they are: no `"` or `\` in them.
///
/// Once per extension, at the top level of its crate:
///
/// ```no_run,standalone_crate
/// pub struct Mine;
///
/// silt_extension::metadata! {
///     extension: Mine,
///     description: "One index partition per model, leases with fencing",
///     capabilities: ["scoped-sync", "partitioned-index", "model-locks"],
/// }
/// # fn main() {}
/// ```
///
/// `layout` (optional, before `capabilities`) names the datastore layout the
/// extension reads and writes, e.g. `"my-store/1"`. silt records it when a
/// datastore is set up and refuses a build declaring another layout on that
/// datastore, instead of letting it read "no files". Change it whenever a
/// build can no longer read what the previous one wrote.
#[macro_export]
macro_rules! metadata {
    (
        extension: $extension:ty,
        description: $description:literal,
        $(layout: $layout:literal,)?
        capabilities: [$($capability:literal),* $(,)?] $(,)?
    ) => {
        $crate::metadata! { @emit $description, [$($capability),*], $($layout)? }
        impl $crate::exports::silt::datastore::capabilities::Guest for $extension {
            fn describe() -> $crate::exports::silt::datastore::capabilities::Description {
                // Evaluated at compile time: an unknown capability fails the build.
                const FEATURES: $crate::exports::silt::datastore::capabilities::Features =
                    $crate::features_of(&[$($capability),*]);
                $crate::exports::silt::datastore::capabilities::Description {
                    name: env!("CARGO_PKG_NAME").to_owned(),
                    version: env!("CARGO_PKG_VERSION").to_owned(),
                    features: FEATURES,
                }
            }
        }
    };
    (
        description: $description:literal,
        $(layout: $layout:literal,)?
        capabilities: [$($capability:literal),* $(,)?] $(,)?
    ) => {
        $crate::metadata! { @emit $description, [$($capability),*], $($layout)? }
    };
    (@emit $description:literal, [$($capability:literal),*], $($layout:literal)?) => {
        const _: () = {
            const TEXT: &str = concat!(
                "api = \"", $crate::__api!(), "\"\n",
                "name = \"", env!("CARGO_PKG_NAME"), "\"\n",
                "version = \"", env!("CARGO_PKG_VERSION"), "\"\n",
                "description = \"", $description, "\"\n",
                "capabilities = [", $("\"", $capability, "\", ",)* "]\n",
                $("layout = \"", $layout, "\"\n",)?
            );
            #[unsafe(link_section = "silt-extension")]
            #[used]
            static METADATA: [u8; TEXT.len()] = {
                let bytes = TEXT.as_bytes();
                let mut out = [0u8; TEXT.len()];
                let mut i = 0;
                while i < bytes.len() {
                    out[i] = bytes[i];
                    i += 1;
                }
                out
            };
        };
    };
}

/// The `describe()` features of the capabilities named as in
/// [`metadata!`] (the contract's flag names, e.g. `"model-locks"`). A
/// `const fn`: in a constant, an unknown name fails the build.
///
/// ```no_run,standalone_crate
/// use silt_extension::exports::silt::datastore::capabilities::Features;
///
/// const FEATURES: Features = silt_extension::features_of(&["scoped-sync", "gc"]);
/// assert_eq!(FEATURES, Features::SCOPED_SYNC | Features::GC);
/// ```
pub const fn features_of(
    capabilities: &[&str],
) -> exports::silt::datastore::capabilities::Features {
    use exports::silt::datastore::capabilities::Features;
    const NAMED: [(&str, Features); 8] = [
        ("scoped-sync", Features::SCOPED_SYNC),
        ("partitioned-index", Features::PARTITIONED_INDEX),
        ("model-locks", Features::MODEL_LOCKS),
        ("namespace-locks", Features::NAMESPACE_LOCKS),
        ("lazy-hydration", Features::LAZY_HYDRATION),
        ("background-hydration", Features::BACKGROUND_HYDRATION),
        ("gc", Features::GC),
        ("lease-free-commits", Features::LEASE_FREE_COMMITS),
    ];
    let mut features = Features::empty();
    let mut i = 0;
    while i < capabilities.len() {
        let mut n = 0;
        loop {
            if n == NAMED.len() {
                panic!(
                    "metadata!: an unknown capability (see the `features` flags of the contract)"
                );
            }
            if same_text(NAMED[n].0, capabilities[i]) {
                features = features.union(NAMED[n].1);
                break;
            }
            n += 1;
        }
        i += 1;
    }
    features
}

/// `a == b`, in a `const fn`.
const fn same_text(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

pub mod cache_file;
pub mod change;
pub mod checkpoint;
pub mod clock;
pub mod corrupt_models;
#[cfg(test)]
mod fixtures;
pub mod hydrate;
pub mod index_io;
pub mod journal;
pub mod layout;
pub mod lease;
pub mod leased_slice;
pub mod local;
pub mod lock_object;
pub mod meta;
pub mod models;
pub mod orphans;
pub mod partition;
mod plan;
pub mod set_aside;
pub mod settings;
pub mod store;
pub mod summary;
pub mod sync;
pub mod unleased;
mod wasi_direct;
mod wasi_file;
mod wasi_stat;
pub mod written_here;

use std::collections::BTreeMap;

use change::{Change, Committed};
use partition::Versioned;
use silt::datastore::types::{Error, Holder, Lease, ModelRef};

/// Models in the store by (type, id): the model and its slice's store version.
///
/// ```no_run,standalone_crate
/// use silt_extension::{Index, Listed};
/// use silt_extension::silt::datastore::types::Error;
///
/// /// `type/id@version` of every model the store has, in order.
/// fn models<I: Index>() -> Result<Vec<String>, Error> {
///     let listed: Listed = I::list()?;
///     Ok(listed.values().map(|(model, version)| {
///         format!("{}/{}@{version}", model.model_type, model.model_id)
///     }).collect())
/// }
/// ```
pub type Listed = BTreeMap<(String, String), (ModelRef, String)>;

/// What a conditional read of one model's slice of the index found.
///
/// ```no_run,standalone_crate
/// use silt_extension::{Fresh, Index};
/// use silt_extension::local::Sidecar;
/// use silt_extension::silt::datastore::types::{Error, ModelRef};
///
/// /// Brings a sidecar's copy of the slice up to date; true when it changed.
/// fn refresh<I: Index>(model: &ModelRef, sidecar: &mut Sidecar) -> Result<bool, Error> {
///     // A version is only "known" along with the slice it names.
///     let known = sidecar.partition.as_ref().and(sidecar.store_version.as_deref());
///     match I::read_if_changed(model, known)? {
///         Fresh::Unchanged => Ok(false),
///         Fresh::Changed(read) => {
///             sidecar.partition = Some(read.partition);
///             sidecar.store_version = read.version;
///             Ok(true)
///         }
///         Fresh::Missing => {
///             let had = sidecar.partition.take().is_some();
///             sidecar.store_version = None;
///             Ok(had)
///         }
///     }
/// }
/// ```
pub enum Fresh {
    /// Still at the version the caller has.
    Unchanged,
    /// Changed (or the caller had none).
    Changed(Versioned),
    /// The model has nothing in the index.
    Missing,
}

impl Fresh {
    /// The slice read without a known version: what was found, else an
    /// empty slice with version `None`. (Only for reads without a known
    /// version, which are never `Unchanged`.)
    ///
    /// # Panics
    /// On [`Fresh::Unchanged`].
    ///
    /// ```no_run,standalone_crate
    /// use silt_extension::Index;
    /// use silt_extension::silt::datastore::types::{Error, ModelRef};
    ///
    /// fn fence<I: Index>(model: &ModelRef) -> Result<u64, Error> {
    ///     Ok(I::read_if_changed(model, None)?.or_empty(model).partition.fence)
    /// }
    /// ```
    pub fn or_empty(self, model: &ModelRef) -> Versioned {
        match self {
            Fresh::Changed(versioned) => versioned,
            Fresh::Unchanged => unreachable!("a read without a known version is never unchanged"),
            Fresh::Missing => Versioned {
                partition: partition::Partition::empty(layout::DATA_AREA, model),
                version: None,
            },
        }
    }
}

/// How an extension stores and commits its index. The rest of the datastore
/// (working copy, hydration, sync, `models`) is built on these calls.
///
/// A model's "version" is whatever lets a reader tell that the model's slice
/// changed: an object's store version, a sequence number. It is compared for
/// equality only and remembered in the model's sidecar.
///
/// An index with one object per model, committed by compare-and-swap and
/// fenced twice: by the slice's fence, which every acquisition raises, and
/// by [`lease::confirm`]. Each refuses a commit of a lease taken over; the
/// fence refuses it without trusting the lock object, and only the raise
/// makes the commit's compare-and-swap fail once a takeover happened (a
/// holder paused between its look at the lock object and its write).
///
/// ```no_run,standalone_crate
/// use silt_extension::change::{self, Change, Committed};
/// use silt_extension::layout::DATA_AREA;
/// use silt_extension::index_io;
/// use silt_extension::partition::Versioned;
/// use silt_extension::silt::datastore::object_store::PutMode;
/// use silt_extension::silt::datastore::types::{Error, Lease, ModelRef};
/// use silt_extension::store::{self, Written};
/// use silt_extension::{Fresh, Index, Listed, meta};
///
/// struct Mine;
///
/// /// The model's slice: `_mine/<type>/<id>.json`.
/// fn key(model: &ModelRef) -> String {
///     format!("_mine/{}/{}.json", model.model_type, model.model_id)
/// }
///
/// impl Index for Mine {
///     const KIND: &'static str = "mine";
///
///     fn read_if_changed(model: &ModelRef, known: Option<&str>) -> Result<Fresh, Error> {
///         index_io::read_object(&key(model), DATA_AREA, model, known)
///     }
///
///     fn list() -> Result<Listed, Error> {
///         let mut listed = Listed::new();
///         for object in store::list_all("_mine/")? {
///             let label = object.key.trim_start_matches("_mine/").trim_end_matches(".json");
///             if let Some((model_type, model_id)) = label.rsplit_once('/') {
///                 let model = ModelRef { model_type: model_type.into(), model_id: model_id.into() };
///                 listed.insert((model_type.into(), model_id.into()), (model, object.version));
///             }
///         }
///         Ok(listed)
///     }
///
///     fn commit(model: &ModelRef, lease: &Lease, changes: &[Change]) -> Result<Committed, Error> {
///         change::covers(lease, model)?;
///         let retain = meta::read(Self::KIND)?.retain_versions;
///         let token = change::commit_token(changes)?;
///         store::retry_lost(&key(model), 16, |_attempt| {
///             let Versioned { partition: mut next, version } = Self::read(model)?;
///             // Raised by `locks.acquire` of every lease taken after ours
///             // (see the crate's example): a takeover changed this slice.
///             if next.fence > lease.generation {
///                 return Err(Error::LockLost("the lease was taken over; nothing was committed".into()));
///             }
///             // The lock object's word too: ours, and renewed within its TTL.
///             silt_extension::lease::confirm(lease)?;
///             next.seq += 1;
///             next.last_commit = token.clone();
///             let applied = change::apply(model, &mut next, lease, changes, retain)?;
///             let mode = version.map_or(PutMode::Create, PutMode::Update);
///             Ok(match store::put_owned(&key(model), &next.to_bytes(), &mode, &token)? {
///                 Written::Landed(version) => Some(Committed {
///                     deleted: index_io::delete_dropped(model, &applied.dropped),
///                     partition: next,
///                     version,
///                     entries: applied.entries,
///                     expired: applied.dropped,
///                 }),
///                 Written::Lost => None,
///             })
///         })
///     }
/// }
/// # fn main() {}
/// ```
pub trait Index {
    /// The index kind, recorded in `_meta/datastore.json` so that an
    /// extension never reads another kind's datastore.
    ///
    /// ```no_run,standalone_crate
    /// use silt_extension::{Index, meta};
    /// use silt_extension::silt::datastore::types::Error;
    ///
    /// fn retention<I: Index>() -> Result<u32, Error> {
    ///     Ok(meta::read(I::KIND)?.retain_versions)
    /// }
    /// ```
    const KIND: &'static str;

    /// True when [`Index::commit`] announces every commit in the change
    /// journal before its compare-and-swap ([`journal::announce`], and
    /// [`journal::Announcement::keep_fresh`] before each attempt). A new
    /// datastore of such an index is set up at [`meta::LAYOUT_VERSION`],
    /// and a pull of everything then reads the journal instead of listing
    /// every partition (one request when nothing changed). Announce only
    /// when [`meta::Meta::journal`] says the datastore has a journal.
    ///
    /// ```no_run,standalone_crate
    /// use silt_extension::Index;
    ///
    /// fn describe<I: Index>() -> &'static str {
    ///     if I::JOURNAL { "commits announced in _journal/" } else { "no journal" }
    /// }
    /// ```
    const JOURNAL: bool = false;

    /// True when a fresh clone's pull of everything may start from the
    /// index checkpoint ([`checkpoint`]), and a full check that read many
    /// slices writes one. Only for an index that announces its commits
    /// ([`Index::JOURNAL`]) and whose [`Index::list`] gives each model's
    /// version as [`Index::read_if_changed`] does.
    ///
    /// ```no_run,standalone_crate
    /// use silt_extension::Index;
    ///
    /// fn cold_clone_reads<I: Index>(models: usize) -> &'static str {
    ///     if I::CHECKPOINT && models > 128 { "a few chunks" } else { "every slice" }
    /// }
    /// ```
    const CHECKPOINT: bool = false;

    /// Reads the model's slice of the index, unless it is still at `known`.
    ///
    /// # Errors
    /// The store's failure; `corrupt` when what is stored is not a slice of
    /// `model`.
    ///
    /// ```no_run,standalone_crate
    /// use silt_extension::{Fresh, Index};
    /// use silt_extension::partition::Versioned;
    /// use silt_extension::silt::datastore::types::{Error, ModelRef};
    ///
    /// /// Keeps `cached` current with one conditional read.
    /// fn current<I: Index>(model: &ModelRef, cached: &mut Option<Versioned>) -> Result<(), Error> {
    ///     let known = cached.as_ref().and_then(|read| read.version.as_deref());
    ///     match I::read_if_changed(model, known)? {
    ///         Fresh::Unchanged => {}
    ///         Fresh::Changed(read) => *cached = Some(read),
    ///         Fresh::Missing => *cached = None,
    ///     }
    ///     Ok(())
    /// }
    /// ```
    fn read_if_changed(model: &ModelRef, known: Option<&str>) -> Result<Fresh, Error>;

    /// Reads the model's slice of the index (empty with version `None` when
    /// the model has nothing committed).
    ///
    /// # Errors
    /// As [`Index::read_if_changed`].
    ///
    /// ```no_run,standalone_crate
    /// use silt_extension::Index;
    /// use silt_extension::silt::datastore::types::{Error, ModelRef};
    ///
    /// fn has_file<I: Index>(model: &ModelRef, name: &str) -> Result<bool, Error> {
    ///     Ok(I::read(model)?.partition.live(name).is_some())
    /// }
    /// ```
    fn read(model: &ModelRef) -> Result<Versioned, Error> {
        Ok(Self::read_if_changed(model, None)?.or_empty(model))
    }

    /// Reads several models' slices whole (a first read: no version known),
    /// one result per model, in order. By default one after another; an
    /// index whose slices are separate objects reads them at once with
    /// [`index_io::read_objects`] (a cold clone's hydration calls this for
    /// each batch of models).
    ///
    /// ```no_run,standalone_crate
    /// use silt_extension::{Fresh, Index};
    /// use silt_extension::silt::datastore::types::ModelRef;
    ///
    /// fn count_present<I: Index>(models: &[ModelRef]) -> usize {
    ///     I::read_many(models)
    ///         .into_iter()
    ///         .filter(|read| matches!(read, Ok(Fresh::Changed(_))))
    ///         .count()
    /// }
    /// ```
    fn read_many(models: &[ModelRef]) -> Vec<Result<Fresh, Error>> {
        models
            .iter()
            .map(|model| Self::read_if_changed(model, None))
            .collect()
    }

    /// Every model the store's index has, with its version.
    ///
    /// # Errors
    /// The store's failure.
    ///
    /// ```no_run,standalone_crate
    /// use silt_extension::layout::{self, DATA_AREA};
    /// use silt_extension::silt::datastore::types::{Error, ModelRef};
    /// use silt_extension::Index;
    /// use silt_extension::summary::Summary;
    ///
    /// /// The models that changed in the store since this cache last read them.
    /// fn changed<I: Index>() -> Result<Vec<ModelRef>, Error> {
    ///     let summary = Summary::read(DATA_AREA);
    ///     Ok(I::list()?
    ///         .into_values()
    ///         .filter(|(model, version)| !summary.is_current(&layout::model_label(model), version, false))
    ///         .map(|(model, _)| model)
    ///         .collect())
    /// }
    /// ```
    fn list() -> Result<Listed, Error>;

    /// Applies `changes` to the model under `lease`. The content named by
    /// the changes is already in the store. Versions beyond the datastore's
    /// retention are dropped (and their objects deleted once committed).
    ///
    /// # Errors
    /// `invalid-input` for a lease on another scope or no changes;
    /// `lock-lost` when the lease was taken over or went silent;
    /// `not-found` for a removal of a file that is not there; `conflict`
    /// when a change's base is not the latest version (checked on the slice
    /// read for the compare-and-swap, see [`change::apply`]); the store's
    /// failure.
    ///
    /// ```no_run,standalone_crate
    /// use silt_extension::change::{Base, Change};
    /// use silt_extension::silt::datastore::types::{Error, Lease, ModelRef};
    /// use silt_extension::{Index, clock};
    ///
    /// /// Removes several files of one model in one commit.
    /// fn remove_all<I: Index>(model: &ModelRef, lease: &Lease, names: &[&str]) -> Result<String, Error> {
    ///     let changes: Vec<Change> = names
    ///         .iter()
    ///         .map(|name| Change::Remove { name: (*name).to_owned(), version: clock::version_token(), base: Base::Any })
    ///         .collect();
    ///     Ok(I::commit(model, lease, &changes)?.version)
    /// }
    /// ```
    fn commit(model: &ModelRef, lease: &Lease, changes: &[Change]) -> Result<Committed, Error>;

    /// True when [`Index::commit_unleased`] commits with no lease (the
    /// `lease-free-commits` feature: declare it too). Only an index that
    /// announces its commits ([`Index::JOURNAL`]) can: the announcement is
    /// what keeps an unleased commit's upload from `collect-orphans`
    /// ([`unleased`]).
    ///
    /// ```no_run,standalone_crate
    /// use silt_extension::Index;
    ///
    /// fn single_writes_need_a_lease<I: Index>() -> bool {
    ///     !I::UNLEASED
    /// }
    /// ```
    const UNLEASED: bool = false;

    /// Applies `changes` (one file's write) to the model with no lease,
    /// fenced by the model's slice as [`unleased`] describes: refused with
    /// `lock-held` while a lease on the model is live. `announced` is the
    /// commit's journal entry, written before its content was uploaded;
    /// `known` is the slice this cache last read or wrote, with its store
    /// version ([`written_here::known_slice`]): the first compare-and-swap
    /// may go on it without a read. Withdraw `announced` when the commit is
    /// refused for sure.
    ///
    /// # Errors
    /// `not-supported` (the default: the index commits only under a
    /// lease); `lock-held`; as [`Index::commit`] otherwise.
    ///
    /// ```no_run,standalone_crate
    /// use silt_extension::change::{Base, Change};
    /// use silt_extension::layout::DATA_AREA;
    /// use silt_extension::silt::datastore::types::{Error, Holder, ModelRef};
    /// use silt_extension::{Index, clock, journal, written_here};
    ///
    /// /// Removes one file with no lease (its content is already uploaded, so no announcement comes first).
    /// fn remove<I: Index>(model: &ModelRef, name: &str, holder: &Holder) -> Result<String, Error> {
    ///     let version = clock::version_token();
    ///     let announced = journal::announce(model, &version)?;
    ///     let change = Change::Remove { name: name.to_owned(), version, base: Base::Any };
    ///     let known = written_here::known_slice(DATA_AREA, model);
    ///     Ok(I::commit_unleased(model, holder, &[change], announced, known)?.version)
    /// }
    /// ```
    fn commit_unleased(
        model: &ModelRef,
        holder: &Holder,
        changes: &[Change],
        announced: journal::Announcement,
        known: Option<partition::Versioned>,
    ) -> Result<Committed, Error> {
        let _ = (holder, changes, known);
        announced.withdraw();
        Err(Error::NotSupported(format!(
            "{}: this datastore commits only under the model's lease",
            layout::model_label(model)
        )))
    }

    /// Commits several models at once (a push); one result per model, in
    /// order. By default one [`Index::commit`] each; an index whose commits
    /// are expensive whatever their size may do them all in one.
    ///
    /// ```no_run,standalone_crate
    /// use silt_extension::change::{Change, Committed};
    /// use silt_extension::silt::datastore::types::{Error, Lease, ModelRef};
    /// use silt_extension::Index;
    ///
    /// fn push<I: Index>(work: &[(ModelRef, Lease, Vec<Change>)]) -> Vec<Result<Committed, Error>> {
    ///     let batch: Vec<(&ModelRef, &Lease, &[Change])> =
    ///         work.iter().map(|(model, lease, changes)| (model, lease, changes.as_slice())).collect();
    ///     I::commit_many(&batch)
    /// }
    /// ```
    fn commit_many(batch: &[(&ModelRef, &Lease, &[Change])]) -> Vec<Result<Committed, Error>> {
        batch
            .iter()
            .map(|(model, lease, changes)| Self::commit(model, lease, changes))
            .collect()
    }
}

/// Logs a warning through the host.
///
/// ```no_run,standalone_crate
/// use silt_extension::{log_warn, store};
///
/// // Best-effort cleanup: a failure is worth a warning, not an error.
/// let key = "_mine/tmp/upload-1767225600000";
/// if let Err(err) = store::delete(key) {
///     log_warn(&format!("could not delete {key} (left behind, harmless): {err:?}"));
/// }
/// ```
pub fn log_warn(message: &str) {
    silt::datastore::log::log(silt::datastore::log::Level::Warn, message);
}

/// The error for the object `key`, malformed as `detail` says (the one
/// constructor: [`store::corrupt`] for callers, and the plain data types,
/// which name no I/O module, below it).
pub(crate) fn corrupt_object(
    key: &str,
    detail: impl std::fmt::Display,
) -> silt::datastore::types::Error {
    silt::datastore::types::Error::Corrupt(silt::datastore::types::CorruptObject {
        object: key.to_owned(),
        detail: detail.to_string(),
    })
}
#[cfg(test)]
mod tests {
    use super::*;
    use exports::silt::datastore::capabilities::Features;

    #[test]
    fn each_capability_name_is_its_own_flag_and_together_they_are_all() {
        let names = [
            "scoped-sync",
            "partitioned-index",
            "model-locks",
            "namespace-locks",
            "lazy-hydration",
            "background-hydration",
            "gc",
            "lease-free-commits",
        ];
        let mut seen = Features::empty();
        for name in names {
            let one = features_of(&[name]);
            assert_eq!(one.bits().count_ones(), 1, "{name}");
            assert!(!seen.intersects(one), "{name} shares a flag");
            seen |= one;
        }
        assert_eq!(seen, Features::all());
        assert_eq!(features_of(&names), Features::all());
        assert_eq!(features_of(&[]), Features::empty());
        assert_eq!(
            features_of(&["gc", "scoped-sync", "gc"]),
            Features::GC | Features::SCOPED_SYNC
        );
    }

    #[test]
    #[should_panic(expected = "unknown capability")]
    fn an_unknown_capability_is_refused() {
        features_of(&["scoped-sync", "model-lock"]);
    }
}
