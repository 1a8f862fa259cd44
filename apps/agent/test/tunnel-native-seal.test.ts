// The agent's native seal route (tunnel/native-routes.ts) through host.ts runTunnel against a real
// protocol Responder on 127.0.0.1. The TUN is a FakeTun whose seal path plays the addon's SealFast
// in JS (the C++ itself is tested as root in packages/tun seal.lab and the agent's tunnel-seal.lab):
// what is tested here is when the client sets and drops the route, and what its timers and stats
// learn from native sends. Every test fails with the route management off (checked).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { FakeTun, addonAvailable } from '@pocketproxy/tun';
import type { TransportSession } from '@pocketproxy/protocol';
import { runTunnel, type TunnelSpec } from '../src/tunnel/host.js';
import type { TunnelClient } from '../src/tunnel/client.js';
import { icmpEcho } from '../src/tunnel/probe.js';
import { startFakeRelay, type FakeRelay } from './fake-relay.js';
import { logger, waitFor } from './helpers.js';

const closers: Array<() => Promise<void>> = [];
after(async () => {
  for (const c of closers.reverse()) await c();
});

const SRC = '192.168.255.7';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function tunnel(
  relay: FakeRelay,
  options: TunnelSpec['options'] = {},
  extra: Partial<TunnelSpec> = {},
): Promise<{ tun: FakeTun; c: TunnelClient }> {
  const tun = new FakeTun({ name: 'fake0' });
  const spec: TunnelSpec = {
    tun: { name: 'fake0', mtu: 1400, address: SRC, prefixLength: 32 },
    relayHost: '127.0.0.1',
    relayPort: relay.port,
    relayPublicKey: relay.keys.publicKey,
    privateKey: relay.device.privateKey,
    psk: relay.psk,
    probe: { src: SRC, dst: '192.168.255.1' },
    options: { tickMs: 50, ...options },
    ...extra,
  };
  const { client } = await runTunnel(spec, { openTun: () => tun, configureTun: async () => {} }, () => {}, logger);
  closers.push(async () => {
    await client.stop();
    tun.close();
  });
  return { tun, c: client };
}

let seq = 0;
const pkts = (n: number, id = 77) => Array.from({ length: n }, () => icmpEcho(SRC, '203.0.113.10', id, ++seq & 0xffff));
const sealed = (tun: FakeTun) => tun.stats().sealNative ?? 0;
const arrived = (relay: FakeRelay, ps: Buffer[]) => relay.packets.filter((p) => ps.some((q) => q.equals(p))).length;
/** The counter the route seals from is this session's own cell (sendState shares it). */
const counterOf = (s: TransportSession | undefined) => s?.sendState({} as never).counter[0] ?? -1;

const native = addonAvailable();
const skip = native ? false : 'the native AEAD (addon) is not built: the seal route needs it';

test('established over UDP: IPv4 packets from the TUN are sealed natively and reach the relay in order; not before the session; non-IPv4 still through JS', {
  skip,
}, async () => {
  const relay = await startFakeRelay();
  closers.push(() => relay.close());
  relay.knowsDevice = false;
  const { tun, c } = await tunnel(relay);
  // No session yet: JS queues the packet (sent when established), nothing may be sealed natively.
  const early = pkts(1);
  tun.inject(...early);
  assert.equal(sealed(tun), 0);
  assert.equal(tun.stats().sealRoutes, 0);
  relay.knowsDevice = true;
  await waitFor(() => c.established, 5000);
  await waitFor(() => arrived(relay, early) === 1, 3000);
  assert.equal(sealed(tun), 0, 'the queued packet went through JS');
  assert.equal(c.stats().nativeSealing, true);
  assert.equal(tun.stats().sealRoutes, 1);

  const jsBefore = c.stats().framesOut.udp - c.stats().framesOutNative;
  const batch = pkts(30);
  tun.inject(...batch);
  assert.equal(sealed(tun), 30);
  await waitFor(() => arrived(relay, batch) === 30, 3000);
  assert.deepEqual(
    relay.packets.filter((p) => batch.some((q) => q.equals(p))),
    batch,
  );
  const st = c.stats();
  assert.equal(st.framesOutNative, 30);
  assert.ok(st.framesOut.udp >= jsBefore + 30, 'framesOut.udp counts the native frames');

  // An IPv6 packet (no next header): not for the IPv4 route, so JS seals it.
  const v6 = Buffer.alloc(40);
  v6[0] = 0x60;
  v6[6] = 59;
  v6[7] = 64;
  v6[8] = 0xfd;
  v6[24] = 0xfd;
  tun.inject(v6);
  assert.equal(sealed(tun), 30);
  await waitFor(() => relay.packets.some((p) => p.equals(v6)), 3000);
});

