// HTTP proxy behaviour beyond the matrix: keep-alive, bodies, header hygiene, failure table,
// malformed input (answered, never a crash, server keeps serving).
import { it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  createHttpProxy,
  createPolicyDialer,
  LeanServer,
  FrontServer,
  type ProxyServer,
  type RequestFailedEvent,
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
  tcpEcho,
  testDial,
  testResolve,
  untilClose,
  USER,
} from './helpers.js';

let origin: number, echo: number, proxy: ProxyServer, port: number, strict: number;
const failures: RequestFailedEvent[] = [];
const AUTH = `Proxy-Authorization: ${basic(USER, PASS)}\r\n`;

before(async () => {
  origin = await httpOrigin();
  echo = await tcpEcho();
  proxy = createHttpProxy({ authenticate, dial: testDial, headTimeoutMs: 500 });
  proxy.on('requestFailed', (e) => failures.push(e));
  port = (await proxy.listen(0)).port;
  // Default policy: loopback and private destinations refused.
  const p2 = createHttpProxy({ authenticate, dial: createPolicyDialer({ policy: {}, resolve: testResolve }) });
  strict = (await p2.listen(0)).port;
  onCleanup(() => proxy.close());
  onCleanup(() => p2.close());
});
after(cleanup);

function countResponses(b: Buffer): number {
  return (b.toString('latin1').match(/HTTP\/1\.1 200 /g) ?? []).length;
}

it('serves several absolute-form requests on one keep-alive connection (pipelined too)', async () => {
  const s = await connect(port);
  const req = (path: string, extra = ''): string =>
    `GET http://127.0.0.1:${origin}${path} HTTP/1.1\r\nHost: x\r\n${AUTH}${extra}\r\n`;
  s.write(req('/one'));
  await readUntil(s, (b) => countResponses(b) === 1 && b.toString().includes('"/one"'));
  s.write(req('/two'));
  await readUntil(s, (b) => b.toString().includes('"/two"'));
  // Pipelined: two heads in one write.
  s.write(req('/three') + req('/four'));
  const both = await readUntil(s, (b) => b.toString().includes('"/four"'));
  assert.ok(both.toString().includes('"/three"'));
  s.destroy();
});

it('forwards Content-Length and chunked bodies; strips hop-by-hop and Proxy-Authorization; rewrites Host', async () => {
  const s = await connect(port);
  s.write(
    `POST http://origin.test:${origin}/p HTTP/1.1\r\nHost: wrong\r\n${AUTH}Connection: keep-alive, X-Hop\r\n` +
      `X-Hop: 1\r\nKeep-Alive: 5\r\nX-End: 2\r\nContent-Length: 5\r\n\r\nhello`,
  );
  let res = (await readUntil(s, (b) => b.toString().includes('"body":"hello"'))).toString();
  let body = JSON.parse(res.slice(res.indexOf('{'))) as { headers: Record<string, string> };
  assert.equal(body.headers.host, `origin.test:${origin}`);
  assert.equal(body.headers['x-hop'], undefined);
  assert.equal(body.headers['keep-alive'], undefined);
  assert.equal(body.headers['proxy-authorization'], undefined);
  assert.equal(body.headers['x-end'], '2');
  s.write(
    `POST http://127.0.0.1:${origin}/c HTTP/1.1\r\nHost: x\r\n${AUTH}Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n4;ext=1\r\ndefg\r\n0\r\n\r\n`,
  );
  res = (await readUntil(s, (b) => b.toString().includes('"body":"abcdefg"'))).toString();
  body = JSON.parse(res.slice(res.lastIndexOf('{"method"'))) as { headers: Record<string, string> };
  assert.equal(body.headers['transfer-encoding'], 'chunked');
  s.destroy();
});

it('CONNECT forwards bytes sent right behind the head', async () => {
  const s = await connect(port);
  s.write(`CONNECT 127.0.0.1:${echo} HTTP/1.1\r\n${AUTH}\r\nearly-bytes`);
  const got = await readUntil(s, (b) => b.toString().includes('early-bytes'));
  assert.match(got.toString(), /^HTTP\/1\.1 200 Connection Established\r\n\r\nearly-bytes$/);
  s.destroy();
});

async function ask(p: number, raw: string | Buffer): Promise<string> {
  const s = await connect(p);
  s.write(raw);
  return (await untilClose(s, 4000)).toString('latin1');
}

