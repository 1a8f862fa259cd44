// A real DNAT through the real kernel: client -> relay:PORT -> (our table) -> pp0 veth -> "device".
//
//   [client 198.51.100.2,.3] --c0/r0-- [relay 198.51.100.1 | pp0 192.168.255.1] --pp0/d0-- [device 192.168.255.2 :8080/tcp :1081/udp]
//
// The relay runs createFirewall with a runner bound to its namespace (exactly the app's code path).
// No source NAT: the device sees the customer's own address and routes its answers back through the
// relay (here a default route via pp0; the agent's policy rule does the same with the tunnel).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createFirewall, createRunner, type FirewallState } from '../src/index.js';
import { DEVICE_SERVER, inNs, link, needsRoot, startIn, tcpTry, udpTry, withNamespaces } from './lab.js';

const RELAY = '198.51.100.1';
const A = '198.51.100.2';
const B = '198.51.100.3';

/** On the device: TCP 8091 sends 200,000 bytes and closes (a download); TCP 8092 swallows
 * whatever comes and answers with its length (an upload). */
const BULK_SERVER = `
const net = require('node:net');
const down = net.createServer((s) => s.end(Buffer.alloc(200000, 120)));
const up = net.createServer((s) => { let n = 0; s.on('data', (b) => (n += b.length)); s.on('end', () => s.end(String(n))); });
down.listen(8091, '0.0.0.0', () => up.listen(8092, '0.0.0.0', () => console.log('ready')));
setTimeout(() => process.exit(0), 60000).unref();
`;

/** On the device: TCP 8093 trickles 1 KB every 20 ms for 20 s (a long download to be cut). */
const TRICKLE_SERVER = `
const net = require('node:net');
net.createServer((s) => {
  const t = setInterval(() => s.write(Buffer.alloc(1024, 122)), 20);
  s.on('error', () => {});
  s.on('close', () => clearInterval(t));
  setTimeout(() => { clearInterval(t); s.end(); }, 20000);
}).listen(8093, '0.0.0.0', () => console.log('ready'));
setTimeout(() => process.exit(0), 60000).unref();
`;

/** Reads a trickle for 3 s after its first 8 KB; prints how it ended and when the last byte came (epoch ms). */
const TRICKLE_CLIENT = `
const [host, port] = process.argv.slice(1);
const s = require('node:net').connect({ host, port: Number(port) });
let n = 0, last = 0, started = 0;
s.on('data', (b) => { n += b.length; last = Date.now(); if (n >= 8192 && !started) { started = last; setTimeout(() => done('open'), 3000); } });
const done = (how) => { console.log(JSON.stringify({ how, bytes: n, last })); process.exit(0); };
s.on('error', (e) => done(e.code));
s.on('end', () => done('end'));
setTimeout(() => done('TIMEOUT'), 8000);
`;

/** Connects, sends \`upload\` bytes (then half-closes), prints how many bytes came back. */
const BULK_CLIENT = `
const [host, port, upload] = process.argv.slice(1);
const s = require('node:net').connect({ host, port: Number(port) }, () => s.end(Buffer.alloc(Number(upload), 121)));
let n = 0;
s.on('data', (b) => (n += b.length));
s.on('end', () => { console.log(n); process.exit(0); });
s.on('error', (e) => { console.log(e.code); process.exit(0); });
setTimeout(() => { console.log('TIMEOUT'); process.exit(0); }, 5000);
`;

function stateWith(overrides: Record<number, object> = {}): FirewallState {
  const ports = [
    { port: 30000, proto: 'tcp' as const, vpnIp: '192.168.255.2', targetPort: 8080, enabled: true },
    { port: 30001, proto: 'tcp' as const, vpnIp: '192.168.255.2', targetPort: 8080, enabled: true, allowFrom: [B] },
    { port: 30002, proto: 'tcp' as const, vpnIp: '192.168.255.2', targetPort: 8080, enabled: false },
    { port: 30003, proto: 'udp' as const, vpnIp: '192.168.255.2', targetPort: 1081, enabled: true },
    { port: 30004, proto: 'tcp' as const, vpnIp: '192.168.255.2', targetPort: 8091, enabled: true },
    { port: 30005, proto: 'tcp' as const, vpnIp: '192.168.255.2', targetPort: 8092, enabled: true },
    { port: 30006, proto: 'tcp' as const, vpnIp: '192.168.255.2', targetPort: 8093, enabled: true },
  ].map((p) => ({ ...p, ...(overrides[p.port] ?? {}) }));
  return {
    tunnelInterface: 'pp0',
    deviceSubnet: '192.168.255.0/24',
    tunnelAddress: '192.168.255.1',
    mssClamp: 'pmtu',
    ports,
  };
}

