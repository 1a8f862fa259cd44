// The relay's SOCKS5 front (src/tunnel/socks5-front.ts): its decisions (what is answered on the relay,
// what goes to the device as it came, what the device's first answer must be), fuzzed; and the addon's
// transparent listener doing them on loopback with a stub device (no root: no REDIRECT, no
// IP_TRANSPARENT; the lab tests run the whole front: isolation.lab.test.ts, dataplane.lab.test.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as net from 'node:net';
import fc from 'fast-check';
import pino from 'pino';
import { parseGreeting, parseUserPass } from '@pocketproxy/proxy';
import { addonAvailable, SpliceEngine, type TransparentHooks, type TransparentListenOptions } from '@pocketproxy/tun';
import { frontAnswered, frontHello, NOT_ALLOWED, type FrontVerify } from '../src/tunnel/socks5-front.js';
import { NOTSENT_MAX, floodingServer, notSentWhenStalled } from '@pocketproxy/testkit';
import { customer, type FrontCustomer } from './front-customer.js';

const hex = (s: string) => Buffer.from(s.replace(/ /g, ''), 'hex');
const CONNECT_BYTES = hex('05 01 00 01 7f 00 00 01 00 50');

/** Up to `most` chunks, each one of the handshake `parts` or up to `noise` random bytes. */
const chunks = (parts: Buffer[], noise: number, most: number) =>
  fc.array(
    fc.oneof(
      fc.constantFrom(...parts),
      fc.uint8Array({ maxLength: noise }).map((a) => Buffer.from(a)),
    ),
    {
      maxLength: most,
    },
  );

test('frontHello: a complete greeting offering username/password, nothing behind it, is answered 05 02 here', () => {
  assert.deepEqual(frontHello(hex('05 01 02'), false), [hex('05 02')]);
  assert.deepEqual(frontHello(hex('05 02 00 02'), false), [hex('05 02')]); // curl's: no-auth and user/pass
  // What the device would choose too: username/password whenever it is offered (packages/proxy socks5/front.ts).
});

test('frontHello: everything else goes to the device as it came, or waits for more', () => {
  assert.equal(frontHello(hex('05'), false), undefined);
  assert.equal(frontHello(hex('05 02 00'), false), undefined);
  // Final (FIN or deadline) short of credentials: closed here, as the device would close it.
  assert.equal(frontHello(hex('05 02 00'), true), null);
  assert.equal(frontHello(hex('05 01 02'), true), null);
  assert.equal(frontHello(hex(''), true), null);
  // Final with anything else: it goes on (the device answers).
  assert.deepEqual(frontHello(hex('05 01 02 01'), true), hex('05 01 02 01'));
  assert.deepEqual(frontHello(hex('05 01 00'), true), hex('05 01 00'));
  // No username/password offered: the device answers (05 00 for a no-auth connection, else 05 ff).
  assert.deepEqual(frontHello(hex('05 01 00'), false), hex('05 01 00'));
  // Pipelined greeting and credentials: the device answers both.
  const piped = hex('05 01 02 01 01 75 01 70');
  assert.deepEqual(frontHello(piped, false), piped);
  // Not SOCKS5 at all (SOCKS4, HTTP, a greeting without methods): the device's parser answers it.
  assert.deepEqual(frontHello(hex('04 01 00 50 cb 00 71 0a 00'), false), hex('04 01 00 50 cb 00 71 0a 00'));
  assert.deepEqual(frontHello(Buffer.from('GET / HTTP/1.1\r\n'), false), Buffer.from('GET / HTTP/1.1\r\n'));
  assert.deepEqual(frontHello(hex('05 00'), false), hex('05 00'));
});

test('frontAnswered: after a local 05 02 the device must have chosen 05 02 too (dropped); otherwise nothing is dropped', () => {
  const c = hex('05 02');
  assert.equal(frontAnswered(hex(''), c), -1);
  assert.equal(frontAnswered(hex('05'), c), -1);
  assert.equal(frontAnswered(hex('05 02'), c), 2);
  assert.equal(frontAnswered(hex('05 02 01 00'), c), 2);
  assert.equal(frontAnswered(hex('05 ff'), c), -2);
  assert.equal(frontAnswered(hex('05 00'), c), -2);
  assert.equal(frontAnswered(hex('00 5b'), c), -2);
  assert.equal(frontAnswered(hex('05 ff'), hex('')), 0);
});

test("frontHello with the relay's own check: credentials it accepts are answered 01 00 here, the request then goes with them", () => {
  const tries: string[] = [];
  const verify = (u: string, p: string) => {
    tries.push(`${u}:${p}`);
    return u === 'u' && p === 'p';
  };
  const creds = hex('05 01 02 01 01 75 01 70');
  // After the relay's 05 02: 01 00 from here.
  assert.deepEqual(frontHello(creds, false, hex('05 02'), verify), [hex('01 00')]);
  // A customer that sent greeting and credentials at once: both answers from here.
  assert.deepEqual(frontHello(creds, false, hex(''), verify), [hex('05 02 01 00')]);
  // Answered here: the request is waited for, then everything goes to the device at once.
  assert.equal(frontHello(creds, false, hex('05 02 01 00'), verify), undefined);
  const req = Buffer.concat([creds, hex('05 01 00 01 7f 00 00 01 00 50')]);
  assert.deepEqual(frontHello(req, false, hex('05 02 01 00'), verify), req);
  // The customer stops before its request: closed.
  assert.equal(frontHello(creds, true, hex('05 02 01 00'), verify), null);
  // Unfinished credentials: wait (closed when final).
  assert.equal(frontHello(hex('05 01 02 01 01 75 01'), false, hex('05 02'), verify), undefined);
  assert.equal(frontHello(hex('05 01 02 01 01 75 01'), true, hex('05 02'), verify), null);
  // Credentials the relay does not accept (wrong, or another user): the device decides, as without the check.
  const wrong = hex('05 01 02 01 01 75 01 71');
  assert.deepEqual(frontHello(wrong, false, hex('05 02'), verify), wrong);
  // Not RFC 1929 behind the greeting: the device answers it.
  const bad = hex('05 01 02 02 01 75 01 70');
  assert.deepEqual(frontHello(bad, false, hex('05 02'), verify), bad);
  // A request already behind the credentials (a client that does not wait): all to the device, unchecked here.
  tries.length = 0;
  assert.deepEqual(frontHello(req, false, hex('05 02'), verify), req);
  assert.deepEqual(tries, []);
});

test("frontAnswered after the relay's 01 00: the device's 05 02 01 00 is dropped; its refusal becomes a 05 02 reply and a close", () => {
  const r = hex('05 02 01 00');
  assert.equal(frontAnswered(hex('05 02 01'), r), -1);
  assert.equal(frontAnswered(hex('05 02 01 00'), r), 4);
  assert.equal(frontAnswered(hex('05 02 01 00 05 00 00 01 7f 00 00 01 00 50'), r), 4);
  assert.deepEqual(frontAnswered(hex('05 02 01 01'), r), [NOT_ALLOWED]);
  assert.equal(frontAnswered(hex('05 ff'), r), -2);
  assert.equal(frontAnswered(hex('05 02 02 00'), r), -2);
});

