import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FakeTun, packetsOf, type PacketBatch, type TunDevice } from '../src/index.js';

test('FakeTun delivers injected packets in batches of batchSize', () => {
  const tun: FakeTun = new FakeTun({ batchSize: 3 });
  const batches: string[][] = [];
  const dev: TunDevice = tun; // the same interface the kernel device implements
  dev.start((b: PacketBatch) => batches.push(packetsOf(b).map((p) => p.toString())));
  tun.inject(...['a', 'b', 'c', 'd', 'e'].map((s) => Buffer.from(s)));
  assert.deepEqual(batches, [
    ['a', 'b', 'c'],
    ['d', 'e'],
  ]);
  assert.equal(tun.stats().rxPackets, 5);
  assert.equal(tun.stats().rxBatches, 2);
});

test('FakeTun queues while paused and captures writes', () => {
  const tun = new FakeTun();
  const got: string[] = [];
  tun.inject(Buffer.from('early'));
  tun.start((b) => got.push(...packetsOf(b).map((p) => p.toString())));
  assert.deepEqual(got, ['early']);
  tun.pause();
  tun.inject(Buffer.from('later'));
  assert.deepEqual(got, ['early']);
  tun.start((b) => got.push(...packetsOf(b).map((p) => p.toString())));
  assert.deepEqual(got, ['early', 'later']);

  const pkt = Buffer.from('x');
  assert.equal(tun.write(pkt), true);
  pkt[0] = 0x79; // the capture is a copy
  assert.equal(tun.writeBatch([Buffer.from('y'), Buffer.from('z')]), 2);
  assert.deepEqual(
    tun.written.map((p) => p.toString()),
    ['x', 'y', 'z'],
  );
  assert.equal(tun.stats().txPackets, 3);
});

test('FakeTun counts drops and refuses use after close', () => {
  let n = 0;
  const tun = new FakeTun({ dropWrites: () => n++ % 2 === 1 });
  assert.equal(tun.writeBatch([Buffer.from('1'), Buffer.from('2'), Buffer.from('3')]), 2);
  assert.equal(tun.stats().txDrops, 1);
  tun.close();
  assert.throws(
    () => tun.write(Buffer.from('x')),
    (e: any) => e.code === 'PP_ERR_TUN_CLOSED',
  );
});
