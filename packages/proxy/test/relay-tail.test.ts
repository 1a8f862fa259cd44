// The relay's held tail (relay.ts "Segment economy"): with a `beforeEnd` hook, a short answer's last
// bytes wait one loop turn for the target's EOF, so they and the FIN leave in one segment. On both
// socket kinds: the segment count the customer's kernel saw (ss's segs_in, with the agent's real
// TCP_CORK hook), that bytes, their order, half-close and byte counts are unchanged, and that bytes
// not followed by an EOF are not kept waiting for one.
import { it, after } from 'node:test';
import assert from 'node:assert/strict';
import * as net from 'node:net';
import { once } from 'node:events';
import fc from 'fast-check';
import { setTcpFlag } from '@pocketproxy/tun';
import {
  ConnectionMeter,
  createHttpProxy,
  createPolicyDialer,
  createSocks5Server,
  TAIL_TRIES,
  type ConnectionClosedEvent,
  type Meter,
  type ProxyServer,
  type ProxySocket,
} from '../src/index.js';
import {
  cleanup,
  connect,
  endingOrigin,
  loopbackPolicy,
  onCleanup,
  readUntil,
  socksRequest,
  replyLength,
  segmentsIn,
  testResolve,
  untilClose,
  untilEnd,
} from './helpers.js';

after(cleanup);

const KINDS = [
  ['node:net', false],
  ['LeanSocket', true],
] as const;

/** The agent's hook: TCP_CORK, so the held bytes and the FIN share a segment. Counts its calls. */
function corkHook(): { hook: (s: ProxySocket) => void; calls: () => number } {
  let n = 0;
  return {
    hook: (s) => {
      n++;
      assert.ok(setTcpFlag(s, 'cork', true), 'TCP_CORK could not be set (is the @pocketproxy/tun addon built?)');
    },
    calls: () => n,
  };
}

async function listen(server: net.Server): Promise<number> {
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  onCleanup(
    () =>
      new Promise((r) => {
        server.close(r);
      }),
  );
  return (server.address() as net.AddressInfo).port;
}

interface Proxies {
  http: ProxyServer;
  socks: ProxyServer;
  httpPort: number;
  socksPort: number;
  closed: ConnectionClosedEvent[];
}

async function proxies(lean: boolean, beforeEnd?: (s: ProxySocket) => void, meter?: () => Meter): Promise<Proxies> {
  const dial = createPolicyDialer({ policy: loopbackPolicy, resolve: testResolve, connectTimeoutMs: 2000, lean });
  const closed: ConnectionClosedEvent[] = [];
  const principal = () => ({ principal: 'p', ...(meter ? { meter: meter() } : {}) });
  const http = createHttpProxy({
    authenticate: async () => null,
    allowNoAuth: async () => principal(),
    dial,
    lean,
    beforeEnd,
  });
  const socks = createSocks5Server({
    authenticate: async () => principal(),
    dial,
    lean,
    beforeEnd,
    udp: false,
  });
  for (const p of [http, socks]) {
    p.on('connectionClosed', (e) => closed.push(e));
    onCleanup(() => p.close());
  }
  return { http, socks, httpPort: (await http.listen(0)).port, socksPort: (await socks.listen(0)).port, closed };
}

/** Polls `cond` every 2 ms; fails after 5 s. */
async function waitFor(cond: () => boolean): Promise<void> {
  const t0 = Date.now();
  while (!cond()) {
    assert.ok(Date.now() - t0 < 5000, 'timed out waiting');
    await new Promise((r) => setTimeout(r, 2));
  }
}

/** SOCKS5 greeting and username/password in one write; resolves once both answers are in. */
async function socksAuth(s: net.Socket): Promise<void> {
  s.write(Buffer.from([5, 1, 2, 1, 1, 0x75, 1, 0x70]));
  const got = await readUntil(s, (b) => b.length >= 4);
  assert.deepEqual([...got], [5, 2, 1, 0]);
}

/** One CONNECT (HTTP, or SOCKS5) whose request rides behind the handshake; the answer and how many segments carried it. */
async function shortRequest(
  p: Proxies,
  via: 'http' | 'socks5',
  targetPort: number,
): Promise<{ body: Buffer; segs: number; dataSegs: number }> {
  const s = new net.Socket({ allowHalfOpen: true });
  s.connect(via === 'http' ? p.httpPort : p.socksPort, '127.0.0.1');
  await once(s, 'connect');
  onCleanup(() => s.destroy());
  const req = Buffer.from('GET / HTTP/1.1\r\nHost: t\r\n\r\n');
  let got: Buffer;
  if (via === 'http') {
    const done = untilEnd(s);
    s.write(Buffer.concat([Buffer.from(`CONNECT 127.0.0.1:${targetPort} HTTP/1.1\r\n\r\n`), req]));
    const all = await done;
    got = all.subarray(all.indexOf('\r\n\r\n') + 4);
  } else {
    await socksAuth(s);
    const done = untilEnd(s);
    s.write(Buffer.concat([socksRequest(1, '127.0.0.1', targetPort), req]));
    const all = await done;
    got = all.subarray(replyLength(all));
  }
  // The proxy's FIN is in; its final ACK of nothing more: read the counters before closing.
  const seen = segmentsIn(s);
  s.destroy();
  return { body: got, ...seen };
}

