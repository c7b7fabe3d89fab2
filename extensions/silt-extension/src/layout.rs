//! Where everything lives: keys in the store and paths in the cache, and the
//! rules for the names that go into them.
//!
//! Keys are relative to the datastore root, cache paths relative to the
//! preopened `/cache`; build both here rather than with `format!`, so that
//! every index kind and the working copy agree:
//!
//! ```no_run,standalone_crate
//! use silt_extension::layout::{self, DATA_AREA};
//! use silt_extension::silt::datastore::types::ModelRef;
//!
//! let model = ModelRef { model_type: "vision/detector".into(), model_id: "m-42".into() };
//! assert_eq!(layout::model_label(&model), "vision/detector/m-42");
//! assert_eq!(
//!     layout::object_key(DATA_AREA, &model, "weights.bin", "v7"),
//!     "data/vision/detector/m-42/weights.bin/v7",
//! );
//! assert_eq!(layout::working_path(&model, "weights.bin"), "data/vision/detector/m-42/weights.bin");
//! ```

use crate::silt::datastore::types::{Error, LockScope, ModelRef};

/// The newest layout this extension reads and writes: layout 1, plus every
/// commit announced in the change journal ([`crate::journal`]). A
/// datastore of an index kind without a journal stays at
/// [`LAYOUT_WITHOUT_JOURNAL`], which builds from before the journal read too;
/// those builds refuse this layout, so no writer that does not announce its
/// commits can write to a datastore whose readers rely on the journal.
///
/// ```no_run,standalone_crate
/// use silt_extension::layout::DATA_AREA;
/// use silt_extension::layout::LAYOUT_VERSION;
/// use silt_extension::partition::Partition;
/// # let model = silt_extension::silt::datastore::types::ModelRef { model_type: "vision/detector".into(), model_id: "m-42".into() };
///
/// assert_eq!(Partition::empty(DATA_AREA, &model).layout, LAYOUT_VERSION);
/// ```
pub const LAYOUT_VERSION: u32 = 2;

/// The layout of a datastore whose commits are not announced in a journal
/// (every datastore made before the journal existed, and index kinds
/// without one).
///
/// ```no_run,standalone_crate
/// use silt_extension::layout::{LAYOUT_VERSION, LAYOUT_WITHOUT_JOURNAL};
/// assert!(LAYOUT_WITHOUT_JOURNAL < LAYOUT_VERSION);
/// ```
pub const LAYOUT_WITHOUT_JOURNAL: u32 = 1;

/// Datastore metadata (layout version, retention).
///
/// ```no_run,standalone_crate
/// use silt_extension::{layout, store};
/// # fn main() -> Result<(), silt_extension::silt::datastore::types::Error> {
/// // A root that was never set up has no metadata object.
/// let set_up = store::get(layout::META_KEY)?.is_some();
/// # Ok(()) }
/// ```
pub const META_KEY: &str = "_meta/datastore.json";

/// Prefix of every lock.
///
/// ```no_run,standalone_crate
/// use silt_extension::{layout, store};
/// # fn main() -> Result<(), silt_extension::silt::datastore::types::Error> {
/// let locks = store::list_all(layout::LOCKS_PREFIX)?.len();
/// # Ok(()) }
/// ```
pub const LOCKS_PREFIX: &str = "_locks/";

/// The namespace lock.
///
/// ```no_run,standalone_crate
/// use silt_extension::{clock, layout, lock_object};
/// # fn main() -> Result<(), silt_extension::silt::datastore::types::Error> {
/// let now = clock::now_ms();
/// let structural_work = lock_object::read_lock(layout::NAMESPACE_LOCK_KEY)?
///     .filter(|current| !current.body.stale(now));
/// # Ok(()) }
/// ```
pub const NAMESPACE_LOCK_KEY: &str = "_locks/namespace.json";

/// Prefix of model locks.
///
/// ```no_run,standalone_crate
/// use silt_extension::{layout, lock_object};
/// # fn main() -> Result<(), silt_extension::silt::datastore::types::Error> {
/// // A namespace acquirer waits while any model lease is live.
/// if let Some(model_lock) = lock_object::first_live(layout::MODEL_LOCKS_PREFIX)? {
///     return Err(lock_object::held(&model_lock));
/// }
/// # Ok(()) }
/// ```
pub const MODEL_LOCKS_PREFIX: &str = "_locks/model/";

