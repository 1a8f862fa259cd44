// SNI / Host peek and the CONNECT client, on loopback.
import { it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as net from 'node:net';
import * as tls from 'node:tls';
import { once } from 'node:events';
import { peekTarget, parseClientHello, connectVia, createHttpProxy, type PeekResult } from '../src/index.js';
import { authenticate, cleanup, onCleanup, PASS, readUntil, tcpEcho, testDial, USER } from './helpers.js';

let peekPort: number;
const results: Array<(r: PeekResult) => void> = [];

before(async () => {
  const srv = net.createServer((s) => {
    s.on('error', () => {});
    void peekTarget(s, { timeoutMs: 300 }).then((r) => {
      results.shift()?.(r);
      s.destroy();
    });
  });
  srv.listen(0, '127.0.0.1');
  await once(srv, 'listening');
  peekPort = (srv.address() as net.AddressInfo).port;
  onCleanup(() => new Promise((r) => srv.close(r)));
});
after(cleanup);

function nextPeek(): Promise<PeekResult> {
  return new Promise((r) => results.push(r));
}

async function rawSend(parts: Array<Buffer | string>, gapMs = 30): Promise<PeekResult> {
  const p = nextPeek();
  const s = net.connect(peekPort, '127.0.0.1');
  s.on('error', () => {});
  await once(s, 'connect');
  for (const part of parts) {
    s.write(part);
    await new Promise((r) => setTimeout(r, gapMs));
  }
  const r = await p;
  s.destroy();
  return r;
}

let helloBytes: Buffer;

it('extracts SNI from a real tls.connect ClientHello', async () => {
  const p = nextPeek();
  const c = tls.connect({
    host: '127.0.0.1',
    port: peekPort,
    servername: 'Www.Example.TEST',
    rejectUnauthorized: false,
  });
  c.on('error', () => {});
  const r = await p;
  c.destroy();
  assert.equal(r.kind, 'tls');
  assert.equal(r.host, 'www.example.test');
  assert.equal(r.buffered[0], 0x16);
  helloBytes = r.buffered;
});

it('extracts SNI from a ClientHello split across two records and three TCP segments', async () => {
  const hs = helloBytes.subarray(5, 5 + helloBytes.readUInt16BE(3));
  const rec = (b: Buffer): Buffer => Buffer.concat([Buffer.from([0x16, 3, 1, b.length >> 8, b.length & 0xff]), b]);
  const split = Buffer.concat([rec(hs.subarray(0, 40)), rec(hs.subarray(40))]);
  // Every prefix is "need more", never an error.
  for (let i = 0; i < split.length; i += 7) assert.equal(parseClientHello(split.subarray(0, i)).state, 'need-more');
  assert.deepEqual(parseClientHello(split), { state: 'done', sni: 'www.example.test' });
  const r = await rawSend([split.subarray(0, 3), split.subarray(3, 60), split.subarray(60)]);
  assert.equal(r.kind, 'tls');
  assert.equal(r.host, 'www.example.test');
  assert.equal(r.buffered.length, split.length);
});

it('extracts the HTTP Host header (split across segments) with its port', async () => {
  const r = await rawSend([
    'GET / HT',
    'TP/1.1\r\nUser-Agent: t\r\nHost: shop.example.test:8080\r\n',
    'Accept: */*\r\n\r\n',
  ]);
  assert.equal(r.kind, 'http');
  assert.equal(r.host, 'shop.example.test');
  assert.equal(r.port, 8080);
  assert.ok(r.buffered.toString().startsWith('GET / HTTP/1.1'));
});

it('returns unknown at once for other protocols, and after the bounded wait for silence', async () => {
  let t0 = Date.now();
  const ssh = await rawSend(['SSH-2.0-OpenSSH_9.6\r\n'], 0);
  assert.equal(ssh.kind, 'unknown');
  assert.ok(Date.now() - t0 < 250);
  t0 = Date.now();
  const silent = await rawSend([], 0);
  assert.equal(silent.kind, 'unknown');
  assert.equal(silent.buffered.length, 0);
  assert.ok(Date.now() - t0 >= 250 && Date.now() - t0 < 2000);
});

it('connectVia tunnels through the HTTP proxy and reports its error code', async () => {
  const echo = await tcpEcho();
  const proxy = createHttpProxy({ authenticate, dial: testDial });
  const { port } = await proxy.listen(0);
  onCleanup(() => proxy.close());
  const t = await connectVia({
    proxyHost: '127.0.0.1',
    proxyPort: port,
    auth: { username: USER, password: PASS },
    host: 'echo.test',
    port: echo,
    timeoutMs: 2000,
  });
  assert.equal(t.head.length, 0);
  t.socket.write('via');
  await readUntil(t.socket, (b) => b.toString() === 'via');
  t.socket.destroy();
  await assert.rejects(
    connectVia({
      proxyHost: '127.0.0.1',
      proxyPort: port,
      auth: { username: USER, password: 'bad' },
      host: 'echo.test',
      port: echo,
    }),
    (e: { code: string; params: { status: number; code: string } }) =>
      e.code === 'PP_ERR_PROXY_UPSTREAM_REJECTED' &&
      e.params.status === 407 &&
      e.params.code === 'PP_ERR_PROXY_AUTH_FAILED',
  );
  await assert.rejects(
    connectVia({ proxyHost: '127.0.0.1', proxyPort: 1, host: 'x', port: 1 }),
    (e: { code: string }) => e.code === 'PP_ERR_PROXY_TARGET_REFUSED',
  );
});
