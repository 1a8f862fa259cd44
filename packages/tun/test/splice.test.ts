// SpliceEngine (native/splice_relay.cc) on real loopback sockets: a "proxy" accepts a client,
// connects the target, and hands both sockets to the engine, as packages/proxy's handoff does with
// its LeanSockets. What the client and the target see must be what a plain byte pump gives them:
// every byte in order both ways, each FIN on its own (half-open), a reset or error ending both,
// backpressure instead of buffering, and the byte counts exact.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { createHash, randomBytes } from 'node:crypto';
import { spawn } from 'node:child_process';
import fc from 'fast-check';
import { openTcpFd, SpliceEngine, socketFd, type SpliceEnd } from '../src/index.js';

interface Pair {
  client: net.Socket;
  target: net.Socket;
  id: number;
  done: Promise<{ up: number; down: number; end: SpliceEnd }>;
  progress: { up: number; down: number };
}

interface Rig {
  engine: SpliceEngine;
  pair(o?: { toTarget?: Buffer; toClient?: Buffer; clientEnded?: boolean; idleMs?: number }): Promise<Pair>;
  close(): Promise<void>;
}

const listen = (s: net.Server) =>
  new Promise<number>((r) => s.listen(0, '127.0.0.1', () => r((s.address() as net.AddressInfo).port)));
const once = <T>(e: NodeJS.EventEmitter, name: string) => new Promise<T>((r) => e.once(name, r as never));

async function rig(): Promise<Rig> {
  const engine = new SpliceEngine();
  const targets: net.Socket[] = [];
  const targetServer = net.createServer({ allowHalfOpen: true, pauseOnConnect: true }, (s) => targets.push(s));
  const proxyServer = net.createServer({ allowHalfOpen: true, pauseOnConnect: true });
  const tport = await listen(targetServer);
  const pport = await listen(proxyServer);
  const live: net.Socket[] = [];
  return {
    engine,
    async pair(o = {}) {
      const accepted = once<net.Socket>(proxyServer, 'connection');
      const client = net.connect({ port: pport, host: '127.0.0.1', allowHalfOpen: true });
      await once(client, 'connect');
      const fromClient = await accepted;
      const toTargetSock = net.connect({ port: tport, host: '127.0.0.1', allowHalfOpen: true });
      await once(toTargetSock, 'connect');
      while (targets.length === 0) await new Promise((r) => setImmediate(r));
      const target = targets.shift()!;
      target.resume();
      const progress = { up: 0, down: 0 };
      let finish!: (v: { up: number; down: number; end: SpliceEnd }) => void;
      const done = new Promise<{ up: number; down: number; end: SpliceEnd }>((r) => (finish = r));
      const id = engine.start(
        {
          clientFd: socketFd(fromClient),
          targetFd: socketFd(toTargetSock),
          toTarget: o.toTarget,
          toClient: o.toClient,
          clientEnded: o.clientEnded,
          idleMs: o.idleMs,
        },
        {
          progress(up, down) {
            progress.up += up;
            progress.down += down;
          },
          done(up, down, end) {
            finish({ up: up + progress.up, down: down + progress.down, end });
          },
        },
      );
      // Our handles go; the connections live on in the engine's duplicates (no FIN, no reset).
      fromClient.destroy();
      toTargetSock.destroy();
      live.push(client, target);
      return { client, target, id, done, progress };
    },
    async close() {
      for (const s of live) s.destroy();
      engine.close();
      await new Promise((r) => proxyServer.close(r));
      await new Promise((r) => targetServer.close(r));
    },
  };
}

const collect = (s: net.Socket) => {
  const chunks: Buffer[] = [];
  s.on('data', (c) => chunks.push(c));
  return {
    ended: once(s, 'end').then(() => Buffer.concat(chunks)),
    now: () => Buffer.concat(chunks),
  };
};
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