/// The area holding model files.
///
/// ```no_run,standalone_crate
/// use silt_extension::layout::DATA_AREA;
/// use silt_extension::partition::Partition;
/// # let model = silt_extension::silt::datastore::types::ModelRef { model_type: "vision/detector".into(), model_id: "m-42".into() };
/// let slice = Partition::empty(DATA_AREA, &model);
/// assert_eq!(slice.area, "data");
/// ```
pub const DATA_AREA: &str = "data";

/// The cache directory, as preopened by the host.
///
/// ```no_run,standalone_crate
/// use silt_extension::layout;
///
/// assert_eq!(layout::in_cache(".silt/state.json"), format!("{}/.silt/state.json", layout::CACHE_ROOT));
/// ```
pub const CACHE_ROOT: &str = "/cache";

/// silt's own files in the cache (sidecars); never part of a working copy.
///
/// ```no_run,standalone_crate
/// use silt_extension::{cache_file, layout};
/// # fn main() -> Result<(), silt_extension::silt::datastore::types::Error> {
/// // An index kind's own local state goes under it too.
/// let state = format!("{}/my-index/state.json", layout::CACHE_STATE_DIR);
/// cache_file::write_atomic(&state, b"{}")?;
/// # Ok(()) }
/// ```
pub const CACHE_STATE_DIR: &str = ".silt";

/// Checks one path segment: non-empty, printable, not `.`/`..`, no `\`.
fn check_segment(what: &str, whole: &str, segment: &str) -> Result<(), Error> {
    let bad = segment.is_empty()
        || segment == "."
        || segment == ".."
        || segment.contains('\\')
        || segment.chars().any(char::is_control);
    if bad {
        return Err(Error::InvalidInput(format!(
            "{what} `{whole}`: segments must be non-empty, printable, without `\\`, and not `.` or `..`"
        )));
    }
    Ok(())
}

/// Checks a model reference: a type of one or more `/`-separated segments,
/// an id of exactly one.
///
/// # Errors
/// `invalid-input` naming the model and the rule it breaks (also for a type
/// under [`CACHE_STATE_DIR`]).
///
/// ```no_run,standalone_crate
/// use silt_extension::layout;
/// use silt_extension::silt::datastore::types::ModelRef;
///
/// let model = |model_type: &str, model_id: &str| ModelRef {
///     model_type: model_type.into(),
///     model_id: model_id.into(),
/// };
/// assert!(layout::check_model(&model("vision/detector", "m-42")).is_ok());
/// assert!(layout::check_model(&model("vision/../secrets", "m-42")).is_err());
/// assert!(layout::check_model(&model("vision", "")).is_err());
/// ```
pub fn check_model(model: &ModelRef) -> Result<(), Error> {
    let whole = format!("{}/{}", model.model_type, model.model_id);
    for segment in model.model_type.split('/') {
        check_segment("model type", &whole, segment)?;
    }
    if model.model_id.contains('/') {
        return Err(Error::InvalidInput(format!(
            "model `{whole}`: the id (after the last `/`) must be one segment"
        )));
    }
    check_segment("model id", &whole, &model.model_id)?;
    if model.model_type.starts_with(CACHE_STATE_DIR) {
        return Err(Error::InvalidInput(format!(
            "model `{whole}`: `{CACHE_STATE_DIR}` is reserved"
        )));
    }
    Ok(())
}

/// Checks a file name within a model: a relative path.
///
/// # Errors
/// `invalid-input` for an empty segment, `.` or `..`, a `\` or a control
/// character, and for a name shaped like the host's temporary download
/// files (which a working-copy scan skips, so such a file could be put but
/// never pushed).
///
/// ```no_run,standalone_crate
/// use silt_extension::layout;
///
/// assert!(layout::check_name("weights/final.bin").is_ok());
/// assert!(layout::check_name("../outside").is_err());
/// assert!(layout::check_name("/etc/passwd").is_err()); // an empty first segment
/// assert!(layout::check_name(".w.bin.silt-tmp.42.1").is_err());
/// ```
pub fn check_name(name: &str) -> Result<(), Error> {
    for segment in name.split('/') {
        check_segment("file name", name, segment)?;
        if is_transfer_temp(segment) {
            return Err(Error::InvalidInput(format!(
                "file name `{name}`: `{segment}` is shaped like silt's temporary download files (`.<name>.silt-tmp.<n>`); choose another name"
            )));
        }
    }
    Ok(())
}