test('a rekey (by message count: native sends move the shared counter) moves the route to the new session; by time too', {
  skip,
}, async () => {
  const relay = await startFakeRelay();
  closers.push(() => relay.close());
  const { tun, c } = await tunnel(relay, { timers: { rekeyAfterMessages: 40, rekeyAfterMs: 1_500 } });
  await waitFor(() => c.established, 5000);
  const s1 = c.initiator.session!;
  const installs = c.native.installs;
  // Only native sends: the count rekey must still see them (the counter cell is shared).
  tun.inject(...pkts(45));
  assert.equal(sealed(tun), 45);
  await waitFor(() => c.initiator.session !== s1, 5000);
  const s2 = c.initiator.session!;
  assert.equal(c.native.installs, installs + 1, 'the route was set again for the new session');
  const before = counterOf(s2);
  const after1 = pkts(5);
  tun.inject(...after1);
  assert.equal(counterOf(s2), before + 5, 'sealed from the new session');
  await waitFor(() => arrived(relay, after1) === 5, 3000);
  // Time: the next session is rekeyed after 1.5 s while native sends flow.
  const t0 = Date.now();
  while (c.initiator.session === s2 && Date.now() - t0 < 6_000) {
    tun.inject(...pkts(2));
    await sleep(100);
  }
  assert.notEqual(c.initiator.session, s2, 'rekeyed by age');
  const s3 = c.initiator.session!;
  const b3 = counterOf(s3);
  tun.inject(...pkts(3));
  assert.equal(counterOf(s3), b3 + 3);
});

test('the route goes when the session goes (relay restart: liveness re-handshake) and comes back with the new one', {
  skip,
}, async () => {
  const relay = await startFakeRelay();
  closers.push(() => relay.close());
  const { tun, c } = await tunnel(relay, { liveness: { probeIdleMs: 200, replyTimeoutMs: 300 } });
  await waitFor(() => c.established, 5000);
  const s1 = c.initiator.session!;
  // At the 'down' event (the session is gone), a TUN read finds no route: JS queues the packets.
  const atDown: Array<{ reason: string; sealing: boolean; sealedThen: number }> = [];
  c.on('down', (e) => {
    const n = sealed(tun);
    tun.inject(...pkts(3));
    atDown.push({ reason: e.reason, sealing: c.stats().nativeSealing, sealedThen: sealed(tun) - n });
  });
  relay.restart();
  await waitFor(() => atDown.length > 0, 5000);
  assert.deepEqual(atDown[0], { reason: 'restart', sealing: false, sealedThen: 0 });
  await waitFor(() => c.established && c.initiator.session !== s1, 5000);
  assert.equal(c.stats().nativeSealing, true);
  const s2 = c.initiator.session!;
  const b = counterOf(s2);
  const ps = pkts(4);
  tun.inject(...ps);
  assert.equal(counterOf(s2), b + 4);
  await waitFor(() => arrived(relay, ps) === 4, 3000);
});

