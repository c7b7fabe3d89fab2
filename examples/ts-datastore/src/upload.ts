// Uploading new versions: each to an object of its own, checked against
// the file as it was hashed, so the index never points at content other
// than what its sha256 says.

import type { ModelRef } from 'silt:datastore/types@0.7.4';
import { assertUnchanged } from './cache.js';
import { blobKey } from './layout.js';
import { uploadAll } from './store.js';
import { randomToken } from './token.js';

/** A cache file hashed for a commit. */
export interface ToUpload {
  path: string;
  size: number;
  sha256: string;
  mtime?: string;
}

/**
 * Uploads `files` of `model` concurrently and returns their blob keys, in
 * order. A file that changed after it was hashed fails the whole upload
 * with `precondition-failed` before anything is committed (its object is
 * left as an orphan, never referenced).
 */
export function uploadVersions(model: ModelRef, files: ToUpload[]): string[] {
  const keys = files.map((file) => blobKey(model, file.sha256, randomToken()));
  uploadAll(files.map((file, i) => ({ cachePath: file.path, key: keys[i] })));
  for (const file of files) {
    assertUnchanged(file.path, { size: BigInt(file.size), mtime: file.mtime ?? '' });
  }
  return keys;
}
