// Where everything lives: object keys in the store and paths in the cache.
//
// Store (relative to the datastore root the host scopes us to):
//   ts-datastore/layout.json            the datastore's layout and retention
//   locks/<model-type>/<model-id>.json  one lease object per model
//   index/<model-type>/<model-id>.json  one index partition per model
//   blobs/<model-type>/<model-id>/<sha256>.<token>  one version's content
//     (`sent.<token>`: a file the host sent itself, hashed as it went)
// Cache (`/cache`, the local copy):
//   data/<model-type>/<model-id>/<name>       the working copy
//   .ts-datastore/models/<type>/<id>.json     what each model's working copy was at the last sync

import type { ModelRef } from 'silt:datastore/types@0.7.4';
import { invalidInput } from './errors.js';

export const LAYOUT_KEY = 'ts-datastore/layout.json';
export const LAYOUT_VERSION = 1;
export const INDEX_PREFIX = 'index/';
export const LOCKS_PREFIX = 'locks/';
export const DATA_DIR = 'data';
export const STATE_DIR = '.ts-datastore/models';
/** Where the SDK-based Rust datastores keep their metadata: a root holding it is theirs. */
export const FOREIGN_META_KEY = '_meta/datastore.json';

/**
 * The most this extension hashes in one call (one file or several): SHA-256
 * runs in the JavaScript interpreter at about 1 MB/s, so 16 MiB takes about
 * 18 s of the call's 30 s default (`[runtime] deadline_ms`). Raise both
 * together.
 */
export const MAX_FILE_BYTES = 16 * 1024 * 1024;

/** The host's temporary file of a download in progress (`.<name>.silt-tmp.<where>.<pid>.<nonce>.<n>`; older hosts: `.<name>.silt-tmp.<pid>.<n>`). */
export const isTransferTemp = (name: string) => {
  const leaf = name.slice(name.lastIndexOf('/') + 1);
  return leaf.startsWith('.') && leaf.includes('.silt-tmp.');
};

/** One path segment a key or a cache path may hold. */
function checkSegment(segment: string, what: string): void {
  if (segment === '' || segment === '.' || segment === '..') {
    throw invalidInput(`${what} has an empty, \`.\` or \`..\` segment`);
  }
  // Control characters and backslashes never belong in a key or a path.
  if (/[\u0000-\u001f\u007f\\]/.test(segment)) {
    throw invalidInput(`${what} contains a control character or a backslash`);
  }
}

/** Checks a model reference; throws `invalid-input` saying what is wrong. */
export function checkModel(model: ModelRef): void {
  const what = `model ${model.modelType}:${model.modelId}`;
  for (const segment of model.modelType.split('/')) checkSegment(segment, what);
  if (model.modelId.includes('/')) throw invalidInput(`${what}: a model id may not contain \`/\``);
  checkSegment(model.modelId, what);
}

/** Checks a file name of a model (`weights.bin`, `eval/report.json`). */
export function checkName(name: string): void {
  for (const segment of name.split('/')) {
    checkSegment(segment, `file name \`${name}\``);
    // A working-copy scan skips these, so such a file could be put but never pushed.
    if (isTransferTemp(segment)) {
      throw invalidInput(`file name \`${name}\` is shaped like silt's temporary download files; choose another name`);
    }
  }
}

const modelPath = (model: ModelRef) => `${model.modelType}/${model.modelId}`;

export const lockKey = (model: ModelRef) => `${LOCKS_PREFIX}${modelPath(model)}.json`;
export const indexKey = (model: ModelRef) => `${INDEX_PREFIX}${modelPath(model)}.json`;
/** A new version's content: its own object (never shared), so expiring it deletes nothing else. */
export const blobKey = (model: ModelRef, sha256: string, token: string) => `blobs/${modelPath(model)}/${sha256}.${token}`;
export const workingDir = (model: ModelRef) => `${DATA_DIR}/${modelPath(model)}`;
export const workingPath = (model: ModelRef, name: string) => `${workingDir(model)}/${name}`;
export const statePath = (model: ModelRef) => `${STATE_DIR}/${modelPath(model)}.json`;

/** The model a `<prefix><type>/<id>.json` key names. */
export function modelOfKey(prefix: string, key: string): ModelRef | undefined {
  if (!key.startsWith(prefix) || !key.endsWith('.json')) return undefined;
  const path = key.slice(prefix.length, -'.json'.length);
  const slash = path.lastIndexOf('/');
  if (slash <= 0) return undefined;
  return { modelType: path.slice(0, slash), modelId: path.slice(slash + 1) };
}

export const sameModel = (a: ModelRef, b: ModelRef) =>
  a.modelType === b.modelType && a.modelId === b.modelId;

export const modelName = (model: ModelRef) => `${model.modelType}:${model.modelId}`;