test('fuzz: frontHello answers from the relay only a whole greeting offering 02, and otherwise passes the bytes unchanged', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 600 }), fc.boolean(), (arr, final) => {
      const b = Buffer.from(arr);
      const r = frontHello(b, final);
      const short = b.length < 2 || (b[0] === 5 && b[1]! > 0 && b.length < 2 + b[1]!);
      const lone02 = b[0] === 5 && b.length >= 2 && b.length === 2 + b[1]! && [...b.subarray(2)].includes(2);
      if (r === undefined) {
        assert.equal(final, false);
        assert.ok(short);
      } else if (r === null) {
        assert.equal(final, true);
        assert.ok((short && (b.length === 0 || b[0] === 5)) || lone02);
      } else if (Array.isArray(r)) {
        assert.equal(final, false);
        assert.deepEqual(r, [hex('05 02')]);
        assert.equal(b[0], 5);
        assert.equal(b.length, 2 + b[1]!);
        assert.ok([...b.subarray(2)].includes(2));
      } else assert.equal(r, b);
    }),
    { numRuns: 5_000 },
  );
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 64 }), fc.constantFrom('', '05 02', '05 02 01 00'), (arr, r) => {
      const b = Buffer.from(arr);
      const replied = hex(r);
      const n = frontAnswered(b, replied);
      if (replied.length === 0) return assert.equal(n, 0);
      if (Array.isArray(n)) {
        // Only the device's refusal of credentials the relay accepted.
        assert.equal(r, '05 02 01 00');
        assert.deepEqual(b.subarray(0, 3), hex('05 02 01'));
        assert.notEqual(b[3], 0);
      } else if (n >= 0) {
        assert.equal(n, replied.length);
        assert.deepEqual(b.subarray(0, n), replied, 'only what the customer already has is dropped');
      } else if (n === -1) assert.deepEqual(b, replied.subarray(0, b.length));
      else assert.notDeepEqual(b.subarray(0, Math.min(b.length, replied.length)), replied.subarray(0, b.length));
    }),
    { numRuns: 5_000 },
  );
});

test("fuzz: with the relay's check, frontHello answers 01 00 only for complete credentials the check accepted, nothing behind them", () => {
  const parts = [
    hex('05 01 02'),
    hex('05 02 00 02'),
    hex('01 01 75 01 70'),
    hex('01 01 75 01 71'),
    hex('05 01 00 01 7f 00 00 01 00 50'),
  ];
  fc.assert(
    fc.property(chunks(parts, 12, 4), fc.boolean(), fc.constantFrom('', '05 02', '05 02 01 00'), (chunks, final, r) => {
      const b = Buffer.concat(chunks);
      const replied = hex(r);
      const asked: string[] = [];
      const out = frontHello(b, final, replied, (u, p) => {
        asked.push(`${u}:${p}`);
        return u === 'u' && p === 'p';
      });
      if (Array.isArray(out)) {
        assert.equal(final, false);
        const g = parseGreeting(b)!;
        const rest = b.subarray(g.length);
        if (out[0]!.equals(hex('05 02'))) assert.equal(rest.length, 0);
        else {
          assert.deepEqual(out[0], r === '' ? hex('05 02 01 00') : hex('01 00'));
          assert.notEqual(r, '05 02 01 00');
          assert.deepEqual(asked, ['u:p']);
          assert.deepEqual(rest, parts[2]);
        }
      } else if (out instanceof Buffer) assert.equal(out, b);
      // Asked at most once, and only about whole credentials with nothing behind them.
      assert.ok(asked.length <= 1);
      if (asked.length === 1) {
        const g = parseGreeting(b)!;
        assert.equal(parseUserPass(b.subarray(g.length))!.length, b.length - g.length);
      }
    }),
    { numRuns: 10_000 },
  );
});

// ---- The addon's transparent listener with the front's options, on loopback -------------------------

const HAVE = addonAvailable();
const skip = HAVE ? false : 'the addon is not built';

// ---- The listener's own steps (socks5Front): the same answers as frontHello / frontAnswered, or a question --

const CREDS_P = hex('01 01 75 01 70');
const CREDS_Q = hex('01 01 75 01 71');

test('socks5FrontStep: the happy paths are answered without JS, as frontHello answers them', { skip }, () => {
  const step = (b: string, r: string, known: Buffer[] = [CREDS_P]) =>
    SpliceEngine.socks5FrontStep(hex(b), hex(r), known);
  assert.deepEqual(step('05 01 02', ''), ['reply', hex('05 02')]);
  assert.deepEqual(step('05 02 00 02', ''), ['reply', hex('05 02')]);
  assert.deepEqual(step('05 02 00 02 01 01 75 01 70', '05 02'), ['reply', hex('01 00')]);
  assert.deepEqual(step('05 01 02 01 01 75 01 70', ''), ['reply', hex('05 02 01 00')]);
  assert.deepEqual(step('05 01 02 01 01 75 01 70 05 01 00 01', '05 02 01 00'), ['pass']);
  // Everything else is JS's: credentials not accepted before, no 02 offered, unfinished, not SOCKS5.
  assert.deepEqual(step('05 01 02 01 01 75 01 71', '05 02'), ['ask']);
  assert.deepEqual(step('05 01 02 01 01 75 01 70', '05 02', []), ['ask']);
  assert.deepEqual(step('05 01 00', ''), ['ask']);
  assert.deepEqual(step('05 02 00', ''), ['ask']);
  assert.deepEqual(step('05 00', ''), ['ask']);
  assert.deepEqual(step('04 01 00 50', ''), ['ask']);
  assert.deepEqual(step('05 01 02 01 01 75', '05 02'), ['ask']);
  assert.deepEqual(
    step('05 01 02 01 01 75 01 70 05', '05 02'),
    ['ask'],
    'a request behind credentials not answered here',
  );
  assert.deepEqual(
    step('05 01 02 01 01 75 01 70', '05 02 01 00'),
    ['ask'],
    'answered already: JS waits for the request',
  );
});

test('fuzz: socks5FrontStep answers only what frontHello answers for the same bytes, and asks JS otherwise', {
  skip,
}, () => {
  const parts = [hex('05 01 02'), hex('05 02 00 02'), CREDS_P, CREDS_Q, hex('05 01 00'), CONNECT_BYTES];
  const seen = { ask: 0, reply: 0, pass: 0 };
  fc.assert(
    fc.property(
      chunks(parts, 12, 5),
      fc.constantFrom('', '05 02', '05 02 01 00', '01 00', '05'),
      fc.subarray([CREDS_P, CREDS_Q]),
      (chunks, r, known) => {
        const b = Buffer.concat(chunks);
        const replied = hex(r);
        const native = SpliceEngine.socks5FrontStep(b, replied, known);
        seen[native[0]]++;
        if (native[0] === 'ask') return;
        // JS's check accepts exactly the credentials the listener remembers as accepted.
        const ok = new Set(known.map((k) => k.toString('latin1')));
        const js = frontHello(b, false, replied, (u, p) =>
          ok.has(
            Buffer.concat([
              hex('01'),
              Buffer.from([u.length]),
              Buffer.from(u),
              Buffer.from([p.length]),
              Buffer.from(p),
            ]).toString('latin1'),
          ),
        );
        if (native[0] === 'pass') assert.ok(js instanceof Buffer && js.equals(b), `pass: ${b.toString('hex')} / ${r}`);
        else assert.deepEqual(js, [native[1]], `reply: ${b.toString('hex')} / ${r}`);
      },
    ),
    { numRuns: 20_000 },
  );
  // Not a test that passes by always asking: every outcome came up, and answers and passes many times.
  assert.ok(seen.reply > 50 && seen.pass > 10 && seen.ask > 100, JSON.stringify(seen));
});

