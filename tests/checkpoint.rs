//! The index checkpoint (partitioned-datastore): the first full clone of a
//! datastore of many models reads every partition and leaves a checkpoint;
//! the next fresh clone lists the partitions and takes every slice the
//! checkpoint holds at the listed version from it, in a few requests; and
//! whatever becomes of the checkpoint — missing, truncated, corrupt, chunks
//! gone, hours old, its writer killed before the manifest — a fresh clone
//! still equals one made from the partitions, file by file.

use std::collections::BTreeMap;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use sha2::{Digest, Sha256};
use silt::store::{ObjectKey, ObjectStore, PutMode};
use silt_extension::partition::{Entry, Partition};

use super::support::pausing_proxy::{Hold, Trap, trapped_clone};
use super::support::project::{Backend, Project};

/// More than a full check reads before it writes a checkpoint (128).
const MODELS: usize = 160;
const FILES: usize = 2;

/// The ids of the models: `m0000`, `m0001`, ..., with three among them
/// whose label ends a chunk's run (its SHA-256's eighth byte is 0), so
/// that the checkpoint has at least three chunks (about one label in 256
/// ends a run).
fn model_ids() -> &'static [String] {
    static IDS: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    IDS.get_or_init(|| {
        let id = |i: usize| format!("m{i:04}");
        let ends_a_run = |i: &usize| Sha256::digest(format!("t/{}", id(*i)).as_bytes())[7] == 0;
        let cuts: Vec<usize> = (0..).filter(ends_a_run).take(3).collect();
        let mut ids: Vec<usize> = (0..)
            .filter(|i| !cuts.contains(i))
            .take(MODELS - 3)
            .collect();
        ids.extend(&cuts);
        ids.sort();
        ids.into_iter().map(id).collect()
    })
}

fn model_name(i: usize) -> String {
    format!("t/{}", model_ids()[i])
}

/// Writes the index and data of `MODELS` models of `FILES` files straight
/// through the store, as their commits would have left them an hour ago
/// (pushing 160 models through the extension would take minutes).
fn populate(project: &Project) {
    let store = project.root_store();
    let long_ago = silt_extension::clock::now_ms() - 3_600_000;
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let mut writes = tokio::task::JoinSet::new();
        for (i, id) in model_ids().iter().enumerate() {
            let store: Arc<dyn ObjectStore> = store.clone();
            writes.spawn(async move {
                let model = silt_extension::silt::datastore::types::ModelRef {
                    model_type: "t".to_owned(),
                    model_id: id.clone(),
                };
                let mut slice = Partition::empty("data", &model);
                slice.seq = 1;
                for f in 0..FILES {
                    let content = format!("model {i} file {f}").into_bytes();
                    let version = format!("{long_ago:013}-{i:08x}{f:08x}");
                    let name = format!("f{f}.txt");
                    let key = format!("data/t/{id}/{name}/{version}");
                    slice.files.insert(
                        name,
                        vec![Entry {
                            version,
                            size: content.len() as u64,
                            sha256: silt_hex(&Sha256::digest(&content)),
                            generation: 1,
                            writer: "test@fixture".to_owned(),
                            committed_at: long_ago,
                            deleted: false,
                        }],
                    );
                    let key = ObjectKey::new(&key).unwrap();
                    store.put(&key, content, PutMode::Create).await.unwrap();
                }
                let key = ObjectKey::new(&format!("_index/data/t/{id}.json")).unwrap();
                store
                    .put(&key, slice.to_bytes(), PutMode::Create)
                    .await
                    .unwrap();
            });
        }
        while let Some(done) = writes.join_next().await {
            done.unwrap();
        }
    });
}

fn silt_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A full clone's pull of everything: `pulled` of `datastore sync --pull`.
fn full_pull(project: &Project) -> serde_json::Value {
    project.json(&["--hydration", "full", "datastore", "sync", "--pull"])["pulled"].clone()
}

/// Every file of a clone's working copy, by path, with its content.
fn working_copy(project: &Project) -> BTreeMap<String, Vec<u8>> {
    fn walk(dir: &Path, root: &Path, files: &mut BTreeMap<String, Vec<u8>>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, root, files);
            } else {
                let relative = path.strip_prefix(root).unwrap().display().to_string();
                files.insert(relative, std::fs::read(&path).unwrap());
            }
        }
    }
    let root = project.path().join(".silt/local/data");
    let mut files = BTreeMap::new();
    walk(&root, &root, &mut files);
    files
}

/// The working copy [`populate`] describes.
fn populated_tree() -> BTreeMap<String, Vec<u8>> {
    model_ids()
        .iter()
        .enumerate()
        .flat_map(|(i, id)| {
            (0..FILES).map(move |f| {
                let path = format!("t/{id}/f{f}.txt");
                (path, format!("model {i} file {f}").into_bytes())
            })
        })
        .collect()
}

