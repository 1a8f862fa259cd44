// HandshakeGuard: caps on unauthenticated sockets per address and in total, shared by servers;
// and 1,000 trickling sockets closed by the absolute head deadline while a real customer is served.
import { it, after } from 'node:test';
import assert from 'node:assert/strict';
import * as net from 'node:net';
import { createHandshakeGuard, createHttpProxy, createSocks5Server } from '../src/index.js';
import {
  authenticate,
  basic,
  cleanup,
  onCleanup,
  PASS,
  readUntil,
  socksHandshake,
  socksRequest,
  tcpEcho,
  testDial,
  untilClose,
  USER,
} from './helpers.js';

after(cleanup);
const AUTH = `Proxy-Authorization: ${basic(USER, PASS)}\r\n`;

it('caps per address and in total; exempt addresses count only toward the total; leave is idempotent', () => {
  const g = createHandshakeGuard({ maxPerAddress: 2, maxTotal: 4, exempt: (ip) => ip === '10.0.0.9' });
  const a1 = g.admit('10.0.0.1')!;
  assert.ok(g.admit('::ffff:10.0.0.1'), 'a v4-mapped form is the same address');
  assert.equal(g.admit('10.0.0.1'), null);
  assert.deepEqual(g.stats, { active: 2, refusedPerAddress: 1, refusedTotal: 0 });
  assert.ok(g.admit('10.0.0.9'));
  assert.ok(g.admit('10.0.0.9'));
  assert.equal(g.admit('10.0.0.9'), null, 'exempt from the per-address cap, not from the total');
  assert.equal(g.admit('10.0.0.2'), null);
  assert.deepEqual(g.stats, { active: 4, refusedPerAddress: 1, refusedTotal: 2 });
  a1();
  a1();
  assert.equal(g.stats.active, 3);
  assert.ok(g.admit('10.0.0.1'), 'a slot of that address is free again');
  assert.deepEqual(createHandshakeGuard().stats, { active: 0, refusedPerAddress: 0, refusedTotal: 0 });
});

function dialFrom(port: number, localAddress = '127.0.0.1'): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ port, host: '127.0.0.1', localAddress });
    s.once('connect', () => {
      s.removeListener('error', reject);
      s.on('error', () => {});
      resolve(s);
    });
    s.once('error', reject);
    onCleanup(() => s.destroy());
  });
}

it('one guard shared by HTTP and SOCKS5: refused at accept, freed by authentication or close', async () => {
  const echo = await tcpEcho();
  const guard = createHandshakeGuard({ maxPerAddress: 3, maxTotal: 100 });
  const http = createHttpProxy({ authenticate, dial: testDial, guard });
  const socks = createSocks5Server({ authenticate, dial: testDial, guard });
  onCleanup(() => http.close());
  onCleanup(() => socks.close());
  const hp = (await http.listen(0)).port;
  const sp = (await socks.listen(0)).port;
  const idle = [await dialFrom(hp), await dialFrom(sp), await dialFrom(hp)];
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(guard.stats.active, 3);
  const refused = await dialFrom(sp);
  const t0 = Date.now();
  assert.equal((await untilClose(refused, 2000)).length, 0);
  assert.ok(Date.now() - t0 < 500, 'refused at once');
  assert.equal(guard.stats.refusedPerAddress, 1);
  // Another address is not affected; once authenticated it leaves the guard.
  const r = await socksHandshake(sp, 'ok', socksRequest(1, '127.0.0.1', echo));
  assert.equal(r.greeting.length, 0, '127.0.0.1 is still full: closed without an answer');
  const c = await dialFrom(hp, '127.0.0.2');
  c.write(`CONNECT 127.0.0.1:${echo} HTTP/1.1\r\n${AUTH}\r\n`);
  await readUntil(c, (b) => b.includes('\r\n\r\n'));
  assert.equal(guard.stats.active, 3, 'the authenticated tunnel left the guard');
  // A closed idle socket frees its slot.
  idle[0]!.destroy();
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(guard.stats.active, 2);
  const again = await socksHandshake(sp, 'ok', socksRequest(1, '127.0.0.1', echo));
  assert.equal(again.reply![1], 0);
  assert.equal(guard.stats.active, 2);
});