/** A stub device's SOCKS5 listener: answers the greeting, credentials `u`/`p` and a CONNECT, then echoes. */
function stubDevice(
  opts: {
    method?: number;
    closeOnGarbage?: boolean;
    /** The answer to the request (default a success), written `replyDelayMs` after it, `replyChunk` bytes at a time. */
    reply?: Buffer;
    replyDelayMs?: number;
    replyChunk?: number;
    /** Never answers a request. */
    silent?: boolean;
  } = {},
) {
  const got: Buffer[] = [];
  /** Bytes that came behind a request before the stub answered it. */
  const beforeReply: Buffer[] = [];
  const sockets: net.Socket[] = [];
  const srv = net.createServer({ allowHalfOpen: true }, (s) => {
    sockets.push(s);
    s.on('error', () => {});
    let buf = Buffer.alloc(0);
    let stage = 0;
    s.on('data', (d) => {
      got.push(d);
      if (stage === 3) return void s.write(d);
      buf = Buffer.concat([buf, d]);
      for (;;) {
        if (stage === 0) {
          if (buf.length < 1) return;
          if (buf[0] !== 5) return void (opts.closeOnGarbage ? s.end() : s.destroy());
          if (buf.length < 2 || buf.length < 2 + buf[1]!) return;
          buf = buf.subarray(2 + buf[1]!);
          s.write(Buffer.from([5, opts.method ?? 2]));
          if ((opts.method ?? 2) !== 2) return void s.end();
          stage = 1;
        } else if (stage === 1) {
          if (buf.length < 2 || buf.length < 3 + buf[1]! || buf.length < 3 + buf[1]! + buf[2 + buf[1]!]!) return;
          const ul = buf[1]!;
          const ok =
            buf.toString('utf8', 2, 2 + ul) === 'u' && buf.toString('utf8', 3 + ul, 3 + ul + buf[2 + ul]!) === 'p';
          buf = buf.subarray(3 + ul + buf[2 + ul]!);
          s.write(Buffer.from([1, ok ? 0 : 1]));
          if (!ok) return void s.end();
          stage = 2;
        } else if (stage === 2) {
          if (buf.length < 10) return;
          buf = buf.subarray(10);
          if (opts.reply === undefined && opts.replyDelayMs === undefined && !opts.silent) {
            s.write(hex('05 00 00 01 7f 00 00 01 00 50'));
            stage = 3;
            if (buf.length) s.write(buf);
            return;
          }
          stage = 4;
          if (opts.silent) return;
          setTimeout(async () => {
            beforeReply.push(buf);
            const reply = opts.reply ?? hex('05 00 00 01 7f 00 00 01 00 50');
            const step = opts.replyChunk ?? reply.length;
            for (let i = 0; i < reply.length; i += step) {
              s.write(reply.subarray(i, i + step));
              if (step < reply.length) await new Promise((r) => setTimeout(r, 5));
            }
            if (reply[1] !== 0) return void s.end();
            stage = 3;
            if (buf.length) s.write(buf);
          }, opts.replyDelayMs ?? 0);
          return;
        } else return; // 4: bytes behind the request wait in `buf` for the answer
      }
    });
    s.on('end', () => s.end());
  });
  return {
    got,
    beforeReply,
    sockets,
    srv,
    listen: () =>
      new Promise<number>((r) => srv.listen(0, '127.0.0.1', () => r((srv.address() as net.AddressInfo).port))),
    close: () => {
      for (const s of sockets) s.destroy();
      srv.close();
    },
  };
}

/** The front's hooks (as socks5-front.ts composes them) for one stub device. */
function hooks(devPort: number, verify?: FrontVerify, publicPort = 0): TransparentHooks {
  return {
    route: () => ['127.0.0.1', devPort, true, '', publicPort],
    hello: (_c, _d, _p, _i, _q, peeked, final, replied) => frontHello(peeked, final, replied, verify),
    answered: (_s, bytes, replied) => frontAnswered(bytes, replied),
    event: () => {},
  };
}

type Customer = FrontCustomer;

/** The front's listener options as socks5-front.ts sets them, on loopback (no SO_ORIGINAL_DST there). */
const FRONT_LISTEN: TransparentListenOptions = {
  peekMs: 2_000,
  connectMs: 2_000,
  kernelDst: false,
  fastOpen: true,
  deferAccept: true,
  passUnreplied: true,
};

/** The public port the native mode's routes say the stub's customers came to (kernelDst is off on loopback). */
const PUBLIC = 1080;

/** What the hooks were asked, per kind (the native mode asks nothing on its happy paths). */
type Asked = { route: number; hello: number; answered: number; verify: number };

/**
 * A stub device and the listener with the front's options (`extra` on top); closed after `fn`. `native`: as
 * socks5-front.ts runs it, with `socks5Front` and the port in setFrontRoutes (credentials tag `tag`).
 */
async function withFront(
  device: Parameters<typeof stubDevice>[0],
  extra: TransparentListenOptions,
  fn: (f: {
    port: number;
    devPort: number;
    engine: SpliceEngine;
    dev: ReturnType<typeof stubDevice>;
    asked: Asked;
  }) => Promise<void>,
  verify?: FrontVerify,
  native = false,
  tag = 'u\u0000verifier',
): Promise<void> {
  const dev = stubDevice(device);
  const devPort = await dev.listen();
  const engine = new SpliceEngine();
  const asked: Asked = { route: 0, hello: 0, answered: 0, verify: 0 };
  const counting =
    verify &&
    ((u: string, p: string) => {
      asked.verify++;
      return verify(u, p);
    });
  const h = hooks(devPort, counting, native ? PUBLIC : 0);
  const counted: TransparentHooks = {
    route: (...a) => {
      asked.route++;
      return h.route(...a);
    },
    hello: (...a) => {
      asked.hello++;
      return h.hello(...a);
    },
    answered: (...a) => {
      asked.answered++;
      return h.answered(...a);
    },
    event: h.event,
  };
  try {
    if (native)
      engine.setFrontRoutes([
        { port: PUBLIC, deviceIp: '127.0.0.1', devicePort: devPort, socks: true, credentialsTag: tag },
      ]);
    const port = engine.listen(
      '127.0.0.1',
      0,
      { ...FRONT_LISTEN, ...(native ? { socks5Front: true } : {}), ...extra },
      counted,
    );
    await fn({ port, devPort, engine, dev, asked });
  } finally {
    engine.close();
    dev.close();
  }
}

