// An absolute-form answer's body lent to the native engine (lean/handoff.ts BodyHandoff over
// @pocketproxy/tun SpliceEngine.lend), through the real HTTP proxy on LeanSockets: a body of known
// length (>= LEND_MIN_BYTES after the first read) moves origin -> customer in the kernel while the
// customer's keep-alive connection stays in JS for its next request. The customer must not be able to
// tell: bytes whole and in order, pipelined requests answered after it, a body the origin cuts short
// cut for the customer too (never a hang), the meter charged every byte, nothing left in the engine.
import { it, after } from 'node:test';
import assert from 'node:assert/strict';
import * as net from 'node:net';
import { once } from 'node:events';
import { readdirSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { SpliceEngine } from '@pocketproxy/tun';
import {
  ConnectionMeter,
  createHandoff,
  createHttpProxy,
  type HandoffStats,
  type Meter,
  type ProxySocket,
} from '../src/index.js';
import { LEND_MIN_BYTES } from '../src/http/forward.js';
import {
  basic,
  cleanup,
  connect,
  countingMeter,
  leanDial,
  listenTracked,
  onCleanup,
  PASS,
  until,
  USER,
} from './helpers.js';

after(cleanup);
const engine = new SpliceEngine();
after(() => engine.close());
const AUTH = `Proxy-Authorization: ${basic(USER, PASS)}\r\n`;

/** Deterministic body bytes for /bytes?n=N (so the customer's copy can be checked without the origin's). */
function body(n: number): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = (i * 131 + (i >> 11)) & 0xff;
  return b;
}

/**
 * One answer per connection (the proxy asks `Connection: close`): /bytes?n=N -> N bytes with
 * Content-Length; /cut?n=N&send=M -> says N, sends M, closes; /slow?n=N -> N bytes, 64 KiB per 20 ms.
 * `responseBytes` counts every byte it wrote (heads and bodies); `closed` the connections that ended.
 */
async function origin(): Promise<{ port: number; responseBytes: () => number; closed: () => number }> {
  let written = 0;
  let closed = 0;
  const sockets = new Set<net.Socket>();
  const s = net.createServer((c) => {
    sockets.add(c);
    c.on('error', () => {});
    c.on('close', () => {
      sockets.delete(c);
      closed++;
    });
    let head = '';
    c.on('data', (d) => {
      head += d.toString('latin1');
      if (!head.includes('\r\n\r\n')) return;
      const url = new URL(head.split(' ')[1]!, 'http://x');
      const n = Number(url.searchParams.get('n'));
      const send = url.pathname === '/cut' ? Number(url.searchParams.get('send')) : n;
      const h = `HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: ${n}\r\n\r\n`;
      written += h.length + send;
      const b = body(send);
      if (url.pathname === '/slow') {
        c.write(h);
        let off = 0;
        const tick = setInterval(() => {
          if (c.destroyed) return clearInterval(tick);
          c.write(b.subarray(off, off + 65536));
          off += 65536;
          if (off >= b.length) clearInterval(tick);
        }, 20);
        return;
      }
      c.write(h);
      c.write(b, () => {
        if (url.pathname === '/cut') c.destroy();
      });
    });
  });
  const port = await listenTracked(s, sockets);
  return { port, responseBytes: () => written, closed: () => closed };
}

async function proxy(meter: Meter, stats: HandoffStats, idleTimeoutMs?: number) {
  const handoff = createHandoff(engine, stats);
  const authenticate = async (u: string, p: string) =>
    u === USER && p === PASS ? { principal: 'con_alice', meter } : null;
  const p = createHttpProxy({ authenticate, dial: leanDial, lean: true, handoff, idleTimeoutMs });
  const closedEvents: { bytesOut: number }[] = [];
  p.on('connectionClosed', (e: { bytesOut: number }) => closedEvents.push(e));
  const accepted: ProxySocket[] = [];
  p.server.on('connection', (s: ProxySocket) => accepted.push(s));
  onCleanup(() => p.close());
  await p.listen(0, '127.0.0.1');
  return { port: (p.server.address() as net.AddressInfo).port, closedEvents, accepted, close: () => p.close() };
}