/// How many slices a pull took from the index checkpoint, as its summary
/// says (`None`: it had none).
fn served(pulled: &serde_json::Value) -> Option<u64> {
    let summary = pulled["summary"].as_str().unwrap();
    let (before, _) = summary.split_once(" from the index checkpoint")?;
    before.rsplit('(').next()?.parse().ok()
}

fn put(project: &Project, model: &str, name: &str, content: &str) {
    let input = project.write_input(&format!("in-{name}"), content);
    project.ok(&["-q", "data", "put", model, name, &input]);
}

/// Every checkpoint object, by key, with its bytes.
fn checkpoint_objects(project: &Project) -> BTreeMap<String, Vec<u8>> {
    project
        .keys("_checkpoint/")
        .into_iter()
        .map(|key| {
            let data = project.read_object(&key);
            (key, data)
        })
        .collect()
}

/// Puts back exactly `objects` as the checkpoint objects.
fn restore_checkpoint(project: &Project, objects: &BTreeMap<String, Vec<u8>>) {
    for key in project.keys("_checkpoint/") {
        project.delete_object(&key);
    }
    for (key, data) in objects {
        project.overwrite_object(key, data);
    }
}

fn manifest_of(objects: &BTreeMap<String, Vec<u8>>) -> (String, serde_json::Value) {
    let (key, data) = objects
        .iter()
        .find(|(key, _)| key.starts_with("_checkpoint/manifest/"))
        .expect("a manifest");
    (key.clone(), serde_json::from_slice(data).unwrap())
}

#[test]
fn a_fresh_clone_reads_the_index_from_the_checkpoint_and_equals_a_clone_from_the_partitions() {
    for backend in [Backend::Dir, Backend::S3] {
        let origin = Project::new(backend, "");
        populate(&origin);

        // The first full clone reads every partition, and leaves a checkpoint.
        let first = origin.another_clone();
        let pulled = full_pull(&first);
        let summary = pulled["summary"].as_str().unwrap();
        assert!(
            summary.starts_with(&format!("{MODELS} of {MODELS} models changed")),
            "{backend:?}: {pulled}"
        );
        assert!(working_copy(&first) == populated_tree(), "{backend:?}");
        let objects = checkpoint_objects(&origin);
        let manifests = origin.keys("_checkpoint/manifest/");
        let chunks = origin.keys("_checkpoint/chunk/");
        assert_eq!(manifests.len(), 1, "{backend:?}: {objects:?}");
        assert!(!chunks.is_empty(), "{backend:?}");

        // The next fresh clone: the datastore's metadata, the recent
        // journal, the manifests listed, the newest read, its chunks, the
        // partitions listed (one page); then only the files. No partition
        // is read, and it writes no checkpoint of its own.
        let second = origin.another_clone();
        let pulled = full_pull(&second);
        let files = (MODELS * FILES) as u64;
        let index_requests = pulled["requests"].as_u64().unwrap() - files;
        assert_eq!(
            index_requests,
            5 + chunks.len() as u64,
            "{backend:?}: {pulled}"
        );
        assert_eq!(served(&pulled), Some(MODELS as u64), "{backend:?}");
        assert_eq!(origin.keys("_checkpoint/").len(), objects.len());
        assert_eq!(working_copy(&second), working_copy(&first), "{backend:?}");

        // Commits after the checkpoint (to a model in it, and to a new
        // one): the journal names them, and a fresh clone has them.
        put(&first, &model_name(7), "f0.txt", "changed after");
        put(&first, "t/new", "n.txt", "new after");
        full_pull(&first);
        let third = origin.another_clone();
        let pulled = full_pull(&third);
        assert_eq!(
            pulled["requests"].as_u64().unwrap() - (files + 1),
            5 + chunks.len() as u64 + 2,
            "{backend:?}: two models read from their partitions: {pulled}"
        );
        assert_eq!(served(&pulled), Some(MODELS as u64 - 1), "{backend:?}");
        assert_eq!(working_copy(&third), working_copy(&first), "{backend:?}");
        let changed = third.model_dir(&model_name(7)).join("f0.txt");
        assert_eq!(std::fs::read_to_string(changed).unwrap(), "changed after");
    }
}

