// Limits on the HTTP absolute-form path (meter on head, body and answer; holds), Principal.deny on
// both servers, absolute head/handshake deadlines, and the servers' counters.
import { it, after } from 'node:test';
import assert from 'node:assert/strict';
import * as net from 'node:net';
import { once } from 'node:events';
import {
  ConnectionMeter,
  createHttpProxy,
  createSocks5Server,
  proxyError,
  type ConnectionClosedEvent,
  type Dial,
  type Direction,
  type Meter,
  type Principal,
  type RequestFailedEvent,
  type ProxySocket,
} from '../src/index.js';
import {
  authenticate,
  basic,
  cleanup,
  connect,
  httpOrigin,
  onCleanup,
  PASS,
  readUntil,
  socksHandshake,
  socksRequest,
  tcpEcho,
  testDial,
  untilClose,
  USER,
} from './helpers.js';

after(cleanup);
const AUTH = `Proxy-Authorization: ${basic(USER, PASS)}\r\n`;

/** An origin answering every request with `answer` after reading its head; with null it neither answers nor reads on. */
async function rawOrigin(answer: Buffer | null): Promise<{ port: number; closed: () => number }> {
  let closed = 0;
  const live = new Set<net.Socket>();
  const s = net.createServer((c) => {
    live.add(c);
    c.on('error', () => {});
    c.on('close', () => {
      closed++;
      live.delete(c);
    });
    let buf = Buffer.alloc(0);
    const onData = (d: Buffer): void => {
      buf = Buffer.concat([buf, d]);
      if (!buf.includes('\r\n\r\n')) return;
      c.removeListener('data', onData);
      if (answer === null) return void c.pause();
      c.resume();
      c.end(answer);
    };
    c.on('data', onData);
  });
  s.listen(0, '127.0.0.1');
  await once(s, 'listening');
  // A paused socket never reads the FIN that would close it.
  onCleanup(
    () =>
      new Promise((r) => {
        for (const c of live) c.destroy();
        s.close(r);
      }),
  );
  return { port: (s.address() as net.AddressInfo).port, closed: () => closed };
}

/** Decodes a complete chunked body (no extensions, no trailers: what our proxy writes). */
function dechunk(b: Buffer): Buffer {
  const out: Buffer[] = [];
  let i = 0;
  for (;;) {
    const eol = b.indexOf('\r\n', i);
    const size = parseInt(b.toString('latin1', i, eol), 16);
    if (size === 0) return Buffer.concat(out);
    out.push(b.subarray(eol + 2, eol + 2 + size));
    i = eol + 2 + size + 2;
  }
}

function counting(wait = 0): Meter & { up: number; down: number; takes: number } {
  const m = {
    up: 0,
    down: 0,
    takes: 0,
    take(dir: Direction, n: number) {
      m.takes++;
      m[dir] += n;
      return wait;
    },
  };
  return m;
}

async function proxyWith(p: Partial<Principal>, o: { dial?: Dial } = {}) {
  const customers: ProxySocket[] = [];
  const targets: ProxySocket[] = [];
  const dial: Dial = async (r) => {
    const t = await (o.dial ?? testDial)(r);
    targets.push(t);
    return t;
  };
  const failed: RequestFailedEvent[] = [];
  const closed: ConnectionClosedEvent[] = [];
  const proxy = createHttpProxy({
    authenticate: async (u, pw, ctx) => {
      customers.push(ctx.socket);
      return u === USER && pw === PASS ? { principal: 'con_1', ...p } : null;
    },
    dial,
    headTimeoutMs: 500,
  });
  proxy.on('requestFailed', (e) => failed.push(e));
  proxy.on('connectionClosed', (e) => closed.push(e));
  onCleanup(() => proxy.close());
  return { port: (await proxy.listen(0)).port, proxy, customers, targets, failed, closed };
}

