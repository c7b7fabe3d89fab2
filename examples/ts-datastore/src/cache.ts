// The cache directory (`/cache`, the local copy), through WASI filesystem:
// the one directory the host grants. JavaScript has no `fs` inside a
// component, so files are read and written through descriptors.

import { getDirectories } from 'wasi:filesystem/preopens@0.2.12';
import type { Descriptor, ErrorCode } from 'wasi:filesystem/types@0.2.12';
import { Sha256 } from './sha256.js';
import { invalidInput } from './errors.js';

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

/** Size and hash of a cache file, read in 1 MiB chunks; `undefined` when missing. */
export function hashFile(path: string): { size: bigint; sha256: string } | undefined {
  const file = open(path, false);
  if (file === undefined) return undefined;
  const hash = new Sha256();
  let offset = 0n;
  for (;;) {
    const [chunk, end] = file.read(BigInt(CHUNK), offset);
    hash.update(chunk);
    offset += BigInt(chunk.length);
    if (end || chunk.length === 0) break;
  }
  return { size: offset, sha256: hash.hex() };
}

/** Reads a small cache file as JSON; `undefined` when missing. */
export function readJson<T>(path: string): T | undefined {
  const file = open(path, false);
  if (file === undefined) return undefined;
  try {
    const parts: Uint8Array[] = [];
    let offset = 0n;
    for (;;) {
      const [chunk, end] = file.read(BigInt(CHUNK), offset);
      parts.push(chunk);
      offset += BigInt(chunk.length);
      if (end || chunk.length === 0) break;
    }
    const bytes = new Uint8Array(Number(offset));
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
  cacheDir().renameAt(temporary, cacheDir(), path);
}

/** Removes a cache file; a missing one is fine. */
export function removeFile(path: string): void {
  try {
    cacheDir().unlinkFileAt(path);
  } catch (thrown) {
    if (codeOf(thrown) !== 'no-entry') throw invalidInput(`cannot remove cache file ${path}: ${codeOf(thrown)}`);
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

/** Every regular file under `dir`, as paths relative to `dir`, sorted. */
export function listFiles(dir: string): string[] {
  const out: string[] = [];
  const walk = (relative: string) => {
    const path = relative === '' ? dir : `${dir}/${relative}`;
    let handle: Descriptor;
    try {
      handle = cacheDir().openAt({ symlinkFollow: false }, path, { directory: true }, { read: true });
    } catch {
      return;
    }
    try {
      const entries = handle.readDirectory();
      for (let entry = entries.readDirectoryEntry(); entry; entry = entries.readDirectoryEntry()) {
        const child = relative === '' ? entry.name : `${relative}/${entry.name}`;
        if (entry.type === 'directory') walk(child);
        // Half-written downloads and our own temporary files are not the user's.
        else if (entry.type === 'regular-file' && !entry.name.endsWith('.tmp')) out.push(child);
      }
    } catch {
      // A directory that vanished while it was read has no files.
    }
  };
  walk('');
  return out.sort();
}
