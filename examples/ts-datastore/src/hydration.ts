// Lazy hydration: fetching the files a command touches, and no others,
// with the same rules as a pull (`working_copy.planRefresh`): a local edit
// is never overwritten, a locally removed file never fetched back, and an
// outdated untouched file is refreshed.

import type { HydrateOptions, HydrateReport } from 'silt:datastore/hydration@0.7.4';
import type { LocalEdits, ModelRef } from 'silt:datastore/types@0.7.4';
import { invalidInput, notFound } from './errors.js';
import { checkModel, checkName, DATA_DIR } from './layout.js';
import { latest, readLayout, readPartition } from './partition.js';
import { downloadAll } from './store.js';
import { restore, SetAside } from './set_aside.js';
import { noStats } from './sync.js';
import * as workingCopy from './working_copy.js';

export function hydrateScope(models: ModelRef[], options: HydrateOptions): HydrateReport {
  readLayout();
  const aside = new SetAside();
  const report: HydrateReport = { stats: noStats(), objectsPresent: 0n, objectsRemaining: 0n, setAside: aside.moved };
  // A dry run moves nothing aside.
  const edits: LocalEdits = options.dryRun ? 'keep' : options.localEdits;
  let budget = options.maxObjects ?? BigInt(Number.MAX_SAFE_INTEGER);
  for (const model of models) {
    checkModel(model);
    const found = readPartition(model);
    report.stats.partitionsRead += 1n;
    // A model nobody has written yet has nothing to fetch.
    if (!found) continue;
    // Older versions are reached through `models.get-file`; hydration
    // makes the working copy (the latest of each name) present.
    const state = workingCopy.load(model);
    const restored = aside.apply(model, state, found.value, edits);
    const plan = workingCopy.planRefresh(model, found.value, state, true);
    restore(model, plan, found.value, restored);
    report.objectsPresent += BigInt(plan.present);
    const take = options.dryRun ? 0 : Number(budget < BigInt(plan.fetches.length) ? budget : BigInt(plan.fetches.length));
    report.objectsRemaining += BigInt(plan.fetches.length - take);
    if (options.dryRun) continue;
    const fetches = plan.fetches.slice(0, take);
    budget -= BigInt(take);
    const landed = downloadAll(fetches);
    report.stats.bytesDownloaded += landed.bytes;
    report.stats.objectsDownloaded += BigInt(take);
    workingCopy.applyRefresh(model, state, plan, landed.mtimes);
    workingCopy.save(model, state);
  }
  return report;
}

/**
 * Makes `data/<type>/<id>/<name>` present. A model type may hold `/`, so
 * the path is tried at each split into type, id and name until the index
 * has a model with that name.
 */
export function hydrateFile(path: string): HydrateReport {
  readLayout();
  const segments = path.split('/');
  if (segments[0] !== DATA_DIR || segments.length < 4) {
    throw invalidInput(`${path} is not a working-copy path (data/<model-type>/<model-id>/<name>)`);
  }
  checkName(segments.slice(1).join('/'));
  const report: HydrateReport = { stats: noStats(), objectsPresent: 0n, objectsRemaining: 0n, setAside: [] };
  for (let split = 2; split < segments.length - 1; split++) {
    const model = { modelType: segments.slice(1, split).join('/'), modelId: segments[split] };
    const name = segments.slice(split + 1).join('/');
    const found = readPartition(model);
    report.stats.partitionsRead += 1n;
    const entry = found && latest(found.value, name);
    if (!found || !entry || entry.deleted) continue;
    const state = workingCopy.load(model);
    const plan = workingCopy.planRefresh(model, found.value, state, true, name);
    report.objectsPresent = BigInt(plan.present);
    const landed = downloadAll(plan.fetches);
    report.stats.bytesDownloaded += landed.bytes;
    report.stats.objectsDownloaded = BigInt(plan.fetches.length);
    workingCopy.applyRefresh(model, state, plan, landed.mtimes);
    workingCopy.save(model, state);
    return report;
  }
  throw notFound(`no model of the index has ${path}`);
}
