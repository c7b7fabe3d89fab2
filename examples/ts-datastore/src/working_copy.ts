// The working copy of a model (`data/<type>/<id>/`) and what it was at the
// last sync (`.ts-datastore/models/<type>/<id>.json`): a file differs from
// that base when the user changed it, and is missing from the working copy
// either because it was removed (it is in the base) or because it was
// never fetched (lazy hydration: it is not).

import type { ModelRef } from 'silt:datastore/types@0.4.0';
import * as cache from './cache.js';
import { statePath, workingDir, workingPath } from './layout.js';
import type { Entry } from './partition.js';

/** A file as the working copy had it at the last sync. */
export interface Base {
  version: string;
  sha256: string;
  size: number;
}

/** What the working copy of one model was at the last sync. */
export interface ModelState {
  files: Record<string, Base>;
}

export function load(model: ModelRef): ModelState {
  return cache.readJson<ModelState>(statePath(model)) ?? { files: {} };
}

export function save(model: ModelRef, state: ModelState): void {
  cache.writeJson(statePath(model), state);
}

export const baseOf = (entry: Entry): Base => ({ version: entry.version, sha256: entry.sha256, size: entry.size });

/** A local change of one name: new or edited content, or a removal. */
export interface LocalChange {
  name: string;
  path: string;
  size: number;
  /** `undefined`: the file was removed from the working copy. */
  sha256?: string;
}

/** How the working copy of `model` differs from its base. */
export function localChanges(model: ModelRef, state: ModelState): LocalChange[] {
  const changes: LocalChange[] = [];
  const present = new Set(cache.listFiles(workingDir(model)));
  for (const name of present) {
    const path = workingPath(model, name);
    const hashed = cache.hashFile(path);
    if (!hashed) continue;
    if (state.files[name]?.sha256 !== hashed.sha256) {
      changes.push({ name, path, size: Number(hashed.size), sha256: hashed.sha256 });
    }
  }
  for (const name of Object.keys(state.files)) {
    if (!present.has(name)) changes.push({ name, path: workingPath(model, name), size: 0 });
  }
  return changes.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}
