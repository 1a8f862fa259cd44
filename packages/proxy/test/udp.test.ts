// SOCKS5 UDP ASSOCIATE as RFC 1928 means it: a named client port binds the association at once;
// the meter polices datagrams and a spent budget ends association and control connection.
import { it, after } from 'node:test';
import assert from 'node:assert/strict';
import * as dgram from 'node:dgram';
import { once } from 'node:events';
import {
  createSocks5Server,
  createUdpRelay,
  encodeUdpHeader,
  parseUdpHeader,
  type Direction,
  type Meter,
  type UdpRelay,
} from '../src/index.js';
import {
  cleanup,
  onCleanup,
  socksHandshake,
  socksRequest,
  testDial,
  testUdpResolve,
  udpEcho,
  USER,
  PASS,
} from './helpers.js';

after(cleanup);

async function udpClient(): Promise<dgram.Socket> {
  const u = dgram.createSocket('udp4');
  u.bind(0, '127.0.0.1');
  await once(u, 'listening');
  onCleanup(
    () =>
      new Promise<void>((r) => {
        try {
          u.close(() => r());
        } catch {
          r();
        }
      }),
  );
  return u;
}

function recv(u: dgram.Socket, ms = 1500): Promise<Buffer | null> {
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

async function sharedRelay(): Promise<{ relay: UdpRelay; port: number }> {
  const relay = createUdpRelay({ bind: { address: '127.0.0.1', port: 0 }, resolve: testUdpResolve });
  await relay.listen();
  onCleanup(() => relay.close());
  return { relay, port: relay.address().port };
}

const dgramTo = (echo: number, text: string): Buffer =>
  Buffer.concat([encodeUdpHeader('127.0.0.1', echo), Buffer.from(text)]);

it('register with a clientPort binds at once: only clientIp:clientPort is served, nobody can claim it', async () => {
  const echo = await udpEcho();
  const { relay, port } = await sharedRelay();
  const mine = await udpClient();
  const other = await udpClient();
  const a = relay.register({ principal: 'p', clientIp: '127.0.0.1', clientPort: mine.address().port })!;
  assert.equal(a.clientPort, mine.address().port);
  const strays = relay.strays;
  other.send(dgramTo(echo, 'claim?'), port, '127.0.0.1');
  assert.equal(await recv(other, 300), null, 'another port of the same IP cannot claim a named association');
  assert.equal(relay.strays, strays + 1);
  mine.send(dgramTo(echo, 'named'), port, '127.0.0.1');
  const back = await recv(mine);
  assert.ok(back);
  assert.equal(back.subarray(parseUdpHeader(back).dataOffset).toString(), 'named');
  a.close();
  mine.send(dgramTo(echo, 'late'), port, '127.0.0.1');
  assert.equal(await recv(mine, 300), null);
});

it('SOCKS5 passes the DST.PORT of UDP ASSOCIATE; 0 keeps first-datagram claiming', async () => {
  const echo = await udpEcho();
  const { relay, port } = await sharedRelay();
  const socks = createSocks5Server({
    authenticate: async (u, p) => (u === USER && p === PASS ? { principal: 'p' } : null),
    dial: testDial,
    udp: { relay },
  });
  onCleanup(() => socks.close());
  const sp = (await socks.listen(0)).port;
  const mine = await udpClient();
  const other = await udpClient();
  const named = await socksHandshake(sp, 'ok', socksRequest(3, '127.0.0.1', mine.address().port));
  assert.equal(named.reply![1], 0);
  other.send(dgramTo(echo, 'x'), port, '127.0.0.1');
  assert.equal(await recv(other, 300), null);
  mine.send(dgramTo(echo, 'via named port'), port, '127.0.0.1');
  assert.ok(await recv(mine));
  named.s.destroy();
  // Not named: the first datagram of the control connection's IP claims it (here: `other`).
  const unnamed = await socksHandshake(sp, 'ok', socksRequest(3, '0.0.0.0', 0));
  assert.equal(unnamed.reply![1], 0);
  other.send(dgramTo(echo, 'claimed'), port, '127.0.0.1');
  assert.ok(await recv(other));
  unnamed.s.destroy();
  const deadline = Date.now() + 1000;
  while (relay.associationCount > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  assert.equal(relay.associationCount, 0, 'each association died with its control connection');
});

it('meter: a wait drops the datagram (policing, refunded) in either direction', async () => {
  const echo = await udpEcho();
  const { relay, port } = await sharedRelay();
  const u = await udpClient();
  const taken: Array<[Direction, number]> = [];
  const refunded: Array<[Direction, number]> = [];
  let verdict = { up: 0, down: 0 };
  const meter: Meter = {
    take: (d, n) => {
      taken.push([d, n]);
      return verdict[d];
    },
    refund: (d, n) => {
      refunded.push([d, n]);
    },
  };
  const a = relay.register({ principal: 'p', clientIp: '127.0.0.1', clientPort: u.address().port, meter })!;
  const msg = dgramTo(echo, 'hello');
  u.send(msg, port, '127.0.0.1');
  const back = await recv(u);
  assert.ok(back);
  assert.deepEqual(taken, [
    ['up', msg.length],
    ['down', back.length],
  ]);
  verdict = { up: 7, down: 0 };
  u.send(msg, port, '127.0.0.1');
  assert.equal(await recv(u, 300), null, 'over the up rate: dropped');
  verdict = { up: 0, down: 7 };
  u.send(msg, port, '127.0.0.1');
  assert.equal(await recv(u, 300), null, 'answer over the down rate: dropped');
  assert.deepEqual(refunded, [
    ['up', msg.length],
    ['down', back.length],
  ]);
  assert.equal(a.dropped, 2);
  assert.equal(a.bytesIn, msg.length * 2, 'a policed datagram is not counted as relayed');
  assert.equal(a.bytesOut, back.length);
});

it('meter: a spent budget closes the association and its SOCKS5 control connection', async () => {
  const echo = await udpEcho();
  const { relay, port } = await sharedRelay();
  let left = 2;
  const meter: Meter = { take: () => (left-- > 0 ? 0 : -1) };
  const socks = createSocks5Server({
    authenticate: async () => ({ principal: 'p', meter }),
    dial: testDial,
    udp: { relay },
  });
  onCleanup(() => socks.close());
  const u = await udpClient();
  const r = await socksHandshake((await socks.listen(0)).port, 'ok', socksRequest(3, '127.0.0.1', u.address().port));
  assert.equal(r.reply![1], 0);
  const closed = new Promise<boolean>((res) => {
    r.s.once('close', () => res(true));
    setTimeout(() => res(false), 3000);
  });
  u.send(dgramTo(echo, 'one'), port, '127.0.0.1');
  assert.ok(await recv(u), 'within the budget');
  u.send(dgramTo(echo, 'two'), port, '127.0.0.1');
  assert.equal(await recv(u, 300), null);
  assert.equal(await closed, true, 'control connection closed');
  assert.equal(relay.associationCount, 0);
});
