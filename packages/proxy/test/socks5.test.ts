// SOCKS5 specifics: reply codes, split/coalesced messages, UDP ASSOCIATE (private and shared relay).
import { it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as dgram from 'node:dgram';
import { once } from 'node:events';
import {
  createSocks5Server,
  createPolicyDialer,
  createUdpRelay,
  encodeUdpHeader,
  parseUdpHeader,
  type ProxyServer,
  type UdpRelay,
} from '../src/index.js';
import {
  authenticate,
  cleanup,
  connect,
  onCleanup,
  PASS,
  readUntil,
  socksHandshake,
  socksRequest,
  tcpEcho,
  testDial,
  testResolve,
  testUdpResolve,
  udpEcho,
  untilClose,
  USER,
} from './helpers.js';

let echo: number, uecho: number, uecho6: number, socks: ProxyServer, port: number, strictPort: number;
let shared: UdpRelay, sharedPort: number;

before(async () => {
  echo = await tcpEcho();
  uecho = await udpEcho('udp4');
  uecho6 = await udpEcho('udp6');
  socks = createSocks5Server({
    authenticate,
    dial: testDial,
    udp: { resolve: testUdpResolve },
    handshakeTimeoutMs: 500,
  });
  port = (await socks.listen(0)).port;
  const strict = createSocks5Server({ authenticate, dial: createPolicyDialer({ policy: {}, resolve: testResolve }) });
  strictPort = (await strict.listen(0)).port;
  shared = createUdpRelay({ bind: { address: '127.0.0.1', port: 0 }, resolve: testUdpResolve });
  await shared.listen();
  const s2 = createSocks5Server({
    authenticate,
    dial: testDial,
    udp: { relay: shared, advertise: { address: '198.51.100.7', port: 30002 } },
  });
  sharedPort = (await s2.listen(0)).port;
  onCleanup(() => socks.close());
  onCleanup(() => strict.close());
  onCleanup(() => s2.close());
  onCleanup(() => shared.close());
});
after(cleanup);

const AUTH = Buffer.concat([
  Buffer.from([1, USER.length]),
  Buffer.from(USER),
  Buffer.from([PASS.length]),
  Buffer.from(PASS),
]);

it('handles greeting, auth and request arriving one byte at a time', async () => {
  const s = await connect(port);
  const all = Buffer.concat([Buffer.from([5, 2, 0, 2]), AUTH, socksRequest(1, '127.0.0.1', echo)]);
  for (const b of all) {
    s.write(Buffer.from([b]));
    await new Promise((r) => setImmediate(r));
  }
  await readUntil(s, (b) => b.length >= 2 + 2 + 10);
  s.write('split ok');
  await readUntil(s, (b) => b.toString('latin1').endsWith('split ok'));
  s.destroy();
});

it('handles greeting + auth + request + data coalesced in one segment', async () => {
  const s = await connect(port);
  s.write(Buffer.concat([Buffer.from([5, 1, 2]), AUTH, socksRequest(1, 'echo.test', echo), Buffer.from('optimistic')]));
  const got = await readUntil(s, (b) => b.toString('latin1').endsWith('optimistic'));
  assert.deepEqual([...got.subarray(0, 4)], [5, 2, 1, 0]);
  assert.equal(got[5], 0);
  s.destroy();
});

const REPLIES: Array<[string, () => Buffer, number]> = [
  ['BIND -> 0x07', () => socksRequest(2, '127.0.0.1', echo), 0x07],
  ['unknown command -> 0x07', () => socksRequest(9, '127.0.0.1', echo), 0x07],
  ['refused -> 0x05', () => socksRequest(1, '127.0.0.1', 1), 0x05],
  ['unknown name -> 0x04', () => socksRequest(1, 'nx.test', 80), 0x04],
  ['ATYP 0x05 -> 0x08', () => Buffer.from([5, 1, 0, 5, 1, 2, 3, 4, 0, 80]), 0x08],
];
for (const [name, req, rep] of REPLIES) {
  it(`replies ${name}`, async () => {
    const r = await socksHandshake(port, 'ok', req());
    assert.equal(r.reply![0], 5);
    assert.equal(r.reply![1], rep);
    await untilClose(r.s);
  });
}

it('replies 0x02 (not allowed by ruleset) for forbidden destinations', async () => {
  for (const host of ['127.0.0.1', '::1', 'private.test', 'rebind.test']) {
    const r = await socksHandshake(strictPort, 'ok', socksRequest(1, host, 80));
    assert.equal(r.reply![1], 0x02, host);
  }
});

it('closes on a wrong version, and an idle handshake after the timeout; keeps serving', async () => {
  const s = await connect(port);
  s.write(Buffer.from([4, 1, 0, 80, 127, 0, 0, 1, 0]));
  assert.equal((await untilClose(s)).length, 0);
  const idle = await connect(port);
  idle.write(Buffer.from([5, 1]));
  const t0 = Date.now();
  await untilClose(idle, 3000);
  assert.ok(Date.now() - t0 < 2000);
  const r = await socksHandshake(port, 'ok', socksRequest(1, '127.0.0.1', echo));
  assert.equal(r.reply![1], 0);
  r.s.destroy();
});

async function udpClient(): Promise<dgram.Socket> {
  const u = dgram.createSocket('udp4');
  u.bind(0, '127.0.0.1');
  await once(u, 'listening');
  onCleanup(() => new Promise<void>((r) => u.close(() => r())));
  return u;
}

function recv(u: dgram.Socket, ms = 2000): Promise<Buffer | null> {
  return new Promise((resolve) => {
    const t = setTimeout(() => {
      u.removeListener('message', on);
      resolve(null);
    }, ms);
    const on = (m: Buffer): void => {
      clearTimeout(t);
      u.removeListener('message', on);
      resolve(m);
    };
    u.on('message', on);
  });
}

it('UDP ASSOCIATE round trip to a local UDP echo (IPv4, domain, IPv6), FRAG != 0 dropped, closes with TCP', async () => {
  const r = await socksHandshake(port, 'ok', socksRequest(3, '0.0.0.0', 0));
  assert.equal(r.reply![1], 0);
  assert.equal(r.reply![3], 1);
  const bndAddr = [...r.reply!.subarray(4, 8)].join('.');
  const bndPort = r.reply!.readUInt16BE(8);
  assert.equal(bndAddr, '127.0.0.1');
  const u = await udpClient();
  for (const [host, p] of [
    ['127.0.0.1', uecho],
    ['echo.test', uecho],
    ['::1', uecho6],
  ] as const) {
    u.send(Buffer.concat([encodeUdpHeader(host, p), Buffer.from(`dgram ${host}`)]), bndPort, bndAddr);
    const back = await recv(u);
    assert.ok(back, `no answer via ${host}`);
    const h = parseUdpHeader(back);
    assert.equal(h.port, p);
    assert.equal(h.host, host === '::1' ? '::1' : '127.0.0.1');
    assert.equal(back.subarray(h.dataOffset).toString(), `dgram ${host}`);
  }
  const frag = encodeUdpHeader('127.0.0.1', uecho);
  frag[2] = 1;
  u.send(Buffer.concat([frag, Buffer.from('fragment')]), bndPort, bndAddr);
  assert.equal(await recv(u, 300), null);
  // A stranger (another source port) gets nothing.
  const stranger = await udpClient();
  stranger.send(Buffer.concat([encodeUdpHeader('127.0.0.1', uecho), Buffer.from('x')]), bndPort, bndAddr);
  assert.equal(await recv(stranger, 300), null);
  // Closing the control connection ends the association: the port stops answering.
  r.s.destroy();
  await new Promise((res) => setTimeout(res, 100));
  u.send(Buffer.concat([encodeUdpHeader('127.0.0.1', uecho), Buffer.from('late')]), bndPort, bndAddr);
  assert.equal(await recv(u, 300), null);
});

it('UDP destinations go through the policy', async () => {
  const strictRelay = createUdpRelay({ bind: { address: '127.0.0.1' } });
  await strictRelay.listen();
  onCleanup(() => strictRelay.close());
  const codes: string[] = [];
  strictRelay.on('requestFailed', (e) => codes.push(e.code));
  strictRelay.register({ principal: 'p', clientIp: '127.0.0.1' });
  const u = await udpClient();
  u.send(
    Buffer.concat([encodeUdpHeader('127.0.0.1', uecho), Buffer.from('x')]),
    strictRelay.address().port,
    '127.0.0.1',
  );
  assert.equal(await recv(u, 300), null);
  assert.deepEqual(codes, ['PP_ERR_PROXY_FORBIDDEN_DESTINATION']);
});

it('shared relay: advertises the configured address, serves only sources holding an association', async () => {
  const relayPort = shared.address().port;
  const before = shared.strays;
  const u0 = await udpClient();
  u0.send(Buffer.concat([encodeUdpHeader('127.0.0.1', uecho), Buffer.from('no assoc')]), relayPort, '127.0.0.1');
  assert.equal(await recv(u0, 300), null);
  assert.equal(shared.strays, before + 1);

  const r = await socksHandshake(sharedPort, 'ok', socksRequest(3, '0.0.0.0', 0));
  assert.equal(r.reply![1], 0);
  assert.deepEqual([...r.reply!.subarray(4, 8)], [198, 51, 100, 7]);
  assert.equal(r.reply!.readUInt16BE(8), 30002);
  assert.equal(shared.associationCount, 1);
  const u = await udpClient();
  u.send(Buffer.concat([encodeUdpHeader('echo.test', uecho), Buffer.from('shared')]), relayPort, '127.0.0.1');
  const back = await recv(u);
  assert.ok(back);
  assert.equal(back.subarray(parseUdpHeader(back).dataOffset).toString(), 'shared');
  r.s.destroy();
  const deadline = Date.now() + 1000;
  while (shared.associationCount > 0 && Date.now() < deadline) await new Promise((res) => setTimeout(res, 10));
  assert.equal(shared.associationCount, 0);
});
