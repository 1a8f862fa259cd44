// Lab test (root): UDP GSO where the path MTU is below the datagram size.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { requireRoot, runFixture } from './fixtures/netns.js';

test('UDP GSO: a path MTU below the datagram size turns GSO off for that peer and every datagram still arrives (fragmented)', async (t) => {
  if (!requireRoot(t, 'udp.lab.test.ts', 'network namespaces')) return;
  const out = await runFixture<any>('udp-gso-mtu.ts', [], 30_000, { peerPrefix: 'ppudpb' });
  assert.equal(out.sent, 40);
  assert.deepEqual(out.got, { n: 40, bytes: 40 * 1400 });
  assert.equal(out.stats.txGsoOff, 1, 'GSO was tried once, refused, and turned off for that peer');
  assert.equal(out.stats.gso, true, 'still on for other peers');
  assert.equal(out.stats.txErrors, 0);
});
