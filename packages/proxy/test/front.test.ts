// The HTTP front's own cases (http/front.ts over @pocketproxy/tun's SpliceEngine with its real
// listener and sockets). The proxy's whole HTTP suite runs through the front in front-matrix.test.ts;
// here: what a CONNECT joined in the engine counts, revocation and destroy at every stage, a customer
// that resets while JS decides, the next address after a refused one, the caps on unauthenticated
// connections, the head deadline, and random bytes and cuts from a hostile customer.
import { it, after } from 'node:test';
import assert from 'node:assert/strict';
import * as net from 'node:net';
import { once } from 'node:events';
import { randomBytes, randomInt } from 'node:crypto';
import { NOTSENT_MAX, floodingServer, notSentWhenStalled } from '@pocketproxy/testkit';
import { openTcpFd, SpliceEngine } from '@pocketproxy/tun';
import {
  createHttpProxy,
  createPolicyDialer,
  FrontConnection,
  type ConnectionClosedEvent,
  type Principal,
  type Resolve,
} from '../src/index.js';
import {
  basic,
  cleanup,
  closeOf,
  connect,
  onCleanup,
  PASS,
  readUntil,
  tcpEcho,
  untilClose,
  untilHead,
  USER,
  within,
  countingMeter,
  hostileCustomers,
  until,
  frontDial,
  segmentsIn,
  untilEnd,
  endingOrigin,
} from './helpers.js';

after(cleanup);
const engines: SpliceEngine[] = [];
after(() => {
  for (const e of engines) e.close();
});
const AUTH = `Proxy-Authorization: ${basic(USER, PASS)}\r\n`;

interface Setup {
  engine: SpliceEngine;
  port: number;
  conns: FrontConnection[];
  closed: ConnectionClosedEvent[];
  proxy: ReturnType<typeof createHttpProxy>;
}

async function front(
  o: {
    authenticate?: (u: string, p: string) => Promise<Principal | null>;
    resolve?: Resolve;
    headTimeoutMs?: number;
    idleTimeoutMs?: number;
    maxPerAddress?: number;
  } = {},
): Promise<Setup> {
  const engine = new SpliceEngine();
  engines.push(engine);
  engine.frontInit({ maxPerAddress: o.maxPerAddress ?? 64 });
  const dial = frontDial(o.resolve);
  const proxy = createHttpProxy({
    authenticate: o.authenticate ?? (async (u, p) => (u === USER && p === PASS ? { principal: 'con_a' } : null)),
    dial,
    lean: true,
    front: { engine },
    headTimeoutMs: o.headTimeoutMs ?? 10_000,
    ...(o.idleTimeoutMs !== undefined ? { idleTimeoutMs: o.idleTimeoutMs } : {}),
  });
  const conns: FrontConnection[] = [];
  const closed: ConnectionClosedEvent[] = [];
  proxy.server.on('connection', (c: unknown) => {
    if (c instanceof FrontConnection) conns.push(c);
  });
  proxy.on('connectionClosed', (e) => closed.push(e));
  const port = (await proxy.listen(0, '127.0.0.1')).port;
  onCleanup(() => proxy.close());
  return { engine, port, conns, closed, proxy };
}

it('a CONNECT is joined in the engine: the bytes behind the head go first, every byte is counted once, connectionClosed once', async () => {
  const echo = await tcpEcho();
  const meter = countingMeter();
  const f = await front({ authenticate: async () => ({ principal: 'con_a', meter }) });
  const s = await connect(f.port);
  const head = `CONNECT 127.0.0.1:${echo} HTTP/1.1\r\nHost: x\r\n${AUTH}\r\n`;
  s.write(`${head}early`);
  const got = await readUntil(s, (b) => b.includes('early'));
  assert.match(got.toString('latin1'), /^HTTP\/1\.1 200 Connection Established\r\n\r\nearly$/);
  s.write('more bytes');
  await readUntil(s, (b) => b.includes('more bytes'));
  const gone = closeOf(s);
  s.end();
  await within(gone, 3000, 'the tunnel closing after both FINs');
  await until(() => f.closed.length === 1, 3000, 'connectionClosed');
  const st = f.engine.frontStats();
  assert.equal(st.joined, 1);
  assert.equal(st.adopted, 0);
  const relayed = 'early'.length + 'more bytes'.length;
  assert.equal(meter.up, relayed);
  assert.equal(meter.down, relayed);
  assert.equal(f.closed[0]!.principal, 'con_a');
  assert.equal(f.closed[0]!.bytesIn, Buffer.byteLength(head) + relayed);
  assert.equal(f.closed[0]!.bytesOut, 'HTTP/1.1 200 Connection Established\r\n\r\n'.length + relayed);
  assert.equal(st.waiting, 0);
});

