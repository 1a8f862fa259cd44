// lean/handoff.ts with the real native engine (@pocketproxy/tun SpliceEngine), through the real
// HTTP CONNECT and SOCKS5 servers on LeanSockets: what changes for the proxy when a tunnel leaves
// JS must be nothing it can see. The meter counts every byte (within a second, and exactly at the
// end); the servers' destroy() still revokes (with a reset when asked); a budget set after the
// handoff still ends the tunnel; a limited meter keeps the tunnel in JS.
import { it, after } from 'node:test';
import assert from 'node:assert/strict';
import * as net from 'node:net';
import { once } from 'node:events';
import { randomBytes } from 'node:crypto';
import { SpliceEngine } from '@pocketproxy/tun';
import {
  ConnectionMeter,
  createHandoff,
  createHttpProxy,
  createSocks5Server,
  LeanSocket,
  type HandoffStats,
  type ProxySocket,
} from '../src/index.js';
import {
  basic,
  cleanup,
  connect,
  onCleanup,
  PASS,
  readUntil,
  socksHandshake,
  socksRequest,
  testDial,
  USER,
  closeOf,
  within,
  leanDial,
} from './helpers.js';

after(cleanup);
const engine = new SpliceEngine();
after(() => engine.close());
const AUTH = `Proxy-Authorization: ${basic(USER, PASS)}\r\n`;

/** A target that records what it got and answers `answer` once the customer's FIN arrived. */
async function target(answer: Buffer): Promise<{ port: number; got: Promise<Buffer>; sockets: net.Socket[] }> {
  const sockets: net.Socket[] = [];
  let resolve!: (b: Buffer) => void;
  const got = new Promise<Buffer>((r) => (resolve = r));
  const s = net.createServer({ allowHalfOpen: true }, (c) => {
    sockets.push(c);
    c.on('error', () => {});
    const chunks: Buffer[] = [];
    c.on('data', (d) => chunks.push(d));
    c.on('end', () => {
      resolve(Buffer.concat(chunks));
      c.end(answer);
    });
  });
  s.listen(0, '127.0.0.1');
  await once(s, 'listening');
  onCleanup(
    () =>
      new Promise((r) => {
        for (const c of sockets) c.destroy();
        s.close(r);
      }),
  );
  return { port: (s.address() as net.AddressInfo).port, got, sockets };
}

function proxy(kind: 'http' | 'socks5', meter: ConnectionMeter, stats: HandoffStats, idleTimeoutMs = 0) {
  const handoff = createHandoff(engine, stats);
  const authenticate = async (u: string, p: string) =>
    u === USER && p === PASS ? { principal: 'con_alice', meter } : null;
  const common = { authenticate, dial: leanDial, lean: true, handoff, idleTimeoutMs };
  const p =
    kind === 'http' ? createHttpProxy({ ...common }) : createSocks5Server({ ...common, handshakeTimeoutMs: 3000 });
  const accepted: ProxySocket[] = [];
  p.server.on('connection', (s: ProxySocket) => accepted.push(s));
  onCleanup(() => p.close());
  return { p, accepted };
}

async function open(kind: 'http' | 'socks5', port: number, targetPort: number): Promise<net.Socket> {
  if (kind === 'socks5') {
    const { s, reply } = await socksHandshake(port, 'ok', socksRequest(1, '127.0.0.1', targetPort));
    s.on('error', () => {});
    assert.equal(reply?.[1], 0);
    return s;
  }
  const c = await connect(port);
  c.on('error', () => {});
  c.write(`CONNECT 127.0.0.1:${targetPort} HTTP/1.1\r\nHost: 127.0.0.1:${targetPort}\r\n${AUTH}\r\n`);
  const head = await readUntil(c, (b) => b.includes('\r\n\r\n'));
  assert.match(head.toString(), /^HTTP\/1\.1 200/);
  return c;
}

const listenPort = async (p: {
  listen(port: number, host: string): Promise<unknown>;
  server: { address(): unknown };
}) => {
  await p.listen(0, '127.0.0.1');
  return (p.server.address() as net.AddressInfo).port;
};

for (const kind of ['http', 'socks5'] as const) {
  it(`handoff (${kind}): a tunnel of an unlimited connection leaves JS; bytes whole both ways; the meter counts every byte; close once per socket`, async () => {
    const meter = new ConnectionMeter();
    const stats = { handedOff: 0, declined: 0 };
    const { p, accepted } = proxy(kind, meter, stats);
    const port = await listenPort(p);
    const up = randomBytes(300_000);
    const down = randomBytes(2_000_000);
    const t = await target(down);
    const c = await open(kind, port, t.port);
    const chunks: Buffer[] = [];
    c.on('data', (d) => chunks.push(d));
    const ended = once(c, 'end');
    const server = accepted[0]!;
    assert.ok(server instanceof LeanSocket);
    let closes = 0;
    server.on('close', () => closes++);
    c.end(up);
    assert.deepEqual(await t.got, up);
    await ended;
    assert.deepEqual(Buffer.concat(chunks), down);
    c.destroy();
    for (let i = 0; i < 100 && closes === 0; i++) await new Promise((r) => setTimeout(r, 10));
    assert.equal(closes, 1);
    assert.equal(stats.handedOff, 1);
    assert.equal(meter.used, up.length + down.length, 'every relayed byte, exactly');
    assert.ok(server.bytesRead >= up.length && server.bytesWritten >= down.length);
  });
}