it('absolute-form: the meter is charged the request head and body (up) and every byte read from the origin (down)', async () => {
  const answer = Buffer.from('HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello');
  const origin = await rawOrigin(answer);
  const meter = counting();
  const { port } = await proxyWith({ meter });
  const head = `POST http://127.0.0.1:${origin.port}/x HTTP/1.1\r\nHost: x\r\n${AUTH}Content-Length: 11\r\nConnection: close\r\n\r\n`;
  const s = await connect(port);
  s.write(`${head}hello world`);
  const got = (await untilClose(s)).toString();
  assert.match(got, /^HTTP\/1\.1 200 [\s\S]*hello$/);
  assert.equal(meter.up, Buffer.byteLength(head) + 11);
  assert.equal(meter.down, answer.length);
});

it('absolute-form: a budget spent mid-answer ends customer and origin at once, with no failure event', async () => {
  const big = Buffer.concat([
    Buffer.from(`HTTP/1.1 200 OK\r\nContent-Length: ${8 << 20}\r\n\r\n`),
    Buffer.alloc(8 << 20, 0x61),
  ]);
  const origin = await rawOrigin(big);
  const meter = new ConnectionMeter({ budgetBytes: 500_000 });
  const { port, failed, closed } = await proxyWith({ meter });
  const s = await connect(port);
  s.write(`GET http://127.0.0.1:${origin.port}/big HTTP/1.1\r\n${AUTH}\r\n`);
  const got = await untilClose(s, 5000);
  assert.ok(got.length > 400_000 && got.length <= 500_000 + 64 * 1024, `received ${got.length}`);
  const deadline = Date.now() + 2000;
  while ((origin.closed() < 1 || closed.length < 1) && Date.now() < deadline)
    await new Promise((r) => setTimeout(r, 10));
  assert.equal(origin.closed(), 1);
  assert.deepEqual(failed, []);
  assert.equal(closed.length, 1, 'usage is still reported');
});

it('absolute-form: a customer that stops reading bounds what the proxy buffers, whatever the meter says', async () => {
  const big = Buffer.concat([
    Buffer.from(`HTTP/1.1 200 OK\r\nContent-Length: ${32 << 20}\r\n\r\n`),
    Buffer.alloc(32 << 20, 0x62),
  ]);
  const origin = await rawOrigin(big);
  const meter = counting(2);
  const { port, customers } = await proxyWith({ meter });
  const s = await connect(port);
  s.write(`GET http://127.0.0.1:${origin.port}/big HTTP/1.1\r\n${AUTH}\r\n`);
  s.pause();
  await new Promise((r) => setTimeout(r, 800));
  assert.ok(meter.takes > 5);
  assert.ok(customers[0]!.writableLength < 256 * 1024, `queued ${customers[0]!.writableLength}`);
  s.destroy();
});

it('absolute-form: an origin that stops reading the body bounds the upload buffered, whatever the meter says', async () => {
  const origin = await rawOrigin(null);
  const meter = counting(2);
  const { port, targets } = await proxyWith({ meter });
  const s = await connect(port);
  const size = 64 << 20;
  s.write(`POST http://127.0.0.1:${origin.port}/up HTTP/1.1\r\n${AUTH}Content-Length: ${size}\r\n\r\n`);
  const chunk = Buffer.alloc(1 << 20);
  let sent = 0;
  const writer = (async () => {
    while (sent < size && !s.destroyed) {
      sent += chunk.length;
      if (!s.write(chunk)) await Promise.race([once(s, 'drain'), once(s, 'close')]);
    }
  })();
  await new Promise((r) => setTimeout(r, 800));
  assert.ok(meter.takes > 5);
  assert.ok(targets[0]!.writableLength < 512 * 1024, `queued ${targets[0]!.writableLength} upstream`);
  s.destroy();
  await writer;
});

it('absolute-form: a pipelined request the meter still held when the answer came is kept', async () => {
  const origin = await httpOrigin();
  const meter = counting(3);
  const { port } = await proxyWith({ meter });
  const s = await connect(port);
  const req = (path: string, body: string, close = ''): string =>
    `POST http://127.0.0.1:${origin}${path} HTTP/1.1\r\nHost: x\r\n${AUTH}${close}Content-Length: ${body.length}\r\n\r\n${body}`;
  const second = 'b'.repeat(200_000);
  s.write(req('/one', 'a'.repeat(10)) + req('/two', second, 'Connection: close\r\n'));
  const got = (await untilClose(s, 10_000)).toString();
  assert.ok(got.includes('"url":"/one"'));
  assert.ok(got.includes(`"body":"${second}"`), 'second request intact');
});

