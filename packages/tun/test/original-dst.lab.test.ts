// Lab test (root): SO_ORIGINAL_DST after an nftables REDIRECT, IPv4, IPv6 and v4-mapped.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { requireRoot, runFixture } from './fixtures/netns.js';

test('getOriginalDst returns the pre-REDIRECT destination (in a netns)', async (t) => {
  if (!requireRoot(t, 'original-dst.lab.test.ts', 'network namespace + nftables')) return;
  const out = await runFixture<any>('original-dst.ts', [], 15_000);
  assert.deepEqual(out.dual, [
    { address: '10.254.1.2', port: 9999, family: 'IPv4' },
    { address: 'fd00:254::2', port: 9999, family: 'IPv6' },
  ]);
  assert.deepEqual(out.v4, [
    { address: '10.254.1.3', port: 8888, family: 'IPv4' },
    { address: '127.0.0.1', port: out.v4Port, family: 'IPv4' },
  ]);
});
