// Maps keyed by user-chosen names (file names), as plain JSON objects with
// no prototype: a file named `constructor` or `__proto__` is just a key.

/** A JSON object keyed by arbitrary names. */
export type Dict<T> = Record<string, T>;

/** A dictionary holding `from`'s own entries (none by default). */
export function dict<T>(from?: Dict<T>): Dict<T> {
  return Object.assign(Object.create(null) as Dict<T>, from ?? {});
}
