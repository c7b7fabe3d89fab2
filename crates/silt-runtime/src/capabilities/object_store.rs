//! The `object-store` import in this process: [`LocalStore`], the
//! guest's view of the store granted for this operation. Keys are
//! validated here, at the boundary, before any backend sees them.

use std::sync::Arc;

use super::Grants;
use super::guest_view::{guest_key, to_guest_error, to_guest_meta, to_host_mode};
use super::store_imports::{foreach_store_function, store_imports_by_inherent_methods};
use crate::beneath::Beneath;
use crate::bindings::silt::datastore::object_store::{
    DownloadItem, GetOutcome, Landed, ListPage, Object, ObjectMeta, PutMode, StoreError,
    UploadItem, Uploaded,
};
use crate::store::{self, ObjectKey, ObjectStore};

use super::progress::ProgressSink;

/// The `object-store` interface on the granted store and cache directory.
pub struct LocalStore {
    pub(crate) store: Option<Arc<dyn ObjectStore>>,
    pub(crate) cache: Option<Arc<Beneath>>,
    pub(crate) progress: Option<Arc<dyn ProgressSink>>,
    pub(crate) transfer_concurrency: usize,
    pub(crate) deliveries: Arc<super::delivery::Deliveries>,
    pub(crate) sendings: Arc<super::sending::Sendings>,
}

impl LocalStore {
    /// The store, cache directory (created if missing), progress sink and
    /// transfer concurrency `grants` lend.
    ///
    /// # Errors
    /// When the cache directory cannot be created or opened.
    pub fn new(grants: &Grants) -> anyhow::Result<Self> {
        let cache = match &grants.cache_dir {
            // The error names the directory already.
            Some(path) => Some(Arc::new(Beneath::create(path).map_err(|err| {
                anyhow::anyhow!("cannot create or open the cache directory: {err}")
            })?)),
            None => None,
        };
        Ok(Self {
            store: grants.store.clone(),
            cache,
            progress: grants.progress.clone(),
            transfer_concurrency: grants
                .transfer_concurrency
                .unwrap_or(super::transfer::DEFAULT_CONCURRENCY)
                .max(1),
            deliveries: grants.deliveries.clone(),
            sendings: grants.sendings.clone(),
        })
    }

    /// The granted store, or the error a guest gets when none was granted.
    pub(super) fn granted_store(&self) -> Result<Arc<dyn ObjectStore>, StoreError> {
        self.store.clone().ok_or_else(|| {
            StoreError::NotSupported("no datastore is available to this call".to_owned())
        })
    }
}

foreach_store_function!(store_imports_by_inherent_methods[LocalStore]);

impl LocalStore {
    /// `object-store.get`.
    pub async fn get(
        &self,
        key: String,
        if_none_match: Option<String>,
    ) -> Result<GetOutcome, StoreError> {
        let store = self.granted_store()?;
        let key = guest_key(&key)?;
        let if_none_match = if_none_match.map(store::Version);
        match store
            .get(&key, if_none_match.as_ref())
            .await
            .map_err(to_guest_error)?
        {
            store::GetOutcome::NotModified => Ok(GetOutcome::NotModified),
            store::GetOutcome::Found(meta, data) => Ok(GetOutcome::Found(Object {
                meta: to_guest_meta(meta),
                data,
            })),
        }
    }

    /// `object-store.head`.
    pub async fn head(&self, key: String) -> Result<ObjectMeta, StoreError> {
        let store = self.granted_store()?;
        let key = guest_key(&key)?;
        store
            .head(&key)
            .await
            .map(to_guest_meta)
            .map_err(to_guest_error)
    }

    /// `object-store.put`.
    pub async fn put(
        &self,
        key: String,
        data: Vec<u8>,
        mode: PutMode,
    ) -> Result<String, StoreError> {
        let store = self.granted_store()?;
        let key = guest_key(&key)?;
        store
            .put(&key, data, to_host_mode(mode))
            .await
            .map(|version| version.0)
            .map_err(to_guest_error)
    }

