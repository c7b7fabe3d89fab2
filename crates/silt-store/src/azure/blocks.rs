//! Large uploads to Azure as blocks: the file is read once, in order, a
//! block at a time (its MD5 and the whole file's computed as it is read),
//! and the blocks are sent in parallel (`Put Block`, each with its
//! `Content-MD5`, which the service checks), at most the store's bound in
//! memory; `Put Block List` then commits exactly those blocks, in order,
//! with the put's condition (`If-None-Match: *` for a create), so a
//! content blob is still created only if absent.
//!
//! Block ids carry a random nonce of this upload: two writers racing to
//! create one blob never commit each other's blocks. A killed upload
//! leaves uncommitted blocks, which no listing shows and which Azure
//! discards after seven days; nothing is resumed.

use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use futures_util::StreamExt as _;
use md5::Digest as _;

use super::{AzureStore, Call, quoted};
use crate::rest::Context;
use crate::{ObjectKey, PutMode, RetryPolicy, StoreError, Version};

/// Files of at least this many bytes go up as blocks.
pub(super) const THRESHOLD: u64 = 64 << 20;
/// The size of a block (raised for files too large for 50,000 blocks).
const BLOCK_SIZE: u64 = 16 << 20;
/// Azure's limit on the blocks of a blob.
const MAX_BLOCKS: u64 = 50_000;

impl AzureStore {
    /// Uploads `file` (`size` bytes) to `key` as blocks, committed as
    /// `mode` says.
    pub(super) async fn put_blocks(
        &self,
        key: &ObjectKey,
        file: std::fs::File,
        size: u64,
        mode: &PutMode,
    ) -> Result<Version, StoreError> {
        let full = self.full(key)?;
        let block_size = BLOCK_SIZE.max(size.div_ceil(MAX_BLOCKS).next_multiple_of(1 << 20));
        let count = size.div_ceil(block_size);
        let nonce = nonce();
        let ids: Vec<String> = (0..count)
            .map(|index| STANDARD.encode(format!("{nonce}-{index:08}")))
            .collect();
        let file = Arc::new(file);
        let whole = std::sync::Mutex::new(md5::Md5::new());
        // Read in order (hashing the whole file as it goes) and sent
        // ahead in parallel; each block holds a permit until it is sent.
        let full = full.as_str();
        let (ahead, read) = tokio::sync::mpsc::channel::<Block>(1);
        let read_all = async {
            for (index, id) in ids.iter().enumerate() {
                let offset = index as u64 * block_size;
                let length = block_size.min(size - offset);
                let block = self
                    .read_block(key, &file, &whole, id.clone(), offset, length)
                    .await?;
                if ahead.send(block).await.is_err() {
                    break;
                }
            }
            drop(ahead);
            Ok::<(), StoreError>(())
        };
        let send_all = async {
            // Owned here: once the sender stops (done, or failed), the
            // reader's next send fails and it stops too.
            let mut read = read;
            let mut sending = futures_util::stream::FuturesUnordered::new();
            let mut reading = true;
            loop {
                tokio::select! {
                    block = read.recv(), if reading && sending.len() < self.ranges.in_flight() => {
                        match block {
                            Some(block) => sending.push(self.put_block(key, full, block)),
                            None => reading = false,
                        }
                    }
                    Some(sent) = sending.next(), if !sending.is_empty() => sent?,
                    else => break,
                }
            }
            Ok::<(), StoreError>(())
        };
        let (read_all, send_all) = tokio::join!(read_all, send_all);
        send_all?;
        read_all?;
        let md5 = whole
            .lock()
            .map(|digest| STANDARD.encode(digest.clone().finalize()))
            .unwrap_or_default();
        self.put_block_list(key, full, &ids, &md5, size, mode).await
    }

    /// Block `id`: `length` bytes of `file` from `offset`, added to the
    /// whole file's digest, with a permit to hold it in memory.
    async fn read_block(
        &self,
        key: &ObjectKey,
        file: &Arc<std::fs::File>,
        whole: &std::sync::Mutex<md5::Md5>,
        id: String,
        offset: u64,
        length: u64,
    ) -> Result<Block, StoreError> {
        let permit = self.ranges.permit().await;
        let data = read_at(file, offset, length)
            .await
            .map_err(|err| crate::local_io(key, &err))?;
        if let Ok(mut whole) = whole.lock() {
            whole.update(&data);
        }
        Ok(Block {
            id,
            data,
            _permit: permit,
        })
    }

