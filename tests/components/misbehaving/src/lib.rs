//! A datastore extension that misbehaves on request, to prove the host
//! survives it. `hydration.hydrate-file(command)` selects the misbehaviour:
//!
//! | command | what the guest does |
//! |---|---|
//! | `trap` | panics |
//! | `loop` | spins forever (deadline) |
//! | `alloc` | allocates until it is stopped (memory limit) |
//! | `read:<path>` | reads a file and reports its size (escape attempts) |
//! | `write:<path>` | writes a file (escape attempts) |
//! | `env` | reports how many environment variables and arguments it sees |
//! | `sleep:<ms>` | sleeps in a host call, where the epoch deadline cannot stop it |
//! | `chatty` | prints 1 MiB to stdout and stderr, then succeeds |
//! | `download:<key>><path>[#<sha256>]` | asks the host to download an object into the cache |
//! | `loop-import:<name>` | calls one import (`get`, `head`, `list`, `put`, `delete`, `download`, `upload`, `log`, `progress`) forever |
//! | `symlink:<target>><link>` | creates a symbolic link (the host refuses) |
//! | `hardlink:<target>><link>` | creates a hard link (the host refuses) |

wit_bindgen::generate!({
    path: "../../../wit",
    world: "silt:datastore/datastore-extension",
});

use exports::silt::datastore::{capabilities, hydration, locks, models, sync};
use silt::datastore::types::{
    Base, Committer, Error, Lease, LockInfo, LockScope, ModelRef, Scope, TransferStats,
};

#[unsafe(link_section = "silt-extension")]
#[used]
static METADATA: [u8; include_bytes!("../silt-extension.toml").len()] =
    *include_bytes!("../silt-extension.toml");

struct Misbehaving;

fn report(present: u64, remaining: u64) -> hydration::HydrateReport {
    hydration::HydrateReport {
        stats: TransferStats {
            objects_downloaded: 0,
            bytes_downloaded: 0,
            objects_uploaded: 0,
            bytes_uploaded: 0,
            partitions_read: 0,
            partitions_written: 0,
        },
        objects_present: present,
        objects_remaining: remaining,
        set_aside: Vec::new(),
    }
}

impl hydration::Guest for Misbehaving {
    fn hydrate_scope(
        _models: Vec<ModelRef>,
        _options: hydration::HydrateOptions,
    ) -> Result<hydration::HydrateReport, Error> {
        Err(Error::NotSupported("misbehaving".into()))
    }

    fn hydrate_file(command: String) -> Result<hydration::HydrateReport, Error> {
        match command.as_str() {
            "trap" => panic!("deliberate trap requested by the test"),
            "loop" => loop {
                std::hint::black_box(());
            },
            "alloc" => {
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    // Touch every page so the memory is really used.
                    hoard.push(vec![0xA5; 8 << 20]);
                    std::hint::black_box(&hoard);
                }
            }
            "env" => Ok(report(
                std::env::vars().count() as u64,
                std::env::args().count() as u64,
            )),
            "chatty" => {
                let line = "x".repeat(1023);
                for _ in 0..1024 {
                    println!("{line}");
                    eprintln!("{line}");
                }
                Ok(report(0, 0))
            }
            other => {
                if let Some(ms) = other.strip_prefix("sleep:") {
                    // Blocks in a host call (wasi poll), where no epoch
                    // deadline can interrupt it.
                    let ms = ms.parse().map_err(|_| Error::InvalidInput(ms.to_owned()))?;
                    std::thread::sleep(std::time::Duration::from_millis(ms));
                    return Ok(report(0, 0));
                }
                if let Some(path) = other.strip_prefix("read:") {
                    return std::fs::read(path)
                        .map(|data| report(data.len() as u64, 0))
                        .map_err(|err| Error::NotFound(format!("{path}: {err}")));
                }
                if let Some(spec) = other.strip_prefix("download:") {
                    return download(spec);
                }
                if let Some(path) = other.strip_prefix("write:") {
                    return std::fs::write(path, b"written by the guest")
                        .map(|()| report(1, 0))
                        .map_err(|err| Error::NotFound(format!("{path}: {err}")));
                }
                if let Some(name) = other.strip_prefix("loop-import:") {
                    return loop_import(name);
                }
                if let Some(spec) = other.strip_prefix("symlink:") {
                    let (target, link) = split_link(spec)?;
                    #[allow(deprecated)] // the one stable symlink call on WASI
                    let made = std::fs::soft_link(target, link);
                    return made
                        .map(|()| report(1, 0))
                        .map_err(|err| Error::NotFound(format!("{link}: {err}")));
                }
                if let Some(spec) = other.strip_prefix("hardlink:") {
                    let (target, link) = split_link(spec)?;
                    return std::fs::hard_link(target, link)
                        .map(|()| report(1, 0))
                        .map_err(|err| Error::NotFound(format!("{link}: {err}")));
                }
                Err(Error::InvalidInput(format!("unknown command {other:?}")))
            }
        }
    }
}

