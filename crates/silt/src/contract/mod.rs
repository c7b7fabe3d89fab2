//! The datastore contract suite: `silt extension test PATH.wasm` runs it
//! against any component, ours or a third party's, on a fresh datastore in
//! a temporary directory (or an S3 prefix), and reports each check as
//! passed, failed (with the reason) or skipped (a capability the extension
//! does not declare).
//!
//! Every check drives the extension through the host exactly as `silt`
//! does ([`Datastore`]), with several clones of one datastore (each its own
//! local copy and lease holder) standing in for several machines. The
//! checks are in [`checks`]; what they establish:
//!
//! - the component loads and validates, and `describe` matches its metadata;
//! - `setup` creates a datastore and a second clone attaches to it;
//! - a file put under a lease reads back byte for byte, is listed and has
//!   history; a pull brings it to another clone and a push from there comes
//!   back;
//! - a model lease excludes a second holder, is renewed and released, and a
//!   lease taken over after it went stale can no longer commit (fencing);
//! - a commit whose write is held while another clone force-releases the
//!   lease and takes the model over never lands (fencing by generation:
//!   a look at the lock object before the write is not enough);
//! - namespace and model leases exclude each other (`namespace-locks`);
//! - a lazy clone's hydration fetches exactly what is asked
//!   (`lazy-hydration`); gc keeps what it is told (`gc`);
//! - `verify` and the orphan listing agree with what the extension
//!   committed: clean after commits, an object deleted behind its back is
//!   reported, an uncommitted object planted beside its own is the one
//!   orphan (so a key layout changed in one place and not another fails);
//! - mistakes get typed errors: a missing file is `not-found`, a forged
//!   lease is refused, a malformed model is `invalid-input`.

pub mod checks;
mod paused_writes;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Serialize;

use crate::config::{Backend, Config};
use crate::datastore::Datastore;
use crate::locations::Locations;
use crate::runtime::bindings::silt::datastore::types::Holder;
use crate::sandbox::Execution;
use crate::store::{ObjectStore, S3Config, root};

/// Where the suite's datastore lives.
#[derive(Debug, Clone)]
pub enum SuiteStore {
    /// A temporary directory (removed afterwards).
    Dir,
    /// A fresh prefix in an S3 bucket (left behind; name it to clean up).
    S3(S3Config),
}

/// How to run the suite.
#[derive(Debug, Clone)]
pub struct SuiteOptions {
    /// The component to test.
    pub component: PathBuf,
    /// The artifact cache (compiled components are reused across runs).
    pub cache_dir: PathBuf,
    /// The datastore.
    pub store: SuiteStore,
    /// Where the extension runs.
    pub execution: Execution,
}

/// How a check ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// The extension did what the contract says.
    Pass,
    /// It did not; the detail says what happened instead.
    Fail,
    /// Not applicable (a capability the extension does not declare), or
    /// not reachable because an earlier check failed.
    Skip,
}

/// One row of the report.
#[derive(Debug, Clone, Serialize)]
pub struct CheckResult {
    /// What is checked, in a few words.
    pub check: &'static str,
    /// How it ended.
    pub outcome: Outcome,
    /// What was seen (pass), what went wrong (fail), or why not run (skip).
    pub detail: String,
}

/// The suite's fixture: one datastore, clones of it, the extension's metadata.
pub struct Fixture {
    options: SuiteOptions,
    root: PathBuf,
    store: Arc<dyn ObjectStore>,
    /// The extension's declared capabilities.
    pub capabilities: Vec<String>,
    /// The extension's name (from its metadata).
    pub name: String,
    clones: std::sync::atomic::AtomicU32,
}

impl Fixture {
    /// The fixture for the checks, once the component has loaded.
    fn new(
        options: SuiteOptions,
        root: PathBuf,
        store: Arc<dyn ObjectStore>,
        name: String,
        capabilities: Vec<String>,
    ) -> Self {
        Self {
            options,
            root,
            store,
            capabilities,
            name,
            clones: std::sync::atomic::AtomicU32::new(0),
        }
    }

