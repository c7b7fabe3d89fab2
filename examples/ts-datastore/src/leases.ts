// Model leases: one lock object per model, `locks/<type>/<id>.json`.
//
// Acquire creates it (`If-None-Match: *`) or takes over a released or stale
// one by compare-and-swap on its version, one generation above both the
// lock and the model's fence, then raises the fence to it (so the lease it
// took over cannot commit again); release marks the lock released rather
// than deleting it, so a model's generation only ever grows. Every write
// goes through `put-owned` with a fresh token inside the object, so a
// retried write whose first attempt landed is known to be ours.

import type { AcquireOptions } from 'silt:datastore/locks@0.7.4';
import type { Holder, Lease, LockInfo, LockScope, ModelRef } from 'silt:datastore/types@0.7.4';
import { invalidInput, lockHeld, lockLost, notSupported, preconditionFailed } from './errors.js';
import { checkModel, LOCKS_PREFIX, lockKey, modelName, modelOfKey, sameModel } from './layout.js';
import { raiseFence, readPartition } from './partition.js';
import { getJson, listAll, putOwnedJson, type Found } from './store.js';
import { randomToken } from './token.js';

/** What a lock object holds. */
interface LockBody {
  model: ModelRef;
  token: string;
  generation: number;
  holder: Holder;
  acquiredAt: number;
  renewedAt: number;
  ttlMs: number;
  released: boolean;
}

const isStale = (body: LockBody, now: number) => body.renewedAt + body.ttlMs < now;

function info(found: Found<LockBody>, now: number): LockInfo {
  const body = found.value;
  return {
    scope: { tag: 'model', val: body.model },
    holder: body.holder,
    generation: BigInt(body.generation),
    acquiredAt: BigInt(body.acquiredAt),
    renewedAt: BigInt(body.renewedAt),
    ttlMs: body.ttlMs,
    stale: isStale(body, now),
    version: found.version,
  };
}

function lease(body: LockBody, version: string): Lease {
  return {
    scope: { tag: 'model', val: body.model },
    token: body.token,
    generation: BigInt(body.generation),
    version,
    acquiredAt: BigInt(body.acquiredAt),
    renewedAt: BigInt(body.renewedAt),
    ttlMs: body.ttlMs,
    holder: body.holder,
  };
}

function modelOf(scope: LockScope): ModelRef {
  if (scope.tag !== 'model') {
    throw notSupported('ts-datastore takes model leases only (it does not declare namespace-locks)');
  }
  checkModel(scope.val);
  return scope.val;
}

/** Takes the model's lock, or takes over a released or stale one. */
export function acquire(scope: LockScope, options: AcquireOptions): Lease {
  const model = modelOf(scope);
  const key = lockKey(model);
  const now = Date.now();
  const current = getJson<LockBody>(key);
  if (current && !current.value.released && !isStale(current.value, now)) {
    throw lockHeld(info(current, now));
  }
  const fence = readPartition(model)?.value.generation ?? 0;
  const body: LockBody = {
    model,
    token: randomToken(),
    generation: Math.max(fence, current?.value.generation ?? 0) + 1,
    holder: options.holder,
    acquiredAt: now,
    renewedAt: now,
    ttlMs: options.ttlMs,
    released: false,
  };
  const mode = current ? { tag: 'update' as const, val: current.version } : { tag: 'create' as const };
  const version = putOwnedJson(key, body, mode, body.token);
  if (version === undefined) {
    // Someone else took it between our read and our write.
    const winner = getJson<LockBody>(key);
    if (winner && !winner.value.released) throw lockHeld(info(winner, Date.now()));
    throw preconditionFailed(`the lock of ${modelName(model)} changed while it was being taken; try again`);
  }
  try {
    raiseFence(model, body.generation, body.token);
  } catch (err) {
    markReleased(key, { value: body, version });
    throw err;
  }
  return lease(body, version);
}