it('1,000 sockets trickling a head are closed by the deadline, the excess is refused at once, and a customer from elsewhere is served meanwhile', async () => {
  const echo = await tcpEcho();
  // Long enough that on a loaded 2-core VM the checks below all happen before any deadline fires: the test
  // asserts the order of events (refused before any deadline; every slow socket ended by it), not timings.
  const HEAD_MS = 8000;
  const guard = createHandshakeGuard({ maxPerAddress: 1000, maxTotal: 1010 });
  const proxy = createHttpProxy({ authenticate, dial: testDial, guard, headTimeoutMs: HEAD_MS });
  onCleanup(() => proxy.close());
  const port = (await proxy.listen(0)).port;

  const slow: Array<{ s: net.Socket; opened: number; closed?: number; got: Buffer[] }> = [];
  for (let batch = 0; batch < 10; batch++) {
    await Promise.all(
      Array.from({ length: 100 }, async () => {
        const s = await dialFrom(port);
        const e: { s: net.Socket; opened: number; closed?: number; got: Buffer[] } = { s, opened: Date.now(), got: [] };
        s.on('data', (d: Buffer) => e.got.push(d));
        s.once('close', () => {
          e.closed = Date.now();
        });
        slow.push(e);
      }),
    );
  }
  // One byte each every 250 ms: each byte would re-arm an idle timer; the deadline is absolute.
  const head = Buffer.from(`GET http://127.0.0.1:${echo}/ HTTP/1.1\r\nX-Slow: ${'z'.repeat(200)}`);
  let i = 0;
  const tick = setInterval(() => {
    for (const e of slow) if (!e.s.destroyed) e.s.write(head.subarray(i % head.length, (i % head.length) + 1));
    i++;
  }, 250);
  onCleanup(() => clearInterval(tick));

  // Over the per-address cap: refused at accept, before any deadline.
  const extra = await Promise.all(Array.from({ length: 10 }, () => dialFrom(port)));
  await Promise.all(extra.map((s) => untilClose(s, HEAD_MS * 2)));
  // Refused by the guard, not ended by a deadline: no slow socket (all opened before these) has reached its own.
  assert.equal(guard.stats.refusedPerAddress, 10);
  assert.ok(
    slow.every((e) => e.closed === undefined),
    'the excess was closed before any deadline fired',
  );

  // A customer from another address is served while the 1,000 hang.
  const c = await dialFrom(port, '127.0.0.2');
  c.write(`CONNECT 127.0.0.1:${echo} HTTP/1.1\r\n${AUTH}\r\n`);
  await readUntil(c, (b) => b.includes('\r\n\r\n'));
  c.write('still served');
  await readUntil(c, (b) => b.toString().endsWith('still served'));
  assert.ok(
    slow.every((e) => e.closed === undefined),
    'the slow ones are still hanging',
  );
  // The total cap: 1,000 + this tunnel (left the guard) + 10 more from yet another address.
  const others = await Promise.all(Array.from({ length: 12 }, () => dialFrom(port, '127.0.0.3')));
  await new Promise((r) => setTimeout(r, 200));
  assert.equal(guard.stats.refusedTotal, 2);
  for (const s of others) s.destroy();

  const deadline = Date.now() + HEAD_MS + 15000;
  while (slow.some((e) => e.closed === undefined) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  clearInterval(tick);
  const open = slow.filter((e) => e.closed === undefined).length;
  assert.equal(open, 0, `${open} slow sockets still open`);
  const lives = slow.map((e) => e.closed! - e.opened).sort((a, b) => a - b);
  assert.ok(lives[0]! >= HEAD_MS - 50, `one closed after ${lives[0]} ms, before the deadline`);
  // All closed (above) although each sent a byte every 250 ms: an idle timer re-armed by each byte would never fire.
  assert.ok(
    slow.every((e) => Buffer.concat(e.got).toString('latin1').startsWith('HTTP/1.1 408 ')),
    'each got a 408',
  );
  assert.equal(proxy.stats.handshakeTimeouts, 1000);
  await new Promise((r) => setTimeout(r, 100));
  assert.equal(guard.stats.active, 0);
  c.destroy();
});