#[test]
fn a_damaged_or_stale_checkpoint_still_gives_a_clone_equal_to_the_partitions() {
    let origin = Project::new(Backend::S3, "");
    populate(&origin);
    let first = origin.another_clone();
    full_pull(&first);
    let pristine = checkpoint_objects(&origin);
    let (manifest_key, manifest) = manifest_of(&pristine);
    let chunk_keys: Vec<&String> = pristine
        .keys()
        .filter(|key| key.starts_with("_checkpoint/chunk/"))
        .collect();
    // A commit after it, its journal entry gone: a clone that took the
    // checkpoint as the whole truth, or trusted the journal after it, would
    // differ.
    put(&first, &model_name(3), "f1.txt", "after the checkpoint");
    for entry in origin.keys("_journal/") {
        origin.delete_object(&entry);
    }
    full_pull(&first);
    let expected = working_copy(&first);

    // A manifest as of two hours ago (older than a full check, and than
    // the journal's retention), validly named.
    let mut old = manifest.clone();
    let two_hours_ago = silt_extension::clock::now_ms() - 7_200_000;
    old["as_of_ms"] = two_hours_ago.into();
    let old_bytes = serde_json::to_vec(&old).unwrap();
    let old_key = format!(
        "_checkpoint/manifest/{two_hours_ago:013}.{}.json",
        silt_hex(&Sha256::digest(&old_bytes))
    );

    // What the clone takes from the checkpoint: nothing, some, or every
    // slice but the one committed since.
    let (none, some, all_but_one) = (
        0..=0,
        1..=MODELS as u64 - 2,
        MODELS as u64 - 1..=MODELS as u64 - 1,
    );
    type Damage<'a> = (
        &'a str,
        std::ops::RangeInclusive<u64>,
        Box<dyn Fn(&Project) + 'a>,
    );
    let damages: Vec<Damage> = vec![
        ("none", all_but_one.clone(), Box::new(|_| {})),
        (
            "missing",
            none.clone(),
            Box::new(|p| p.delete_object(&manifest_key)),
        ),
        (
            "manifest truncated",
            none.clone(),
            Box::new(|p| {
                let data = &pristine[&manifest_key];
                p.overwrite_object(&manifest_key, &data[..data.len() / 2]);
            }),
        ),
        (
            "manifest corrupt",
            none.clone(),
            Box::new(|p| {
                let mut data = pristine[&manifest_key].clone();
                data[20] ^= 0x20;
                p.overwrite_object(&manifest_key, &data);
            }),
        ),
        (
            "a chunk deleted",
            some.clone(),
            Box::new(|p| p.delete_object(chunk_keys[0])),
        ),
        (
            "every chunk deleted",
            none,
            Box::new(|p| chunk_keys.iter().for_each(|key| p.delete_object(key))),
        ),
        (
            "a chunk corrupt",
            some,
            Box::new(|p| {
                let mut data = pristine[chunk_keys[0]].clone();
                let middle = data.len() / 2;
                data[middle] ^= 0x01;
                p.overwrite_object(chunk_keys[0], &data);
            }),
        ),
        (
            "hours old",
            all_but_one,
            Box::new(|p| {
                p.delete_object(&manifest_key);
                p.overwrite_object(&old_key, &old_bytes);
            }),
        ),
    ];
    assert!(chunk_keys.len() >= 2, "{chunk_keys:?}");
    for (what, taken, damage) in &damages {
        restore_checkpoint(&origin, &pristine);
        damage(&origin);
        let clone = origin.another_clone();
        let pulled = full_pull(&clone);
        assert!(
            working_copy(&clone) == expected,
            "{what}: the clone differs from the partitions' ({pulled})"
        );
        let served = served(&pulled).unwrap_or(0);
        assert!(taken.contains(&served), "{what}: {served} served: {pulled}");
    }
}

#[test]
fn a_checkpoint_writer_killed_before_its_manifest_leaves_nothing_a_reader_takes() {
    let origin = Project::new(Backend::S3, "");
    populate(&origin);
    // The first full clone is killed as it sends the manifest: its chunks
    // are in the store, the manifest is not.
    let (writer, proxy) = trapped_clone(
        &origin,
        Trap {
            method: "PUT",
            path_contains: "/_checkpoint/manifest/".to_owned(),
            armed_by: "/_index/".to_owned(),
            hold: Hold::BeforeServer,
            later_ones_wait: true,
        },
    );
    let mut child = writer
        .silt()
        .args(["-q", "--hydration", "full", "datastore", "sync", "--pull"])
        .process_group(0)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    proxy.wait_caught(Duration::from_secs(120));
    assert!(super::support::child::signal_group(
        child.id(),
        libc::SIGKILL
    ));
    child.wait().unwrap();
    assert!(origin.keys("_checkpoint/manifest/").is_empty());
    assert!(!origin.keys("_checkpoint/chunk/").is_empty());

    // A fresh clone reads the partitions (and writes the checkpoint).
    let clone = origin.another_clone();
    let pulled = full_pull(&clone);
    assert!(
        pulled["summary"]
            .as_str()
            .unwrap()
            .starts_with(&format!("{MODELS} of {MODELS} models changed")),
        "{pulled}"
    );
    assert!(working_copy(&clone) == populated_tree());
    assert_eq!(origin.keys("_checkpoint/manifest/").len(), 1);
}