test('UDP -> TCP -> UDP: no native route while the tunnel runs over TCP; back when UDP is', { skip }, async () => {
  const relay = await startFakeRelay({ udp: true, tcp: true });
  closers.push(() => relay.close());
  relay.silentUdp = true;
  const { tun, c } = await tunnel(relay, { policy: { fallbackAfterMs: 800 } });
  await waitFor(() => c.established && c.transport === 'tcp', 6000);
  assert.equal(c.stats().nativeSealing, false);
  assert.equal(tun.stats().sealRoutes, 0);
  const overTcp = pkts(5);
  tun.inject(...overTcp);
  assert.equal(sealed(tun), 0);
  await waitFor(() => arrived(relay, overTcp) === 5, 3000);
  relay.silentUdp = false;
  await waitFor(() => c.transport === 'udp', 5000);
  await waitFor(() => c.stats().nativeSealing, 2000);
  const overUdp = pkts(5);
  tun.inject(...overUdp);
  assert.equal(sealed(tun), 5);
  await waitFor(() => arrived(relay, overUdp) === 5, 3000);
});

test('keepalive and liveness learn about native sends: no keepalive while they flow; a relay gone silent is noticed from them', {
  skip,
}, async () => {
  const relay = await startFakeRelay();
  closers.push(() => relay.close());
  // Probes only after a minute of silence: only the sends themselves can start the reply window.
  const { tun, c } = await tunnel(relay, {
    timers: { keepaliveMs: 300 },
    liveness: { probeIdleMs: 60_000, replyTimeoutMs: 600, slowTimeoutMs: 60_000 },
  });
  await waitFor(() => c.established, 5000);
  await waitFor(() => c.stats().nativeSealing, 2000);
  // The relay echoes what we send. 1.5 s of native sends every 100 ms: JS sends no keepalive (it
  // would every 300 ms without noteSent).
  const js0 = c.stats().framesOut.udp - c.stats().framesOutNative;
  const n0 = sealed(tun);
  for (let i = 0; i < 15; i++) {
    tun.inject(...pkts(1));
    await sleep(100);
  }
  assert.equal(sealed(tun), n0 + 15);
  const js1 = c.stats().framesOut.udp - c.stats().framesOutNative;
  assert.equal(js1 - js0, 0, `JS frames while native sends flowed: ${js1 - js0}`);
  // The relay goes silent; we keep sending natively: the reply window starts from those sends.
  relay.silent = true;
  const restarts = c.liveness.restarts;
  for (let i = 0; i < 40 && c.liveness.restarts === restarts; i++) {
    tun.inject(...pkts(1));
    await sleep(100);
  }
  assert.ok(c.liveness.restarts > restarts, 'the silent relay was noticed from native sends alone');
});

test('stop: the route is dropped first; a packet read after stop began is not sealed natively', { skip }, async () => {
  const relay = await startFakeRelay();
  closers.push(() => relay.close());
  const { tun, c } = await tunnel(relay);
  await waitFor(() => c.established, 5000);
  await waitFor(() => c.stats().nativeSealing, 2000);
  tun.inject(...pkts(2));
  assert.equal(sealed(tun), 2);
  const stopping = c.stop();
  tun.inject(...pkts(2));
  assert.equal(sealed(tun), 2);
  assert.equal(tun.stats().sealRoutes, 0);
  await stopping;
});

test('POCKETPROXY_NATIVE_SEAL=0 (spec.nativeSeal false): every packet through JS', { skip }, async () => {
  const relay = await startFakeRelay();
  closers.push(() => relay.close());
  const { tun, c } = await tunnel(relay, {}, { nativeSeal: false });
  await waitFor(() => c.established, 5000);
  const ps = pkts(10);
  tun.inject(...ps);
  await waitFor(() => arrived(relay, ps) === 10, 3000);
  assert.equal(sealed(tun), 0);
  assert.equal(c.stats().nativeSealing, false);
  assert.equal(c.stats().framesOutNative, 0);
});