    /// `object-store.put-owned`.
    pub async fn put_owned(
        &self,
        key: String,
        data: Vec<u8>,
        mode: PutMode,
        owner_token: String,
    ) -> Result<String, StoreError> {
        let store = self.granted_store()?;
        let key = guest_key(&key)?;
        let request = store::put_owned(&*store, &key, data, to_host_mode(mode), &owner_token);
        request
            .await
            .map(|version| version.0)
            .map_err(to_guest_error)
    }

    /// `object-store.delete`.
    pub async fn delete(&self, key: String, if_match: Option<String>) -> Result<(), StoreError> {
        let store = self.granted_store()?;
        let key = guest_key(&key)?;
        let if_match = if_match.map(store::Version);
        store
            .delete(&key, if_match.as_ref())
            .await
            .map_err(to_guest_error)
    }

    /// `object-store.list`.
    pub async fn list(
        &self,
        prefix: String,
        start_after: Option<String>,
        limit: u32,
    ) -> Result<ListPage, StoreError> {
        let store = self.granted_store()?;
        // A prefix may be empty or end in `/`, so it is checked by the key
        // rules applied to a probe key below it.
        if !prefix.is_empty() {
            guest_key(&format!("{prefix}x"))?;
        }
        // Any valid key, reserved ones too: a page may end on one of the
        // host's keys, and the guest hands that back to go on.
        let start_after = start_after
            .as_deref()
            .map(|key| ObjectKey::new(key).map_err(|err| StoreError::InvalidKey(err.to_string())))
            .transpose()?;
        let page = store
            .list(&prefix, start_after.as_ref(), limit)
            .await
            .map_err(to_guest_error)?;
        Ok(ListPage {
            // The host's records are not the guest's to see (a page may
            // come back shorter, or empty, with more to follow).
            items: page
                .items
                .into_iter()
                .filter(|meta| !meta.key.is_host_reserved())
                .map(to_guest_meta)
                .collect(),
            next_start_after: page.next_start_after.map(|key| key.to_string()),
        })
    }

    /// `object-store.download`.
    pub async fn download(&self, items: Vec<DownloadItem>) -> Vec<Result<ObjectMeta, StoreError>> {
        super::transfer::download(super::transfer::Transfer::new(self), items).await
    }

    /// `object-store.download-landed`.
    pub async fn download_landed(
        &self,
        items: Vec<DownloadItem>,
    ) -> Vec<Result<Landed, StoreError>> {
        super::transfer::download_landed(super::transfer::Transfer::new(self), items).await
    }

    /// `object-store.upload`.
    pub async fn upload(&self, items: Vec<UploadItem>) -> Vec<Result<String, StoreError>> {
        super::transfer::upload(super::transfer::Transfer::new(self), items).await
    }

    /// `object-store.upload-hashed` (a staged `put` the operation named a
    /// sending is answered with the hash taken while staging it).
    pub async fn upload_hashed(&self, items: Vec<UploadItem>) -> Vec<Result<Uploaded, StoreError>> {
        super::transfer::upload_hashed(
            super::transfer::Transfer::new(self),
            self.sendings.clone(),
            items,
        )
        .await
    }

    /// `object-store.deliver`: only a delivery the operation named and is
    /// waiting for, made once (a failed attempt may be retried).
    pub async fn deliver(&self, item: DownloadItem) -> Result<ObjectMeta, StoreError> {
        let cache_path = item.cache_path.clone();
        let Some(destination) = self.deliveries.start(&cache_path) else {
            return Err(StoreError::InvalidPath(format!(
                "`{cache_path}` names no delivery the host is waiting for: download it into the cache instead"
            )));
        };
        match super::transfer::deliver(super::transfer::Transfer::new(self), &destination, item)
            .await
        {
            Ok(delivered) => {
                let meta = to_guest_meta(delivered.meta.clone());
                self.deliveries.landed(&cache_path, delivered);
                Ok(meta)
            }
            Err(err) => {
                self.deliveries.failed(&cache_path, destination);
                Err(err)
            }
        }
    }
}
