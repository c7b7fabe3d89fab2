// The cache directory (`/cache`, the local copy), through WASI filesystem:
// the one directory the host grants. JavaScript has no `fs` inside a
// component, so files are read and written through descriptors.

import { getDirectories } from 'wasi:filesystem/preopens@0.2.12';
import type { Descriptor, ErrorCode } from 'wasi:filesystem/types@0.2.12';
import { Sha256 } from './sha256.js';
import { invalidInput, preconditionFailed } from './errors.js';
import { isTransferTemp, MAX_FILE_BYTES } from './layout.js';

const CHUNK = 1 << 20;
const encoder = new TextEncoder();
const decoder = new TextDecoder();

let root: Descriptor | undefined;

/** The preopened `/cache` directory. */
function cacheDir(): Descriptor {
  if (root === undefined) {
    const found = getDirectories().find(([, path]) => path === '/cache');
    if (found === undefined) throw invalidInput('the host granted no /cache directory');
    root = found[0];
  }
  return root;
}

/** The WASI error code of a failed filesystem call. */
function codeOf(thrown: unknown): ErrorCode | undefined {
  const payload = (thrown as { payload?: unknown })?.payload ?? thrown;
  return typeof payload === 'string' ? (payload as ErrorCode) : undefined;
}

// Descriptors are not closed one by one: each call runs in a fresh
// instance, and everything it opened goes when the instance does.

function open(path: string, write: boolean): Descriptor | undefined {
  try {
    return cacheDir().openAt(
      { symlinkFollow: false },
      path,
      write ? { create: true, truncate: true } : {},
      write ? { write: true } : { read: true },
    );
  } catch (thrown) {
    if (codeOf(thrown) === 'no-entry' || codeOf(thrown) === 'not-directory') return undefined;
    throw invalidInput(`cannot open cache file ${path}: ${codeOf(thrown) ?? thrown}`);
  }
}

/** Reads `file` from the start in 1 MiB chunks; returns its size. */
function readChunks(file: Descriptor, onChunk: (chunk: Uint8Array) => void): bigint {
  let offset = 0n;
  for (;;) {
    const [chunk, end] = file.read(BigInt(CHUNK), offset);
    onChunk(chunk);
    offset += BigInt(chunk.length);
    if (end || chunk.length === 0) return offset;
  }
}

/** A file's content hash and the size and time it had while hashed. */
export interface Hashed {
  size: bigint;
  sha256: string;
  mtime: string;
}

/**
 * Bytes hashed by this call so far. Module state lives as long as the
 * instance, and every call gets a fresh instance: this is per call, which
 * is what the deadline bounds.
 */
let hashedThisCall = 0n;

/**
 * Hashes a cache file, refusing one that would take this call past
 * [`MAX_FILE_BYTES`] of hashing, and one that changed while it was read (a
 * job still writing it): the hash must be the content's. `undefined` when
 * missing.
 */
export function hashFile(path: string): Hashed | undefined {
  const before = stat(path);
  if (before === undefined) return undefined;
  if (hashedThisCall + before.size > BigInt(MAX_FILE_BYTES)) {
    throw invalidInput(
      `${path} is ${before.size} bytes (after ${hashedThisCall} already hashed by this call); this extension hashes ` +
        `in JavaScript and takes up to ${MAX_FILE_BYTES} bytes a call (MAX_FILE_BYTES in src/layout.ts, with ` +
        '[runtime] deadline_ms): commit fewer or smaller files at a time',
    );
  }
  hashedThisCall += before.size;
  const file = open(path, false);
  if (file === undefined) return undefined;
  const hash = new Sha256();
  const size = readChunks(file, (chunk) => hash.update(chunk));
  assertUnchanged(path, { size, mtime: before.mtime });
  return { size, sha256: hash.hex(), mtime: before.mtime };
}

/** Throws `precondition-failed` unless `path` still has `seen`'s size and time. */
export function assertUnchanged(path: string, seen: { size: bigint; mtime: string }): void {
  const now = stat(path);
  if (now === undefined || now.size !== seen.size || now.mtime !== seen.mtime) {
    throw preconditionFailed(`${path} changed while it was being read; nothing was committed, try again when it is complete`);
  }
}