/** A customer that sent `05 01 02` and got the relay's `05 02`; with `pass`, also its credentials (`01 00` read). */
async function greeted(port: number, pass?: string): Promise<Customer> {
  const c = await customer(port);
  c.s.write(hex('05 01 02'));
  assert.deepEqual(await c.read(2), hex('05 02'));
  if (pass !== undefined) {
    c.s.write(Buffer.concat([hex('01 01 75 01'), Buffer.from(pass)]));
    assert.deepEqual(await c.read(2), hex(pass === 'p' ? '01 00' : '01 01'));
  }
  return c;
}

test(
  "transparent listener, front options: 05 02 from the relay before the device heard anything; greeting + credentials reach the device in one piece; the customer gets the device's verdict, not its 05 02",
  {
    skip,
  },
  () =>
    withFront({}, {}, async ({ port, engine, dev }) => {
      const c = await customer(port);
      c.s.write(hex('05 02 00 02'));
      assert.deepEqual(await c.read(2), hex('05 02'));
      assert.equal(Buffer.concat(dev.got).length, 0, 'the device has heard nothing yet');
      c.s.write(hex('01 01 75 01 70'));
      assert.deepEqual(await c.read(2), hex('01 00'));
      assert.deepEqual(Buffer.concat(dev.got), hex('05 02 00 02 01 01 75 01 70'));
      assert.equal(dev.got.length, 1, 'greeting and credentials in one segment');
      c.s.write(hex('05 01 00 01 7f 00 00 01 00 50'));
      assert.deepEqual(await c.read(10), hex('05 00 00 01 7f 00 00 01 00 50'));
      c.s.write('ping');
      assert.equal((await c.read(4)).toString(), 'ping');
      c.s.end();
      assert.equal(await c.ended, 'end');
      assert.equal(c.pending().length, 0);
      const st = engine.listenStats();
      assert.equal(st.spliced, 1);
      assert.equal(st.failed, 0);
    }),
);

const CONNECT = hex('05 01 00 01 7f 00 00 01 00 50');

test("transparent listener, front options: a download to a customer who stops reading leaves at most 512 KiB unsent in the relay's end of the customer's connection (TCP_NOTSENT_LOWAT), the rest behind the device's window", {
  skip,
}, async () => {
  const device = await floodingServer('HTTP/1.1 200 OK\r\n\r\n');
  const engine = new SpliceEngine();
  try {
    engine.setFrontRoutes([
      { port: PUBLIC, deviceIp: '127.0.0.1', devicePort: device.port, socks: false, credentialsTag: '' },
    ]);
    const port = engine.listen(
      '127.0.0.1',
      0,
      { ...FRONT_LISTEN, socks5Front: true },
      {
        route: () => ['127.0.0.1', device.port, false, '', PUBLIC],
        hello: () => null,
        answered: () => -2,
        event: () => {},
      },
    );
    const notsent = await notSentWhenStalled(port, 'GET http://big.test/ HTTP/1.1\r\nHost: big.test\r\n\r\n', device);
    assert.ok(notsent <= NOTSENT_MAX.front, `unsent in the customer's socket: ${notsent} bytes`);
  } finally {
    engine.close();
    await device.close();
  }
});

for (const native of [false, true])
  test(
    `transparent listener, the relay's own check: 05 02 and 01 00 from the relay before the device heard anything; greeting, credentials and request reach the device in one piece${native ? ' (native steps)' : ''}`,
    { skip },
    () =>
      withFront(
        {},
        {},
        async ({ port, engine, dev }) => {
          const c = await customer(port);
          c.s.write(hex('05 02 00 02'));
          assert.deepEqual(await c.read(2), hex('05 02'));
          c.s.write(hex('01 01 75 01 70'));
          assert.deepEqual(await c.read(2), hex('01 00'));
          assert.equal(Buffer.concat(dev.got).length, 0, 'the device has heard nothing yet');
          c.s.write(CONNECT);
          assert.deepEqual(await c.read(10), hex('05 00 00 01 7f 00 00 01 00 50'), "the device's reply, and only it");
          assert.deepEqual(Buffer.concat(dev.got), Buffer.concat([hex('05 02 00 02 01 01 75 01 70'), CONNECT]));
          assert.equal(dev.got.length, 1, 'greeting, credentials and request in one segment');
          c.s.write('ping');
          assert.equal((await c.read(4)).toString(), 'ping');
          c.s.end();
          assert.equal(await c.ended, 'end');
          assert.equal(c.pending().length, 0);
          assert.equal(engine.listenStats().spliced, 1);
        },
        (u, p) => u === 'u' && p === 'p',
        native,
      ),
  );

test(
  "transparent listener, native steps: credentials JS accepted once are answered in the listener after that, until the port's credentials tag changes; nothing of a repeat customer reaches JS but its route",
  { skip },
  () =>
    withFront(
      {},
      {},
      async ({ port, devPort, engine, asked }) => {
        const connectAndEcho = async (pass: string) => {
          const c = await greeted(port, pass);
          c.s.write(CONNECT);
          assert.deepEqual(await c.read(10), hex('05 00 00 01 7f 00 00 01 00 50'));
          c.s.write('ping');
          assert.equal((await c.read(4)).toString(), 'ping');
          c.s.end();
          assert.equal(await c.ended, 'end');
        };
        await connectAndEcho('p');
        assert.deepEqual(
          asked,
          { route: 1, hello: 1, answered: 0, verify: 1 },
          'only the first credentials were asked',
        );
        await connectAndEcho('p');
        await connectAndEcho('p');
        assert.deepEqual(asked, { route: 3, hello: 1, answered: 0, verify: 1 });
        const st = engine.listenStats();
        assert.equal(st.credentialsAnsweredHere, 2);
        assert.equal(st.answeredHere, 3 + 2, 'three greetings, two credentials');
        assert.equal(st.passedHere, 3);
        // Other credentials are JS's to check (and the device's to refuse).
        const q = await greeted(port, 'q');
        assert.equal(await q.ended, 'end');
        assert.equal(asked.verify, 2);
        // The port's username or verifier changed: what was remembered no longer matches.
        engine.setFrontRoutes([
          { port: PUBLIC, deviceIp: '127.0.0.1', devicePort: devPort, socks: true, credentialsTag: 'u\u0000other' },
        ]);
        await connectAndEcho('p');
        assert.equal(asked.verify, 3);
        await connectAndEcho('p');
        assert.equal(asked.verify, 3);
        // The port moved to another device listener: a connection routed before is JS's to judge from then on.
        const held = await customer(port);
        held.s.write(hex('05 01 02'));
        assert.deepEqual(await held.read(2), hex('05 02'));
        const hello = asked.hello;
        engine.setFrontRoutes([
          {
            port: PUBLIC,
            deviceIp: '127.0.0.1',
            devicePort: devPort === 65535 ? 1 : devPort + 1,
            socks: true,
            credentialsTag: 'u\u0000other',
          },
        ]);
        held.s.write(CREDS_P);
        assert.deepEqual(
          await held.read(2),
          hex('01 00'),
          "the stub's hooks still route it (socks5-front.ts's refuse it)",
        );
        assert.equal(asked.hello, hello + 1);
        held.s.destroy();
      },
      (u, p) => u === 'u' && p === 'p',
      true,
    ),
);

