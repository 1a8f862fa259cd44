// The SOCKS5 front's own cases (socks5/front.ts over @pocketproxy/tun's SpliceEngine with its real
// listener and sockets). The SOCKS5 suites run through the front in front-matrix.test.ts; here: what
// a CONNECT joined in the engine counts and answers (BND.ADDR, a coalesced handshake in one segment),
// revocation and destroy while the credentials are checked, a limited customer resumed by the JS path
// (and refused there once revoked), the handshake deadline from accept, and random bytes and cuts
// from a hostile customer at every stage of the handshake.
import { it, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes, randomInt } from 'node:crypto';
import { SpliceEngine } from '@pocketproxy/tun';
import { createSocks5Server, FrontConnection, type ConnectionClosedEvent, type Principal } from '../src/index.js';
import {
  cleanup,
  closeOf,
  connect,
  onCleanup,
  PASS,
  readUntil,
  replyLength,
  socksHandshake,
  socksRequest,
  tcpEcho,
  untilClose,
  USER,
  within,
  countingMeter,
  hostileCustomers,
  until,
  frontDial,
} from './helpers.js';

after(cleanup);
const engines: SpliceEngine[] = [];
after(() => {
  for (const e of engines) e.close();
});
const GREETING = Buffer.from([5, 1, 2]);
const CREDS = Buffer.concat([
  Buffer.from([1, USER.length]),
  Buffer.from(USER),
  Buffer.from([PASS.length]),
  Buffer.from(PASS),
]);

interface Setup {
  engine: SpliceEngine;
  port: number;
  conns: FrontConnection[];
  adopted: number;
  closed: ConnectionClosedEvent[];
  proxy: ReturnType<typeof createSocks5Server>;
}

async function front(
  o: {
    authenticate?: (u: string, p: string) => Promise<Principal | null>;
    handshakeTimeoutMs?: number;
    allowNoAuth?: boolean;
  } = {},
): Promise<Setup> {
  const engine = new SpliceEngine();
  engines.push(engine);
  engine.frontInit({});
  const dial = frontDial();
  const proxy = createSocks5Server({
    authenticate: o.authenticate ?? (async (u, p) => (u === USER && p === PASS ? { principal: 'con_a' } : null)),
    dial,
    lean: true,
    front: { engine },
    handshakeTimeoutMs: o.handshakeTimeoutMs ?? 10_000,
    allowNoAuth: o.allowNoAuth,
  });
  const setup: Setup = { engine, port: 0, conns: [], adopted: 0, closed: [], proxy };
  proxy.server.on('connection', (c: unknown) => {
    if (c instanceof FrontConnection) setup.conns.push(c);
    else setup.adopted++;
  });
  proxy.on('connectionClosed', (e) => setup.closed.push(e));
  setup.port = (await proxy.listen(0, '127.0.0.1')).port;
  onCleanup(() => proxy.close());
  return setup;
}

it('a CONNECT is joined in the engine: BND is the target socket’s address, every byte is counted once, connectionClosed once', async () => {
  const echo = await tcpEcho();
  const meter = countingMeter();
  const f = await front({ authenticate: async () => ({ principal: 'con_a', meter }) });
  const { s, greeting, auth, reply } = await socksHandshake(f.port, 'ok', socksRequest(1, '127.0.0.1', echo));
  assert.deepEqual([...greeting], [5, 2]);
  assert.deepEqual([...auth!], [1, 0]);
  assert.deepEqual([...reply!.subarray(0, 4)], [5, 0, 0, 1]);
  assert.equal(reply!.length, 10);
  // BND.ADDR and BND.PORT: where the engine connected from, as the echo saw it.
  assert.equal(`${reply![4]}.${reply![5]}.${reply![6]}.${reply![7]}`, '127.0.0.1');
  assert.ok(reply!.readUInt16BE(8) > 0);
  s.write('hello through the engine');
  await readUntil(s, (b) => b.includes('hello through the engine'));
  const gone = closeOf(s);
  s.end();
  await within(gone, 3000, 'the tunnel closing after both FINs');
  await until(() => f.closed.length === 1, 3000, 'connectionClosed');
  const st = f.engine.frontStats();
  assert.equal(st.joined, 1);
  assert.equal(st.adopted, 0);
  const relayed = 'hello through the engine'.length;
  assert.equal(meter.up, relayed);
  assert.equal(meter.down, relayed);
  const e = f.closed[0]!;
  assert.equal(e.protocol, 'socks5');
  assert.equal(e.bytesIn, GREETING.length + CREDS.length + 10 + relayed);
  assert.equal(e.bytesOut, 2 + 2 + 10 + relayed);
  assert.equal(st.waiting, 0);
  assert.equal(f.proxy.connectionCount, 0);
});

