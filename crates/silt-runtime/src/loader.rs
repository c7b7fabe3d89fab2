//! Lazy loading: the first execution of a component compiles it (or loads
//! its cached artifact) and prepares an `InstancePre`; every later execution
//! in the process reuses that. Concurrent first executions share one
//! compile; a failed compile is not remembered.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use wasmtime::component::Component;

use super::artifacts::ArtifactCache;
use super::engine::EngineHandle;
use super::error::RuntimeError;
use super::host_state::HostState;
use super::versions::BindingsPre;

/// How a loaded component was obtained, for reports and benchmarks.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Origin {
    /// Compiled now with Cranelift.
    Compiled {
        /// Time spent compiling.
        #[serde(rename = "took_us", serialize_with = "as_micros")]
        took: Duration,
        /// Where the artifact was cached, if writing it succeeded.
        artifact: Option<PathBuf>,
    },
    /// Loaded from the artifact cache.
    Cached {
        /// Time spent mapping and checking the artifact.
        #[serde(rename = "took_us", serialize_with = "as_micros")]
        took: Duration,
        /// The artifact.
        artifact: PathBuf,
    },
}

fn as_micros<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(d.as_micros() as u64)
}

/// A component ready to be instantiated any number of times.
pub struct LoadedExtension {
    /// Its metadata (name, version, API), from the bytes that were validated and loaded.
    pub metadata: super::Metadata,
    /// sha256 of the component file.
    pub sha256: String,
    /// How it was loaded.
    pub origin: Origin,
    pub(crate) pre: BindingsPre<HostState>,
    pub(crate) engine: Arc<EngineHandle>,
}

/// Loads the cached artifact of `bytes` or compiles them, then links the component.
pub(crate) fn compile_or_load(
    engine: &Arc<EngineHandle>,
    cache: &ArtifactCache,
    metadata: super::Metadata,
    sha256: &str,
    bytes: &[u8],
) -> Result<LoadedExtension, RuntimeError> {
    let name = metadata.name.as_str();
    let key = ArtifactCache::key(&engine.compat_hash, sha256);
    let started = Instant::now();
    let (component, origin) = match cache.load(&engine.engine, &key) {
        Some(component) => {
            count_cache_hit();
            (
                component,
                Origin::Cached {
                    took: started.elapsed(),
                    artifact: cache.path(&key),
                },
            )
        }
        None => {
            tracing::event!(target: crate::store::METRICS_TARGET, tracing::Level::INFO, { monotonic_counter.silt.extension.compiles = 1u64 });
            let component =
                Component::new(&engine.engine, bytes).map_err(|err| RuntimeError::Compile {
                    extension: name.to_owned(),
                    detail: format!("{err:#}"),
                })?;
            let took = started.elapsed();
            let artifact = match component.serialize() {
                Ok(serialized) => match cache.store(&key, &serialized) {
                    Ok(path) => Some(path),
                    Err(err) => {
                        tracing::warn!(
                            "cannot write artifact cache {}: {err}",
                            cache.dir().display()
                        );
                        None
                    }
                },
                Err(err) => {
                    tracing::warn!("cannot serialize compiled `{name}`: {err:#}");
                    None
                }
            };
            tracing::info!(extension = name, ms = took.as_millis() as u64, "compiled");
            (component, Origin::Compiled { took, artifact })
        }
    };
    link(engine, &component, metadata, sha256, origin)
}

/// Loads the cached artifact of the component with `sha256` and links it;
/// `None` when the artifact is not cached or unusable (or cannot be linked).
pub(crate) fn load_cached(
    engine: &Arc<EngineHandle>,
    cache: &ArtifactCache,
    metadata: super::Metadata,
    sha256: &str,
) -> Option<LoadedExtension> {
    let key = ArtifactCache::key(&engine.compat_hash, sha256);
    let started = Instant::now();
    let component = cache.load(&engine.engine, &key)?;
    count_cache_hit();
    let origin = Origin::Cached {
        took: started.elapsed(),
        artifact: cache.path(&key),
    };
    link(engine, &component, metadata, sha256, origin).ok()
}

/// A compiled artifact found in the cache (no compilation).
fn count_cache_hit() {
    tracing::event!(target: crate::store::METRICS_TARGET, tracing::Level::INFO, { monotonic_counter.silt.artifact_cache.hits = 1u64 });
}

impl LoadedExtension {
    /// The compiled component (to write its artifact again).
    pub fn component(&self) -> &Component {
        self.pre.instance_pre().component()
    }

    /// Links `component`, compiled elsewhere (a worker's bundle) for
    /// `engine`, against the host's imports.
    ///
    /// # Errors
    /// [`RuntimeError::Instantiate`] when its imports cannot be linked.
    pub fn from_component(
        engine: &Arc<EngineHandle>,
        component: &Component,
        metadata: super::Metadata,
        sha256: &str,
        origin: Origin,
    ) -> Result<Self, RuntimeError> {
        link(engine, component, metadata, sha256, origin)
    }
}

/// Links a compiled `component` against the host's imports.
fn link(
    engine: &Arc<EngineHandle>,
    component: &Component,
    metadata: super::Metadata,
    sha256: &str,
    origin: Origin,
) -> Result<LoadedExtension, RuntimeError> {
    let name = metadata.name.as_str();
    let instance_pre =
        engine
            .linker
            .instantiate_pre(component)
            .map_err(|err| RuntimeError::Instantiate {
                extension: name.to_owned(),
                detail: format!("{err:#}"),
            })?;
    let api_version = super::metadata::api_version(&metadata.api).unwrap_or_default();
    let pre =
        BindingsPre::new(instance_pre, api_version).map_err(|err| RuntimeError::Instantiate {
            extension: name.to_owned(),
            detail: format!("{err:#}"),
        })?;
    Ok(LoadedExtension {
        metadata,
        sha256: sha256.to_owned(),
        origin,
        pre,
        engine: engine.clone(),
    })
}