test('splice: 4 MiB up and 8 MiB down at once, in order, half-close each way, exact counts', async () => {
  const r = await rig();
  try {
    const p = await r.pair();
    const up = randomBytes(4 << 20);
    const down = randomBytes(8 << 20);
    const atTarget = collect(p.target);
    const atClient = collect(p.client);
    p.client.end(up);
    // The target still sends after the client's FIN reached it: half-open.
    const got = await atTarget.ended;
    p.target.end(down);
    assert.equal(sha(got), sha(up));
    assert.equal(sha(await atClient.ended), sha(down));
    const d = await p.done;
    assert.deepEqual(d, { up: up.length, down: down.length, end: 'clean' });
    assert.equal(r.engine.stats().active, 0);
  } finally {
    await r.close();
  }
});

test('splice: bytes handed over go first, then the stream; a FIN read before the handover follows them', async () => {
  const r = await rig();
  try {
    const p = await r.pair({ toTarget: Buffer.from('early-'), toClient: Buffer.from('reply-'), clientEnded: true });
    const atTarget = collect(p.target);
    const atClient = collect(p.client);
    // The client's FIN was "already read": the target sees the early bytes, then its end.
    assert.equal((await atTarget.ended).toString(), 'early-');
    p.target.end('answer');
    assert.equal((await atClient.ended).toString(), 'reply-answer');
    const d = await p.done;
    assert.equal(d.end, 'clean');
    // Handed-over bytes were counted by whoever read them; the engine counts what it read.
    assert.deepEqual([d.up, d.down], [0, 6]);
  } finally {
    await r.close();
  }
});

test('splice: a target reset ends both; the client hears its end; reason error', async () => {
  const r = await rig();
  try {
    const p = await r.pair();
    const atClient = collect(p.client);
    p.target.write('partial');
    await new Promise((res) => setTimeout(res, 50));
    p.target.resetAndDestroy();
    const d = await p.done;
    assert.equal(d.end, 'error');
    // Closed as relay.ts's destroy() closes: a FIN (the client is half-open, so 'end').
    await atClient.ended;
    assert.equal(atClient.now().toString(), 'partial');
  } finally {
    await r.close();
  }
});

test('splice: kill() with reset gives the client ECONNRESET and returns the counts; no done()', async () => {
  const r = await rig();
  try {
    const p = await r.pair();
    p.client.write('x'.repeat(100));
    const atTarget = collect(p.target);
    for (let i = 0; i < 100 && atTarget.now().length < 100; i++) await new Promise((res) => setTimeout(res, 5));
    const err = new Promise<NodeJS.ErrnoException>((res) => p.client.once('error', res));
    const counts = r.engine.kill(p.id, { client: true });
    assert.deepEqual(counts, [100, 0]);
    assert.equal((await err).code, 'ECONNRESET');
    assert.equal(r.engine.kill(p.id), null, 'a second kill finds nothing');
    assert.equal(r.engine.stats().active, 0);
  } finally {
    await r.close();
  }
});

test('splice: idle pairs close after idleMs; progress reports bytes of a long pair once a second', async () => {
  const r = await rig();
  try {
    const idle = await r.pair({ idleMs: 300 });
    const busy = await r.pair({ idleMs: 300 });
    const atTarget = collect(busy.target);
    let sent = 0;
    const t0 = Date.now();
    const timer = setInterval(() => {
      busy.client.write('y'.repeat(1000));
      sent += 1000;
    }, 50);
    const d = await idle.done;
    assert.equal(d.end, 'idle');
    const took = Date.now() - t0;
    assert.ok(took >= 300 && took < 3000, `idle close after ${took} ms`);
    await new Promise((res) => setTimeout(res, 1200));
    clearInterval(timer);
    assert.ok(busy.progress.up > 0, 'the busy pair reported progress');
    assert.ok(busy.progress.up <= sent);
    busy.client.end();
    await atTarget.ended;
    busy.target.end();
    const b = await busy.done;
    assert.equal(b.up, sent);
    assert.equal(b.end, 'clean');
  } finally {
    await r.close();
  }
});

