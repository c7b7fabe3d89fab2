// Lazy hydration: fetching the files a command touches, and no others.

import type { HydrateOptions, HydrateReport } from 'silt:datastore/hydration@0.4.0';
import type { ModelRef } from 'silt:datastore/types@0.4.0';
import * as cache from './cache.js';
import { invalidInput, notFound } from './errors.js';
import { blobKey, checkModel, checkName, DATA_DIR, workingPath } from './layout.js';
import { latest, readLayout, readPartition } from './partition.js';
import { downloadAll, type Fetch } from './store.js';
import { noStats } from './sync.js';
import * as workingCopy from './working_copy.js';

export function hydrateScope(models: ModelRef[], options: HydrateOptions): HydrateReport {
  readLayout();
  const report: HydrateReport = { stats: noStats(), objectsPresent: 0n, objectsRemaining: 0n };
  let budget = options.maxObjects ?? BigInt(Number.MAX_SAFE_INTEGER);
  for (const model of models) {
    checkModel(model);
    const found = readPartition(model);
    report.stats.partitionsRead += 1n;
    if (!found) throw notFound(`model ${model.modelType}:${model.modelId} is not in the index`);
    const state = workingCopy.load(model);
    const fetches: Fetch[] = [];
    const bases: Record<string, workingCopy.Base> = {};
    // Older versions are reached through `models.get-file`; hydration
    // makes the working copy (the latest of each name) present.
    for (const name of Object.keys(found.value.files)) {
      const entry = latest(found.value, name)!;
      if (entry.deleted) continue;
      const path = workingPath(model, name);
      if (cache.isFile(path)) {
        report.objectsPresent += 1n;
      } else if (budget > 0n && !options.dryRun) {
        budget -= 1n;
        fetches.push({ key: blobKey(model, entry.sha256), cachePath: path, sha256: entry.sha256 });
        bases[name] = workingCopy.baseOf(entry);
      } else {
        report.objectsRemaining += 1n;
      }
    }
    report.stats.bytesDownloaded += downloadAll(fetches);
    report.stats.objectsDownloaded += BigInt(fetches.length);
    if (fetches.length) workingCopy.save(model, { files: { ...state.files, ...bases } });
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
  const report: HydrateReport = { stats: noStats(), objectsPresent: 0n, objectsRemaining: 0n };
  for (let split = 2; split < segments.length - 1; split++) {
    const model = { modelType: segments.slice(1, split).join('/'), modelId: segments[split] };
    const name = segments.slice(split + 1).join('/');
    const found = readPartition(model);
    report.stats.partitionsRead += 1n;
    const entry = found && latest(found.value, name);
    if (!entry || entry.deleted) continue;
    if (cache.hashFile(path)?.sha256 === entry.sha256) {
      report.objectsPresent = 1n;
      return report;
    }
    report.stats.bytesDownloaded += downloadAll([{ key: blobKey(model, entry.sha256), cachePath: path, sha256: entry.sha256 }]);
    report.stats.objectsDownloaded = 1n;
    const state = workingCopy.load(model);
    state.files[name] = workingCopy.baseOf(entry);
    workingCopy.save(model, state);
    return report;
  }
  throw notFound(`no model of the index has ${path}`);
}
