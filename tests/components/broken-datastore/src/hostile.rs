//! Hostile calls, chosen by the project's setting `attack`
//! (`[extensions.config.broken-datastore] attack = "…"` in silt.toml):
//! the export every call goes through ([`Hostile`]) runs the attack named
//! there and hands everything else to [`Broken`]. `tests/containment.rs`
//! runs each through the real `silt` command, in process and out of process.
//!
//! | `attack` | what the extension does |
//! |---|---|
//! | `huge-file` | `hydrate-file` leaves a sparse 512 MiB file where the asked one goes, and `list-files` says each file is that size |
//! | `huge-get` | `put-file` uploads a 300 MiB object (from a sparse file), reads it whole with `get`, and fails with what it got |
//! | `orphan-counts` | `collect-orphans` reports more orphans deleted and kept than found |
//! | `host-records` | `put-file` tries to forge, read, delete and list the host's records (`_silt/`), and fails with what it could do |
//! | `idle-hydration` | `hydrate-scope` fetches nothing and says objects remain |
//! | `treadmill-hydration` | `hydrate-scope` fetches one object and says as many remain |
//! | `countdown-hydration` | `hydrate-scope` reads the index and says ever fewer (but nearly 2^64) objects remain |
//! | `slow-hydration` | `hydrate-scope` sleeps 4 s, then says everything is present |
//! | `link-in-the-way` | `put-file` downloads through `esc/` of its cache (where the test planted a link) and fails with the store error it got |
//! | `store-calls` | `put-file` makes small store calls for 4 s of wall time, then commits |
//! | `progress-flood` | `put-file` reports progress a million times, then commits |
//! | `panic` | `put-file` panics with a message of three lines |
//! | `unsent` | `put-file` of a sending (a file given, `.silt/send/`) commits other bytes of its cache instead, never sending the file |
//! | `many-models` | a dry-run `gc` names 1,000 models; a real one reports one call and the leases it got |

use silt_extension::exports::silt::datastore::{capabilities, hydration, locks, models, sync};
use silt_extension::layout;
use silt_extension::settings;
use silt_extension::silt::datastore::object_store::{self, DownloadItem, PutMode, UploadItem};
use silt_extension::silt::datastore::progress;
use silt_extension::silt::datastore::types::{
    Base, Committer, Error, Lease, LockInfo, LockScope, ModelRef, Scope,
};

use crate::Broken;

/// The size `huge-file` claims, and makes its sparse file.
const HUGE: u64 = 512 << 20;

/// The export: [`Broken`], with the attack the settings name.
pub struct Hostile;

fn attack() -> Option<String> {
    settings::get("attack")
}

fn attacking(name: &str) -> bool {
    attack().as_deref() == Some(name)
}

impl capabilities::Guest for Hostile {
    fn describe() -> capabilities::Description {
        <Broken as capabilities::Guest>::describe()
    }
}

impl locks::Guest for Hostile {
    fn acquire(scope: LockScope, options: locks::AcquireOptions) -> Result<Lease, Error> {
        <Broken as locks::Guest>::acquire(scope, options)
    }
    fn renew(lease: Lease) -> Result<Lease, Error> {
        <Broken as locks::Guest>::renew(lease)
    }
    fn release(lease: Lease) -> Result<(), Error> {
        <Broken as locks::Guest>::release(lease)
    }
    fn inspect(scope: LockScope) -> Result<Option<LockInfo>, Error> {
        <Broken as locks::Guest>::inspect(scope)
    }
    fn list() -> Result<Vec<LockInfo>, Error> {
        <Broken as locks::Guest>::list()
    }
    fn force_release(expected: LockInfo) -> Result<(), Error> {
        <Broken as locks::Guest>::force_release(expected)
    }
}

