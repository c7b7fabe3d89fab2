// `models`: single files of one model, as `silt data` reads and writes them.

import type { FileEntry, FileVersion } from 'silt:datastore/models@0.7.4';
import type { Base, Committer, Lease, ModelRef } from 'silt:datastore/types@0.7.4';
import * as cache from './cache.js';
import { conflict, invalidInput, notFound, notSupported } from './errors.js';
import { commit, conflictsOf } from './commit.js';
import { blobKey, checkModel, checkName, modelName } from './layout.js';
import { confirm } from './leases.js';
import {
  emptyPartition,
  latest,
  listModels as indexModels,
  readLayout,
  readPartition,
  toFileVersion,
  type Partition,
} from './partition.js';
import { delivered, downloadAll, uploadSending } from './store.js';
import { randomToken } from './token.js';
import { uploadVersions } from './upload.js';

function partitionOf(model: ModelRef): Partition {
  checkModel(model);
  readLayout();
  const found = readPartition(model);
  if (!found) throw notFound(`model ${modelName(model)} is not in the index`);
  return found.value;
}

export function listModels(): ModelRef[] {
  readLayout();
  return indexModels();
}

export function listFiles(model: ModelRef): FileEntry[] {
  checkModel(model);
  readLayout();
  // A model nobody has written to yet has no files (rather than not-found).
  const partition = readPartition(model)?.value ?? emptyPartition();
  return Object.keys(partition.files)
    .sort()
    .filter((name) => !latest(partition, name)!.deleted)
    .map((name) => ({
      name,
      latest: toFileVersion(latest(partition, name)!),
      versions: partition.files[name].length,
    }));
}

export function history(model: ModelRef, name: string): FileVersion[] {
  checkName(name);
  const versions = partitionOf(model).files[name];
  if (!versions) throw notFound(`${name} was never written to ${modelName(model)}`);
  return versions.map(toFileVersion);
}

/**
 * The lease a commit is fenced by: this extension commits only under the
 * model's lease (it does not declare `lease-free-commits`, so the host
 * never asks for an unleased commit; one asked all the same is refused).
 */
function leaseOf(model: ModelRef, by: Committer): Lease {
  if (by.tag !== 'leased') {
    throw notSupported(`${modelName(model)}: this datastore commits only under the model's lease`);
  }
  return by.val;
}

export function putFile(model: ModelRef, name: string, cachePath: string, base: Base, by: Committer): FileVersion {
  checkModel(model);
  checkName(name);
  const lease = leaseOf(model, by);
  const retain = readLayout().value.retainVersions;
  // Refuse a lease that cannot commit before spending time hashing.
  confirm(model, lease);
  if (cachePath.startsWith('.silt/send/')) {
    // A sending (0.7.4): the host sends the user's file, hashing it.
    const blob = blobKey(model, 'sent', randomToken());
    const sent = uploadSending(cachePath, blob);
    const [entry] = commit(model, lease, [{ name, size: Number(sent.size), sha256: sent.sha256, blob, base }], retain);
    return toFileVersion(entry);
  }
  const hashed = cache.hashFile(cachePath);
  if (!hashed) throw invalidInput(`no cache file at ${cachePath}`);
  const size = Number(hashed.size);
  const [blob] = uploadVersions(model, [{ path: cachePath, size, sha256: hashed.sha256, mtime: hashed.mtime }]);
  const [entry] = commit(model, lease, [{ name, size, sha256: hashed.sha256, blob, base }], retain);
  return toFileVersion(entry);
}

export function getFile(model: ModelRef, name: string, version: string | undefined, cachePath: string): FileVersion {
  checkName(name);
  const versions = partitionOf(model).files[name] ?? [];
  const entry = version === undefined ? versions.at(-1) : versions.find((v) => v.version === version);
  if (!entry || entry.deleted) {
    throw notFound(`${modelName(model)} has no ${name}${version ? ` at version ${version}` : ''}`);
  }
  const item = { key: entry.blob, cachePath, sha256: entry.sha256 };
  if (!delivered(item)) downloadAll([item]);
  return toFileVersion(entry);
}

export function removeFile(model: ModelRef, name: string, base: Base, by: Committer): FileVersion {
  checkModel(model);
  checkName(name);
  const lease = leaseOf(model, by);
  const retain = readLayout().value.retainVersions;
  const found = readPartition(model);
  // A base that does not hold is a conflict first (as in the Rust SDK);
  // the commit checks it again inside its compare-and-swap.
  const refused = conflictsOf(model, found?.value ?? emptyPartition(), [{ name, size: 0, base }]);
  if (refused.length > 0) throw conflict(refused);
  const current = found && latest(found.value, name);
  if (!current || current.deleted) throw notFound(`${modelName(model)} has no ${name}`);
  const [entry] = commit(model, lease, [{ name, size: 0, base }], retain);
  return toFileVersion(entry);
}
