// The tunnel worker thread's start-up contract (tunnel/host.ts): the agent's own entry point hands
// over to the worker code, and a tunnel that cannot start rejects instead of hanging or killing the
// agent. The packet path on the worker is exercised end to end by the lab tests (the agent binary
// runs its tunnel there).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import * as dgram from 'node:dgram';
import { createResponder, generateKeyPair, generatePsk } from '@pocketproxy/protocol';
import { FakeTun } from '@pocketproxy/tun';
import { runTunnel, tunnelOnWorker, workerTunnel, type TunIo, type TunnelSpec } from '../src/tunnel/host.js';
import { silentLogger } from '../src/log.js';

// The bundle (scripts/build.mjs, run by the test command's setup): a worker thread does not take
// the tsx loader that runs the TypeScript sources here.
const ENTRY = fileURLToPath(new URL('../dist/main.js', import.meta.url));

test('workerTunnel: a TUN that cannot be opened rejects start (no hang, no fatal callback)', async (t) => {
  if (!existsSync(ENTRY)) {
    console.error(`SKIP tunnel-host.test: ${ENTRY} missing; build first (node scripts/build.mjs)`);
    return t.skip('agent bundle not built');
  }
  const spec: TunnelSpec = {
    // An interface name the kernel refuses (and that openTun rejects before any syscall).
    tun: { name: 'bad name/with slash', mtu: 1380, address: '10.0.0.2', prefixLength: 24 },
    relayHost: '127.0.0.1',
    relayPort: 9,
    relayPublicKey: new Uint8Array(32),
    privateKey: new Uint8Array(32),
    psk: new Uint8Array(32),
  };
  let fatal: unknown;
  const start = workerTunnel(ENTRY, 'silent', (e) => {
    fatal = e;
  });
  await assert.rejects(
    start(spec, () => {}, silentLogger()),
    (e: Error) => {
      console.error(`tunnel-host.test: start rejected: ${e.message}`);
      assert.match(e.message, /interface name|TUN|tun/i);
      return true;
    },
  );
  await new Promise((r) => setTimeout(r, 200));
  assert.equal(fatal, undefined);
});

test('tunnelOnWorker: the packet path gets its own thread only with more than two cores, unless POCKETPROXY_AGENT_TUNNEL_THREAD says', () => {
  assert.equal(tunnelOnWorker(undefined, 1), false);
  assert.equal(tunnelOnWorker(undefined, 2), false);
  assert.equal(tunnelOnWorker(undefined, 4), true);
  assert.equal(tunnelOnWorker('1', 2), true, '=1 forces the worker');
  assert.equal(tunnelOnWorker('0', 8), false, '=0 keeps one loop');
  assert.equal(tunnelOnWorker('yes', 2), false, 'anything else: the default for the core count');
  assert.equal(tunnelOnWorker('yes', 8), true);
});

test('runTunnel with lanes: every lane opens a queue of a multi-queue TUN; lane 0 alone configures it; each lane initiates as itself', async () => {
  const relay = generateKeyPair();
  const device = generateKeyPair();
  const psk = generatePsk();
  // A real responder on loopback: the lanes' initiations say which lane they are.
  const responder = createResponder<string>({
    privateKey: relay.privateKey,
    lookupPeer: (k) => (k.equals(device.publicKey) ? { deviceId: 'dev', psk } : undefined),
  });
  const sock = dgram.createSocket('udp4');
  const lanesSeen: number[] = [];
  sock.on('message', (m, r) => {
    const res = responder.receive(m, `${r.address}:${r.port}`, Date.now());
    if (res.kind === 'reply') {
      lanesSeen.push(res.lane);
      sock.send(res.frame, r.port, r.address);
    }
  });
  await new Promise<void>((r) => sock.bind(0, '127.0.0.1', r));
  const opened: { multiQueue: boolean | undefined }[] = [];
  const configured: string[] = [];
  const io: TunIo = {
    openTun: (name, _mtu, _offload, multiQueue) => {
      opened.push({ multiQueue });
      return new FakeTun({ name });
    },
    configureTun: async (cfg) => {
      configured.push(cfg.name);
    },
  };
  const spec = (index: number): TunnelSpec => ({
    tun: { name: 'ppd0', mtu: 1380, address: '10.0.0.2', prefixLength: 24 },
    relayHost: '127.0.0.1',
    relayPort: sock.address().port,
    relayPublicKey: relay.publicKey,
    privateKey: device.privateKey,
    psk,
    probe: { src: '10.0.0.2', dst: '10.0.0.1' },
    lane: { index, count: 2 },
  });
  const runs = [
    await runTunnel(spec(0), io, () => {}, silentLogger()),
    await runTunnel(spec(1), io, () => {}, silentLogger()),
  ];
  try {
    await waitUntil(() => runs.every((r) => r.client.established));
    assert.deepEqual(opened, [{ multiQueue: true }, { multiQueue: true }]);
    assert.deepEqual(configured, ['ppd0'], 'only lane 0 configures the TUN');
    assert.deepEqual([...lanesSeen].sort(), [0, 1]);
    assert.equal(responder.peer('dev')?.laneCount, 2);
  } finally {
    for (const r of runs) {
      await r.client.stop();
      r.tun.close();
    }
    sock.close();
  }
});

async function waitUntil(f: () => boolean, ms = 5000): Promise<void> {
  const until = Date.now() + ms;
  while (!f()) {
    if (Date.now() > until) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 20));
  }
}