const get = (port: number, path: string, close = false) =>
  `GET http://127.0.0.1:${port}${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n${AUTH}${close ? 'Connection: close\r\n' : ''}\r\n`;

/** Reads answers off `c` one after another: each head, then exactly its Content-Length body. */
function answers(c: net.Socket) {
  let buf = Buffer.alloc(0);
  let wake: (() => void) | null = null;
  let ended = false;
  c.on('data', (d) => {
    buf = Buffer.concat([buf, d]);
    wake?.();
  });
  c.on('close', () => {
    ended = true;
    wake?.();
  });
  const more = () => new Promise<void>((r) => (wake = r));
  return {
    async next(ms = 5000): Promise<{ head: string; body: Buffer } | null> {
      const deadline = Date.now() + ms;
      const wait = async () => {
        if (ended) return false;
        await Promise.race([more(), new Promise((r) => setTimeout(r, Math.max(1, deadline - Date.now())))]);
        if (Date.now() > deadline) throw new Error('no answer in time');
        return true;
      };
      let end = buf.indexOf('\r\n\r\n');
      while (end < 0) {
        if (!(await wait())) return null;
        end = buf.indexOf('\r\n\r\n');
      }
      const head = buf.subarray(0, end).toString('latin1');
      const len = Number(/content-length: (\d+)/i.exec(head)?.[1] ?? 0);
      while (buf.length < end + 4 + len) if (!(await wait())) return { head, body: buf.subarray(end + 4) };
      const b = buf.subarray(end + 4, end + 4 + len);
      buf = buf.subarray(end + 4 + len);
      return { head, body: b };
    },
    get closed() {
      return ended;
    },
  };
}

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const fds = () => readdirSync('/proc/self/fd').length;

it('keep-alive GETs: a long body leaves JS, the connection serves the next request; bytes whole, every byte charged, the customer socket counts them', async () => {
  const o = await origin();
  const meter = countingMeter();
  const stats: HandoffStats = { handedOff: 0, declined: 0 };
  const { port, closedEvents } = await proxy(meter, stats);
  const fds0 = fds();
  const c = await connect(port);
  const a = answers(c);
  const sizes = [3_000_000, 2 * LEND_MIN_BYTES + 1000, 2_000, 1_500_000];
  for (const n of sizes) {
    c.write(get(o.port, `/bytes?n=${n}`));
    const r = await a.next();
    assert.ok(r, `an answer for ${n}`);
    assert.match(r.head, /^HTTP\/1\.1 200 OK/);
    assert.match(r.head, /Connection: keep-alive/i);
    assert.equal(r.body.length, n);
    assert.equal(sha(r.body), sha(body(n)), `body of ${n} intact`);
  }
  // The 2,000-byte answer stayed in JS; the others were lent.
  assert.equal(stats.bodiesLent, 3);
  assert.equal(stats.handedOff, 0);
  assert.equal(meter.down, o.responseBytes(), 'every byte the origin sent, charged once');
  c.end();
  await until(() => closedEvents.length === 1, 3000, 'connectionClosed');
  const total = sizes.reduce((x, y) => x + y, 0);
  assert.ok(closedEvents[0]!.bytesOut >= total, `bytesOut ${closedEvents[0]!.bytesOut} >= ${total}`);
  assert.ok(closedEvents[0]!.bytesOut < total + 4 * 200, 'heads counted once');
  await until(() => engine.stats().active === 0, 3000, 'engine empty');
  await until(() => o.closed() === sizes.length, 3000, 'every origin socket closed');
  await until(() => fds() <= fds0 + 2, 3000, `no fd left (${fds()} vs ${fds0})`);
});

