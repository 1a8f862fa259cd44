// The tunnel worker thread's start-up contract (tunnel/host.ts): the agent's own entry point hands
// over to the worker code, and a tunnel that cannot start rejects instead of hanging or killing the
// agent. The packet path on the worker is exercised end to end by the lab tests (the agent binary
// runs its tunnel there).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { tunnelOnWorker, workerTunnel, type TunnelSpec } from '../src/tunnel/host.js';
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
