// Bounded fast-check fuzzing: parsers throw nothing but PPError; servers survive garbage.
import { it, after } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { isPPError } from '@pocketproxy/errors';
import {
  parseRequestHead,
  findHeadEnd,
  parseGreeting,
  parseUserPass,
  parseRequest,
  parseReply,
  parseUdpHeader,
  parseClientHello,
  classifyFirstBytes,
  readSocks5Answers,
  readConnectAnswer,
  createHttpProxy,
  createSocks5Server,
} from '../src/index.js';
import { ChunkedDecoder } from '../src/http/chunked.js';
import { ResponseReader } from '../src/http/response-reader.js';
import { parseResponseHead } from '../src/http/head.js';
import { authenticate, cleanup, connect, onCleanup, socksRequest, testDial, untilClose } from './helpers.js';

after(cleanup);

const RUNS = { numRuns: 400, seed: 42 };
const bytes = fc.uint8Array({ maxLength: 600 }).map((a) => Buffer.from(a));
// Bytes biased towards the grammar's own characters finds deeper paths than pure noise.
const headish = fc
  .array(
    fc.constantFrom(
      'GET ',
      'CONNECT ',
      'http://a/',
      ' HTTP/1.1',
      '\r\n',
      ':',
      ' ',
      'Host',
      'a',
      '\t',
      '\0',
      '\x80',
      'Content-Length: 1',
    ),
    { maxLength: 40 },
  )
  .map((parts) => Buffer.from(parts.join(''), 'latin1'));

function onlyPPError(f: () => unknown): void {
  try {
    f();
  } catch (e) {
    assert.ok(isPPError(e), `non-PPError thrown: ${String(e)}`);
  }
}

it('HTTP head parser', () => {
  fc.assert(
    fc.property(fc.oneof(bytes, headish), (b) =>
      onlyPPError(() => {
        const end = findHeadEnd(Buffer.concat([b, Buffer.from('\r\n\r\n')]));
        if (end > 0) parseRequestHead(Buffer.concat([b, Buffer.from('\r\n\r\n')]).subarray(0, end));
      }),
    ),
    RUNS,
  );
});

it('HTTP response head parser and reader: only PPError, and the same result however the bytes are split', () => {
  const respish = fc
    .array(
      fc.constantFrom(
        'HTTP/1.1 ',
        'HTTP/1.0 ',
        '200 OK',
        '100 Continue',
        '101 ',
        '204 ',
        '304 ',
        '\r\n',
        '\r\n\r\n',
        ':',
        ' ',
        'X',
        '\t',
        '\0',
        '\x80',
        'Content-Length: 3',
        'Content-Length: 1, 2',
        'Transfer-Encoding: chunked',
        'Connection: close',
        '3\r\nabc\r\n',
        '0\r\n',
        'abc',
      ),
      { maxLength: 40 },
    )
    .map((parts) => Buffer.from(parts.join(''), 'latin1'));
  const run = (method: string, parts: Buffer[]): { events: string[]; error?: string } => {
    const events: string[] = [];
    const r = new ResponseReader(method, {
      interim: (h) => events.push(`interim ${h.status}`),
      head: (h, f) => events.push(`head ${h.status} ${JSON.stringify(f)} ${h.headers.length}`),
      body: (b) => events.push(`body ${b.toString('latin1')}`),
      end: () => events.push('end'),
    });
    try {
      for (const p of parts) r.push(p);
      events.push(`eof ${r.eof()}`);
    } catch (e) {
      assert.ok(isPPError(e) && e.code === 'PP_ERR_PROXY_BAD_UPSTREAM_RESPONSE', `unexpected ${String(e)}`);
      return { events, error: e.code };
    }
    // Body slices may be cut differently; compare their concatenation.
    const merged: string[] = [];
    for (const ev of events) {
      if (ev.startsWith('body ') && merged.at(-1)?.startsWith('body ')) merged[merged.length - 1] += ev.slice(5);
      else merged.push(ev);
    }
    return { events: merged };
  };
  fc.assert(
    fc.property(
      fc.oneof(bytes, respish),
      fc.array(fc.nat(), { maxLength: 6 }),
      fc.constantFrom('GET', 'HEAD'),
      (b, cuts, method) => {
        onlyPPError(() => parseResponseHead(b));
        const at = [...new Set(cuts.map((c) => c % (b.length + 1)))].sort((x, y) => x - y);
        const parts: Buffer[] = [];
        let prev = 0;
        for (const c of [...at, b.length]) {
          parts.push(b.subarray(prev, c));
          prev = c;
        }
        const one = run(method, [b]);
        const split = run(method, parts);
        assert.equal(split.error, one.error);
        if (!one.error) assert.deepEqual(split.events, one.events);
      },
    ),
    RUNS,
  );
});

