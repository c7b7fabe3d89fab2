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
//!   objects and the lease protocol's pieces ([`lock_object`]), owner
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
//! plumbing:
//!
//! ```ignore
//! silt_extension::metadata! {
//!     description: "My datastore",
//!     capabilities: ["scoped-sync", "model-locks"],
//! }
//!
//! struct Mine;
//! impl silt_extension::Index for Mine { /* read_if_changed, list, commit */ }
//! impl silt_extension::exports::silt::datastore::locks::Guest for Mine { /* ... */ }
//! impl silt_extension::exports::silt::datastore::capabilities::Guest for Mine { /* ... */ }
//! silt_extension::export!(Mine);
//! ```
//!
//! `extensions/partitioned-datastore` is the full example;
//! `tests/components/broken-datastore` is a short one (deliberately wrong
//! leases, for `silt extension test`'s own tests).
//!
//! The cache directory (`/cache`) holds the working copy at
//! `data/<type>/<id>/<name>` and, under `.silt/`, a sidecar per model (its
//! slice of the index as last seen, and stamps of the files present locally).

wit_bindgen::generate!({
    path: "../../wit",
    world: "silt:datastore/datastore-extension",
    pub_export_macro: true,
    default_bindings_module: "silt_extension",
});

/// The WIT package this SDK's bindings were generated from; the host
/// accepts exactly the version it was built with.
pub const API: &str = "silt:datastore@0.4.0";

/// Embeds the extension's metadata in the `silt-extension` custom section,
/// where silt reads it without compiling the component (`silt extension
/// add`, `list`, `inspect`). Name and version come from `Cargo.toml`; the
/// API version from this SDK ([`API`]). Declare a capability only if
/// `describe` reports it too and `silt extension test` passes its checks.
///
/// Strings are written into TOML as they are: no `"` or `\` in them.
///
/// ```ignore
/// silt_extension::metadata! {
///     description: "One index partition per model, leases with fencing",
///     capabilities: ["scoped-sync", "partitioned-index", "model-locks"],
/// }
/// ```
#[macro_export]
macro_rules! metadata {
    (description: $description:literal, capabilities: [$($capability:literal),* $(,)?] $(,)?) => {
        const _: () = {
            const TEXT: &str = concat!(
                "api = \"silt:datastore@0.4.0\"\n",
                "name = \"", env!("CARGO_PKG_NAME"), "\"\n",
                "version = \"", env!("CARGO_PKG_VERSION"), "\"\n",
                "description = \"", $description, "\"\n",
                "capabilities = [", $("\"", $capability, "\", ",)* "]\n",
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

pub mod change;
pub mod clock;
pub mod hydrate;
pub mod layout;
pub mod local;
pub mod lock_object;
pub mod meta;
pub mod models;
pub mod partition;
pub mod store;
pub mod sync;

use std::collections::BTreeMap;

use change::{Change, Committed};
use partition::Versioned;
use silt::datastore::types::{Error, Lease, ModelRef};

/// Models in the store by (type, id): the model and its slice's store version.
pub type Listed = BTreeMap<(String, String), (ModelRef, String)>;

/// What a conditional read of one model's slice of the index found.
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
pub trait Index {
    /// The index kind, recorded in `_meta/datastore.json` so that an
    /// extension never reads another kind's datastore.
    const KIND: &'static str;

    /// Reads the model's slice of the index, unless it is still at `known`.
    fn read_if_changed(model: &ModelRef, known: Option<&str>) -> Result<Fresh, Error>;

    /// Reads the model's slice of the index (empty with version `None` when
    /// the model has nothing committed).
    fn read(model: &ModelRef) -> Result<Versioned, Error> {
        Ok(Self::read_if_changed(model, None)?.or_empty(model))
    }

    /// Every model the store's index has, with its version.
    fn list() -> Result<Listed, Error>;

    /// Applies `changes` to the model under `lease`. The content named by
    /// the changes is already in the store. Versions beyond the datastore's
    /// retention are dropped (and their objects deleted once committed).
    fn commit(model: &ModelRef, lease: &Lease, changes: &[Change]) -> Result<Committed, Error>;

    /// Commits several models at once (a push); one result per model, in
    /// order. By default one [`Index::commit`] each; an index whose commits
    /// are expensive whatever their size may do them all in one.
    fn commit_many(batch: &[(&ModelRef, &Lease, &[Change])]) -> Vec<Result<Committed, Error>> {
        batch
            .iter()
            .map(|(model, lease, changes)| Self::commit(model, lease, changes))
            .collect()
    }
}

/// Logs a warning through the host.
pub fn log_warn(message: &str) {
    silt::datastore::log::log(silt::datastore::log::Level::Warn, message);
}
