//! hello-extension: the smallest silt datastore extension.
//!
//! A flat datastore: every file under `data/` in the cache directory is an
//! object with the same key in the store. It implements every interface but
//! supports none of the optional features: the host does full syncs, and
//! without leases (`locks` answers not-supported) writes that need one
//! (`silt data put`, `silt run`) fail. Bulk data never passes through this
//! module: it only decides which objects move, and the host moves them.

wit_bindgen::generate!({
    path: "../../wit",
    world: "silt:datastore/datastore-extension",
});

use exports::silt::datastore::{capabilities, hydration, locks, models, sync};
use silt::datastore::object_store::{self, DownloadItem, PutMode, StoreError, UploadItem};
use silt::datastore::types::{
    BackendFailure, Base, Committer, Error, Lease, LockInfo, LockScope, ModelRef, Scope,
    TransferStats,
};
use silt::datastore::{config, log, progress};

// The metadata the host reads without compiling this component.
#[unsafe(link_section = "silt-extension")]
#[used]
static METADATA: [u8; include_bytes!("../silt-extension.toml").len()] =
    *include_bytes!("../silt-extension.toml");

/// Marks a datastore root as set up, and records its layout version.
const LAYOUT_KEY: &str = "hello/layout";
const LAYOUT_VERSION: u32 = 1;
/// Objects live under this prefix, and at the same path in the cache.
const DATA_PREFIX: &str = "data/";
const CACHE_ROOT: &str = "/cache";

struct Hello;

impl capabilities::Guest for Hello {
    fn describe() -> capabilities::Description {
        capabilities::Description {
            name: env!("CARGO_PKG_NAME").to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            features: capabilities::Features::empty(),
        }
    }
}

impl sync::Guest for Hello {
    fn setup(options: sync::SetupOptions) -> Result<sync::SetupReport, Error> {
        let layout = LAYOUT_VERSION.to_string().into_bytes();
        let created = match object_store::head(LAYOUT_KEY) {
            Ok(_) => false,
            Err(StoreError::NotFound) if options.create => {
                match object_store::put(LAYOUT_KEY, &layout, &PutMode::Create) {
                    // Losing a race to another setup is fine: it wrote the same.
                    Ok(_) | Err(StoreError::AlreadyExists) => true,
                    Err(err) => return Err(store_error(LAYOUT_KEY, err)),
                }
            }
            Err(StoreError::NotFound) => {
                return Err(Error::NotFound(
                    "this datastore is not set up; run setup with create".into(),
                ));
            }
            Err(err) => return Err(store_error(LAYOUT_KEY, err)),
        };
        Ok(sync::SetupReport {
            created,
            layout_version: LAYOUT_VERSION,
            detail: "flat layout".into(),
        })
    }

    fn verify(_scope: Scope) -> Result<Vec<sync::Finding>, Error> {
        Ok(Vec::new())
    }

    fn pull_changed(options: sync::SyncOptions) -> Result<sync::SyncReport, Error> {
        let objects = list_all(DATA_PREFIX)?;
        let mut stats = TransferStats::default_zero();
        let changed: Vec<String> = objects.iter().map(|o| o.key.clone()).collect();
        if !options.dry_run {
            let items: Vec<DownloadItem> = objects
                .iter()
                .map(|o| DownloadItem {
                    key: o.key.clone(),
                    cache_path: o.key.clone(),
                    expected_version: None,
                    sha256: None,
                })
                .collect();
            for (item, result) in objects.iter().zip(object_store::download(&items)) {
                result.map_err(|err| store_error(&item.key, err))?;
                stats.objects_downloaded += 1;
                stats.bytes_downloaded += item.size;
            }
        }
        log::log(
            log::Level::Info,
            &format!("pulled {} objects", changed.len()),
        );
        // The project's settings (`[extensions.config.hello-extension]` in
        // silt.toml): an optional label for its reports.
        let label = config::get("label")
            .map(|label| format!(" for {label}"))
            .unwrap_or_default();
        Ok(sync::SyncReport {
            stats,
            summary: format!("{} objects{label}", changed.len()),
            changed,
            // It keeps no versions, so it has no conflicts to set aside.
            set_aside: Vec::new(),
        })
    }

    fn push_changed(options: sync::SyncOptions) -> Result<sync::SyncReport, Error> {
        let files = local_files()?;
        let mut stats = TransferStats::default_zero();
        if !options.dry_run {
            progress::begin("upload", Some(files.len() as u64), None);
            let items: Vec<UploadItem> = files
                .iter()
                .map(|(path, _)| UploadItem {
                    cache_path: path.clone(),
                    key: path.clone(),
                    mode: PutMode::Overwrite,
                })
                .collect();
            for ((path, size), result) in files.iter().zip(object_store::upload(&items)) {
                result.map_err(|err| store_error(path, err))?;
                stats.objects_uploaded += 1;
                stats.bytes_uploaded += size;
            }
            progress::finish();
        }
        let changed: Vec<String> = files.into_iter().map(|(path, _)| path).collect();
        Ok(sync::SyncReport {
            stats,
            summary: format!("{} files", changed.len()),
            changed,
            set_aside: Vec::new(),
        })
    }

    fn status(_scope: Scope) -> Result<sync::StatusReport, Error> {
        let objects = list_all(DATA_PREFIX)?;
        let files = local_files()?;
        Ok(sync::StatusReport {
            objects_total: objects.len() as u64,
            bytes_total: objects.iter().map(|o| o.size).sum(),
            objects_local: files.len() as u64,
            bytes_local: files.iter().map(|(_, size)| size).sum(),
            local_changes: Vec::new(),
            local_models: Vec::new(),
            remote_changes: Vec::new(),
        })
    }

