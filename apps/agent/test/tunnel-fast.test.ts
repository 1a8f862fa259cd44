// The tunnel client's first seconds against a real protocol Responder on 127.0.0.1: fast first
// retries (a relay that learns the device a moment later), and back on UDP as soon as UDP answers
// after a fallback to TCP (a relay whose tunnel was still starting, UDP blocked for a while).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createTunnelClient, agentTimers, AGENT_CONNECT_RETRY_MS, type TunnelClient } from '../src/tunnel/client.js';
import { startFakeRelay, type FakeRelay } from './fake-relay.js';
import { logger, waitFor } from './helpers.js';

const closers: Array<() => Promise<void>> = [];
after(async () => {
  for (const c of closers.reverse()) await c();
});

function client(relay: FakeRelay, extra: Partial<Parameters<typeof createTunnelClient>[0]> = {}): TunnelClient {
  const c = createTunnelClient({
    relayHost: '127.0.0.1',
    relayPort: relay.port,
    relayPublicKey: relay.keys.publicKey,
    privateKey: relay.device.privateKey,
    psk: relay.psk,
    probe: { src: '192.168.255.7', dst: '192.168.255.1' },
    logger,
    tickMs: 50,
    ...extra,
  });
  closers.push(() => c.stop());
  return c;
}

test('agent timers: fast first retries by default, none longer than rekeyTimeoutMs, an explicit schedule wins', () => {
  assert.deepEqual(agentTimers(undefined).connectRetryMs, AGENT_CONNECT_RETRY_MS);
  assert.deepEqual(agentTimers({ rekeyTimeoutMs: 600 }).connectRetryMs, [250, 500]);
  assert.deepEqual(agentTimers({ connectRetryMs: [] }).connectRetryMs, []);
});

test('a relay that learns the device 0.6 s after its first initiation: established on the next fast retry, not 5 s later', async () => {
  const relay = await startFakeRelay();
  closers.push(() => relay.close());
  relay.knowsDevice = false;
  const c = client(relay);
  const t0 = Date.now();
  await c.start();
  setTimeout(() => {
    relay.knowsDevice = true;
  }, 600);
  await waitFor(() => c.established, 5000);
  const ms = Date.now() - t0;
  assert.ok(ms < 2_000, `established after ${ms} ms`);
  assert.ok(c.stats().handshakes >= 3, `${c.stats().handshakes} initiations`);
  assert.equal(c.transport, 'udp');
  console.log(`fast retries: established ${ms} ms after start, relay learned the key at 600 ms`);
});

test('fell back to TCP while the relay answered nothing and refuses TCP: initiations go over UDP meanwhile, and the first answer puts us on UDP', async () => {
  const relay = await startFakeRelay({ udp: true, tcp: false }); // TCP: connection refused
  closers.push(() => relay.close());
  relay.silent = true; // its tunnel "is still starting"
  const c = client(relay, { policy: { fallbackAfterMs: 1_500 } });
  const via: string[] = [];
  c.on('established', (e) => via.push(e.transport));
  await c.start();
  await waitFor(() => c.transport === 'tcp', 4000);
  const t0 = Date.now();
  relay.silent = false;
  await waitFor(() => c.established, 6000);
  const ms = Date.now() - t0;
  await waitFor(() => c.transport === 'udp', 2000);
  assert.deepEqual(via, ['udp'], 'established over UDP directly');
  assert.equal(c.stats().tcpConnects, 0);
  assert.ok(ms < 2_500, `established ${ms} ms after the relay answered`);
  console.log(`late relay, TCP refused: on UDP ${ms} ms after the relay answered`);
});

test('fell back to TCP while UDP was blocked: back on UDP within ~1 s of UDP answering again (first probe 1 s after the TCP session came up)', async () => {
  const relay = await startFakeRelay({ udp: true, tcp: true });
  closers.push(() => relay.close());
  relay.silentUdp = true;
  const c = client(relay, { policy: { fallbackAfterMs: 1_000 } });
  const via: string[] = [];
  c.on('established', (e) => via.push(e.transport));
  await c.start();
  await waitFor(() => c.established && c.transport === 'tcp', 6000);
  assert.deepEqual(via, ['tcp']);
  const t0 = Date.now();
  relay.silentUdp = false;
  await waitFor(() => c.transport === 'udp', 5000);
  const ms = Date.now() - t0;
  assert.ok(ms <= 2_000, `back on UDP ${ms} ms after UDP answered`);
  assert.ok(c.established);
  console.log(`UDP unblocked: back on UDP after ${ms} ms`);
});
