//! The bundle an out-of-process worker runs: the precompiled artifact from
//! the artifact cache plus a manifest that says what it is and what it was
//! compiled for, so the worker can refuse anything else.
//!
//! A bundle is built lazily, by the first out-of-process execution of an
//! extension (listing, inspecting and in-process use never build one); it
//! lives in the artifact cache beside its artifact (`<key>.cwasm` and
//! `<key>.bundle.json`), shares its size cap and is evicted with it. Two
//! processes building the same bundle write the same manifest through a
//! temporary file and a rename, so both succeed; a failed build leaves
//! nothing behind and is retried by the next execution.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::config::RuntimeConfig;
use crate::runtime::{
    ArtifactCache, EngineHandle, LoadedExtension, Metadata, Origin, Runtime, RuntimeError,
    WASMTIME_VERSION, bundle_manifest_path,
};

/// Version of the manifest's format.
pub const BUNDLE_FORMAT: u32 = 2;

impl BundleManifest {
    /// Parses a bundle manifest (the worker reads it from a directory the
    /// host wrote, but checks it all the same).
    ///
    /// # Errors
    /// When it is not the JSON of a manifest.
    pub fn parse(bytes: &[u8]) -> Result<Self, String> {
        serde_json::from_slice(bytes)
            .map_err(|err| format!("the bundle manifest is malformed: {err}"))
    }
}

/// What a bundle holds, written beside its artifact as JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BundleManifest {
    /// [`BUNDLE_FORMAT`].
    pub format: u32,
    /// The wasmtime version that compiled the artifact.
    pub wasmtime: String,
    /// The engine compatibility hash the artifact was compiled under.
    pub compat_hash: String,
    /// The engine configuration (limits and allocator) of that engine.
    pub engine: RuntimeConfig,
    /// The extension's metadata.
    pub extension: Metadata,
    /// sha256 of the component the artifact was compiled from.
    pub component_sha256: String,
    /// Size of the artifact file in bytes (a cheap check against a
    /// truncated or replaced file; wasmtime checks the header itself).
    pub artifact_size: u64,
}

/// A built bundle, as the host sees it.
#[derive(Debug, Clone)]
pub struct Bundle {
    /// The precompiled artifact.
    pub artifact: PathBuf,
    /// Its manifest.
    pub manifest_path: PathBuf,
    /// What the manifest says.
    pub manifest: BundleManifest,
}

impl Bundle {
    /// Builds the bundle of the component at `component`: compiles it (or
    /// reuses its cached artifact) and writes the manifest.
    ///
    /// # Errors
    /// When the component is invalid or does not compile, or the artifact
    /// cache cannot be written (a worker can only run a cached artifact).
    pub async fn build(runtime: &Runtime, component: &Path) -> Result<Self, RuntimeError> {
        let loaded = runtime.load(component).await?;
        let engine = runtime.engine().await?;
        let extension = loaded.metadata.name.clone();
        let key = ArtifactCache::key(&engine.compat_hash, &loaded.sha256);
        let artifact = runtime.cache().path(&key);
        let failed = |detail: String| RuntimeError::Worker {
            extension: extension.clone(),
            detail,
        };
        if !artifact.is_file() {
            // Evicted by another process since this one loaded it: this
            // process still holds the compiled component; write it again.
            let serialized = loaded.component().serialize().map_err(|err| {
                failed(format!("cannot serialize the compiled component: {err:#}"))
            })?;
            runtime.cache().store(&key, &serialized).map_err(|err| {
                failed(format!(
                    "cannot write {} ({err}); out-of-process execution needs a writable artifact cache (see [cache] dir in silt.toml)",
                    artifact.display()
                ))
            })?;
        }
        // Written under a stricter umask by an earlier silt, it would be
        // unreadable to a worker of another uid.
        if let Ok(file) = std::fs::File::open(&artifact)
            && let Err(err) = crate::runtime::make_worker_readable(&file)
        {
            tracing::debug!(
                "cannot make {} readable to workers: {err}",
                artifact.display()
            );
        }
        let artifact_size = std::fs::metadata(&artifact)
            .map_err(|err| {
                failed(format!(
                    "cannot read the compiled artifact {} ({err}); out-of-process execution needs a writable artifact cache (see [cache] dir in silt.toml)",
                    artifact.display()
                ))
            })?
            .len();
        let manifest = BundleManifest {
            format: BUNDLE_FORMAT,
            wasmtime: WASMTIME_VERSION.to_owned(),
            compat_hash: engine.compat_hash.clone(),
            engine: runtime.config().clone(),
            extension: loaded.metadata.clone(),
            component_sha256: loaded.sha256.clone(),
            artifact_size,
        };
        let text = serde_json::to_vec_pretty(&manifest)
            .map_err(|err| failed(format!("cannot write the bundle manifest: {err}")))?;
        let variant = crate::runtime::sha256_hex(&text);
        let manifest_path = bundle_manifest_path(&artifact, &variant[..16]);
        write_manifest(&manifest_path, &text).map_err(|err| {
            failed(format!(
                "cannot write the bundle manifest {}: {err}",
                manifest_path.display()
            ))
        })?;
        tracing::debug!(extension, bundle = %manifest_path.display(), "bundle ready");
        Ok(Self {
            artifact,
            manifest_path,
            manifest,
        })
    }

