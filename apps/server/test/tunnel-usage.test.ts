// UsageMeter: nft counter readings (per port, per direction) -> usage deltas for the API.
// bytes_in = customer -> target (conntrack ORIGINAL, counter port_<n>_in),
// bytes_out = back to the customer (REPLY, counter port_<n>_out).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { PortCounter } from '@pocketproxy/netfw';
import { UsageMeter } from '../src/tunnel/usage.js';

const reading = (entries: Record<number, [number, number]>): Map<number, PortCounter> =>
  new Map(
    Object.entries(entries).map(([p, [i, o]]) => [
      Number(p),
      { in: { packets: 1, bytes: i }, out: { packets: 1, bytes: o } },
    ]),
  );

function report(m: UsageMeter, counters: Map<number, PortCounter>, ports: number[]) {
  const r = m.deltas(counters, ports);
  r.commit();
  return r.samples;
}

test('in and out are reported separately, as deltas, each against its own baseline', () => {
  const m = new UsageMeter();
  assert.deepEqual(report(m, reading({ 30000: [100, 5000] }), [30000]), [
    { port: 30000, bytes_in: 100, bytes_out: 5000 },
  ]);
  assert.deepEqual(report(m, reading({ 30000: [150, 5000] }), [30000]), [{ port: 30000, bytes_in: 50, bytes_out: 0 }]);
  assert.deepEqual(report(m, reading({ 30000: [150, 9000] }), [30000]), [
    { port: 30000, bytes_in: 0, bytes_out: 4000 },
  ]);
  assert.deepEqual(report(m, reading({ 30000: [150, 9000] }), [30000]), [], 'no change, no sample');
});

test('a smaller reading in one direction is a restart of that counter, counted from zero', () => {
  const m = new UsageMeter();
  report(m, reading({ 30000: [1000, 2000] }), [30000]);
  // in restarted (40 < 1000), out grew normally.
  assert.deepEqual(report(m, reading({ 30000: [40, 2500] }), [30000]), [{ port: 30000, bytes_in: 40, bytes_out: 500 }]);
  // out restarted.
  assert.deepEqual(report(m, reading({ 30000: [60, 7] }), [30000]), [{ port: 30000, bytes_in: 20, bytes_out: 7 }]);
});

test('reset() (table rebuilt) forgets both baselines', () => {
  const m = new UsageMeter();
  report(m, reading({ 30000: [1000, 2000] }), [30000]);
  m.reset();
  // Readings above the old baseline still count in full after a rebuild.
  assert.deepEqual(report(m, reading({ 30000: [1500, 2500] }), [30000]), [
    { port: 30000, bytes_in: 1500, bytes_out: 2500 },
  ]);
});

test('a failed report is carried into the next one (no commit = baseline kept)', () => {
  const m = new UsageMeter();
  report(m, reading({ 30000: [100, 200] }), [30000]);
  const failed = m.deltas(reading({ 30000: [300, 900] }), [30000]);
  assert.deepEqual(failed.samples, [{ port: 30000, bytes_in: 200, bytes_out: 700 }]);
  // not committed: the API refused it
  assert.deepEqual(report(m, reading({ 30000: [350, 1000] }), [30000]), [
    { port: 30000, bytes_in: 250, bytes_out: 800 },
  ]);
});

test('a reset between reading and commit wins: the stale commit does not restore a baseline', () => {
  const m = new UsageMeter();
  const r = m.deltas(reading({ 30000: [100, 200] }), [30000]);
  m.reset();
  r.commit();
  assert.deepEqual(report(m, reading({ 30000: [10, 20] }), [30000]), [{ port: 30000, bytes_in: 10, bytes_out: 20 }]);
});

test('only the asked ports, each once; ports without counters are skipped', () => {
  const m = new UsageMeter();
  const counters = reading({ 30000: [1, 2], 30001: [3, 4], 30002: [0, 0] });
  assert.deepEqual(report(m, counters, [30001, 30001, 30002, 39999]), [{ port: 30001, bytes_in: 3, bytes_out: 4 }]);
  // 30000 was not asked for, so its baseline is still zero.
  assert.deepEqual(report(m, counters, [30000, 30001]), [{ port: 30000, bytes_in: 1, bytes_out: 2 }]);
});
