// A device's HTTP listeners on two threads (proxy/threads.ts): the main thread's Listeners and a real
// worker thread (the agent's own entry, src/main.ts) accepting from the same listening sockets.
// To know which thread served a customer, the test blocks its own thread while the customer (a child
// process, fixtures/proxy-client.mjs) asks: whatever is answered meanwhile was answered by the worker.
// Checks: the worker serves the unlimited HTTP connection (CONNECT, splice, bytes credited to the main
// thread's usage), never the limited one; a changed password ends the worker's tunnels, a disabled
// connection is refused there; a removed connection's port is released by both threads (it can be
// bound again); the counters of both threads are summed.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcessByStdio } from 'node:child_process';
import type { Readable, Writable } from 'node:stream';
import * as net from 'node:net';
import * as readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import { addonAvailable, SpliceEngine } from '@pocketproxy/tun';
import { leanBinding } from '@pocketproxy/proxy';
import { CredentialStore } from '../src/credentials.js';
import { UsageMeter } from '../src/ops/usage.js';
import { ConnectionMeter } from '@pocketproxy/proxy';
import { buildListeners, threadEngine, type ListenerSetup } from '../src/proxy/setup.js';
import {
  ListenerThreads,
  serveListenerThread,
  workerListenerThread,
  type FromListenerThread,
  type ToListenerThread,
} from '../src/proxy/threads.js';
import { credentialItem, logger, waitFor } from './helpers.js';

// The agent's entry from its sources on a worker (tsx's hooks registered there first).
const ENTRY = fileURLToPath(new URL('./fixtures/ts-worker.mjs', import.meta.url));
const CLIENT = fileURLToPath(new URL('./fixtures/proxy-client.mjs', import.meta.url));
const native = addonAvailable() && leanBinding() !== null;
if (!native) console.error('SKIP listener-threads.test.ts: needs the native addon and LeanSockets (npm run build)');

const cleanups: Array<() => Promise<unknown> | unknown> = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

const item = credentialItem;

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const srv = net.createServer().listen(0, '127.0.0.1', () => {
      const p = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(p));
    });
  });
}

/** This thread does nothing for `ms` (no event loop turn): [start, end] in ms since the epoch. */
function block(ms: number): [number, number] {
  const t0 = Date.now();
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
  return [t0, Date.now()];
}

/** The customer process, ready (it ends with the file's tests): its lines as [words, time]. */
async function startClient(): Promise<{
  proc: ChildProcessByStdio<Writable, Readable, null>;
  lines: { words: string[]; t: number }[];
}> {
  const proc = spawn(process.execPath, [CLIENT], { stdio: ['pipe', 'pipe', 'inherit'] });
  cleanups.push(() => proc.kill());
  const lines: { words: string[]; t: number }[] = [];
  readline.createInterface({ input: proc.stdout }).on('line', (l) => {
    const words = l.split(' ');
    lines.push({ words: words.slice(0, -1), t: Number(words.at(-1)) });
  });
  await waitFor(() => lines.some((l) => l.words[0] === 'ready'), 5000);
  return { proc, lines };
}

/** Listeners on loopback; `native`: with the splice engine and the native front. */
function loopbackSetup(native: boolean): ListenerSetup {
  return {
    host: '127.0.0.1',
    relayHost: '127.0.0.1',
    egress: { tunnelSubnet: '10.77.0.0/24', allowPrivate: false, allowLoopback: true },
    limits: { headTimeoutMs: 5000, idleTimeoutMs: 60_000 },
    caps: { maxPerAddress: 32, maxTotal: 1024 },
    splice: native,
    front: native,
  };
}

/** The main thread's Listeners on loopback with one real worker thread (the agent's entry from its sources). */
function withWorker() {
  const credentials = new CredentialStore();
  const usage = new UsageMeter(() => new ConnectionMeter({}));
  const setup = loopbackSetup(true);
  let failed: Error | undefined;
  const peers = new ListenerThreads(
    1,
    setup,
    workerListenerThread(ENTRY, logger),
    (entries) => {
      for (const e of entries) usage.of(e.connection_id).credit(e.bytes_in, e.bytes_out);
    },
    (e) => (failed = e),
    logger,
  );
  const engine = threadEngine(() => new SpliceEngine(), logger);
  const listeners = buildListeners(setup, { credentials, usage, logger, engine, peers });
  return { credentials, usage, peers, listeners, fatal: () => failed };
}