/// True when `a` and `b` name the same model.
///
/// ```no_run,standalone_crate
/// use silt_extension::layout;
/// use silt_extension::silt::datastore::types::{Lease, LockScope, ModelRef};
///
/// fn lease_of<'a>(leases: &'a [Lease], model: &ModelRef) -> Option<&'a Lease> {
///     leases.iter().find(|lease| {
///         matches!(&lease.scope, LockScope::Model(held) if layout::same_model(held, model))
///     })
/// }
/// ```
pub fn same_model(a: &ModelRef, b: &ModelRef) -> bool {
    a.model_type == b.model_type && a.model_id == b.model_id
}

/// `type/id`, as users write it.
///
/// ```no_run,standalone_crate
/// # let model = silt_extension::silt::datastore::types::ModelRef { model_type: "vision/detector".into(), model_id: "m-42".into() };
/// assert_eq!(silt_extension::layout::model_label(&model), "vision/detector/m-42");
/// ```
pub fn model_label(model: &ModelRef) -> String {
    format!("{}/{}", model.model_type, model.model_id)
}

/// Where every object of `model` in `area` lives: `<area>/<type>/<id>/`.
///
/// The content layout is this function, [`object_key`] (one version under
/// it) and [`models_of_key`] (the way back, for the orphan listing): every
/// upload, download, gc, `verify` and orphan check goes through these
/// three, so a layout change is made here, in all three together. The unit
/// test below and the contract suite's "verify and the orphan listing"
/// check fail a layout where they disagree.
///
/// ```no_run,standalone_crate
/// use silt_extension::layout::{self, DATA_AREA};
/// # let model = silt_extension::silt::datastore::types::ModelRef { model_type: "vision/detector".into(), model_id: "m-42".into() };
/// assert_eq!(layout::model_prefix(DATA_AREA, &model), "data/vision/detector/m-42/");
/// ```
pub fn model_prefix(area: &str, model: &ModelRef) -> String {
    format!("{area}/{}/{}/", model.model_type, model.model_id)
}

/// Where one version of a file's content lives: under [`model_prefix`].
/// Never overwritten: the version token is fresh for every commit.
///
/// ```no_run,standalone_crate
/// use silt_extension::clock;
/// use silt_extension::layout::{self, DATA_AREA};
/// # let model = silt_extension::silt::datastore::types::ModelRef { model_type: "vision/detector".into(), model_id: "m-42".into() };
/// // Upload a new version under a key nobody has used.
/// let key = layout::object_key(DATA_AREA, &model, "weights.bin", &clock::version_token());
/// assert!(key.starts_with("data/vision/detector/m-42/weights.bin/"));
/// ```
pub fn object_key(area: &str, model: &ModelRef, name: &str, version: &str) -> String {
    format!("{}{name}/{version}", model_prefix(area, model))
}

/// The models an object key of `area` could belong to (a type may hold
/// `/`, so a key has several readings): the way back from [`object_key`].
///
/// ```no_run,standalone_crate
/// use silt_extension::layout::{self, DATA_AREA};
///
/// let models = layout::models_of_key(DATA_AREA, "data/vision/detector/m-1/w.bin/v1");
/// assert_eq!(models.len(), 2); // vision:detector (name m-1/w.bin), vision/detector:m-1
/// ```
pub fn models_of_key(area: &str, key: &str) -> Vec<ModelRef> {
    let Some(rest) = key.strip_prefix(&format!("{area}/")) else {
        return Vec::new();
    };
    let segments: Vec<&str> = rest.split('/').collect();
    // type (≥ 1 segment), id (1), name (≥ 1), version (1).
    (1..segments.len().saturating_sub(2))
        .map(|id_at| ModelRef {
            model_type: segments[..id_at].join("/"),
            model_id: segments[id_at].to_owned(),
        })
        .collect()
}

/// Every object of `area` is under this prefix: what a listing of
/// everything (the orphan listing, `verify` of all) scans.
///
/// ```no_run,standalone_crate
/// use silt_extension::layout::{self, DATA_AREA};
/// assert_eq!(layout::area_prefix(DATA_AREA), "data/");
/// ```
pub fn area_prefix(area: &str) -> String {
    format!("{area}/")
}