it('absolute-form: an origin FIN right behind the answer waits for the bytes the meter still holds', async () => {
  const body = Buffer.alloc(300_000, 0x63);
  for (const framed of [true, false]) {
    const head = framed ? `HTTP/1.1 200 OK\r\nContent-Length: ${body.length}\r\n\r\n` : 'HTTP/1.1 200 OK\r\n\r\n';
    const origin = await rawOrigin(Buffer.concat([Buffer.from(head), body]));
    const { port, failed } = await proxyWith({ meter: counting(3) });
    const s = await connect(port);
    s.write(`GET http://127.0.0.1:${origin.port}/ HTTP/1.1\r\n${AUTH}Connection: close\r\n\r\n`);
    const got = await untilClose(s, 5000);
    const start = got.indexOf('\r\n\r\n') + 4;
    // Close-delimited answers go to an HTTP/1.1 customer chunked; compare the decoded size.
    const rest = got.subarray(start);
    const n = framed ? rest.length : dechunk(rest).length;
    assert.equal(n, body.length, `framed=${framed}`);
    assert.deepEqual(failed, []);
  }
});

it('HTTP deny: the error status, its code and reason headers, then close; counted; no usage event', async () => {
  const cases: Array<[Principal['deny'], number, RegExp]> = [
    [proxyError('PP_ERR_PROXY_ACCESS_DENIED', { reason: 'bandwidth' }), 403, /X-PocketProxy-Reason: bandwidth\r\n/],
    [
      proxyError('PP_ERR_PROXY_ACCESS_DENIED', { reason: 'ex\r\nSet-Cookie: x' }),
      403,
      /X-PocketProxy-Reason: exSet-Cookiex\r\n/,
    ],
    [proxyError('PP_ERR_PROXY_TOO_MANY_CONNECTIONS', { limit: 3 }), 503, /^(?![\s\S]*X-PocketProxy-Reason)/],
  ];
  const echo = await tcpEcho();
  for (const [deny, status, extra] of cases) {
    const { port, proxy, failed, closed } = await proxyWith({ deny });
    for (const req of [
      `CONNECT 127.0.0.1:${echo} HTTP/1.1\r\n${AUTH}\r\n`,
      `GET http://127.0.0.1:${echo}/ HTTP/1.1\r\n${AUTH}\r\n`,
    ]) {
      const s = await connect(port);
      s.write(req);
      const res = (await untilClose(s, 3000)).toString('latin1');
      assert.match(res, new RegExp(`^HTTP/1\\.1 ${status} `));
      assert.match(res, new RegExp(`X-PocketProxy-Error: ${deny!.code}\r\n`));
      assert.match(res, extra);
    }
    assert.equal(proxy.stats.denied, 2);
    assert.deepEqual(
      failed.map((f) => [f.code, f.principal]),
      [
        [deny!.code, 'con_1'],
        [deny!.code, 'con_1'],
      ],
    );
    await new Promise((r) => setTimeout(r, 50));
    assert.deepEqual(closed, []);
  }
});

it('SOCKS5 deny: authentication succeeds, the request gets 0x02 / 0x05, then close; counted', async () => {
  const echo = await tcpEcho();
  for (const [deny, rep] of [
    [proxyError('PP_ERR_PROXY_ACCESS_DENIED', { reason: 'expired' }), 0x02],
    [proxyError('PP_ERR_PROXY_TOO_MANY_CONNECTIONS', { limit: 1 }), 0x05],
  ] as const) {
    const socks = createSocks5Server({
      authenticate: async (u, p) => (u === USER && p === PASS ? { principal: 'con_1', deny } : null),
      dial: testDial,
    });
    onCleanup(() => socks.close());
    const port = (await socks.listen(0)).port;
    for (const cmd of [1, 3]) {
      const r = await socksHandshake(port, 'ok', socksRequest(cmd, '127.0.0.1', cmd === 1 ? echo : 0));
      assert.equal(r.auth![1], 0x00, 'RFC 1929 status: success');
      assert.equal(r.reply![1], rep);
      await untilClose(r.s);
    }
    assert.equal(socks.stats.denied, 2);
  }
});