it('the sweep runs once a second while new tunnels keep joining: an idle tunnel ends at its idle timeout, a busy one’s usage is reported as it goes', async () => {
  // A regression: every joined tunnel restarted the engine's 1 s sweep, so under a steady stream of new
  // connections it never ran — no idle timeout, no usage until a tunnel ended.
  const echo = await tcpEcho();
  const meter = countingMeter();
  const f = await front({ idleTimeoutMs: 1500, authenticate: async () => ({ principal: 'con_a', meter }) });
  const tunnel = async () => {
    const s = await connect(f.port);
    s.write(`CONNECT 127.0.0.1:${echo} HTTP/1.1\r\n${AUTH}\r\n`);
    await untilHead(s);
    return s;
  };
  const idle = await tunnel();
  const idleSince = Date.now();
  const idleGone = closeOf(idle).then(() => Date.now() - idleSince);
  const busy = await tunnel();
  let stop = false;
  let churned = 0;
  const churn = (async () => {
    // A new tunnel every 150 ms, each ended at once: a join (and an end) several times a second.
    while (!stop) {
      const s = await tunnel();
      s.end();
      churned++;
      await new Promise((r) => setTimeout(r, 150));
    }
  })();
  const ticks = setInterval(() => busy.write('x'), 100);
  try {
    const idleMs = await within(idleGone, 6000, 'the idle tunnel ending while new tunnels keep joining');
    assert.ok(
      idleMs >= 1400 && idleMs <= 4500,
      `the idle tunnel ended after ${idleMs} ms (idle timeout 1500 ms, sweep 1 s)`,
    );
    // The busy tunnel is still open: what it moved so far was reported by the sweep, not at its end.
    await until(() => meter.up > 0, 3000, 'usage of the open tunnel reported');
    assert.ok(!busy.destroyed, 'the busy tunnel is open');
    assert.ok(churned >= 5, `tunnels joined meanwhile: ${churned}`);
  } finally {
    clearInterval(ticks);
    stop = true;
    await churn;
    busy.destroy();
  }
});

it("a download to a customer who stops reading leaves at most 512 KiB unsent in the customer's socket (TCP_NOTSENT_LOWAT on the listener), the rest behind the origin socket's window", async () => {
  const origin = await floodingServer('HTTP/1.1 200 OK\r\n\r\n');
  onCleanup(origin.close);
  const f = await front();
  const notsent = await notSentWhenStalled(
    f.port,
    `CONNECT 127.0.0.1:${origin.port} HTTP/1.1\r\n${AUTH}\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n`,
    origin,
  );
  assert.ok(notsent <= NOTSENT_MAX.front, `unsent in the customer's socket: ${notsent} bytes`);
});

it('revocation: resetAndDestroy of a joined tunnel resets the customer at once and closes it', async () => {
  const echo = await tcpEcho();
  const f = await front();
  const s = await connect(f.port);
  s.write(`CONNECT 127.0.0.1:${echo} HTTP/1.1\r\n${AUTH}\r\n`);
  await untilHead(s);
  s.write('x');
  await readUntil(s, (b) => b.toString().endsWith('x'));
  const c = f.conns[0]!;
  let err: NodeJS.ErrnoException | undefined;
  s.on('error', (e) => (err = e));
  const gone = closeOf(s);
  let closed = false;
  c.once('close', () => (closed = true));
  c.resetAndDestroy();
  assert.equal(closed, true, "the handle's close comes at once");
  assert.equal(c.destroyed, true);
  await within(gone, 2000, 'the customer seeing the reset');
  assert.equal(err?.code, 'ECONNRESET');
  assert.equal(f.proxy.connectionCount, 0);
});

