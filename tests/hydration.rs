//! Hydration policy, on both datastore extensions and a real S3-compatible
//! server: a lazy clone fetches index metadata only, a command makes
//! present exactly the models it works on, `silt datastore hydrate` fetches
//! the rest (resumably), a full clone fetches everything, and a failed
//! scoped hydration falls back to a full pull and says so.

use crate::support;

use std::path::Path;
use std::sync::Arc;

use silt::datastore::{Datastore, make_present};
use silt::runtime::bindings::exports::silt::datastore::sync::SetupOptions;
use silt::runtime::bindings::silt::datastore::types::{LocalEdits, ModelRef, Scope};
use support::project::{Backend, EXTENSIONS, Project};
use support::recording_store::Recording;

/// Files on disk in a model's working copy (what is present locally).
fn present(project: &Project, model: &str) -> Vec<String> {
    let dir = project.model_dir(model);
    let mut names: Vec<String> = match std::fs::read_dir(&dir) {
        Ok(entries) => entries
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect(),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(err) => panic!("cannot read {}: {err}", dir.display()),
    };
    names.sort();
    names
}

/// A datastore with models `t/a` and `t/b`, two files each, written by
/// `silt data put` from one clone.
fn datastore_with_two_models(extension: &'static str) -> Project {
    let writer = Project::with_extension(Backend::S3, extension, "");
    for (model, content) in [("t/a", "alpha"), ("t/b", "beta")] {
        for name in ["one.txt", "two.txt"] {
            let staged = writer.write_input(&format!("{name}.in"), &format!("{content} {name}"));
            writer.ok(&["data", "put", model, name, &staged]);
        }
    }
    writer
}

