// Setting local edits aside (`local-edits::theirs` and `set-aside`) before
// a pull or a hydration plans the working copy. An edit is moved, never
// deleted, to `.silt/conflicts/<token>/<its working path>`. Before any file
// moves, each is based (in the saved state) on SETTING_ASIDE, a version no
// commit has: killed before it moved, the file is an edit whose base never
// holds (a push refuses it); killed after, a missing file based so is no
// removal (working_copy drops it).

import type { LocalEdits, ModelRef } from 'silt:datastore/types@0.7.4';
import { log } from 'silt:datastore/log@0.7.4';
import * as cache from './cache.js';
import { holds } from './commit.js';
import { workingPath } from './layout.js';
import { latest, type Partition } from './partition.js';
import type { Refresh } from './working_copy.js';
import * as workingCopy from './working_copy.js';

/** Where one call sets edits aside, and what it moved there. */
export class SetAside {
  private dir: string | undefined;
  /** Where each edit went, relative to the cache. */
  readonly moved: string[] = [];

  /**
   * Applies `policy` to `model`'s local edits: those it names (conflicting
   * ones for `theirs`, all for `set-aside`) are moved aside and their bases
   * forgotten. Returns the names to bring back at their latest version.
   */
  apply(model: ModelRef, state: workingCopy.ModelState, partition: Partition, policy: LocalEdits): string[] {
    if (policy === 'keep' || policy === 'ours') return [];
    const { changes } = workingCopy.localChanges(model, state, partition);
    const chosen = changes.filter(
      (change) =>
        policy === 'set-aside' ||
        !holds(change.base === undefined ? { tag: 'absent' } : { tag: 'version', val: change.base }, latest(partition, change.name)),
    );
    if (chosen.length === 0) return [];
    const toMove = chosen.filter((change) => change.sha256 !== undefined);
    for (const change of toMove) {
      state.files[change.name] = { ...(state.files[change.name] ?? { sha256: '', size: 0 }), version: workingCopy.SETTING_ASIDE };
    }
    workingCopy.save(model, state);
    this.dir ??= `.silt/conflicts/${String(Date.now()).padStart(15, '0')}-${Math.random().toString(16).slice(2, 10)}`;
    for (const change of toMove) {
      const to = `${this.dir}/${change.path}`;
      cache.moveFile(change.path, to);
      log('warn', `${change.path}: set the local edit aside to ${to}; the working copy has the latest committed version`);
      this.moved.push(to);
    }
    for (const change of chosen) delete state.files[change.name];
    return chosen.map((change) => change.name);
  }
}

/** Adds to `plan` a fetch of each of `names` still live in `partition` and not planned yet. */
export function restore(model: ModelRef, plan: Refresh, partition: Partition, names: string[]): void {
  for (const name of names) {
    const entry = latest(partition, name);
    if (!entry || entry.deleted || plan.fetches.some((fetch) => fetch.name === name)) continue;
    plan.fetches.push({ name, entry, key: entry.blob, cachePath: workingPath(model, name), sha256: entry.sha256 });
  }
}
