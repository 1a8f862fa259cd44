// The origin's answer as the HTTP proxy reads it (response-reader.ts) and passes it on (forward.ts):
// framing (Content-Length, chunked, until close, none), interim 1xx, hop-by-hop removal, keep-alive
// decisions and broken origins. Pure reader tests first, then a scripted raw-TCP origin behind the proxy.
import { it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as net from 'node:net';
import { once } from 'node:events';
import { createHttpProxy, ERROR_HEADER, type ProxyServer } from '../src/index.js';
import { ResponseReader, responseFraming, type ResponseFraming } from '../src/http/response-reader.js';
import { parseResponseHead } from '../src/http/head.js';
import { requestHead } from '../src/http/forward.js';
import {
  authenticate,
  basic,
  cleanup,
  connect,
  onCleanup,
  PASS,
  readUntil,
  testDial,
  untilClose,
  USER,
} from './helpers.js';

interface Read {
  interim: number[];
  status?: number;
  framing?: ResponseFraming;
  body: string;
  ended: boolean;
}

function read(method: string, parts: Buffer[]): Read {
  const r: Read = { interim: [], body: '', ended: false };
  const reader = new ResponseReader(method, {
    interim: (h) => r.interim.push(h.status),
    head: (h, f) => {
      r.status = h.status;
      r.framing = f;
    },
    body: (b) => {
      r.body += b.toString('latin1');
    },
    end: () => {
      r.ended = true;
    },
  });
  for (const p of parts) reader.push(p);
  if (!r.ended) reader.eof();
  return r;
}
const whole = (s: string): Buffer[] => [Buffer.from(s, 'latin1')];
const bytewise = (s: string): Buffer[] => [...Buffer.from(s, 'latin1')].map((b) => Buffer.from([b]));

const CASES: Array<{
  name: string;
  method?: string;
  wire: string;
  want: Partial<Read> & { kind: ResponseFraming['kind'] };
}> = [
  {
    name: 'Content-Length',
    wire: 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhelloEXTRA',
    want: { status: 200, kind: 'length', body: 'hello', ended: true },
  },
  {
    name: 'Content-Length 0',
    wire: 'HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n',
    want: { status: 200, kind: 'length', body: '', ended: true },
  },
  {
    name: 'repeated equal Content-Length',
    wire: 'HTTP/1.1 200 OK\r\nContent-Length: 3, 3\r\nContent-Length: 3\r\n\r\nabc',
    want: { kind: 'length', body: 'abc', ended: true },
  },
  {
    name: 'chunked with extension and trailer',
    wire: 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3;x=y\r\nabc\r\n2\r\nde\r\n0\r\nX-T: 1\r\n\r\nNEXT',
    want: { kind: 'chunked', body: 'abcde', ended: true },
  },
  {
    name: 'chunked wins over Content-Length',
    wire: 'HTTP/1.1 200 OK\r\nContent-Length: 100\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nz\r\n0\r\n\r\n',
    want: { kind: 'chunked', body: 'z', ended: true },
  },
  {
    name: 'non-chunked Transfer-Encoding: until close',
    wire: 'HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nraw bytes',
    want: { kind: 'close', body: 'raw bytes', ended: true },
  },
  {
    name: 'no framing: until close',
    wire: 'HTTP/1.0 200 OK\r\n\r\nuntil the end',
    want: { kind: 'close', body: 'until the end', ended: true },
  },
  {
    name: 'HEAD with Content-Length: no body',
    method: 'HEAD',
    wire: 'HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n',
    want: { kind: 'none', body: '', ended: true },
  },
  {
    name: '204',
    wire: 'HTTP/1.1 204 No Content\r\nContent-Length: 7\r\n\r\n',
    want: { status: 204, kind: 'none', body: '', ended: true },
  },
  {
    name: '304',
    wire: 'HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: chunked\r\n\r\n',
    want: { status: 304, kind: 'none', body: '', ended: true },
  },
  {
    name: '100 and 103 before the answer',
    wire: 'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </s.css>\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok',
    want: { interim: [100, 103], status: 201, kind: 'length', body: 'ok', ended: true },
  },
  {
    name: 'status line without reason',
    wire: 'HTTP/1.1 200\r\nContent-Length: 1\r\n\r\nx',
    want: { status: 200, body: 'x', kind: 'length', ended: true },
  },
];

for (const c of CASES) {
  it(`response reader: ${c.name} (whole and byte by byte)`, () => {
    for (const split of [whole, bytewise]) {
      const r = read(c.method ?? 'GET', split(c.wire));
      const { kind, ...rest } = c.want;
      assert.equal(r.framing?.kind, kind);
      for (const [k, v] of Object.entries(rest)) assert.deepEqual(r[k as keyof Read], v, `${k} (${split.name})`);
    }
  });
}

it('response reader: a body cut short is not complete; malformed answers throw PP_ERR_PROXY_BAD_UPSTREAM_RESPONSE', () => {
  const cut = new ResponseReader('GET', {
    interim() {},
    head() {},
    body() {},
    end() {
      assert.fail('not complete');
    },
  });
  cut.push(Buffer.from('HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc'));
  assert.equal(cut.eof(), false);
  const bad = [
    'HTTP/2 200 OK\r\n\r\n',
    'HTTP/1.1 20 OK\r\n\r\n',
    'ICY 200 OK\r\n\r\n',
    'HTTP/1.1 200 OK\r\nBad Name: x\r\n\r\n',
    'HTTP/1.1 200 OK\r\n folded\r\n\r\n',
    'HTTP/1.1 200 OK\r\nContent-Length: 1, 2\r\n\r\n',
    'HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n',
    'HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n\r\n',
    'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n',
    `HTTP/1.1 200 OK\r\nX: ${'a'.repeat(20_000)}\r\n\r\n`,
    `HTTP/1.1 200 OK\r\nX: ${'a'.repeat(20_000)}`,
  ];
  for (const wire of bad) {
    const r = new ResponseReader('GET', { interim() {}, head() {}, body() {}, end() {} });
    assert.throws(
      () => r.push(Buffer.from(wire)),
      { code: 'PP_ERR_PROXY_BAD_UPSTREAM_RESPONSE' },
      JSON.stringify(wire.slice(0, 60)),
    );
  }
});

it('responseFraming and requestHead', () => {
  const h = (s: string) => parseResponseHead(Buffer.from(s));
  assert.deepEqual(responseFraming('GET', h('HTTP/1.1 200 OK\r\nContent-Length: 012\r\n\r\n')), {
    kind: 'length',
    length: 12,
  });
  assert.deepEqual(responseFraming('GET', h('HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n')), {
    kind: 'chunked',
  });
  assert.deepEqual(responseFraming('GET', h('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n')), {
    kind: 'close',
  });
  assert.equal(
    requestHead('GET', '/x?y', [
      ['Host', 'a.test'],
      ['Accept', '*/*'],
    ]).head,
    'GET /x?y HTTP/1.1\r\nHost: a.test\r\nAccept: */*\r\nConnection: close\r\n\r\n',
  );
  assert.equal(
    requestHead('POST', '/', [['Host', 'a.test']]).head,
    'POST / HTTP/1.1\r\nHost: a.test\r\nContent-Length: 0\r\nConnection: close\r\n\r\n',
  );
  const te = requestHead('POST', '/', [
    ['Host', 'a.test'],
    ['Transfer-Encoding', 'chunked'],
  ]);
  assert.equal(te.chunked, true);
  assert.ok(!te.head.includes('Content-Length'));
});

// ---- through the proxy, against an origin that answers scripted bytes -------------------------

let proxy: ProxyServer, port: number;
const AUTH = `Proxy-Authorization: ${basic(USER, PASS)}\r\n`;
before(async () => {
  proxy = createHttpProxy({ authenticate, dial: testDial });
  port = (await proxy.listen(0)).port;
  onCleanup(() => proxy.close());
});
after(cleanup);

/** An origin that reads one request head (and `bodyBytes` more), records it, then runs `answer`. */
async function scripted(
  answer: (s: net.Socket, request: string) => void,
  bodyBytes = 0,
): Promise<{ port: number; requests: string[] }> {
  const requests: string[] = [];
  const srv = net.createServer((s) => {
    let buf = '';
    s.on('error', () => {});
    s.on('data', function onData(d: Buffer) {
      buf += d.toString('latin1');
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0 || buf.length < end + 4 + bodyBytes) return;
      s.removeListener('data', onData);
      requests.push(buf);
      answer(s, buf);
    });
  });
  srv.listen(0, '127.0.0.1');
  await once(srv, 'listening');
  onCleanup(() => new Promise((r) => srv.close(r)));
  return { port: (srv.address() as net.AddressInfo).port, requests };
}

