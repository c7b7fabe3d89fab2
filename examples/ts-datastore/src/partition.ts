// The index: one partition per model, `index/<type>/<id>.json`, holding
// the last versions of each file name. A commit is one compare-and-swap of
// the model's partition, so writers of different models never meet.

import type { FileVersion } from 'silt:datastore/models@0.4.0';
import type { Lease, ModelRef } from 'silt:datastore/types@0.4.0';
import { corrupt, lockLost, notFound, preconditionFailed } from './errors.js';
import { INDEX_PREFIX, indexKey, LAYOUT_KEY, LAYOUT_VERSION, modelName, modelOfKey } from './layout.js';
import { fence } from './leases.js';
import { getJson, listAll, putOwnedJson, type Found } from './store.js';
import { randomToken } from './token.js';

/** One committed version of a name, as the partition stores it. */
export interface Entry {
  version: string;
  size: number;
  sha256: string;
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
  /** The highest lease generation that committed here: older leases are fenced off. */
  generation: number;
  files: Record<string, Entry[]>;
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
  if (found.value.layout !== LAYOUT_VERSION) {
    throw corrupt(LAYOUT_KEY, `layout ${found.value.layout}; this extension reads layout ${LAYOUT_VERSION}`);
  }
  return found;
}

/** Reads and checks a model's partition; `undefined` when the model has none. */
export function readPartition(model: ModelRef): Found<Partition> | undefined {
  const key = indexKey(model);
  const found = getJson<Partition>(key);
  if (found && (found.value.format !== 1 || typeof found.value.files !== 'object' || found.value.files === null)) {
    throw corrupt(key, 'not a ts-datastore index partition (format 1)');
  }
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

/** A change to one name: new content, or a tombstone (`sha256` undefined). */
export interface Change {
  name: string;
  size: number;
  sha256?: string;
}

/**
 * Commits `changes` to the model's partition under `held`, fenced: the
 * lease must still hold the model's lock, and no newer generation may have
 * committed. Retries when another commit of the same partition won the race.
 */
export function commit(model: ModelRef, held: Lease, changes: Change[]): Entry[] {
  const key = indexKey(model);
  const retain = readLayout().value.retainVersions;
  for (let attempt = 0; attempt < 16; attempt++) {
    const generation = fence(model, held);
    const found = readPartition(model);
    const partition: Partition = found?.value ?? { format: 1, generation: 0, files: {} };
    if (partition.generation > generation) {
      throw lockLost(
        `${modelName(model)} was committed under generation ${partition.generation}; this lease has ${generation}`,
      );
    }
    const token = randomToken();
    const now = Date.now();
    const entries = changes.map(
      (change, i): Entry => ({
        // Ordered by commit time, unique by the token.
        version: `${String(now).padStart(15, '0')}-${i}-${token.slice(0, 12)}`,
        size: change.sha256 === undefined ? 0 : change.size,
        sha256: change.sha256 ?? '',
        generation,
        writer: held.holder.name,
        committedAt: now,
        deleted: change.sha256 === undefined,
        token,
      }),
    );
    entries.forEach((entry, i) => {
      const versions = [...(partition.files[changes[i].name] ?? []), entry];
      partition.files[changes[i].name] = versions.slice(-Math.max(1, retain));
    });
    partition.generation = generation;
    const mode = found ? { tag: 'update' as const, val: found.version } : { tag: 'create' as const };
    if (putOwnedJson(key, partition, mode, token) !== undefined) return entries;
  }
  throw preconditionFailed(`${key} kept changing during 16 commit attempts; try again`);
}