test("transparent listener, native steps: an HTTP port through the front passes the first bytes as they came, and what the device says is the customer's, without a call into JS but the route", {
  skip,
}, async () => {
  const srv = net.createServer((s) => {
    s.on('error', () => {});
    s.once('data', (d) => s.end(`HTTP/1.1 200 OK\r\nContent-Length: ${d.length}\r\n\r\n${d.toString('latin1')}`));
  });
  const devPort = await new Promise<number>((r) =>
    srv.listen(0, '127.0.0.1', () => r((srv.address() as net.AddressInfo).port)),
  );
  const engine = new SpliceEngine();
  const asked = { route: 0, hello: 0, answered: 0 };
  try {
    engine.setFrontRoutes([
      { port: PUBLIC, deviceIp: '127.0.0.1', devicePort: devPort, socks: false, credentialsTag: '' },
    ]);
    const port = engine.listen(
      '127.0.0.1',
      0,
      { ...FRONT_LISTEN, socks5Front: true },
      {
        route: () => {
          asked.route++;
          return ['127.0.0.1', devPort, false, '', PUBLIC];
        },
        hello: () => {
          asked.hello++;
          return null;
        },
        answered: () => {
          asked.answered++;
          return -2;
        },
        event: () => {},
      },
    );
    for (let i = 0; i < 3; i++) {
      const c = await customer(port);
      const head = `GET http://echo.test/${i} HTTP/1.1\r\nHost: echo.test\r\n\r\n`;
      c.s.write(head);
      const want = `HTTP/1.1 200 OK\r\nContent-Length: ${head.length}\r\n\r\n${head}`;
      assert.equal((await c.read(want.length)).toString('latin1'), want);
      assert.equal(await c.ended, 'end');
    }
    assert.deepEqual(asked, { route: 3, hello: 0, answered: 0 });
    assert.equal(engine.listenStats().passedHere, 3);
  } finally {
    engine.close();
    srv.close();
  }
});

for (const native of [false, true])
  test(
    `transparent listener, the relay's own check: a device that refuses credentials the relay accepted gets the customer a 05 02 reply and a close; credentials the relay does not accept get the device's own verdict${native ? ' (native steps)' : ''}`,
    { skip },
    () =>
      withFront(
        {},
        {},
        async ({ port, engine }) => {
          // The relay's copy says 'q' (changed since), the device's says 'p'.
          const c = await customer(port);
          c.s.write(hex('05 01 02'));
          assert.deepEqual(await c.read(2), hex('05 02'));
          c.s.write(hex('01 01 75 01 71'));
          assert.deepEqual(await c.read(2), hex('01 00'));
          c.s.write(CONNECT);
          assert.deepEqual(await c.read(10), NOT_ALLOWED);
          assert.equal(await c.ended, 'end');
          assert.equal(c.pending().length, 0);
          assert.equal(engine.listenStats().failed, 1);
          // A customer that does not wait for the reply (its first data right behind the request, then
          // more while the device is asked): the refusal still reaches it, and a close, not a reset
          // that could throw the reply away.
          const eager = await customer(port);
          eager.s.write(hex('05 01 02'));
          assert.deepEqual(await eager.read(2), hex('05 02'));
          eager.s.write(hex('01 01 75 01 71'));
          assert.deepEqual(await eager.read(2), hex('01 00'));
          eager.s.write(Buffer.concat([CONNECT, Buffer.from('GET / HTTP/1.1\r\n\r\n')]));
          eager.s.write(Buffer.from('more bytes'));
          assert.deepEqual(await eager.read(10), NOT_ALLOWED);
          assert.equal(await eager.ended, 'end');
          assert.equal(engine.listenStats().failed, 2);
          // 'p', which the relay does not know: the device's 01 00, its reply, the pair.
          const d = await greeted(port, 'p');
          d.s.write(CONNECT);
          assert.deepEqual(await d.read(10), hex('05 00 00 01 7f 00 00 01 00 50'));
          // Wrong for both: the device's 01 01 and its close.
          const e = await greeted(port, 'x');
          assert.equal(await e.ended, 'end');
        },
        (u, p) => u === 'u' && p === 'q',
        native,
      ),
  );

for (const native of [false, true])
  test(
    `transparent listener, front options: wrong credentials get the device's 01 01 and its close${native ? ' (native steps)' : ''}`,
    { skip },
    () =>
      withFront(
        {},
        {},
        async ({ port }) => {
          const c = await greeted(port, 'q');
          assert.equal(await c.ended, 'end');
        },
        undefined,
        native,
      ),
  );

for (const native of [false, true])
  test(
    `transparent listener, front options: not a greeting the relay answers -> the device answers, and its close is a close (as through a DNAT)${native ? ' (native steps)' : ''}`,
    {
      skip,
    },
    () =>
      withFront(
        { closeOnGarbage: true, method: 0xff },
        {},
        async ({ port }) => {
          // SOCKS4: the device closes without a word; the customer sees a FIN, not a reset.
          const a = await customer(port);
          a.s.write(hex('04 01 00 50 cb 00 71 0a 00'));
          assert.equal(await a.ended, 'end');
          assert.equal(a.pending().length, 0);
          // No username/password offered: the device's 05 ff reaches the customer as it was sent, then its close.
          const b = await customer(port);
          b.s.write(hex('05 01 00'));
          assert.deepEqual(await b.read(2), hex('05 ff'));
          assert.equal(await b.ended, 'end');
        },
        undefined,
        native,
      ),
  );

for (const native of [false, true])
  test(
    `transparent listener, front options: a device that answers 05 ff after the relay said 05 02 is refused (the customer is reset)${native ? ' (native steps)' : ''}`,
    {
      skip,
    },
    () =>
      withFront(
        { method: 0xff },
        {},
        async ({ port, engine }) => {
          const c = await greeted(port);
          c.s.write(hex('01 01 75 01 70'));
          assert.equal(await c.ended, 'reset');
          assert.equal(c.pending().length, 0, "nothing of the device's answer reached the customer");
          assert.equal(engine.listenStats().failed, 1);
        },
        undefined,
        native,
      ),
  );

for (const native of [false, true])
  test(
    `cut(deviceIp, port): resets the pairs and waiting connections of that device port, and only those${native ? ' (native steps)' : ''}`,
    { skip },
    () =>
      withFront(
        {},
        {},
        async ({ port, devPort, engine }) => {
          const joined = await greeted(port, 'p');
          const waiting = await greeted(port);
          assert.equal(engine.cut('127.0.0.2', devPort), 0, 'another device');
          assert.equal(engine.cut('127.0.0.1', devPort === 65535 ? 1 : devPort + 1), 0, 'another port');
          assert.equal(engine.cut('127.0.0.1', devPort), 2);
          assert.equal(await joined.ended, 'reset');
          assert.equal(await waiting.ended, 'reset');
          assert.equal(engine.listenStats().active, 0);
          assert.throws(() => engine.cut('not an address', 1), /IPv4/);
        },
        undefined,
        native,
      ),
  );

