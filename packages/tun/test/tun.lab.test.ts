// Lab test (root): a real TUN in a throwaway network namespace, read and written through the addon.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { addonAvailable } from '../src/index.js';
import { requireRoot, runFixture } from './fixtures/netns.js';

test('TUN: kernel -> read batch, write -> socket, multi-queue incl. a worker thread (in a netns)', async (t) => {
  if (!requireRoot(t, 'tun.lab.test.ts', 'network namespace + /dev/net/tun')) return;
  assert.ok(addonAvailable(), 'addon not built: npm run build -w @pocketproxy/tun');
  const out = await runFixture<any>('tun-roundtrip.ts', [], 30_000);
  assert.match(out.name, /^pptun\d+$/);
  assert.equal(out.seen.length, 20);
  for (const [i, s] of out.seen.entries()) {
    assert.deepEqual(s, {
      src: '10.254.0.1',
      dst: '10.254.0.2',
      srcPort: 4000,
      dstPort: 5000,
      payload: `hello-${i}`,
      ipOk: true,
      udpOk: true,
    });
  }
  // 20 datagrams sent back to back arrive in fewer callbacks than packets when the loop lags.
  assert.ok(out.batches >= 1 && out.batches <= 40);
  assert.equal(out.wroteOne, true);
  assert.equal(out.wroteMany, 10);
  assert.equal(out.garbage, false);
  assert.deepEqual(out.got[0], { payload: 'world', address: '10.254.0.2', port: 7000 });
  assert.deepEqual(
    out.got.slice(1).map((g: any) => g.payload),
    Array.from({ length: 10 }, (_, i) => `batch-${i}`),
  );
  assert.deepEqual(out.mq, ['ppmq0', 'ppmq0']);
  assert.equal(out.fromWorker, 'ppmq0');
  assert.equal(out.workerExit, 0);
  assert.equal(out.stats.txPackets, 11);
  assert.equal(out.stats.txErrors, 1);
  assert.ok(out.stats.rxPackets >= 20);
});

test('TUN offloads: a TCP stream between two namespaces through our TSO cutting and GRO gluing arrives intact', async (t) => {
  if (!requireRoot(t, 'tun.lab.test.ts offloads', 'network namespaces + /dev/net/tun')) return;
  const out = await runFixture<any>('tun-offload.ts', ['offload', '48'], 40_000, { peerPrefix: 'pptunb' });
  assert.deepEqual(out.offload, { vnetHdr: true, checksum: true, tso: true });
  assert.equal(out.bytes, 48 * 1024 * 1024);
  assert.equal(out.hashOk, true, 'every byte arrived, in order');
  // The kernel handed A super-packets (TSO) and we wrote glued segments into B (GRO).
  assert.ok(out.a.rxGso > 0, `A read no TSO super-packets: ${JSON.stringify(out.a)}`);
  assert.ok(out.b.txGso > 0, `nothing was glued into B: ${JSON.stringify(out.b)}`);
  assert.ok(out.b.txWrites < out.b.txPackets, 'fewer writes than packets');
  assert.equal(out.a.rxBadGso + out.b.rxBadGso, 0);
  assert.equal(out.b.txErrors + out.a.txErrors, 0);
  console.error(
    `offload stream: ${out.mbit} Mbit/s, A read ${out.a.rxGso} super-packets, B got ${out.b.txPackets} packets in ${out.b.txWrites} writes`,
  );
});

test('ACK thinning on a real TUN: ACKs the kernel queued together come out of one read as the newest alone, and a bare ACK with data behind it as the data alone', async (t) => {
  if (!requireRoot(t, 'tun.lab.test.ts', 'network namespace + /dev/net/tun')) return;
  const on = await runFixture<any>('tun-ack-thinning.ts', ['on'], 30_000);
  const off = await runFixture<any>('tun-ack-thinning.ts', ['off'], 30_000);
  for (const r of [on, off])
    assert.equal(r.received, 1204, 'every data segment reached the listener (1,200 bytes, then 4)');
  // Without thinning the one read holds an ACK per segment (quick-ACK mode), the last for all 1,200 bytes.
  assert.ok(off.firstRead.length >= 3, `ACKs queued together without thinning: ${off.firstRead}`);
  assert.equal(off.firstRead.at(-1), 1200);
  assert.equal(off.acksThinned, 0);
  // With it: one ACK, for everything; the others counted.
  assert.deepEqual(on.firstRead, [1200]);
  assert.equal(on.acksThinned, off.firstRead.length - 1);
  // A bare ACK with the listener's answer behind it, acknowledging as much: without thinning both come out
  // of the next read, with it the answer alone.
  assert.deepEqual(off.nextRead, [
    [1204, 0],
    [1204, 4],
  ]);
  assert.equal(off.acksThinnedNext, 0);
  assert.deepEqual(on.nextRead, [[1204, 4]]);
  assert.equal(on.acksThinnedNext, 1);
});
