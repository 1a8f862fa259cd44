// A real DNAT through the real kernel: client -> relay:PORT -> (our table) -> pp0 veth -> "device".
//
//   [client 198.51.100.2,.3] --c0/r0-- [relay 198.51.100.1 | pp0 192.168.255.1] --pp0/d0-- [device 192.168.255.2 :8080/tcp :1081/udp]
//
// The relay runs createFirewall with a runner bound to its namespace (exactly the app's code path).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createFirewall, createRunner, type FirewallState } from '../src/index.js';
import { DEVICE_SERVER, inNs, link, needsRoot, startIn, tcpTry, udpTry, withNamespaces } from './lab.js';

const RELAY = '198.51.100.1';
const A = '198.51.100.2';
const B = '198.51.100.3';

function stateWith(overrides: Record<number, object> = {}): FirewallState {
  const ports = [
    { port: 30000, proto: 'tcp' as const, vpnIp: '192.168.255.2', targetPort: 8080, enabled: true },
    { port: 30001, proto: 'tcp' as const, vpnIp: '192.168.255.2', targetPort: 8080, enabled: true, allowFrom: [B] },
    { port: 30002, proto: 'tcp' as const, vpnIp: '192.168.255.2', targetPort: 8080, enabled: false },
    { port: 30003, proto: 'udp' as const, vpnIp: '192.168.255.2', targetPort: 1081, enabled: true },
  ].map((p) => ({ ...p, ...(overrides[p.port] ?? {}) }));
  return { tunnelInterface: 'pp0', deviceSubnet: '192.168.255.0/24', tunnelAddress: '192.168.255.1', mssClamp: 'pmtu', ports };
}

test('DNAT through maps reaches the device; allow-list, disabled port and counters work', async (t) => {
  if (!(await needsRoot(t))) return;
  await withNamespaces(['client', 'relay', 'device'], async (ns) => {
    const [client, relay, dev] = [ns.client!, ns.relay!, ns.device!];
    await link({ ns: client, ifname: 'c0', addr: `${A}/24` }, { ns: relay, ifname: 'r0', addr: `${RELAY}/24` });
    await inNs(client, 'ip', ['addr', 'add', `${B}/24`, 'dev', 'c0']);
    await link({ ns: relay, ifname: 'pp0', addr: '192.168.255.1/24' }, { ns: dev, ifname: 'd0', addr: '192.168.255.2/24' });
    const server = await startIn(dev, DEVICE_SERVER);
    try {
      const fw = createFirewall({ run: createRunner({ netns: relay }) });
      await fw.applySysctls();
      assert.equal((await inNs(relay, 'sysctl', ['-n', 'net.ipv4.ip_forward'])).trim(), '1');

      // Baseline: without our table the relay itself refuses the port.
      assert.equal(await tcpTry(client, RELAY, 30000, A), 'REFUSED');

      assert.equal((await fw.apply(stateWith())).kind, 'full');
      // The device sees the relay's tunnel address (SNAT), so it answers through the tunnel.
      assert.equal(await tcpTry(client, RELAY, 30000, A), 'device-ok 192.168.255.1');
      assert.equal(await udpTry(client, RELAY, 30003, A), 'echo ping');

      const c1 = await fw.readCounters();
      assert.ok(c1.get(30000)!.packets >= 6, `tcp counter ${JSON.stringify(c1.get(30000))}`);
      assert.ok(c1.get(30000)!.bytes > 300);
      assert.deepEqual(c1.get(30003), { packets: 2, bytes: 2 * 28 + 4 + 9 }); // ping out, echo back (IP+UDP+payload)
      console.error('counters after one TCP exchange and one UDP echo:', Object.fromEntries(c1));

      // Allow-list: only B may use 30001. Disabled 30002 drops (no RST, no forward).
      assert.equal(await tcpTry(client, RELAY, 30001, A), 'TIMEOUT');
      assert.equal(await tcpTry(client, RELAY, 30001, B), 'device-ok 192.168.255.1');
      assert.equal(await tcpTry(client, RELAY, 30002, A), 'TIMEOUT');
      assert.deepEqual((await fw.readCounters()).get(30002), { packets: 0, bytes: 0 });

      // Element-level updates: disable 30000, open 30001 to A, enable 30002.
      const next = stateWith({ 30000: { enabled: false }, 30001: { allowFrom: [A, B] }, 30002: { enabled: true } });
      const r = await fw.apply(next);
      assert.equal(r.kind, 'update');
      assert.equal(await tcpTry(client, RELAY, 30000, A), 'TIMEOUT');
      assert.equal(await tcpTry(client, RELAY, 30001, A), 'device-ok 192.168.255.1');
      assert.equal(await tcpTry(client, RELAY, 30002, A), 'device-ok 192.168.255.1');
      // The counter of a port survives updates to it.
      assert.ok((await fw.readCounters()).get(30000)!.packets >= c1.get(30000)!.packets);

      await fw.teardown();
      assert.equal(await tcpTry(client, RELAY, 30002, A), 'REFUSED');
    } finally {
      server.kill('SIGKILL');
    }
  });
});
