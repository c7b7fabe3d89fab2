// ts-datastore: a partitioned datastore extension for silt, in TypeScript.
//
// componentize-js turns this module into a WebAssembly component: each
// exported object implements one interface of the `silt:datastore` world
// (`capabilities`, `sync`, `hydration`, `locks`, `models`), its methods
// named in camelCase. A method reports an error by throwing the contract's
// `error` variant (see `errors.ts`).

import type { Description } from 'silt:datastore/capabilities@0.7.4';
import * as hydrationImpl from './hydration.js';
import * as leases from './leases.js';
import { METADATA } from './metadata.js';
import * as modelsImpl from './models.js';
import * as syncImpl from './sync.js';

/** The WIT feature flags, by their names in `silt-extension` metadata. */
function features(names: readonly string[]): Description['features'] {
  const has = (name: string) => names.includes(name);
  return {
    scopedSync: has('scoped-sync'),
    partitionedIndex: has('partitioned-index'),
    modelLocks: has('model-locks'),
    namespaceLocks: has('namespace-locks'),
    lazyHydration: has('lazy-hydration'),
    backgroundHydration: has('background-hydration'),
    gc: has('gc'),
  };
}

export const capabilities = {
  describe: (): Description => ({
    name: METADATA.name,
    version: METADATA.version,
    features: features(METADATA.capabilities),
  }),
};

export const sync = {
  setup: syncImpl.setup,
  verify: syncImpl.verify,
  pullChanged: syncImpl.pullChanged,
  pushChanged: syncImpl.pushChanged,
  status: syncImpl.status,
  gc: syncImpl.gc,
  collectOrphans: syncImpl.collectOrphans,
};

export const hydration = {
  hydrateScope: hydrationImpl.hydrateScope,
  hydrateFile: hydrationImpl.hydrateFile,
};

export const locks = {
  acquire: leases.acquire,
  renew: leases.renew,
  release: leases.release,
  inspect: leases.inspect,
  list: leases.list,
  forceRelease: leases.forceRelease,
};

export const models = {
  listModels: modelsImpl.listModels,
  listFiles: modelsImpl.listFiles,
  history: modelsImpl.history,
  putFile: modelsImpl.putFile,
  getFile: modelsImpl.getFile,
  removeFile: modelsImpl.removeFile,
};