const FAILURES: Array<[string, () => string, number, string]> = [
  ['refused port', () => `CONNECT 127.0.0.1:1 HTTP/1.1\r\n${AUTH}\r\n`, 502, 'PP_ERR_PROXY_TARGET_REFUSED'],
  ['unknown name', () => `CONNECT nx.test:80 HTTP/1.1\r\n${AUTH}\r\n`, 503, 'PP_ERR_PROXY_DNS_NOT_FOUND'],
  [
    'absolute-form unknown name',
    () => `GET http://nx.test/ HTTP/1.1\r\n${AUTH}\r\n`,
    503,
    'PP_ERR_PROXY_DNS_NOT_FOUND',
  ],
  ['origin-form', () => `GET / HTTP/1.1\r\nHost: x\r\n${AUTH}\r\n`, 400, 'PP_ERR_PROXY_BAD_REQUEST'],
  [
    'https absolute-form',
    () => `GET https://example.com/ HTTP/1.1\r\n${AUTH}\r\n`,
    400,
    'PP_ERR_PROXY_UNSUPPORTED_SCHEME',
  ],
  ['garbage request line', () => `HELLO\r\n\r\n`, 400, 'PP_ERR_PROXY_BAD_REQUEST'],
  ['obs-fold', () => `GET http://127.0.0.1:${origin}/ HTTP/1.1\r\nX: a\r\n b\r\n\r\n`, 400, 'PP_ERR_PROXY_BAD_REQUEST'],
  [
    'space before colon',
    () => `GET http://127.0.0.1:${origin}/ HTTP/1.1\r\nHost : x\r\n\r\n`,
    400,
    'PP_ERR_PROXY_BAD_REQUEST',
  ],
  [
    'CL + TE',
    () => `POST http://127.0.0.1:${origin}/ HTTP/1.1\r\n${AUTH}Content-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n`,
    400,
    'PP_ERR_PROXY_BAD_REQUEST',
  ],
  ['bad CONNECT target', () => `CONNECT example.com HTTP/1.1\r\n${AUTH}\r\n`, 400, 'PP_ERR_PROXY_BAD_REQUEST'],
  ['HTTP/2 preface', () => `PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n`, 400, 'PP_ERR_PROXY_BAD_REQUEST'],
  [
    'too many headers',
    () => `GET http://a/ HTTP/1.1\r\n${'X: y\r\n'.repeat(101)}\r\n`,
    400,
    'PP_ERR_PROXY_BAD_REQUEST',
  ],
  [
    'head > 16 KB',
    () => `GET http://a/ HTTP/1.1\r\nX: ${'a'.repeat(17000)}\r\n\r\n`,
    431,
    'PP_ERR_PROXY_HEAD_TOO_LARGE',
  ],
  [
    'malformed credentials',
    () => `CONNECT 127.0.0.1:${echo} HTTP/1.1\r\nProxy-Authorization: Basic !!!\r\n\r\n`,
    407,
    'PP_ERR_PROXY_AUTH_FAILED',
  ],
];

for (const [name, raw, status, code] of FAILURES) {
  it(`answers ${status} ${code} for ${name}`, async () => {
    const res = await ask(port, raw());
    assert.match(res, new RegExp(`^HTTP/1\\.1 ${status} `));
    assert.match(res, new RegExp(`X-PocketProxy-Error: ${code}\r\n`));
  });
}

it('refuses forbidden destinations with 403 under the default policy (incl. DNS rebinding and v4-mapped)', async () => {
  for (const target of [
    '127.0.0.1:80',
    '[::1]:80',
    '[::ffff:127.0.0.1]:80',
    'private.test:80',
    'rebind.test:80',
    '169.254.169.254:80',
    '100.64.0.1:80',
  ]) {
    const res = await ask(strict, `CONNECT ${target} HTTP/1.1\r\n${AUTH}\r\n`);
    assert.match(res, /^HTTP\/1\.1 403 /, target);
    assert.match(res, /X-PocketProxy-Error: PP_ERR_PROXY_FORBIDDEN_DESTINATION/);
  }
});

it('times out a half-sent head with 408 and keeps serving', async () => {
  const res = await ask(port, 'GET http://a/ HTTP/1.1\r\nX: partial');
  assert.match(res, /^HTTP\/1\.1 408 /);
  const ok = await ask(port, `GET http://127.0.0.1:${origin}/after HTTP/1.1\r\n${AUTH}Connection: close\r\n\r\n`);
  assert.match(ok, /^HTTP\/1\.1 200 /);
});