#[test]
fn lazy_clone_fetches_metadata_then_what_a_command_uses_then_the_rest_on_request() {
    for extension in EXTENSIONS {
        let writer = datastore_with_two_models(extension);

        // Lazy: setup fetches no data.
        let lazy = writer.another_clone();
        let setup = lazy.json(&["--hydration", "lazy", "datastore", "setup"]);
        assert_eq!(setup["hydration"], "lazy", "{extension}");
        assert_eq!(setup["fetched"]["objects"], 0, "{extension}: {setup}");
        assert!(present(&lazy, "t/a").is_empty() && present(&lazy, "t/b").is_empty());

        // A command on t/a makes t/a present, and only t/a.
        let run = lazy.json(&["run", "--model", "t/a", "--", "true"]);
        assert_eq!(run["downloaded"], 2, "{extension}: {run}");
        assert_eq!(run["full_pull_because"], serde_json::Value::Null);
        assert_eq!(present(&lazy, "t/a"), ["one.txt", "two.txt"], "{extension}");
        assert!(present(&lazy, "t/b").is_empty(), "{extension}: t/b fetched");

        // status counts the whole store (indexing what this clone never
        // read) against what is present, and fetches no data.
        let status = lazy.json(&["datastore", "status"]);
        assert_eq!(status["objects_total"], 4, "{extension}: {status}");
        assert_eq!(status["objects_local"], 2, "{extension}: {status}");
        assert_eq!(status["bytes_local"], 2 * "alpha one.txt".len(), "{status}");
        assert!(
            present(&lazy, "t/b").is_empty(),
            "{extension}: status fetched"
        );

        // hydrate --status counts without fetching; hydrate --all fetches the rest.
        let status = lazy.json(&["datastore", "hydrate", "--status"]);
        assert_eq!(status["models"], 2, "{extension}: {status}");
        assert_eq!(status["already_present"], 2, "{extension}: {status}");
        assert_eq!(status["missing"], 2, "{extension}: {status}");
        assert!(
            present(&lazy, "t/b").is_empty(),
            "{extension}: --status fetched"
        );
        // What a hydration killed mid-download leaves: a temporary file of a
        // process that is gone, and its command's marker, which nobody
        // holds (a pid above Linux's maximum never runs). Resuming removes
        // the file.
        // A pull of everything first walks and stamps the working copy, so
        // that the marker, not a first walk, is what makes the next due.
        lazy.ok(&["--hydration", "lazy", "datastore", "sync", "--pull"]);
        assert!(
            lazy.transfers_dir().join("swept").is_file(),
            "{extension}: no walk"
        );
        std::fs::create_dir_all(lazy.model_dir("t/b")).unwrap();
        let leftover = lazy.model_dir("t/b").join(".one.txt.silt-tmp.4194305.0");
        std::fs::write(&leftover, "half").unwrap();
        lazy.mark_a_killed_command();
        let hydrated = lazy.json(&["datastore", "hydrate", "--all"]);
        assert!(!leftover.exists(), "{extension}: leftover kept");
        assert_eq!(hydrated["fetched"]["objects"], 2, "{extension}: {hydrated}");
        assert_eq!(present(&lazy, "t/b"), ["one.txt", "two.txt"], "{extension}");
        assert_eq!(
            std::fs::read_to_string(lazy.model_dir("t/b").join("two.txt")).unwrap(),
            "beta two.txt"
        );
        // Again: nothing left to fetch, and no walk of the working copy
        // (no command was killed since the last): a file nothing announced
        // is not looked for.
        let unannounced = lazy.model_dir("t/b").join(".two.txt.silt-tmp.4194305.1");
        std::fs::write(&unannounced, "half").unwrap();
        let again = lazy.json(&["datastore", "hydrate", "--all"]);
        assert_eq!(again["fetched"]["objects"], 0, "{extension}: {again}");
        assert_eq!(again["already_present"], 4, "{extension}: {again}");
        assert!(unannounced.exists(), "{extension}: hydrate --all walked");
        std::fs::remove_file(&unannounced).unwrap();

        // Full (the default): setup fetches every model's files.
        let full = writer.another_clone();
        let setup = full.json(&["datastore", "setup"]);
        assert_eq!(setup["hydration"], "full", "{extension}");
        assert_eq!(setup["fetched"]["objects"], 4, "{extension}: {setup}");
        assert_eq!(present(&full, "t/a"), ["one.txt", "two.txt"]);
        assert_eq!(present(&full, "t/b"), ["one.txt", "two.txt"]);

        // A full pull fetches a model that appeared since; a lazy one does not.
        let staged = writer.write_input("c.in", "gamma");
        writer.ok(&["data", "put", "t/c", "c.txt", &staged]);
        full.ok(&["datastore", "sync", "--pull"]);
        assert_eq!(present(&full, "t/c"), ["c.txt"], "{extension}");
        lazy.ok(&["--hydration", "lazy", "datastore", "sync", "--pull"]);
        assert!(present(&lazy, "t/c").is_empty(), "{extension}");

        // A full clone's no-op pull reads no index and fetches nothing.
        let noop = full.json(&["datastore", "sync", "--pull"]);
        assert_eq!(noop["pulled"]["partitions_read"], 0, "{extension}: {noop}");
        assert_eq!(
            noop["pulled"]["objects_downloaded"], 0,
            "{extension}: {noop}"
        );
        // A lazy clone switched to full fetches what its lazy pull only
        // indexed (t/c is current in its sidecar, but not present).
        let switched = lazy.json(&["--hydration", "full", "datastore", "sync", "--pull"]);
        assert_eq!(present(&lazy, "t/c"), ["c.txt"], "{extension}: {switched}");
    }
}

#[test]
fn hydrate_names_models_or_all_and_refuses_neither() {
    let writer = datastore_with_two_models("partitioned-datastore");
    let lazy = writer.another_clone();
    lazy.ok(&["--hydration", "lazy", "datastore", "setup"]);
    let (code, _, stderr) = lazy.run(&["datastore", "hydrate"]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("--model"), "{stderr}");
    let hydrated = lazy.json(&["datastore", "hydrate", "--model", "t/b"]);
    assert_eq!(hydrated["models"], 1);
    assert_eq!(hydrated["fetched"]["objects"], 2);
    assert!(present(&lazy, "t/a").is_empty());
    let text = lazy.ok(&["datastore", "hydrate", "--status"]);
    assert!(
        text.contains("2 models: 2 files present locally, 2 missing"),
        "{text}"
    );
}