/// The lock object of a scope.
///
/// # Errors
/// `invalid-input` for a model that fails [`check_model`]; `not-supported`
/// for [`LockScope::Global`] (an extension sees one namespace).
///
/// ```no_run,standalone_crate
/// use silt_extension::layout;
/// use silt_extension::silt::datastore::types::{LockScope, ModelRef};
/// # fn main() -> Result<(), silt_extension::silt::datastore::types::Error> {
/// let model = ModelRef { model_type: "vision/detector".into(), model_id: "m-42".into() };
/// let key = layout::lock_key(&LockScope::Model(model))?;
/// assert_eq!(key, "_locks/model/vision/detector/m-42.json");
/// assert_eq!(layout::lock_key(&LockScope::Namespace)?, layout::NAMESPACE_LOCK_KEY);
/// # Ok(()) }
/// ```
pub fn lock_key(scope: &LockScope) -> Result<String, Error> {
    match scope {
        LockScope::Model(model) => {
            check_model(model)?;
            Ok(format!(
                "{MODEL_LOCKS_PREFIX}{}/{}.json",
                model.model_type, model.model_id
            ))
        }
        LockScope::Namespace => Ok(NAMESPACE_LOCK_KEY.to_owned()),
        LockScope::Global => Err(Error::NotSupported(
            "global locks: this extension sees one namespace; use the namespace lock".to_owned(),
        )),
    }
}

/// The model's working directory, relative to the cache.
///
/// ```no_run,standalone_crate
/// # let model = silt_extension::silt::datastore::types::ModelRef { model_type: "vision/detector".into(), model_id: "m-42".into() };
/// let dir = silt_extension::layout::working_dir(&model);
/// assert_eq!(dir, "data/vision/detector/m-42");
/// ```
pub fn working_dir(model: &ModelRef) -> String {
    format!("{DATA_AREA}/{}/{}", model.model_type, model.model_id)
}

/// A file of the model's working copy, relative to the cache.
///
/// ```no_run,standalone_crate
/// use silt_extension::{cache_file, layout};
/// # let model = silt_extension::silt::datastore::types::ModelRef { model_type: "vision/detector".into(), model_id: "m-42".into() };
/// let path = layout::working_path(&model, "weights.bin");
/// assert_eq!(path, "data/vision/detector/m-42/weights.bin");
/// let present = cache_file::stat(&path).is_some();
/// ```
pub fn working_path(model: &ModelRef, name: &str) -> String {
    format!("{}/{name}", working_dir(model))
}

/// The sidecar of a partition, relative to the cache.
///
/// ```no_run,standalone_crate
/// use silt_extension::layout::{self, DATA_AREA};
/// # let model = silt_extension::silt::datastore::types::ModelRef { model_type: "vision/detector".into(), model_id: "m-42".into() };
/// assert_eq!(
///     layout::sidecar_path(DATA_AREA, &model),
///     ".silt/index/data/vision/detector/m-42.json",
/// );
/// ```
pub fn sidecar_path(area: &str, model: &ModelRef) -> String {
    format!(
        "{CACHE_STATE_DIR}/index/{area}/{}/{}.json",
        model.model_type, model.model_id
    )
}

/// The summary of the sidecars of `area` (model → version), relative to the cache.
///
/// ```no_run,standalone_crate
/// use silt_extension::layout::{self, DATA_AREA};
///
/// assert_eq!(layout::summary_path(DATA_AREA), ".silt/index/data.versions.json");
/// ```
pub fn summary_path(area: &str) -> String {
    format!("{CACHE_STATE_DIR}/index/{area}.versions.json")
}

/// An absolute path inside the preopened cache directory.
///
/// ```no_run,standalone_crate
/// use silt_extension::layout;
///
/// // `std::fs` needs absolute paths; keys and sidecar paths are relative.
/// let state = std::fs::read(layout::in_cache(".silt/my-index/state.json")).ok();
/// ```
pub fn in_cache(relative: &str) -> String {
    format!("{CACHE_ROOT}/{relative}")
}

