//! The extension runtimes of this process: one per set of limits and
//! artifact cache, shared by everything the command runs. Loaded extensions are keyed by their content's sha256, so a
//! re-installed extension is loaded afresh, never served stale.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use crate::runtime::{ArtifactCache, Runtime, RuntimeConfig};

/// Runtimes by what makes them differ: limits, artifact cache and its size.
#[derive(Default)]
pub struct Runtimes {
    shelf: Mutex<Vec<(Key, Arc<Runtime>)>>,
}

#[derive(PartialEq)]
struct Key {
    config: RuntimeConfig,
    cache_dir: PathBuf,
    cache_max_bytes: u64,
}

impl Runtimes {
    /// The runtime for these limits and this artifact cache: the one kept,
    /// or a new one, kept from now on.
    pub fn get(
        &self,
        config: &RuntimeConfig,
        cache_dir: &Path,
        cache_max_bytes: u64,
    ) -> Arc<Runtime> {
        let key = Key {
            config: config.clone(),
            cache_dir: cache_dir.to_owned(),
            cache_max_bytes,
        };
        let mut shelf = self.shelf.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((_, runtime)) = shelf.iter().find(|(kept, _)| *kept == key) {
            return runtime.clone();
        }
        let runtime = Arc::new(Runtime::new(
            config.clone(),
            ArtifactCache::new(cache_dir, cache_max_bytes),
        ));
        shelf.push((key, runtime.clone()));
        runtime
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_settings_get_the_same_runtime_and_others_their_own() {
        let runtimes = Runtimes::default();
        let config = RuntimeConfig::default();
        let a = runtimes.get(&config, Path::new("/c"), 10);
        assert!(Arc::ptr_eq(&a, &runtimes.get(&config, Path::new("/c"), 10)));
        assert!(!Arc::ptr_eq(
            &a,
            &runtimes.get(&config, Path::new("/d"), 10)
        ));
        assert!(!Arc::ptr_eq(
            &a,
            &runtimes.get(&config, Path::new("/c"), 11)
        ));
        let tighter = RuntimeConfig {
            deadline_ms: 1,
            ..RuntimeConfig::default()
        };
        assert!(!Arc::ptr_eq(
            &a,
            &runtimes.get(&tighter, Path::new("/c"), 10)
        ));
    }
}
