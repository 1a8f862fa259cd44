// The transparent proxy without root: SO_ORIGINAL_DST is injected, the device's HTTP proxy is a
// CONNECT stub on loopback, and the customer is a plain TCP client from 127.0.0.1.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as net from 'node:net';
import pino from 'pino';
import { createSocks5Server } from '@pocketproxy/proxy';
import { createTransparentProxy, type TransparentProxyDeps } from '../src/tunnel/tproxy.js';
import { NOTSENT_MAX, floodingServer, notSentWhenStalled } from '@pocketproxy/testkit';

// Every case runs on both socket kinds (LeanSocket, the default, and the node:net fallback).
const ENGINES = ['native', 'lean', 'node'] as const;

/**
 * A started transparent proxy on loopback whose customers were all headed for 192.0.2.10:`dstPort`,
 * with the customer 127.0.0.1 mapped to `route` when one is given.
 */
async function loopbackTproxy(
  sockets: (typeof ENGINES)[number],
  dstPort: number,
  peekTimeoutMs: number,
  route?: { proxyPort: number; protocol: 'http' | 'socks5'; username: string; password: string },
  more: Partial<TransparentProxyDeps> = {},
) {
  const tp = createTransparentProxy({
    host: '127.0.0.1',
    port: 0,
    logger: pino({ level: 'silent' }),
    sockets,
    getOriginalDst: () => ({ address: '192.0.2.10', port: dstPort, family: 'IPv4' }),
    peekTimeoutMs,
    ...more,
  });
  // The engine asked for is the one running (native needs the addon, which the tests build).
  assert.equal(tp.sockets, sockets);
  if (route) tp.clients.set('127.0.0.1', { deviceVpnIp: '127.0.0.1', ...route });
  await tp.start();
  return tp;
}

