// proxy-chain style matrix: {http CONNECT, http absolute-form, socks5} x {auth ok, wrong, missing}
// x {IPv4, domain, IPv6} targets, all on loopback.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHttpProxy, createSocks5Server, type ProxyServer, type ConnectionClosedEvent } from '../src/index.js';
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
  untilHead,
  USER,
} from './helpers.js';

type Auth = 'ok' | 'wrong' | 'missing';
const AUTHS: Auth[] = ['ok', 'wrong', 'missing'];
const TARGETS = [
  { name: 'IPv4', host: '127.0.0.1', v6: false },
  { name: 'domain', host: 'echo.test', v6: false },
  { name: 'IPv6', host: '::1', v6: true },
] as const;

let echo4: number, echo6: number, origin4: number, origin6: number;
let httpProxy: ProxyServer, socks: ProxyServer;
let httpPort: number, socksPort: number;
const closed: ConnectionClosedEvent[] = [];

before(async () => {
  echo4 = await tcpEcho('127.0.0.1');
  echo6 = await tcpEcho('::1');
  origin4 = await httpOrigin('127.0.0.1');
  origin6 = await httpOrigin('::1');
  httpProxy = createHttpProxy({ authenticate, dial: testDial });
  socks = createSocks5Server({ authenticate, dial: testDial });
  httpProxy.on('connectionClosed', (e) => closed.push(e));
  socks.on('connectionClosed', (e) => closed.push(e));
  httpPort = (await httpProxy.listen(0)).port;
  socksPort = (await socks.listen(0)).port;
  onCleanup(() => httpProxy.close());
  onCleanup(() => socks.close());
});
after(cleanup);

function authHeader(a: Auth): string {
  if (a === 'missing') return '';
  return `Proxy-Authorization: ${basic(USER, a === 'ok' ? PASS : 'wrong')}\r\n`;
}

for (const auth of AUTHS) {
  for (const t of TARGETS) {
    const port = (): number => (t.v6 ? echo6 : echo4);
    const authority = (p: number): string => (t.v6 ? `[${t.host}]:${p}` : `${t.host}:${p}`);

    describe(`auth ${auth}, ${t.name} target`, () => {
      it('http CONNECT', async () => {
        const s = await connect(httpPort);
        s.write(`CONNECT ${authority(port())} HTTP/1.1\r\nHost: ${authority(port())}\r\n${authHeader(auth)}\r\n`);
        const head = (await untilHead(s)).toString('latin1');
        if (auth === 'ok') {
          assert.match(head, /^HTTP\/1\.1 200 /);
          s.write('ping through http');
          const got = await readUntil(s, (b) => b.includes('ping through http'));
          assert.ok(got.toString().endsWith('ping through http'));
        } else {
          assert.match(head, /^HTTP\/1\.1 407 /);
          assert.match(head, /Proxy-Authenticate: Basic realm="pocketproxy"/);
          assert.match(
            head,
            auth === 'missing'
              ? /X-PocketProxy-Error: PP_ERR_PROXY_AUTH_REQUIRED/
              : /X-PocketProxy-Error: PP_ERR_PROXY_AUTH_FAILED/,
          );
        }
        s.destroy();
      });

      it('http absolute-form GET', async () => {
        const op = t.v6 ? origin6 : origin4;
        const host = t.name === 'domain' ? 'origin.test' : t.host;
        const hostPort = t.v6 ? `[${host}]:${op}` : `${host}:${op}`;
        const s = await connect(httpPort);
        s.write(
          `GET http://${hostPort}/x?y=1 HTTP/1.1\r\nHost: ${hostPort}\r\n${authHeader(auth)}Connection: close\r\n\r\n`,
        );
        const res = (await readUntil(s, () => false)).toString('utf8');
        if (auth === 'ok') {
          assert.match(res, /^HTTP\/1\.1 200 /);
          const body = JSON.parse(res.slice(res.indexOf('\r\n\r\n') + 4)) as {
            url: string;
            headers: Record<string, string>;
          };
          assert.equal(body.url, '/x?y=1');
          assert.equal(body.headers['proxy-authorization'], undefined);
          assert.equal(body.headers.host, hostPort);
        } else {
          assert.match(res, /^HTTP\/1\.1 407 /);
        }
      });

      it('socks5 CONNECT', async () => {
        const r = await socksHandshake(socksPort, auth, socksRequest(1, t.host, port()));
        if (auth === 'missing') {
          assert.deepEqual([...r.greeting], [5, 0xff]);
        } else if (auth === 'wrong') {
          assert.deepEqual([...r.auth!], [1, 1]);
        } else {
          assert.equal(r.reply![1], 0x00);
          r.s.write('ping through socks');
          const got = await readUntil(r.s, (b) => b.includes('ping through socks'));
          assert.ok(got.toString().endsWith('ping through socks'));
        }
        r.s.destroy();
      });
    });
  }
}

describe('events', () => {
  it('connectionClosed carries the principal and byte counts', async () => {
    const deadline = Date.now() + 2000;
    while (closed.filter((e) => e.principal === 'con_alice').length < 9 && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 20));
    const mine = closed.filter((e) => e.principal === 'con_alice');
    assert.ok(mine.length >= 9, `only ${mine.length} closed events`);
    for (const e of mine) {
      assert.ok(e.bytesIn > 0 && e.bytesOut > 0);
      assert.ok(e.durationMs >= 0);
    }
  });
});