/// Opens a lazy clone of `project`'s datastore on a recording store.
async fn recorded_clone(project: &Project, extension: &str) -> (Arc<Recording>, Datastore) {
    let locations = silt::locations::Locations::discover(project.path()).unwrap();
    support::seaweed::use_test_credentials();
    let root =
        silt::store::root::open(&locations.config.datastore.root(&locations.store_dir)).unwrap();
    let recording = Arc::new(Recording::new(root));
    let component = support::component(extension);
    let datastore = Datastore::open_with_store(&locations, &component, recording.clone(), None)
        .await
        .unwrap();
    datastore
        .setup(SetupOptions {
            create: false,
            retain_versions: None,
        })
        .await
        .unwrap();
    (recording, datastore)
}

fn model(id: &str) -> ModelRef {
    ModelRef {
        model_type: "t".into(),
        model_id: id.into(),
    }
}

#[test]
fn a_lazy_clone_reads_only_metadata_and_the_model_it_uses() {
    for extension in EXTENSIONS {
        let writer = datastore_with_two_models(extension);
        let clone = writer.another_clone();
        let runtime = tokio::runtime::Runtime::new().unwrap();
        runtime.block_on(async {
            let (recording, datastore) = recorded_clone(&clone, extension).await;
            let setup_reads = recording.take_reads();
            assert!(
                setup_reads.iter().all(|key| !key.starts_with("data/")),
                "{extension}: setup read data: {setup_reads:?}"
            );
            let (presence, _held) = make_present(&datastore, &[model("a")], LocalEdits::Keep)
                .await
                .unwrap();
            assert_eq!(presence.fetched.objects, 2, "{extension}");
            assert!(presence.full_pull_because.is_none());
            let reads = recording.take_reads();
            let data: Vec<&String> = reads.iter().filter(|k| k.starts_with("data/")).collect();
            assert_eq!(data.len(), 2, "{extension}: {reads:?}");
            assert!(
                data.iter().all(|k| k.starts_with("data/t/a/")),
                "{extension}: fetched another model's data: {reads:?}"
            );
            // Metadata: the datastore's own record and t/a's index (the
            // baseline's one index holds every model: that is its design).
            let metadata: Vec<&String> = reads.iter().filter(|k| !k.starts_with("data/")).collect();
            assert!(
                metadata.iter().all(|k| !k.contains("t/b")),
                "{extension}: read t/b's metadata: {reads:?}"
            );
            assert!(metadata.len() <= 3, "{extension}: {metadata:?}");
        });
        assert_eq!(present(&clone, "t/a"), ["one.txt", "two.txt"]);
        assert!(present(&clone, "t/b").is_empty());
    }
}

#[test]
fn a_failed_scoped_hydration_falls_back_to_a_full_pull_and_says_so() {
    for extension in EXTENSIONS {
        let writer = datastore_with_two_models(extension);
        let clone = writer.another_clone();
        let runtime = tokio::runtime::Runtime::new().unwrap();
        runtime.block_on(async {
            let (recording, datastore) = recorded_clone(&clone, extension).await;
            recording.fail_next_downloads(1);
            let (presence, _held) = make_present(&datastore, &[model("a")], LocalEdits::Keep)
                .await
                .unwrap();
            let reason = presence.full_pull_because.expect("a fallback");
            assert!(
                reason.contains("hydrating t/a failed") && reason.contains("full pull"),
                "{extension}: {reason}"
            );
            assert!(reason.contains("injected download failure"), "{reason}");
        });
        // The full pull made everything present, whole.
        assert_eq!(present(&clone, "t/a"), ["one.txt", "two.txt"]);
        assert_eq!(present(&clone, "t/b"), ["one.txt", "two.txt"]);
        no_partial_files(&clone.path().join(".silt/local/data"));
    }
}

/// No download's temporary file is left in the working copy.
fn no_partial_files(dir: &Path) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name().to_string_lossy().into_owned();
        assert!(!name.contains(".silt-tmp."), "partial file {name}");
        if entry.file_type().unwrap().is_dir() {
            no_partial_files(&entry.path());
        }
    }
}

