// renderUpdate: element-level transactions, checked as text and, with fast-check, by replaying
// them on a model of the table and comparing with the table rendered for the new state.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  collectionsOf,
  render,
  renderUpdate,
  validateState,
  type FirewallState,
  type PortForward,
} from '../src/index.js';
import { base, busy, device, fleet, oneDevice } from './fixtures.js';

test('same state renders an empty update', () => {
  assert.equal(renderUpdate(oneDevice, oneDevice), '');
  assert.equal(renderUpdate(busy, { ...busy, ports: [...busy.ports].reverse() }), '');
});

test('a device connecting adds its map elements and both counters of each port, in one script', () => {
  const next = { ...oneDevice, ports: [...oneDevice.ports, ...device('192.168.255.3', 30003)] };
  assert.equal(
    renderUpdate(oneDevice, next),
    [
      'add counter ip pocketproxy port_30003_in',
      'add counter ip pocketproxy port_30003_out',
      'add counter ip pocketproxy port_30004_in',
      'add counter ip pocketproxy port_30004_out',
      'add counter ip pocketproxy port_30005_in',
      'add counter ip pocketproxy port_30005_out',
      'add element ip pocketproxy tcp_fwd { 30003 : 192.168.255.3 . 8080, 30004 : 192.168.255.3 . 1080 }',
      'add element ip pocketproxy udp_fwd { 30005 : 192.168.255.3 . 1081 }',
      'add element ip pocketproxy port_counters_in { tcp . 30003 : "port_30003_in", tcp . 30004 : "port_30004_in", udp . 30005 : "port_30005_in" }',
      'add element ip pocketproxy port_counters_out { tcp . 30003 : "port_30003_out", tcp . 30004 : "port_30004_out", udp . 30005 : "port_30005_out" }',
      'add element ip pocketproxy forwarded_ports { tcp . 30003, tcp . 30004, udp . 30005 }',
      '',
    ].join('\n'),
  );
});

test('a device leaving deletes elements of both counter maps before both counters', () => {
  assert.equal(
    renderUpdate(oneDevice, base),
    [
      'delete element ip pocketproxy tcp_fwd { 30000, 30001 }',
      'delete element ip pocketproxy udp_fwd { 30002 }',
      'delete element ip pocketproxy port_counters_in { tcp . 30000, tcp . 30001, udp . 30002 }',
      'delete element ip pocketproxy port_counters_out { tcp . 30000, tcp . 30001, udp . 30002 }',
      'delete element ip pocketproxy forwarded_ports { tcp . 30000, tcp . 30001, udp . 30002 }',
      'delete counter ip pocketproxy port_30000_in',
      'delete counter ip pocketproxy port_30000_out',
      'delete counter ip pocketproxy port_30001_in',
      'delete counter ip pocketproxy port_30001_out',
      'delete counter ip pocketproxy port_30002_in',
      'delete counter ip pocketproxy port_30002_out',
      '',
    ].join('\n'),
  );
});

test('a port switching tcp -> both gains elements in both counter maps and keeps its counters', () => {
  const ports = oneDevice.ports.map((p) => (p.port === 30000 ? { ...p, proto: 'both' as const } : p));
  assert.equal(
    renderUpdate(oneDevice, { ...oneDevice, ports }),
    [
      'add element ip pocketproxy udp_fwd { 30000 : 192.168.255.2 . 8080 }',
      'add element ip pocketproxy port_counters_in { udp . 30000 : "port_30000_in" }',
      'add element ip pocketproxy port_counters_out { udp . 30000 : "port_30000_out" }',
      'add element ip pocketproxy forwarded_ports { udp . 30000 }',
      '',
    ].join('\n'),
  );
});