for (const native of [false, true])
  test(
    `maxWaitingPerAddress: one address's unfinished handshakes past the cap are closed at accept; joined ones do not count${native ? ' (native steps)' : ''}`,
    {
      skip,
    },
    () =>
      withFront(
        {},
        { peekMs: 5_000, maxWaitingPerAddress: 2 },
        async ({ port, engine }) => {
          await greeted(port, 'p');
          const held = [await greeted(port), await greeted(port)];
          const third = await customer(port);
          third.s.write(hex('05 01 02'));
          assert.notEqual(await third.ended, undefined);
          assert.equal(third.pending().length, 0, 'no 05 02 for the third');
          assert.equal(engine.listenStats().refusedPerAddress, 1);
          // One finishes its handshake: its slot is free again.
          held[0]!.s.write(hex('01 01 75 01 70'));
          assert.deepEqual(await held[0]!.read(2), hex('01 00'));
          await greeted(port);
        },
        undefined,
        native,
      ),
  );

test("fuzz: random customers (greetings, credentials, garbage, early closes and resets) leave nothing open and the front serving, with and without the relay's own check", {
  skip,
}, async () => {
  for (const native of [false, true])
    for (const verify of [undefined, (u: string, p: string) => u === 'u' && p === 'p'])
      await withFront(
        {},
        { peekMs: 300 },
        async ({ port, engine }) => {
          const parts = [
            hex('05 01 02'),
            hex('05 02 00 02'),
            hex('01 01 75 01 70'),
            hex('05 01 00 01 7f 00 00 01 00 50'),
          ];
          await fc.assert(
            fc.asyncProperty(chunks(parts, 40, 5), fc.constantFrom('end', 'reset', 'wait'), async (chunks, how) => {
              const c = await customer(port);
              for (const b of chunks) {
                if (c.s.destroyed) break;
                c.s.write(b);
                await new Promise((r) => setTimeout(r, 2));
              }
              if (how === 'end') c.s.end();
              else if (how === 'reset') c.s.resetAndDestroy();
              await Promise.race([c.ended, new Promise((r) => setTimeout(r, 600))]);
              c.s.destroy();
            }),
            { numRuns: 60 },
          );
          const t0 = Date.now();
          while (engine.listenStats().active > 0 && Date.now() - t0 < 3_000)
            await new Promise((r) => setTimeout(r, 50));
          assert.equal(engine.listenStats().active, 0, JSON.stringify(engine.listenStats()));
          await greeted(port, 'p');
        },
        verify,
        native,
      );
});

test("the front's port map follows the firewall: enabled SOCKS5 ports only, added before an apply, removed after it, and the latest of overlapping applies decides", {
  skip,
}, async () => {
  const { createSocks5Front } = await import('../src/tunnel/socks5-front.js');
  const ran: string[][] = [];
  const front = createSocks5Front({
    host: '127.0.0.1',
    port: 0,
    logger: pino({ level: 'silent' }),
    runner: { run: (_cmd, args) => void ran.push([...args]) },
  });
  const gates: Array<() => void> = [];
  const fw = front.wrap({
    apply: (_state: unknown) => new Promise<never>((r) => gates.push(() => r({ kind: 'update' } as never))),
  });
  const base = {
    tunnelInterface: 'pp0',
    deviceSubnet: '192.168.255.0/24',
    tunnelAddress: '192.168.255.1',
    mssClamp: 'pmtu' as const,
    // As the tunnel's state always has it when the front runs (the nft set and the map ask netfw's frontTakes).
    socks5Front: { port: 12346, mark: 0x7050 },
  };
  const socks = (port: number, vpnIp = '192.168.255.2', enabled = true) => ({
    port,
    proto: 'both' as const,
    vpnIp,
    targetPort: port,
    enabled,
  });
  const withPort = {
    ...base,
    ports: [socks(40001), socks(40002, '192.168.255.3', false), { ...socks(40003), proto: 'tcp' as const }],
  };
  const without = { ...base, ports: [] };
  const a = fw.apply(withPort);
  assert.deepEqual(front.deviceOf(40001), { vpnIp: '192.168.255.2', port: 40001 }, 'before the redirect is in');
  gates.shift()!();
  await a;
  assert.deepEqual(front.deviceOf(40001), { vpnIp: '192.168.255.2', port: 40001 });
  assert.equal(front.deviceOf(40002), undefined, 'disabled');
  assert.equal(front.deviceOf(40003), undefined, 'HTTP');
  const b = fw.apply(without);
  assert.ok(front.deviceOf(40001), 'kept until the redirect is out');
  gates.shift()!();
  await b;
  assert.equal(front.deviceOf(40001), undefined);
  // Down and back while the first apply is still out: the port never leaves the map.
  const c = fw.apply(withPort);
  gates.shift()!();
  await c;
  const d = fw.apply(without);
  const e = fw.apply(withPort);
  gates.shift()!();
  await d;
  assert.ok(front.deviceOf(40001), 'a later apply is out: nothing is settled (or cut) by the earlier one');
  gates.shift()!();
  await e;
  assert.deepEqual(front.deviceOf(40001), { vpnIp: '192.168.255.2', port: 40001 });
  await front.close();
  assert.deepEqual(ran.at(-1), ['route', 'flush', 'table', '7050'], 'its routing goes with it (recorded, not run)');
});

test("with HTTP ports per device ('auto'): every enabled HTTP port is in the front's map whichever path its new connections take, so moving one between the front and the DNAT cuts nothing", {
  skip,
}, async () => {
  const { createSocks5Front } = await import('../src/tunnel/socks5-front.js');
  const front = createSocks5Front({
    host: '127.0.0.1',
    port: 0,
    logger: pino({ level: 'silent' }),
    runner: { run: () => undefined },
  });
  const applied: unknown[] = [];
  const fw = front.wrap({ apply: async (state: unknown) => void applied.push(state) as never });
  const base = {
    tunnelInterface: 'pp0',
    deviceSubnet: '192.168.255.0/24',
    tunnelAddress: '192.168.255.1',
    mssClamp: 'pmtu' as const,
    socks5Front: { port: 12346, mark: 0x7050, http: 'auto' as const },
  };
  const http = (port: number, viaFront: boolean, enabled = true) => ({
    port,
    proto: 'tcp' as const,
    vpnIp: '192.168.255.2',
    targetPort: port,
    enabled,
    viaFront,
  });
  await fw.apply({ ...base, ports: [http(40001, false), http(40002, true), http(40003, true, false)] });
  assert.deepEqual(front.deviceOf(40001), { vpnIp: '192.168.255.2', port: 40001, http: true }, 'near: DNAT, but kept');
  assert.deepEqual(front.deviceOf(40002), { vpnIp: '192.168.255.2', port: 40002, http: true }, 'far');
  assert.equal(front.deviceOf(40003), undefined, 'disabled');
  // The device's link changes: its ports swap paths; neither leaves the map (nothing is cut).
  await fw.apply({ ...base, ports: [http(40001, true), http(40002, false)] });
  assert.deepEqual(front.deviceOf(40001), { vpnIp: '192.168.255.2', port: 40001, http: true });
  assert.deepEqual(front.deviceOf(40002), { vpnIp: '192.168.255.2', port: 40002, http: true });
  // Without 'auto' a port the front does not take is not its own.
  await fw.apply({ ...base, socks5Front: { port: 12346, mark: 0x7050 }, ports: [http(40001, true)] });
  assert.equal(front.deviceOf(40001), undefined);
  assert.equal(applied.length, 3);
  await front.close();
});