it('chunked body decoder', () => {
  const chunkish = fc
    .array(fc.constantFrom('3\r\n', 'abc', '\r\n', '0\r\n', 'ff;x\r\n', 'zz', '\n', ''), { maxLength: 30 })
    .map((p) => Buffer.from(p.join('')));
  fc.assert(
    fc.property(fc.oneof(bytes, chunkish), (b) => onlyPPError(() => new ChunkedDecoder().push(b, () => {}))),
    RUNS,
  );
});

it('SOCKS5 greeting, user/pass and request parsers', () => {
  const socksish = fc
    .tuple(fc.constantFrom(5, 1, 4), fc.uint8Array({ maxLength: 300 }))
    .map(([v, rest]) => Buffer.from([v, ...rest]));
  fc.assert(
    fc.property(fc.oneof(bytes, socksish), (b) => {
      onlyPPError(() => parseGreeting(b));
      onlyPPError(() => parseUserPass(b));
      onlyPPError(() => parseRequest(b));
    }),
    RUNS,
  );
});

it('SOCKS5 client: reply parser and answer reader (only PPError; a verdict on a prefix never changes with more bytes)', () => {
  // Answers shaped like a server's: method selection, auth status (when asked), reply with an
  // address (valid or not) and the target's first bytes; cut and flipped at random.
  const address = fc.oneof(
    {
      arbitrary: fc.constantFrom(
        [1, 10, 0, 0, 1, 0, 80],
        [4, ...new Array<number>(16).fill(0), 1, 0, 80],
        [3, 6, ...Buffer.from('a.test'), 1, 187],
      ),
      weight: 3,
    },
    { arbitrary: fc.constantFrom([3, 2, 0x20, 0x21, 0, 1], [3, 0, 0, 1], [9, 1, 2]), weight: 1 },
    { arbitrary: fc.array(fc.nat(255), { maxLength: 24 }), weight: 1 },
  );
  const answerish = fc
    .tuple(
      fc.constantFrom<'offered' | number>('offered', 'offered', 'offered', 0xff, 7),
      fc.boolean(),
      fc.constantFrom(0, 0, 1),
      fc.constantFrom(0, 0, 0, 1, 2, 5, 0x0a),
      address,
      fc.uint8Array({ maxLength: 8 }),
      fc.nat(60),
      fc.nat(255),
    )
    .map(([m, withAuth, status, rep, addr, tail, cutAt, flip]) => {
      const method: number = m === 'offered' ? (withAuth ? 2 : 0) : m;
      const b = Buffer.from([5, method, ...(withAuth ? [1, status] : []), 5, rep, 0, ...addr, ...tail]);
      if (flip % 4 === 0 && b.length > 0) b[flip % b.length] = b[flip % b.length]! ^ 0x5a;
      return [flip % 3 === 0 ? b.subarray(0, cutAt) : b, withAuth] as const;
    });
  const verdict = (b: Buffer, withAuth: boolean): string => {
    try {
      return JSON.stringify(readSocks5Answers(b, withAuth));
    } catch (e) {
      assert.ok(isPPError(e), `non-PPError thrown: ${String(e)}`);
      return `throws ${e.code}`;
    }
  };
  const input = fc.oneof(fc.tuple(bytes, fc.boolean()), answerish);
  fc.assert(
    fc.property(input, fc.nat(), ([b, withAuth], cut) => {
      onlyPPError(() => parseReply(b));
      const whole = verdict(b, withAuth);
      const prefix = verdict(b.subarray(0, cut % (b.length + 1)), withAuth);
      if (prefix !== JSON.stringify({ kind: 'more' })) assert.equal(prefix, whole);
      const parsed = JSON.parse(whole.startsWith('throws') ? '{}' : whole) as { kind?: string; length?: number };
      if (parsed.kind === 'connected') assert.ok(parsed.length! <= b.length);
    }),
    RUNS,
  );
});

