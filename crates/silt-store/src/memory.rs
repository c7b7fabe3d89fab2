//! An in-memory store, for unit tests and demos that need no persistence.

use std::collections::BTreeMap;
use std::sync::Mutex;

use super::{
    GetOutcome, ListPage, MAX_LIST_PAGE, ObjectKey, ObjectMeta, ObjectStore, PutMode, StoreError,
    Version, mode_allows,
};

/// A store held in memory; versions are a global generation counter.
#[derive(Debug, Default)]
pub struct MemoryStore {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    objects: BTreeMap<ObjectKey, (ObjectMeta, Vec<u8>)>,
    generation: u64,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }
}

impl std::fmt::Display for MemoryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("memory store")
    }
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

#[async_trait::async_trait]
impl ObjectStore for MemoryStore {
    async fn get(
        &self,
        key: &ObjectKey,
        if_none_match: Option<&Version>,
    ) -> Result<GetOutcome, StoreError> {
        let state = self.state.lock().expect("memory store poisoned");
        let (meta, data) = state.objects.get(key).ok_or_else(|| StoreError::NotFound {
            key: key.to_string(),
        })?;
        if if_none_match == Some(&meta.version) {
            return Ok(GetOutcome::NotModified);
        }
        if meta.size > super::MAX_WHOLE_GET {
            return Err(super::too_large_to_get(key, meta.size));
        }
        Ok(GetOutcome::Found(meta.clone(), data.clone()))
    }

    async fn head(&self, key: &ObjectKey) -> Result<ObjectMeta, StoreError> {
        let state = self.state.lock().expect("memory store poisoned");
        state
            .objects
            .get(key)
            .map(|(meta, _)| meta.clone())
            .ok_or_else(|| StoreError::NotFound {
                key: key.to_string(),
            })
    }

    async fn put(
        &self,
        key: &ObjectKey,
        data: Vec<u8>,
        mode: PutMode,
    ) -> Result<Version, StoreError> {
        let mut state = self.state.lock().expect("memory store poisoned");
        let current = state.objects.get(key).map(|(meta, _)| meta.version.clone());
        mode_allows(&mode, current.as_ref(), key)?;
        state.generation += 1;
        let version = Version(format!("g{}", state.generation));
        let meta = ObjectMeta {
            key: key.clone(),
            size: data.len() as u64,
            version: version.clone(),
            last_modified_ms: now_ms(),
        };
        state.objects.insert(key.clone(), (meta, data));
        Ok(version)
    }

    async fn delete(&self, key: &ObjectKey, if_match: Option<&Version>) -> Result<(), StoreError> {
        let mut state = self.state.lock().expect("memory store poisoned");
        if let Some(expected) = if_match {
            let current = state.objects.get(key).map(|(meta, _)| &meta.version);
            if current != Some(expected) {
                return Err(StoreError::PreconditionFailed {
                    key: key.to_string(),
                });
            }
        }
        state.objects.remove(key);
        Ok(())
    }

    async fn list(
        &self,
        prefix: &str,
        start_after: Option<&ObjectKey>,
        limit: u32,
    ) -> Result<ListPage, StoreError> {
        let limit = limit.clamp(1, MAX_LIST_PAGE) as usize;
        let state = self.state.lock().expect("memory store poisoned");
        let mut items: Vec<ObjectMeta> = state
            .objects
            .iter()
            .filter(|(key, _)| key.as_str().starts_with(prefix))
            .filter(|(key, _)| start_after.is_none_or(|after| *key > after))
            .take(limit + 1)
            .map(|(_, (meta, _))| meta.clone())
            .collect();
        let next_start_after = if items.len() > limit {
            items.truncate(limit);
            items.last().map(|meta| meta.key.clone())
        } else {
            None
        };
        Ok(ListPage {
            items,
            next_start_after,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(s: &str) -> ObjectKey {
        ObjectKey::new(s).unwrap()
    }

    #[tokio::test]
    async fn put_modes_and_conditional_delete() {
        let store = MemoryStore::new();
        let v1 = store
            .put(&key("a"), b"1".to_vec(), PutMode::Create)
            .await
            .unwrap();
        assert!(matches!(
            store.put(&key("a"), b"2".to_vec(), PutMode::Create).await,
            Err(StoreError::AlreadyExists { .. })
        ));
        let v2 = store
            .put(&key("a"), b"2".to_vec(), PutMode::Update(v1.clone()))
            .await
            .unwrap();
        assert!(matches!(
            store
                .put(&key("a"), b"3".to_vec(), PutMode::Update(v1.clone()))
                .await,
            Err(StoreError::PreconditionFailed { .. })
        ));
        assert_eq!(
            store.get(&key("a"), Some(&v2)).await.unwrap(),
            GetOutcome::NotModified
        );
        assert!(store.delete(&key("a"), Some(&v1)).await.is_err());
        store.delete(&key("a"), Some(&v2)).await.unwrap();
        assert!(matches!(
            store.head(&key("a")).await,
            Err(StoreError::NotFound { .. })
        ));
    }

    #[tokio::test]
    async fn list_paginates() {
        let store = MemoryStore::new();
        for i in 0..25 {
            store
                .put(&key(&format!("p/{i:03}")), vec![], PutMode::Overwrite)
                .await
                .unwrap();
        }
        store
            .put(&key("q/x"), vec![], PutMode::Overwrite)
            .await
            .unwrap();
        let mut seen = 0;
        let mut after = None;
        loop {
            let page = store.list("p/", after.as_ref(), 10).await.unwrap();
            seen += page.items.len();
            match page.next_start_after {
                Some(next) => after = Some(next),
                None => break,
            }
        }
        assert_eq!(seen, 25);
    }
}
