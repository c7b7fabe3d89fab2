//! The monolithic index: every model's slice in one object,
//! `_index/index.json`, read and written whole.
//!
//! The local copy (`/cache/.silt/monolith/`) keeps the last index read, by
//! its store version, and a small state file with that version and every
//! model's slice version, so that "has anything changed?" is one HEAD.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::io::{BufReader, BufWriter, Write};
use std::rc::Rc;

use serde::{Deserialize, Serialize};
use silt_extension::cache_file;
use silt_extension::layout::{self, DATA_AREA};
use silt_extension::partition::{Partition, Versioned};
use silt_extension::silt::datastore::object_store::{
    self, DownloadItem, PutMode, StoreError, UploadItem,
};
use silt_extension::silt::datastore::types::{Error, ModelRef};
use silt_extension::{Listed, clock, store};

/// The one index object.
pub const INDEX_KEY: &str = "_index/index.json";
/// Where the local copy lives, relative to the cache.
const LOCAL_DIR: &str = ".silt/monolith";
/// The local state: version of the local copy and the listing.
const STATE_PATH: &str = ".silt/monolith/state.json";

/// The index as stored.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Whole {
    /// Commits so far.
    pub seq: u64,
    /// Every model's slice, by `type/id`.
    pub models: BTreeMap<String, Partition>,
}

/// A model in the listing: its slice's version (the slice's commit count).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct ListedModel {
    model_type: String,
    model_id: String,
    version: String,
}

/// What the local copy is.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct State {
    /// Store version of the local copy.
    version: Option<String>,
    /// The local copy's file, relative to the cache.
    copy: Option<String>,
    /// Every model in the local copy, by `type/id`.
    listing: BTreeMap<String, ListedModel>,
}

thread_local! {
    /// The index as read by this call (each call runs in a fresh instance).
    static LOADED: RefCell<Option<Rc<Whole>>> = const { RefCell::new(None) };
}

/// The version a model's slice has: its commit count.
fn slice_version(slice: &Partition) -> String {
    slice.seq.to_string()
}

fn load_state() -> State {
    std::fs::read(layout::in_cache(STATE_PATH))
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .unwrap_or_default()
}

/// Every model of `whole` with its slice version.
fn listing(whole: &Whole) -> BTreeMap<String, ListedModel> {
    whole
        .models
        .iter()
        .map(|(label, slice)| {
            (
                label.clone(),
                ListedModel {
                    model_type: slice.model_type.clone(),
                    model_id: slice.model_id.clone(),
                    version: slice_version(slice),
                },
            )
        })
        .collect()
}

fn save_state(whole: &Whole, version: &str, copy: &str) -> Result<(), Error> {
    let state = State {
        version: Some(version.to_owned()),
        copy: Some(copy.to_owned()),
        listing: listing(whole),
    };
    cache_file::write_atomic(
        STATE_PATH,
        &serde_json::to_vec(&state).expect("state serializes"),
    )
}

/// The local copy's file for one store version (a fresh name per version,
/// so a reader never parses a copy under another version's name).
fn copy_path() -> String {
    format!("{LOCAL_DIR}/index-{}.json", &clock::random_hex()[..16])
}

fn parse(path: &str) -> Result<Whole, Error> {
    let file = std::fs::File::open(layout::in_cache(path))
        .map_err(|err| Error::InvalidInput(format!("cache {path}: {err}")))?;
    let whole: Whole = serde_json::from_reader(BufReader::with_capacity(1 << 20, file))
        .map_err(|err| store::corrupt(INDEX_KEY, err))?;
    for (label, slice) in &whole.models {
        if format!("{}/{}", slice.model_type, slice.model_id) != *label || slice.area != DATA_AREA {
            return Err(store::corrupt(
                INDEX_KEY,
                format!(
                    "the entry for {label} describes {}/{}",
                    slice.model_type, slice.model_id
                ),
            ));
        }
        if slice.files.values().any(Vec::is_empty) {
            return Err(store::corrupt(
                INDEX_KEY,
                format!("{label}: a name with no versions"),
            ));
        }
    }
    Ok(whole)
}

/// The store version of the index, or `None` when there is none yet.
fn head() -> Result<Option<String>, Error> {
    match object_store::head(INDEX_KEY) {
        Ok(meta) => Ok(Some(meta.version)),
        Err(StoreError::NotFound) => Ok(None),
        Err(err) => Err(store::error(INDEX_KEY, err)),
    }
}

/// Reads the whole index: one HEAD, then the local copy if it is current,
/// else a download of the whole object. Always from the store (not the
/// call's memo): commits use this under the namespace lock.
pub fn pull() -> Result<Whole, Error> {
    pull_at(head()?)
}

