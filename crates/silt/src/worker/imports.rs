//! The host's side of forwarded imports: a worker's object-store, log and
//! progress calls run here, on the host's own [`HostState`] for the call,
//! through the very implementations in-process guests use.

use crate::runtime::HostState;
use crate::runtime::bindings::silt::datastore::{log, object_store, progress};

use super::protocol::{ImportCall, ImportReply, Notification};

/// Runs one forwarded object-store call.
pub(crate) async fn serve(state: &mut HostState, call: ImportCall) -> ImportReply {
    use object_store::Host as Store;
    match call {
        ImportCall::Get { key, if_none_match } => {
            ImportReply::Get(Store::get(state, key, if_none_match).await)
        }
        ImportCall::Head { key } => ImportReply::Head(Store::head(state, key).await),
        ImportCall::Put { key, data, mode } => {
            ImportReply::Version(Store::put(state, key, data, mode).await)
        }
        ImportCall::PutOwned {
            key,
            data,
            mode,
            owner_token,
        } => ImportReply::Version(Store::put_owned(state, key, data, mode, owner_token).await),
        ImportCall::Delete { key, if_match } => {
            ImportReply::Delete(Store::delete(state, key, if_match).await)
        }
        ImportCall::List {
            prefix,
            start_after,
            limit,
        } => ImportReply::List(Store::list(state, prefix, start_after, limit).await),
        ImportCall::Download(items) => ImportReply::Download(Store::download(state, items).await),
        ImportCall::Upload(items) => ImportReply::Upload(Store::upload(state, items).await),
    }
}

/// Runs one forwarded log or progress call.
use crate::runtime::report_dropped;

pub(crate) async fn notify(state: &mut HostState, notification: Notification) {
    match notification {
        Notification::Log { level, message } => log::Host::log(state, level, message).await,
        Notification::ProgressBegin {
            label,
            total_items,
            total_bytes,
        } => progress::Host::begin(state, label, total_items, total_bytes).await,
        Notification::ProgressAdvance { items, bytes } => {
            progress::Host::advance(state, items, bytes).await
        }
        Notification::ProgressFinish => progress::Host::finish(state).await,
        Notification::LogsDropped { count } => report_dropped(&state.extension, count),
    }
}