#[test]
fn data_get_fetches_only_its_file_and_data_list_its_model() {
    for extension in EXTENSIONS {
        let writer = datastore_with_two_models(extension);
        let lazy = writer.another_clone();
        lazy.ok(&["--hydration", "lazy", "datastore", "setup"]);
        // get: exactly the one file, into the working copy.
        let got = lazy.ok(&["--hydration", "lazy", "data", "get", "t/b", "one.txt"]);
        assert_eq!(got, "beta one.txt", "{extension}");
        assert_eq!(present(&lazy, "t/b"), ["one.txt"], "{extension}");
        assert!(present(&lazy, "t/a").is_empty(), "{extension}");
        // A local edit is not what `get` returns: the committed file is.
        std::fs::write(lazy.model_dir("t/b").join("one.txt"), "edited").unwrap();
        let got = lazy.ok(&["--hydration", "lazy", "data", "get", "t/b", "one.txt"]);
        assert_eq!(got, "beta one.txt", "{extension}");
        assert_eq!(
            std::fs::read_to_string(lazy.model_dir("t/b").join("one.txt")).unwrap(),
            "edited",
            "{extension}: the local edit was overwritten"
        );
        // list: the model becomes present (the edit stays).
        let listed = lazy.json(&["--hydration", "lazy", "data", "list", "t/a"])["files"].clone();
        assert_eq!(listed.as_array().unwrap().len(), 2, "{extension}: {listed}");
        assert_eq!(present(&lazy, "t/a"), ["one.txt", "two.txt"], "{extension}");
        no_partial_files(&lazy.path().join(".silt/local/data"));
    }
}

#[test]
fn fetching_one_file_does_not_make_a_pull_skip_the_model() {
    for extension in EXTENSIONS {
        let writer = datastore_with_two_models(extension);
        let lazy = writer.another_clone();
        lazy.ok(&["--hydration", "lazy", "datastore", "setup"]);
        lazy.ok(&["--hydration", "lazy", "run", "--model", "t/a", "--", "true"]);
        for name in ["one.txt", "two.txt"] {
            let staged = writer.write_input("new.in", &format!("new {name}"));
            writer.ok(&["data", "put", "t/a", name, &staged]);
        }
        // hydrate-file brings one.txt to the new version, not two.txt: the
        // clone must not record t/a as current...
        let got = lazy.ok(&["--hydration", "lazy", "data", "get", "t/a", "one.txt"]);
        assert_eq!(got, "new one.txt", "{extension}");
        // ...so the next pull still refreshes two.txt.
        lazy.ok(&["--hydration", "lazy", "datastore", "sync", "--pull"]);
        assert_eq!(
            std::fs::read_to_string(lazy.model_dir("t/a").join("two.txt")).unwrap(),
            "new two.txt",
            "{extension}: a pull skipped a model left half refreshed"
        );
    }
}

/// Models in the many-model tests: three hydration batches of 64, so two
/// calls are in flight at once.
const MANY: usize = 150;

/// A datastore with `MANY` models `t/m000`… of one file each, written by one
/// `silt run` on every model.
fn datastore_with_many_models(extension: &'static str) -> Project {
    let writer = Project::with_extension(Backend::S3, extension, "");
    let mut args = vec!["-q".to_owned(), "run".to_owned()];
    for i in 0..MANY {
        args.extend(["--model".to_owned(), format!("t/m{i:03}")]);
    }
    let script = r#"IFS=:; for d in $SILT_MODEL_DIRS; do basename "$d" > "$d/f.txt"; done"#;
    args.extend(["--", "sh", "-c", script].map(str::to_owned));
    writer.ok(&args.iter().map(String::as_str).collect::<Vec<_>>());
    writer
}

/// Hydrates the `MANY` models in `project`'s clone, in process on a
/// recording store: what it reports, and the keys it read.
async fn hydrate_many_recorded(
    project: &Project,
    extension: &str,
) -> (silt::datastore::HydrationProgress, Vec<String>) {
    let (recording, datastore) = recorded_clone(project, extension).await;
    recording.take_reads();
    let models: Vec<ModelRef> = (0..MANY).map(|i| model(&format!("m{i:03}"))).collect();
    let scope = Scope::Models(models);
    let progress = silt::datastore::hydrate_models(&datastore, &scope, false, &mut |_| {})
        .await
        .unwrap();
    (progress, recording.take_reads())
}