it("a customer's last request (Connection: close): the whole answer and our FIN; on LeanSockets the connection closes without waiting for the customer's FIN", async () => {
  const net = await import('node:net');
  // A front's listener hands absolute-form requests to the JS path on LeanSockets.
  const lean = proxy.server instanceof LeanServer || proxy.server instanceof FrontServer;
  // Half-open: the customer's FIN is sent only when the test says so.
  const s = net.connect({ port, host: '127.0.0.1', allowHalfOpen: true });
  onCleanup(() => s.destroy());
  await new Promise((r) => s.once('connect', r));
  const req = `GET http://127.0.0.1:${origin}/last HTTP/1.1\r\nHost: x\r\nX-Last: 1\r\n${AUTH}Connection: close\r\n\r\n`;
  // Only this connection's close counts: an earlier test's connection may still be closing on the
  // server side (its event would otherwise be taken for ours). The request's size tells them apart.
  const closed = new Promise<void>((r) => {
    const on = (e: { bytesIn: number }): void => {
      if (e.bytesIn !== Buffer.byteLength(req)) return;
      proxy.off('connectionClosed', on);
      r();
    };
    proxy.on('connectionClosed', on);
  });
  let closedYet = false;
  void closed.then(() => (closedYet = true));
  const chunks: Buffer[] = [];
  s.on('data', (d: Buffer) => chunks.push(d));
  const ended = new Promise((r) => s.once('end', r));
  s.write(req);
  await ended;
  const res = Buffer.concat(chunks).toString();
  assert.match(res, /^HTTP\/1\.1 200 /);
  assert.match(res, /Connection: close/);
  assert.ok(res.includes('"/last"'), 'the whole answer came before the FIN');
  if (lean) {
    await Promise.race([closed, new Promise((r) => setTimeout(r, 3_000))]);
    assert.equal(closedYet, true, "closed without the customer's FIN");
  } else {
    // node:net sockets half-close and wait for the customer's FIN.
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(closedYet, false, 'node:net waits for the FIN');
    s.end();
    await closed;
  }
});

it('reports failures as requestFailed events', () => {
  assert.ok(failures.some((f) => f.code === 'PP_ERR_PROXY_TARGET_REFUSED' && f.principal === 'con_alice'));
  assert.ok(failures.some((f) => f.code === 'PP_ERR_PROXY_HEAD_TOO_LARGE' && f.principal === undefined));
});

it('re-chunks a large close-delimited answer intact for a customer that reads slowly (framing under backpressure)', async () => {
  const net = await import('node:net');
  const body = Buffer.alloc(4 << 20);
  for (let i = 0; i < body.length; i++) body[i] = (i * 31) & 0xff;
  const srv = net.createServer((c) => {
    c.on('error', () => {});
    c.once('data', () => c.end(Buffer.concat([Buffer.from('HTTP/1.1 200 OK\r\n\r\n'), body])));
  });
  srv.listen(0, '127.0.0.1');
  await new Promise((r) => srv.once('listening', r));
  onCleanup(
    () =>
      new Promise((r) => {
        srv.close(r);
      }),
  );
  const s = await connect(port);
  s.write(
    `GET http://127.0.0.1:${(srv.address() as { port: number }).port}/ HTTP/1.1\r\n${AUTH}Connection: close\r\n\r\n`,
  );
  s.pause();
  await new Promise((r) => setTimeout(r, 300)); // the proxy's write buffer fills up meanwhile
  const got = await untilClose(s, 10_000);
  const start = got.indexOf('\r\n\r\n') + 4;
  if (proxy.server instanceof FrontServer) {
    // The native front serves a last GET by splicing: the body stays delimited by the close, which for
    // a customer's last request says the same (re-chunking would not show a cut origin either: the
    // proxy cannot tell one from the end and would write the last chunk anyway).
    assert.doesNotMatch(got.toString('latin1', 0, start), /Transfer-Encoding/);
    assert.match(got.toString('latin1', 0, start), /Connection: close/);
    assert.ok(got.subarray(start).equals(body));
    return;
  }
  assert.match(got.toString('latin1', 0, start), /Transfer-Encoding: chunked/);
  const out: Buffer[] = [];
  for (let i = start; ; ) {
    const eol = got.indexOf('\r\n', i);
    const size = parseInt(got.toString('latin1', i, eol), 16);
    assert.ok(Number.isFinite(size), `bad chunk size line at ${i}`);
    if (size === 0) break;
    out.push(got.subarray(eol + 2, eol + 2 + size));
    assert.equal(got.toString('latin1', eol + 2 + size, eol + 4 + size), '\r\n');
    i = eol + 4 + size;
  }
  assert.ok(Buffer.concat(out).equals(body));
});