test('a front that cannot listen (its port taken) throws from start() and takes its routing back (the tunnel then DNATs SOCKS5 ports)', {
  skip,
}, async () => {
  const { createSocks5Front } = await import('../src/tunnel/socks5-front.js');
  const taken = net.createServer();
  const port = await new Promise<number>((r) =>
    taken.listen(0, '127.0.0.1', () => r((taken.address() as net.AddressInfo).port)),
  );
  const ran: string[][] = [];
  const front = createSocks5Front({
    host: '127.0.0.1',
    port,
    logger: pino({ level: 'silent' }),
    runner: { run: (_cmd, args) => void ran.push([...args]) },
  });
  try {
    await assert.rejects(front.start(), /EADDRINUSE|listen/);
    await front.close();
    assert.ok(
      ran.some((a) => a.join(' ') === 'rule add fwmark 28752 lookup 7050'),
      'the rule had been added before the listen',
    );
    assert.deepEqual(ran.at(-1), ['route', 'flush', 'table', '7050'], 'and is taken back');
  } finally {
    taken.close();
  }
});

test("the front's credentials: the API's forwarding's connections, by device address, port and protocol; disabled or unknown ones are the device's to answer", async () => {
  const { DeviceTable } = await import('../src/tunnel/devices.js');
  const { parseForwarding } = await import('../src/tunnel/api-client.js');
  const { parseSubnet } = await import('../src/tunnel/ipv4.js');
  const devices = new DeviceTable(parseSubnet('192.168.255.0/24'));
  devices.replace([
    { deviceId: 'dev_a', publicKey: Buffer.alloc(32, 1), psk: Buffer.alloc(32, 2), vpnIp: '192.168.255.7' },
  ]);
  const conn = (port: number, protocol: string, enabled: boolean, extra: object = {}) => ({
    connection_id: `con_${port}`,
    protocol,
    port,
    allow_from: [],
    enabled,
    ...extra,
  });
  const f = parseForwarding({
    vpn_ip: '192.168.255.7',
    connections: [
      conn(40001, 'socks5', true, { username: 'u1', verifier: 'v1$s$m', early_reply: true }),
      conn(40007, 'socks5', true, { username: 'u7', verifier: 'v1$s$q' }),
      conn(40008, 'socks5', true, { username: 'u8', verifier: 'v1$s$r', early_reply: 'yes' }),
      conn(40002, 'socks5', false, { username: 'u2', verifier: 'v1$s$n' }),
      conn(40003, 'http', true, { username: 'u3', verifier: 'v1$s$o' }),
      conn(40004, 'socks5', true, { username: 7, verifier: 'v1$s$p' }),
      conn(40005, 'socks5', true),
    ],
  });
  assert.ok(f);
  devices.byId.get('dev_a')!.forwarding = f;
  assert.deepEqual(devices.frontCredentials('192.168.255.7', 40001, 'socks5'), {
    username: 'u1',
    verifier: 'v1$s$m',
    earlyReply: true,
  });
  // Early replies only where the API said so, in so many words (missing or not a boolean true: none).
  for (const p of [40007, 40008])
    assert.equal(devices.frontCredentials('192.168.255.7', p, 'socks5')?.earlyReply, false, String(p));
  for (const p of [40002, 40003, 40004, 40005, 40006])
    assert.equal(devices.frontCredentials('192.168.255.7', p, 'socks5'), undefined, String(p));
  // An HTTP connection's, asked as HTTP (the front's HTTP early reply checks its Proxy-Authorization).
  assert.deepEqual(devices.frontCredentials('192.168.255.7', 40003, 'http'), {
    username: 'u3',
    verifier: 'v1$s$o',
    earlyReply: false,
  });
  assert.equal(devices.frontCredentials('192.168.255.7', 40001, 'http'), undefined, 'a SOCKS5 port is not HTTP');
  assert.equal(devices.frontCredentials('192.168.255.8', 40001, 'socks5'), undefined);
  assert.equal(devices.frontCredentials('not an address', 40001, 'socks5'), undefined);
});

// ---- the early reply (POCKETPROXY_SOCKS5_EARLY_REPLY) -------------------------------------------------

const EARLY_SUCCESS = hex('05 00 00 01 00 00 00 00 00 00');

/** withFront in native mode with the port's route saying earlyReply (`early`), the listener's option on. */
const withEarly = (
  device: Parameters<typeof stubDevice>[0],
  fn: Parameters<typeof withFront>[2],
  o: { early?: boolean; connectMs?: number } = {},
) =>
  withFront(
    device,
    { earlyReply: true, ...(o.connectMs ? { connectMs: o.connectMs } : {}) },
    async (f) => {
      f.engine.setFrontRoutes([
        {
          port: PUBLIC,
          deviceIp: '127.0.0.1',
          devicePort: f.devPort,
          socks: true,
          credentialsTag: 'u\u0000verifier',
          earlyReply: o.early ?? true,
        },
      ]);
      await fn(f);
    },
    (u, p) => u === 'u' && p === 'p',
    true,
  );

test(
  "early reply: a CONNECT behind credentials answered here is answered success at once; the customer's first bytes reach the device behind the request before the device has answered; the device's answers are dropped and what it sends after them is the customer's",
  { skip },
  () =>
    withEarly({ replyDelayMs: 300 }, async ({ port, engine, dev }) => {
      const c = await greeted(port, 'p');
      const t0 = Date.now();
      c.s.write(CONNECT);
      assert.deepEqual(await c.read(10), EARLY_SUCCESS);
      assert.ok(Date.now() - t0 < 250, `answered before the device did (${Date.now() - t0} ms)`);
      c.s.write('ping');
      // The stub echoes what came behind the request once it has answered (300 ms on).
      assert.equal((await c.read(4, 3_000)).toString(), 'ping');
      assert.equal(
        Buffer.concat(dev.beforeReply).toString(),
        'ping',
        'the first bytes were at the device before its answer',
      );
      assert.equal(c.pending().length, 0, "nothing of the device's answers reached the customer");
      c.s.write('more');
      assert.equal((await c.read(4)).toString(), 'more');
      c.s.end();
      assert.equal(await c.ended, 'end');
      const st = engine.listenStats();
      assert.equal(st.earlyReplies, 1);
      assert.equal(st.earlyFailed, 0);
    }),
);

