// The tunnel client against a real protocol Responder on 127.0.0.1 (real UDP / TCP sockets).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { batchOf } from '@pocketproxy/tun';
import { createTunnelClient, type TunnelClient } from '../src/tunnel/client.js';
import { icmpEcho } from '../src/tunnel/probe.js';
import { startFakeRelay, type FakeRelay } from './fake-relay.js';
import { logger, waitFor } from './helpers.js';

const closers: Array<() => Promise<void>> = [];
after(async () => {
  for (const c of closers.reverse()) await c();
});

function client(
  relay: FakeRelay,
  extra: Partial<Parameters<typeof createTunnelClient>[0]> = {},
): { c: TunnelClient; got: Buffer[] } {
  const got: Buffer[] = [];
  const c = createTunnelClient({
    relayHost: '127.0.0.1',
    relayPort: relay.port,
    relayPublicKey: relay.keys.publicKey,
    privateKey: relay.device.privateKey,
    psk: relay.psk,
    probe: { src: '192.168.255.7', dst: '192.168.255.1' },
    logger,
    tickMs: 50,
    onPackets: (ps) => {
      for (const p of ps) got.push(Buffer.from(p));
    },
    ...extra,
  });
  closers.push(() => c.stop());
  return { c, got };
}

test('UDP: handshake, packets both ways, pushed messages', async () => {
  const relay = await startFakeRelay();
  closers.push(() => relay.close());
  const msgs: unknown[] = [];
  const { c, got } = client(relay, { onMessage: (m) => msgs.push(m) });
  await c.start();
  await waitFor(() => c.established, 3000);
  assert.equal(c.transport, 'udp');
  const pkt = icmpEcho('192.168.255.7', '203.0.113.10', 1, 1);
  c.sendPacket(pkt);
  await waitFor(() => got.some((p) => p.equals(pkt)), 2000);
  assert.ok(relay.packets.some((p) => p.equals(pkt)));
  assert.ok(relay.push({ kind: 'command', command: { id: 'cmd_abcdefghij', type: 'rotate_ip', payload: {} } }));
  await waitFor(() => msgs.length === 1, 2000);
  c.sendMessage({ kind: 'ack', ack: { id: 'cmd_abcdefghij', status: 'received' } });
  await waitFor(() => relay.messages.length === 1, 2000);
  assert.equal(c.stats().framesOut.tcp, 0);
});

// One TUN read batch -> one sendPackets: every packet arrives, in order, on each transport.
for (const [name, extra, relayOpts] of [
  ['native UDP (sendmmsg) when the addon is there', {}, {}],
  ['node:dgram', { nativeUdp: false }, {}],
  [
    'TCP (one corked write)',
    { policy: { fallbackAfterMs: 300 }, timers: { rekeyTimeoutMs: 200 } },
    { udp: false, tcp: true },
  ],
] as const) {
  test(`sendPackets: a batch of packets over ${name}`, async () => {
    const relay = await startFakeRelay(relayOpts);
    closers.push(() => relay.close());
    const { c } = client(relay, extra);
    await c.start();
    await waitFor(() => c.established, 5000);
    const before = relay.packets.length;
    const pkts = Array.from({ length: 40 }, (_, i) => icmpEcho('192.168.255.7', '203.0.113.10', 100, i));
    c.sendPackets(batchOf(pkts));
    await waitFor(() => relay.packets.length >= before + pkts.length, 3000);
    const got = relay.packets.slice(before).filter((p) => pkts.some((q) => q.equals(p)));
    assert.deepEqual(got, pkts);
    const out = c.stats().framesOut;
    assert.ok(out.udp + out.tcp >= pkts.length);
  });
}