/** A CONNECT whose credential check waits for `release()`: the connection is in JS's hands meanwhile. */
async function deciding(): Promise<{ f: Setup; s: net.Socket; release: () => void }> {
  const echo = await tcpEcho();
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const f = await front({
    authenticate: async () => {
      await gate;
      return { principal: 'con_a' };
    },
  });
  const s = await connect(f.port);
  s.write(`CONNECT 127.0.0.1:${echo} HTTP/1.1\r\n${AUTH}\r\n`);
  await until(() => f.conns.length === 1, 2000, 'the head reaching JS');
  return { f, s, release };
}

it('destroy while JS decides (a slow credential check): the customer is closed, the late decision changes nothing, nothing is left', async () => {
  const { f, s, release } = await deciding();
  const gone = untilClose(s);
  f.conns[0]!.destroy();
  assert.equal((await within(gone, 2000, 'the customer closed')).length, 0, 'no answer');
  release();
  await new Promise((r) => setTimeout(r, 50));
  const st = f.engine.frontStats();
  assert.equal(st.joined, 0);
  assert.equal(st.waiting, 0);
  assert.equal(f.engine.stats().active, 0);
});

it('a customer that resets while JS decides: its handle closes, the decision finds it gone, nothing is left', async () => {
  const { f, s, release } = await deciding();
  const c = f.conns[0]!;
  const handleClosed = new Promise((r) => c.once('close', r));
  s.resetAndDestroy();
  await within(handleClosed, 2000, "the handle's close after the customer's reset");
  release();
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(f.engine.frontStats().waiting, 0);
  assert.equal(f.engine.stats().active, 0);
  assert.equal(f.engine.frontStats().joined, 0);
});

it('a refused first address: the next one is connected; a name whose every address refuses gets the JS path’s 502', async () => {
  const echo = await tcpEcho();
  const f = await front({
    resolve: async (h) =>
      h === 'two.test'
        ? [
            { address: '127.0.0.2', family: 4 }, // nothing listens there: refused
            { address: '127.0.0.1', family: 4 },
          ]
        : [{ address: '127.0.0.2', family: 4 }],
  });
  const s = await connect(f.port);
  s.write(`CONNECT two.test:${echo} HTTP/1.1\r\n${AUTH}\r\n`);
  assert.match((await untilHead(s)).toString(), /^HTTP\/1\.1 200 /);
  s.write('via the second');
  await readUntil(s, (b) => b.includes('via the second'));
  const s2 = await connect(f.port);
  s2.write(`CONNECT one.test:${echo} HTTP/1.1\r\n${AUTH}\r\n`);
  const res = (await within(untilClose(s2), 3000, 'the 502 and close')).toString();
  assert.match(res, /^HTTP\/1\.1 502 /);
  assert.match(res, /X-PocketProxy-Error: PP_ERR_PROXY_TARGET_REFUSED/);
  const st = f.engine.frontStats();
  assert.equal(st.joined, 1);
  assert.equal(st.answered, 1);
});

it('unauthenticated connections are capped per address at accept, before JS hears of them', async () => {
  const f = await front({ maxPerAddress: 2 });
  const a = await connect(f.port);
  const b = await connect(f.port);
  // The listener defers accept until bytes come: these send one byte each, not a head.
  a.write('C');
  b.write('C');
  await until(() => f.engine.frontStats().unauthenticated === 2, 2000, 'two connections reading their heads');
  const c = await connect(f.port);
  const cGone = untilClose(c);
  c.write('C');
  assert.equal((await within(cGone, 2000, 'the third closed at accept')).length, 0);
  const st = f.engine.frontStats();
  assert.equal(st.refusedPerAddress, 1);
  assert.equal(f.conns.length, 0, 'JS heard of none of them');
});