#[test]
fn a_full_clone_of_many_models_fetches_each_once_and_a_corrupt_one_spares_the_rest() {
    for extension in EXTENSIONS {
        let writer = datastore_with_many_models(extension);
        let full = writer.another_clone();
        let setup = full.json(&["datastore", "setup"]);
        assert_eq!(setup["fetched"]["objects"], MANY, "{extension}: {setup}");
        for i in [0, 63, 64, 100, MANY - 1] {
            let model = format!("t/m{i:03}");
            let content = std::fs::read_to_string(full.model_dir(&model).join("f.txt")).unwrap();
            assert_eq!(content.trim(), format!("m{i:03}"), "{extension}");
        }
        // Each model's index was read once, and only once.
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let lazy = writer.another_clone();
        runtime.block_on(async {
            let (progress, reads) = hydrate_many_recorded(&lazy, extension).await;
            assert_eq!(progress.fetched.objects, MANY as u64, "{extension}");
            let data = reads.iter().filter(|k| k.starts_with("data/")).count();
            assert_eq!(data, MANY, "{extension}: {reads:?}");
            if extension == "partitioned-datastore" {
                let partitions = reads.iter().filter(|k| k.starts_with("_index/")).count();
                assert_eq!(partitions, MANY, "{extension}: {reads:?}");
            }
        });
    }
    // One corrupt partition in the second batch: its model fails, every
    // other model of every batch lands, and the error names the model.
    let extension = "partitioned-datastore";
    let writer = datastore_with_many_models(extension);
    writer.overwrite_object("_index/data/t/m070.json", b"{ not a partition");
    let lazy = writer.another_clone();
    lazy.ok(&["--hydration", "lazy", "datastore", "setup"]);
    let (code, _, stderr) = lazy.run(&["datastore", "hydrate", "--all"]);
    assert_ne!(code, 0, "{stderr}");
    assert!(stderr.contains("m070"), "{stderr}");
    for i in (0..MANY).filter(|&i| i != 70) {
        let model = format!("t/m{i:03}");
        assert_eq!(present(&lazy, &model), ["f.txt"], "{model}: {stderr}");
    }
    assert!(present(&lazy, "t/m070").is_empty());
}

#[test]
fn hydrating_many_models_after_a_pull_reads_only_the_slices_the_journal_names() {
    let extension = "partitioned-datastore";
    let writer = datastore_with_many_models(extension);
    let lazy = writer.another_clone();
    lazy.ok(&["--hydration", "lazy", "datastore", "setup"]);
    // The index only: every model's slice, and the progress through the journal.
    lazy.ok(&["-q", "--hydration", "lazy", "datastore", "sync", "--pull"]);
    // A commit after that pull, which the hydration must bring.
    let input = writer.write_input("f.in", "newer");
    writer.ok(&["-q", "data", "put", "t/m100", "f.txt", &input]);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let (progress, reads) = hydrate_many_recorded(&lazy, extension).await;
        assert_eq!(progress.fetched.objects, MANY as u64);
        // One LIST of the journal a call (batches of 32, 64 and 54), and
        // the one slice it names read; no other slice.
        let partitions: Vec<&String> = reads.iter().filter(|k| k.starts_with("_index/")).collect();
        assert_eq!(partitions, ["_index/data/t/m100.json"], "{reads:?}");
        let journal = reads
            .iter()
            .filter(|k| k.starts_with("list:") && k.contains("_journal/"))
            .count();
        assert_eq!(journal, 3, "{reads:?}");
        let data = reads.iter().filter(|k| k.starts_with("data/")).count();
        assert_eq!(data, MANY, "{reads:?}");
        assert_eq!(reads.len(), MANY + 4, "{reads:?}");
    });
    let newer = std::fs::read_to_string(lazy.model_dir("t/m100").join("f.txt")).unwrap();
    assert_eq!(newer, "newer");
    let older = std::fs::read_to_string(lazy.model_dir("t/m101").join("f.txt")).unwrap();
    assert_eq!(older.trim(), "m101");
    // With a full check due at every pull, the journal vouches for nothing:
    // each held slice has its conditional read again, and nothing is
    // fetched twice.
    let config = lazy.path().join("silt.toml");
    let mut toml = std::fs::read_to_string(&config).unwrap();
    toml.push_str("\n[extensions.config.partitioned-datastore]\njournal.full-check-minutes = 0\n");
    std::fs::write(&config, toml).unwrap();
    runtime.block_on(async {
        let (progress, reads) = hydrate_many_recorded(&lazy, extension).await;
        assert_eq!(progress.fetched.objects, 0);
        assert_eq!(progress.already_present, MANY as u64);
        let partitions = reads.iter().filter(|k| k.starts_with("_index/")).count();
        assert_eq!(partitions, MANY, "{reads:?}");
        assert_eq!(reads.len(), MANY, "{reads:?}");
    });
}

