// The working copy of a model (`data/<type>/<id>/`) and what it was at the
// last sync (`.ts-datastore/models/<type>/<id>.json`): a file differs from
// that base when the user changed it, and is missing from the working copy
// either because it was removed (it is in the base) or because it was
// never fetched (lazy hydration: it is not).
//
// Hashing runs in the interpreter (about 1 MB/s), so a file is hashed only
// when its size or modification time differ from what was stamped when it
// was last synced, or when that stamp is too close to the file's own time
// to tell an edit in the same instant apart (git's "racy" files).

import type { ModelRef } from 'silt:datastore/types@0.7.4';
import * as cache from './cache.js';
import { dict, type Dict } from './dict.js';
import { statePath, workingDir, workingPath } from './layout.js';
import { latest, type Entry, type Partition } from './partition.js';
import type { Fetch } from './store.js';

/** A file as the working copy had it at the last sync. */
export interface Base {
  version: string;
  sha256: string;
  size: number;
  /** The file's modification time when it was synced (`seconds.nanoseconds`). */
  mtime?: string;
  /** When the stamp was taken, in ms. */
  stampedAt?: number;
}

/**
 * The base of a file being set aside (set_aside.ts): no commit has this
 * version, so an edit based on it never commits, and a missing file based
 * on it is no removal (its base is dropped).
 */
export const SETTING_ASIDE = '~setting-aside';

/** A stamp this close to the file's own time cannot vouch for it. */
const RACY_MS = 2000;

/** What the working copy of one model was at the last sync. */
export interface ModelState {
  files: Dict<Base>;
}

export function load(model: ModelRef): ModelState {
  const state = cache.readJson<ModelState>(statePath(model));
  return { files: dict(state?.files) };
}

export function save(model: ModelRef, state: ModelState): void {
  cache.writeJson(statePath(model), state);
}

/**
 * The base of a file just synced as `entry`: call it once the file at
 * `path` holds the entry's content (downloaded, or pushed from there).
 */
export function baseOf(entry: Entry, path: string): Base {
  return landedBase(entry, cache.stat(path)?.mtime);
}

/**
 * The base of a file that holds `entry`'s content with modification time
 * `mtime`: for a download, the time it landed with (the host's answer, no
 * `stat`).
 */
function landedBase(entry: Entry, mtime: string | undefined): Base {
  return { version: entry.version, sha256: entry.sha256, size: entry.size, mtime, stampedAt: Date.now() };
}

/** True when the file at `path` is, by size and time, still its base. */
function unchangedByStamp(path: string, base: Base | undefined): boolean {
  if (base?.mtime === undefined || base.stampedAt === undefined) return false;
  const found = cache.stat(path);
  return (
    found !== undefined &&
    found.mtime === base.mtime &&
    Number(found.size) === base.size &&
    base.stampedAt - found.mtimeMs > RACY_MS
  );
}

/** A local change of one name: new or edited content, or a removal. */
export interface LocalChange {
  name: string;
  path: string;
  size: number;
  /** `undefined`: the file was removed from the working copy. */
  sha256?: string;
  /** The file's time when hashed: an upload checks it did not change since. */
  mtime?: string;
  /** The version the change was made from; `undefined` for a file new here. */
  base?: string;
}

/**
 * How the working copy of `model` differs from its base. A file hashed
 * and found unchanged gets a fresh stamp in `state`, so the next look
 * skips it: the caller saves `state` when `restamped` says so. A file whose
 * content is a version `partition` holds is not a change (its base lost, or
 * a pull killed after the file landed but before its base was saved): it is
 * adopted at that version, so a stale copy is refreshed by the next pull
 * rather than pushed over newer work.
 */
export function localChanges(
  model: ModelRef,
  state: ModelState,
  partition: Partition | undefined,
): { changes: LocalChange[]; restamped: boolean } {
  const changes: LocalChange[] = [];
  let restamped = false;
  const present = new Set(cache.listFiles(workingDir(model)));
  for (const name of present) {
    const path = workingPath(model, name);
    const base = state.files[name];
    if (unchangedByStamp(path, base)) continue;
    const hashed = cache.hashFile(path);
    if (!hashed) continue;
    const known =
      base?.sha256 === hashed.sha256 ? undefined : partition?.files[name]?.findLast((e) => !e.deleted && e.sha256 === hashed.sha256);
    if (known !== undefined) {
      state.files[name] = { ...baseOf(known, path), mtime: hashed.mtime };
      restamped = true;
    } else if (base?.sha256 !== hashed.sha256) {
      changes.push({ name, path, size: Number(hashed.size), sha256: hashed.sha256, mtime: hashed.mtime, base: base?.version });
    } else {
      Object.assign(base, { mtime: hashed.mtime, stampedAt: Date.now() });
      restamped = true;
    }
  }
  for (const name of Object.keys(state.files)) {
    if (present.has(name)) continue;
    if (state.files[name].version === SETTING_ASIDE) {
      // Moved aside by a call killed before it saved: gone, and no removal.
      delete state.files[name];
      restamped = true;
      continue;
    }
    changes.push({ name, path: workingPath(model, name), size: 0, base: state.files[name].version });
  }
  changes.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  return { changes, restamped };
}