/** Reads a small cache file as JSON; `undefined` when missing. */
export function readJson<T>(path: string): T | undefined {
  const file = open(path, false);
  if (file === undefined) return undefined;
  try {
    const parts: Uint8Array[] = [];
    const bytes = new Uint8Array(Number(readChunks(file, (chunk) => parts.push(chunk))));
    let at = 0;
    for (const part of parts) {
      bytes.set(part, at);
      at += part.length;
    }
    return JSON.parse(decoder.decode(bytes)) as T;
  } catch {
    // Local state is a cache of what the store says: a damaged file is
    // dropped and rebuilt by the next pull.
    return undefined;
  }
}

/** Creates `dir` and its parents. */
export function makeDirs(dir: string): void {
  let path = '';
  for (const segment of dir.split('/')) {
    path = path === '' ? segment : `${path}/${segment}`;
    try {
      cacheDir().createDirectoryAt(path);
    } catch (thrown) {
      if (codeOf(thrown) !== 'exist') throw invalidInput(`cannot create cache directory ${path}: ${codeOf(thrown)}`);
    }
  }
}

const parentOf = (path: string) => path.slice(0, Math.max(0, path.lastIndexOf('/')));

/** Writes `value` as JSON, atomically (a temporary file, then a rename). */
export function writeJson(path: string, value: unknown): void {
  makeDirs(parentOf(path));
  const temporary = `${path}.tmp`;
  const file = open(temporary, true)!;
  const bytes = encoder.encode(JSON.stringify(value));
  let written = 0;
  while (written < bytes.length) {
    written += Number(file.write(bytes.subarray(written), BigInt(written)));
  }
  // On disk before the rename: a crash leaves the old state or the new one.
  file.syncData();
  cacheDir().renameAt(temporary, cacheDir(), path);
}

/** Moves the cache file `from` to `to`, creating `to`'s directory. */
export function moveFile(from: string, to: string): void {
  makeDirs(parentOf(to));
  try {
    cacheDir().renameAt(from, cacheDir(), to);
  } catch (thrown) {
    throw invalidInput(`cannot move cache file ${from} to ${to}: ${codeOf(thrown)}`);
  }
}

/** Removes a cache file; a missing one is fine. */
export function removeFile(path: string): void {
  try {
    cacheDir().unlinkFileAt(path);
  } catch (thrown) {
    if (codeOf(thrown) !== 'no-entry') throw invalidInput(`cannot remove cache file ${path}: ${codeOf(thrown)}`);
  }
}

/** Size and modification time of a regular file; `undefined` when there is none. */
export function stat(path: string): { size: bigint; mtime: string; mtimeMs: number } | undefined {
  try {
    const found = cacheDir().statAt({ symlinkFollow: false }, path);
    if (found.type !== 'regular-file') return undefined;
    const at = found.dataModificationTimestamp;
    return {
      size: found.size,
      mtime: at ? `${at.seconds}.${at.nanoseconds}` : '',
      mtimeMs: at ? Number(at.seconds) * 1000 + at.nanoseconds / 1e6 : 0,
    };
  } catch {
    return undefined;
  }
}

/** True when `path` is a regular file. */
export function isFile(path: string): boolean {
  try {
    return cacheDir().statAt({ symlinkFollow: false }, path).type === 'regular-file';
  } catch {
    return false;
  }
}

/**
 * Every regular file under `dir`, as paths relative to `dir`, sorted; none
 * when `dir` does not exist. Any other failure is an error: a directory
 * that cannot be read must not look like removed files.
 */
export function listFiles(dir: string): string[] {
  const out: string[] = [];
  const walk = (relative: string) => {
    const path = relative === '' ? dir : `${dir}/${relative}`;
    let entries;
    try {
      entries = cacheDir().openAt({ symlinkFollow: false }, path, { directory: true }, { read: true }).readDirectory();
    } catch (thrown) {
      const code = codeOf(thrown);
      if (relative === '' && (code === 'no-entry' || code === 'not-directory')) return;
      throw invalidInput(`cannot read cache directory ${path}: ${code ?? thrown}`);
    }
    const next = () => {
      try {
        return entries.readDirectoryEntry();
      } catch (thrown) {
        throw invalidInput(`cannot read cache directory ${path}: ${codeOf(thrown) ?? thrown}`);
      }
    };
    for (let entry = next(); entry; entry = next()) {
      const child = relative === '' ? entry.name : `${relative}/${entry.name}`;
      if (entry.type === 'directory') walk(child);
      // A download in progress is the host's, not the user's.
      else if (entry.type === 'regular-file' && !isTransferTemp(entry.name)) out.push(child);
    }
  };
  walk('');
  return out.sort();
}