    /// Opens another clone of the datastore: its own local copy and its
    /// own lease holder, as another machine would be.
    ///
    /// # Errors
    /// When the extension cannot be loaded.
    pub async fn clone_datastore(&self, lazy: bool) -> anyhow::Result<Arc<Datastore>> {
        self.clone_over(self.store.clone(), lazy).await
    }

    /// Opens another clone that reaches the datastore through `store` (the
    /// fixture's store, wrapped).
    async fn clone_over(
        &self,
        store: Arc<dyn ObjectStore>,
        lazy: bool,
    ) -> anyhow::Result<Arc<Datastore>> {
        let n = self
            .clones
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut config = Config::default();
        config.datastore.extension = self.name.clone();
        config.sandbox.force_execution(self.options.execution);
        config.datastore.hydration = if lazy {
            crate::config::Hydration::Lazy
        } else {
            crate::config::Hydration::Full
        };
        let locations = Locations {
            config_file: None,
            config,
            extensions_dir: self.root.join("extensions"),
            user_extensions_dir: None,
            cache_dir: self.options.cache_dir.clone(),
            store_dir: self.root.join("store"),
            local_dir: self.root.join(format!("clone-{n}")),
        };
        let datastore =
            Datastore::open_with_store(&locations, &self.options.component, store, None)
                .await?
                .with_holder(Holder {
                    name: format!("contract-{n}@silt-extension-test"),
                    host: "silt-extension-test".to_owned(),
                    // Distinct per clone, as distinct processes are.
                    pid: 1_000_000 + n,
                });
        Ok(Arc::new(datastore))
    }

    /// True when the extension declares `capability`.
    pub fn declares(&self, capability: &str) -> bool {
        self.capabilities.iter().any(|c| c == capability)
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

/// Runs the whole suite.
///
/// # Errors
/// Only when the fixture cannot be made (temporary directory, store);
/// every failure of the extension is a failed check.
pub async fn run(options: SuiteOptions) -> anyhow::Result<Vec<CheckResult>> {
    let root = std::env::temp_dir().join(format!(
        "silt-extension-test-{}-{}",
        std::process::id(),
        crate::datastore::now_ms()
    ));
    std::fs::create_dir_all(&root)?;
    let mut datastore_config = Config::default().datastore;
    if let SuiteStore::S3(s3) = &options.store {
        let mut s3 = s3.clone();
        // A fresh prefix per run: the suite needs an empty datastore.
        s3.prefix = join_prefix(&s3.prefix, &format!("silt-extension-test-{}", unique()));
        datastore_config.backend = Backend::S3;
        datastore_config.s3 = Some(s3);
    }
    let store = root::open(&datastore_config.root(&root.join("store")))?;
    checks::run_all(options, root, store).await
}

fn join_prefix(prefix: &str, leaf: &str) -> String {
    let prefix = prefix.trim_end_matches('/');
    if prefix.is_empty() {
        leaf.to_owned()
    } else {
        format!("{prefix}/{leaf}")
    }
}

fn unique() -> String {
    format!("{}-{}", crate::datastore::now_ms(), std::process::id())
}

/// Writes `content` into `datastore`'s local copy at a staging path and
/// returns that path relative to the local copy (what `put-file` takes).
fn stage(datastore: &Datastore, name: &str, content: &[u8]) -> anyhow::Result<String> {
    let relative = format!(".silt/staging/contract-{name}");
    write_local(datastore, Path::new(&relative), content)?;
    Ok(relative)
}

/// Writes a file of `datastore`'s local copy (never through a link the
/// extension under test planted).
fn write_local(datastore: &Datastore, relative: &Path, content: &[u8]) -> anyhow::Result<()> {
    Ok(datastore.local()?.write_atomic(relative, content)?)
}

/// Reads a file of `datastore`'s local copy (never through a link).
fn read_local(datastore: &Datastore, relative: &Path) -> Option<Vec<u8>> {
    // The suite's files are small; a larger one is not what it wrote.
    datastore.local().ok()?.read(relative, 1 << 20).ok()
}