/// True for the host's in-flight download files (`.<name>.silt-tmp.*`).
///
/// ```no_run,standalone_crate
/// use silt_extension::layout;
///
/// assert!(layout::is_transfer_temp(".weights.bin.silt-tmp.3f9a"));
/// assert!(!layout::is_transfer_temp("weights.bin"));
/// ```
pub fn is_transfer_temp(file_name: &str) -> bool {
    file_name.starts_with('.') && file_name.contains(".silt-tmp.")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model(model_type: &str, model_id: &str) -> ModelRef {
        ModelRef {
            model_type: model_type.to_owned(),
            model_id: model_id.to_owned(),
        }
    }

    /// The message of an `invalid-input` refusal; panics on anything else.
    fn refusal(what: &str, result: Result<(), Error>) -> String {
        match result {
            Err(Error::InvalidInput(message)) => message,
            other => panic!("{what:?}: expected invalid-input, got {other:?}"),
        }
    }

    #[test]
    fn keys_and_paths_put_area_type_id_name_and_version_where_the_layout_says() {
        let detector = model("vision/detector", "m-42");
        assert_eq!(model_label(&detector), "vision/detector/m-42");
        assert_eq!(
            object_key(DATA_AREA, &detector, "eval/report.json", "v7"),
            "data/vision/detector/m-42/eval/report.json/v7"
        );
        assert_eq!(
            object_key("runs", &detector, "w.bin", "v7"),
            "runs/vision/detector/m-42/w.bin/v7"
        );
        assert_eq!(working_dir(&detector), "data/vision/detector/m-42");
        assert_eq!(
            working_path(&detector, "eval/report.json"),
            "data/vision/detector/m-42/eval/report.json"
        );
        assert_eq!(
            sidecar_path("runs", &detector),
            ".silt/index/runs/vision/detector/m-42.json"
        );
        assert_eq!(summary_path(DATA_AREA), ".silt/index/data.versions.json");
        assert_eq!(
            in_cache(&working_path(&detector, "w.bin")),
            "/cache/data/vision/detector/m-42/w.bin"
        );
        // Names are used as they are: no escaping of spaces or non-ASCII.
        let odd = model("vision/détecteur", "m 42");
        assert_eq!(
            working_path(&odd, "ü ☃.bin"),
            "data/vision/détecteur/m 42/ü ☃.bin"
        );
    }

    #[test]
    fn every_object_key_is_under_its_model_prefix_and_maps_back_to_its_model() {
        for (model_type, id, name) in [
            ("vision/detector", "m-42", "eval/report.json"),
            ("t", "m", "w.bin"),
            ("a/b/c", "x", "deep/er/name"),
        ] {
            let model = model(model_type, id);
            for area in [DATA_AREA, "runs"] {
                let key = object_key(area, &model, name, "1795978058675-8eac3c5b");
                assert!(key.starts_with(&model_prefix(area, &model)), "{key}");
                assert!(key.starts_with(&area_prefix(area)), "{key}");
                assert!(
                    models_of_key(area, &key)
                        .iter()
                        .any(|found| same_model(found, &model)),
                    "{key} maps back to {model_type}/{id}"
                );
            }
        }
        assert!(models_of_key(DATA_AREA, "runs/t/m/w.bin/v1").is_empty());
    }

    #[test]
    fn lock_keys_name_the_scope_and_refuse_global_and_malformed_models() {
        assert_eq!(
            lock_key(&LockScope::Model(model("vision/detector", "m-42"))).unwrap(),
            "_locks/model/vision/detector/m-42.json"
        );
        assert_eq!(lock_key(&LockScope::Namespace).unwrap(), NAMESPACE_LOCK_KEY);
        // A lock, but not a model lock: listing the model locks never finds it.
        assert!(NAMESPACE_LOCK_KEY.starts_with(LOCKS_PREFIX));
        assert!(!NAMESPACE_LOCK_KEY.starts_with(MODEL_LOCKS_PREFIX));
        assert!(MODEL_LOCKS_PREFIX.starts_with(LOCKS_PREFIX));

        match lock_key(&LockScope::Global) {
            Err(Error::NotSupported(_)) => {}
            other => panic!("expected not-supported, got {other:?}"),
        }
        // A model that could climb out of `_locks/model/` gets no key.
        for bad in [
            model("..", "m-42"),
            model("vision", ".."),
            model("a", "b/c"),
        ] {
            match lock_key(&LockScope::Model(bad)) {
                Err(Error::InvalidInput(_)) => {}
                other => panic!("expected invalid-input, got {other:?}"),
            }
        }
    }

    #[test]
    fn a_model_has_a_type_of_one_or_more_segments_and_an_id_of_one() {
        let accepted = [
            ("vision/detector", "m-42"),
            ("a", "b"),
            ("vision/détecteur/ü", "m 42 ☃"),
            ("a", "..."),
            // `.silt` is reserved at the start of a type only.
            ("x/.silt", "m-42"),
        ];
        for (model_type, model_id) in accepted {
            assert!(
                check_model(&model(model_type, model_id)).is_ok(),
                "{model_type}/{model_id}"
            );
        }

        let refused = [
            ("", "m-42"),
            ("/vision", "m-42"),
            ("vision/", "m-42"),
            ("vision//detector", "m-42"),
            ("vision/.", "m-42"),
            ("vision/..", "m-42"),
            ("vision\\detector", "m-42"),
            ("vision\u{0}", "m-42"),
            ("vision/detector", ""),
            ("vision/detector", "."),
            ("vision/detector", ".."),
            ("vision/detector", "m\n42"),
            ("vision/detector", "m\u{7f}"),
            ("vision/detector", "x/y"),
            ("vision/detector", "/"),
            (".silt", "m-42"),
            (".silt/index", "m-42"),
        ];
        for (model_type, model_id) in refused {
            refusal(
                &format!("{model_type}/{model_id}"),
                check_model(&model(model_type, model_id)),
            );
        }
    }

    #[test]
    fn a_refused_model_is_named_with_the_rule_it_breaks() {
        assert_eq!(
            refusal("..", check_model(&model("vision/../secrets", "m-42"))),
            "model type `vision/../secrets/m-42`: segments must be non-empty, printable, without `\\`, and not `.` or `..`"
        );
        assert_eq!(
            refusal("id", check_model(&model("vision", ".."))),
            "model id `vision/..`: segments must be non-empty, printable, without `\\`, and not `.` or `..`"
        );
        assert_eq!(
            refusal("slash", check_model(&model("vision", "detector/m-42"))),
            "model `vision/detector/m-42`: the id (after the last `/`) must be one segment"
        );
        assert_eq!(
            refusal("state", check_model(&model(".silt/index", "m-42"))),
            "model `.silt/index/m-42`: `.silt` is reserved"
        );
    }

    #[test]
    fn a_file_name_is_a_relative_path_of_printable_segments_and_no_download_temp() {
        let accepted = [
            "weights.bin",
            "weights/final.bin",
            "a b/ü ☃.txt",
            ".hidden",
            "...",
            // Not the temporary shape: no trailing dot, or no leading one.
            ".silt-tmp",
            "w.bin.silt-tmp.1.2",
        ];
        for name in accepted {
            assert!(check_name(name).is_ok(), "{name}");
        }

        let refused = [
            "",
            "/etc/passwd",
            "dir/",
            "a//b",
            ".",
            "./a",
            "a/./b",
            "..",
            "../outside",
            "a/..",
            "a\\b",
            "tab\there",
            "nul\u{0}",
            ".w.bin.silt-tmp.42.1",
            "dir/.x.silt-tmp.1.2",
            // A directory of that shape too: the scan skips it whole.
            ".d.silt-tmp.1/file",
        ];
        for name in refused {
            refusal(name, check_name(name));
        }

        assert_eq!(
            refusal("..", check_name("../outside")),
            "file name `../outside`: segments must be non-empty, printable, without `\\`, and not `.` or `..`"
        );
        assert_eq!(
            refusal("temp", check_name("dir/.x.silt-tmp.1.2")),
            "file name `dir/.x.silt-tmp.1.2`: `.x.silt-tmp.1.2` is shaped like silt's temporary download files (`.<name>.silt-tmp.<n>`); choose another name"
        );
    }

    #[test]
    fn a_transfer_temp_has_a_leading_dot_and_the_marker() {
        assert!(is_transfer_temp(".weights.bin.silt-tmp.3f9a"));
        assert!(is_transfer_temp(".weights.bin.silt-tmp.4242.7"));
        assert!(is_transfer_temp(".a.silt-tmp.b.silt-tmp.17.0"));
        assert!(!is_transfer_temp("weights.bin.silt-tmp.4242.7"));
        assert!(!is_transfer_temp(".weights.bin"));
        assert!(!is_transfer_temp(".weights.bin.silt-tmp"));
        assert!(!is_transfer_temp(".weights.bin.SILT-TMP.1"));
        assert!(!is_transfer_temp(""));
    }

    #[test]
    fn same_model_compares_type_and_id_not_the_label() {
        let detector = model("vision/detector", "m-42");
        let split_elsewhere = model("vision", "detector/m-42");
        // The label alone cannot tell these apart (check_model refuses the second).
        assert_eq!(model_label(&detector), model_label(&split_elsewhere));
        assert!(!same_model(&detector, &split_elsewhere));
        assert!(same_model(&detector, &model("vision/detector", "m-42")));
        assert!(!same_model(&detector, &model("vision/detector", "M-42")));
        assert!(!same_model(&detector, &model("vision/detectors", "m-42")));
    }
}
