// The rendered scripts against the real `nft` in a fresh namespace: they load, re-applying
// leaves one copy, element updates land, the kernel's view after diffs equals a fresh full
// render of the same state, counters parse, and other tables are never touched.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createFirewall, createRunner, render, renderUpdate, type FirewallState } from '../src/index.js';
import { busy, device, oneDevice } from './fixtures.js';
import { inNs, needsRoot, withNamespaces } from './lab.js';

const FOREIGN =
  'table inet someone_else {\n\tchain input {\n\t\ttype filter hook input priority filter; policy accept;\n\t\ttcp dport 22 counter accept\n\t}\n}\n';

/** Our table as the kernel lists it, without handles or counter values (they vary). */
async function listOurs(ns: string): Promise<string> {
  const text = await inNs(ns, 'nft', ['list', 'table', 'ip', 'pocketproxy']);
  return text.replace(/packets \d+ bytes \d+/g, 'packets N bytes N');
}

test('scripts load; re-apply keeps one copy; updates equal a fresh render; teardown spares other tables', async (t) => {
  if (!(await needsRoot(t))) return;
  await withNamespaces(['relay'], async ({ relay }) => {
    const ns = relay!;
    const run = createRunner({ netns: ns });
    await run.run('nft', ['-f', '-'], FOREIGN);

    const fw = createFirewall({ run });
    assert.equal((await fw.apply(busy)).kind, 'full');
    const first = await listOurs(ns);
    // A restarted process (new firewall object) rebuilds: still exactly one table, same rules.
    const fw2 = createFirewall({ run });
    assert.equal((await fw2.apply(busy)).kind, 'full');
    assert.equal(await listOurs(ns), first);
    const tables = (await inNs(ns, 'nft', ['list', 'tables'])).trim().split('\n').sort();
    assert.deepEqual(tables, ['table inet someone_else', 'table ip pocketproxy']);
    assert.equal((await fw2.apply(busy)).kind, 'unchanged');

    // Updates: a device joins, another leaves, a port changes protocol and allow-list.
    const steps: FirewallState[] = [
      { ...busy, ports: [...busy.ports, ...device('192.168.255.7', 30010)] },
      { ...busy, ports: [...device('192.168.255.7', 30010)] },
      { ...busy, ports: [...device('192.168.255.8', 30010, { allowFrom: ['100.64.0.0/10'] })] },
      {
        ...busy,
        ports: [
          {
            port: 30011,
            proto: 'both',
            vpnIp: '192.168.255.8',
            targetPort: 1080,
            enabled: true,
            allowFrom: ['100.64.0.0/10', '203.0.113.9'],
          },
        ],
      },
      busy,
    ];
    for (const s of steps) {
      const r = await fw2.apply(s);
      assert.equal(r.kind, 'update');
      const afterDiff = await listOurs(ns);
      // Load the same state from scratch in the same namespace and compare the kernel's listing.
      await run.run('nft', ['-f', '-'], render(s));
      assert.equal(await listOurs(ns), afterDiff, `diff and full render disagree for ${JSON.stringify(s.ports)}`);
    }
    assert.match(
      await inNs(ns, 'nft', ['list', 'map', 'ip', 'pocketproxy', 'tcp_fwd']),
      /30000 : 192\.168\.255\.2 \. 8080/,
    );

    // A map element added, then removed, by element-level transactions only.
    const plus = { ...oneDevice, ports: [...oneDevice.ports, ...device('192.168.255.3', 30003)] };
    await fw2.apply(oneDevice);
    await fw2.apply(plus);
    assert.match(
      await inNs(ns, 'nft', ['list', 'map', 'ip', 'pocketproxy', 'tcp_fwd']),
      /30003 : 192\.168\.255\.3 \. 8080/,
    );
    assert.ok((await fw2.readCounters()).has(30005));
    // Both counters of each port exist, and each counter map names its own direction.
    const listedCounters = await inNs(ns, 'nft', ['list', 'counters', 'table', 'ip', 'pocketproxy']);
    for (const p of [30003, 30004, 30005])
      for (const d of ['in', 'out']) assert.match(listedCounters, new RegExp(`counter port_${p}_${d} `));
    assert.match(
      await inNs(ns, 'nft', ['list', 'map', 'ip', 'pocketproxy', 'port_counters_in']),
      /udp \. 30005 : "port_30005_in"/,
    );
    assert.match(
      await inNs(ns, 'nft', ['list', 'map', 'ip', 'pocketproxy', 'port_counters_out']),
      /udp \. 30005 : "port_30005_out"/,
    );
    await fw2.apply(oneDevice);
    assert.doesNotMatch(await inNs(ns, 'nft', ['list', 'map', 'ip', 'pocketproxy', 'tcp_fwd']), /30003/);
    assert.deepEqual(
      [...(await fw2.readCounters()).entries()],
      [30000, 30001, 30002].map((p) => [p, { in: { packets: 0, bytes: 0 }, out: { packets: 0, bytes: 0 } }]),
    );

    // A diff the kernel refuses (its first half is valid, then it deletes elements that are
    // already gone) changes nothing at all: nft -f is one transaction.
    const before = await listOurs(ns);
    const bad =
      renderUpdate(oneDevice, { ...oneDevice, ports: device('192.168.255.9', 30000) }) + renderUpdate(plus, oneDevice);
    await assert.rejects(run.run('nft', ['-f', '-'], bad), { code: 'PP_ERR_NETFW_COMMAND_FAILED' });
    assert.equal(await listOurs(ns), before);

    await fw2.teardown();
    await fw2.teardown(); // idempotent
    assert.equal((await inNs(ns, 'nft', ['list', 'tables'])).trim(), 'table inet someone_else');
    assert.match(await inNs(ns, 'nft', ['list', 'ruleset']), /tcp dport 22 counter packets 0 bytes 0 accept/);
  });
});

