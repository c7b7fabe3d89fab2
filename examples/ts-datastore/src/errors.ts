// The contract's error variant, and how failures of the host's imports are
// turned into it. An export reports an error by throwing the variant value
// (`{ tag, val }`); componentize-js turns the throw into `result::err`.

import type { Conflict, Error as DatastoreError, LockInfo } from 'silt:datastore/types@0.7.4';
import type { StoreError } from 'silt:datastore/object-store@0.7.4';

export type { DatastoreError };

/** `not-found`: the named model, file or datastore does not exist. */
export const notFound = (what: string): DatastoreError => ({ tag: 'not-found', val: what });
/** `invalid-input`: the caller passed something this extension refuses. */
export const invalidInput = (what: string): DatastoreError => ({ tag: 'invalid-input', val: what });
/** `lock-lost`: the caller's lease is no longer the holder; nothing was committed. */
export const lockLost = (what: string): DatastoreError => ({ tag: 'lock-lost', val: what });
/** `lock-held`: someone else holds the lock. */
export const lockHeld = (info: LockInfo): DatastoreError => ({ tag: 'lock-held', val: info });
/** `precondition-failed`: a conditional write kept losing. */
export const preconditionFailed = (what: string): DatastoreError => ({
  tag: 'precondition-failed',
  val: what,
});
/** `conflict`: files changed in the store since the versions the changes were based on. */
export const conflict = (found: Conflict[]): DatastoreError => ({ tag: 'conflict', val: found });
/** `corrupt`: an object in the store or the cache is malformed. */
export const corrupt = (object: string, detail: string): DatastoreError => ({
  tag: 'corrupt',
  val: { object, detail },
});
/** `not-supported`: this extension does not implement the operation. */
export const notSupported = (what: string): DatastoreError => ({ tag: 'not-supported', val: what });

/**
 * The payload of an error thrown by an import that returns `result`. The
 * bindings throw an Error whose `payload` is the variant; accept the bare
 * variant too.
 */
export function storeErrorOf(thrown: unknown): StoreError {
  const candidate = (thrown as { payload?: unknown })?.payload ?? thrown;
  if (candidate && typeof candidate === 'object' && 'tag' in candidate) {
    return candidate as StoreError;
  }
  return { tag: 'backend', val: { retryable: false, detail: String(thrown) } };
}

/** A store failure as the contract's error, naming the key. */
export function fromStoreError(key: string, err: StoreError): DatastoreError {
  switch (err.tag) {
    case 'not-found':
      return notFound(`no object at ${key}`);
    case 'already-exists':
    case 'precondition-failed':
      return preconditionFailed(`${key} changed while it was being written`);
    case 'invalid-key':
    case 'invalid-path':
    case 'invalid-argument':
      return invalidInput(`${key}: ${err.val}`);
    case 'checksum-mismatch':
      return corrupt(key, err.val);
    case 'not-supported':
      return notSupported(`${key}: ${err.val}`);
    case 'backend':
      return { tag: 'backend', val: err.val };
  }
}
