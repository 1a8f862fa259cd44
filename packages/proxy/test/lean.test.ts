// LeanSocket / LeanServer (src/lean/): the net.Socket behaviour the engines rely on, each asked of
// both sides of a real loopback connection. Orders of events, never wall-clock bounds.
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import * as net from 'node:net';
import { LeanServer, LeanSocket } from '../src/index.js';

async function leanPair(): Promise<{ server: LeanServer; accepted: LeanSocket; client: net.Socket }> {
  const server = new LeanServer();
  const got = once(server, 'connection') as Promise<[LeanSocket]>;
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const client = net.connect({ port: server.address()!.port, host: '127.0.0.1', allowHalfOpen: true });
  const connected = once(client, 'connect');
  const [accepted] = await got;
  await connected;
  return { server, accepted, client };
}

/** Ends both sides and the server (each test's last step). */
async function closePair(p: { server: LeanServer; accepted: LeanSocket; client: net.Socket }): Promise<void> {
  p.accepted.destroy();
  p.client.destroy();
  await new Promise<void>((r) => p.server.close(r));
}

function collect(s: { on(e: 'data', f: (b: Buffer) => void): unknown }): () => string {
  const parts: Buffer[] = [];
  s.on('data', (b: Buffer) => parts.push(b));
  return () => Buffer.concat(parts).toString();
}

it('lean: half-close each way, then close on both sides; byte counts kept after close', async () => {
  const { server, accepted, client } = await leanPair();
  const events: string[] = [];
  const read = collect(accepted);
  // Asked while connected (the handshake guard does at accept): kept for after the close, as net does.
  assert.equal(accepted.remoteAddress, '127.0.0.1');
  accepted.on('end', () => {
    events.push('end');
    // Our side is still writable after the peer's FIN (half-open).
    accepted.end('bye');
  });
  accepted.on('close', (hadError: boolean) => events.push(`close:${hadError}`));
  const clientRead = collect(client);
  const closed = once(accepted, 'close');
  const clientEnded = once(client, 'end');
  client.end('hello');
  await clientEnded;
  await closed;
  assert.deepEqual(events, ['end', 'close:false']);
  assert.equal(read(), 'hello');
  assert.equal(clientRead(), 'bye');
  assert.equal(accepted.bytesRead, 5);
  assert.equal(accepted.bytesWritten, 3);
  assert.equal(accepted.remoteAddress, '127.0.0.1', 'the peer address is kept after close');
  client.destroy();
  await new Promise<void>((r) => server.close(r));
});

it('lean: write() says false when the peer does not read, and drain follows once it does', async () => {
  const { server, accepted, client } = await leanPair();
  client.pause();
  const chunk = Buffer.alloc(64 * 1024, 7);
  let writes = 0;
  while (accepted.write(chunk) && writes < 10_000) writes++;
  assert.ok(writes < 10_000, 'backpressure never came');
  assert.ok(accepted.writableLength > 0);
  const drained = once(accepted, 'drain');
  client.resume();
  await drained;
  await closePair({ server, accepted, client });
});

it('lean: pause() stops data until resume(); unshift() comes back first', async () => {
  const { server, accepted, client } = await leanPair();
  const seen: string[] = [];
  accepted.on('data', (b: Buffer) => {
    seen.push(b.toString());
    if (b.toString() === 'one') {
      accepted.pause();
      accepted.unshift(Buffer.from('again'));
    }
  });
  client.write('one');
  while (seen.length === 0) await new Promise((r) => setImmediate(r));
  client.write('two');
  // Give the loop turns; nothing may arrive while paused.
  for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
  assert.deepEqual(seen, ['one']);
  accepted.resume();
  while (seen.join('').length < 'oneagaintwo'.length) await new Promise((r) => setImmediate(r));
  assert.equal(seen.join(''), 'oneagaintwo');
  await closePair({ server, accepted, client });
});

it('lean: bytes and the FIN that arrive during a pause come out in order after resume()', async () => {
  const { server, accepted, client } = await leanPair();
  const seen: string[] = [];
  accepted.on('data', (b: Buffer) => seen.push(b.toString()));
  accepted.on('end', () => seen.push('<end>'));
  accepted.pause();
  client.end('late');
  // The FIN is there once our side can see it; nothing may come out while paused.
  for (let i = 0; i < 50; i++) await new Promise((r) => setImmediate(r));
  assert.equal(seen.length, 0);
  assert.equal(accepted.readableEnded, false);
  accepted.resume();
  while (!seen.includes('<end>')) await new Promise((r) => setImmediate(r));
  assert.deepEqual(seen, ['late', '<end>']);
  await closePair({ server, accepted, client });
});