test('listener threads: a worker serves the unlimited HTTP connection from the same sockets, follows every change, releases the ports', {
  skip: !native,
}, async () => {
  const client = await startClient();
  const said = (id: string, what: string) => client.lines.find((l) => l.words[0] === id && l.words[1] === what);
  const ask = (id: string, port: number, auth: string) => client.proc.stdin.write(`connect ${id} ${port} ${auth}\n`);

  const [portA, portB] = [await freePort(), await freePort()];
  const { credentials, usage, listeners, fatal } = withWorker();
  let closed = false;
  cleanups.push(() => (closed ? undefined : listeners.close()));

  // A: no limits (shared with the worker); B: max_connections (this thread's only).
  credentials.replace('v1', [
    item('con_aaaaaaaaaa', portA, 'alice', 'wonderland'),
    item('con_bbbbbbbbbb', portB, 'bob', 'builder', { max_connections: 5 }),
  ]);
  await listeners.apply();

  // While this thread is blocked, the worker accepts, checks, dials and splices A's CONNECT.
  ask('a1', portA, 'alice:wonderland');
  const [, end1] = block(1500);
  await waitFor(() => said('a1', 'echo') !== undefined, 5000);
  assert.deepEqual(said('a1', 'status')!.words.slice(2), ['200']);
  assert.ok(said('a1', 'status')!.t < end1, 'A answered while the main thread was blocked: by the worker');
  assert.deepEqual(said('a1', 'echo')!.words.slice(2), ['ping-a1']);
  assert.ok(said('a1', 'echo')!.t < end1, 'its bytes relayed by the worker');
  // B is not the worker's: answered only once this thread runs again.
  ask('b1', portB, 'bob:builder');
  const [, end2] = block(800);
  await waitFor(() => said('b1', 'status') !== undefined, 5000);
  assert.deepEqual(said('b1', 'status')!.words.slice(2), ['200']);
  assert.ok(said('b1', 'status')!.t >= end2, 'B (max_connections) is served by the main thread only');

  // The worker's bytes reach this thread's usage (every second), and its counters the stats.
  await waitFor(() => usage.of('con_aaaaaaaaaa').up >= 7 && usage.of('con_aaaaaaaaaa').down >= 7, 5000);
  await waitFor(() => (listeners.stats().front?.joined ?? 0) >= 2, 5000);
  assert.equal(listeners.stats().listeners, 2, 'the shared listener counted once');

  // A's password changes: the worker ends its tunnel (a reset), as the main thread would.
  credentials.replace('v2', [
    item('con_aaaaaaaaaa', portA, 'alice', 'looking-glass'),
    item('con_bbbbbbbbbb', portB, 'bob', 'builder', { max_connections: 5 }),
  ]);
  await listeners.apply();
  await waitFor(() => said('a1', 'closed') !== undefined, 3000);
  // Disabled: the worker refuses with the reason (answered while this thread is blocked).
  credentials.replace('v3', [
    item('con_aaaaaaaaaa', portA, 'alice', 'looking-glass', { state: 'disabled' }),
    item('con_bbbbbbbbbb', portB, 'bob', 'builder', { max_connections: 5 }),
  ]);
  await listeners.apply();
  ask('a2', portA, 'alice:looking-glass');
  const [, end3] = block(1000);
  await waitFor(() => said('a2', 'status') !== undefined, 5000);
  assert.deepEqual(said('a2', 'status')!.words.slice(2), ['403', 'disabled']);
  assert.ok(said('a2', 'status')!.t < end3, 'refused by the worker');

  // A gets a rate limit: no longer the worker's (its listener there closed), still served here.
  credentials.replace('v4', [
    item('con_aaaaaaaaaa', portA, 'alice', 'looking-glass', { rate_limit_down_kbps: 1000 }),
    item('con_bbbbbbbbbb', portB, 'bob', 'builder', { max_connections: 5 }),
  ]);
  await listeners.apply();
  ask('a3', portA, 'alice:looking-glass');
  const [, end4] = block(800);
  await waitFor(() => said('a3', 'status') !== undefined, 5000);
  assert.deepEqual(said('a3', 'status')!.words.slice(2), ['200']);
  assert.ok(said('a3', 'status')!.t >= end4, "a limited connection is the main thread's");

  // Back to unlimited: the worker accepts from it again (its old registration of the socket is gone: a
  // descriptor with the same number joins its engine without EEXIST) and serves it.
  credentials.replace('v5', [item('con_aaaaaaaaaa', portA, 'alice', 'looking-glass')]);
  await listeners.apply();
  ask('a5', portA, 'alice:looking-glass');
  const [, end5] = block(1000);
  await waitFor(() => said('a5', 'echo') !== undefined, 5000);
  assert.ok(said('a5', 'status')!.t < end5, 'served by the worker again');
  assert.equal(listeners.stats().listenFailures, 0, 'no listener failed on either thread');
  // Removed: both threads let go of the port, which can be bound again.
  credentials.replace('v6', []);
  await listeners.apply();
  ask('a4', portA, 'alice:looking-glass');
  await waitFor(() => said('a4', 'closed') !== undefined, 3000);
  assert.deepEqual(said('a4', 'closed')!.words.slice(2), ['ECONNREFUSED']);
  const again = net.createServer();
  await new Promise<void>((resolve, reject) => again.once('error', reject).listen(portA, '127.0.0.1', resolve));
  again.close();

  await listeners.close();
  closed = true;
  assert.equal(fatal(), undefined, 'the worker ended only when told to');
});