it('pipelined GETs behind a lent body are answered after it, in order', async () => {
  const o = await origin();
  const stats: HandoffStats = { handedOff: 0, declined: 0 };
  const { port } = await proxy(countingMeter(), stats);
  const c = await connect(port);
  const a = answers(c);
  c.write(get(o.port, '/bytes?n=1000000') + get(o.port, '/bytes?n=300') + get(o.port, '/bytes?n=200000', true));
  for (const n of [1_000_000, 300, 200_000]) {
    const r = await a.next();
    assert.ok(r);
    assert.equal(sha(r.body), sha(body(n)), `answer ${n} whole and in order`);
  }
  await until(() => a.closed, 3000, 'closed after the last request');
  assert.equal(stats.bodiesLent, 2);
});

it('a body the origin cuts short is cut for the customer too: the connection ends, nothing hangs, the engine is empty', async () => {
  const o = await origin();
  const stats: HandoffStats = { handedOff: 0, declined: 0 };
  const { port } = await proxy(countingMeter(), stats);
  const c = await connect(port);
  c.on('error', () => {});
  const a = answers(c);
  c.write(get(o.port, '/cut?n=2000000&send=700000'));
  const r = await a.next();
  assert.ok(r);
  assert.ok(r.body.length < 2_000_000, 'not the whole body');
  assert.ok(a.closed, 'the customer connection ended');
  assert.equal(stats.bodiesLent, 1);
  await until(() => engine.stats().active === 0, 3000, 'engine empty');
});

it('a customer who leaves mid-body ends the transfer: the origin socket closes, the engine is empty', async () => {
  const o = await origin();
  const stats: HandoffStats = { handedOff: 0, declined: 0 };
  const { port, closedEvents } = await proxy(countingMeter(), stats);
  const c = await connect(port);
  c.write(get(o.port, '/slow?n=20000000'));
  let got = 0;
  await new Promise<void>((r) =>
    c.on('data', (d) => {
      got += d.length;
      if (got > 300_000) r();
    }),
  );
  assert.equal(stats.bodiesLent, 1);
  c.destroy();
  await until(() => closedEvents.length === 1, 3000, 'connectionClosed');
  await until(() => engine.stats().active === 0, 3000, 'engine empty');
  await until(() => o.closed() === 1, 3000, 'origin socket closed');
});

it('a limited meter keeps the body in JS, exact to the byte; a limit set during a lent body ends the connection', async () => {
  const o = await origin();
  const stats: HandoffStats = { handedOff: 0, declined: 0 };
  const limited = new ConnectionMeter({ budgetBytes: 50_000_000 });
  const { port } = await proxy(limited, stats);
  const c = await connect(port);
  const a = answers(c);
  c.write(get(o.port, '/bytes?n=1000000'));
  const r = await a.next();
  assert.ok(r);
  assert.equal(sha(r.body), sha(body(1_000_000)));
  assert.equal(stats.bodiesLent ?? 0, 0, 'not lent under a budget');
  c.destroy();

  const meter = new ConnectionMeter();
  const stats2: HandoffStats = { handedOff: 0, declined: 0 };
  const p2 = await proxy(meter, stats2);
  const c2 = await connect(p2.port);
  c2.on('error', () => {});
  const a2 = answers(c2);
  c2.write(get(o.port, '/slow?n=20000000'));
  await until(() => (stats2.bodiesLent ?? 0) === 1, 3000, 'lent');
  meter.setBudget(meter.used + 100_000);
  const r2 = await a2.next(8000);
  assert.ok(r2 && r2.body.length < 20_000_000, 'the body was cut');
  assert.ok(a2.closed);
  await until(() => engine.stats().active === 0, 3000, 'engine empty');
});

