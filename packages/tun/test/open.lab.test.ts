// Lab test (root): the UDP socket's native open path (BatchUdpSocket.openPath) in a throwaway namespace.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { addonAvailable } from '../src/index.js';
import { requireRoot, runFixture } from './fixtures/netns.js';

test('native open path: routed frames are opened in C++ on the shared replay window and written to the TUN; everything else reaches JS untouched', async (t) => {
  if (!requireRoot(t, 'open.lab.test.ts', 'network namespace + /dev/net/tun')) return;
  assert.ok(addonAvailable(), 'addon not built: npm run build -w @pocketproxy/tun');
  const out = await runFixture<any>('tun-open.ts', [], 40_000);
  // Written to the TUN and delivered by the kernel, in order (the GSO/GRO burst included).
  assert.deepEqual(out.delivered, [
    ...Array.from({ length: 8 }, (_, i) => `native-${String(i).padStart(2, '0')}`),
    'native-after-js',
    'native-m1',
    'native-m3',
    'native-any-src',
  ]);
  // Reached JS with the original bytes (JS could still open each with the session key).
  assert.deepEqual(out.toJs, [
    'c0 js-no-route',
    'c4 js-replay',
    'c9 keepalive',
    'c10 message {"type":"ping"}',
    'c11 js-spoofed',
    'c12 bad-tag',
    'c13 js-other-source',
    'c14 js-other-index',
    'c15 js-marked-by-js',
    'c18 js-m2',
    'c20 js-limit',
    'c21 js-expired',
    'c22 js-deleted',
    'c23 js-destroyed',
  ]);
  // The session's own memory: highest counter 8, 8 frames, stamped now; at the end 24 and 12.
  assert.deepEqual(out.cellAfterNative, [8, 8, true]);
  assert.deepEqual(out.finalCell, [24, 12]);
  assert.equal(out.deleted, true);
  assert.deepEqual(out.stats, { openNative: 12, openRoutes: 1 });
});

test('native open path, fuzzed: a datagram reaches the TUN exactly when it is an unmodified valid frame from the device with a fresh counter and the right IPv4 source; every other one reaches JS byte for byte', async (t) => {
  if (!requireRoot(t, 'open.lab.test.ts', 'network namespace + /dev/net/tun')) return;
  assert.ok(addonAvailable(), 'addon not built: npm run build -w @pocketproxy/tun');
  const out = await runFixture<any>('tun-open-fuzz.ts', [], 120_000);
  assert.deepEqual(out.failures, []);
  assert.equal(out.runs, 60);
  assert.ok(out.nativeExpected > 20, `the runs exercised the native path (${out.nativeExpected})`);
  assert.equal(out.openNative, out.nativeExpected);
  assert.equal(out.received, out.nativeExpected);
});