test('a SOCKS5 front: the table loads, its port set follows the enabled SOCKS5 ports by element updates, and turning it off rebuilds', async (t) => {
  if (!(await needsRoot(t))) return;
  await withNamespaces(['relay'], async ({ relay }) => {
    const ns = relay!;
    const run = createRunner({ netns: ns });
    const fw = createFirewall({ run });
    const front = { port: 12346, mark: 0x7050 };
    const withFront: FirewallState = { ...busy, socks5Front: front };
    assert.equal((await fw.apply(withFront)).kind, 'full');
    const listed = await listOurs(ns);
    assert.match(listed, /tcp dport @socks5_front redirect to :12346/);
    assert.match(listed, /ip saddr \. tcp sport @socks5_front_devices socket transparent 1 meta mark set 0x00007050/);
    assert.match(await inNs(ns, 'nft', ['list', 'set', 'ip', 'pocketproxy', 'socks5_front']), /elements = \{ 30001 \}/);
    // A new SOCKS5 port, a disabled one and an HTTP one: only the enabled SOCKS5 port joins the set.
    const more: FirewallState = {
      ...withFront,
      ports: [
        ...busy.ports,
        { port: 30005, proto: 'both', vpnIp: '192.168.255.4', targetPort: 30005, enabled: true },
        { port: 30006, proto: 'both', vpnIp: '192.168.255.4', targetPort: 30006, enabled: false },
        { port: 30007, proto: 'tcp', vpnIp: '192.168.255.4', targetPort: 30007, enabled: true },
      ],
    };
    assert.equal((await fw.apply(more)).kind, 'update');
    const afterDiff = await listOurs(ns);
    await run.run('nft', ['-f', '-'], render(more));
    assert.equal(await listOurs(ns), afterDiff);
    assert.match(
      await inNs(ns, 'nft', ['list', 'set', 'ip', 'pocketproxy', 'socks5_front']),
      /elements = \{ 30001, 30005 \}/,
    );
    assert.equal((await fw.apply(busy)).kind, 'full');
    assert.doesNotMatch(await listOurs(ns), /socks5_front|redirect to :12346|socket transparent/);
  });
});