    /// One block, with its MD5 (checked by the service); retried on what
    /// may pass, bounded by attempts.
    async fn put_block(&self, key: &ObjectKey, full: &str, block: Block) -> Result<(), StoreError> {
        let Block { id, data, _permit } = block;
        let id = id.as_str();
        let md5 = STANDARD.encode(md5::Md5::digest(&data));
        let length = data.len() as u64;
        let retries = RetryPolicy {
            budget: std::time::Duration::from_secs(30 * 60),
            ..RetryPolicy::default()
        };
        retries
            .run("upload block", || async {
                let call = Call::new(reqwest::Method::PUT, self.blob_path(full))
                    .query("comp", "block")
                    .query("blockid", id)
                    .header("content-length", length.to_string())
                    .header("content-md5", md5.clone());
                let watch = crate::rest::UploadWatch::new();
                let body = crate::rest::watched_bytes(data.clone(), watch.clone());
                let response = self
                    .send_watched(key.as_str(), call, Some(body), Some(&watch))
                    .await?;
                if !response.status().is_success() {
                    return Err(self
                        .status_error(key.as_str(), Context::Other, response)
                        .await);
                }
                crate::progress::moved(length);
                Ok(())
            })
            .await
    }

    /// Commits `ids` in order as the blob, as `mode` says, recording the
    /// whole file's MD5; then checks the blob's size.
    async fn put_block_list(
        &self,
        key: &ObjectKey,
        full: &str,
        ids: &[String],
        md5: &str,
        size: u64,
        mode: &PutMode,
    ) -> Result<Version, StoreError> {
        let mut body = String::from("<?xml version=\"1.0\" encoding=\"utf-8\"?><BlockList>");
        for id in ids {
            body.push_str(&format!("<Latest>{id}</Latest>"));
        }
        body.push_str("</BlockList>");
        let mut call = Call::new(reqwest::Method::PUT, self.blob_path(full))
            .query("comp", "blocklist")
            .header("content-length", body.len().to_string())
            .header("content-type", "application/xml")
            .header("x-ms-blob-content-md5", md5.to_owned());
        let context = match mode {
            PutMode::Overwrite => Context::Other,
            PutMode::Create => {
                call = call.header("if-none-match", "*");
                Context::Create
            }
            PutMode::Update(version) => {
                call = call.header("if-match", quoted(key, version)?);
                Context::Conditional
            }
        };
        let response = match self.send(key.as_str(), call, Some(body.into())).await {
            Ok(response) => response,
            // The answer was lost: the commit may have landed. What the
            // key holds now is this upload's if it has its size and MD5.
            Err(
                lost @ StoreError::Backend {
                    retryable: true, ..
                },
            ) => {
                return match self.properties(key, full).await {
                    Ok(stored)
                        if stored.length == Some(size)
                            && stored.checksum.as_deref() == Some(md5) =>
                    {
                        Ok(Version(stored.version))
                    }
                    _ => Err(lost),
                };
            }
            Err(other) => return Err(other),
        };
        if !response.status().is_success() {
            return Err(self.status_error(key.as_str(), context, response).await);
        }
        let version = Version(super::bare_etag(
            crate::rest::header(&response, "etag").unwrap_or_default(),
        ));
        match crate::ObjectStore::head(self, key).await {
            Ok(meta) if meta.version == version && meta.size != size => Err(self
                .landed_wrong(
                    key,
                    full,
                    &version,
                    mode,
                    format!("{size} bytes were sent, the store kept {}", meta.size),
                )
                .await),
            _ => Ok(version),
        }
    }
}

/// A block read and not yet sent.
struct Block {
    id: String,
    data: bytes::Bytes,
    /// Its place in memory, given back once it is sent.
    _permit: tokio::sync::OwnedSemaphorePermit,
}

/// `length` bytes of `file` from `offset`.
async fn read_at(
    file: &Arc<std::fs::File>,
    offset: u64,
    length: u64,
) -> std::io::Result<bytes::Bytes> {
    let file = file.clone();
    tokio::task::spawn_blocking(move || {
        use std::os::unix::fs::FileExt as _;
        let mut buffer = vec![0; length as usize];
        file.read_exact_at(&mut buffer, offset)?;
        Ok(bytes::Bytes::from(buffer))
    })
    .await
    .map_err(std::io::Error::other)?
}

/// 64 random bits as 16 hex digits: this upload's block ids.
fn nonce() -> String {
    format!("{:016x}", crate::retry::random_u64())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_ids_have_one_length_and_differ_between_uploads() {
        let a = nonce();
        assert_eq!(a.len(), 16);
        assert_ne!(a, nonce());
        let ids: Vec<String> = [0u64, 9, 49_999]
            .iter()
            .map(|index| STANDARD.encode(format!("{a}-{index:08}")))
            .collect();
        assert!(ids.iter().all(|id| id.len() == ids[0].len()));
    }
}
