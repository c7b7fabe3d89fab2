//! The partitioned index: one object per model at
//! `_index/data/<type>/<id>.json`, compared by its store version. Listing
//! the index is a LIST of `_index/data/` (a page per 1,000 models); reading
//! one model is one GET; nothing is shared between models.

use silt_extension::index_io;
use silt_extension::layout::DATA_AREA;
use silt_extension::silt::datastore::types::{Error, ModelRef};
use silt_extension::store;
use silt_extension::{Fresh, Listed};

/// The namespace lease's generation counter.
pub const NAMESPACE_FENCE_KEY: &str = "_meta/namespace-fence.json";
/// Prefix of every index partition.
pub const INDEX_PREFIX: &str = "_index/";

/// The index partition of `model`.
pub fn partition_key(model: &ModelRef) -> String {
    format!(
        "{INDEX_PREFIX}{DATA_AREA}/{}/{}.json",
        model.model_type, model.model_id
    )
}

/// The model of a partition key, or `None` for a foreign key.
pub fn parse_partition_key(key: &str) -> Option<ModelRef> {
    let rest = key
        .strip_prefix(INDEX_PREFIX)?
        .strip_prefix(DATA_AREA)?
        .strip_prefix('/')?
        .strip_suffix(".json")?;
    let (model_type, model_id) = rest.rsplit_once('/')?;
    Some(ModelRef {
        model_type: model_type.to_owned(),
        model_id: model_id.to_owned(),
    })
}

/// Reads the partition of `model` unless it is still at `known` (one conditional GET).
pub fn read_if_changed(model: &ModelRef, known: Option<&str>) -> Result<Fresh, Error> {
    index_io::read_object(&partition_key(model), DATA_AREA, model, known)
}

/// Reads the partitions of `models` whole, at once (one bulk download).
pub fn read_many(models: &[ModelRef]) -> Vec<Result<Fresh, Error>> {
    let wanted: Vec<(String, ModelRef)> = models
        .iter()
        .map(|model| (partition_key(model), model.clone()))
        .collect();
    index_io::read_objects(&wanted, DATA_AREA)
}

/// Every partition in the store, with its store version.
pub fn list() -> Result<Listed, Error> {
    let mut partitions = Listed::new();
    for meta in store::list_all(&format!("{INDEX_PREFIX}{DATA_AREA}/"))? {
        if let Some(model) = parse_partition_key(&meta.key) {
            partitions.insert(
                (model.model_type.clone(), model.model_id.clone()),
                (model, meta.version),
            );
        }
    }
    Ok(partitions)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The layout is the datastore's contract with every clone: the key a
    /// partition is written at reads back as its model, and a key of
    /// anything else as none. (`cargo test` runs this in wasm, through
    /// `silt extension test-runner`.)
    #[test]
    fn a_partition_key_reads_back_as_its_model() {
        let model = ModelRef {
            model_type: "vision/detector".to_owned(),
            model_id: "m-42".to_owned(),
        };
        let key = partition_key(&model);
        assert_eq!(key, "_index/data/vision/detector/m-42.json");
        let back = parse_partition_key(&key).expect("a partition key");
        assert_eq!(back.model_type, "vision/detector");
        assert_eq!(back.model_id, "m-42");
        for foreign in [
            "_index/data/notes.txt",
            "data/vision/detector/m-42.json",
            "_index/data/lonely.json",
        ] {
            assert!(parse_partition_key(foreign).is_none(), "{foreign}");
        }
    }
}
