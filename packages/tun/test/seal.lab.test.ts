// Lab test (root): the TUN's native seal path (KernelTun.sealPath) in a throwaway namespace.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { addonAvailable } from '../src/index.js';
import { requireRoot, runFixture } from './fixtures/netns.js';

test('native seal path: routed destinations are sealed in C++ from the shared counter, in order; everything else reaches JS', async (t) => {
  if (!requireRoot(t, 'seal.lab.test.ts', 'network namespace + /dev/net/tun')) return;
  assert.ok(addonAvailable(), 'addon not built: npm run build -w @pocketproxy/tun');
  const out = await runFixture<any>('tun-seal.ts', [], 30_000);
  // Before the route, for another address, and at the limit / expired / deleted / destroyed key: JS.
  assert.deepEqual(out.toJs, [
    '10.254.1.2 js-0',
    '10.254.1.3 js-other',
    '10.254.1.2 js-limit',
    '10.254.1.2 js-expired',
    '10.254.1.2 js-deleted',
    '10.254.1.2 js-destroyed',
  ]);
  // Sealed natively: transport frames (type 4, version 1) with the route's receiver index, counters
  // taken from the cell in order (5..14), then after the one JS took (15) the next is 16: none twice.
  const want = [
    ...Array.from({ length: 10 }, (_, i) => ({ counter: 5 + i, payload: `10.254.1.2 native-${i}` })),
    { counter: 16, payload: '10.254.1.2 native-after-js' },
  ];
  assert.deepEqual(
    out.opened.map((f: any) => ({ counter: f.counter, payload: f.payload })),
    want,
  );
  for (const f of out.opened) assert.deepEqual([f.type, f.version, f.receiver], [4, 1, 0xabcd1234]);
  assert.equal(out.cellAfter, 15);
  assert.equal(out.jsCounter, 15);
  assert.equal(out.finalCell, 17, 'the limit check used no counter');
  assert.equal(out.deleted, true);
  assert.equal(out.wrote, true);
  assert.deepEqual(out.stats, { sealNative: 11, sealUnsent: 0, sealErrors: 0, sealRoutes: 1 });
});

test('native seal path, lanes: a route per lane slot, each flow by the slot its hash picks (the same hash as JS), ICMP by slot 0; a slot deleted alone; a new count replaces the routes', async (t) => {
  if (!requireRoot(t, 'seal.lab.test.ts', 'network namespace + /dev/net/tun')) return;
  assert.ok(addonAvailable(), 'addon not built: npm run build -w @pocketproxy/tun');
  const out = await runFixture<any>('tun-seal-lanes.ts', [], 30_000);
  const frames = [...out.byLane[0], ...out.byLane[1]];
  assert.equal(frames.length, 16, 'every flow sealed natively');
  for (const f of frames) {
    assert.equal(f.lane, f.want, `flow from port ${f.sport}`);
    assert.equal(f.receiver, f.lane === 0 ? 0x1000 : 0x1001);
  }
  assert.ok(out.byLane[0].length > 0 && out.byLane[1].length > 0, 'both lanes used');
  assert.equal(out.statsBoth, 2);
  assert.deepEqual(out.icmp, [{ lane: 0, receiver: 0x3000, proto: 1 }], 'ICMP by slot 0 (lane 0)');
  assert.equal(out.deletedOne, true);
  assert.equal(out.afterDelete.lane0, out.byLane[0].length, "slot 0's flows still sealed");
  assert.equal(out.afterDelete.js, out.byLane[1].length, "slot 1's flows reach JS");
  assert.equal(out.afterDelete.lastJsLane, 1);
  assert.equal(out.statsRecount, 1);
  assert.equal(out.deletedAll, true);
  assert.equal(out.statsEnd, 0);
});
