// `sync`: setting a datastore up, pulling the index's changes into the
// working copy and pushing the working copy's changes as commits.

import type {
  Finding,
  GcOptions,
  OrphanOptions,
  SetupOptions,
  SetupReport,
  StatusReport,
  SyncOptions,
  SyncReport,
} from 'silt:datastore/sync@0.7.4';
import type { Base, Conflict, Lease, LocalEdits, ModelRef, Scope, TransferStats } from 'silt:datastore/types@0.7.4';
import * as cache from './cache.js';
import { commit, conflictsOf, type Change } from './commit.js';
import { conflict, invalidInput, notSupported, preconditionFailed } from './errors.js';
import { restore, SetAside } from './set_aside.js';
import {
  checkModel,
  FOREIGN_META_KEY,
  LAYOUT_KEY,
  LAYOUT_VERSION,
  modelName,
  sameModel,
  STATE_DIR,
  workingPath,
} from './layout.js';
import { checkLayout, latest, listModels, missingDatastore, readLayout, readPartition, type Layout } from './partition.js';
import { downloadAll, getJson, head, putOwnedJson } from './store.js';
import { uploadVersions } from './upload.js';
import { randomToken } from './token.js';
import * as workingCopy from './working_copy.js';

export const noStats = (): TransferStats => ({
  objectsDownloaded: 0n,
  bytesDownloaded: 0n,
  objectsUploaded: 0n,
  bytesUploaded: 0n,
  partitionsRead: 0n,
  partitionsWritten: 0n,
});

/** The models a scope covers: `all` is every model of the index. */
function modelsOf(scope: Scope): ModelRef[] {
  if (scope.tag === 'all') return listModels();
  scope.val.forEach(checkModel);
  return scope.val;
}

export function setup(options: SetupOptions): SetupReport {
  cache.makeDirs(STATE_DIR);
  const found = getJson<Layout>(LAYOUT_KEY);
  if (found) {
    const layout = checkLayout(found).value;
    let retain = layout.retainVersions;
    if (options.retainVersions !== undefined && options.retainVersions !== retain) {
      retain = Math.max(1, options.retainVersions);
      const next: Layout = { ...layout, retainVersions: retain, token: randomToken() };
      if (putOwnedJson(LAYOUT_KEY, next, { tag: 'update', val: found.version }, next.token) === undefined) {
        throw preconditionFailed('the datastore settings changed while they were being updated; try again');
      }
    }
    return { created: false, layoutVersion: layout.layout, detail: `ts-datastore layout ${layout.layout}, keeps ${retain} versions` };
  }
  if (!options.create) throw missingDatastore();
  if (head(FOREIGN_META_KEY)) {
    throw invalidInput(
      `this root already holds another extension's datastore (${FOREIGN_META_KEY}); use that extension, or a new root`,
    );
  }
  const layout: Layout = { layout: LAYOUT_VERSION, retainVersions: Math.max(1, options.retainVersions ?? 10), token: randomToken() };
  if (putOwnedJson(LAYOUT_KEY, layout, { tag: 'create' }, layout.token) === undefined) {
    // Someone created it first: attach to theirs.
    return setup({ create: false, retainVersions: options.retainVersions });
  }
  return { created: true, layoutVersion: LAYOUT_VERSION, detail: `created, keeps ${layout.retainVersions} versions` };
}

export function pullChanged(options: SyncOptions): SyncReport {
  readLayout();
  const stats = noStats();
  const changed: string[] = [];
  let conflicts = 0;
  // A dry run moves nothing aside.
  const aside = new SetAside();
  const edits: LocalEdits = options.dryRun ? 'keep' : options.localEdits;
  for (const model of modelsOf(options.scope)) {
    const found = readPartition(model);
    stats.partitionsRead += 1n;
    if (!found) continue;
    const state = workingCopy.load(model);
    const restored = aside.apply(model, state, found.value, edits);
    const plan = workingCopy.planRefresh(model, found.value, state, options.fetchMissing);
    restore(model, plan, found.value, restored);
    conflicts += plan.conflicts;
    changed.push(...plan.fetches.map((fetch) => fetch.cachePath));
    changed.push(...plan.removals.map((name) => workingPath(model, name)));
    if (options.dryRun) continue;
    const landed = downloadAll(plan.fetches);
    stats.bytesDownloaded += landed.bytes;
    stats.objectsDownloaded += BigInt(plan.fetches.length);
    workingCopy.applyRefresh(model, state, plan, landed.mtimes);
    workingCopy.save(model, state);
  }
  const verb = options.dryRun ? 'would update' : 'updated';
  const kept = conflicts
    ? `; kept ${conflicts} locally edited file(s) that also changed in the store (a push refuses them: resolve with --theirs or --ours)`
    : '';
  return { stats, changed, summary: `${verb} ${changed.length} file(s)${kept}`, setAside: aside.moved };
}

function leaseOf(model: ModelRef, leases: Lease[]): Lease {
  const held = leases.find((lease) => lease.scope.tag === 'model' && sameModel(lease.scope.val, model));
  if (!held) throw invalidInput(`pushing ${modelName(model)} needs its model lease; none was given`);
  return held;
}