test("listener threads: a worker's SOCKS5 customer gets its UDP association on the main thread's relay, for as long as its control connection lives", {
  skip: !native,
}, async () => {
  const client = await startClient();
  const said = (id: string, what: string) => client.lines.filter((l) => l.words[0] === id && l.words[1] === what);
  const port = await freePort();
  const { credentials, usage, peers, listeners, fatal } = withWorker();
  peers.serveUdp((id, ip, p) => listeners.udpRegister(id, ip, p));
  let closed = false;
  cleanups.push(() => (closed ? undefined : listeners.close()));
  credentials.replace('v1', [item('con_ssssssssss', port, 'sam', 'socks-pass', { protocol: 'socks5' })]);
  await listeners.apply();

  // While this thread is blocked, the worker takes the control connection and answers UDP ASSOCIATE.
  client.proc.stdin.write(`udp u1 ${port} sam:socks-pass\n`);
  const [, end] = block(1500);
  await waitFor(() => said('u1', 'associated').length > 0, 5000);
  const assoc = said('u1', 'associated')[0]!;
  assert.deepEqual(assoc.words.slice(2), ['0'], 'UDP ASSOCIATE succeeded');
  assert.ok(assoc.t < end, 'answered while the main thread was blocked: by the worker');
  // The association is the main thread's relay's (its socket is bound here): a datagram through it comes back.
  await new Promise((r) => setTimeout(r, 300));
  client.proc.stdin.write('udp-again u1\n');
  await waitFor(() => said('u1', 'udp-echo').some((l) => l.words[2] === 'dgram-u1-2'), 5000);
  assert.ok(usage.of('con_ssssssssss').up > 0, "the datagrams are counted by the connection's meter here");
  // The control connection ends (the worker's socket): the association on this thread goes with it.
  client.proc.stdin.write('udp-end u1\n');
  await waitFor(() => said('u1', 'closed').length > 0, 5000);
  await new Promise((r) => setTimeout(r, 300));
  const [echoes, nones] = [said('u1', 'udp-echo').length, said('u1', 'udp-none').length];
  client.proc.stdin.write('udp-again u1\n');
  await waitFor(() => said('u1', 'udp-none').length > nones || said('u1', 'udp-echo').length > echoes, 5000);
  assert.equal(said('u1', 'udp-echo').length, echoes, 'no answer after the control connection closed');

  await listeners.close();
  closed = true;
  assert.equal(fatal(), undefined, 'the worker ended only when told to');
});

test("lanes: lane 0's word that the relay was lost reaches every lane's thread, with the time it was lost and lane 0's transport; and that lane 0 is back on UDP", async () => {
  // The main thread's side: every thread is told.
  const posted: ToListenerThread[][] = [];
  const setup = loopbackSetup(false);
  const threads = new ListenerThreads(
    3,
    setup,
    () => {
      const mine: ToListenerThread[] = [];
      posted.push(mine);
      return { post: (m) => mine.push(m), terminate: async () => undefined };
    },
    () => {},
    (e) => assert.fail(e),
    logger,
  );
  threads.relayLost(1_765_000_000_000, 'tcp');
  threads.udpAgain();
  assert.deepEqual(
    posted,
    [0, 1, 2].map(() => [{ t: 'relay-lost', at: 1_765_000_000_000, transport: 'tcp' }, { t: 'udp-again' }]),
  );
  // A thread's side: the message goes to its lane (serveListenerThread's relayLost), nothing else happens.
  const handlers: ((m: ToListenerThread) => void)[] = [];
  const sent: FromListenerThread[] = [];
  const port = {
    on: (_: string, h: (m: ToListenerThread) => void) => handlers.push(h),
    postMessage: (m: FromListenerThread) => sent.push(m),
  } as unknown as Parameters<typeof serveListenerThread>[0];
  const heard: unknown[] = [];
  const served = serveListenerThread(port, setup, logger, undefined, undefined, {
    relayLost: (at, transport) => heard.push([at, transport]),
    udpAgain: () => heard.push('udp-again'),
  });
  for (const h of handlers) h({ t: 'relay-lost', at: 42, transport: 'udp' });
  for (const h of handlers) h({ t: 'udp-again' });
  assert.deepEqual(heard, [[42, 'udp'], 'udp-again']);
  assert.deepEqual(
    sent.filter((m) => m.t !== 'report'),
    [],
  );
  await served.close();
});