it('handoff: the server revokes (resetAndDestroy on the customer socket): the customer gets a reset, the target a close', async () => {
  const stats = { handedOff: 0, declined: 0 };
  const { p, accepted } = proxy('http', new ConnectionMeter(), stats);
  const port = await listenPort(p);
  const t = await target(Buffer.from('never'));
  const c = await open('http', port, t.port);
  c.write('hello');
  for (let i = 0; i < 200 && t.sockets.length === 0; i++) await new Promise((r) => setTimeout(r, 5));
  const err = once(c, 'error');
  const targetClosed = once(t.sockets[0]!, 'close');
  assert.equal(stats.handedOff, 1);
  accepted[0]!.resetAndDestroy();
  const [e] = (await err) as [NodeJS.ErrnoException];
  assert.equal(e.code, 'ECONNRESET');
  await targetClosed;
});

/**
 * A handed-off tunnel of `kind` whose meter `change` limits: the customer keeps writing `chunk`-byte
 * writes every 20 ms, and the tunnel must end within the engine's report interval.
 */
async function limitedMidway(kind: 'http' | 'socks5', change: (m: ConnectionMeter) => void, chunk: number) {
  const meter = new ConnectionMeter();
  const stats = { handedOff: 0, declined: 0 };
  const { p } = proxy(kind, meter, stats);
  const port = await listenPort(p);
  const t = await target(Buffer.alloc(0));
  const c = await open(kind, port, t.port);
  assert.equal(stats.handedOff, 1);
  change(meter);
  const closed = closeOf(c);
  const t0 = Date.now();
  const timer = setInterval(() => c.write(Buffer.alloc(chunk)), 20);
  await within(closed, 5000, 'the tunnel ended').finally(() => clearInterval(timer));
  assert.ok(Date.now() - t0 < 3000, 'ended within the report interval');
  return { meter, stats, port, targetPort: t.port };
}

it('handoff: a budget set after the handoff ends the tunnel at the next report', async () => {
  const { meter } = await limitedMidway('socks5', (m) => m.setBudget(100_000), 20_000);
  assert.ok(meter.exhausted);
});

it('handoff: a rate limit set after the handoff ends the tunnel at the next report; the next tunnel runs limited in JS', async () => {
  const { stats, port, targetPort } = await limitedMidway('http', (m) => m.setRates({ downKbps: 8_000 }), 1000);
  const again = await open('http', port, targetPort);
  assert.deepEqual(stats, { handedOff: 1, declined: 1 });
  again.destroy();
});

it('handoff: a rate-limited connection stays in the JS pump (declined) and still works', async () => {
  const meter = new ConnectionMeter({ downKbps: 100_000 });
  const stats = { handedOff: 0, declined: 0 };
  const { p } = proxy('http', meter, stats);
  const port = await listenPort(p);
  const t = await target(Buffer.from('answer'));
  const c = await open('http', port, t.port);
  const chunks: Buffer[] = [];
  c.on('data', (d) => chunks.push(d));
  const ended = once(c, 'end');
  c.end('q');
  await ended;
  assert.equal(Buffer.concat(chunks).toString(), 'answer');
  assert.deepEqual(stats, { handedOff: 0, declined: 1 });
  assert.equal(meter.used, 7);
});

it('handoff: the idle timeout closes a handed-off tunnel and counts it in the server stats', async () => {
  const stats = { handedOff: 0, declined: 0 };
  const { p } = proxy('http', new ConnectionMeter(), stats, 300);
  const port = await listenPort(p);
  const t = await target(Buffer.alloc(0));
  const c = await open('http', port, t.port);
  const t0 = Date.now();
  await within(closeOf(c), 5000, 'the idle close');
  assert.ok(Date.now() - t0 < 3000);
  assert.equal(stats.handedOff, 1);
  assert.equal(p.stats.idleClosed, 1);
});

it('handoff: without the engine (node:net sockets) nothing is taken', async () => {
  const stats = { handedOff: 0, declined: 0 };
  const handoff = createHandoff(engine, stats);
  const p = createHttpProxy({
    authenticate: async () => ({ principal: 'x' }),
    dial: testDial,
    lean: false,
    handoff,
  });
  onCleanup(() => p.close());
  const port = await listenPort(p);
  const t = await target(Buffer.from('ok'));
  const c = await open('http', port, t.port);
  const ended = once(c, 'end');
  c.end();
  await ended;
  assert.deepEqual(stats, { handedOff: 0, declined: 1 });
});