it('the caps are per listen address: a customer who filled one device’s slots still reaches another device on the same engine', async () => {
  const engine = new SpliceEngine();
  engines.push(engine);
  engine.frontInit({ maxPerAddress: 1 });
  const dial = createPolicyDialer({ policy: { allowLoopback: true }, lean: true, openFd: (f, l) => openTcpFd(f, l) });
  const auth = async (): Promise<Principal> => ({ principal: 'con_a' });
  const ports: number[] = [];
  for (const host of ['127.0.0.1', '127.0.0.2']) {
    const p = createHttpProxy({ authenticate: auth, dial, lean: true, front: { engine } });
    ports.push((await p.listen(0, host)).port);
    onCleanup(() => p.close());
  }
  const a = await connect(ports[0]!, '127.0.0.1');
  a.write('C');
  await until(() => engine.frontStats().unauthenticated === 1, 2000, 'one head slot taken');
  const refused = await connect(ports[0]!, '127.0.0.1');
  const gone = untilClose(refused);
  refused.write('C');
  await within(gone, 2000, 'refused on the full device');
  const b = await connect(ports[1]!, '127.0.0.2');
  b.write('C');
  await until(() => engine.frontStats().unauthenticated === 2, 2000, 'the other device’s slot');
  assert.equal(engine.frontStats().refusedPerAddress, 1);
});

it('head deadline: a partial head gets 408 from the JS path’s answer; a connection that sent nothing is closed without one', async () => {
  const f = await front({ headTimeoutMs: 300 });
  const partial = await connect(f.port);
  partial.write('CONNECT 127.0.0.1:1 HTTP/1.1\r\n');
  const res = (await within(untilClose(partial), 3000, 'the 408')).toString();
  assert.match(res, /^HTTP\/1\.1 408 /);
  assert.match(res, /PP_ERR_PROXY_HANDSHAKE_TIMEOUT/);
  assert.equal(f.proxy.stats.handshakeTimeouts, 1);
  // TCP_DEFER_ACCEPT holds a silent connection in the kernel (about a second), then the engine's
  // deadline runs from its accept: closed, no answer, counted by the engine.
  const silent = await connect(f.port);
  assert.equal((await within(untilClose(silent, 5000), 5000, 'the silent close')).length, 0);
  assert.equal(f.engine.frontStats().headTimeouts, 1);
});

it('a hostile customer: random bytes, random cuts and resets at every stage leave nothing behind, and the front still serves', async () => {
  const echo = await tcpEcho();
  const f = await front({ headTimeoutMs: 500 });
  const heads = [
    `CONNECT 127.0.0.1:${echo} HTTP/1.1\r\n${AUTH}\r\n`,
    `CONNECT 127.0.0.1:${echo} HTTP/1.1\r\nProxy-Authorization: Basic !!\r\n\r\n`,
    `GET http://127.0.0.1:${echo}/ HTTP/1.1\r\n${AUTH}\r\n`,
    `CONNECT [::1 HTTP/1.1\r\n\r\n`,
    'CONNECT\r\n\r\n',
  ];
  await hostileCustomers(f.port, 120, () => {
    const kind = randomInt(4);
    let bytes: Buffer;
    if (kind === 0) bytes = randomBytes(randomInt(1, 20_000));
    else if (kind === 1)
      bytes = Buffer.concat([Buffer.from(heads[randomInt(heads.length)]!), randomBytes(randomInt(64))]);
    else if (kind === 2) bytes = Buffer.from(heads[randomInt(heads.length)]!.slice(0, randomInt(1, 30)));
    else bytes = Buffer.concat([randomBytes(randomInt(8)), Buffer.from('\r\n\r\n'), randomBytes(randomInt(8))]);
    return bytes;
  });
  await until(() => f.engine.frontStats().waiting === 0 && f.proxy.connectionCount === 0, 8000, 'nothing left');
  assert.equal(f.engine.frontStats().unauthenticated, 0);
  assert.equal(f.engine.stats().active, 0);
  const s = await connect(f.port);
  s.write(`CONNECT 127.0.0.1:${echo} HTTP/1.1\r\n${AUTH}\r\nstill`);
  await readUntil(s, (b) => b.includes('still'));
});