/** The lock object, if `held` is still its holder; throws `lock-lost` otherwise. */
function currentHolder(held: Lease): Found<LockBody> {
  const model = modelOf(held.scope);
  const current = getJson<LockBody>(lockKey(model));
  if (!current) throw lockLost(`the lock of ${modelName(model)} was removed`);
  const body = current.value;
  if (body.released || body.token !== held.token || BigInt(body.generation) !== held.generation) {
    throw lockLost(
      `the lease of ${modelName(model)} (generation ${held.generation}) is no longer the holder: ` +
        (body.released ? 'it was released' : `generation ${body.generation} holds it now`),
    );
  }
  return current;
}

/** Checks that `held` is a lease of `model`: `invalid-input` otherwise. */
function covers(model: ModelRef, held: Lease): void {
  if (held.scope.tag !== 'model' || !sameModel(held.scope.val, model)) {
    throw invalidInput(`a write to ${modelName(model)} needs that model's lease`);
  }
}

/**
 * Checks that `held` may commit to `model` now: it covers the model, is
 * still the holder, and was renewed within 0.75 × TTL (a lease silent
 * longer may be taken over before the commit lands, so it stops itself).
 * Returns its generation.
 */
export function confirm(model: ModelRef, held: Lease): number {
  covers(model, held);
  const current = currentHolder(held);
  const silent = Date.now() - current.value.renewedAt;
  if (silent > (current.value.ttlMs * 3) / 4) {
    throw lockLost(
      `the lease of ${modelName(model)} was last renewed ${silent} ms ago (TTL ${current.value.ttlMs} ms); ` +
        'stopped before committing so that a new holder cannot be overwritten',
    );
  }
  return current.value.generation;
}

/** Extends a held lease. */
export function renew(held: Lease): Lease {
  // A lease that went a whole TTL without renewal is dead even if nobody
  // took it over: its holder was stalled and must never commit again.
  const silent = Date.now() - Number(held.renewedAt);
  if (silent > held.ttlMs) {
    throw lockLost(`the lease expired ${silent - held.ttlMs} ms ago; an expired lease is never revived`);
  }
  const current = currentHolder(held);
  const body: LockBody = { ...current.value, renewedAt: Date.now() };
  const version = putOwnedJson(lockKey(body.model), body, { tag: 'update', val: current.version }, body.token);
  if (version === undefined) throw lockLost(`the lease of ${modelName(body.model)} was taken over while renewing`);
  return lease(body, version);
}

/** Marks the lock released, keeping its generation. */
function markReleased(key: string, found: Found<LockBody>): boolean {
  const body: LockBody = { ...found.value, token: randomToken(), released: true };
  return putOwnedJson(key, body, { tag: 'update', val: found.version }, body.token) !== undefined;
}

/** Releases a held lease. */
export function release(held: Lease): void {
  const current = currentHolder(held);
  if (!markReleased(lockKey(current.value.model), current)) {
    throw lockLost(`the lease of ${modelName(current.value.model)} was taken over while releasing`);
  }
}

/** Who holds the lock of `scope`, if anyone. */
export function inspect(scope: LockScope): LockInfo | undefined {
  const current = getJson<LockBody>(lockKey(modelOf(scope)));
  return current && !current.value.released ? info(current, Date.now()) : undefined;
}

/** Every lock currently held. */
export function list(): LockInfo[] {
  const now = Date.now();
  const held: LockInfo[] = [];
  for (const meta of listAll(LOCKS_PREFIX)) {
    if (!modelOfKey(LOCKS_PREFIX, meta.key)) continue;
    const current = getJson<LockBody>(meta.key);
    if (current && !current.value.released) held.push(info(current, now));
  }
  return held;
}

/** Removes someone else's lock if it is still the one `expected` describes. */
export function forceRelease(expected: LockInfo): void {
  const key = lockKey(modelOf(expected.scope));
  const current = getJson<LockBody>(key);
  if (!current || current.version !== expected.version || current.value.released) {
    throw preconditionFailed(`the lock at ${key} changed since it was inspected; inspect it again`);
  }
  if (!markReleased(key, current)) {
    throw preconditionFailed(`the lock at ${key} changed while it was being released; inspect it again`);
  }
}