it('CONNECT answer reader (relay -> device): only PPError; a head length inside the bytes; a verdict on a prefix holds with more bytes', () => {
  const answer = fc.oneof(
    bytes,
    headish.map((h) => Buffer.from(`HTTP/1.1 ${h}`, 'latin1')),
    fc
      .tuple(fc.integer({ min: 100, max: 599 }), bytes)
      .map(([st, rest]) =>
        Buffer.concat([Buffer.from(`HTTP/1.1 ${st} X\r\nX-PocketProxy-Error: e\r\n\r\n`, 'latin1'), rest]),
      ),
  );
  const verdict = (b: Buffer): string => {
    try {
      const end = readConnectAnswer(b);
      if (end !== undefined) assert.ok(Number.isInteger(end) && end > 0 && end <= b.length);
      return end === undefined ? 'more' : 'ok';
    } catch (e) {
      assert.ok(isPPError(e), String(e));
      return e.code;
    }
  };
  fc.assert(
    fc.property(answer, fc.nat(), (b, cut) => {
      const whole = verdict(b);
      const prefix = verdict(b.subarray(0, cut % (b.length + 1)));
      if (prefix !== 'more') assert.equal(whole, prefix);
    }),
    RUNS,
  );
});

it('SOCKS5 UDP header parser', () => {
  const udpish = fc
    .tuple(fc.constantFrom(1, 3, 4, 7), fc.uint8Array({ maxLength: 300 }))
    .map(([atyp, rest]) => Buffer.from([0, 0, 0, atyp, ...rest]));
  fc.assert(
    fc.property(fc.oneof(bytes, udpish), (b) => onlyPPError(() => parseUdpHeader(b))),
    RUNS,
  );
});

it('ClientHello parser and first-bytes classifier', () => {
  const tlsish = fc
    .tuple(fc.integer({ min: 0, max: 600 }), fc.uint8Array({ maxLength: 600 }))
    .map(([len, rest]) =>
      Buffer.from([0x16, 3, 1, len >> 8, len & 0xff, 1, 0, ((len - 4) >> 8) & 0xff, (len - 4) & 0xff, ...rest]),
    );
  fc.assert(
    fc.property(fc.oneof(bytes, tlsish), (b) => {
      onlyPPError(() => parseClientHello(b));
      classifyFirstBytes(b); // must never throw at all
    }),
    RUNS,
  );
});

it('servers answer or close on garbage, and keep serving', async () => {
  const http = createHttpProxy({ authenticate, dial: testDial, headTimeoutMs: 300 });
  const socks = createSocks5Server({ authenticate, dial: testDial, handshakeTimeoutMs: 300 });
  const hp = (await http.listen(0)).port;
  const sp = (await socks.listen(0)).port;
  onCleanup(() => http.close());
  onCleanup(() => socks.close());
  const samples = fc.sample(fc.oneof(bytes, headish), { numRuns: 40, seed: 7 });
  await Promise.all(
    samples.flatMap((b) =>
      [hp, sp].map(async (port) => {
        const s = await connect(port);
        s.end(b);
        await untilClose(s, 3000);
      }),
    ),
  );
  // Still alive: a valid SOCKS request to a refused port gets a proper reply.
  const s = await connect(sp);
  s.write(
    Buffer.from([
      5,
      1,
      2,
      1,
      5,
      ...Buffer.from('alice'),
      6,
      ...Buffer.from('s3cret'),
      ...socksRequest(1, '127.0.0.1', 1),
    ]),
  );
  const got = await untilClose(s);
  assert.equal(got[got.length - 9], 0x05);
  const deadline = Date.now() + 2000;
  while (http.connectionCount + socks.connectionCount > 0 && Date.now() < deadline)
    await new Promise((r) => setTimeout(r, 10));
  assert.equal(http.connectionCount + socks.connectionCount, 0);
});