/** An origin that records every request head it reads and answers each with "ok", closing after. */
async function recordingOrigin(): Promise<{ port: number; heads: string[] }> {
  const net = await import('node:net');
  const heads: string[] = [];
  const srv = net.createServer((c) => {
    let buf = '';
    c.on('error', () => {});
    c.on('data', (d) => {
      buf += d.toString('latin1');
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      heads.push(buf.slice(0, end + 4));
      c.end('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');
    });
  });
  srv.listen(0, '127.0.0.1');
  await new Promise((r) => srv.once('listening', r));
  onCleanup(() => new Promise((r) => srv.close(r)));
  return { port: (srv.address() as { port: number }).port, heads };
}

it("an absolute-form request's head is written on the origin socket while it connects, once, unless a limited meter must be charged first or a body follows", async () => {
  const o = await recordingOrigin();
  // resolves to an address where nothing listens first (refused), then the origin's
  const resolve = async (host: string) =>
    host === 'two.test'
      ? [
          { address: '127.0.0.2', family: 4 as const },
          { address: '127.0.0.1', family: 4 as const },
        ]
      : testResolve(host);
  const base = createPolicyDialer({ policy: { allowLoopback: true }, resolve, connectTimeoutMs: 2000 });
  // Each write on an attempt's socket, and whether that socket was still connecting then.
  let writes: string[] = [];
  const dial: typeof base = (req) =>
    base({
      ...req,
      onSocket: (s) => {
        const write = s.write.bind(s) as (d: Uint8Array | string) => boolean;
        (s as { write: (d: Uint8Array | string) => boolean }).write = (d) => {
          writes.push((s as { connecting?: boolean }).connecting ? 'while connecting' : 'connected');
          return write(d);
        };
        req.onSocket?.(s);
      },
    });
  const meters = {
    none: undefined,
    unlimited: { take: () => 0, unlimited: () => true },
    limited: { take: () => 0, unlimited: () => false },
  };
  for (const [name, meter] of Object.entries(meters)) {
    const px = createHttpProxy({
      authenticate: async (u, p) => (u === USER && p === PASS ? { principal: 'con_alice', meter } : null),
      dial,
    });
    const pport = (await px.listen(0)).port;
    onCleanup(() => px.close());
    for (const host of [`127.0.0.1:${o.port}`, `two.test:${o.port}`]) {
      writes = [];
      o.heads.length = 0;
      const s = await connect(pport);
      s.write(`GET http://${host}/p?q=${name} HTTP/1.1\r\nHost: x\r\n${AUTH}Connection: close\r\n\r\n`);
      const got = (await untilClose(s)).toString('latin1');
      assert.match(got, /^HTTP\/1\.1 200 OK\r\n[\s\S]*\r\n\r\nok$/, `${name} ${host}`);
      assert.deepEqual(o.heads.length, 1, `${name} ${host}: the origin read one head`);
      assert.match(
        o.heads[0]!,
        new RegExp(`^GET /p\\?q=${name} HTTP/1\\.1\\r\\nHost: ${host.replace('.', '\\.')}\\r\\n`),
      );
      assert.doesNotMatch(o.heads[0]!, /Proxy-Authorization/i);
      const attempts = host.startsWith('two') ? 2 : 1;
      // The head goes to every attempt's socket while it connects (the refused one drops it), or,
      // with a limited meter, only to the connected one, after the meter was charged.
      assert.deepEqual(
        writes,
        name === 'limited' ? ['connected'] : Array(attempts).fill('while connecting'),
        `${name} ${host}`,
      );
    }
    // A request with a body: its head waits for the connection whatever the meter.
    writes = [];
    o.heads.length = 0;
    const s = await connect(pport);
    s.write(
      `POST http://127.0.0.1:${o.port}/form HTTP/1.1\r\nHost: x\r\n${AUTH}Content-Length: 2\r\nConnection: close\r\n\r\nhi`,
    );
    assert.match((await untilClose(s)).toString('latin1'), /^HTTP\/1\.1 200 OK\r\n/, `${name} POST`);
    assert.match(o.heads[0] ?? '', /^POST \/form HTTP\/1\.1\r\n/);
    assert.equal(writes[0], 'connected', `${name} POST`);
  }
});