it('lean: destroy(err) emits error before close(true); resetAndDestroy resets the peer', async () => {
  const { server, accepted, client } = await leanPair();
  const events: string[] = [];
  accepted.on('error', (e: Error) => events.push(`error:${e.message}`));
  accepted.on('close', (hadError: boolean) => events.push(`close:${hadError}`));
  // (events.once would reject on the 'error' this test expects.)
  const closed = new Promise((r) => accepted.once('close', r));
  accepted.destroy(new Error('boom'));
  await closed;
  assert.deepEqual(events, ['error:boom', 'close:true']);
  assert.equal(accepted.errored?.message, 'boom');
  assert.equal(accepted.write('late'), false);
  client.destroy();

  const p2 = await leanPair();
  const err = once(p2.client, 'error') as Promise<[NodeJS.ErrnoException]>;
  p2.accepted.resetAndDestroy();
  const [e] = await err;
  assert.equal(e.code, 'ECONNRESET');
  p2.client.destroy();
  await new Promise<void>((r) => p2.server.close(r));
  await new Promise<void>((r) => server.close(r));
});

it('lean: connect to a closed port fails with ECONNREFUSED; connect queues writes and end()', async () => {
  const probe = net.createServer();
  await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
  const closedPort = (probe.address() as net.AddressInfo).port;
  await new Promise<void>((r) => probe.close(() => r()));
  const s = LeanSocket.connect({ host: '127.0.0.1', port: closedPort });
  const [e] = (await once(s, 'error')) as [NodeJS.ErrnoException];
  assert.equal(e.code, 'ECONNREFUSED');
  assert.equal(e.syscall, 'connect');
  await once(s, 'close');

  const got: Buffer[] = [];
  const srv = net.createServer({ allowHalfOpen: true }, (c) => {
    c.on('data', (b) => got.push(b));
    c.on('end', () => c.end('ok'));
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const c = LeanSocket.connect({ host: '127.0.0.1', port: (srv.address() as net.AddressInfo).port });
  c.write('queued ');
  c.end('then end');
  const read = collect(c);
  await once(c, 'close');
  assert.equal(Buffer.concat(got).toString(), 'queued then end');
  assert.equal(read(), 'ok');
  const bad = LeanSocket.connect({ host: 'not-an-ip', port: 80 });
  const [e2] = (await once(bad, 'error')) as [NodeJS.ErrnoException];
  assert.equal(e2.code, 'EINVAL');
  await new Promise<void>((r) => srv.close(() => r()));
});

it('lean: setTimeout emits timeout when idle, not while data flows; 0 turns it off', async () => {
  const { server, accepted, client } = await leanPair();
  let timeouts = 0;
  accepted.on('timeout', () => timeouts++);
  collect(accepted);
  accepted.setTimeout(200);
  // Traffic every 20 ms for 10 rounds: the timer is re-armed each time.
  for (let i = 0; i < 10; i++) {
    client.write('x');
    await new Promise((r) => setTimeout(r, 20));
  }
  const before = timeouts;
  await once(accepted, 'timeout');
  assert.ok(timeouts >= 1);
  assert.ok(before <= timeouts);
  accepted.setTimeout(0);
  await closePair({ server, accepted, client });
});

it('lean: maxConnections closes the extra connection; close() waits for the live ones', async () => {
  const server = new LeanServer();
  server.maxConnections = 1;
  const accepted: LeanSocket[] = [];
  server.on('connection', (s: LeanSocket) => accepted.push(s));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = server.address()!.port;
  const a = net.connect({ port, host: '127.0.0.1' });
  await once(a, 'connect');
  while (accepted.length === 0) await new Promise((r) => setImmediate(r));
  const b = net.connect({ port, host: '127.0.0.1' });
  b.on('error', () => {});
  b.resume();
  await once(b, 'close');
  assert.equal(accepted.length, 1, 'the second connection was not handed over');
  let closed = false;
  server.close(() => {
    closed = true;
  });
  for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
  assert.equal(closed, false, 'close() waits for the live connection');
  accepted[0]!.destroy();
  while (!closed) await new Promise((r) => setImmediate(r));
  a.destroy();
});

it('lean: listen on a port in use fails with EADDRINUSE', async () => {
  const first = new LeanServer();
  await new Promise<void>((r) => first.listen(0, '127.0.0.1', r));
  const second = new LeanServer();
  second.listen(first.address()!.port, '127.0.0.1');
  const [e] = (await once(second, 'error')) as [NodeJS.ErrnoException];
  assert.equal(e.code, 'EADDRINUSE');
  await new Promise<void>((r) => first.close(r));
});