it('a customer who stops reading during a lent body holds it only until the idle limit: then the connection and the origin socket end', async () => {
  const o = await origin();
  const stats: HandoffStats = { handedOff: 0, declined: 0 };
  const { port, closedEvents } = await proxy(countingMeter(), stats, 1500);
  const c = await connect(port);
  c.on('error', () => {});
  let got = 0;
  c.on('data', (d) => {
    got += d.length;
    if (got > 200_000) c.pause(); // and never reads again: the socket buffers fill, the engine waits
  });
  c.write(get(o.port, '/bytes?n=50000000'));
  await until(() => (stats.bodiesLent ?? 0) === 1, 3000, 'lent');
  const t0 = Date.now();
  await until(() => closedEvents.length === 1, 6000, 'the proxy ends the connection');
  assert.ok(Date.now() - t0 >= 1000, 'not before the idle limit');
  assert.ok(got < 50_000_000);
  await until(() => engine.stats().active === 0, 3000, 'engine empty');
  await until(() => o.closed() === 1, 3000, 'origin socket closed');
});

it('after a lent body the customer socket has its idle timeout again: a customer that pipelined behind its last request and never closes is closed', async () => {
  const o = await origin();
  const stats: HandoffStats = { handedOff: 0, declined: 0 };
  const { port, closedEvents } = await proxy(countingMeter(), stats, 1500);
  // A customer that keeps its side open after the proxy's FIN.
  const c = net.connect({ port, host: '127.0.0.1', allowHalfOpen: true });
  await once(c, 'connect');
  c.on('error', () => {});
  const a = answers(c);
  // Its last request (Connection: close) with bytes behind it: the proxy half-closes and waits for its FIN.
  c.write(`${get(o.port, '/bytes?n=300000', true)}GET http://x/ HTTP/1.1\r\n`);
  const r = await a.next();
  assert.ok(r && r.body.length === 300_000);
  assert.equal(stats.bodiesLent, 1);
  await until(() => closedEvents.length === 1, 5000, 'closed at the idle limit, not held open');
});

it('a revocation during a lent body cuts the customer at once: a reset, the transfer ended, not the body', async () => {
  // As the agent revokes (apps/agent listeners.ts closeListener: `cut`, a reset on every open customer
  // socket, then the proxy closed) when a connection is deleted, disabled or its password changes. The
  // customer's TCP connection lives on in the engine's duplicate of its fd, so closing JS's socket alone
  // would leave the rest of the body flowing and the reset unsent.
  const o = await origin();
  const stats: HandoffStats = { handedOff: 0, declined: 0 };
  const { port, closedEvents, accepted, close } = await proxy(countingMeter(), stats);
  const c = await connect(port);
  let error: NodeJS.ErrnoException | undefined;
  c.on('error', (e) => {
    error = e;
  });
  let got = 0;
  let ended = false;
  c.on('data', (d) => {
    got += d.length;
  });
  c.on('close', () => {
    ended = true;
  });
  // 20 MB at 64 KiB per 20 ms: ~6 s if nothing cut it.
  c.write(get(o.port, '/slow?n=20000000'));
  await until(() => (stats.bodiesLent ?? 0) === 1 && got > 300_000, 3000, 'lent and flowing');
  const t0 = Date.now();
  assert.equal(accepted.length, 1);
  accepted[0]!.resetAndDestroy();
  await close();
  await until(() => ended, 1500, 'the customer connection ends within the second');
  assert.equal(error?.code, 'ECONNRESET', 'the customer sees a reset, as curl reports "Connection reset by peer"');
  const atCut = got;
  assert.ok(atCut < 20_000_000, 'the body was cut');
  assert.ok(Date.now() - t0 < 1500);
  await until(() => closedEvents.length === 1, 3000, 'connectionClosed');
  await until(() => engine.stats().active === 0, 3000, 'engine empty');
  await until(() => o.closed() === 1, 3000, 'origin socket closed');
  // Nothing more reached the customer after its connection ended.
  await new Promise((r) => setTimeout(r, 200));
  assert.equal(got, atCut);
});