test('DNAT through maps reaches the device; allow-list, disabled port and counters work', async (t) => {
  if (!(await needsRoot(t))) return;
  await withNamespaces(['client', 'relay', 'device'], async (ns) => {
    const [client, relay, dev] = [ns.client!, ns.relay!, ns.device!];
    await link({ ns: client, ifname: 'c0', addr: `${A}/24` }, { ns: relay, ifname: 'r0', addr: `${RELAY}/24` });
    await inNs(client, 'ip', ['addr', 'add', `${B}/24`, 'dev', 'c0']);
    await link(
      { ns: relay, ifname: 'pp0', addr: '192.168.255.1/24' },
      { ns: dev, ifname: 'd0', addr: '192.168.255.2/24' },
    );
    await inNs(dev, 'ip', ['route', 'add', 'default', 'via', '192.168.255.1']);
    const server = await startIn(dev, DEVICE_SERVER);
    const bulk = await startIn(dev, BULK_SERVER);
    const trickle = await startIn(dev, TRICKLE_SERVER);
    // Something on the relay a device must not reach (the API, PostgreSQL, sshd...).
    const relaySvc = await startIn(
      relay,
      "require('node:net').createServer((s) => s.end('relay-service')).listen(9999, '0.0.0.0', () => console.log('ready')); " +
        'setTimeout(() => process.exit(0), 60000).unref();',
    );
    try {
      const fw = createFirewall({ run: createRunner({ netns: relay }) });
      await fw.applySysctls();
      assert.equal((await inNs(relay, 'sysctl', ['-n', 'net.ipv4.ip_forward'])).trim(), '1');

      // Baseline: without our table the relay itself refuses the port.
      assert.equal(await tcpTry(client, RELAY, 30000, A), 'REFUSED');

      assert.equal((await fw.apply(stateWith())).kind, 'full');
      // The device sees the customer's own address (no SNAT) on the port the customer dialled.
      assert.equal(await tcpTry(client, RELAY, 30000, A), `device-ok ${A}`);
      assert.equal(await udpTry(client, RELAY, 30003, A), 'echo ping');

      // Per direction: `in` = customer -> device (conntrack ORIGINAL), `out` = back to the customer.
      const c1 = await fw.readCounters();
      const t0 = c1.get(30000)!;
      assert.ok(t0.in.packets >= 3 && t0.out.packets >= 3, `tcp counter ${JSON.stringify(t0)}`);
      // Only the device sent payload ("device-ok 198.51.100.2", 22 bytes); the client sent none, so
      // its packets are bare headers and the device's are larger on average.
      assert.ok(t0.out.bytes / t0.out.packets > t0.in.bytes / t0.in.packets, `tcp counter ${JSON.stringify(t0)}`);
      assert.ok(t0.in.bytes + t0.out.bytes > 300);
      // ping out (IP+UDP+4), "echo ping" back (IP+UDP+9).
      assert.deepEqual(c1.get(30003), { in: { packets: 1, bytes: 28 + 4 }, out: { packets: 1, bytes: 28 + 9 } });
      console.error('counters after one TCP exchange and one UDP echo:', JSON.stringify(Object.fromEntries(c1)));

      // A 200,000-byte download counts as out, a 200,000-byte upload as in.
      assert.equal((await inNs(client, process.execPath, ['-e', BULK_CLIENT, RELAY, '30004', '0'])).trim(), '200000');
      assert.equal((await inNs(client, process.execPath, ['-e', BULK_CLIENT, RELAY, '30005', '200000'])).trim(), '6');
      const bulkCounters = await fw.readCounters();
      const down = bulkCounters.get(30004)!;
      const up = bulkCounters.get(30005)!;
      console.error('download 200 kB:', JSON.stringify(down), 'upload 200 kB:', JSON.stringify(up));
      assert.ok(down.out.bytes >= 200_000 && down.out.bytes < 240_000, `download ${JSON.stringify(down)}`);
      assert.ok(down.in.bytes < 20_000, `download ${JSON.stringify(down)}`);
      assert.ok(up.in.bytes >= 200_000 && up.in.bytes < 240_000, `upload ${JSON.stringify(up)}`);
      assert.ok(up.out.bytes < 20_000, `upload ${JSON.stringify(up)}`);

      // Allow-list: only B may use 30001. Disabled 30002 drops (no RST, no forward).
      assert.equal(await tcpTry(client, RELAY, 30001, A), 'TIMEOUT');
      assert.equal(await tcpTry(client, RELAY, 30001, B), `device-ok ${B}`);
      assert.equal(await tcpTry(client, RELAY, 30002, A), 'TIMEOUT');
      assert.deepEqual((await fw.readCounters()).get(30002), {
        in: { packets: 0, bytes: 0 },
        out: { packets: 0, bytes: 0 },
      });

      // Element-level updates: disable 30000, open 30001 to A, enable 30002.
      const next = stateWith({ 30000: { enabled: false }, 30001: { allowFrom: [A, B] }, 30002: { enabled: true } });
      const r = await fw.apply(next);
      assert.equal(r.kind, 'update');
      assert.equal(await tcpTry(client, RELAY, 30000, A), 'TIMEOUT');
      assert.equal(await tcpTry(client, RELAY, 30001, A), `device-ok ${A}`);
      assert.equal(await tcpTry(client, RELAY, 30002, A), `device-ok ${A}`);
      // Both counters of a port survive updates to it.
      const c2 = (await fw.readCounters()).get(30000)!;
      assert.ok(
        c2.in.packets >= t0.in.packets && c2.out.packets >= t0.out.packets,
        `after update ${JSON.stringify(c2)}`,
      );

      // A device reaches only the relay's tunnel address with an echo request, nothing else of it.
      assert.equal(await tcpTry(relay, '127.0.0.1', 9999, '127.0.0.1'), 'relay-service');
      assert.equal(await tcpTry(dev, '192.168.255.1', 9999, '192.168.255.2'), 'EHOSTUNREACH');
      assert.equal(await tcpTry(dev, RELAY, 9999, '192.168.255.2'), 'EHOSTUNREACH');
      await inNs(dev, 'ping', ['-c', '1', '-W', '2', '192.168.255.1']);
      // Nobody outside may use a device address as its source (the device trusts the relay's).
      await inNs(client, 'ip', ['addr', 'add', '192.168.255.77/32', 'dev', 'c0']);
      assert.equal(await tcpTry(client, RELAY, 30000, '192.168.255.77'), 'TIMEOUT');

      // Removing a port cuts its open flows at once (conntrack would carry them on otherwise).
      const cut = inNs(client, process.execPath, ['-e', TRICKLE_CLIENT, RELAY, '30006']);
      const t1 = Date.now();
      while (Date.now() - t1 < 5000) {
        const flows = await inNs(relay, 'conntrack', ['-L', '-p', 'tcp', '--orig-port-dst', '30006']).catch(() => '');
        if (flows.includes('ESTABLISHED')) break;
        await new Promise((r) => setTimeout(r, 100));
      }
      await new Promise((r) => setTimeout(r, 500));
      await fw.apply({ ...next, ports: next.ports.filter((p) => p.port !== 30006) });
      const removedAt = Date.now();
      const ended = JSON.parse((await cut).trim().split('\n').pop()!);
      console.error(
        `download on a removed port: ${JSON.stringify(ended)}, last byte ${ended.last - removedAt} ms after the removal`,
      );
      // Nothing more reaches the customer (at most what was already on the wire); a packet the
      // customer still sends is answered with a reset. Telling the customer is the device's job
      // (its agent ends the socket); the relay makes sure nothing flows even if it does not.
      assert.ok(['open', 'ECONNRESET'].includes(ended.how), JSON.stringify(ended));
      assert.ok(ended.bytes >= 8192 && ended.last - removedAt < 200, JSON.stringify(ended));

      await fw.teardown();
      assert.equal(await tcpTry(client, RELAY, 30002, A), 'REFUSED');
    } finally {
      relaySvc.kill('SIGKILL');
      trickle.kill('SIGKILL');
      bulk.kill('SIGKILL');
      server.kill('SIGKILL');
    }
  });
});
