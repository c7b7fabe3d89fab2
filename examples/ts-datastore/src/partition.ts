// The index: one partition per model, `index/<type>/<id>.json`, holding
// the last versions of each file name and the highest lease generation
// that holds the model (its fence).

import type { FileVersion } from 'silt:datastore/models@0.7.4';
import type { ModelRef } from 'silt:datastore/types@0.7.4';
import { corrupt, lockLost, notFound, preconditionFailed } from './errors.js';
import { dict, type Dict } from './dict.js';
import { INDEX_PREFIX, indexKey, LAYOUT_KEY, LAYOUT_VERSION, modelName, modelOfKey } from './layout.js';
import { getJson, listAll, putOwnedJson, type Found } from './store.js';

/** One committed version of a name, as the partition stores it. */
export interface Entry {
  version: string;
  size: number;
  sha256: string;
  /** The object holding the content (none for a tombstone): one per version. */
  blob: string;
  generation: number;
  writer: string;
  committedAt: number;
  deleted: boolean;
  /** The commit's owner token: `put-owned` finds its own write by it. */
  token: string;
}

/** A model's partition. */
export interface Partition {
  format: 1;
  /**
   * The fence: the highest lease generation that has held the model. A
   * lease below it was taken over and may not commit.
   */
  generation: number;
  /** The token of the write that raised the fence. */
  fenceToken: string;
  files: Dict<Entry[]>;
}

/** The datastore's layout object. */
export interface Layout {
  layout: number;
  retainVersions: number;
  token: string;
}

/** The error for a root that was never set up. */
export const missingDatastore = () =>
  notFound('no ts-datastore at this root: run `silt datastore setup` (or `silt init`) first');

/** The layout, checked; `not-found` when the datastore was never set up. */
export function readLayout(): Found<Layout> {
  const found = getJson<Layout>(LAYOUT_KEY);
  if (!found) throw missingDatastore();
  return checkLayout(found);
}

/** `found` if it is a layout this extension reads; `corrupt` otherwise. */
export function checkLayout(found: Found<Layout>): Found<Layout> {
  if (found.value.layout !== LAYOUT_VERSION) {
    throw corrupt(LAYOUT_KEY, `layout ${found.value.layout}; this extension reads layout ${LAYOUT_VERSION}`);
  }
  return found;
}

/** A partition with no files, fence 0. */
export const emptyPartition = (): Partition => ({ format: 1, generation: 0, fenceToken: '', files: dict() });

/** Reads and checks a model's partition; `undefined` when the model has none. */
export function readPartition(model: ModelRef): Found<Partition> | undefined {
  const key = indexKey(model);
  const found = getJson<Partition>(key);
  if (!found) return undefined;
  const partition = found.value;
  if (partition.format !== 1 || typeof partition.files !== 'object' || partition.files === null) {
    throw corrupt(key, 'not a ts-datastore index partition (format 1)');
  }
  partition.files = dict(partition.files);
  return found;
}

/** The newest entry of `name`, tombstone or not. */
export const latest = (partition: Partition, name: string): Entry | undefined => partition.files[name]?.at(-1);

/** Every model that has a partition, in key order. */
export function listModels(): ModelRef[] {
  return listAll(INDEX_PREFIX)
    .map((meta) => modelOfKey(INDEX_PREFIX, meta.key))
    .filter((model): model is ModelRef => model !== undefined);
}

export function toFileVersion(entry: Entry): FileVersion {
  return {
    version: entry.version,
    size: BigInt(entry.size),
    sha256: entry.sha256,
    generation: BigInt(entry.generation),
    writer: entry.writer,
    committedAt: BigInt(entry.committedAt),
    deleted: entry.deleted,
  };
}

/**
 * Rewrites the model's partition by compare-and-swap: `change` gets the
 * partition as read (empty when there is none) and edits it, or returns
 * `done` to stop without writing; the write carries `token` (which the
 * edit must put in the partition). Retried while another writer wins.
 */
export function updatePartition<T>(
  model: ModelRef,
  token: () => string,
  change: (partition: Partition, token: string) => { done: T } | { write: T },
): T {
  const key = indexKey(model);
  for (let attempt = 0; attempt < 16; attempt++) {
    const found = readPartition(model);
    const partition = found?.value ?? emptyPartition();
    const written = token();
    const outcome = change(partition, written);
    if ('done' in outcome) return outcome.done;
    const mode = found ? { tag: 'update' as const, val: found.version } : { tag: 'create' as const };
    if (putOwnedJson(key, partition, mode, written) !== undefined) return outcome.write;
  }
  throw preconditionFailed(`${key} kept changing during 16 attempts; try again`);
}

/**
 * Raises the model's fence to `generation` (a lease just acquired), so a
 * lease it took over can no longer commit. `lock-lost` when a newer lease
 * already raised it.
 */
export function raiseFence(model: ModelRef, generation: number, token: string): void {
  updatePartition(
    model,
    () => token,
    (partition) => {
      if (partition.generation === generation && partition.fenceToken === token) return { done: undefined };
      if (partition.generation >= generation) {
        throw lockLost(`${modelName(model)} is fenced at generation ${partition.generation}, above ${generation}`);
      }
      partition.generation = generation;
      partition.fenceToken = token;
      return { write: undefined };
    },
  );
}