it('close(): every connection of the front ends, whatever its stage, and close resolves', async () => {
  const echo = await tcpEcho();
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  let n = 0;
  const f = await front({
    authenticate: async () => {
      if (n++ === 1) await gate;
      return { principal: 'con_a' };
    },
  });
  const joined = await connect(f.port);
  joined.write(`CONNECT 127.0.0.1:${echo} HTTP/1.1\r\n${AUTH}\r\n`);
  await untilHead(joined);
  const deciding = await connect(f.port);
  deciding.write(`CONNECT 127.0.0.1:${echo} HTTP/1.1\r\n${AUTH}\r\n`);
  const reading = await connect(f.port);
  reading.write('CONN');
  await until(() => f.conns.length === 2 && f.engine.frontStats().unauthenticated === 1, 2000, 'three stages');
  const all = [joined, deciding, reading].map((s) => within(closeOf(s), 3000, 'closed by close()'));
  await within(f.proxy.close(), 3000, 'close()');
  await Promise.all(all);
  release();
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(f.engine.frontStats().waiting, 0);
  assert.equal(f.engine.stats().active, 0);
});

/** An origin that records the request head it reads and answers it with `answer` (then closes, or not). */
async function rawOrigin(answer: Buffer, close = true): Promise<{ port: number; heads: string[] }> {
  const heads: string[] = [];
  const srv = net.createServer((c) => {
    c.on('error', () => {});
    let buf = '';
    c.on('data', (d) => {
      buf += d.toString('latin1');
      if (!buf.includes('\r\n\r\n')) return;
      heads.push(buf);
      buf = '';
      if (close) c.end(answer);
      else c.write(answer);
    });
  });
  srv.listen(0, '127.0.0.1');
  await new Promise((r) => srv.once('listening', r));
  onCleanup(() => new Promise((r) => srv.close(r)));
  return { port: (srv.address() as net.AddressInfo).port, heads };
}

/** One request through the front; the answer and the segments the customer's kernel got (read in CLOSE_WAIT). */
async function segmentsOf(port: number, request: string): Promise<{ got: Buffer; segs: number; dataSegs: number }> {
  const s = new net.Socket({ allowHalfOpen: true });
  s.connect(port, '127.0.0.1');
  await once(s, 'connect');
  onCleanup(() => s.destroy());
  const done = untilEnd(s);
  s.write(request);
  const got = await within(done, 5000, 'the answer and its FIN');
  const seen = segmentsIn(s);
  s.destroy();
  return { got, ...seen };
}

it('the engine sends an answer’s last bytes and the FIN in one segment (SPLICE_F_MORE / MSG_MORE), for a CONNECT and a last GET', async () => {
  const f = await front();
  const req = 'GET / HTTP/1.1\r\nHost: t\r\n\r\n';
  const tunnelled = Buffer.from(`HTTP/1.1 200 OK\r\nContent-Length: 1024\r\n\r\n${'x'.repeat(1024)}`);
  const tunnel = (port: number) => `CONNECT 127.0.0.1:${port} HTTP/1.1\r\n${AUTH}\r\n${req}`;
  // A last GET: with a Content-Length the whole answer is in hand at once (its end is known); without
  // one, and the origin's FIN 50 ms later, the FIN can only follow on its own.
  const body = 'y'.repeat(1024);
  const get = (port: number) => `GET http://127.0.0.1:${port}/ HTTP/1.1\r\nHost: t\r\n${AUTH}Connection: close\r\n\r\n`;
  const cases = [
    ['CONNECT', tunnel, tunnelled, await endingOrigin(tunnelled), await endingOrigin(tunnelled, 50)],
    [
      'GET',
      get,
      Buffer.from(body),
      await endingOrigin(Buffer.from(`HTTP/1.1 200 OK\r\nContent-Length: 1024\r\n\r\n${body}`), 50),
      await endingOrigin(Buffer.from(`HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n${body}`), 50),
    ],
  ] as const;
  // Several rounds: the FIN must ride with the bytes every time, not by luck of scheduling.
  for (const [what, request, tail, together, apart] of cases)
    for (let round = 0; round < 3; round++) {
      const a = await segmentsOf(f.port, request(together));
      const b = await segmentsOf(f.port, request(apart));
      for (const x of [a, b])
        assert.ok(x.got.subarray(x.got.length - tail.length).equals(tail), `${what}: the answer arrives whole`);
      assert.equal(a.dataSegs, b.dataSegs, `${what}, round ${round}: data segments ${a.dataSegs} vs ${b.dataSegs}`);
      assert.equal(
        a.segs,
        b.segs - 1,
        `${what}, round ${round}: segments in ${a.segs} with the FIN on the bytes, ${b.segs} apart`,
      );
    }
  assert.equal(f.engine.frontStats().adopted, 0, 'every request was served in the engine');
});

