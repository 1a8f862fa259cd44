// Lab test (root): the TUN's 'default' seal route (the agent's native seal path) in a throwaway namespace.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { addonAvailable } from '../src/index.js';
import { requireRoot, runFixture } from './fixtures/netns.js';

test("native seal path, 'default' route: every IPv4 packet sealed in C++, an address route wins, IPv6 and the unrouted reach JS", async (t) => {
  if (!requireRoot(t, 'seal-default.lab.test.ts', 'network namespace + /dev/net/tun')) return;
  assert.ok(addonAvailable(), 'addon not built: npm run build -w @pocketproxy/tun');
  const out = await runFixture<any>('tun-seal-default.ts', [], 30_000);
  assert.deepEqual(out.toJs, [
    '10.254.3.2 js-0',
    'v6 js-v6',
    '10.254.3.2 js-after-delete',
    '10.254.3.2 js-after-clear',
  ]);
  const D = 0x01020304;
  const A = 0x0a0b0c0d;
  assert.deepEqual(out.opened, [
    { receiver: D, counter: 0, payload: '10.254.3.2 d-0' },
    { receiver: D, counter: 1, payload: '10.254.3.2 d-1' },
    { receiver: D, counter: 2, payload: '10.254.3.5 d-2' },
    { receiver: A, counter: 100, payload: '10.254.3.3 addr-0' },
    { receiver: D, counter: 3, payload: '10.254.3.4 d-3' },
    { receiver: A, counter: 101, payload: '10.254.3.3 addr-1' },
  ]);
  assert.equal(out.routesWithDefault, 1);
  assert.equal(out.deletedDefault, true);
  assert.equal(out.deletedAgain, false);
  assert.equal(out.routesAfterClear, 0);
  assert.equal(out.counter, 4);
  assert.equal(out.otherCounter, 102);
  assert.deepEqual(out.stats, { sealNative: 6, sealUnsent: 0, sealErrors: 0 });
});