/// `silt run`'s path: the model's lease, then the model made present. The
/// slice the lease's fence raise wrote is the latest (nobody else writes
/// the partition while the lock lives), so hydration reads no partition of
/// its own. A commit under the lease, and the release, end that trust:
/// then the partition is read again, and another clone's commit shows.
#[test]
fn a_model_made_present_under_its_lease_reads_its_partition_only_to_take_the_lease() {
    use silt::datastore::{LeasePolicy, LeaseSet, Signals};
    use silt::runtime::bindings::silt::datastore::types::{Base, Committer, LockScope};

    let extension = "partitioned-datastore";
    let writer = datastore_with_two_models(extension);
    let clone = writer.another_clone();
    let partition = "_index/data/t/a.json";
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let (recording, datastore) = recorded_clone(&clone, extension).await;
        let datastore = Arc::new(datastore);
        let locations = silt::locations::Locations::discover(clone.path()).unwrap();
        let policy = LeasePolicy::from_config(&locations.config.locks).unwrap();
        let mut signals = Signals::listen().unwrap();
        let mut lease_on_a = async || {
            let scopes = vec![LockScope::Model(model("a"))];
            LeaseSet::acquire(datastore.clone(), scopes, &policy, &mut signals)
                .await
                .unwrap()
        };
        // The files fetched; the working-copy locks let go at once.
        let make_a_present = async |edits| {
            let (presence, _held) = make_present(&datastore, &[model("a")], edits)
                .await
                .unwrap();
            presence.fetched.objects
        };
        let partition_reads = || {
            let reads = recording.take_reads();
            reads.iter().filter(|key| key.as_str() == partition).count()
        };
        let records = || match std::fs::read_dir(locations.local_dir.join(".silt/leased")) {
            Ok(entries) => entries.count(),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => 0,
            Err(err) => panic!("{err}"),
        };
        partition_reads();
        let leases = lease_on_a().await;
        assert_eq!(records(), 1, "the fence raise's slice recorded");
        assert_eq!(make_a_present(LocalEdits::SetAside).await, 2);
        assert_eq!(partition_reads(), 1, "the acquisition's read only");

        // Our own commit under the lease: the slice the fence raise wrote
        // is no longer the latest.
        let staged = ".silt/edit-input";
        std::fs::write(locations.local_dir.join(staged), b"edited under the lease").unwrap();
        datastore
            .put_file(
                &model("a"),
                "one.txt",
                staged,
                &Base::Any,
                &Committer::Leased(leases.leases()[0].clone()),
            )
            .await
            .unwrap();
        partition_reads();
        make_a_present(LocalEdits::Keep).await;
        assert_eq!(partition_reads(), 1, "read again after our own commit");
        assert_eq!(records(), 0, "forgotten by the commit");
        leases.release().await;

        // A lease taken and released with no commit: its record goes with it.
        let leases = lease_on_a().await;
        partition_reads();
        make_a_present(LocalEdits::Keep).await;
        assert_eq!(partition_reads(), 0, "under the lease, no read");
        leases.release().await;
        assert_eq!(records(), 0, "forgotten at the release");
    });

    // After the release, another clone commits; this one's next hydration
    // sees it (no record is left to take instead).
    let staged = writer.write_input("one.txt.in", "written after the release");
    writer.ok(&["data", "put", "t/a", "one.txt", &staged]);
    runtime.block_on(async {
        let (_recording, datastore) = recorded_clone(&clone, extension).await;
        let (presence, _held) = make_present(&datastore, &[model("a")], LocalEdits::Keep)
            .await
            .unwrap();
        assert_eq!(presence.fetched.objects, 1, "the other clone's commit");
    });
    let one = std::fs::read_to_string(clone.model_dir("t/a").join("one.txt")).unwrap();
    assert_eq!(one, "written after the release");
}
