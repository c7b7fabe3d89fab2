// The extension's SHA-256 against Node's, at the lengths where padding
// changes shape and across chunk boundaries. Run by `npm test` after
// `npm run build` (it tests the compiled build/js/sha256.js).

import { createHash } from 'node:crypto';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Sha256 } from '../build/js/sha256.js';

test('sha256 matches node:crypto', () => {
  for (const length of [0, 1, 55, 56, 63, 64, 65, 119, 120, 1000, 70000]) {
    const data = new Uint8Array(length).map((_, i) => (i * 7) % 251);
    const split = length >> 1;
    const ours = new Sha256().update(data.subarray(0, split)).update(data.subarray(split)).hex();
    assert.equal(ours, createHash('sha256').update(data).digest('hex'), `length ${length}`);
  }
});