it('HTTP head deadline is absolute: a client trickling one byte every 100 ms gets 408 at the deadline; a silent one is just closed', async () => {
  const { port, proxy } = await proxyWith({});
  const trickle = await connect(port);
  const t0 = Date.now();
  const head = `GET http://a/ HTTP/1.1\r\nX-Long: ${'a'.repeat(100)}`;
  let i = 0;
  const timer = setInterval(() => {
    if (!trickle.destroyed) trickle.write(head[i++ % head.length]!);
  }, 100);
  onCleanup(() => clearInterval(timer));
  const res = (await untilClose(trickle, 5000)).toString();
  clearInterval(timer);
  assert.match(res, /^HTTP\/1\.1 408 /);
  assert.ok(Date.now() - t0 < 1500, `closed after ${Date.now() - t0} ms`);
  const silent = await connect(port);
  assert.equal((await untilClose(silent, 3000)).length, 0);
  assert.equal(proxy.stats.handshakeTimeouts, 2);
});

it('HTTP keep-alive: the next head deadline counts from its first byte, not from the previous answer', async () => {
  const origin = await httpOrigin();
  const { port } = await proxyWith({});
  const s = await connect(port);
  s.write(`GET http://127.0.0.1:${origin}/a HTTP/1.1\r\n${AUTH}\r\n`);
  await readUntil(s, (b) => b.toString().includes('"url":"/a"'));
  await new Promise((r) => setTimeout(r, 700)); // longer than headTimeoutMs, shorter than keep-alive
  assert.equal(s.destroyed, false);
  s.write('GET http://127.0.0.1/b HTT');
  const t0 = Date.now();
  const res = (await untilClose(s, 3000)).toString();
  assert.match(res, /HTTP\/1\.1 408 /);
  assert.ok(Date.now() - t0 >= 400 && Date.now() - t0 < 1500, `${Date.now() - t0} ms`);
});

it('SOCKS5 handshake deadline is absolute: trickled greeting and credentials are cut at the deadline', async () => {
  const socks = createSocks5Server({ authenticate, dial: testDial, handshakeTimeoutMs: 500 });
  onCleanup(() => socks.close());
  const port = (await socks.listen(0)).port;
  const s = await connect(port);
  const bytes = [5, 1, 2, 1, USER.length, ...Buffer.from(USER), PASS.length, ...Buffer.from(PASS)];
  let i = 0;
  const t0 = Date.now();
  const timer = setInterval(() => {
    if (!s.destroyed && i < bytes.length) s.write(Buffer.from([bytes[i++]!]));
  }, 60);
  onCleanup(() => clearInterval(timer));
  await untilClose(s, 5000);
  clearInterval(timer);
  assert.ok(Date.now() - t0 < 1200, `closed after ${Date.now() - t0} ms`);
  assert.ok(i < bytes.length, 'closed before the trickle finished');
  assert.equal(socks.stats.handshakeTimeouts, 1);
});

it('counts wrong credentials on both servers, but not a missing Proxy-Authorization', async () => {
  const { port, proxy } = await proxyWith({});
  for (const h of [`Proxy-Authorization: ${basic(USER, 'bad')}\r\n`, 'Proxy-Authorization: Basic !!\r\n', '']) {
    const s = await connect(port);
    s.write(`CONNECT 127.0.0.1:1 HTTP/1.1\r\n${h}\r\n`);
    assert.match((await untilClose(s)).toString(), /^HTTP\/1\.1 407 /);
  }
  assert.equal(proxy.stats.authFailures, 2);
  const socks = createSocks5Server({ authenticate, dial: testDial });
  onCleanup(() => socks.close());
  const r = await socksHandshake((await socks.listen(0)).port, 'wrong', socksRequest(1, '127.0.0.1', 1));
  assert.equal(r.auth![1], 1);
  assert.equal(socks.stats.authFailures, 1);
});
