//! The `object-store` import: the guest's view of the store granted for
//! this operation. Keys are validated here, at the boundary, before any
//! backend sees them.

use std::sync::Arc;

use crate::runtime::HostState;
use crate::runtime::bindings::silt::datastore::object_store::{
    DownloadItem, GetOutcome, Host, ListPage, Object, ObjectMeta, PutMode, StoreError, UploadItem,
};
use crate::runtime::bindings::silt::datastore::types::BackendFailure;
use crate::store::{self, ObjectKey, ObjectStore};
use crate::worker::host_link::forward_import;
use crate::worker::protocol::{ImportCall, ImportReply};

impl HostState {
    /// The granted store, or the error a guest gets when none was granted.
    pub(crate) fn granted_store(&self) -> Result<Arc<dyn ObjectStore>, StoreError> {
        self.grants.store.clone().ok_or_else(|| {
            StoreError::NotSupported("no datastore is available to this call".to_owned())
        })
    }
}

/// Maps a host store error to the guest's view of it.
pub(crate) fn to_guest_error(err: store::StoreError) -> StoreError {
    match err {
        store::StoreError::NotFound { .. } => StoreError::NotFound,
        store::StoreError::AlreadyExists { .. } => StoreError::AlreadyExists,
        store::StoreError::PreconditionFailed { .. } => StoreError::PreconditionFailed,
        store::StoreError::NotSupported { operation, .. } => StoreError::NotSupported(operation),
        store::StoreError::InvalidKey(err) => StoreError::InvalidKey(err.to_string()),
        store::StoreError::InvalidArgument { detail } => StoreError::InvalidArgument(detail),
        // The guest learns what failed, not where: the store's name can
        // carry a host path (a directory store) or an endpoint.
        store::StoreError::Backend {
            retryable,
            detail,
            store,
        } => {
            tracing::debug!("{store}: {detail}");
            StoreError::Backend(BackendFailure { retryable, detail })
        }
        // A kind of failure newer than this mapping: not retryable, and
        // said in words (which may name the store: logged, not sent).
        other => {
            tracing::debug!("{other}");
            StoreError::Backend(BackendFailure {
                retryable: false,
                detail: "the store failed".to_owned(),
            })
        }
    }
}

pub(crate) fn to_guest_meta(meta: store::ObjectMeta) -> ObjectMeta {
    ObjectMeta {
        key: meta.key.to_string(),
        size: meta.size,
        version: meta.version.0,
        last_modified: meta.last_modified_ms,
    }
}

pub(crate) fn guest_key(key: &str) -> Result<ObjectKey, StoreError> {
    ObjectKey::new(key).map_err(|err| StoreError::InvalidKey(err.to_string()))
}

pub(crate) fn to_host_mode(mode: PutMode) -> store::PutMode {
    match mode {
        PutMode::Overwrite => store::PutMode::Overwrite,
        PutMode::Create => store::PutMode::Create,
        PutMode::Update(version) => store::PutMode::Update(store::Version(version)),
    }
}

impl Host for HostState {
    async fn get(
        &mut self,
        key: String,
        if_none_match: Option<String>,
    ) -> Result<GetOutcome, StoreError> {
        forward_import!(
            self,
            ImportCall::Get { key, if_none_match },
            ImportReply::Get
        );
        let store = self.granted_store()?;
        let key = guest_key(&key)?;
        let if_none_match = if_none_match.map(store::Version);
        match self
            .in_store(store.get(&key, if_none_match.as_ref()))
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

    async fn head(&mut self, key: String) -> Result<ObjectMeta, StoreError> {
        forward_import!(self, ImportCall::Head { key }, ImportReply::Head);
        let store = self.granted_store()?;
        let key = guest_key(&key)?;
        self.in_store(store.head(&key))
            .await
            .map(to_guest_meta)
            .map_err(to_guest_error)
    }

    async fn put(
        &mut self,
        key: String,
        data: Vec<u8>,
        mode: PutMode,
    ) -> Result<String, StoreError> {
        forward_import!(
            self,
            ImportCall::Put { key, data, mode },
            ImportReply::Version
        );
        let store = self.granted_store()?;
        let key = guest_key(&key)?;
        self.in_store(store.put(&key, data, to_host_mode(mode)))
            .await
            .map(|version| version.0)
            .map_err(to_guest_error)
    }

    async fn put_owned(
        &mut self,
        key: String,
        data: Vec<u8>,
        mode: PutMode,
        owner_token: String,
    ) -> Result<String, StoreError> {
        forward_import!(
            self,
            ImportCall::PutOwned {
                key,
                data,
                mode,
                owner_token
            },
            ImportReply::Version
        );
        let store = self.granted_store()?;
        let key = guest_key(&key)?;
        let request = store::put_owned(&*store, &key, data, to_host_mode(mode), &owner_token);
        self.in_store(request)
            .await
            .map(|version| version.0)
            .map_err(to_guest_error)
    }

    async fn delete(&mut self, key: String, if_match: Option<String>) -> Result<(), StoreError> {
        forward_import!(
            self,
            ImportCall::Delete { key, if_match },
            ImportReply::Delete
        );
        let store = self.granted_store()?;
        let key = guest_key(&key)?;
        let if_match = if_match.map(store::Version);
        self.in_store(store.delete(&key, if_match.as_ref()))
            .await
            .map_err(to_guest_error)
    }

    async fn list(
        &mut self,
        prefix: String,
        start_after: Option<String>,
        limit: u32,
    ) -> Result<ListPage, StoreError> {
        forward_import!(
            self,
            ImportCall::List {
                prefix,
                start_after,
                limit
            },
            ImportReply::List
        );
        let store = self.granted_store()?;
        // A prefix may be empty or end in `/`, so it is checked by the key
        // rules applied to a probe key below it.
        if !prefix.is_empty() {
            guest_key(&format!("{prefix}x"))?;
        }
        let start_after = start_after.as_deref().map(guest_key).transpose()?;
        let page = self
            .in_store(store.list(&prefix, start_after.as_ref(), limit))
            .await
            .map_err(to_guest_error)?;
        Ok(ListPage {
            items: page.items.into_iter().map(to_guest_meta).collect(),
            next_start_after: page.next_start_after.map(|key| key.to_string()),
        })
    }

    async fn download(&mut self, items: Vec<DownloadItem>) -> Vec<Result<ObjectMeta, StoreError>> {
        forward_import!(self, ImportCall::Download(items), ImportReply::Download);
        let transfer = super::transfer::Transfer::new(self);
        self.in_store(super::transfer::download(transfer, items))
            .await
    }

    async fn upload(&mut self, items: Vec<UploadItem>) -> Vec<Result<String, StoreError>> {
        forward_import!(self, ImportCall::Upload(items), ImportReply::Upload);
        let transfer = super::transfer::Transfer::new(self);
        self.in_store(super::transfer::upload(transfer, items))
            .await
    }
}