test('onPackets: echoed packets come back in order, batched per receive', async () => {
  const relay = await startFakeRelay();
  closers.push(() => relay.close());
  const batches: Buffer[][] = [];
  const { c } = client(relay, { onPackets: (ps) => batches.push(ps.map((p) => Buffer.from(p))) });
  await c.start();
  await waitFor(() => c.established, 3000);
  const pkts = Array.from({ length: 40 }, (_, i) => icmpEcho('192.168.255.7', '203.0.113.10', 200, i));
  c.sendPackets(batchOf(pkts));
  const mine = () => batches.flat().filter((p) => pkts.some((q) => q.equals(p)));
  await waitFor(() => mine().length === pkts.length, 3000);
  assert.deepEqual(mine(), pkts);
  console.log(`onPackets: ${batches.length} deliveries for ${batches.flat().length} packets`);
});

test('TCP fallback when the relay only listens on TCP', async () => {
  const relay = await startFakeRelay({ udp: false, tcp: true });
  closers.push(() => relay.close());
  const { c, got } = client(relay, { policy: { fallbackAfterMs: 1000 }, timers: { rekeyTimeoutMs: 500 } });
  const t0 = Date.now();
  await c.start();
  await waitFor(() => c.established, 5000);
  const ms = Date.now() - t0;
  assert.equal(c.transport, 'tcp');
  assert.ok(ms >= 900, `fell back after ${ms} ms`);
  const pkt = icmpEcho('192.168.255.7', '203.0.113.10', 2, 2);
  c.sendPacket(pkt);
  await waitFor(() => got.some((p) => p.equals(pkt)), 2000);
  assert.ok(c.stats().tcpConnects >= 1);
});

test('back to UDP when UDP works again (periodic UDP retry while on TCP)', async () => {
  const relay = await startFakeRelay({ udp: true, tcp: true });
  closers.push(() => relay.close());
  relay.silent = true; // nothing answers at first: forces the fallback to TCP
  const { c } = client(relay, { policy: { fallbackAfterMs: 600, udpRetryMs: 800 }, timers: { rekeyTimeoutMs: 300 } });
  const switches: { transport: string; why: string }[] = [];
  c.on('transport', (e) => switches.push(e));
  await c.start();
  await waitFor(() => c.transport === 'tcp', 3000);
  relay.silent = false;
  await waitFor(() => c.established, 5000);
  await waitFor(() => c.transport === 'udp', 5000);
  // Why each switch happened: only the last one says UDP works (host.ts onUdpAgain tells the other lanes
  // of that one alone, not of a mere try of UDP after TCP timed out).
  assert.deepEqual(switches[0], { transport: 'tcp', why: 'timeout' });
  assert.deepEqual(switches.at(-1), { transport: 'udp', why: 'answered' });
});

test('relay restart (sessions forgotten, silent): tunnel back within 5 s with default liveness timers', async () => {
  const relay = await startFakeRelay();
  closers.push(() => relay.close());
  const { c, got } = client(relay);
  await c.start();
  await waitFor(() => c.established, 3000);
  let downs = 0;
  c.on('down', () => downs++);
  let ups = 0;
  let recovered: { lostAt: number } | undefined;
  c.on('established', (e) => {
    ups++;
    recovered = e.recovered;
  });
  relay.restart();
  const t0 = Date.now();
  await waitFor(() => ups > 0, 8000);
  const ms = Date.now() - t0;
  assert.ok(ms <= 5500, `back after ${ms} ms`);
  assert.equal(downs, 1);
  // The new session says when the old one was presumed lost (agent.ts tells the other lanes).
  assert.ok(recovered && recovered.lostAt >= t0 && recovered.lostAt <= t0 + ms, JSON.stringify(recovered));
  const pkt = icmpEcho('192.168.255.7', '203.0.113.10', 3, 3);
  c.sendPacket(pkt);
  await waitFor(() => got.some((p) => p.equals(pkt)), 2000);
  console.log(`relay restart: tunnel back after ${ms} ms`);
});