for (const [kind, lean] of KINDS) {
  for (const via of ['http', 'socks5'] as const) {
    it(`${kind}, ${via} CONNECT: the answer's last bytes and the target's FIN reach the customer in one segment`, async () => {
      const answer = Buffer.from(`HTTP/1.1 200 OK\r\nContent-Length: 1024\r\n\r\n${'x'.repeat(1024)}`);
      const target = await endingOrigin(answer);
      const hooked = corkHook();
      const withHook = await proxies(lean, hooked.hook);
      const without = await proxies(lean);
      // Several rounds each: the hold must catch the EOF every time, not by luck of scheduling.
      for (let round = 0; round < 3; round++) {
        const a = await shortRequest(withHook, via, target);
        const b = await shortRequest(without, via, target);
        assert.ok(a.body.equals(answer) && b.body.equals(answer), 'the answer arrives whole');
        // Same exchange, same handshake segments; without the hold the FIN is a segment of its own.
        assert.equal(a.dataSegs, b.dataSegs, `data segments ${a.dataSegs} vs ${b.dataSegs}`);
        assert.equal(a.segs, b.segs - 1, `round ${round}: segments in ${a.segs} with the hold, ${b.segs} without`);
      }
      assert.equal(hooked.calls(), 3);
    });
  }

  it(`${kind}: bytes not followed by an EOF are written within a loop turn, not kept for one`, async () => {
    // The target writes, then waits for the customer to confirm it got the bytes before it ends:
    // a relay that held the bytes until the EOF would deadlock here.
    let release: (() => void) | undefined;
    const target = await listen(
      net.createServer({ allowHalfOpen: true }, (c) => {
        c.on('error', () => {});
        c.once('data', () => {
          c.write('first');
          release = () => c.end('last');
        });
      }),
    );
    const hooked = corkHook();
    const p = await proxies(lean, hooked.hook);
    const s = await connect(p.httpPort);
    s.write(`CONNECT 127.0.0.1:${target} HTTP/1.1\r\n\r\nhello`);
    await readUntil(s, (b) => b.includes('first'));
    release!();
    const rest = await untilClose(s);
    assert.ok(rest.toString().endsWith('last'), rest.toString());
    // 'last' and the FIN came in one burst: held, corked, ended.
    assert.equal(hooked.calls(), 1);
  });

  it(`${kind}: a stream of small chunks arrives whole and in order, and stops being held after ${TAIL_TRIES} chunks`, async () => {
    // Small writes a few ms apart (each one its own read at the proxy), more than the hold's tries.
    const chunks = Array.from({ length: TAIL_TRIES + 6 }, (_, i) => Buffer.from(`chunk-${i};`));
    const target = await listen(
      net.createServer({ allowHalfOpen: true }, (c) => {
        c.on('error', () => {});
        c.once('data', async () => {
          for (const ch of chunks) {
            c.write(ch);
            await new Promise((r) => setTimeout(r, 5));
          }
          c.end();
        });
      }),
    );
    const hooked = corkHook();
    const p = await proxies(lean, hooked.hook);
    const s = await connect(p.httpPort);
    s.write(`CONNECT 127.0.0.1:${target} HTTP/1.1\r\n\r\ngo`);
    const got = await untilClose(s, 5000);
    assert.equal(got.subarray(got.indexOf('\r\n\r\n') + 4).toString(), Buffer.concat(chunks).toString());
    // The last chunk came 5 ms before the FIN, long after its turn: no cork for it.
    assert.equal(hooked.calls(), 0);
  });

  it(`${kind}: random answers in random cuts, then half-close either way: bytes, order and counts exact (fast-check)`, async () => {
    const hooked = corkHook();
    const plain = await proxies(lean, hooked.hook);
    const metered = await proxies(lean, hooked.hook, () => new ConnectionMeter({ downKbps: 200_000 }));
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.integer({ min: 1, max: 40_000 }), { minLength: 1, maxLength: 6 }),
        fc.array(fc.integer({ min: 0, max: 3 }), { minLength: 6, maxLength: 6 }),
        fc.boolean(),
        fc.boolean(),
        fc.boolean(),
        async (sizes, gaps, customerFinFirst, useMeter, viaSocks) => {
          const answer = Buffer.alloc(sizes.reduce((a, b) => a + b, 0));
          for (let i = 0; i < answer.length; i++) answer[i] = (i * 31 + sizes.length) & 0xff;
          const upload = Buffer.from('request-bytes '.repeat(50));
          let received: Buffer | undefined;
          const target = await listen(
            net.createServer({ allowHalfOpen: true }, (c) => {
              c.on('error', () => {});
              const parts: Buffer[] = [];
              c.on('data', (d: Buffer) => parts.push(d));
              c.on('end', () => {
                received = Buffer.concat(parts);
              });
              c.once('data', async () => {
                let off = 0;
                for (const [i, n] of sizes.entries()) {
                  c.write(answer.subarray(off, off + n));
                  off += n;
                  // 0: same tick; 1: next immediate; 2-3: a few ms.
                  const g = gaps[i]!;
                  if (g === 1) await new Promise((r) => setImmediate(r));
                  else if (g > 1) await new Promise((r) => setTimeout(r, g));
                }
                c.end();
              });
            }),
          );
          const p = useMeter ? metered : plain;
          const before = p.closed.length;
          const s = new net.Socket({ allowHalfOpen: true });
          s.connect(viaSocks ? p.socksPort : p.httpPort, '127.0.0.1');
          await once(s, 'connect');
          let headLen: number;
          if (viaSocks) {
            await socksAuth(s);
            s.write(socksRequest(1, '127.0.0.1', target));
            headLen = 0;
          } else {
            s.write(`CONNECT 127.0.0.1:${target} HTTP/1.1\r\n\r\n`);
            headLen = -1;
          }
          const got = untilEnd(s);
          // The customer's FIN before the answer (half-close) or after the upload has gone.
          if (customerFinFirst) s.end(upload);
          else s.write(upload);
          const all = await got;
          if (!customerFinFirst) s.end();
          const start = headLen === -1 ? all.indexOf('\r\n\r\n') + 4 : replyLength(all) /* SOCKS5 reply */;
          const body = all.subarray(start);
          assert.equal(body.length, answer.length);
          assert.ok(body.equals(answer), 'answer bytes in order');
          await waitFor(() => p.closed.length > before && received !== undefined);
          s.destroy();
          assert.ok(received!.equals(upload), 'the upload reached the target whole');
          const ev = p.closed[p.closed.length - 1]!;
          // The proxy's count is the customer socket's: everything it wrote (SOCKS5: the 4 bytes of
          // method and auth replies were read before `all`).
          assert.equal(ev.bytesOut, all.length + (viaSocks ? 4 : 0));
        },
      ),
      { numRuns: 30 },
    );
    // Some runs ended right behind their last chunk (gap 0 or 1): the hook was used.
    assert.ok(hooked.calls() > 0, 'the hold never caught an EOF');
  });
}