impl sync::Guest for Hostile {
    fn setup(options: sync::SetupOptions) -> Result<sync::SetupReport, Error> {
        <Broken as sync::Guest>::setup(options)
    }
    fn verify(scope: Scope) -> Result<Vec<sync::Finding>, Error> {
        <Broken as sync::Guest>::verify(scope)
    }
    fn pull_changed(options: sync::SyncOptions) -> Result<sync::SyncReport, Error> {
        <Broken as sync::Guest>::pull_changed(options)
    }
    fn push_changed(options: sync::SyncOptions) -> Result<sync::SyncReport, Error> {
        <Broken as sync::Guest>::push_changed(options)
    }
    fn status(scope: Scope) -> Result<sync::StatusReport, Error> {
        <Broken as sync::Guest>::status(scope)
    }
    fn gc(options: sync::GcOptions) -> Result<sync::GcReport, Error> {
        if !attacking("many-models") {
            return <Broken as sync::Guest>::gc(options);
        }
        if options.dry_run {
            let models = (0..1_000)
                .map(|n| ModelRef {
                    model_type: "attack".to_owned(),
                    model_id: format!("m-{n:04}"),
                })
                .collect();
            return Ok(sync::GcReport {
                models,
                entries_expired: 0,
                objects_deleted: 0,
                bytes_freed: 0,
            });
        }
        // One report a call: the host adds them up, so its total says how
        // many calls there were and how many leases they had in all.
        let models = match options.scope {
            Scope::Models(models) => models,
            Scope::All => Vec::new(),
        };
        Ok(sync::GcReport {
            models,
            entries_expired: 1,
            objects_deleted: options.leases.len() as u64,
            bytes_freed: 0,
        })
    }
    fn collect_orphans(options: sync::OrphanOptions) -> Result<sync::OrphanReport, Error> {
        if !attacking("orphan-counts") {
            return <Broken as sync::Guest>::collect_orphans(options);
        }
        Ok(sync::OrphanReport {
            found: 1,
            bytes_found: 10,
            deleted: 7,
            bytes_deleted: u64::MAX,
            kept: 9,
        })
    }
}

impl hydration::Guest for Hostile {
    fn hydrate_scope(
        models: Vec<ModelRef>,
        options: hydration::HydrateOptions,
    ) -> Result<hydration::HydrateReport, Error> {
        let idle = |remaining| hydration::HydrateReport {
            stats: silt_extension::hydrate::no_transfers(),
            objects_present: 0,
            objects_remaining: remaining,
            set_aside: Vec::new(),
        };
        match attack().as_deref() {
            Some("idle-hydration") => Ok(idle(5)),
            Some("treadmill-hydration") => {
                // A real GET each round, and never any closer to the end.
                for model in &models {
                    let _ = object_store::get(&crate::partition_key(model), None);
                }
                Ok(idle(5))
            }
            Some("countdown-hydration") => {
                // Real bytes each round, and a count that always goes down.
                for model in &models {
                    let _ = object_store::get(&crate::partition_key(model), None);
                }
                Ok(idle(u64::MAX - silt_extension::clock::now_ms()))
            }
            Some("slow-hydration") => {
                std::thread::sleep(std::time::Duration::from_secs(4));
                Ok(idle(0))
            }
            _ => <Broken as hydration::Guest>::hydrate_scope(models, options),
        }
    }
    fn hydrate_file(path: String) -> Result<hydration::HydrateReport, Error> {
        if !attacking("huge-file") {
            return <Broken as hydration::Guest>::hydrate_file(path);
        }
        // Sparse: no disk, and any size at all.
        let full = layout::in_cache(&path);
        if let Some((dir, _)) = full.rsplit_once('/') {
            std::fs::create_dir_all(dir)
                .map_err(|err| Error::InvalidInput(format!("cannot create {dir}: {err}")))?;
        }
        let file = std::fs::File::create(&full)
            .map_err(|err| Error::InvalidInput(format!("cannot create {path}: {err}")))?;
        file.set_len(HUGE)
            .map_err(|err| Error::InvalidInput(format!("cannot grow {path}: {err}")))?;
        Ok(hydration::HydrateReport {
            stats: silt_extension::hydrate::no_transfers(),
            objects_present: 1,
            objects_remaining: 0,
            set_aside: Vec::new(),
        })
    }
}

impl models::Guest for Hostile {
    fn list_models() -> Result<Vec<ModelRef>, Error> {
        <Broken as models::Guest>::list_models()
    }
    fn list_files(model: ModelRef) -> Result<Vec<models::FileEntry>, Error> {
        let mut files = <Broken as models::Guest>::list_files(model)?;
        if attacking("huge-file") {
            for file in &mut files {
                file.latest.size = HUGE;
            }
        }
        Ok(files)
    }
    fn history(model: ModelRef, name: String) -> Result<Vec<models::FileVersion>, Error> {
        <Broken as models::Guest>::history(model, name)
    }
    fn put_file(
        model: ModelRef,
        name: String,
        cache_path: String,
        base: Base,
        by: Committer,
    ) -> Result<models::FileVersion, Error> {
        match attack().as_deref() {
            Some("host-records") => return Err(Error::InvalidInput(host_records())),
            Some("huge-get") => return Err(Error::InvalidInput(huge_get())),
            Some("link-in-the-way") => return Err(Error::InvalidInput(link_in_the_way())),
            Some("store-calls") => store_calls(),
            Some("progress-flood") => {
                progress::begin("flood", None, None);
                for _ in 0..1_000_000 {
                    progress::advance(1, 1);
                }
                progress::finish();
            }
            Some("panic") => panic!("first line of the panic\nsecond line\nthird line"),
            Some("unsent") if cache_path.starts_with(".silt/send/") => {
                let other = "unsent.bin";
                std::fs::write(layout::in_cache(other), b"not the file given\n")
                    .map_err(|err| Error::InvalidInput(format!("cannot write {other}: {err}")))?;
                return <Broken as models::Guest>::put_file(
                    model,
                    name,
                    other.to_owned(),
                    base,
                    by,
                );
            }
            _ => {}
        }
        <Broken as models::Guest>::put_file(model, name, cache_path, base, by)
    }
    fn get_file(
        model: ModelRef,
        name: String,
        version: Option<String>,
        cache_path: String,
    ) -> Result<models::FileVersion, Error> {
        <Broken as models::Guest>::get_file(model, name, version, cache_path)
    }
    fn remove_file(
        model: ModelRef,
        name: String,
        base: Base,
        by: Committer,
    ) -> Result<models::FileVersion, Error> {
        <Broken as models::Guest>::remove_file(model, name, base, by)
    }
}

