// connectViaSocks5 against our own SOCKS5 server: IPv4 / domain / IPv6 targets, early target bytes,
// and every failure in connectVia's style (PP_ERR_PROXY_UPSTREAM_REJECTED with the reply code).
import { it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as net from 'node:net';
import { once } from 'node:events';
import {
  connectViaSocks5,
  createSocks5Server,
  proxyError,
  readSocks5Answers,
  socks5Hello,
  type DialRequest,
} from '../src/index.js';
import { authenticate, cleanup, onCleanup, PASS, readUntil, tcpEcho, testDial, USER } from './helpers.js';

let echo4: number, echo6: number, port: number, openPort: number, denyPort: number;
const dialed: DialRequest[] = [];
const auth = { username: USER, password: PASS };

before(async () => {
  echo4 = await tcpEcho('127.0.0.1');
  echo6 = await tcpEcho('::1');
  const socks = createSocks5Server({
    authenticate,
    dial: async (r) => {
      dialed.push(r);
      return testDial(r);
    },
  });
  port = (await socks.listen(0)).port;
  const open = createSocks5Server({ authenticate, allowNoAuth: true, dial: testDial });
  openPort = (await open.listen(0)).port;
  const deny = createSocks5Server({
    authenticate: async () => ({
      principal: 'p',
      deny: proxyError('PP_ERR_PROXY_ACCESS_DENIED', { reason: 'disabled' }),
    }),
    dial: testDial,
  });
  denyPort = (await deny.listen(0)).port;
  onCleanup(() => socks.close());
  onCleanup(() => open.close());
  onCleanup(() => deny.close());
});
after(cleanup);

it('tunnels to IPv4, domain (sent as ATYP 3, resolved by the server) and IPv6 targets', async () => {
  for (const [host, p] of [
    ['127.0.0.1', echo4],
    ['echo.test', echo4],
    ['::1', echo6],
  ] as const) {
    const t = await connectViaSocks5({ proxyHost: '127.0.0.1', proxyPort: port, auth, host, port: p, timeoutMs: 2000 });
    assert.equal(dialed.at(-1)!.host, host);
    t.socket.write(`via ${host}`);
    await readUntil(t.socket, (b) => b.toString() === `via ${host}`);
    t.socket.destroy();
  }
  const anon = await connectViaSocks5({ proxyHost: '127.0.0.1', proxyPort: openPort, host: '127.0.0.1', port: echo4 });
  anon.socket.write('anon');
  await readUntil(anon.socket, (b) => b.toString() === 'anon');
  anon.socket.destroy();
});

it('hands back target bytes that arrived in the same segment as the reply', async () => {
  // A server that answers all three messages and relays the target's greeting in one write.
  const eager = net.createServer((c) => {
    c.on('error', () => {});
    c.once('data', () =>
      c.end(Buffer.concat([Buffer.from([5, 2, 1, 0, 5, 0, 0, 1, 10, 0, 0, 1, 0, 80]), Buffer.from('220 hello\r\n')])),
    );
  });
  eager.listen(0, '127.0.0.1');
  await once(eager, 'listening');
  onCleanup(
    () =>
      new Promise((r) => {
        eager.close(r);
      }),
  );
  const t = await connectViaSocks5({
    proxyHost: '127.0.0.1',
    proxyPort: (eager.address() as net.AddressInfo).port,
    auth,
    host: 'example.test',
    port: 25,
  });
  const got = await readUntil(t.socket, (b) => b.toString().endsWith('\r\n'));
  assert.equal(got.toString(), '220 hello\r\n');
  t.socket.destroy();
});

const rejected = (status: number, code: string) => (e: { code: string; params: { status: number; code: string } }) =>
  e.code === 'PP_ERR_PROXY_UPSTREAM_REJECTED' && e.params.status === status && e.params.code === code;

it('reports refusals as PP_ERR_PROXY_UPSTREAM_REJECTED with the reply code', async () => {
  const base = { proxyHost: '127.0.0.1', host: '127.0.0.1', port: echo4, timeoutMs: 2000 };
  await assert.rejects(
    connectViaSocks5({ ...base, proxyPort: port, auth: { username: USER, password: 'bad' } }),
    rejected(1, 'AUTH_FAILED'),
  );
  await assert.rejects(connectViaSocks5({ ...base, proxyPort: port }), rejected(0xff, 'NO_ACCEPTABLE_METHOD'));
  await assert.rejects(
    connectViaSocks5({ ...base, proxyPort: port, auth, port: 1 }),
    rejected(5, 'CONNECTION_REFUSED'),
  );
  await assert.rejects(
    connectViaSocks5({ ...base, proxyPort: port, auth, host: 'nx.test' }),
    rejected(4, 'HOST_UNREACHABLE'),
  );
  await assert.rejects(connectViaSocks5({ ...base, proxyPort: denyPort, auth }), rejected(2, 'NOT_ALLOWED'));
});

it('reports transport failures like connectVia: refused, timeout, garbage, bad input', async () => {
  await assert.rejects(
    connectViaSocks5({ proxyHost: '127.0.0.1', proxyPort: 1, host: 'x', port: 1 }),
    (e: { code: string }) => e.code === 'PP_ERR_PROXY_TARGET_REFUSED',
  );
  const mute = net.createServer((c) => {
    c.on('error', () => {});
    c.resume();
  });
  const http = net.createServer((c) => {
    c.on('error', () => {});
    c.resume();
    c.end('HTTP/1.1 400 Bad Request\r\n\r\n');
  });
  for (const s of [mute, http]) {
    s.listen(0, '127.0.0.1');
    await once(s, 'listening');
    onCleanup(
      () =>
        new Promise((r) => {
          s.close(r);
        }),
    );
  }
  const t0 = Date.now();
  await assert.rejects(
    connectViaSocks5({
      proxyHost: '127.0.0.1',
      proxyPort: (mute.address() as net.AddressInfo).port,
      host: 'x',
      port: 1,
      timeoutMs: 300,
    }),
    (e: { code: string }) => e.code === 'PP_ERR_PROXY_TARGET_TIMEOUT',
  );
  assert.ok(Date.now() - t0 < 2000);
  await assert.rejects(
    connectViaSocks5({
      proxyHost: '127.0.0.1',
      proxyPort: (http.address() as net.AddressInfo).port,
      host: 'x',
      port: 1,
    }),
    (e: { code: string }) => e.code === 'PP_ERR_PROXY_BAD_UPSTREAM_RESPONSE',
  );
  await assert.rejects(
    connectViaSocks5({
      proxyHost: '127.0.0.1',
      proxyPort: port,
      auth: { username: '', password: 'x' },
      host: 'x',
      port: 1,
    }),
    (e: { code: string }) => e.code === 'PP_ERR_PROXY_BAD_REQUEST',
  );
});

it('reads the answers whether they arrive split or coalesced', () => {
  const answers = Buffer.from([5, 2, 1, 0, 5, 0, 0, 3, 9, ...Buffer.from('bound.test'.slice(0, 9)), 0x1f, 0x90, 0xaa]);
  for (let cut = 0; cut < answers.length - 1; cut++) {
    const a = readSocks5Answers(answers.subarray(0, cut), true);
    assert.equal(a.kind, 'more', `at ${cut}`);
  }
  const done = readSocks5Answers(answers, true);
  assert.deepEqual(done, {
    kind: 'connected',
    bound: { atyp: 3, host: 'bound.tes', port: 8080 },
    length: answers.length - 1,
  });
  assert.deepEqual(readSocks5Answers(Buffer.from([5, 0, 5, 1]), false), {
    kind: 'rejected',
    status: 1,
    code: 'GENERAL_FAILURE',
  });
  assert.throws(
    () => readSocks5Answers(Buffer.from([5, 0]), true),
    (e: { code: string; cause: Error }) =>
      e.code === 'PP_ERR_PROXY_BAD_UPSTREAM_RESPONSE' && /was not offered/.test(e.cause.message),
  );
  assert.deepEqual([...socks5Hello({ host: '10.0.0.1', port: 80 })], [5, 1, 0, 5, 1, 0, 1, 10, 0, 0, 1, 0, 80]);
});