    fn gc(_options: sync::GcOptions) -> Result<sync::GcReport, Error> {
        Err(Error::NotSupported(
            "hello-extension keeps one version of each file: nothing to collect".into(),
        ))
    }
    fn collect_orphans(_options: sync::OrphanOptions) -> Result<sync::OrphanReport, Error> {
        Err(Error::NotSupported(
            "hello-extension has no index: every stored object is a file".into(),
        ))
    }
}

impl hydration::Guest for Hello {
    fn hydrate_scope(
        _models: Vec<silt::datastore::types::ModelRef>,
        _options: hydration::HydrateOptions,
    ) -> Result<hydration::HydrateReport, Error> {
        Err(Error::NotSupported(
            "hello-extension always syncs everything".into(),
        ))
    }

    fn hydrate_file(_path: String) -> Result<hydration::HydrateReport, Error> {
        Err(Error::NotSupported(
            "hello-extension always syncs everything".into(),
        ))
    }
}

/// No leases: every call answers not-supported, so the commands that take a
/// model's lease (`silt data put`, `silt run`) fail on this datastore.
impl locks::Guest for Hello {
    fn acquire(_scope: LockScope, _options: locks::AcquireOptions) -> Result<Lease, Error> {
        Err(Error::NotSupported("hello-extension has no locks".into()))
    }
    fn renew(_lease: Lease) -> Result<Lease, Error> {
        Err(Error::NotSupported("hello-extension has no locks".into()))
    }
    fn release(_lease: Lease) -> Result<(), Error> {
        Err(Error::NotSupported("hello-extension has no locks".into()))
    }
    fn inspect(_scope: LockScope) -> Result<Option<LockInfo>, Error> {
        Ok(None)
    }
    fn list() -> Result<Vec<LockInfo>, Error> {
        Ok(Vec::new())
    }
    fn force_release(_expected: LockInfo) -> Result<(), Error> {
        Err(Error::NotSupported("hello-extension has no locks".into()))
    }
}

impl TransferStats {
    fn default_zero() -> Self {
        TransferStats {
            objects_downloaded: 0,
            bytes_downloaded: 0,
            objects_uploaded: 0,
            bytes_uploaded: 0,
            partitions_read: 0,
            partitions_written: 0,
        }
    }
}

/// Every object under `prefix`, one listing page at a time.
fn list_all(prefix: &str) -> Result<Vec<object_store::ObjectMeta>, Error> {
    let mut all = Vec::new();
    let mut after = None;
    loop {
        let page = object_store::list(prefix, after.as_deref(), 1000)
            .map_err(|err| store_error(prefix, err))?;
        all.extend(page.items);
        match page.next_start_after {
            Some(next) => after = Some(next),
            None => return Ok(all),
        }
    }
}

/// Every file under `data/` in the cache: (path relative to the cache, size).
fn local_files() -> Result<Vec<(String, u64)>, Error> {
    let mut files = Vec::new();
    let mut pending = vec![DATA_PREFIX.trim_end_matches('/').to_owned()];
    while let Some(dir) = pending.pop() {
        let entries = match std::fs::read_dir(format!("{CACHE_ROOT}/{dir}")) {
            Ok(entries) => entries,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => continue,
            Err(err) => {
                return Err(Error::InvalidInput(format!(
                    "cannot read cache {dir}: {err}"
                )));
            }
        };
        for entry in entries {
            let entry = entry.map_err(|err| Error::InvalidInput(err.to_string()))?;
            let path = format!("{dir}/{}", entry.file_name().to_string_lossy());
            let meta = entry
                .metadata()
                .map_err(|err| Error::InvalidInput(err.to_string()))?;
            if meta.is_dir() {
                pending.push(path);
            } else if meta.is_file() {
                files.push((path, meta.len()));
            }
        }
    }
    files.sort();
    Ok(files)
}

fn store_error(key: &str, err: StoreError) -> Error {
    match err {
        StoreError::NotFound => Error::NotFound(key.to_owned()),
        StoreError::AlreadyExists | StoreError::PreconditionFailed => {
            Error::PreconditionFailed(key.to_owned())
        }
        StoreError::Backend(failure) => Error::Backend(failure),
        other => Error::Backend(BackendFailure {
            retryable: false,
            detail: format!("{key}: {other:?}"),
        }),
    }
}

impl models::Guest for Hello {
    fn list_models() -> Result<Vec<ModelRef>, Error> {
        Err(Error::NotSupported(
            "hello-extension keeps no per-model index".into(),
        ))
    }
    fn list_files(_model: ModelRef) -> Result<Vec<models::FileEntry>, Error> {
        Err(Error::NotSupported(
            "hello-extension keeps no per-model index".into(),
        ))
    }
    fn history(_model: ModelRef, _name: String) -> Result<Vec<models::FileVersion>, Error> {
        Err(Error::NotSupported(
            "hello-extension keeps no per-model index".into(),
        ))
    }
    fn put_file(
        _model: ModelRef,
        _name: String,
        _cache_path: String,
        _base: Base,
        _by: Committer,
    ) -> Result<models::FileVersion, Error> {
        Err(Error::NotSupported(
            "hello-extension keeps no per-model index".into(),
        ))
    }
    fn get_file(
        _model: ModelRef,
        _name: String,
        _version: Option<String>,
        _cache_path: String,
    ) -> Result<models::FileVersion, Error> {
        Err(Error::NotSupported(
            "hello-extension keeps no per-model index".into(),
        ))
    }
    fn remove_file(
        _model: ModelRef,
        _name: String,
        _base: Base,
        _by: Committer,
    ) -> Result<models::FileVersion, Error> {
        Err(Error::NotSupported(
            "hello-extension keeps no per-model index".into(),
        ))
    }
}

export!(Hello);
