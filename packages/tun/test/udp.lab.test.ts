// Lab test (root): UDP GSO where the path MTU is below the datagram size.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isRoot, lastJson, runNodeInNetns, withNetns } from './fixtures/netns.js';

test('UDP GSO: a path MTU below the datagram size turns GSO off for that peer and every datagram still arrives (fragmented)', async (t) => {
  if (!isRoot()) {
    console.error('SKIPPED udp.lab.test.ts: needs root (network namespaces)');
    t.skip('needs root: network namespaces');
    return;
  }
  await withNetns((nsA) =>
    withNetns(async (nsB) => {
      const r = await runNodeInNetns(nsA, new URL('./fixtures/udp-gso-mtu.ts', import.meta.url), [nsB], 30_000);
      assert.equal(r.code, 0, `fixture failed: ${r.stderr}`);
      const out = lastJson<any>(r.stdout);
      assert.equal(out.sent, 40);
      assert.deepEqual(out.got, { n: 40, bytes: 40 * 1400 });
      assert.equal(out.stats.txGsoOff, 1, 'GSO was tried once, refused, and turned off for that peer');
      assert.equal(out.stats.gso, true, 'still on for other peers');
      assert.equal(out.stats.txErrors, 0);
    }, 'ppudpb'),
  );
});
