// Lab test (root): SO_ORIGINAL_DST after an nftables REDIRECT, IPv4, IPv6 and v4-mapped.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isRoot, lastJson, runNodeInNetns, withNetns } from './fixtures/netns.js';

test('getOriginalDst returns the pre-REDIRECT destination (in a netns)', async (t) => {
  if (!isRoot()) {
    console.error('SKIPPED original-dst.lab.test.ts: needs root (network namespace + nftables)');
    t.skip('needs root: network namespace + nftables');
    return;
  }
  await withNetns(async (ns) => {
    const r = await runNodeInNetns(ns, new URL('./fixtures/original-dst.ts', import.meta.url), [], 15_000);
    assert.equal(r.code, 0, `fixture failed: ${r.stderr}`);
    const out = lastJson<any>(r.stdout);
    assert.deepEqual(out.dual, [
      { address: '10.254.1.2', port: 9999, family: 'IPv4' },
      { address: 'fd00:254::2', port: 9999, family: 'IPv6' },
    ]);
    assert.deepEqual(out.v4, [
      { address: '10.254.1.3', port: 8888, family: 'IPv4' },
      { address: '127.0.0.1', port: out.v4Port, family: 'IPv4' },
    ]);
  });
});