it('greeting, credentials, request and data in one segment: the three answers come in one read, the data goes first', async () => {
  const echo = await tcpEcho();
  const f = await front();
  const s = await connect(f.port);
  s.write(Buffer.concat([GREETING, CREDS, socksRequest(1, '127.0.0.1', echo), Buffer.from('early')]));
  const got = await readUntil(s, (b) => b.includes('early'));
  assert.deepEqual([...got.subarray(0, 8)], [5, 2, 1, 0, 5, 0, 0, 1]);
  assert.equal(got.subarray(4 + 10).toString(), 'early');
  s.destroy();
});

it('wrong credentials get 01 01 and a close; no method gets 05 FF; a forbidden or unreachable target gets its reply code', async () => {
  const f = await front();
  const wrong = await socksHandshake(f.port, 'wrong', socksRequest(1, '127.0.0.1', 1));
  assert.deepEqual([...wrong.auth!], [1, 1]);
  await within(untilClose(wrong.s), 3000, 'closed after 01 01');
  const none = await socksHandshake(f.port, 'missing', socksRequest(1, '127.0.0.1', 1));
  assert.deepEqual([...none.greeting], [5, 0xff]);
  await within(untilClose(none.s), 3000, 'closed after 05 FF');
  // Port 1 on loopback: refused (0x05).
  const refused = await socksHandshake(f.port, 'ok', socksRequest(1, '127.0.0.1', 1));
  assert.equal(refused.reply![1], 5);
  await within(untilClose(refused.s), 3000, 'closed after the failure reply');
  assert.equal(f.proxy.stats.authFailures, 1);
  await until(() => f.engine.frontStats().waiting === 0, 7000, 'nothing waiting');
});

it('revocation while the credentials are checked, and a reset meanwhile: nothing is answered and nothing is left', async () => {
  const echo = await tcpEcho();
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const f = await front({
    authenticate: async () => {
      await gate;
      return { principal: 'con_a' };
    },
  });
  const a = await connect(f.port);
  a.write(Buffer.concat([GREETING, CREDS, socksRequest(1, '127.0.0.1', echo)]));
  const b = await connect(f.port);
  b.write(Buffer.concat([GREETING, CREDS, socksRequest(1, '127.0.0.1', echo)]));
  await until(() => f.conns.length === 2, 2000, 'both handshakes reaching JS');
  const goneA = untilClose(a);
  f.conns[0]!.resetAndDestroy();
  const handleB = new Promise((r) => f.conns[1]!.once('close', r));
  b.resetAndDestroy();
  await within(handleB, 2000, "b's handle closing after its reset");
  assert.equal((await within(goneA, 2000, 'a closed')).length, 0, 'no answer to a');
  release();
  await new Promise((r) => setTimeout(r, 50));
  const st = f.engine.frontStats();
  assert.equal(st.joined, 0);
  assert.equal(st.waiting, 0);
  assert.equal(f.engine.stats().active, 0);
  assert.equal(f.proxy.connectionCount, 0);
});

it('a limited customer is resumed by the JS path after the credentials (checked again there): served, counted, refused once revoked', async () => {
  const echo = await tcpEcho();
  const revoked = false;
  let checks = 0;
  const meter = countingMeter(false);
  const f = await front({
    authenticate: async () => {
      checks++;
      return revoked ? null : { principal: 'con_a', meter };
    },
  });
  const { s, reply } = await socksHandshake(f.port, 'ok', socksRequest(1, '127.0.0.1', echo));
  assert.equal(reply![1], 0);
  s.write('metered');
  await readUntil(s, (b) => b.includes('metered'));
  assert.equal(f.engine.frontStats().adopted, 1);
  assert.equal(f.adopted, 1);
  assert.equal(checks, 2, 'the front checked the credentials, and the JS path again on its own socket');
  const gone = closeOf(s);
  s.end();
  await within(gone, 3000, 'closed');
  await until(() => f.closed.length === 1, 3000, 'connectionClosed');
  assert.equal(f.closed[0]!.bytesIn, GREETING.length + CREDS.length + 10 + 'metered'.length);
  assert.equal(f.closed[0]!.bytesOut, 2 + 2 + 10 + 'metered'.length);
  assert.equal(meter.down, 'metered'.length);
  // Revoked between the front's check and the JS path's: the request is not served.
  let n = 0;
  const g = await front({
    authenticate: async () => (n++ === 0 ? { principal: 'con_a', meter: countingMeter(false) } : null),
  });
  const t = await connect(g.port);
  t.write(Buffer.concat([GREETING, CREDS, socksRequest(1, '127.0.0.1', echo)]));
  const got = await within(untilClose(t), 3000, 'closed by the JS path');
  assert.deepEqual([...got], [5, 2, 1, 0], 'the front’s answers, then the close: no success reply');
});

