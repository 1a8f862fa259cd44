// createFirewall over the recording fake: idempotence, diffs, failure recovery, serialisation.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createFakeRunner, createFirewall, render, renderUpdate } from '../src/index.js';
import { base, busy, device, oneDevice } from './fixtures.js';

test('first apply rebuilds, the same state again runs nothing, a change sends a diff', async () => {
  const fake = createFakeRunner();
  const fw = createFirewall({ run: fake });
  assert.equal((await fw.apply(oneDevice)).kind, 'full');
  assert.equal((await fw.apply(oneDevice)).kind, 'unchanged');
  assert.equal((await fw.apply(structuredClone(oneDevice))).kind, 'unchanged');
  const next = { ...oneDevice, ports: [...oneDevice.ports, ...device('192.168.255.3', 30003)] };
  const r = await fw.apply(next);
  assert.equal(r.kind, 'update');
  assert.equal(r.lines, 6);
  assert.deepEqual(fake.scripts(), [render(oneDevice), renderUpdate(oneDevice, next)]);
  assert.deepEqual(fake.calls.map((c) => [c.cmd, ...c.args].join(' ')), ['nft -f -', 'nft -f -']);
});

test('a skeleton change is a full rebuild', async () => {
  const fake = createFakeRunner();
  const fw = createFirewall({ run: fake.run });
  await fw.apply(oneDevice);
  assert.equal((await fw.apply({ ...oneDevice, mssClamp: 1300 })).kind, 'full');
});

test('a bad state is refused before anything runs', async () => {
  const fake = createFakeRunner();
  const fw = createFirewall({ run: fake });
  await assert.rejects(fw.apply({ ...base, deviceSubnet: 'nope' }), { code: 'PP_ERR_NETFW_INVALID_CIDR' });
  assert.equal(fake.calls.length, 0);
});

test('after a failed transaction the next apply rebuilds the whole table', async () => {
  const fake = createFakeRunner();
  const fw = createFirewall({ run: fake });
  await fw.apply(oneDevice);
  fake.respond(() => {
    throw new Error('nft: Could not process rule');
  });
  await assert.rejects(fw.apply(busy), /Could not process/);
  assert.equal(fw.current(), undefined);
  fake.respond(() => ({ stdout: '', stderr: '' }));
  assert.equal((await fw.apply(busy)).kind, 'full');
  assert.equal(fake.scripts().at(-1), render(busy));
});

test('applies never interleave; those queued behind a running one are coalesced into one diff', async () => {
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const fake = createFakeRunner(async () => {
    await gate;
    return { stdout: '', stderr: '' };
  });
  const fw = createFirewall({ run: fake });
  const s1 = { ...base, ports: device('192.168.255.2', 30000) };
  const s2 = { ...base, ports: [...s1.ports, ...device('192.168.255.3', 30003)] };
  const s3 = { ...base, ports: device('192.168.255.3', 30003) };
  const p1 = fw.apply(s1);
  while (fake.calls.length === 0) await new Promise((r) => setImmediate(r));
  const rest = [fw.apply(s2), fw.apply(s3), fw.apply(s3)];
  release();
  const results = await Promise.all([p1, ...rest]);
  assert.deepEqual(results.map((r) => [r.kind, r.coalesced]), [['full', 1], ['update', 3], ['update', 3], ['update', 3]]);
  assert.deepEqual(fake.scripts(), [render(s1), renderUpdate(s1, s3)]);
  assert.equal((await fw.apply(s3)).kind, 'unchanged');
});

test('a failed coalesced transaction rejects every caller in it', async () => {
  const fake = createFakeRunner(() => {
    throw new Error('nft: boom');
  });
  const fw = createFirewall({ run: fake });
  const all = [fw.apply(oneDevice), fw.apply(busy)];
  for (const p of all) await assert.rejects(p, /boom/);
  assert.equal(fake.calls.length, 1);
});

test('readCounters, teardown and sysctls go through the runner', async () => {
  const fake = createFakeRunner((c) =>
    c.args[0] === '-j'
      ? { stdout: JSON.stringify({ nftables: [{ counter: { name: 'port_30000', table: 'pocketproxy', packets: 2, bytes: 120 } }] }), stderr: '' }
      : { stdout: '', stderr: '' },
  );
  const fw = createFirewall({ run: fake });
  await fw.apply(oneDevice);
  assert.deepEqual(await fw.readCounters(), new Map([[30000, { packets: 2, bytes: 120 }]]));
  await fw.teardown();
  await fw.applySysctls();
  assert.deepEqual(fake.calls.map((c) => [c.cmd, ...c.args].join(' ')), [
    'nft -f -',
    'nft -j list counters table ip pocketproxy',
    'nft -f -',
    'sysctl -w net.ipv4.ip_forward=1',
  ]);
  assert.equal(fake.calls[2]!.stdin, 'table ip pocketproxy {}\ndelete table ip pocketproxy\n');
  // After teardown the next apply is a full rebuild again.
  assert.equal((await fw.apply(oneDevice)).kind, 'full');
});