const get = (o: number, extra = '', method = 'GET', version = '1.1'): string =>
  `${method} http://127.0.0.1:${o}/x HTTP/${version}\r\nHost: x\r\n${AUTH}${extra}\r\n`;

it('proxy: origin chunked -> customer gets a re-chunked body and keeps the connection; upstream request is Connection: close', async () => {
  const o = await scripted((s) =>
    s.end(
      'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: X-Drop\r\nX-Drop: 1\r\nKeep-Alive: 5\r\nX-Keep: 2\r\n\r\n' +
        '5\r\nhello\r\n0\r\nX-Trailer: t\r\n\r\n',
    ),
  );
  const c = await connect(port);
  c.write(get(o.port));
  const res = (await readUntil(c, (b) => b.toString().endsWith('0\r\n\r\n'))).toString();
  assert.match(res, /^HTTP\/1\.1 200 OK\r\n/);
  assert.match(res, /\r\nX-Keep: 2\r\n/);
  assert.doesNotMatch(res, /X-Drop|Keep-Alive: 5/);
  assert.match(res, /\r\nTransfer-Encoding: chunked\r\nConnection: keep-alive\r\n\r\n5\r\nhello\r\n0\r\n\r\n$/);
  assert.match(o.requests[0]!, /^GET \/x HTTP\/1\.1\r\nHost: 127\.0\.0\.1:\d+\r\n/);
  assert.match(o.requests[0]!, /\r\nConnection: close\r\n\r\n$/);
  assert.doesNotMatch(o.requests[0]!, /Proxy-Authorization/i);
  // The same customer connection serves another request.
  c.write(get(o.port));
  await readUntil(c, (b) => (b.toString().match(/0\r\n\r\n/g) ?? []).length === 1 && b.toString().includes('hello'));
  c.destroy();
});