// A customer that sends its request, its bytes and its FIN in one go: the FIN arrives with the
// handshake (before the relay listens), and must still reach the target after the bytes.
for (const [kind, lean] of KINDS) {
  for (const via of ['http', 'socks5'] as const) {
    it(`${kind}, ${via}: a FIN sent with the CONNECT and its first bytes reaches the target after them`, async () => {
      const target = await listen(
        net.createServer({ allowHalfOpen: true }, (c) => {
          c.on('error', () => {});
          const parts: Buffer[] = [];
          c.on('data', (d: Buffer) => parts.push(d));
          c.on('end', () => c.end(`got ${Buffer.concat(parts).toString()}`));
        }),
      );
      const p = await proxies(lean, corkHook().hook);
      for (let round = 0; round < 5; round++) {
        const s = new net.Socket({ allowHalfOpen: true });
        s.connect(via === 'http' ? p.httpPort : p.socksPort, '127.0.0.1');
        await once(s, 'connect');
        onCleanup(() => s.destroy());
        const hello = Buffer.from(`hello ${round}`);
        if (via === 'http') s.end(Buffer.concat([Buffer.from(`CONNECT 127.0.0.1:${target} HTTP/1.1\r\n\r\n`), hello]));
        else {
          await socksAuth(s);
          s.end(Buffer.concat([socksRequest(1, '127.0.0.1', target), hello]));
        }
        const all = await untilClose(s, 3000);
        assert.ok(all.toString('latin1').endsWith(`got hello ${round}`), JSON.stringify(all.toString('latin1')));
      }
    });
  }
}