test('splice: quiet pairs hold no pipe; a blocked one holds its own until it drains', async () => {
  const r = await rig();
  try {
    const pairs = [];
    for (let i = 0; i < 20; i++) pairs.push(await r.pair());
    for (const p of pairs) {
      const got = collect(p.target);
      p.client.write('ping');
      for (let k = 0; k < 200 && got.now().length < 4; k++) await new Promise((res) => setTimeout(res, 2));
      assert.equal(got.now().toString(), 'ping');
    }
    assert.equal(r.engine.stats().active, 20);
    assert.equal(r.engine.stats().pipesInUse, 0, '20 open, quiet pairs: no pipe held');
    // A client that does not read: the target's bytes wait in that direction's pipe.
    const p = pairs[0]!;
    p.client.pause();
    p.target.write(Buffer.alloc(8 << 20));
    for (let k = 0; k < 200 && r.engine.stats().pipesInUse === 0; k++) await new Promise((res) => setTimeout(res, 5));
    assert.equal(r.engine.stats().pipesInUse, 1);
    let got = 0;
    p.client.on('data', (d) => (got += d.length));
    p.client.resume();
    for (let k = 0; k < 400 && got < 8 << 20; k++) await new Promise((res) => setTimeout(res, 5));
    assert.equal(got, 8 << 20);
    assert.equal(r.engine.stats().pipesInUse, 0);
  } finally {
    await r.close();
  }
});

test('splice: a pass that ends exactly on the 256 KiB slice gives its pipe back (the next event may not read that side)', async () => {
  // 256 KiB written at once fill the pipe four times in one pass: the direction gives the loop back
  // at the slice with its source empty, so the re-armed event is only "writable" and never reads
  // that side again. The pipe must not stay held by an idle pair.
  const r = await rig();
  const yieldsBefore = r.engine.stats().yields;
  try {
    for (let i = 0; i < 10; i++) {
      const p = await r.pair();
      const got = collect(p.client);
      const yields = r.engine.stats().yields;
      p.target.write(Buffer.alloc(256 << 10));
      for (let k = 0; k < 400 && got.now().length < 256 << 10; k++) await new Promise((res) => setTimeout(res, 5));
      assert.equal(got.now().length, 256 << 10);
      await new Promise((res) => setTimeout(res, 20));
      assert.equal(r.engine.stats().pipesInUse, 0, `pair ${i} (yielded ${r.engine.stats().yields - yields} time(s))`);
    }
    // The case under test happened: at least one pass stopped at the slice (otherwise this proves nothing).
    assert.ok(r.engine.stats().yields > yieldsBefore, 'no pass reached the 256 KiB slice');
  } finally {
    await r.close();
  }
});

test('splice: backpressure: a client that does not read holds the target back (nothing buffered but one pipe), then gets every byte', async () => {
  const r = await rig();
  try {
    const p = await r.pair();
    p.client.pause();
    const big = randomBytes(32 << 20);
    let flushed = false;
    p.target.write(big, () => (flushed = true));
    p.target.end();
    await new Promise((res) => setTimeout(res, 500));
    assert.equal(flushed, false, 'the target could not write 32 MiB into a client that reads nothing');
    // What the relay holds meanwhile: one direction's pipe (64 KiB of slots), no user-space buffer.
    assert.equal(r.engine.stats().pipesInUse, 1);
    const h = createHash('sha256');
    let got = 0;
    p.client.on('data', (d: Buffer) => {
      h.update(d);
      got += d.length;
    });
    const ended = once(p.client, 'end');
    p.client.resume();
    await ended;
    assert.equal(got, big.length);
    assert.equal(h.digest('hex'), sha(big));
    p.client.end();
    assert.equal((await p.done).down, big.length);
  } finally {
    await r.close();
  }
});

