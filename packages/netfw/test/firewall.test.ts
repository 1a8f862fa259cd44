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
  // 6 counters (in + out for 3 ports), tcp_fwd, udp_fwd, port_counters_in, port_counters_out, forwarded_ports.
  assert.equal(r.lines, 11);
  assert.deepEqual(fake.scripts(), [render(oneDevice), renderUpdate(oneDevice, next)]);
  assert.deepEqual(
    fake.calls.map((c) => [c.cmd, ...c.args].join(' ')),
    ['nft -f -', 'nft -f -'],
  );
});

test('adding and removing a port creates and deletes both of its counters in ONE nft transaction', async () => {
  const fake = createFakeRunner();
  const fw = createFirewall({ run: fake });
  const one = {
    ...base,
    ports: [{ port: 30000, proto: 'tcp' as const, vpnIp: '192.168.255.2', targetPort: 8080, enabled: true }],
  };
  await fw.apply(base);
  assert.equal((await fw.apply(one)).kind, 'update');
  assert.equal((await fw.apply(base)).kind, 'update');
  assert.equal(fake.calls.length, 3, 'one nft -f per apply');
  const [, added, removed] = fake.scripts();
  assert.equal(
    added,
    [
      'add counter ip pocketproxy port_30000_in',
      'add counter ip pocketproxy port_30000_out',
      'add element ip pocketproxy tcp_fwd { 30000 : 192.168.255.2 . 8080 }',
      'add element ip pocketproxy port_counters_in { tcp . 30000 : "port_30000_in" }',
      'add element ip pocketproxy port_counters_out { tcp . 30000 : "port_30000_out" }',
      'add element ip pocketproxy forwarded_ports { tcp . 30000 }',
      '',
    ].join('\n'),
  );
  assert.equal(
    removed,
    [
      'delete element ip pocketproxy tcp_fwd { 30000 }',
      'delete element ip pocketproxy port_counters_in { tcp . 30000 }',
      'delete element ip pocketproxy port_counters_out { tcp . 30000 }',
      'delete element ip pocketproxy forwarded_ports { tcp . 30000 }',
      'delete counter ip pocketproxy port_30000_in',
      'delete counter ip pocketproxy port_30000_out',
      '',
    ].join('\n'),
  );
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
  assert.deepEqual(
    results.map((r) => [r.kind, r.coalesced]),
    [
      ['full', 1],
      ['update', 3],
      ['update', 3],
      ['update', 3],
    ],
  );
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
      ? {
          stdout: JSON.stringify({
            nftables: [
              { counter: { name: 'port_30000_in', table: 'pocketproxy', packets: 2, bytes: 120 } },
              { counter: { name: 'port_30000_out', table: 'pocketproxy', packets: 3, bytes: 4000 } },
            ],
          }),
          stderr: '',
        }
      : { stdout: '', stderr: '' },
  );
  const fw = createFirewall({ run: fake });
  await fw.apply(oneDevice);
  assert.deepEqual(
    await fw.readCounters(),
    new Map([[30000, { in: { packets: 2, bytes: 120 }, out: { packets: 3, bytes: 4000 } }]]),
  );
  await fw.teardown();
  await fw.applySysctls();
  assert.deepEqual(
    fake.calls.map((c) => [c.cmd, ...c.args].join(' ')),
    ['nft -f -', 'nft -j list counters table ip pocketproxy', 'nft -f -', 'sysctl -w net.ipv4.ip_forward=1'],
  );
  assert.equal(fake.calls[2]!.stdin, 'table ip pocketproxy {}\ndelete table ip pocketproxy\n');
  // After teardown the next apply is a full rebuild again.
  assert.equal((await fw.apply(oneDevice)).kind, 'full');
});
