//! A datastore extension that tries to use the network. Rust's std links
//! `wasi:sockets` for it, and silt refuses the component before compiling it.

wit_bindgen::generate!({
    path: "../../../wit",
    world: "silt:datastore/datastore-extension",
});

use exports::silt::datastore::{capabilities, hydration, locks, models, sync};
use silt::datastore::types::{Base, Committer, Error, Lease, LockInfo, LockScope, ModelRef, Scope};

#[unsafe(link_section = "silt-extension")]
#[used]
static METADATA: [u8; include_bytes!("../silt-extension.toml").len()] =
    *include_bytes!("../silt-extension.toml");

struct Networked;

impl hydration::Guest for Networked {
    fn hydrate_scope(
        _models: Vec<ModelRef>,
        _options: hydration::HydrateOptions,
    ) -> Result<hydration::HydrateReport, Error> {
        unsupported()
    }
    fn hydrate_file(address: String) -> Result<hydration::HydrateReport, Error> {
        match std::net::TcpStream::connect(address.as_str()) {
            Ok(_) => Err(Error::InvalidInput("connected: the sandbox leaked".into())),
            Err(err) => Err(Error::Backend(silt::datastore::types::BackendFailure {
                retryable: false,
                detail: err.to_string(),
            })),
        }
    }
}

impl capabilities::Guest for Networked {
    fn describe() -> capabilities::Description {
        capabilities::Description {
            name: "networked".into(),
            version: "0.1.0".into(),
            features: capabilities::Features::empty(),
        }
    }
}

fn unsupported<T>() -> Result<T, Error> {
    Err(Error::NotSupported("networked".into()))
}

impl sync::Guest for Networked {
    fn setup(_options: sync::SetupOptions) -> Result<sync::SetupReport, Error> {
        unsupported()
    }
    fn verify(_scope: Scope) -> Result<Vec<sync::Finding>, Error> {
        unsupported()
    }
    fn pull_changed(_options: sync::SyncOptions) -> Result<sync::SyncReport, Error> {
        unsupported()
    }
    fn push_changed(_options: sync::SyncOptions) -> Result<sync::SyncReport, Error> {
        unsupported()
    }
    fn status(_scope: Scope) -> Result<sync::StatusReport, Error> {
        unsupported()
    }
    fn gc(_options: sync::GcOptions) -> Result<sync::GcReport, Error> {
        unsupported()
    }
    fn collect_orphans(_options: sync::OrphanOptions) -> Result<sync::OrphanReport, Error> {
        unsupported()
    }
}

impl locks::Guest for Networked {
    fn acquire(_scope: LockScope, _options: locks::AcquireOptions) -> Result<Lease, Error> {
        unsupported()
    }
    fn renew(_lease: Lease) -> Result<Lease, Error> {
        unsupported()
    }
    fn release(_lease: Lease) -> Result<(), Error> {
        unsupported()
    }
    fn inspect(_scope: LockScope) -> Result<Option<LockInfo>, Error> {
        unsupported()
    }
    fn list() -> Result<Vec<LockInfo>, Error> {
        unsupported()
    }
    fn force_release(_expected: LockInfo) -> Result<(), Error> {
        unsupported()
    }
}

impl models::Guest for Networked {
    fn list_models() -> Result<Vec<ModelRef>, Error> {
        unsupported()
    }
    fn list_files(_model: ModelRef) -> Result<Vec<models::FileEntry>, Error> {
        unsupported()
    }
    fn history(_model: ModelRef, _name: String) -> Result<Vec<models::FileVersion>, Error> {
        unsupported()
    }
    fn put_file(
        _model: ModelRef,
        _name: String,
        _cache_path: String,
        _base: Base,
        _by: Committer,
    ) -> Result<models::FileVersion, Error> {
        unsupported()
    }
    fn get_file(
        _model: ModelRef,
        _name: String,
        _version: Option<String>,
        _cache_path: String,
    ) -> Result<models::FileVersion, Error> {
        unsupported()
    }
    fn remove_file(
        _model: ModelRef,
        _name: String,
        _base: Base,
        _by: Committer,
    ) -> Result<models::FileVersion, Error> {
        unsupported()
    }
}

export!(Networked);