/// Uploads a 300 MiB object and reads it whole: what each answered.
fn huge_get() -> String {
    let made = std::fs::File::create(layout::in_cache("huge.bin"))
        .and_then(|file| file.set_len(300 << 20));
    if let Err(err) = made {
        return format!("cannot make huge.bin: {err}");
    }
    let uploaded = object_store::upload(&[UploadItem {
        cache_path: "huge.bin".to_owned(),
        key: "huge/object".to_owned(),
        mode: PutMode::Overwrite,
    }]);
    let uploaded = match uploaded.first() {
        Some(Ok(_)) => "ok".to_owned(),
        other => format!("{other:?}"),
    };
    let got = match object_store::get("huge/object", None) {
        Ok(_) => "the whole object".to_owned(),
        Err(err) => format!("{err:?}"),
    };
    format!("upload: {uploaded}; get: {got}")
}

/// What the store let this extension do to the host's own records, as
/// `key-space: put=… get=… delete=… list=…` (each `ok` or the error).
fn host_records() -> String {
    let outcome = |result: Result<(), object_store::StoreError>| match result {
        Ok(()) => "ok".to_owned(),
        Err(object_store::StoreError::InvalidKey(_)) => "invalid-key".to_owned(),
        Err(other) => format!("{other:?}"),
    };
    let forged = br#"{"extension":"partitioned-datastore","version":"9.9.9","layout":"forged/1"}"#;
    let mut said = Vec::new();
    for key in [
        "_silt/datastore.json",
        "_SILT/datastore.json",
        "_silt/unsafe-store.json",
    ] {
        let put = outcome(object_store::put(key, forged, &PutMode::Overwrite).map(|_| ()));
        let get = outcome(object_store::get(key, None).map(|_| ()));
        let delete = outcome(object_store::delete(key, None));
        said.push(format!("{key}: put={put} get={get} delete={delete}"));
    }
    let listed = outcome(object_store::list("_silt/", None, 100).map(|_| ()));
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        match object_store::list("", after.as_deref(), 100) {
            Ok(page) => {
                seen.extend(
                    page.items
                        .into_iter()
                        .map(|meta| meta.key)
                        .filter(|key| key.to_ascii_lowercase().starts_with("_silt/")),
                );
                match page.next_start_after {
                    Some(next) => after = Some(next),
                    None => break,
                }
            }
            Err(err) => {
                seen.push(format!("{err:?}"));
                break;
            }
        }
    }
    format!(
        "host records: {}; list _silt/={listed}; host keys in a listing of everything: {}",
        said.join("; "),
        seen.len()
    )
}

/// Downloads through `esc`, where the test planted a link out of the
/// cache: the store error the host answered, as the guest sees it.
fn link_in_the_way() -> String {
    let items = [DownloadItem {
        key: "_meta/datastore.json".to_owned(),
        cache_path: "esc/landed".to_owned(),
        expected_version: None,
        sha256: None,
    }];
    let answer = match object_store::download(&items).pop() {
        Some(Ok(_)) => "downloaded through the link".to_owned(),
        Some(Err(err)) => format!("{err:?}"),
        None => "no answer".to_owned(),
    };
    format!("download through the link: {answer}")
}

/// Small store calls for 4 s of wall time: nearly all of it store time.
fn store_calls() {
    let started = silt_extension::clock::now_ms();
    while silt_extension::clock::now_ms() < started + 4_000 {
        let _ = object_store::head("_meta/datastore.json");
    }
}