async function deviceProxyStub() {
  const requests: string[] = [];
  const srv = net.createServer((s) => {
    let buf = '';
    const onData = (c: Buffer) => {
      buf += c.toString('latin1');
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      s.off('data', onData);
      requests.push(buf.slice(0, end));
      if (!buf.startsWith('CONNECT example.test:80 ') && !buf.startsWith('CONNECT 192.0.2.10:5555 '))
        return void s.end('HTTP/1.1 403 Forbidden\r\n\r\n');
      s.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      const rest = buf.slice(end + 4);
      if (rest) s.write(`echo:${rest}`);
      s.on('data', (d) => s.write(`echo:${d.toString('latin1')}`));
    };
    s.on('data', onData);
    s.on('error', () => {});
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  return {
    port: (srv.address() as net.AddressInfo).port,
    requests,
    close: () => new Promise<void>((r) => srv.close(() => r())),
  };
}

function exchange(port: number, send: string, until: (got: string) => boolean): Promise<string> {
  return new Promise((resolve, reject) => {
    const c = net.connect(port, '127.0.0.1');
    let got = '';
    const t = setTimeout(() => {
      c.destroy();
      resolve(got);
    }, 3000);
    c.on('connect', () => c.write(send));
    c.on('data', (d) => {
      got += d.toString('latin1');
      if (until(got)) {
        clearTimeout(t);
        c.destroy();
        resolve(got);
      }
    });
    c.on('close', () => {
      clearTimeout(t);
      resolve(got);
    });
    c.on('error', reject);
  });
}

/**
 * A device that answers (200, then `body(first line of the request)`, then its FIN) only once it holds
 * the CONNECT head and a whole request behind it. `tap` sees its accepts, each chunk and its closes.
 */
async function answerAfterRequest(
  body: (requestLine: string) => string,
  tap: { accepted?: () => void; chunk?: (c: string, first: boolean) => void; closed?: () => void } = {},
) {
  const srv = net.createServer((s) => {
    tap.accepted?.();
    let buf = '';
    s.on('error', () => {});
    s.on('close', () => tap.closed?.());
    s.on('data', (d) => {
      tap.chunk?.(d.toString('latin1'), buf === '');
      buf += d.toString('latin1');
      const end = buf.indexOf('\r\n\r\n');
      if (end >= 0 && buf.slice(end + 4).includes('\r\n\r\n'))
        s.end(`HTTP/1.1 200 Connection Established\r\n\r\n${body(buf.slice(end + 4).split('\r\n')[0]!)}`);
    });
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  return {
    port: (srv.address() as net.AddressInfo).port,
    close: () => new Promise<void>((r) => srv.close(() => r())),
  };
}

for (const sockets of ENGINES)
  test(`transparent proxy (${sockets} sockets): Host peek -> CONNECT domain via the mapped device with its credentials`, async () => {
    const stub = await deviceProxyStub();
    const tp = await loopbackTproxy(sockets, 80, 200);
    try {
      // Unmapped customer: refused, nothing reaches the device.
      assert.equal(await exchange(tp.port, 'GET / HTTP/1.1\r\nHost: example.test\r\n\r\n', () => false), '');
      assert.equal(stub.requests.length, 0);
      assert.equal(tp.stats.refused, 1);

      // The mapping a login made (openvpn/management.ts; the API's answer is checked there).
      tp.clients.set('127.0.0.1', {
        deviceVpnIp: '127.0.0.1',
        proxyPort: stub.port,
        protocol: 'http',
        username: 'alice',
        password: 's3cret',
      });
      const req = 'GET / HTTP/1.1\r\nHost: example.test\r\n\r\n';
      const got = await exchange(tp.port, req, (g) => g.includes('\r\n\r\n'));
      assert.equal(got, `echo:${req}`);
      assert.match(stub.requests[0]!, /^CONNECT example\.test:80 HTTP\/1\.1\r\n/);
      assert.match(
        stub.requests[0]!,
        new RegExp(`Proxy-Authorization: Basic ${Buffer.from('alice:s3cret').toString('base64')}`),
      );

      // Unmapped again (the customer left): refused again.
      tp.clients.delete('127.0.0.1');
      assert.equal(await exchange(tp.port, req, () => false), '');
      assert.equal(stub.requests.length, 1);
    } finally {
      await tp.close();
      await stub.close();
    }
  });

for (const sockets of ENGINES)
  test(`transparent proxy (${sockets} sockets): no SNI/Host (server-first protocol) -> CONNECT the original address after the peek wait`, async () => {
    const stub = await deviceProxyStub();
    const tp = await loopbackTproxy(sockets, 5555, 100, {
      proxyPort: stub.port,
      protocol: 'http',
      username: 'bob',
      password: 'pw',
    });
    try {
      const got = await new Promise<string>((resolve) => {
        const c = net.connect(tp.port, '127.0.0.1');
        let buf = '';
        // Say nothing first; write after the proxy connected upstream.
        setTimeout(() => c.write('ping'), 300);
        c.on('data', (d) => {
          buf += d;
          if (buf.includes('ping')) {
            c.destroy();
            resolve(buf);
          }
        });
        c.on('error', () => resolve(buf));
      });
      assert.equal(got, 'echo:ping');
      assert.match(stub.requests[0]!, /^CONNECT 192\.0\.2\.10:5555 /);
    } finally {
      await tp.close();
      await stub.close();
    }
  });

for (const sockets of ENGINES)
  test(`transparent proxy (${sockets} sockets): a SOCKS5 connection is reached in SOCKS5 on its own port, with its credentials`, async () => {
    // The "device": our own SOCKS5 server for one connection; its dial goes to a loopback echo target.
    const target = net.createServer((s) => s.on('data', (d) => s.write(`target:${d.toString('latin1')}`)));
    await new Promise<void>((r) => target.listen(0, '127.0.0.1', r));
    const asked: string[] = [];
    const device = createSocks5Server({
      authenticate: async (user, pass) => (user === 'carol' && pass === 'pw5' ? { principal: 'con_socks' } : null),
      dial: async ({ host, port }) => {
        asked.push(`${host}:${port}`);
        const s = net.connect((target.address() as net.AddressInfo).port, '127.0.0.1');
        await new Promise((r) => s.once('connect', r));
        return s;
      },
    });
    const { port: devicePort } = await device.listen(0, '127.0.0.1');
    const tp = await loopbackTproxy(sockets, 443, 100, {
      proxyPort: devicePort,
      protocol: 'socks5',
      username: 'carol',
      password: 'pw5',
    });
    try {
      const got = await exchange(tp.port, 'hello', (g) => g.includes('hello'));
      assert.equal(got, 'target:hello');
      assert.deepEqual(asked, ['192.0.2.10:443']);
      // Wrong credentials on the device: the customer's connection is reset, nothing reaches the target.
      tp.clients.set('127.0.0.1', {
        deviceVpnIp: '127.0.0.1',
        proxyPort: devicePort,
        protocol: 'socks5',
        username: 'carol',
        password: 'nope',
      });
      assert.equal(
        await exchange(tp.port, 'again', () => false).catch((e: NodeJS.ErrnoException) => e.code),
        'ECONNRESET',
      );
      assert.equal(asked.length, 1);
      assert.equal(tp.stats.failed, 1);
    } finally {
      await tp.close();
      await device.close();
      await new Promise<void>((r) => target.close(() => r()));
    }
  });

for (const sockets of ENGINES)
  test(`transparent proxy (${sockets} sockets): the peeked request leaves with the CONNECT, in one write, before the device answers`, async () => {
    // This "device" answers only once it holds the customer's request too: a proxy that waited for the
    // 200 before sending the request (two round trips over the tunnel) would get no answer at all.
    const chunks: string[] = [];
    const dev = await answerAfterRequest((line) => `answer to ${line}`, { chunk: (c) => chunks.push(c) });
    const tp = await loopbackTproxy(sockets, 80, 200, {
      proxyPort: dev.port,
      protocol: 'http',
      username: 'dave',
      password: 'pw',
    });
    try {
      const got = await exchange(tp.port, 'GET /x HTTP/1.1\r\nHost: example.test\r\n\r\n', (g) => g.includes('HTTP'));
      assert.equal(got, 'answer to GET /x HTTP/1.1');
      assert.equal(chunks.length, 1, `one segment: ${JSON.stringify(chunks)}`);
      assert.match(chunks[0]!, /^CONNECT example\.test:80 HTTP\/1\.1\r\n[\s\S]*\r\n\r\nGET \/x HTTP\/1\.1\r\n/);
    } finally {
      await tp.close();
      await dev.close();
    }
  });

for (const sockets of ENGINES)
  test(`transparent proxy (${sockets} sockets): a joined connection goes native on lean and native sockets: 1 MiB each way whole, half-close, a device reset reaches the customer as a reset`, async () => {
    // The device: answers the CONNECT, then echoes raw bytes until the customer's FIN; "RESET" resets.
    const srv = net.createServer({ allowHalfOpen: true }, (s) => {
      let buf = Buffer.alloc(0);
      s.on('error', () => {});
      const onHead = (d: Buffer): void => {
        buf = Buffer.concat([buf, d]);
        const end = buf.indexOf('\r\n\r\n');
        if (end < 0) return;
        s.off('data', onHead);
        s.write('HTTP/1.1 200 Connection Established\r\n\r\n');
        const rest = buf.subarray(end + 4);
        const echo = (c: Buffer): void => {
          if (c.includes('RESET')) return void s.resetAndDestroy();
          s.write(c);
        };
        if (rest.length) echo(rest);
        s.on('data', echo);
        s.on('end', () => s.end());
      };
      s.on('data', onHead);
    });
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    const tp = await loopbackTproxy(sockets, 5555, 50, {
      proxyPort: (srv.address() as net.AddressInfo).port,
      protocol: 'http',
      username: 'erin',
      password: 'pw',
    });
    try {
      const big = Buffer.alloc(1 << 20, 'abcdefgh');
      const c = net.connect({ port: tp.port, host: '127.0.0.1', allowHalfOpen: true });
      const chunks: Buffer[] = [];
      c.on('data', (d) => chunks.push(d));
      const ended = new Promise((r) => c.once('end', r));
      // A server-first start (no name to peek): the peek waits 50 ms, then the device is dialled.
      await new Promise((r) => c.once('connect', r));
      await new Promise((r) => setTimeout(r, 150));
      c.end(big);
      await ended;
      assert.equal(Buffer.concat(chunks).length, big.length);
      assert.ok(Buffer.concat(chunks).equals(big));
      c.destroy();
      // The customer's FIN came after the join: lean sockets were handed to the native relay.
      assert.equal(tp.stats.spliced, sockets === 'node' ? 0 : 1);

      const r = net.connect(tp.port, '127.0.0.1');
      await new Promise((res) => r.once('connect', res));
      await new Promise((res) => setTimeout(res, 150));
      const err = new Promise<NodeJS.ErrnoException>((res) => r.once('error', res));
      r.write('hello');
      await new Promise((res) => setTimeout(res, 50));
      r.write('RESET');
      assert.equal((await err).code, 'ECONNRESET');
      assert.equal(tp.stats.spliced, sockets === 'node' ? 0 : 2);
    } finally {
      await tp.close();
      await new Promise<void>((r) => srv.close(() => r()));
    }
  });

for (const sockets of ENGINES)
  test(`transparent proxy (${sockets} sockets): the device is dialled at accept, so its TCP handshake overlaps the peek; nothing is written to it before the customer's first bytes, and a customer that leaves silent closes it`, async () => {
    const events: Array<[string, number]> = [];
    const dev = await answerAfterRequest(() => 'ok', {
      accepted: () => events.push(['device accepted', Date.now()]),
      chunk: (_c, first) => first && events.push(['device got bytes', Date.now()]),
      closed: () => events.push(['device closed', Date.now()]),
    });
    // POCKETPROXY_TPROXY_FASTOPEN=false: the early dial (with it, the next test).
    const tp = await loopbackTproxy(
      sockets,
      80,
      2_000,
      { proxyPort: dev.port, protocol: 'http', username: 'fay', password: 'pw' },
      { fastOpen: false },
    );
    try {
      const c = net.connect(tp.port, '127.0.0.1');
      c.on('error', () => {});
      let got = '';
      c.on('data', (d) => (got += d.toString('latin1')));
      await new Promise((r) => c.once('connect', r));
      // The customer is silent for 400 ms (inside the 2 s peek wait): the device connection is up meanwhile.
      // (Its socket is in delayed-ACK mode: the handshake's last ACK waits for the first bytes or the
      // kernel's 200 ms delayed-ACK limit, and only then does the device's listener accept it.)
      await new Promise((r) => setTimeout(r, 400));
      assert.deepEqual(
        events.map(([e]) => e),
        ['device accepted'],
        'dialled at accept, and nothing written before the handshake',
      );
      const wroteAt = Date.now();
      c.write('GET /x HTTP/1.1\r\nHost: example.test\r\n\r\n');
      await new Promise((r) => c.once('close', r));
      assert.equal(got, 'ok');
      const at = Object.fromEntries(events);
      assert.ok(at['device got bytes']! >= wroteAt, 'the handshake left after the customer spoke');

      for (let i = 0; i < 200 && !events.some(([e]) => e === 'device closed'); i++)
        await new Promise((r) => setTimeout(r, 10));
      // A customer that connects and goes away (a reset) without a byte: the device connection opened for it closes too.
      events.length = 0;
      const q = net.connect(tp.port, '127.0.0.1');
      q.on('error', () => {});
      await new Promise((r) => q.once('connect', r));
      for (let i = 0; i < 100 && events.length === 0; i++) await new Promise((r) => setTimeout(r, 10)); // up to 1 s
      q.resetAndDestroy();
      for (let i = 0; i < 200 && events.length < 2; i++) await new Promise((r) => setTimeout(r, 10));
      assert.deepEqual(
        events.map(([e]) => e),
        ['device accepted', 'device closed'],
      );
      for (let i = 0; i < 100 && tp.stats.active > 0; i++) await new Promise((r) => setTimeout(r, 10));
      assert.equal(tp.stats.active, 0);
    } finally {
      await tp.close();
      await dev.close();
    }
  });

test("transparent proxy (native sockets, TCP Fast Open, the default): nothing is dialled before the customer's first bytes; then the device socket opens and the handshake with those bytes reaches the device at once", async () => {
  const events: Array<[string, number]> = [];
  const dev = await answerAfterRequest(() => 'ok', {
    accepted: () => events.push(['device accepted', Date.now()]),
    chunk: (_c, first) => first && events.push(['device got bytes', Date.now()]),
  });
  const tp = await loopbackTproxy('native', 80, 2_000, {
    proxyPort: dev.port,
    protocol: 'http',
    username: 'fay',
    password: 'pw',
  });
  try {
    for (let round = 0; round < 2; round++) {
      events.length = 0;
      const c = net.connect(tp.port, '127.0.0.1');
      c.on('error', () => {});
      let got = '';
      c.on('data', (d) => (got += d.toString('latin1')));
      await new Promise((r) => c.once('connect', r));
      await new Promise((r) => setTimeout(r, 300));
      assert.deepEqual(events, [], 'no device connection while the customer is silent');
      const wroteAt = Date.now();
      c.write('GET /x HTTP/1.1\r\nHost: example.test\r\n\r\n');
      await new Promise((r) => c.once('close', r));
      assert.equal(got, 'ok');
      const at = Object.fromEntries(events);
      assert.ok(at['device accepted']! >= wroteAt && at['device got bytes']! >= wroteAt, JSON.stringify(events));
    }
    for (let i = 0; i < 100 && tp.stats.active > 0; i++) await new Promise((r) => setTimeout(r, 10));
    assert.equal(tp.stats.active, 0);
  } finally {
    await tp.close();
    await dev.close();
  }
});

/**
 * A device proxy that answers each request "ok" and counts the connections it accepted, behind a
 * transparent proxy (peek wait 2 s) with `more`; customers connect silent and speak with `ask`. The native
 * engine dials at accept here (fastOpen off), as the tests of early dials and of the cap count on.
 */
async function countingRig(sockets: (typeof ENGINES)[number], more: Partial<TransparentProxyDeps>) {
  let accepted = 0;
  const dev = await answerAfterRequest(() => 'ok', { accepted: () => accepted++ });
  const tp = await loopbackTproxy(
    sockets,
    80,
    2_000,
    { proxyPort: dev.port, protocol: 'http', username: 'gus', password: 'pw' },
    { fastOpen: false, ...more },
  );
  return {
    tp,
    accepted: () => accepted,
    /** A customer that connected and has said nothing yet; `answer` is all it got once closed. */
    customer: async () => {
      const c = net.connect(tp.port, '127.0.0.1');
      c.on('error', () => {});
      await new Promise((r) => c.once('connect', r));
      const answer = new Promise<string>((resolve) => {
        let got = '';
        c.on('data', (d) => (got += d.toString('latin1')));
        c.once('close', () => resolve(got));
      });
      return { c, answer, ask: () => c.write('GET /x HTTP/1.1\r\nHost: example.test\r\n\r\n') };
    },
    /** Past the 200 ms delayed-ACK limit, so every device connection opened is accepted by then. */
    settle: () => new Promise((r) => setTimeout(r, 400)),
    idle: async () => {
      for (let i = 0; i < 100 && tp.stats.active > 0; i++) await new Promise((r) => setTimeout(r, 10));
    },
    close: async () => {
      await tp.close();
      await dev.close();
    },
  };
}

for (const sockets of ENGINES)
  test(`transparent proxy (${sockets} sockets): silent customers in bulk hold at most earlyDialsPerDevice device connections before they speak; the others dial after their peek, and every one is served`, async () => {
    // Each device connection opened at accept sits in the device's handshake guard until the handshake;
    // a customer opening silent connections in bulk must not fill it for the device's other customers.
    const rig = await countingRig(sockets, { earlyDialsPerDevice: 2 });
    try {
      const customers = [await rig.customer(), await rig.customer(), await rig.customer(), await rig.customer()];
      await rig.settle();
      assert.equal(rig.accepted(), 2, 'two device connections opened early, the other two wait for their peek');
      for (const c of customers) c.ask();
      assert.deepEqual(await Promise.all(customers.map((c) => c.answer)), ['ok', 'ok', 'ok', 'ok']);
      assert.equal(rig.accepted(), 4);
      // The slots came back: the next silent customer is dialled at accept again.
      await rig.idle();
      const next = await rig.customer();
      await rig.settle();
      assert.equal(rig.accepted(), 5);
      next.c.destroy();
    } finally {
      await rig.close();
    }
  });

for (const sockets of ENGINES)
  test(`transparent proxy (${sockets} sockets): past maxConnections a new customer is closed at accept, nothing dialled for it; the others are served and the count comes back`, async () => {
    const rig = await countingRig(sockets, { maxConnections: 2 });
    try {
      const a = await rig.customer();
      const b = await rig.customer();
      const third = await rig.customer();
      // The third is over the cap: closed by the proxy without a word, and no device connection for it.
      const late = new Promise<string>((r) => setTimeout(() => r('still open after 1 s'), 1_000));
      assert.equal(await Promise.race([third.answer, late]), '');
      third.c.destroy();
      await rig.settle();
      assert.equal(rig.accepted(), 2, 'device connections only for the two within the cap');
      assert.equal(rig.tp.stats.active, 2);
      a.ask();
      b.ask();
      assert.deepEqual(await Promise.all([a.answer, b.answer]), ['ok', 'ok']);
      await rig.idle();
      assert.equal(rig.tp.stats.active, 0);
      // Room again: a new customer is served.
      const d = await rig.customer();
      d.ask();
      assert.equal(await d.answer, 'ok');
    } finally {
      await rig.close();
    }
  });

test("transparent proxy (native sockets): a download to a customer who stops reading waits in the device's socket, not in the customer's (at most 128 KiB unsent there: TCP_NOTSENT_LOWAT)", async () => {
  const device = await floodingServer('HTTP/1.1 200 Connection Established\r\n\r\n');
  const tp = await loopbackTproxy('native', 80, 2_000, {
    proxyPort: device.port,
    protocol: 'http',
    username: 'gus',
    password: 'pw',
  });
  try {
    const notsent = await notSentWhenStalled(tp.port, 'GET / HTTP/1.1\r\nHost: example.test\r\n\r\n', device);
    assert.ok(notsent <= NOTSENT_MAX.transparent, `unsent in the customer's socket: ${notsent} bytes`);
  } finally {
    await tp.close();
    await device.close();
  }
});
