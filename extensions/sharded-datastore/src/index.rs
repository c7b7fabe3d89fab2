//! The sharded index: one shard per model (`_index/shards/<type>/<id>.json`,
//! a slice of the index, compared by its store version) and the index's
//! metadata, `_index/_meta.json`: every shard's model and the commit
//! sequence number, bumped by every commit.
//!
//! The local state (`/cache/.silt/sharded/state.json`) holds the last
//! `commitSeq` seen and the listing that went with it, so that "has
//! anything changed?" is one GET of `_index/_meta.json`.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use silt_extension::cache_file;
use silt_extension::index_io;
use silt_extension::layout::{self, DATA_AREA};
use silt_extension::partition;
use silt_extension::silt::datastore::object_store::{self, PutMode};
use silt_extension::silt::datastore::types::{Error, ModelRef};
use silt_extension::{Fresh, Listed, store};

/// The index's metadata object.
pub const META_KEY: &str = "_index/_meta.json";
/// Prefix of every shard.
const SHARDS_PREFIX: &str = "_index/shards/";
/// The local state, relative to the cache.
const STATE_PATH: &str = ".silt/sharded/state.json";

/// `_index/_meta.json`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct IndexMeta {
    /// The metadata's format.
    pub version: u32,
    /// Every model with a shard, as `type/id`.
    pub partitions: BTreeSet<String>,
    /// Bumped by every commit.
    #[serde(rename = "commitSeq")]
    pub commit_seq: u64,
}

/// The local state: the sequence last seen and its listing.
#[derive(Debug, Default, Serialize, Deserialize)]
struct State {
    commit_seq: u64,
    /// `type/id` → (type, id, shard version).
    listing: BTreeMap<String, (String, String, String)>,
}

/// The shard of `model`.
pub fn shard_key(model: &ModelRef) -> String {
    format!(
        "{SHARDS_PREFIX}{}/{}.json",
        model.model_type, model.model_id
    )
}

/// The model of a shard key, or `None` for a foreign key.
fn parse_shard_key(key: &str) -> Option<ModelRef> {
    let rest = key.strip_prefix(SHARDS_PREFIX)?.strip_suffix(".json")?;
    let (model_type, model_id) = rest.rsplit_once('/')?;
    Some(ModelRef {
        model_type: model_type.to_owned(),
        model_id: model_id.to_owned(),
    })
}

/// The model of a `type/id` label.
pub fn model_of(label: &str) -> Option<ModelRef> {
    let (model_type, model_id) = label.rsplit_once('/')?;
    Some(ModelRef {
        model_type: model_type.to_owned(),
        model_id: model_id.to_owned(),
    })
}

/// Reads the shard of `model` unless it is still at `known` (one conditional GET).
pub fn read_if_changed(model: &ModelRef, known: Option<&str>) -> Result<Fresh, Error> {
    index_io::read_object(&shard_key(model), DATA_AREA, model, known)
}

/// Reads `_index/_meta.json` (empty before the first commit).
pub fn read_meta() -> Result<IndexMeta, Error> {
    match store::get(META_KEY)? {
        Some(found) => {
            serde_json::from_slice(&found.data).map_err(|err| store::corrupt(META_KEY, err))
        }
        None => Ok(IndexMeta {
            version: 2,
            ..IndexMeta::default()
        }),
    }
}

/// Writes `_index/_meta.json` with a plain PUT (the global lock protects it).
pub fn write_meta(meta: &IndexMeta) -> Result<(), Error> {
    let body = serde_json::to_vec(meta).expect("the index metadata serializes");
    object_store::put(META_KEY, &body, &PutMode::Overwrite)
        .map(|_| ())
        .map_err(|err| store::error(META_KEY, err))
}

/// Writes a shard with a plain PUT (the global lock protects it); returns
/// its new store version.
pub fn write_shard(model: &ModelRef, shard: &partition::Partition) -> Result<String, Error> {
    let key = shard_key(model);
    object_store::put(&key, &shard.to_bytes(), &PutMode::Overwrite)
        .map_err(|err| store::error(&key, err))
}

fn load_state() -> State {
    std::fs::read(layout::in_cache(STATE_PATH))
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .unwrap_or_default()
}

/// Every model with its shard version: the remembered listing when one GET
/// of `_index/_meta.json` shows the same `commitSeq`, else a listing of the
/// shards (remembered with the sequence).
pub fn list() -> Result<Listed, Error> {
    let meta = read_meta()?;
    let state = load_state();
    let listing = if meta.commit_seq != 0 && meta.commit_seq == state.commit_seq {
        state.listing
    } else {
        let mut listing = BTreeMap::new();
        for object in store::list_all(SHARDS_PREFIX)? {
            if let Some(model) = parse_shard_key(&object.key) {
                listing.insert(
                    layout::model_label(&model),
                    (model.model_type, model.model_id, object.version),
                );
            }
        }
        let state = State {
            commit_seq: meta.commit_seq,
            listing,
        };
        cache_file::write_atomic(
            STATE_PATH,
            &serde_json::to_vec(&state).expect("state serializes"),
        )?;
        state.listing
    };
    Ok(listing
        .into_values()
        .map(|(model_type, model_id, version)| {
            let model = ModelRef {
                model_type: model_type.clone(),
                model_id: model_id.clone(),
            };
            ((model_type, model_id), (model, version))
        })
        .collect())
}