test("early reply: the device's answers arriving a byte at a time (IPv6 and name replies too) are read whole before anything reaches the customer", {
  skip,
}, async () => {
  for (const reply of [
    hex('05 00 00 01 0a 00 00 02 c0 01'),
    hex(`05 00 00 04 ${'20 01 0d b8 00 00 00 00 00 00 00 00 00 00 00 01'} 1f 90`),
    Buffer.concat([hex('05 00 00 03 0b'), Buffer.from('example.com'), hex('00 50')]),
  ])
    await withEarly({ reply, replyChunk: 1 }, async ({ port, engine }) => {
      const c = await greeted(port, 'p');
      c.s.write(CONNECT);
      assert.deepEqual(await c.read(10), EARLY_SUCCESS);
      c.s.write('ping');
      assert.equal((await c.read(4, 3_000)).toString(), 'ping', reply.toString('hex'));
      assert.equal(c.pending().length, 0);
      c.s.destroy();
      assert.equal(engine.listenStats().earlyFailed, 0);
    });
});

test('early reply: a device that refuses the request (any reply code but 00) after the early success gets the customer reset, and nothing of its answer', {
  skip,
}, async () => {
  for (const code of [0x01, 0x02, 0x04, 0x05])
    await withEarly(
      { reply: Buffer.from([0x05, code, 0x00, 0x01, 0, 0, 0, 0, 0, 0]), replyDelayMs: 50 },
      async ({ port, engine }) => {
        const c = await greeted(port, 'p');
        c.s.write(CONNECT);
        assert.deepEqual(await c.read(10), EARLY_SUCCESS);
        c.s.write('GET / HTTP/1.1\r\n\r\n');
        assert.equal(await c.ended, 'reset', `code ${code}`);
        assert.equal(c.pending().length, 0);
        assert.equal(engine.listenStats().earlyFailed, 1);
      },
    );
});

test('early reply: a device that does not answer by the connect deadline gets the customer reset', { skip }, () =>
  withEarly(
    { silent: true },
    async ({ port, engine }) => {
      const c = await greeted(port, 'p');
      c.s.write(CONNECT);
      assert.deepEqual(await c.read(10), EARLY_SUCCESS);
      const t0 = Date.now();
      assert.equal(await c.ended, 'reset');
      // The deadline is checked by the engine's once-a-second sweep.
      assert.ok(Date.now() - t0 < 2_500, `${Date.now() - t0} ms`);
      assert.equal(engine.listenStats().earlyFailed, 1);
    },
    { connectMs: 300 },
  ),
);

test("early reply: only for a port whose route says so, and only for a CONNECT; the others get the device's own reply", {
  skip,
}, async () => {
  // The route without earlyReply (a capped connection): the device's reply, its BND address and all.
  await withEarly(
    { replyDelayMs: 100 },
    async ({ port, engine }) => {
      const c = await greeted(port, 'p');
      const t0 = Date.now();
      c.s.write(CONNECT);
      assert.deepEqual(await c.read(10), hex('05 00 00 01 7f 00 00 01 00 50'));
      assert.ok(Date.now() - t0 >= 90, 'the device answered it');
      c.s.destroy();
      assert.equal(engine.listenStats().earlyReplies, 0);
    },
    { early: false },
  );
  // UDP ASSOCIATE and BIND are the device's to answer.
  await withEarly({}, async ({ port, engine }) => {
    for (const cmd of [0x02, 0x03]) {
      const c = await greeted(port, 'p');
      c.s.write(Buffer.from([0x05, cmd, 0x00, 0x01, 0x7f, 0, 0, 1, 0, 0x50]));
      // The stub answers any 10-byte request with its own success.
      assert.deepEqual(await c.read(10), hex('05 00 00 01 7f 00 00 01 00 50'), `cmd ${cmd}`);
      c.s.destroy();
    }
    assert.equal(engine.listenStats().earlyReplies, 0);
  });
});

test("fuzz: the early reply's check of the device's answers takes only 05 02 01 00 and a whole success, never more than there is", {
  skip,
}, () => {
  const ok = hex('05 02 01 00');
  const success = fc.oneof(
    fc.uint8Array({ minLength: 6, maxLength: 6 }).map((a) => Buffer.concat([hex('05 00 00 01'), Buffer.from(a)])),
    fc.uint8Array({ minLength: 18, maxLength: 18 }).map((a) => Buffer.concat([hex('05 00 00 04'), Buffer.from(a)])),
    fc
      .uint8Array({ minLength: 0, maxLength: 255 })
      .chain((name) =>
        fc
          .uint8Array({ minLength: 2, maxLength: 2 })
          .map((p) =>
            Buffer.concat([hex('05 00 00 03'), Buffer.from([name.length]), Buffer.from(name), Buffer.from(p)]),
          ),
      ),
  );
  // A whole success with anything behind it: its length; every shorter prefix: more needed.
  fc.assert(
    fc.property(success, fc.uint8Array({ maxLength: 64 }), (reply, rest) => {
      const whole = Buffer.concat([ok, reply]);
      assert.equal(SpliceEngine.socks5EarlyAnswer(Buffer.concat([whole, Buffer.from(rest)])), whole.length);
      for (let n = 0; n < whole.length; n++) assert.equal(SpliceEngine.socks5EarlyAnswer(whole.subarray(0, n)), 0);
    }),
    { numRuns: 2_000 },
  );
  // Anything: a length only for bytes that start with 05 02 01 00 05 00 00 and a known address type, and
  // never more than there is; -1 as soon as the bytes cannot be the start of such an answer.
  const seen = { length: 0, more: 0, refused: 0 };
  fc.assert(
    fc.property(
      fc.oneof(
        fc.uint8Array({ maxLength: 300 }).map((a) => Buffer.from(a)),
        fc.uint8Array({ maxLength: 40 }).map((a) => Buffer.concat([ok, hex('05'), Buffer.from(a)])),
        fc.uint8Array({ maxLength: 40 }).map((a) => Buffer.concat([ok, hex('05 00 00'), Buffer.from(a)])),
        fc
          .tuple(fc.constantFrom(1, 3, 4), fc.uint8Array({ maxLength: 30 }))
          .map(([t, a]) => Buffer.concat([ok, hex('05 00 00'), Buffer.from([t]), Buffer.from(a)])),
      ),
      (b) => {
        const n = SpliceEngine.socks5EarlyAnswer(b);
        const prefix = Buffer.concat([ok, hex('05 00 00')]);
        const k = Math.min(b.length, prefix.length);
        const startsRight = b.subarray(0, k).equals(prefix.subarray(0, k));
        const atyp = b.length > 7 ? b[7]! : undefined;
        if (n > 0) {
          seen.length++;
          assert.ok(startsRight && n <= b.length && [1, 3, 4].includes(atyp!), b.toString('hex'));
        } else if (n === 0) {
          seen.more++;
          assert.ok(startsRight && (atyp === undefined || [1, 3, 4].includes(atyp)), b.toString('hex'));
        } else {
          seen.refused++;
          assert.ok(!startsRight || (atyp !== undefined && ![1, 3, 4].includes(atyp)), b.toString('hex'));
        }
      },
    ),
    { numRuns: 20_000 },
  );
  assert.ok(seen.length > 100 && seen.more > 100 && seen.refused > 1000, JSON.stringify(seen));
});