/// Calls the import `name` in a loop that never ends by itself: only the
/// host's deadline and store budget can stop it.
fn loop_import(name: &str) -> Result<hydration::HydrateReport, Error> {
    use silt::datastore::object_store as store;
    let known = [
        "get", "head", "list", "put", "delete", "download", "upload", "log", "progress",
    ];
    if !known.contains(&name) {
        return Err(Error::InvalidInput(format!("unknown import {name:?}")));
    }
    loop {
        match name {
            "get" => drop(store::get("missing/key", None)),
            "head" => drop(store::head("missing/key")),
            "list" => drop(store::list("", None, 1000)),
            "put" => drop(store::put("loop/key", b"x", &store::PutMode::Overwrite)),
            "delete" => drop(store::delete("missing/key", None)),
            "download" => drop(store::download(&[store::DownloadItem {
                key: "missing/key".into(),
                cache_path: "loop.bin".into(),
                expected_version: None,
                sha256: None,
            }])),
            "upload" => drop(store::upload(&[store::UploadItem {
                cache_path: "missing.bin".into(),
                key: "loop/up".into(),
                mode: store::PutMode::Overwrite,
            }])),
            "log" => silt::datastore::log::log(silt::datastore::log::Level::Trace, "looping"),
            _ => {
                silt::datastore::progress::advance(1, 1);
            }
        }
    }
}

/// `target>link`.
fn split_link(spec: &str) -> Result<(&str, &str), Error> {
    spec.split_once('>')
        .ok_or_else(|| Error::InvalidInput(spec.into()))
}

/// `key>path[#sha256]`: one bulk download through the host; the report's
/// `objects-present` is the object's size.
fn download(spec: &str) -> Result<hydration::HydrateReport, Error> {
    let (key, rest) = spec
        .split_once('>')
        .ok_or_else(|| Error::InvalidInput(spec.into()))?;
    let (path, sha256) = match rest.split_once('#') {
        Some((path, sha)) => (path, Some(sha.to_owned())),
        None => (rest, None),
    };
    let item = silt::datastore::object_store::DownloadItem {
        key: key.into(),
        cache_path: path.into(),
        expected_version: None,
        sha256,
    };
    let mut results = silt::datastore::object_store::download(&[item]);
    match results.pop() {
        Some(Ok(meta)) => Ok(report(meta.size, 0)),
        Some(Err(err)) => Err(Error::Backend(silt::datastore::types::BackendFailure {
            retryable: false,
            detail: format!("{err:?}"),
        })),
        None => Err(Error::InvalidInput("no result".into())),
    }
}

impl capabilities::Guest for Misbehaving {
    fn describe() -> capabilities::Description {
        capabilities::Description {
            name: "misbehaving".into(),
            version: "0.1.0".into(),
            features: capabilities::Features::empty(),
        }
    }
}

fn unsupported<T>() -> Result<T, Error> {
    Err(Error::NotSupported("misbehaving".into()))
}

impl sync::Guest for Misbehaving {
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

impl locks::Guest for Misbehaving {
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

impl models::Guest for Misbehaving {
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

export!(Misbehaving);
