//! `silt cache show|prune`: the artifact cache of compiled extensions.

use serde::Serialize;

use crate::locations::Locations;
use crate::runtime::{ArtifactCache, CacheEntry, PruneReport};

/// The cache as `silt.toml` configures it.
fn cache(locations: &Locations) -> (ArtifactCache, u64) {
    let max_bytes = locations.config.cache.max_size_mib << 20;
    (
        ArtifactCache::new(&locations.cache_dir, max_bytes),
        max_bytes,
    )
}

/// Where the cache is, what it holds, and its cap.
#[derive(Debug, Serialize)]
pub struct ShowReport {
    /// Its directory.
    pub dir: std::path::PathBuf,
    /// Its cap.
    pub max_bytes: u64,
    /// What its artifacts take.
    pub total_bytes: u64,
    /// Its artifacts.
    pub entries: Vec<CacheEntry>,
}

/// The cache's contents.
///
/// # Errors
/// When its directory cannot be read.
pub fn show(locations: &Locations) -> anyhow::Result<ShowReport> {
    let (cache, max_bytes) = cache(locations);
    let entries = cache.entries()?;
    Ok(ShowReport {
        dir: cache.dir().to_owned(),
        max_bytes,
        total_bytes: entries.iter().map(|e| e.size).sum(),
        entries,
    })
}

/// Evicts the least recently used artifacts down to `max_bytes` (default:
/// the configured cap).
///
/// # Errors
/// When the cache cannot be read or an artifact removed.
pub fn prune(locations: &Locations, max_bytes: Option<u64>) -> anyhow::Result<PruneReport> {
    let (cache, cap) = cache(locations);
    Ok(cache.evict_to(max_bytes.unwrap_or(cap), None)?)
}
