//! Concurrent callers asking for the same key share one computation; a
//! failure is handed to the callers that waited for it but not remembered,
//! so the next call tries again.

use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::sync::{Arc, Mutex};

use tokio::sync::OnceCell;

/// A map of lazily computed, shared values.
pub struct SingleFlight<K, V> {
    cells: Mutex<HashMap<K, Arc<OnceCell<V>>>>,
}

impl<K, V> Default for SingleFlight<K, V> {
    fn default() -> Self {
        Self {
            cells: Mutex::new(HashMap::new()),
        }
    }
}

impl<K: Eq + Hash + Clone, V: Clone> SingleFlight<K, V> {
    /// Returns the value for `key`, computing it with `init` if no caller has
    /// yet succeeded. While one `init` runs, other callers for the same key
    /// wait for it; if it fails, the next waiter runs its own `init`.
    ///
    /// # Errors
    /// The error of the `init` this caller ran.
    pub async fn get_or_try_init<E, F, Fut>(&self, key: &K, init: F) -> Result<V, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<V, E>>,
    {
        let cell = {
            let mut cells = self.cells.lock().expect("single-flight map poisoned");
            cells.entry(key.clone()).or_default().clone()
        };
        cell.get_or_try_init(init).await.cloned()
    }

    /// The value for `key` if one was computed.
    #[cfg(test)]
    pub fn get(&self, key: &K) -> Option<V> {
        let cells = self.cells.lock().expect("single-flight map poisoned");
        cells.get(key).and_then(|cell| cell.get().cloned())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn concurrent_callers_share_one_computation() {
        let flights: Arc<SingleFlight<&str, u32>> = Arc::default();
        let runs = Arc::new(AtomicU32::new(0));
        let mut tasks = Vec::new();
        for _ in 0..16 {
            let (flights, runs) = (flights.clone(), runs.clone());
            tasks.push(tokio::spawn(async move {
                flights
                    .get_or_try_init(&"k", || async {
                        runs.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        Ok::<_, ()>(7)
                    })
                    .await
            }));
        }
        for task in tasks {
            assert_eq!(task.await.unwrap(), Ok(7));
        }
        assert_eq!(runs.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_failure_is_not_cached() {
        let flights: SingleFlight<&str, u32> = SingleFlight::default();
        let first = flights
            .get_or_try_init(&"k", || async { Err("boom") })
            .await;
        assert_eq!(first, Err("boom"));
        assert_eq!(flights.get(&"k"), None);
        let second = flights
            .get_or_try_init(&"k", || async { Ok::<_, &str>(1) })
            .await;
        assert_eq!(second, Ok(1));
        assert_eq!(flights.get(&"k"), Some(1));
    }
}