it('proxy: origin body until close -> chunked to HTTP/1.1, raw + close to HTTP/1.0', async () => {
  const o = await scripted((s) => {
    s.write('HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\npart1-');
    setTimeout(() => s.end('part2'), 20);
  });
  const c11 = await connect(port);
  c11.write(get(o.port));
  const r11 = (await readUntil(c11, (b) => b.toString().endsWith('0\r\n\r\n'))).toString();
  assert.match(
    r11,
    /Transfer-Encoding: chunked\r\nConnection: keep-alive\r\n\r\n6\r\npart1-\r\n5\r\npart2\r\n0\r\n\r\n$/,
  );
  c11.destroy();
  const c10 = await connect(port);
  c10.write(get(o.port, '', 'GET', '1.0'));
  const r10 = (await untilClose(c10)).toString();
  assert.match(r10, /^HTTP\/1\.1 200 OK\r\nContent-Type: text\/plain\r\nConnection: close\r\n\r\npart1-part2$/);
});

it('proxy: HEAD, 204 and 304 carry no body and keep the connection', async () => {
  const o = await scripted((s, req) => {
    if (req.startsWith('HEAD')) s.end('HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n');
    else if (req.includes('If-None-Match')) s.end('HTTP/1.1 304 Not Modified\r\nETag: "a"\r\n\r\n');
    else s.end('HTTP/1.1 204 No Content\r\n\r\n');
  });
  const c = await connect(port);
  c.write(get(o.port, '', 'HEAD'));
  let r = (await readUntil(c, (b) => b.includes('\r\n\r\n'))).toString();
  assert.equal(r, 'HTTP/1.1 200 OK\r\nContent-Length: 10\r\nConnection: keep-alive\r\n\r\n');
  c.write(get(o.port, 'If-None-Match: "a"\r\n'));
  r = (await readUntil(c, (b) => b.includes('\r\n\r\n'))).toString();
  assert.equal(r, 'HTTP/1.1 304 Not Modified\r\nETag: "a"\r\nConnection: keep-alive\r\n\r\n');
  c.write(get(o.port));
  r = (await readUntil(c, (b) => b.includes('\r\n\r\n'))).toString();
  assert.equal(r, 'HTTP/1.1 204 No Content\r\nConnection: keep-alive\r\n\r\n');
  c.destroy();
});