test('splice: a fast stream between two other processes gives the event loop back every 256 KiB, and arrives whole', async () => {
  // Sender and receiver are child processes, so the pair always has bytes waiting: without a slice
  // per event one stream held this thread for 110-130 ms at a time (docs/benchmarks.md).
  const MIB = 128;
  const engine = new SpliceEngine();
  const sinkPort = await new Promise<number>((r) => {
    const probe = net.createServer();
    probe.listen(0, '127.0.0.1', () => {
      const port = (probe.address() as net.AddressInfo).port;
      probe.close(() => r(port));
    });
  });
  const sink = spawn(
    process.execPath,
    [
      '-e',
      `const h=require('crypto').createHash('sha256');let n=0;require('net').createServer({allowHalfOpen:true},(c)=>{c.on('data',(d)=>{h.update(d);n+=d.length});c.on('end',()=>{console.log(n+' '+h.digest('hex'));process.exit(0)})}).listen(${sinkPort},'127.0.0.1',()=>console.log('ready'))`,
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  // Every line the sink prints, kept from the start (a flowing stdout drops what no listener takes).
  let out = '';
  sink.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  /** Line n (0-based) once it is complete; '' if it does not come within 10 s. */
  const line = async (n: number): Promise<string> => {
    for (let i = 0; i < 1000 && out.split('\n').length - 1 <= n; i++) await new Promise((r) => setTimeout(r, 10));
    return out.split('\n').length - 1 > n ? out.split('\n')[n]! : '';
  };
  assert.equal(await line(0), 'ready');
  const proxy = net.createServer({ pauseOnConnect: true });
  const port = await listen(proxy);
  const accepted = once<net.Socket>(proxy, 'connection');
  const sender = spawn(
    process.execPath,
    [
      '-e',
      `const b=Buffer.alloc(1<<20);for(let i=0;i<b.length;i++)b[i]=(i*31)&255;const c=require('net').connect(${port},'127.0.0.1',()=>{let i=0;const w=()=>{while(i<${MIB}){i++;if(!c.write(b))return c.once('drain',w)}c.end()};w()})`,
    ],
    { stdio: 'inherit' },
  );
  try {
    const fromClient = await accepted;
    const toSink = net.connect(sinkPort, '127.0.0.1');
    await once(toSink, 'connect');
    let maxLag = 0;
    let last = performance.now();
    const tick = setInterval(() => {
      const now = performance.now();
      maxLag = Math.max(maxLag, now - last - 5);
      last = now;
    }, 5);
    // done() reports only the bytes progress() has not reported yet (progress comes once a second, so
    // on a slow host a 128 MiB stream gets some): the total is their sum.
    let reported = 0;
    const done = new Promise<{ up: number; end: SpliceEnd }>((res) =>
      engine.start(
        { clientFd: socketFd(fromClient), targetFd: socketFd(toSink) },
        {
          progress: (up) => {
            reported += up;
          },
          done: (up, _down, end) => res({ up: reported + up, end }),
        },
      ),
    );
    fromClient.destroy();
    toSink.destroy();
    const d = await done;
    clearInterval(tick);
    const chunk = Buffer.alloc(1 << 20);
    for (let i = 0; i < chunk.length; i++) chunk[i] = (i * 31) & 255;
    const h = createHash('sha256');
    for (let i = 0; i < MIB; i++) h.update(chunk);
    assert.equal(await line(1), `${MIB << 20} ${h.digest('hex')}`);
    assert.deepEqual(d, { up: MIB << 20, end: 'clean' });
    const y = engine.stats().yields;
    console.error(
      `splice.test: ${MIB} MiB between two processes: ${y} yields, event loop lag at most ${maxLag.toFixed(1)} ms`,
    );
    assert.ok(y > 0, 'the stream gave the loop back at least once');
  } finally {
    sender.kill();
    sink.kill();
    proxy.close();
    engine.close();
  }
});

test('splice: fuzz: random chunks both ways and random FIN order arrive whole, counts exact', async () => {
  const r = await rig();
  try {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.uint8Array({ minLength: 1, maxLength: 3000 }), { maxLength: 8 }),
        fc.array(fc.uint8Array({ minLength: 1, maxLength: 3000 }), { maxLength: 8 }),
        fc.boolean(),
        fc.uint8Array({ maxLength: 64 }),
        async (ups, downs, clientFirst, early) => {
          const p = await r.pair({ toTarget: Buffer.from(early) });
          const atTarget = collect(p.target);
          const atClient = collect(p.client);
          const send = async (s: net.Socket, chunks: Uint8Array[]) => {
            for (const c of chunks) {
              s.write(c);
              await new Promise((res) => setImmediate(res));
            }
            s.end();
          };
          if (clientFirst) {
            await send(p.client, ups);
            await send(p.target, downs);
          } else await Promise.all([send(p.target, downs), send(p.client, ups)]);
          const upAll = Buffer.concat(ups);
          const downAll = Buffer.concat(downs);
          assert.deepEqual(await atTarget.ended, Buffer.concat([Buffer.from(early), upAll]));
          assert.deepEqual(await atClient.ended, downAll);
          const d = await p.done;
          assert.deepEqual(d, { up: upAll.length, down: downAll.length, end: 'clean' });
        },
      ),
      { numRuns: 40 },
    );
    assert.equal(r.engine.stats().active, 0);
    assert.ok(r.engine.stats().pooledPipes > 0, 'empty pipes are kept for the next pair');
    assert.equal(r.engine.stats().pipesInUse, 0);
  } finally {
    await r.close();
  }
});

