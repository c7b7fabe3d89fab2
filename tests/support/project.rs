//! A silt project for CLI tests of the datastore: a directory with a
//! `silt.toml` on a real backend (a local directory, or a bucket on the
//! SeaweedFS test server), a datastore extension installed (by default
//! partitioned-datastore) and the datastore set up.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::{azurite, fake_gcs, seaweed};

/// Which backend a project's datastore lives on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// A local directory (`.silt/store`).
    Dir,
    /// A fresh prefix of a bucket on the SeaweedFS test server.
    S3,
    /// A fresh prefix of a bucket on fake-gcs-server (behind its gate).
    Gcs,
    /// A fresh prefix of a container on Azurite.
    Azure,
}

/// Every backend, for tests that must hold on each.
pub const BACKENDS: [Backend; 4] = [Backend::Dir, Backend::S3, Backend::Gcs, Backend::Azure];

/// silt's datastore extensions: the datastore's behaviour tests hold for each.
pub const EXTENSIONS: [&str; 2] = ["partitioned-datastore", "monolith-datastore"];

/// Every backend with every extension.
pub fn combinations() -> impl Iterator<Item = (Backend, &'static str)> {
    BACKENDS.into_iter().flat_map(|backend| {
        EXTENSIONS
            .into_iter()
            .map(move |extension| (backend, extension))
    })
}

/// A project directory with its datastore set up.
pub struct Project {
    /// The project directory (holds `silt.toml` and `.silt/`).
    pub dir: tempfile::TempDir,
    /// The backend.
    pub backend: Backend,
    /// The datastore extension (a component name under `tests/components`'s build).
    pub extension: &'static str,
}

impl Project {
    /// A project on `backend`; `extra` is appended to `silt.toml` (e.g. a
    /// `[locks]` table).
    pub fn new(backend: Backend, extra: &str) -> Self {
        Self::with_extension(backend, "partitioned-datastore", extra)
    }

    /// A project on `backend` whose datastore is run by `extension`.
    pub fn with_extension(backend: Backend, extension: &'static str, extra: &str) -> Self {
        let datastore = match backend {
            Backend::Dir => "[datastore]\nbackend = \"dir\"\n".to_owned(),
            Backend::S3 => {
                let bucket = "silt-datastore-tests";
                let prefix = format!("p{}", unique());
                tokio::runtime::Runtime::new()
                    .unwrap()
                    .block_on(seaweed::store(bucket, &prefix));
                format!(
                    "[datastore]\nbackend = \"s3\"\n[datastore.s3]\nbucket = \"{bucket}\"\nprefix = \"{prefix}\"\nendpoint = \"{}\"\n",
                    seaweed::server().endpoint
                )
            }
            Backend::Gcs => {
                let bucket = "silt-datastore-tests";
                fake_gcs::create_bucket(bucket);
                format!(
                    "[datastore]\nbackend = \"gcs\"\n[datastore.gcs]\nbucket = \"{bucket}\"\nprefix = \"p{}\"\nendpoint = \"{}\"\ncredentials = \"none\"\n",
                    unique(),
                    fake_gcs::gated()
                )
            }
            Backend::Azure => {
                let container = "silt-datastore-tests";
                let config = azurite::config(container, "");
                format!(
                    "[datastore]\nbackend = \"azure\"\n[datastore.azure]\naccount = \"{}\"\ncontainer = \"{container}\"\nprefix = \"p{}\"\nendpoint = \"{}\"\n",
                    azurite::ACCOUNT,
                    unique(),
                    config.endpoint.unwrap()
                )
            }
        };
        Self::set_up(backend, extension, &datastore, extra)
    }

    /// A project on a fresh prefix of `bucket` (which exists) on the S3
    /// server at `endpoint`, not the SeaweedFS test server: set up, as
    /// every project, with that server's static test keys. `s3_extra` is
    /// added to its `[datastore.s3]` table.
    pub fn on_s3_endpoint(endpoint: &str, bucket: &str, region: &str, s3_extra: &str) -> Self {
        let datastore = format!(
            "[datastore]\nbackend = \"s3\"\n[datastore.s3]\nbucket = \"{bucket}\"\nprefix = \"p{}\"\nendpoint = \"{endpoint}\"\nregion = \"{region}\"\n",
            unique()
        );
        Self::set_up(Backend::S3, "partitioned-datastore", &datastore, s3_extra)
    }