it('proxy: 100 Continue and 103 Early Hints are passed on before the answer', async () => {
  const o = await scripted((s) => {
    s.write('HTTP/1.1 100 Continue\r\n\r\n');
    s.once('data', () =>
      s.end(
        'HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok',
      ),
    );
  });
  const c = await connect(port);
  c.write(
    `POST http://127.0.0.1:${o.port}/x HTTP/1.1\r\nHost: x\r\n${AUTH}Expect: 100-continue\r\nContent-Length: 4\r\n\r\n`,
  );
  await readUntil(c, (b) => b.toString() === 'HTTP/1.1 100 Continue\r\n\r\n');
  c.write('body');
  const r = (await readUntil(c, (b) => b.toString().endsWith('ok'))).toString();
  assert.equal(
    r,
    'HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 2\r\nConnection: keep-alive\r\n\r\nok',
  );
  assert.match(o.requests[0]!, /\r\nExpect: 100-continue\r\n/);
  c.destroy();
});

it('proxy: a malformed answer is a 502 PP_ERR_PROXY_BAD_UPSTREAM_RESPONSE; no answer at all is PP_ERR_PROXY_TARGET_RESET', async () => {
  const bad = await scripted((s) => s.end('HTTP/1.1 200 OK\r\nBad Header\r\n\r\n'));
  let c = await connect(port);
  c.write(get(bad.port));
  let r = (await untilClose(c)).toString();
  assert.match(r, /^HTTP\/1\.1 502 /);
  assert.match(r, new RegExp(`${ERROR_HEADER}: PP_ERR_PROXY_BAD_UPSTREAM_RESPONSE`));
  const silent = await scripted((s) => s.end());
  c = await connect(port);
  c.write(get(silent.port));
  r = (await untilClose(c)).toString();
  assert.match(r, new RegExp(`^HTTP/1\\.1 502 [^]*${ERROR_HEADER}: PP_ERR_PROXY_TARGET_RESET`));
});

it('proxy: an answer cut short after its head closes the customer connection (cannot be reported in-band)', async () => {
  const o = await scripted((s) => s.end('HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly this'));
  const c = await connect(port);
  c.write(get(o.port));
  const r = (await untilClose(c)).toString();
  assert.match(r, /^HTTP\/1\.1 200 OK\r\nContent-Length: 100\r\nConnection: keep-alive\r\n\r\nonly this$/);
});

it('proxy: a large Content-Length body streams through intact', async () => {
  const big = Buffer.alloc(3_000_000, 'x');
  big.write('START', 0);
  big.write('END', big.length - 3);
  const o = await scripted((s) => {
    s.write(`HTTP/1.1 200 OK\r\nContent-Length: ${big.length}\r\n\r\n`);
    s.end(big);
  });
  const c = await connect(port);
  c.write(get(o.port));
  const r = await readUntil(c, (b) => b.length >= big.length && b.subarray(-3).toString() === 'END', 10_000);
  const body = r.subarray(r.indexOf('\r\n\r\n') + 4);
  assert.equal(body.length, big.length);
  assert.ok(body.equals(big));
  c.destroy();
});
