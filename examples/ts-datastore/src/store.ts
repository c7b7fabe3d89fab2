// The host's object store, as this extension uses it: JSON objects read
// whole, owner-token writes that report a lost race as `undefined`, and
// listings across pages.

import * as objectStore from 'silt:datastore/object-store@0.7.4';
import type { ObjectMeta, PutMode } from 'silt:datastore/object-store@0.7.4';
import { corrupt, fromStoreError, storeErrorOf } from './errors.js';

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** A JSON object read from the store, with the version it was read at. */
export interface Found<T> {
  value: T;
  version: string;
}

/** Reads and parses `key`; `undefined` when there is no object. */
export function getJson<T>(key: string): Found<T> | undefined {
  let outcome;
  try {
    outcome = objectStore.get(key, undefined);
  } catch (thrown) {
    const err = storeErrorOf(thrown);
    if (err.tag === 'not-found') return undefined;
    throw fromStoreError(key, err);
  }
  if (outcome.tag !== 'found') throw corrupt(key, 'the store answered not-modified to a plain get');
  try {
    return { value: JSON.parse(decoder.decode(outcome.val.data)) as T, version: outcome.val.meta.version };
  } catch (err) {
    throw corrupt(key, `not JSON: ${err}`);
  }
}

/**
 * Writes `value` as JSON with `mode`, through `put-owned` (`token` must be
 * inside `value`). Returns the new version, or `undefined` when someone
 * else's write won the race.
 */
export function putOwnedJson(key: string, value: unknown, mode: PutMode, token: string): string | undefined {
  try {
    return objectStore.putOwned(key, encoder.encode(JSON.stringify(value)), mode, token);
  } catch (thrown) {
    const err = storeErrorOf(thrown);
    if (err.tag === 'already-exists' || err.tag === 'precondition-failed') return undefined;
    // Updating an object that vanished is a lost race too.
    if (err.tag === 'not-found' && mode.tag === 'update') return undefined;
    throw fromStoreError(key, err);
  }
}

/** Every object whose key starts with `prefix`, in key order. */
export function listAll(prefix: string): ObjectMeta[] {
  const items: ObjectMeta[] = [];
  let startAfter: string | undefined;
  for (;;) {
    let page;
    try {
      page = objectStore.list(prefix, startAfter, 1000);
    } catch (thrown) {
      throw fromStoreError(prefix, storeErrorOf(thrown));
    }
    items.push(...page.items);
    if (page.nextStartAfter === undefined) return items;
    startAfter = page.nextStartAfter;
  }
}

/** One object to bring into the cache, checked against its hash. */
export interface Fetch {
  key: string;
  cachePath: string;
  sha256: string;
}

/** What a bulk download landed: its bytes, and each file's time as it landed. */
export interface Landed {
  bytes: bigint;
  /**
   * Each item's file modification time as it landed (`seconds.nanoseconds`,
   * what `cache.stat` answers for the untouched file), in item order.
   */
  mtimes: string[];
}

/**
 * Downloads `items` concurrently (the host streams them); throws the first
 * failure. The host answers each file's time from the file itself, so
 * stamping what landed needs no `stat` of each.
 */
export function downloadAll(items: Fetch[]): Landed {
  const landed: Landed = { bytes: 0n, mtimes: [] };
  if (items.length === 0) return landed;
  const results = objectStore.downloadLanded(
    items.map((item) => ({ key: item.key, cachePath: item.cachePath, expectedVersion: undefined, sha256: item.sha256 })),
  );
  results.forEach((result, i) => {
    if (result.tag === 'err') throw fromStoreError(items[i].key, result.val);
    landed.bytes += result.val.meta.size;
    const ns = result.val.mtimeNs;
    landed.mtimes.push(`${ns / 1_000_000_000n}.${ns % 1_000_000_000n}`);
  });
  return landed;
}

/**
 * Hands a `get-file` the host named a delivery (its cache path is under
 * `.silt/deliver/`, contract 0.7.3) to `object-store.deliver`: the host
 * lands the object where the user asked, never in the cache. False when
 * it is not one, or the host is not waiting for it (`invalid-path`):
 * download into the cache path then.
 */
export function delivered(item: Fetch): boolean {
  if (!item.cachePath.startsWith('.silt/deliver/')) return false;
  try {
    objectStore.deliver({ key: item.key, cachePath: item.cachePath, expectedVersion: undefined, sha256: item.sha256 });
    return true;
  } catch (thrown) {
    const err = storeErrorOf(thrown);
    if (err.tag === 'invalid-path') return false;
    throw fromStoreError(item.key, err);
  }
}

/**
 * Uploads cache files, each to a key of its own that nothing else has
 * (`create`; `already-exists` is our own retried write).
 */
export function uploadAll(items: { cachePath: string; key: string }[]): void {
  if (items.length === 0) return;
  const results = objectStore.upload(
    items.map((item) => ({ cachePath: item.cachePath, key: item.key, mode: { tag: 'create' } as PutMode })),
  );
  results.forEach((result, i) => {
    if (result.tag === 'err' && result.val.tag !== 'already-exists') {
      throw fromStoreError(items[i].key, result.val);
    }
  });
}

/**
 * Uploads a sending `put-file` was handed (a path under `.silt/send/`,
 * 0.7.4: no file in the cache) to `key`: the host sends the file the user
 * gave and answers the sha256 and size of what it sent.
 */
export function uploadSending(cachePath: string, key: string): { sha256: string; size: bigint } {
  const [result] = objectStore.uploadHashed([{ cachePath, key, mode: { tag: 'create' } as PutMode }]);
  if (result === undefined) throw corrupt(key, 'the host answered no result for an upload');
  if (result.tag === 'err') throw fromStoreError(key, result.val);
  return { sha256: result.val.sha256, size: result.val.size };
}

/** Metadata of `key`, or `undefined` when it does not exist. */
export function head(key: string): ObjectMeta | undefined {
  try {
    return objectStore.head(key);
  } catch (thrown) {
    const err = storeErrorOf(thrown);
    if (err.tag === 'not-found') return undefined;
    throw fromStoreError(key, err);
  }
}