test('splice: lend() writes toClient, then exactly `length` bytes of the target, to a client the caller keeps: never read, never shut down', async () => {
  const engine = new SpliceEngine();
  const targets: net.Socket[] = [];
  const targetServer = net.createServer({ allowHalfOpen: true }, (s) => targets.push(s));
  const proxyServer = net.createServer({ allowHalfOpen: true, pauseOnConnect: true });
  const tport = await listen(targetServer);
  const pport = await listen(proxyServer);
  const open: net.Socket[] = [];
  const lendOne = async (length: number) => {
    const accepted = once<net.Socket>(proxyServer, 'connection');
    const client = net.connect({ port: pport, host: '127.0.0.1', allowHalfOpen: true });
    await once(client, 'connect');
    const kept = await accepted;
    const toTarget = net.connect({ port: tport, host: '127.0.0.1', allowHalfOpen: true });
    await once(toTarget, 'connect');
    while (targets.length === 0) await new Promise((r) => setImmediate(r));
    const target = targets.shift()!;
    open.push(client, kept, target);
    // Bytes past the length stay unread in the engine's target socket: its close resets the target.
    for (const s of [client, kept, target]) s.on('error', () => {});
    let finish!: (v: { down: number; end: SpliceEnd }) => void;
    const done = new Promise<{ down: number; end: SpliceEnd }>((r) => (finish = r));
    let progressed = 0;
    const id = engine.lend(
      { clientFd: socketFd(kept), targetFd: socketFd(toTarget), toClient: Buffer.from('HEAD:'), length },
      {
        progress: (_up, down) => {
          progressed += down;
        },
        done: (_up, down, end) => finish({ down: down + progressed, end }),
      },
    );
    toTarget.destroy(); // the engine's from here; the client's handle stays ours
    return { client, kept, target, id, done };
  };
  try {
    assert.throws(() => engine.lend({ clientFd: 0, targetFd: 0, length: 0 }, { progress() {}, done() {} }), RangeError);
    const body = randomBytes(1_000_000);
    const l = await lendOne(body.length);
    const atClient = collect(l.client);
    let clientEnded = false;
    l.client.on('end', () => {
      clientEnded = true;
    });
    // The customer's next request, sent while the body is on its way: the engine must leave it to us.
    l.client.write('NEXT REQUEST');
    l.target.write(body);
    l.target.write('EXTRA bytes past the length');
    const d = await l.done;
    assert.equal(d.end, 'clean');
    assert.equal(d.down, body.length);
    for (let i = 0; i < 200 && atClient.now().length < body.length + 5; i++) await new Promise((r) => setTimeout(r, 5));
    const got = atClient.now();
    assert.equal(got.subarray(0, 5).toString(), 'HEAD:');
    assert.equal(sha(got.subarray(5)), sha(body), 'exactly the body, nothing past it');
    assert.equal(engine.stats().active, 0);
    // The kept socket is whole: what the client sent is still there to read, and it still writes.
    l.kept.resume();
    const [next] = await Promise.all([once<Buffer>(l.kept, 'data')]);
    assert.equal(next.toString(), 'NEXT REQUEST');
    l.kept.write('second answer');
    for (let i = 0; i < 200 && !atClient.now().toString('latin1').endsWith('second answer'); i++)
      await new Promise((r) => setTimeout(r, 5));
    assert.ok(atClient.now().toString('latin1').endsWith('second answer'));
    assert.equal(clientEnded, false, 'no FIN from the engine');

    // A target FIN before `length`: 'error', and the client still is the caller's to close.
    const cut = await lendOne(100_000);
    cut.target.end(Buffer.alloc(10_000));
    assert.equal((await cut.done).end, 'error');
    assert.equal(engine.stats().active, 0);
    assert.equal(cut.kept.destroyed, false);

    // kill() during a lend: nothing more moves, no done(); the kept socket stays open.
    const killed = await lendOne(5_000_000);
    killed.target.write(Buffer.alloc(100_000));
    await new Promise((r) => setTimeout(r, 50));
    let doneCalled = false;
    void killed.done.then(() => {
      doneCalled = true;
    });
    assert.ok(engine.kill(killed.id));
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(doneCalled, false);
    assert.equal(engine.stats().active, 0);
  } finally {
    for (const s of open) s.destroy();
    engine.close();
    await new Promise((r) => proxyServer.close(r));
    await new Promise((r) => targetServer.close(r));
  }
});