test('a device reconnecting with a new address replaces map values and keeps counters', () => {
  const next = { ...oneDevice, ports: device('192.168.255.9', 30000) };
  assert.equal(
    renderUpdate(oneDevice, next),
    [
      'delete element ip pocketproxy tcp_fwd { 30000, 30001 }',
      'delete element ip pocketproxy udp_fwd { 30002 }',
      'add element ip pocketproxy tcp_fwd { 30000 : 192.168.255.9 . 8080, 30001 : 192.168.255.9 . 1080 }',
      'add element ip pocketproxy udp_fwd { 30002 : 192.168.255.9 . 1081 }',
      '',
    ].join('\n'),
  );
});

test('disabling a port moves it from the map to disabled_ports; allow-list edits touch allowed_sources', () => {
  const ports = oneDevice.ports.map((p) =>
    p.port === 30000 ? { ...p, enabled: false } : p.port === 30001 ? { ...p, allowFrom: ['198.51.100.0/24'] } : p,
  );
  assert.equal(
    renderUpdate(oneDevice, { ...oneDevice, ports }),
    [
      'delete element ip pocketproxy tcp_fwd { 30000 }',
      'add element ip pocketproxy disabled_ports { tcp . 30000 }',
      'add element ip pocketproxy restricted_ports { tcp . 30001 }',
      'add element ip pocketproxy allowed_sources { tcp . 30001 . 198.51.100.0/24 }',
      '',
    ].join('\n'),
  );
});

test('a change outside the port list falls back to a full render', () => {
  const next = { ...oneDevice, mssClamp: 1300 };
  assert.equal(renderUpdate(oneDevice, next), render(next));
});

test('one device among 5,000 changes: a few lines, not a rebuild', () => {
  const big = fleet(5000);
  const t0 = performance.now();
  const next = { ...big, ports: big.ports.map((p) => (p.port === 20000 ? { ...p, targetPort: 8081 } : p)) };
  const script = renderUpdate(big, next);
  const ms = performance.now() - t0;
  assert.equal(
    script,
    'delete element ip pocketproxy tcp_fwd { 20000 }\nadd element ip pocketproxy tcp_fwd { 20000 : 10.200.0.2 . 8081 }\n',
  );
  console.error(`renderUpdate over 15,000 ports (single change): ${ms.toFixed(1)} ms`);
});

// --- property: replaying the update on the old table gives the new table -------------------

type Model = Map<string, Map<string, string | undefined>>;
const COUNTER_MAPS = ['port_counters_in', 'port_counters_out'] as const;

function modelOf(s: FirewallState): Model {
  const c = collectionsOf(validateState(s));
  return new Map(Object.entries(c).map(([k, v]) => [k, new Map(v)]));
}