#[test]
fn a_new_checkpoint_uploads_only_the_chunks_whose_models_changed() {
    // Every full check that read a slice writes one (by default: 128
    // slices, and the newest 30 minutes old).
    let settings = "[extensions.config.partitioned-datastore]\n\
        checkpoint.write-after-reads = 1\ncheckpoint.write-every-minutes = 0\n";
    let origin = Project::new(Backend::Dir, settings);
    populate(&origin);
    let first = origin.another_clone();
    let pulled = full_pull(&first);
    let chunks = origin.keys("_checkpoint/chunk/").len();
    let summary = pulled["summary"].as_str().unwrap();
    assert!(
        summary.contains(&format!("({chunks} of {chunks} chunks new")),
        "{pulled}"
    );

    // One model changed: a fresh clone reads its partition, and writes a
    // checkpoint that reuses every other chunk.
    put(&first, &model_name(7), "f0.txt", "changed");
    let second = origin.another_clone();
    let pulled = full_pull(&second);
    assert_eq!(served(&pulled), Some(MODELS as u64 - 1), "{pulled}");
    let summary = pulled["summary"].as_str().unwrap();
    assert!(
        summary.contains(&format!("(1 of {chunks} chunks new")),
        "{pulled}"
    );
    assert_eq!(origin.keys("_checkpoint/manifest/").len(), 2);
    assert_eq!(origin.keys("_checkpoint/chunk/").len(), chunks + 1);

    // The next fresh clone takes every slice from the new checkpoint, and
    // equals the partitions.
    let third = origin.another_clone();
    let pulled = full_pull(&third);
    assert_eq!(served(&pulled), Some(MODELS as u64), "{pulled}");
    let mut expected = populated_tree();
    expected.insert(format!("{}/f0.txt", model_name(7)), b"changed".to_vec());
    assert!(working_copy(&third) == expected);
}

/// Sets the modification time of a Dir datastore's object `key` (a file
/// `<key>~o` under the store directory, wherever its namespace puts it)
/// `by` back.
fn age(project: &Project, key: &str, by: Duration) {
    fn find(dir: &Path, key: &str) -> Option<std::path::PathBuf> {
        std::fs::read_dir(dir).ok()?.find_map(|entry| {
            let path = entry.ok()?.path();
            if path.is_dir() {
                find(&path, key)
            } else {
                path.to_str()?
                    .ends_with(&format!("/{key}~o"))
                    .then_some(path)
            }
        })
    }
    let path = find(&project.path().join(".silt/store"), key).expect("the object's file");
    let file = std::fs::File::options().write(true).open(&path).unwrap();
    file.set_modified(SystemTime::now() - by).unwrap();
}

#[test]
fn gc_keeps_the_newest_checkpoints_and_their_chunks_and_deletes_the_rest_once_old() {
    let origin = Project::new(Backend::Dir, "");
    populate(&origin);
    full_pull(&origin.another_clone());
    let (manifest_key, manifest) = manifest_of(&checkpoint_objects(&origin));
    let chunks = origin.keys("_checkpoint/chunk/");
    // Two older manifests naming no chunk (the store wrote them 3 and 4
    // hours ago; the second says it is as of an hour from now, as a
    // writer's fast clock would), and an unnamed chunk: all old.
    let hour = Duration::from_secs(3_600);
    let mut older = Vec::new();
    for (hours, as_of) in [(3u32, -3i64), (4, 1)] {
        let mut stale = manifest.clone();
        let at = (silt_extension::clock::now_ms() as i64 + as_of * 3_600_000) as u64;
        stale["as_of_ms"] = at.into();
        stale["chunks"] = serde_json::json!([]);
        let bytes = serde_json::to_vec(&stale).unwrap();
        let key = format!(
            "_checkpoint/manifest/{at:013}.{}.json",
            silt_hex(&Sha256::digest(&bytes))
        );
        origin.overwrite_object(&key, &bytes);
        age(&origin, &key, hour * hours);
        older.push(key);
    }
    let unnamed = format!("_checkpoint/chunk/{}.json", "0".repeat(64));
    origin.overwrite_object(&unnamed, b"{}");
    let young_unnamed = format!("_checkpoint/chunk/{}.json", "1".repeat(64));
    origin.overwrite_object(&young_unnamed, b"{}");
    for key in chunks.iter().chain([&manifest_key, &unnamed]) {
        age(&origin, key, hour * 2);
    }
    // The newest two manifests by the store's clock stay (whatever their
    // names say), with the chunks they name; the third goes, and so does
    // the old unnamed chunk; the young one stays (a writer may be about to
    // name it).

    origin.ok(&["-q", "datastore", "gc", "--keep", "10"]);
    let mut expected: Vec<String> = chunks.clone();
    expected.extend([manifest_key, older[0].clone(), young_unnamed]);
    expected.sort();
    assert_eq!(origin.keys("_checkpoint/"), expected);
}