it('a last GET is served in the engine: the upstream head and the rewritten answer are the JS path’s, the body exact, every byte counted', async () => {
  const body = Buffer.alloc(100_000, 7);
  const answer = Buffer.concat([
    Buffer.from(`HTTP/1.1 200 OK\r\nContent-Length: ${body.length}\r\nKeep-Alive: timeout=5\r\nX-Origin: yes\r\n\r\n`),
    body,
  ]);
  const o = await rawOrigin(answer);
  const meter = countingMeter();
  const f = await front({ authenticate: async () => ({ principal: 'con_a', meter }) });
  const s = await connect(f.port);
  const req = `GET http://127.0.0.1:${o.port}/p?q=1 HTTP/1.1\r\nHost: ignored\r\n${AUTH}Connection: close\r\n\r\n`;
  s.write(req);
  const got = await within(untilClose(s, 5000), 5000, 'the answer and the close');
  const start = got.indexOf('\r\n\r\n') + 4;
  const head = got.toString('latin1', 0, start);
  assert.match(head, /^HTTP\/1\.1 200 OK\r\n/);
  assert.match(head, /X-Origin: yes/);
  assert.doesNotMatch(head, /Keep-Alive/, 'hop-by-hop fields are dropped');
  assert.match(head, /Connection: close/);
  assert.ok(got.subarray(start).equals(body));
  // Upstream: origin-form, the URL's Host, no Proxy-Authorization, Connection: close.
  assert.match(o.heads[0]!, /^GET \/p\?q=1 HTTP\/1\.1\r\nHost: 127\.0\.0\.1:\d+\r\n/);
  assert.doesNotMatch(o.heads[0]!, /Proxy-Authorization/i);
  assert.match(o.heads[0]!, /Connection: close\r\n\r\n$/);
  await until(() => f.closed.length === 1, 3000, 'connectionClosed');
  assert.equal(f.engine.frontStats().joined, 1);
  assert.equal(f.engine.frontStats().adopted, 0);
  assert.equal(meter.up, Buffer.byteLength(req));
  assert.equal(meter.down, answer.length);
  assert.equal(f.closed[0]!.bytesIn, Buffer.byteLength(req));
  assert.equal(f.closed[0]!.bytesOut, got.length);
});

it('a last GET: bytes past the Content-Length are not the customer’s, a body cut short resets it, a whole chunked body ends the answer, an interim 103 passes', async () => {
  const f = await front();
  const more = await rawOrigin(Buffer.from('HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhelloEXTRA BYTES'), false);
  const a = await connect(f.port);
  a.write(`GET http://127.0.0.1:${more.port}/ HTTP/1.1\r\n${AUTH}Connection: close\r\n\r\n`);
  const got = (await within(untilClose(a), 3000, 'the answer')).toString('latin1');
  assert.ok(got.endsWith('\r\n\r\nhello'), JSON.stringify(got));
  const cut = await rawOrigin(Buffer.from('HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\nonly this'));
  const b = await connect(f.port);
  b.write(`GET http://127.0.0.1:${cut.port}/ HTTP/1.1\r\n${AUTH}Connection: close\r\n\r\n`);
  // The engine resets the customer (SO_LINGER 0) once the origin's FIN comes early; with the answer's
  // bytes still unread in the customer's socket, Linux reports that as the end of the stream. Either
  // way the customer holds fewer bytes than the Content-Length: the cut shows.
  const short = (await within(untilClose(b), 3000, 'the cut')).toString('latin1');
  assert.ok(short.endsWith('\r\n\r\nonly this'), JSON.stringify(short));
  assert.equal(f.engine.stats().active, 0);
  // A chunked answer whose last chunk came with its head ends there, without waiting for the origin's
  // close (this origin keeps its connection open); one that has not, goes on to the origin's close.
  const whole = await rawOrigin(
    Buffer.from('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n'),
    false,
  );
  const w = await connect(f.port);
  w.write(`GET http://127.0.0.1:${whole.port}/ HTTP/1.1\r\n${AUTH}Connection: close\r\n\r\n`);
  const wr = (await within(untilClose(w), 3000, 'the chunked answer and the close')).toString('latin1');
  assert.match(wr, /Transfer-Encoding: chunked\r\n/);
  assert.ok(wr.endsWith('\r\n\r\n2\r\nhi\r\n0\r\n\r\n'), JSON.stringify(wr));
  const part = await rawOrigin(Buffer.from('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n'));
  const q = await connect(f.port);
  q.write(`GET http://127.0.0.1:${part.port}/ HTTP/1.1\r\n${AUTH}Connection: close\r\n\r\n`);
  const qr = (await within(untilClose(q), 3000, 'to the origin’s close')).toString('latin1');
  assert.ok(qr.endsWith('\r\n\r\n2\r\nhi\r\n'), JSON.stringify(qr));
  const hints = await rawOrigin(
    Buffer.from('HTTP/1.1 103 Early Hints\r\nLink: </s.css>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok'),
  );
  const c = await connect(f.port);
  c.write(`GET http://127.0.0.1:${hints.port}/ HTTP/1.1\r\n${AUTH}Connection: close\r\n\r\n`);
  const h = (await within(untilClose(c), 3000, 'the hints and the answer')).toString('latin1');
  assert.match(h, /^HTTP\/1\.1 103 Early Hints\r\nLink: <\/s\.css>\r\n\r\nHTTP\/1\.1 200 OK\r\n/);
  assert.ok(h.endsWith('\r\n\r\nok'));
});

