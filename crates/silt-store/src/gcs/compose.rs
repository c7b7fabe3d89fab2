//! Large uploads to GCS in parallel parts: each part is a temporary object
//! (`_silt/uploads/<key>.<nonce>.<n>` at the store's root, where no
//! extension lists), streamed from its range of the file and checked
//! against its CRC32C as it lands; one `compose` then makes the object
//! from them, with the put's condition (`ifGenerationMatch=0` for a
//! create), and is checked against its size and the CRC32C of the parts
//! combined in order. The parts are deleted after.
//!
//! At most 32 parts (one compose's sources): parts are 16 MiB or a 32nd
//! of the file. A part uploads in one request streamed from the file, so
//! only the bound on parts in flight limits concurrency, not memory.
//! A killed upload leaves its parts: [`GcsStore::uploads_left`] finds
//! them (older than a window) for `verify`, and `gc` deletes them.

use std::sync::{Arc, Mutex};

use futures_util::{StreamExt as _, TryStreamExt as _};

use super::{Framing, GcsStore, Resource, write_condition};
use crate::rest;
use crate::{
    Leftover, LeftoverKind, MAX_KEY_LEN, ObjectKey, ObjectStore, PutMode, RetryPolicy, StoreError,
    Sweep, Version,
};

/// Files of at least this many bytes go up in parts.
pub(super) const THRESHOLD: u64 = 64 << 20;
/// The smallest part.
const MIN_PART: u64 = 16 << 20;
/// The most sources one compose takes.
const MAX_PARTS: u64 = 32;
/// Where parts live, below the store's root.
const UPLOADS: &str = "_silt/uploads/";

impl GcsStore {
    /// The name of part `index` of upload `nonce` of `key`.
    fn part_name(&self, key: &ObjectKey, nonce: &str, index: u64) -> String {
        format!("{}{UPLOADS}{key}.{nonce}.{index:05}", self.common.prefix())
    }

    /// Whether a file of `size` bytes for `key` goes up in parts: its
    /// parts' names must be keys too (their length, their last segment's),
    /// or a killed upload's parts could never be listed and collected.
    pub(super) fn uploads_in_parts(&self, key: &ObjectKey, size: u64) -> bool {
        let part = self.part_name(key, &"0".repeat(16), 0);
        size >= THRESHOLD && part.len() <= MAX_KEY_LEN && self.common.relative(&part).is_some()
    }

    /// Uploads `file` (`size` bytes) to `key` in parts composed as `mode`
    /// says; the parts are deleted after, whatever happened.
    pub(super) async fn put_composed(
        &self,
        key: &ObjectKey,
        file: std::fs::File,
        size: u64,
        mode: &PutMode,
    ) -> Result<Version, StoreError> {
        let part_size = MIN_PART.max(size.div_ceil(MAX_PARTS).next_multiple_of(1 << 20));
        let count = size.div_ceil(part_size);
        let nonce = &format!("{:016x}", crate::retry::random_u64());
        let names: Vec<String> = (0..count)
            .map(|index| self.part_name(key, nonce, index))
            .collect();
        let file = Arc::new(file);
        // The first failure stops the rest (their futures are dropped).
        let parts: Result<Vec<(String, crc_fast::Digest)>, StoreError> =
            futures_util::stream::iter(0..count)
                .map(|index| {
                    let offset = index * part_size;
                    let length = part_size.min(size - offset);
                    self.put_part(key, &file, &names, index, offset, length)
                })
                .buffered(self.ranges.in_flight())
                .try_collect()
                .await;
        let composed = match parts {
            Ok(parts) => self.compose(key, &names, &parts, size, mode).await,
            Err(err) => Err(err),
        };
        // Best effort: a part left behind is found by `uploads_left`.
        let deletes = names.iter().map(|name| async move {
            let request = self.clients.small.delete(self.object_url(name));
            let _ = self.send(key.as_str(), request).await;
        });
        futures_util::future::join_all(deletes).await;
        composed
    }

    /// Part `index`: `length` bytes of `file` from `offset` as the object
    /// named `names[index]`, streamed and checked against its CRC32C; retried on what
    /// may pass (a part's name is its own, so a retry overwrites only it).
    /// Answers its generation and digest.
    async fn put_part(
        &self,
        key: &ObjectKey,
        file: &Arc<std::fs::File>,
        names: &[String],
        index: u64,
        offset: u64,
        length: u64,
    ) -> Result<(String, crc_fast::Digest), StoreError> {
        // A part streams from the file: it holds no memory to bound, so
        // no permit; `buffered` bounds how many are sent at once.
        let name = names[index as usize].as_str();
        let retries = RetryPolicy {
            budget: std::time::Duration::from_secs(30 * 60),
            ..RetryPolicy::default()
        };
        retries
            .run("upload part", || async {
                let digest = Arc::new(Mutex::new(crc_fast::Digest::new(
                    crc_fast::CrcAlgorithm::Crc32Iscsi,
                )));
                let (hashed, watch) = (digest.clone(), rest::UploadWatch::new());
                let taken = watch.clone();
                let chunks =
                    rest::range_chunks(file.clone(), offset, offset + length, move |chunk| {
                        taken.touch();
                        if let Ok(mut digest) = hashed.lock() {
                            digest.update(chunk);
                        }
                    });
                let framing = Framing::new(name, length, None);
                let body =
                    futures_util::stream::iter([Ok::<_, std::io::Error>(framing.head.clone())])
                        .chain(chunks)
                        .chain(futures_util::stream::iter([Ok(framing.tail.clone())]));
                let crc = || digest.lock().map_or(0, |d| d.clone().finalize() as u32);
                let body = reqwest::Body::wrap_stream(body);
                let version = self
                    .upload(key, &framing, body, Some(&watch), crc, &PutMode::Overwrite)
                    .await?;
                let digest = digest.lock().map(|d| *d).map_err(|_| {
                    self.common
                        .backend(false, format!("`{key}`: a part's digest was lost"))
                })?;
                // Counted once it landed: a retried part is not counted twice.
                crate::progress::moved(length);
                Ok((version.0, digest))
            })
            .await
    }

