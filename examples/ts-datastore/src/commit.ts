// Commits: one compare-and-swap of the model's partition, fenced by the
// writer's lease, so writers of different models never meet.

import * as objectStore from 'silt:datastore/object-store@0.7.4';
import type { Base, Conflict, Lease, ModelRef } from 'silt:datastore/types@0.7.4';
import { conflict, lockLost } from './errors.js';
import { modelName } from './layout.js';
import { confirm } from './leases.js';
import { latest, updatePartition, type Entry, type Partition } from './partition.js';
import { randomToken } from './token.js';

/** A change to one name: new content in `blob`, or a tombstone (no `sha256`). */
export interface Change {
  name: string;
  size: number;
  sha256?: string;
  blob?: string;
  /** What the name's latest version must be for the commit to land. */
  base: Base;
}

/** True when `latest` (a tombstone included) satisfies `base`. */
export function holds(base: Base, latestEntry: Entry | undefined): boolean {
  switch (base.tag) {
    case 'any':
      return true;
    case 'absent':
      return latestEntry === undefined || latestEntry.deleted;
    case 'version':
      return latestEntry?.version === base.val;
  }
}

/** The changes whose base `partition` does not satisfy, as the contract reports them. */
export function conflictsOf(model: ModelRef, partition: Partition, changes: Change[]): Conflict[] {
  return changes.flatMap((change): Conflict[] => {
    const found = latest(partition, change.name);
    // The same content as the latest is no conflict, whatever its base:
    // nothing committed would be lost.
    const sameContent = change.sha256 !== undefined && found !== undefined && !found.deleted && found.sha256 === change.sha256;
    if (sameContent || holds(change.base, found)) return [];
    return [
      {
        model,
        name: change.name,
        base: change.base.tag === 'version' ? change.base.val : undefined,
        latest: found?.version,
        latestWriter: found?.writer ?? '',
        latestDeleted: found?.deleted ?? false,
      },
    ];
  });
}

/**
 * Commits `changes` to the model's partition under `held`: the lease must
 * still hold the model's lock (see `confirm`), and the partition's fence
 * must not be above its generation, and every change's base must hold in
 * the partition this attempt read (`conflict` otherwise: checked inside the
 * compare-and-swap, so no commit slips in between). Retried when another
 * commit of the model won the race. Versions past `retain` (the datastore's retention)
 * leave the index and their blobs are deleted.
 */
export function commit(model: ModelRef, held: Lease, changes: Change[], retain: number): Entry[] {
  const keep = Math.max(1, retain);
  let expired: Entry[] = [];
  const entries = updatePartition(model, randomToken, (partition, token) => {
    const generation = confirm(model, held);
    if (partition.generation > generation) {
      throw lockLost(
        `${modelName(model)} is fenced at generation ${partition.generation}; this lease has ${generation} (it was taken over)`,
      );
    }
    const refused = conflictsOf(model, partition, changes);
    if (refused.length > 0) throw conflict(refused);
    const now = Date.now();
    const made = changes.map(
      (change, i): Entry => ({
        // Ordered by commit time, unique by the token.
        version: `${String(now).padStart(15, '0')}-${i}-${token.slice(0, 12)}`,
        size: change.sha256 === undefined ? 0 : change.size,
        sha256: change.sha256 ?? '',
        blob: change.blob ?? '',
        generation,
        writer: held.holder.name,
        committedAt: now,
        deleted: change.sha256 === undefined,
        token,
      }),
    );
    expired = [];
    made.forEach((entry, i) => {
      const versions = [...(partition.files[changes[i].name] ?? []), entry];
      expired.push(...versions.slice(0, -keep));
      partition.files[changes[i].name] = versions.slice(-keep);
    });
    partition.generation = generation;
    return { write: made };
  });
  // Committed. Each version has a blob of its own, so an expired one is
  // nobody else's; a failed delete leaves an orphan, never a dangling entry.
  for (const entry of expired) {
    if (entry.blob === '') continue;
    try {
      objectStore.delete(entry.blob, undefined);
    } catch {
      // Best effort.
    }
  }
  return entries;
}