    /// Writes `silt.toml` (`datastore`, then `extra`), installs
    /// `extension` and sets the datastore up.
    fn set_up(backend: Backend, extension: &'static str, datastore: &str, extra: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let datastore = datastore.replacen(
            "[datastore]\n",
            &format!("[datastore]\nextension = \"{extension}\"\n"),
            1,
        );
        std::fs::write(dir.path().join("silt.toml"), format!("{datastore}{extra}")).unwrap();
        let project = Self {
            dir,
            backend,
            extension,
        };
        project.install_extension();
        let (code, _, stderr) = super::output(project.silt().args(["-q", "datastore", "setup"]));
        assert_eq!(code, 0, "datastore setup: {stderr}");
        project
    }

    /// Another project (another machine, in effect) on the same datastore,
    /// with its own local copy.
    pub fn another_clone(&self) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut text = std::fs::read_to_string(self.path().join("silt.toml")).unwrap();
        if self.backend == Backend::Dir {
            let store = self.path().join(".silt/store");
            text = text.replacen(
                "backend = \"dir\"\n",
                &format!("backend = \"dir\"\ndir = \"{}\"\n", store.display()),
                1,
            );
        }
        std::fs::write(dir.path().join("silt.toml"), text).unwrap();
        let clone = Self {
            dir,
            backend: self.backend,
            extension: self.extension,
        };
        clone.install_extension();
        clone
    }

    /// Installs the project's extension (`silt extension add`).
    fn install_extension(&self) {
        let (code, _, stderr) = super::output(
            self.silt()
                .args(["-q", "extension", "add"])
                .arg(super::component(self.extension)),
        );
        assert_eq!(code, 0, "installing {}: {stderr}", self.extension);
    }

    /// The project directory.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The host's record of commands that may download
    /// (`.silt/local-host/transfers`).
    pub fn transfers_dir(&self) -> std::path::PathBuf {
        self.path().join(".silt/local-host/transfers")
    }

    /// Leaves what a command killed mid-download leaves in the host's
    /// state: its marker, which nobody holds (a pid above Linux's maximum
    /// never runs), so the next walk for leftovers is due.
    pub fn mark_a_killed_command(&self) {
        std::fs::create_dir_all(self.transfers_dir()).unwrap();
        std::fs::write(self.transfers_dir().join(".command.silt-tmp.4194305.0"), "").unwrap();
    }

    /// Writes `content` to `name` in the project directory (an input for
    /// `silt data put`); returns its path.
    pub fn write_input(&self, name: &str, content: &str) -> String {
        let path = self.path().join(name);
        std::fs::write(&path, content).unwrap();
        path.to_str().unwrap().to_owned()
    }

    /// The working copy of a model.
    pub fn model_dir(&self, model: &str) -> PathBuf {
        self.path().join(".silt/local/data").join(model)
    }

    /// A `silt` command in the project, with the test server's credentials
    /// and the test process's shared artifact cache.
    pub fn silt(&self) -> Command {
        let mut command = super::silt(self.path());
        command
            .env("SILT_CACHE_DIR", super::shared_artifact_cache())
            .env("AWS_ACCESS_KEY_ID", seaweed::ACCESS_KEY)
            .env("AWS_SECRET_ACCESS_KEY", seaweed::SECRET_KEY)
            .env_remove("AWS_PROFILE")
            .env_remove("AWS_SESSION_TOKEN")
            .env_remove("SILT_LOCK_MAX_WAIT");
        command
    }

    /// A `silt` command in the project without any of the test process's
    /// variables whose names start with one of `prefixes` (cloud settings
    /// other tests put there), with `home` as its home and `variables`:
    /// only the credentials a test gives it.
    pub fn silt_with_only(
        &self,
        prefixes: &[&str],
        home: &Path,
        variables: &[(&str, String)],
    ) -> Command {
        let mut command = self.silt();
        for (name, _) in std::env::vars_os() {
            let text = name.to_string_lossy();
            if prefixes.iter().any(|prefix| text.starts_with(prefix)) {
                command.env_remove(name);
            }
        }
        command.env("HOME", home);
        for (name, value) in variables {
            command.env(name, value);
        }
        command
    }

    /// A put of `content` here and its get from another clone, each
    /// `silt` made by `silt_for`: both must succeed.
    pub fn round_trip(&self, content: &str, silt_for: impl Fn(&Project) -> Command) {
        let input = self.write_input("input", content);
        let (code, _, stderr) =
            super::output(silt_for(self).args(["-q", "data", "put", "t/m", "f.txt", &input]));
        assert_eq!(code, 0, "put: {stderr}");
        let clone = self.another_clone();
        let (code, stdout, stderr) =
            super::output(silt_for(&clone).args(["data", "get", "t/m", "f.txt", "-o", "-"]));
        assert_eq!((code, stdout.as_str()), (0, content), "get: {stderr}");
    }

    /// Runs silt with `args` and returns (code, stdout, stderr).
    pub fn run(&self, args: &[&str]) -> (i32, String, String) {
        super::output(self.silt().args(args))
    }

    /// Runs silt with `args`, asserting success; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let (code, stdout, stderr) = self.run(args);
        assert_eq!(
            code, 0,
            "silt {args:?} failed ({:?}, {}): {stderr}",
            self.backend, self.extension
        );
        stdout
    }

    /// `silt --json args...`, parsed.
    pub fn json(&self, args: &[&str]) -> serde_json::Value {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        serde_json::from_str(&self.ok(&all)).expect("silt printed JSON")
    }

    /// The lease generation each kept version of `name` was committed
    /// under, oldest first (`data history`).
    pub fn generations(&self, model: &str, name: &str) -> Vec<u64> {
        self.json(&["data", "history", model, name])["versions"]
            .clone()
            .as_array()
            .expect("a history")
            .iter()
            .map(|version| version["generation"].as_u64().expect("a generation"))
            .collect()
    }

    /// The names `silt data list` shows for `model`.
    pub fn file_names(&self, model: &str) -> Vec<String> {
        let listing = self.json(&["data", "list", model])["files"].clone();
        listing
            .as_array()
            .expect("a list")
            .iter()
            .map(|entry| entry["name"].as_str().expect("a name").to_owned())
            .collect()
    }

    /// The leases in the datastore that are not stale, as `lock status`
    /// lists them.
    pub fn live_leases(&self) -> Vec<serde_json::Value> {
        let leases = self.json(&["datastore", "lock", "status"])["locks"].clone();
        leases
            .as_array()
            .expect("a list of leases")
            .iter()
            .filter(|lease| lease["stale"] != serde_json::json!(true))
            .cloned()
            .collect()
    }

    /// Asserts that no lease is held in the datastore.
    pub fn assert_no_leases(&self) {
        let leases = self.json(&["datastore", "lock", "status"])["locks"].clone();
        assert_eq!(
            leases,
            serde_json::json!([]),
            "{:?}: leases left behind",
            self.backend
        );
    }

    /// The datastore root as the project's `silt.toml` names it.
    pub fn root_store(&self) -> std::sync::Arc<dyn silt::store::ObjectStore> {
        let config = silt::config::Config::load(&self.path().join("silt.toml")).unwrap();
        let store_dir = self.path().join(".silt/store");
        seaweed::use_test_credentials();
        silt::store::root::open(&config.datastore.root(&store_dir)).unwrap()
    }

    /// Replaces an object of the datastore root in the store.
    pub fn overwrite_object(&self, key: &str, data: &[u8]) {
        let store = self.root_store();
        let key = silt::store::ObjectKey::new(key).unwrap();
        tokio::runtime::Runtime::new()
            .unwrap()
            .block_on(store.put(&key, data.to_vec(), silt::store::PutMode::Overwrite))
            .unwrap();
    }

    /// Deletes an object of the datastore root.
    pub fn delete_object(&self, key: &str) {
        let store = self.root_store();
        let key = silt::store::ObjectKey::new(key).unwrap();
        tokio::runtime::Runtime::new()
            .unwrap()
            .block_on(store.delete(&key, None))
            .unwrap();
    }

    /// Reads an object of the datastore root.
    pub fn read_object(&self, key: &str) -> Vec<u8> {
        let store = self.root_store();
        let key = silt::store::ObjectKey::new(key).unwrap();
        match tokio::runtime::Runtime::new()
            .unwrap()
            .block_on(store.get(&key, None))
            .unwrap()
        {
            silt::store::GetOutcome::Found(_, data) => data,
            silt::store::GetOutcome::NotModified => unreachable!("unconditional get"),
        }
    }

    /// Every key under `prefix` in the datastore root.
    pub fn keys(&self, prefix: &str) -> Vec<String> {
        let store = self.root_store();
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let mut keys = Vec::new();
        let mut after = None;
        loop {
            let page = runtime
                .block_on(store.list(prefix, after.as_ref(), 1000))
                .unwrap();
            keys.extend(page.items.iter().map(|m| m.key.as_str().to_owned()));
            match page.next_start_after {
                Some(next) => after = Some(next),
                None => return keys,
            }
        }
    }
}

fn unique() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{nanos:x}{:x}", std::process::id())
}