test('a lane (no probes, 15 s without an answer) told the relay restarted handshakes again at once', async () => {
  const relay = await startFakeRelay();
  closers.push(() => relay.close());
  const { c, got } = client(relay, { probe: undefined, liveness: { replyTimeoutMs: 15_000 } });
  const events: { recovered?: { lostAt: number } }[] = [];
  c.on('established', (e) => events.push(e));
  await c.start();
  await waitFor(() => c.established, 3000);
  assert.equal(events.length, 1);
  assert.equal(events[0]!.recovered, undefined, 'a first session recovers nothing');
  relay.restart();
  // Its packets go unanswered, and on its own it would wait 15 s before handshaking again.
  c.sendPacket(icmpEcho('192.168.255.7', '203.0.113.10', 4, 1));
  await new Promise((r) => setTimeout(r, 600));
  assert.equal(events.length, 1, 'no new session on its own yet');
  assert.ok(c.established, 'it still believes in its session');
  // Word of a loss from before this session was established changes nothing.
  c.relayLost(Date.now() - 60_000);
  await new Promise((r) => setTimeout(r, 300));
  assert.ok(c.established && events.length === 1, 'a session newer than the loss is kept');
  const t0 = Date.now();
  c.relayLost(Date.now());
  await waitFor(() => events.length === 2, 3000);
  const ms = Date.now() - t0;
  assert.ok(ms < 2000, `back after ${ms} ms`);
  assert.ok(events[1]!.recovered, 'the new session follows a lost one');
  const pkt = icmpEcho('192.168.255.7', '203.0.113.10', 4, 2);
  c.sendPacket(pkt);
  await waitFor(() => got.some((p) => p.equals(pkt)), 2000);
});

test('a lane told lane 0 has a new session over TCP goes to TCP at once (UDP blocked), not after its own fallback', async () => {
  const relay = await startFakeRelay({ udp: true, tcp: true });
  closers.push(() => relay.close());
  // A lane's timers: no probes, 15 s without an answer; the default 10 s before it would try TCP.
  const { c, got } = client(relay, { probe: undefined, liveness: { replyTimeoutMs: 15_000 } });
  const events: { transport: string; recovered?: { lostAt: number } }[] = [];
  c.on('established', (e) => events.push(e));
  await c.start();
  await waitFor(() => c.established, 3000);
  assert.equal(events[0]?.transport, 'udp');
  relay.silentUdp = true; // the path stops carrying UDP
  const t0 = Date.now();
  c.relayLost(t0, 'tcp');
  await waitFor(() => events.length === 2, 4000);
  const ms = Date.now() - t0;
  assert.equal(events[1]!.transport, 'tcp');
  assert.equal(c.transport, 'tcp');
  assert.ok(ms < 2500, `on TCP after ${ms} ms`);
  const pkt = icmpEcho('192.168.255.7', '203.0.113.10', 5, 1);
  c.sendPacket(pkt);
  await waitFor(() => got.some((p) => p.equals(pkt)), 2000);
  console.log(`lane to TCP on lane 0's word: ${ms} ms`);
  // UDP works again and lane 0 says so: the lane is on UDP at once, and the relay's end follows (its
  // next frames come by UDP), where on its own an idle lane stayed on TCP.
  relay.silentUdp = false;
  const udpIn = c.stats().framesIn.udp;
  c.udpAgain();
  assert.equal(c.transport, 'udp');
  const back = icmpEcho('192.168.255.7', '203.0.113.10', 5, 2);
  c.sendPacket(back);
  await waitFor(() => got.some((p) => p.equals(back)), 2000);
  assert.ok(c.stats().framesIn.udp > udpIn, 'the echo came back over UDP');
  assert.ok(c.established);
});

test('a relay that never answers probes does not cause endless re-handshakes', async () => {
  const relay = await startFakeRelay({ echo: false });
  closers.push(() => relay.close());
  const { c } = client(relay, { liveness: { probeIdleMs: 100, replyTimeoutMs: 150, slowTimeoutMs: 10_000 } });
  await c.start();
  await waitFor(() => c.established, 3000);
  await new Promise((r) => setTimeout(r, 2500));
  assert.ok(c.liveness.slow, 'switched to the slow window');
  assert.ok(c.liveness.restarts <= 3, `restarts ${c.liveness.restarts}`);
});