it('UDP ASSOCIATE and BIND are resumed by the JS path, which answers them', async () => {
  const f = await front();
  const bind = await socksHandshake(f.port, 'ok', socksRequest(2, '127.0.0.1', 1));
  assert.equal(bind.reply![1], 7, 'BIND: command not supported');
  const udp = await socksHandshake(f.port, 'ok', socksRequest(3, '0.0.0.0', 0));
  assert.equal(udp.reply![1], 0, 'UDP ASSOCIATE served');
  assert.equal(udp.reply!.length, replyLength(udp.reply!));
  udp.s.destroy();
  bind.s.destroy();
  assert.equal(f.engine.frontStats().adopted, 2);
});

it('the handshake deadline counts from accept: a customer that stops after its greeting is closed, and counted', async () => {
  const f = await front({ handshakeTimeoutMs: 300 });
  const s = await connect(f.port);
  s.write(GREETING);
  await readUntil(s, (b) => b.length >= 2);
  const started = Date.now();
  const got = await within(untilClose(s, 3000), 3000, 'closed at the deadline');
  assert.equal(got.length, 0);
  assert.ok(Date.now() - started < 1500, 'not re-armed by the greeting');
  await until(() => f.proxy.stats.handshakeTimeouts === 1, 2000, 'counted');
  // Bytes dribbled one at a time do not extend it either.
  const d = await connect(f.port);
  d.resume(); // reads (so its FIN is seen)
  const t0 = Date.now();
  const gone = closeOf(d);
  const all = Buffer.concat([GREETING, CREDS]);
  for (let i = 0; i < all.length && !d.destroyed; i++) {
    d.write(all.subarray(i, i + 1));
    await new Promise((r) => setTimeout(r, 40));
  }
  await within(gone, 3000, 'the dribbler closed');
  assert.ok(Date.now() - t0 < 1500);
  await until(() => f.engine.frontStats().waiting === 0, 2000, 'nothing waiting');
});

it('a handshake adopted at its greeting keeps the deadline from accept on the JS path', async () => {
  // A no-auth greeting goes to the JS path before any answer; its request must still come within the
  // deadline counted from the front's accept, not within a second full one from the adoption.
  const f = await front({ handshakeTimeoutMs: 1200, allowNoAuth: true });
  const s = await connect(f.port);
  const t0 = Date.now();
  // The greeting's first byte, and the rest 800 ms later: adopted then, with ~400 ms of the deadline left.
  s.write(Buffer.from([5]));
  await new Promise((r) => setTimeout(r, 800));
  s.write(Buffer.from([1, 0]));
  const got = await within(untilClose(s, 5000), 5000, 'closed at the deadline');
  const took = Date.now() - t0;
  assert.deepEqual([...got], [5, 0], 'the JS path answered the greeting');
  assert.equal(f.adopted, 1);
  assert.ok(took >= 1100, `not before the deadline (${took} ms)`);
  // A second full deadline from the adoption would close it at ~2,000 ms.
  assert.ok(took < 1750, `closed ${took} ms after connect: the deadline from accept, not a new one from the adoption`);
  await until(() => f.proxy.stats.handshakeTimeouts === 1, 2000, 'counted');
});

it('a hostile customer: random bytes, random cuts and resets at every stage leave nothing behind, and the front still serves', async () => {
  const echo = await tcpEcho();
  const f = await front({ handshakeTimeoutMs: 500 });
  const good = Buffer.concat([GREETING, CREDS, socksRequest(1, '127.0.0.1', echo)]);
  await hostileCustomers(f.port, 120, () => {
    const kind = randomInt(4);
    let bytes: Buffer;
    if (kind === 0) bytes = randomBytes(randomInt(1, 5_000));
    else if (kind === 1)
      bytes = Buffer.concat([good.subarray(0, randomInt(good.length + 1)), randomBytes(randomInt(64))]);
    else if (kind === 2) {
      // A valid prefix with one byte flipped.
      bytes = Buffer.from(good);
      bytes[randomInt(bytes.length)] = randomInt(256);
    } else bytes = Buffer.concat([Buffer.from([5, randomInt(256)]), randomBytes(randomInt(600))]);
    return bytes;
  });
  await until(() => f.engine.frontStats().waiting === 0 && f.proxy.connectionCount === 0, 8000, 'nothing left');
  assert.equal(f.engine.frontStats().unauthenticated, 0);
  assert.equal(f.engine.stats().active, 0);
  const s = await connect(f.port);
  s.write(Buffer.concat([good, Buffer.from('still')]));
  await readUntil(s, (b) => b.includes('still'));
  s.destroy();
});