/// [`pull`], given the version a HEAD just returned (`None`: no index yet).
fn pull_at(mut seen: Option<String>) -> Result<Whole, Error> {
    for _ in 0..8 {
        let Some(version) = seen else {
            return Ok(Whole::default());
        };
        let state = load_state();
        if state.version.as_deref() == Some(version.as_str())
            && let Some(copy) = &state.copy
            && let Ok(whole) = parse(copy)
        {
            return Ok(whole);
        }
        let copy = copy_path();
        let item = DownloadItem {
            key: INDEX_KEY.to_owned(),
            cache_path: copy.clone(),
            expected_version: Some(version.clone()),
            sha256: None,
        };
        match object_store::download(&[item]).remove(0) {
            Ok(_) => {}
            // Replaced between the HEAD and the download: look again.
            Err(StoreError::PreconditionFailed | StoreError::NotFound) => {
                seen = head()?;
                continue;
            }
            Err(err) => return Err(store::error(INDEX_KEY, err)),
        }
        let whole = parse(&copy)?;
        replace_copy(&state, &whole, &version, &copy)?;
        return Ok(whole);
    }
    Err(Error::PreconditionFailed(format!(
        "{INDEX_KEY}: replaced on every read; try again"
    )))
}

/// Records `copy` as the local copy at `version` and removes the previous one.
fn replace_copy(previous: &State, whole: &Whole, version: &str, copy: &str) -> Result<(), Error> {
    save_state(whole, version, copy)?;
    if let Some(old) = &previous.copy
        && old != copy
    {
        let _ = std::fs::remove_file(layout::in_cache(old));
    }
    Ok(())
}

/// The index as this call has read it (read once per call). `version`
/// gives the store version to start from: a HEAD, or one just seen.
fn loaded(version: impl FnOnce() -> Result<Option<String>, Error>) -> Result<Rc<Whole>, Error> {
    if let Some(whole) = LOADED.with_borrow(Clone::clone) {
        return Ok(whole);
    }
    let whole = Rc::new(pull_at(version()?)?);
    LOADED.with_borrow_mut(|memo| *memo = Some(whole.clone()));
    Ok(whole)
}

/// One model's slice, from the whole index.
pub fn read(model: &ModelRef) -> Result<Versioned, Error> {
    let whole = loaded(head)?;
    Ok(match whole.models.get(&layout::model_label(model)) {
        Some(slice) => Versioned {
            partition: slice.clone(),
            version: Some(slice_version(slice)),
        },
        None => Versioned {
            partition: Partition::empty(DATA_AREA, model),
            version: None,
        },
    })
}

/// Every model with its slice version: from the local state when one HEAD
/// says the index has not changed, else from the whole index.
pub fn list() -> Result<Listed, Error> {
    let version = head()?;
    if version.is_none() {
        return Ok(Listed::new());
    }
    let state = load_state();
    let listing = if state.version == version {
        state.listing
    } else {
        listing(&*loaded(|| Ok(version))?)
    };
    Ok(listing
        .into_values()
        .map(|listed| {
            let model = ModelRef {
                model_type: listed.model_type,
                model_id: listed.model_id,
            };
            (
                (model.model_type.clone(), model.model_id.clone()),
                (model, listed.version),
            )
        })
        .collect())
}

/// Writes the whole index back, unconditionally (as today's datastores do:
/// the namespace lock is all that protects it). Returns the new version.
pub fn push(whole: &Whole) -> Result<String, Error> {
    let copy = copy_path();
    let full = layout::in_cache(&copy);
    std::fs::create_dir_all(layout::in_cache(LOCAL_DIR))
        .map_err(|err| Error::InvalidInput(format!("cache {LOCAL_DIR}: {err}")))?;
    let written = std::fs::File::create(&full).and_then(|file| {
        let mut writer = BufWriter::with_capacity(1 << 20, file);
        serde_json::to_writer(&mut writer, whole).map_err(std::io::Error::other)?;
        writer.flush()
    });
    if let Err(err) = written {
        let _ = std::fs::remove_file(&full);
        return Err(Error::InvalidInput(format!("cache {copy}: {err}")));
    }
    let item = UploadItem {
        cache_path: copy.clone(),
        key: INDEX_KEY.to_owned(),
        mode: PutMode::Overwrite,
    };
    let version = match object_store::upload(&[item]).remove(0) {
        Ok(version) => version,
        Err(err) => {
            let _ = std::fs::remove_file(&full);
            return Err(store::error(INDEX_KEY, err));
        }
    };
    replace_copy(&load_state(), whole, &version, &copy)?;
    LOADED.with_borrow_mut(|memo| *memo = None);
    Ok(version)
}