it('a last GET whose origin answers garbage or nothing gets the JS path’s 502s; a keep-alive GET is adopted and served on', async () => {
  const f = await front();
  const bad = await rawOrigin(Buffer.from('NOT HTTP AT ALL\r\n\r\n'));
  const a = await connect(f.port);
  a.write(`GET http://127.0.0.1:${bad.port}/ HTTP/1.1\r\n${AUTH}Connection: close\r\n\r\n`);
  const r1 = (await within(untilClose(a), 3000, 'the 502')).toString();
  assert.match(r1, /^HTTP\/1\.1 502 /);
  assert.match(r1, /PP_ERR_PROXY_BAD_UPSTREAM_RESPONSE/);
  // A head that never ends: refused at the parser's 16 KiB, not buffered on.
  const endless = await rawOrigin(
    Buffer.concat([Buffer.from('HTTP/1.1 200 OK\r\n'), Buffer.alloc(40_000, 'X-A: b\r\n')]),
    false,
  );
  const e = await connect(f.port);
  e.write(`GET http://127.0.0.1:${endless.port}/ HTTP/1.1\r\n${AUTH}Connection: close\r\n\r\n`);
  const r3 = (await within(untilClose(e), 3000, 'the 502')).toString();
  assert.match(r3, /^HTTP\/1\.1 502 /);
  assert.match(r3, /PP_ERR_PROXY_BAD_UPSTREAM_RESPONSE/);
  const mute = await rawOrigin(Buffer.alloc(0));
  const b = await connect(f.port);
  b.write(`GET http://127.0.0.1:${mute.port}/ HTTP/1.1\r\n${AUTH}Connection: close\r\n\r\n`);
  const r2 = (await within(untilClose(b), 3000, 'the 502')).toString();
  assert.match(r2, /^HTTP\/1\.1 502 /);
  assert.match(r2, /PP_ERR_PROXY_TARGET_RESET/);
  const ok = await rawOrigin(Buffer.from('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok'));
  const c = await connect(f.port);
  c.write(`GET http://127.0.0.1:${ok.port}/1 HTTP/1.1\r\n${AUTH}\r\n`);
  await readUntil(c, (x) => x.toString().endsWith('ok'));
  c.write(`GET http://127.0.0.1:${ok.port}/2 HTTP/1.1\r\n${AUTH}\r\n`);
  await readUntil(c, (x) => (x.toString().match(/ok/g) ?? []).length >= 1 && x.toString().endsWith('ok'));
  assert.equal(ok.heads.length, 2);
  const st = f.engine.frontStats();
  assert.equal(st.adopted, 1);
  assert.equal(st.answered, 3);
});