    /// Composes the parts `names` (their generations and digests in
    /// `parts`, in order) into `key` as `mode` says; checks its size and
    /// CRC32C.
    async fn compose(
        &self,
        key: &ObjectKey,
        names: &[String],
        parts: &[(String, crc_fast::Digest)],
        size: u64,
        mode: &PutMode,
    ) -> Result<Version, StoreError> {
        let full = self.common.full(key)?;
        // Each source pinned to the generation this upload wrote.
        let sources: Vec<serde_json::Value> = names
            .iter()
            .zip(parts)
            .map(|(name, (generation, _))| {
                serde_json::json!({ "name": name, "generation": generation })
            })
            .collect();
        let body = serde_json::json!({
            "sourceObjects": sources,
            "destination": { "contentType": "application/octet-stream" },
        })
        .to_string();
        let mut query = Vec::new();
        let (condition, context) = write_condition(key, mode)?;
        query.extend(condition);
        let request = self
            .clients
            .small
            .post(format!("{}/compose", self.object_url(&full)))
            .query(&query)
            .header("content-type", "application/json")
            .body(body);
        let mut whole = crc_fast::Digest::new(crc_fast::CrcAlgorithm::Crc32Iscsi);
        for (_, digest) in parts {
            whole.combine(digest);
        }
        let crc32c = whole.finalize() as u32;
        let response = match self.send(key.as_str(), request).await {
            Ok(response) => response,
            // The answer was lost: the compose may have landed. What the
            // key holds now is this upload's if it has its size and CRC32C
            // (never a guess without a CRC32C to compare).
            Err(
                lost @ StoreError::Backend {
                    retryable: true, ..
                },
            ) => {
                return match self.stored_resource(key, &full).await {
                    Ok(stored)
                        if stored.crc32c.is_some()
                            && stored.differs_from(size, crc32c).is_none() =>
                    {
                        Ok(Version(stored.generation))
                    }
                    _ => Err(lost),
                };
            }
            Err(other) => return Err(other),
        };
        if !response.status().is_success() {
            return Err(self.status_error(key.as_str(), context, response).await);
        }
        let stored: Resource = self.resource(key.as_str(), response).await?;
        let version = Version(stored.generation.clone());
        match stored.differs_from(size, crc32c) {
            None => Ok(version),
            Some(problem) => Err(self.landed_wrong(key, &full, &version, mode, problem).await),
        }
    }

    /// Parts of uploads to keys below the directory `prefix` names whose
    /// upload has been idle longer than `sweep` says (every part of it that
    /// old: a killed upload's, never a long one still sending); deleted if
    /// it says so.
    pub(super) async fn uploads_left(
        &self,
        prefix: &str,
        sweep: Sweep,
    ) -> Result<Vec<Leftover>, StoreError> {
        let dir = prefix.rfind('/').map_or("", |end| &prefix[..=end]);
        let scope = format!("{UPLOADS}{dir}");
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |since| since.as_millis() as u64);
        let before_ms = now.saturating_sub(sweep.older_than.as_millis() as u64);
        // Parts by upload (`<key>.<nonce>`, the name without `.<n>`).
        let mut uploads: std::collections::BTreeMap<String, Vec<crate::ObjectMeta>> =
            std::collections::BTreeMap::new();
        let mut after: Option<ObjectKey> = None;
        loop {
            let page = self.list(&scope, after.as_ref(), 1000).await?;
            for meta in page.items {
                let upload = meta
                    .key
                    .as_str()
                    .rsplit_once('.')
                    .map_or(meta.key.as_str(), |(upload, _)| upload)
                    .to_owned();
                uploads.entry(upload).or_default().push(meta);
            }
            match page.next_start_after {
                Some(next) => after = Some(next),
                None => break,
            }
        }
        let mut found = Vec::new();
        for parts in uploads.into_values() {
            if parts.iter().any(|part| part.last_modified_ms > before_ms) {
                continue;
            }
            for part in parts {
                if sweep.remove {
                    match self.delete(&part.key, Some(&part.version)).await {
                        Ok(()) | Err(StoreError::PreconditionFailed { .. }) => {}
                        Err(err) => return Err(err),
                    }
                }
                found.push(Leftover {
                    path: part.key.to_string(),
                    size: part.size,
                    modified_ms: part.last_modified_ms,
                    kind: LeftoverKind::IncompleteUpload,
                });
            }
        }
        Ok(found)
    }
}