function replay(m: Model, script: string): void {
  for (const line of script.split('\n').filter(Boolean)) {
    const el = /^(add|delete) element ip pocketproxy (\w+) \{ (.*) \}$/.exec(line);
    const ctr = /^(add|delete) counter ip pocketproxy (\w+)$/.exec(line);
    if (el) {
      const set = m.get(el[2]!)!;
      for (const e of el[3]!.split(', ')) {
        const [k, v] = e.split(' : ') as [string, string | undefined];
        if (el[1] === 'delete') assert.ok(set.delete(k), `delete of absent ${k} in ${el[2]}`);
        else {
          assert.ok(!set.has(k), `add of present ${k} in ${el[2]}`);
          set.set(k, v);
        }
      }
    } else if (ctr) {
      const counters = m.get('counters')!;
      if (ctr[1] === 'delete') {
        // The kernel refuses to delete a counter still named by a map element.
        for (const map of COUNTER_MAPS)
          assert.ok(![...m.get(map)!.values()].includes(`"${ctr[2]}"`), `counter ${ctr[2]} still referenced by ${map}`);
        assert.ok(counters.delete(ctr[2]!));
      } else counters.set(ctr[2]!, undefined);
    } else assert.fail(`unexpected line: ${line}`);
  }
  // And no element may name a counter that does not exist at the end of the batch.
  for (const map of COUNTER_MAPS)
    for (const v of m.get(map)!.values())
      assert.ok(m.get('counters')!.has(v!.slice(1, -1)), `${map} names missing ${v}`);
  // Each port has both directions or neither, and each map names only its own direction.
  for (const [k, v] of m.get('port_counters_in')!)
    assert.equal(m.get('port_counters_out')!.get(k), v!.replace(/_in"$/, '_out"'));
  assert.equal(m.get('port_counters_in')!.size, m.get('port_counters_out')!.size);
}

const portArb = fc.record({
  port: fc.integer({ min: 30000, max: 30015 }),
  proto: fc.constantFrom('tcp' as const, 'udp' as const, 'both' as const),
  vpnIp: fc.constantFrom('192.168.255.2', '192.168.255.3'),
  targetPort: fc.constantFrom(8080, 1080),
  enabled: fc.boolean(),
  allowFrom: fc.option(fc.subarray(['10.0.0.0/8', '203.0.113.7', '198.51.100.0/24']), { nil: undefined }),
  viaFront: fc.boolean(),
});
const stateArb = fc.uniqueArray(portArb, { selector: (p) => p.port, maxLength: 8 }).map(
  (ports): FirewallState => ({
    ...base,
    ports: ports.map((p) => (p.allowFrom === undefined ? (({ allowFrom: _a, ...rest }) => rest)(p) : p) as PortForward),
  }),
);

test('property: prev + renderUpdate(prev, next) == next, element for element', () => {
  fc.assert(
    fc.property(stateArb, stateArb, (a, b) => {
      const m = modelOf(a);
      replay(m, renderUpdate(a, b));
      assert.deepEqual(m, modelOf(b));
    }),
    { numRuns: 500 },
  );
});

test("property, with a front taking HTTP ports per device ('auto'): the same, its two sets included", () => {
  const front = { port: 12346, mark: 1, http: 'auto' as const };
  fc.assert(
    fc.property(stateArb, stateArb, (a, b) => {
      const [fa, fb] = [
        { ...a, socks5Front: front },
        { ...b, socks5Front: front },
      ];
      const m = modelOf(fa);
      replay(m, renderUpdate(fa, fb));
      assert.deepEqual(m, modelOf(fb));
    }),
    { numRuns: 300 },
  );
});

test('a SOCKS5 front: its set changes by elements; turning it on or off is a full render', () => {
  const on = { ...oneDevice, socks5Front: { port: 12346, mark: 1 } };
  const plus = {
    ...on,
    ports: [
      ...on.ports,
      { port: 30009, proto: 'both' as const, vpnIp: '192.168.255.2', targetPort: 30009, enabled: true },
    ],
  };
  assert.match(renderUpdate(on, plus), /add element ip pocketproxy socks5_front \{ 30009 \}/);
  assert.match(renderUpdate(plus, on), /delete element ip pocketproxy socks5_front \{ 30009 \}/);
  assert.equal(renderUpdate(oneDevice, on), render(on));
  assert.equal(renderUpdate(on, oneDevice), render(oneDevice));
});

test("'auto': a port moving to the front and back is one element of socks5_front; its device's answers stay in socks5_front_devices", () => {
  const near = {
    ...oneDevice,
    socks5Front: { port: 12346, mark: 1, http: 'auto' as const },
    ports: [{ port: 30010, proto: 'tcp' as const, vpnIp: '192.168.255.2', targetPort: 30010, enabled: true }],
  };
  const far = { ...near, ports: [{ ...near.ports[0]!, viaFront: true }] };
  const toFar = renderUpdate(near, far);
  assert.match(toFar, /add element ip pocketproxy socks5_front \{ 30010 \}/);
  assert.doesNotMatch(toFar, /socks5_front_devices|flush|delete table/);
  const toNear = renderUpdate(far, near);
  assert.match(toNear, /delete element ip pocketproxy socks5_front \{ 30010 \}/);
  assert.doesNotMatch(toNear, /socks5_front_devices|flush|delete table/);
});