/** What bringing a model's working copy up to its index takes. */
export interface Refresh {
  /** Files to download (outdated and untouched, or missing and wanted). */
  fetches: (Fetch & { name: string; entry: Entry })[];
  /** Untouched files whose name was deleted in the index. */
  removals: string[];
  /** Files already holding the latest content, and tombstones gone on both sides: only the base changes. */
  adopted: [string, Entry | undefined][];
  /** Files present and current. */
  present: number;
  /** Files edited here that also changed in the index: left alone. */
  conflicts: number;
}

/**
 * Plans bringing `model`'s working copy to `partition` without losing
 * anything local: an edited file is never overwritten, a removed one never
 * fetched back, and a missing one fetched only when `fetchMissing` (a full
 * clone, or hydration). `only` limits it to one name.
 */
export function planRefresh(
  model: ModelRef,
  partition: Partition,
  state: ModelState,
  fetchMissing: boolean,
  only?: string,
): Refresh {
  const plan: Refresh = { fetches: [], removals: [], adopted: [], present: 0, conflicts: 0 };
  const names = only === undefined ? Object.keys(partition.files) : [only];
  for (const name of names) {
    const entry = latest(partition, name);
    if (entry === undefined) continue;
    const path = workingPath(model, name);
    const base = state.files[name];
    const exists = cache.isFile(path);
    // Hashed at most once, and only when the stamp cannot tell.
    let hash: string | undefined | null = null;
    const localHash = () => (hash === null ? (hash = cache.hashFile(path)?.sha256) : hash);
    const untouched = () => exists && base !== undefined && (unchangedByStamp(path, base) || localHash() === base.sha256);
    // The content of a version the index holds (its base lost, or a pull
    // killed after the file landed but before its base was saved): an old
    // copy, not an edit.
    const stale = () => exists && (partition.files[name] ?? []).some((e) => !e.deleted && e.sha256 === localHash());
    if (!exists && base?.version === SETTING_ASIDE) {
      // Moved aside by a call killed before it saved: forgotten, and
      // fetched back where a missing file is.
      if (fetchMissing && !entry.deleted) plan.fetches.push({ name, entry, key: entry.blob, cachePath: path, sha256: entry.sha256 });
      else plan.adopted.push([name, undefined]);
      continue;
    }
    if (base?.version === entry.version) {
      // Synced already: what differs is a local change, for push.
      if (exists) plan.present++;
      continue;
    }
    if (entry.deleted) {
      if (!exists) plan.adopted.push([name, undefined]);
      else if (untouched() || stale()) plan.removals.push(name);
      else plan.conflicts++;
    } else if (exists && localHash() === entry.sha256) {
      plan.adopted.push([name, entry]);
      plan.present++;
    } else if (exists ? untouched() || stale() : base === undefined && fetchMissing) {
      plan.fetches.push({ name, entry, key: entry.blob, cachePath: path, sha256: entry.sha256 });
    } else if (exists) {
      plan.conflicts++;
    }
    // Missing with a base: removed here, a change for push. Missing and
    // not wanted: a lazy clone's absence.
  }
  return plan;
}

/**
 * Records in `state` what `plan` did once its fetches landed: the first
 * `landed.length` of them, each with the time it landed with.
 */
export function applyRefresh(model: ModelRef, state: ModelState, plan: Refresh, landed: string[]): void {
  plan.fetches.slice(0, landed.length).forEach(({ name, entry }, i) => {
    state.files[name] = landedBase(entry, landed[i]);
  });
  for (const name of plan.removals) {
    cache.removeFile(workingPath(model, name));
    delete state.files[name];
  }
  for (const [name, entry] of plan.adopted) {
    if (entry === undefined) delete state.files[name];
    else state.files[name] = baseOf(entry, workingPath(model, name));
  }
}