/** The models with local state: `all` for a push is what this copy has synced. */
function localModels(scope: Scope): ModelRef[] {
  return scope.tag === 'all' ? listModels().filter((m) => Object.keys(workingCopy.load(m).files).length > 0) : modelsOf(scope);
}

/** The base a local change commits under: the version it was made from, or none when the user said `ours`. */
function baseOf(change: workingCopy.LocalChange, edits: LocalEdits): Base {
  if (edits === 'ours') return { tag: 'any' };
  return change.base === undefined ? { tag: 'absent' } : { tag: 'version', val: change.base };
}

export function pushChanged(options: SyncOptions): SyncReport {
  const retain = readLayout().value.retainVersions;
  const stats = noStats();
  const changed: string[] = [];
  // First every model's changes, checked against the partition just read:
  // a conflict anywhere refuses the push before anything is uploaded. The
  // commit checks again inside its compare-and-swap.
  const ready: { model: ModelRef; state: workingCopy.ModelState; changes: workingCopy.LocalChange[]; commits: Change[] }[] = [];
  const refused: Conflict[] = [];
  for (const model of localModels(options.scope)) {
    const state = workingCopy.load(model);
    const partition = readPartition(model)?.value;
    const { changes, restamped } = workingCopy.localChanges(model, state, partition);
    if (restamped && !options.dryRun) workingCopy.save(model, state);
    if (changes.length === 0) continue;
    changed.push(...changes.map((change) => change.path));
    if (options.dryRun) continue;
    const commits = changes.map((change): Change => ({ ...change, base: baseOf(change, options.localEdits) }));
    if (partition) refused.push(...conflictsOf(model, partition, commits));
    ready.push({ model, state, changes, commits });
  }
  if (refused.length > 0) throw conflict(refused);
  for (const { model, state, changes, commits } of ready) {
    const held = leaseOf(model, options.leases);
    const contents = changes.filter((change) => change.sha256 !== undefined);
    const keys = uploadVersions(model, contents.map((change) => ({ ...change, sha256: change.sha256! })));
    const blobs = new Map(contents.map((change, i) => [change.name, keys[i]]));
    const entries = commit(
      model,
      held,
      commits.map((change) => ({ ...change, blob: blobs.get(change.name) })),
      retain,
    );
    entries.forEach((entry, i) => {
      if (entry.deleted) delete state.files[changes[i].name];
      else state.files[changes[i].name] = workingCopy.baseOf(entry, changes[i].path);
    });
    workingCopy.save(model, state);
    stats.objectsUploaded += BigInt(contents.length);
    stats.bytesUploaded += BigInt(changes.reduce((sum, change) => sum + change.size, 0));
    stats.partitionsWritten += 1n;
  }
  const verb = options.dryRun ? 'would commit' : 'committed';
  return { stats, changed, summary: `${verb} ${changed.length} change(s)`, setAside: [] };
}

export function status(scope: Scope): StatusReport {
  readLayout();
  const report: StatusReport = {
    objectsTotal: 0n,
    bytesTotal: 0n,
    objectsLocal: 0n,
    bytesLocal: 0n,
    localChanges: [],
    localModels: [],
    remoteChanges: [],
  };
  for (const model of modelsOf(scope)) {
    const state = workingCopy.load(model);
    const found = readPartition(model);
    let remote = false;
    for (const name of Object.keys(found?.value.files ?? {})) {
      const entry = latest(found!.value, name)!;
      if (entry.deleted) continue;
      report.objectsTotal += 1n;
      report.bytesTotal += BigInt(entry.size);
      if (cache.isFile(workingPath(model, name))) {
        report.objectsLocal += 1n;
        report.bytesLocal += BigInt(entry.size);
      }
      const base = state.files[name];
      if (base && base.version !== entry.version) remote = true;
    }
    if (remote) report.remoteChanges.push(modelName(model));
    const { changes, restamped } = workingCopy.localChanges(model, state, found?.value);
    if (restamped) workingCopy.save(model, state);
    if (changes.length) {
      report.localChanges.push(...changes.map((change) => change.path));
      report.localModels.push(model);
    }
  }
  return report;
}

export function verify(scope: Scope): Finding[] {
  readLayout();
  const findings: Finding[] = [];
  for (const model of modelsOf(scope)) {
    let found;
    try {
      found = readPartition(model);
    } catch (err) {
      const detail = (err as { val?: { detail?: string } }).val?.detail ?? String(err);
      findings.push({ object: `index of ${modelName(model)}`, problem: detail });
      continue;
    }
    for (const name of Object.keys(found?.value.files ?? {})) {
      const entry = latest(found!.value, name)!;
      if (entry.deleted) continue;
      const key = entry.blob;
      const meta = head(key);
      if (!meta) findings.push({ object: key, problem: `missing: the latest version of ${name} has no content` });
      else if (meta.size !== BigInt(entry.size)) {
        findings.push({ object: key, problem: `${meta.size} bytes; the index says ${entry.size}` });
      }
    }
  }
  return findings;
}

export function gc(_options: GcOptions): never {
  throw notSupported('ts-datastore keeps the newest versions by retention only (no `gc`)');
}

export function collectOrphans(_options: OrphanOptions): never {
  throw notSupported('ts-datastore does not collect unreferenced blobs (no `gc`)');
}