test('front: a listener shared by a second engine (frontDup → frontListen fd): both accept from it, either may let go and join again', async () => {
  const a = new SpliceEngine();
  const b = new SpliceEngine();
  try {
    const heads = { a: 0, b: 0 };
    // Each connection is ended as it is asked about; only which engine was asked counts.
    const handler = (k: 'a' | 'b') => ({
      head: (id: number) => {
        heads[k]++;
        (k === 'a' ? a : b).kill(id, { client: true });
        return undefined;
      },
    });
    const { port, tag } = a.frontListen('127.0.0.1', 0, 5000, handler('a'));
    // Not a listener, another port, another address: refused, and the descriptor closed.
    assert.throws(
      () => b.frontListen('127.0.0.1', port, 5000, handler('b'), undefined, false, false, openTcpFd(4, undefined, {})),
      /not a listening IPv4 TCP socket/,
    );
    assert.throws(
      () => b.frontListen('127.0.0.1', port + 1, 5000, handler('b'), undefined, false, false, a.frontDup(tag)),
      /not a listening IPv4 TCP socket on that address/,
    );
    assert.throws(
      () => b.frontListen('127.0.0.2', port, 5000, handler('b'), undefined, false, false, a.frontDup(tag)),
      /not a listening IPv4 TCP socket/,
    );
    assert.throws(() => a.frontDup(tag + 1000), /no such listener/);
    const first = a.frontDup(tag);
    const joined = b.frontListen('127.0.0.1', port, 5000, handler('b'), undefined, false, false, first);
    assert.equal(joined.port, port);
    // b lets go and joins again: the descriptor it gets is the same number (the lowest free one), which
    // joins its epoll only if the first was taken out of it at frontClose (else EEXIST).
    b.frontClose(joined.tag);
    const again = a.frontDup(tag);
    assert.equal(again, first, 'the same descriptor number, so the check below means something');
    const rejoined = b.frontListen('127.0.0.1', port, 5000, handler('b'), undefined, false, false, again);
    // Connections: every one is asked about once, by one engine or the other.
    const ask = async () => {
      const c = net.connect(port, '127.0.0.1');
      c.on('error', () => {}); // a refused head ends with a reset
      await once(c, 'connect');
      c.end('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
      await once(c, 'close');
    };
    for (let i = 0; i < 20; i++) await ask();
    assert.equal(heads.a + heads.b, 20);
    // a lets go first: b goes on accepting from the socket alone.
    a.frontClose(tag);
    const before = heads.b;
    await ask();
    assert.equal(heads.b, before + 1);
    b.frontClose(rejoined.tag);
  } finally {
    a.close();
    b.close();
  }
});