    /// True while the bundle's files are still in the cache (another
    /// process may have evicted them since it was built).
    pub fn is_present(&self) -> bool {
        self.artifact.is_file() && self.manifest_path.is_file()
    }
}

fn write_manifest(path: &Path, text: &[u8]) -> std::io::Result<()> {
    if std::fs::read(path).is_ok_and(|existing| existing == text) {
        return std::fs::File::open(path)
            .and_then(|file| crate::runtime::make_worker_readable(&file));
    }
    // Unique per writer (two pools of one process may build at once); the
    // artifact cache's stale-temp sweep knows the `.tmp.` pattern.
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let temp = path.with_extension(format!("bundle.json.tmp.{}-{n}", std::process::id()));
    let result =
        crate::runtime::write_readable(&temp, text).and_then(|()| std::fs::rename(&temp, path));
    if result.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    result
}

/// In the worker: checks the bundle against what the host asked for and
/// against this worker's engine, then loads its artifact.
///
/// # Errors
/// A message saying what does not match or could not be read.
pub(crate) fn open_in_worker(
    manifest_path: &Path,
    artifact: &Path,
    expected_extension: &str,
    expected_component_sha256: &str,
    runtime: &RuntimeConfig,
) -> Result<Arc<LoadedExtension>, String> {
    let text = std::fs::read(manifest_path).map_err(|err| {
        format!(
            "cannot read the bundle manifest {}: {err}",
            manifest_path.display()
        )
    })?;
    let manifest = BundleManifest::parse(&text)?;
    if manifest.format != BUNDLE_FORMAT || manifest.wasmtime != WASMTIME_VERSION {
        return Err(format!(
            "the bundle was built by another silt (format {}, wasmtime {}; this worker: format {BUNDLE_FORMAT}, wasmtime {WASMTIME_VERSION})",
            manifest.format, manifest.wasmtime
        ));
    }
    if manifest.extension.name != expected_extension
        || manifest.component_sha256 != expected_component_sha256
    {
        return Err(format!(
            "the bundle holds `{}` ({}), not the expected `{expected_extension}` ({expected_component_sha256})",
            manifest.extension.name, manifest.component_sha256
        ));
    }
    let size = std::fs::metadata(artifact)
        .map_err(|err| format!("cannot read the artifact {}: {err}", artifact.display()))?
        .len();
    if size != manifest.artifact_size {
        return Err(format!(
            "the artifact is {size} bytes, its manifest says {}: the bundle is damaged",
            manifest.artifact_size
        ));
    }
    // A worker runs one instance at a time: on-demand allocation starts
    // faster than reserving a pool (≈ 0.5 ms), and is used whenever it
    // loads the same artifacts as the host's engine.
    let on_demand = RuntimeConfig {
        pooling: false,
        ..runtime.clone()
    };
    let start_engine = |config: &RuntimeConfig| {
        EngineHandle::new(config).map_err(|err| format!("cannot start the engine: {err:#}"))
    };
    let mut engine = start_engine(&on_demand)?;
    if engine.compat_hash != manifest.compat_hash && runtime.pooling {
        engine = start_engine(runtime)?;
    }
    if engine.compat_hash != manifest.compat_hash {
        return Err(
            "the bundle was compiled for another engine configuration (its compatibility hash differs)"
                .to_owned(),
        );
    }
    let started = std::time::Instant::now();
    // SAFETY: the artifact was written by the host's artifact cache from
    // `Component::serialize` under an engine with this compatibility hash
    // (checked above), and cache entries are replaced only by rename, never
    // modified in place. wasmtime checks its header again and refuses a
    // foreign or damaged artifact with an error.
    let component =
        unsafe { wasmtime::component::Component::deserialize_file(&engine.engine, artifact) }
            .map_err(|err| format!("cannot load the artifact {}: {err:#}", artifact.display()))?;
    let origin = Origin::Cached {
        took: started.elapsed(),
        artifact: artifact.to_owned(),
    };
    LoadedExtension::from_component(
        &engine,
        &component,
        manifest.extension,
        &manifest.component_sha256,
        origin,
    )
    .map(Arc::new)
    .map_err(|err| err.to_string())
}
