// The transparent proxy against a hostile or broken customer and device (no root: SO_ORIGINAL_DST
// is injected, the device is a loopback stub). Each case on both socket kinds. What must hold: the
// bytes arrive whole and in order, a FIN is passed on as a FIN and a reset as a reset, a connection
// that fails leaves nothing open on either side (stats.active back to 0, the device's socket
// closed), and the proxy keeps serving the next customer.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as net from 'node:net';
import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import pino from 'pino';
import { createTransparentProxy, type TransparentProxy } from '../src/tunnel/tproxy.js';

const ENGINES = ['native', 'lean', 'node'] as const;
const OK = 'HTTP/1.1 200 Connection Established\r\n\r\n';

/** A device proxy: CONNECT answered by `answer` (default 200 then an echo); records what it got and its sockets' ends. */
async function device(
  behave: (s: net.Socket, head: string, rest: Buffer) => void = (s, _h, rest) => {
    s.write(OK);
    if (rest.length) s.write(rest);
    s.on('data', (d) => s.write(d));
    s.on('end', () => s.end());
  },
) {
  const heads: string[] = [];
  const closed: string[] = [];
  const srv = net.createServer({ allowHalfOpen: true }, (s) => {
    let buf = Buffer.alloc(0);
    s.on('error', () => {});
    s.on('close', () => closed.push('close'));
    const onData = (c: Buffer) => {
      buf = Buffer.concat([buf, c]);
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      s.off('data', onData);
      heads.push(buf.subarray(0, end).toString('latin1'));
      behave(s, buf.subarray(0, end).toString('latin1'), buf.subarray(end + 4));
    };
    s.on('data', onData);
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  return {
    port: (srv.address() as net.AddressInfo).port,
    heads,
    closed,
    close: () => new Promise<void>((r) => srv.close(() => r())),
  };
}

async function proxyTo(
  devicePort: number,
  sockets: (typeof ENGINES)[number],
  o: { connectTimeoutMs?: number; peekTimeoutMs?: number; fastOpen?: boolean } = {},
) {
  const tp = createTransparentProxy({
    host: '127.0.0.1',
    port: 0,
    logger: pino({ level: 'silent' }),
    getOriginalDst: () => ({ address: '192.0.2.10', port: 443, family: 'IPv4' }),
    peekTimeoutMs: 100,
    sockets,
    ...o,
  });
  // The engine asked for is the one running (native needs the addon, which the tests build).
  assert.equal(tp.sockets, sockets);
  tp.clients.set('127.0.0.1', {
    deviceVpnIp: '127.0.0.1',
    proxyPort: devicePort,
    protocol: 'http',
    username: 'u',
    password: 'p',
  });
  await tp.start();
  return tp;
}

/** Connects, runs `drive`, resolves with everything read and how the connection ended. */
function customer(
  port: number,
  drive: (c: net.Socket) => void,
): Promise<{ got: Buffer; end: 'eof' | 'reset' | 'closed' }> {
  return new Promise((resolve) => {
    const c = net.connect({ port, host: '127.0.0.1', allowHalfOpen: true });
    const chunks: Buffer[] = [];
    let end: 'eof' | 'reset' | 'closed' = 'closed';
    c.on('connect', () => drive(c));
    c.on('data', (d) => chunks.push(d));
    c.on('end', () => {
      end = 'eof';
      c.end();
    });
    c.on('error', (e: NodeJS.ErrnoException) => {
      if (e.code === 'ECONNRESET') end = 'reset';
    });
    c.on('close', () => resolve({ got: Buffer.concat(chunks), end }));
  });
}

const settled = async (tp: TransparentProxy, closed: string[], n: number) => {
  for (let i = 0; i < 200 && (tp.stats.active > 0 || closed.length < n); i++)
    await new Promise((r) => setTimeout(r, 10));
  assert.equal(tp.stats.active, 0, 'no customer socket left open');
  assert.equal(closed.length, n, 'every device socket closed');
};

for (const sockets of ENGINES) {
  test(`tproxy hostile (${sockets}): binary garbage with no name goes to the dialled address, whole and in order, both ways`, async () => {
    const dev = await device();
    const tp = await proxyTo(dev.port, sockets);
    try {
      // 1 MiB of random bytes (more than the 16 KiB peek and the 64 KiB held while dialling), in
      // pieces, then a FIN: the echo comes back whole, then the device's FIN.
      const data = randomBytes(1 << 20);
      const r = await customer(tp.port, (c) => {
        for (let i = 0; i < data.length; i += 7919) c.write(data.subarray(i, i + 7919));
        c.end();
      });
      assert.equal(r.end, 'eof');
      assert.equal(r.got.length, data.length);
      assert.ok(r.got.equals(data), 'echo is byte for byte what was sent');
      assert.match(dev.heads[0]!, /^CONNECT 192\.0\.2\.10:443 HTTP\/1\.1\r\n/);
      await settled(tp, dev.closed, 1);
    } finally {
      await tp.close();
      await dev.close();
    }
  });

  test(`tproxy hostile (${sockets}): a request and an answer that arrive a few bytes at a time`, async () => {
    // The customer's Host header and the device's 200 both straddle reads: the peek waits for the
    // name across chunks, the answer reader for the whole head, and nothing is lost or doubled.
    const answer = `${OK}body-after-the-head`;
    // The device drips its answer, keeps reading what follows the head (the request may come in pieces:
    // bytes after the peek are held while dialling, then forwarded), and ends once both are complete.
    const dev = await device((s, _h, rest) => {
      let got = rest.toString('latin1');
      let dripped = false;
      const finish = () => {
        if (dripped && got.endsWith('\r\n\r\n')) s.end(`|${got}`);
      };
      s.on('data', (d) => {
        got += d.toString('latin1');
        finish();
      });
      let i = 0;
      const drip = () => {
        if (i >= answer.length) {
          dripped = true;
          return finish();
        }
        s.write(answer.slice(i, i + 3));
        i += 3;
        setTimeout(drip, 2);
      };
      drip();
    });
    const tp = await proxyTo(dev.port, sockets);
    try {
      const req = 'GET /drip HTTP/1.1\r\nHost: drip.example.test:8080\r\n\r\n';
      const r = await customer(tp.port, (c) => {
        let i = 0;
        const drip = () => {
          if (i >= req.length) return;
          c.write(req.slice(i, i + 5));
          i += 5;
          setTimeout(drip, 2);
        };
        drip();
      });
      assert.equal(r.got.toString('latin1'), `body-after-the-head|${req}`);
      assert.equal(r.end, 'eof');
      assert.match(dev.heads[0]!, /^CONNECT drip\.example\.test:443 HTTP\/1\.1\r\n/);
      await settled(tp, dev.closed, 1);
    } finally {
      await tp.close();
      await dev.close();
    }
  });

  test(`tproxy hostile (${sockets}): a request dribbled one byte per segment is still read by name and served at once`, async () => {
    // Far more segments than the native peek asks JS about one by one (it then waits for the bytes
    // to double): the name is still found as soon as the head is complete, not at the peek deadline.
    const dev = await device();
    const tp = await proxyTo(dev.port, sockets, { peekTimeoutMs: 5_000 });
    try {
      const req = `GET /slow HTTP/1.1\r\nHost: slow.example.test\r\nX-Pad: ${'p'.repeat(60)}\r\n\r\n`;
      const t0 = Date.now();
      const r = await customer(tp.port, (c) => {
        c.setNoDelay(true);
        let i = 0;
        const drip = () => {
          if (i >= req.length) return;
          c.write(req[i]!);
          i++;
          setTimeout(drip, 1);
        };
        drip();
        // The echo comes back once the whole request went through; then the customer ends.
        let back = '';
        c.on('data', (d) => {
          back += d.toString('latin1');
          if (back.length >= req.length) c.end();
        });
      });
      assert.equal(r.got.toString('latin1'), req);
      assert.match(dev.heads[0]!, /^CONNECT slow\.example\.test:443 HTTP\/1\.1\r\n/);
      assert.ok(Date.now() - t0 < 4_000, 'dialled when the head was complete, not at the 5 s peek deadline');
      await settled(tp, dev.closed, 1);
    } finally {
      await tp.close();
      await dev.close();
    }
  });

  test(`tproxy hostile (${sockets}): a device whose answer comes with 256 KiB behind it in one write: all of it reaches the customer`, async () => {
    // A fast target behind the device: the 200 and the start of the download leave the device
    // together, more than the relay's 64 KiB bound on an answer; only the answer's head counts.
    const body = Buffer.alloc(256 * 1024, 'd');
    const dev = await device((s) => s.end(Buffer.concat([Buffer.from(OK), body])));
    const tp = await proxyTo(dev.port, sockets);
    try {
      const r = await customer(tp.port, (c) => c.write('GET /big HTTP/1.1\r\nHost: example.test\r\n\r\n'));
      assert.equal(r.got.length, body.length);
      assert.ok(r.got.equals(body));
      assert.equal(r.end, 'eof');
      assert.equal(tp.stats.failed, 0);
      await settled(tp, dev.closed, 1);
    } finally {
      await tp.close();
      await dev.close();
    }
  });

  test(`tproxy hostile (${sockets}): a customer that half-closes still gets the whole answer`, async () => {
    // The device answers only after the customer's FIN reached it (as a server reading to EOF does).
    const dev = await device((s, _h, rest) => {
      s.write(OK);
      let got = rest.length;
      s.on('data', (d) => (got += d.length));
      s.on('end', () => s.end(`read ${got} bytes then EOF`));
    });
    const tp = await proxyTo(dev.port, sockets);
    try {
      const req = 'GET / HTTP/1.0\r\nHost: example.test\r\n\r\n';
      const r = await customer(tp.port, (c) => c.end(req));
      assert.equal(r.got.toString(), `read ${req.length} bytes then EOF`);
      assert.equal(r.end, 'eof');
      assert.match(dev.heads[0]!, /^CONNECT example\.test:443 /);
      await settled(tp, dev.closed, 1);
    } finally {
      await tp.close();
      await dev.close();
    }
  });

  test(`tproxy hostile (${sockets}): a customer that connects and says nothing, then FIN: dialled after the peek wait, FIN passed on`, async () => {
    const dev = await device();
    const tp = await proxyTo(dev.port, sockets);
    try {
      const r = await customer(tp.port, (c) => setTimeout(() => c.end(), 150));
      assert.equal(r.got.length, 0);
      assert.equal(r.end, 'eof');
      assert.equal(dev.heads.length, 1);
      await settled(tp, dev.closed, 1);
    } finally {
      await tp.close();
      await dev.close();
    }
  });

  test(`tproxy hostile (${sockets}): a customer that resets while the device has not answered leaves nothing open`, async () => {
    let release: () => void = () => {};
    const answered = new Promise<void>((r) => (release = r));
    const dev = await device((s) => void answered.then(() => s.write(OK)));
    const tp = await proxyTo(dev.port, sockets);
    try {
      await customer(tp.port, (c) => {
        c.write('GET / HTTP/1.1\r\nHost: example.test\r\n\r\n');
        const wait = () => (dev.heads.length ? c.resetAndDestroy() : setTimeout(wait, 5));
        wait();
      });
      release();
      await settled(tp, dev.closed, 1);
      // And the next customer is served.
      const dev2 = await device();
      tp.clients.set('127.0.0.1', { ...tp.clients.get('127.0.0.1')!, proxyPort: dev2.port });
      const r = await customer(tp.port, (c) => c.end('ping'));
      assert.equal(r.got.toString(), 'ping');
      await dev2.close();
    } finally {
      await tp.close();
      await dev.close();
    }
  });

  test(`tproxy hostile (${sockets}): a device that resets mid-answer resets the customer; one that refuses, never answers or never ends its answer too`, async () => {
    // Mid-answer reset (the device revoking the connection).
    const dev = await device((s) => {
      s.write(`${OK}partial`);
      setTimeout(() => s.resetAndDestroy(), 50);
    });
    const tp = await proxyTo(dev.port, sockets, { connectTimeoutMs: 300 });
    try {
      const r = await customer(tp.port, (c) => c.write('GET / HTTP/1.1\r\nHost: example.test\r\n\r\n'));
      assert.equal(r.got.toString(), 'partial');
      assert.equal(r.end, 'reset');
      await settled(tp, dev.closed, 1);

      // A device that fails the handshake `how`: the customer is reset with nothing of the device's
      // bytes, and every socket closes.
      const resetsCustomer = async (how: (s: net.Socket) => void) => {
        const bad = await device(how);
        tp.clients.set('127.0.0.1', { ...tp.clients.get('127.0.0.1')!, proxyPort: bad.port });
        const r = await customer(tp.port, (c) => c.write('GET / HTTP/1.1\r\nHost: example.test\r\n\r\n'));
        assert.equal(r.got.length, 0);
        assert.equal(r.end, 'reset');
        await settled(tp, bad.closed, 1);
        await bad.close();
      };
      // Refusal: 403 and close.
      await resetsCustomer((s) => s.end('HTTP/1.1 403 Forbidden\r\n\r\nsecret'));
      // Silence: no answer within connectTimeoutMs; it closes only once our FIN came.
      await resetsCustomer((s) => s.on('end', () => s.end()));
      // An answer head that never ends (100 KiB of header lines): reset once the reader's bound is passed.
      await resetsCustomer((s) => s.write(`HTTP/1.1 200 OK\r\n${'X-Fill: aaaaaaaaaaaaaaaa\r\n'.repeat(4000)}`));

      // A device port nobody listens on.
      const gone = await device();
      await gone.close();
      tp.clients.set('127.0.0.1', { ...tp.clients.get('127.0.0.1')!, proxyPort: gone.port });
      const r4 = await customer(tp.port, (c) => c.write('x'));
      assert.equal(r4.end, 'reset');
      assert.equal(tp.stats.failed, 4);
    } finally {
      await tp.close();
      await dev.close();
    }
  });
}

// Random chunkings of both sides: whatever the customer's bytes (a name or garbage) and however the
// writes of both sides are cut, the customer gets back exactly what the echoing device got after the
// handshake, and that is exactly what it sent.
for (const sockets of ENGINES) {
  test(`tproxy hostile (${sockets}): a device that speaks before the handshake (a forged answer) resets the customer, and nothing of it reaches the customer`, async () => {
    // Without TCP Fast Open the device connection is opened at accept, before the customer's first bytes:
    // a device (or anything that answers on its port) writing then must not be taken for the answer to a
    // CONNECT that was not sent yet. (With it, the native default, the socket opens with the CONNECT in its
    // SYN: there is no such moment, and what the device writes is its answer, as at any other time.)
    const closed: string[] = [];
    const srv = net.createServer((s) => {
      s.on('error', () => {});
      s.on('close', () => closed.push('close'));
      s.end(`${OK}forged`);
    });
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    const tp = await proxyTo((srv.address() as net.AddressInfo).port, sockets, {
      peekTimeoutMs: 2_000,
      fastOpen: false,
    });
    try {
      // The customer speaks after 400 ms: by then the device accepted (its handshake's last ACK, held
      // in delayed-ACK mode, leaves after at most 200 ms) and wrote, and no handshake was sent yet.
      const r = await customer(tp.port, (c) => {
        setTimeout(() => c.write('GET / HTTP/1.1\r\nHost: example.test\r\n\r\n'), 400);
      });
      assert.equal(r.end, 'reset');
      assert.equal(r.got.length, 0, 'the forged bytes never reach the customer');
      assert.equal(tp.stats.failed, 1);
      await settled(tp, closed, 1);
    } finally {
      await tp.close();
      await new Promise<void>((r) => srv.close(() => r()));
    }
  });

  test(`tproxy hostile (${sockets}): random bytes and random cuts on both sides (fast-check)`, async () => {
    let split = 1;
    const dev = await device((s, _h, rest) => {
      // The answer head cut at a random point, the echo of what came with the handshake after it.
      const head = Buffer.from(OK);
      s.write(head.subarray(0, split));
      setTimeout(() => {
        s.write(Buffer.concat([head.subarray(split), rest]));
        s.on('data', (d) => s.write(d));
        s.on('end', () => s.end());
      }, 1);
    });
    const tp = await proxyTo(dev.port, sockets);
    try {
      await fc.assert(
        fc.asyncProperty(
          fc.oneof(
            fc.uint8Array({ minLength: 0, maxLength: 40_000 }),
            fc.constant(new TextEncoder().encode('GET / HTTP/1.1\r\nHost: fc.example.test\r\n\r\n')),
          ),
          fc.array(fc.integer({ min: 1, max: 5_000 }), { minLength: 1, maxLength: 8 }),
          fc.integer({ min: 1, max: OK.length - 1 }),
          async (bytes, cuts, at) => {
            split = at;
            const data = Buffer.from(bytes);
            const r = await customer(tp.port, (c) => {
              let i = 0;
              let k = 0;
              const next = () => {
                if (i >= data.length) return void c.end();
                const n = cuts[k++ % cuts.length]!;
                c.write(data.subarray(i, i + n));
                i += n;
                setImmediate(next);
              };
              next();
            });
            assert.equal(r.end, 'eof');
            assert.ok(r.got.equals(data), `${r.got.length} bytes back of ${data.length}`);
          },
        ),
        { numRuns: 15 },
      );
      await settled(tp, dev.closed, dev.heads.length);
    } finally {
      await tp.close();
      await dev.close();
    }
  });
}
