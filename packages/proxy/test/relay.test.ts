// The tunnel pump on real loopback sockets: meter rate and budget through HTTP CONNECT, backpressure
// and rate waits holding together, half-close, idle timeout versus rate waits.
import { it, after } from 'node:test';
import assert from 'node:assert/strict';
import * as net from 'node:net';
import { once } from 'node:events';
import {
  ConnectionMeter,
  createHttpProxy,
  forwardEarly,
  createSocks5Server,
  type Dial,
  type Meter,
  type ProxyServer,
  type ProxySocket,
} from '../src/index.js';
import {
  authenticate,
  basic,
  cleanup,
  connect,
  onCleanup,
  PASS,
  readUntil,
  socksHandshake,
  socksRequest,
  tcpEcho,
  testDial,
  untilClose,
  untilHead,
  USER,
} from './helpers.js';

after(cleanup);

/** A target that streams bytes (0,1,..,255,0,..) as fast as the reader takes them; counts closes. */
async function source(): Promise<{ port: number; closed: () => number }> {
  let closed = 0;
  const s = net.createServer((c) => {
    c.on('error', () => {});
    c.on('close', () => closed++);
    const block = Buffer.alloc(64 * 1024);
    for (let i = 0; i < block.length; i++) block[i] = i & 0xff;
    const pump = (): void => {
      while (!c.destroyed && c.write(block));
    };
    c.on('drain', pump);
    pump();
  });
  s.listen(0, '127.0.0.1');
  await once(s, 'listening');
  onCleanup(
    () =>
      new Promise((r) => {
        s.close(r);
      }),
  );
  return { port: (s.address() as net.AddressInfo).port, closed: () => closed };
}

/** An HTTP proxy whose every customer gets `meter`; `sockets` collects proxy-side customer and target sockets. */
async function meteredHttp(
  meter: Meter,
  idleTimeoutMs?: number,
): Promise<{ port: number; proxy: ProxyServer; customers: ProxySocket[]; targets: ProxySocket[] }> {
  const customers: ProxySocket[] = [];
  const targets: ProxySocket[] = [];
  const dial: Dial = async (r) => {
    const t = await testDial(r);
    targets.push(t);
    return t;
  };
  const proxy = createHttpProxy({
    authenticate: async (_u, _p, ctx) => {
      customers.push(ctx.socket);
      return { principal: 'p', meter };
    },
    allowNoAuth: async (ctx) => {
      customers.push(ctx.socket);
      return { principal: 'p', meter };
    },
    dial,
    idleTimeoutMs,
  });
  onCleanup(() => proxy.close());
  return { port: (await proxy.listen(0)).port, proxy, customers, targets };
}

async function tunnel(proxyPort: number, targetPort: number): Promise<{ s: net.Socket; rest: Buffer }> {
  const s = await connect(proxyPort);
  s.write(`CONNECT 127.0.0.1:${targetPort} HTTP/1.1\r\n\r\n`);
  const head = await untilHead(s);
  const end = head.indexOf('\r\n\r\n') + 4;
  assert.match(head.toString('latin1', 0, end), /^HTTP\/1\.1 200 /);
  return { s, rest: head.subarray(end) };
}

it('forwardEarly: early bytes are written at once and counted with no limit; under a rate limit or a budget they are left to the metered pump', () => {
  const writes: Buffer[] = [];
  const target = { write: (b: Buffer) => writes.push(b) > 0 } as unknown as ProxySocket;
  const early = Buffer.from('GET / HTTP/1.1\r\n\r\n');
  // No meter, then an unlimited one (its usage still counts the bytes).
  assert.equal(forwardEarly(target, early, undefined).length, 0);
  const free = new ConnectionMeter({});
  assert.equal(forwardEarly(target, early, free).length, 0);
  assert.equal(free.used, early.length);
  assert.equal(writes.length, 2);
  // Nothing to send: nothing written.
  assert.equal(forwardEarly(target, Buffer.alloc(0), undefined).length, 0);
  assert.equal(writes.length, 2);
  // A rate limit or a budget: untouched, for relay()'s metered pump to pace and charge.
  for (const limited of [new ConnectionMeter({ upKbps: 100 }), new ConnectionMeter({ budgetBytes: 10 })]) {
    assert.equal(forwardEarly(target, early, limited), early);
    assert.equal(limited.used, 0);
  }
  assert.equal(writes.length, 2);
});

it('early bytes behind a CONNECT (HTTP) or a SOCKS5 CONNECT reach the target before our answer goes out, when no limit holds them', async () => {
  // The dial hands back the target socket with its write recorded: at the moment the early bytes are
  // written there, how much had the server written to the customer? HTTP 0 = the 200 had not gone yet;
  // SOCKS5 4 = the greeting and auth answers only, not the CONNECT reply.
  const echo = await tcpEcho();
  for (const kind of ['http', 'socks5'] as const) {
    const seen: number[] = [];
    let customerSide: { bytesWritten: number } | undefined;
    const dial: Dial = async (o) => {
      const up = await testDial(o);
      const write = up.write.bind(up) as (b: Buffer | string) => boolean;
      (up as { write: (b: Buffer | string) => boolean }).write = (b) => {
        seen.push(customerSide?.bytesWritten ?? -1);
        return write(b);
      };
      return up;
    };
    const p = kind === 'http' ? createHttpProxy({ authenticate, dial }) : createSocks5Server({ authenticate, dial });
    p.server.on('connection', (s: { bytesWritten: number }) => {
      customerSide = s;
    });
    const port = (await p.listen(0, '127.0.0.1')).port;
    onCleanup(() => p.close());
    let got: Buffer;
    if (kind === 'http') {
      const s = await connect(port);
      s.write(`CONNECT 127.0.0.1:${echo} HTTP/1.1\r\nProxy-Authorization: ${basic(USER, PASS)}\r\n\r\nearly-bytes`);
      got = await readUntil(s, (b) => b.includes('early-bytes'));
    } else {
      const early = Buffer.concat([socksRequest(1, '127.0.0.1', echo), Buffer.from('early-bytes')]);
      const { s, reply } = await socksHandshake(port, 'ok', early);
      got = reply!.includes('early-bytes')
        ? reply!
        : Buffer.concat([reply!, await readUntil(s, (b) => b.includes('early-bytes'))]);
    }
    assert.ok(got.includes('early-bytes'), `${kind}: the echo of the early bytes came back`);
    assert.equal(
      seen[0],
      kind === 'http' ? 0 : 4,
      `${kind}: written to the target before our answer (customer bytes written then: ${seen[0]})`,
    );
  }
});

it('a 1000 kbps down limit delivers 1 Mbit/s within 10 % over 3 s through HTTP CONNECT', async () => {
  const src = await source();
  const { port } = await meteredHttp(new ConnectionMeter({ downKbps: 1000 }));
  const { s, rest } = await tunnel(port, src.port);
  const samples: Array<[number, number]> = [];
  let total = rest.length;
  const t0 = performance.now();
  samples.push([t0, total]);
  s.on('data', (d: Buffer) => {
    total += d.length;
    samples.push([performance.now(), total]);
  });
  // Skip the first 500 ms (the bucket's initial burst), then measure 3 s of wall time.
  await new Promise((r) => setTimeout(r, 3500));
  s.destroy();
  const at = (t: number): number => {
    let b = 0;
    for (const [ts, n] of samples) if (ts <= t) b = n;
    return b;
  };
  const bytes = at(t0 + 3500) - at(t0 + 500);
  const kbps = (bytes * 8) / 3 / 1000;
  assert.ok(kbps > 900 && kbps < 1100, `delivered ${kbps.toFixed(0)} kbps`);
});

it('a byte budget stops a download with less than one chunk of overshoot, and ends the target too', async () => {
  const src = await source();
  let fired = 0;
  const budget = 1_000_000;
  const meter = new ConnectionMeter({ budgetBytes: budget, onExhausted: () => fired++ });
  const { port } = await meteredHttp(meter);
  const { s, rest } = await tunnel(port, src.port);
  const got = rest.length + (await untilClose(s, 5000)).length;
  assert.ok(got <= budget + 64 * 1024, `received ${got} for a budget of ${budget}`);
  assert.ok(got >= budget - 64 * 1024, `received only ${got}`);
  assert.equal(fired, 1);
  assert.equal(meter.take('down', 1), -1);
  const deadline = Date.now() + 2000;
  while (src.closed() < 1 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  assert.equal(src.closed(), 1, 'the target connection ended with the customer');
});

it('backpressure and rate waits do not undo each other: a customer that stops reading bounds what the proxy buffers', async () => {
  const src = await source();
  let takes = 0;
  // Every slice asks for a short wait: rate timers keep expiring while the customer's buffer is full.
  const meter: Meter = {
    take: () => {
      takes++;
      return 2;
    },
  };
  const { port, customers } = await meteredHttp(meter);
  const { s } = await tunnel(port, src.port);
  s.pause();
  await new Promise((r) => setTimeout(r, 800));
  const queued = customers[0]!.writableLength;
  assert.ok(takes > 5, `only ${takes} takes`);
  assert.ok(queued < 256 * 1024, `the proxy queued ${queued} bytes for a customer that does not read`);
  // Reading again brings the flow back.
  const before = takes;
  s.resume();
  await readUntil(s, () => takes > before + 20, 3000).catch(() => {});
  assert.ok(takes > before + 20);
  s.destroy();
});

it('bytes arrive complete and in order through a metered tunnel, and half-close still works', async () => {
  const echo = await tcpEcho();
  const meter = new ConnectionMeter({ upKbps: 40_000, downKbps: 40_000 });
  const { port } = await meteredHttp(meter);
  const s = await connect(port);
  const payload = Buffer.alloc(3 * 1024 * 1024 + 123);
  for (let i = 0; i < payload.length; i++) payload[i] = (i * 7) & 0xff;
  // Early bytes right behind the CONNECT head are metered and forwarded first.
  s.write(Buffer.concat([Buffer.from(`CONNECT 127.0.0.1:${echo} HTTP/1.1\r\n\r\n`), payload.subarray(0, 1000)]));
  s.end(payload.subarray(1000));
  const got = await untilClose(s, 10_000);
  const body = got.subarray(got.indexOf('\r\n\r\n') + 4);
  assert.equal(body.length, payload.length);
  assert.ok(body.equals(payload));
  assert.equal(meter.used, payload.length * 2);
});

it('a FIN right behind the data waits for the bytes the meter still holds (tunnel)', async () => {
  // Node may emit 'end' right after the last 'data' even when that handler paused the stream; the
  // pump must not pass the FIN on before the slices the meter still holds.
  const payload = Buffer.alloc(2 * 1024 * 1024);
  for (let i = 0; i < payload.length; i++) payload[i] = (i * 13) & 0xff;
  const sink = net.createServer({ allowHalfOpen: true }, (c) => {
    c.on('error', () => {});
    const parts: Buffer[] = [];
    c.on('data', (d: Buffer) => parts.push(d));
    c.on('end', () => {
      const all = Buffer.concat(parts);
      c.end(`${all.length} ${all.equals(payload)}`);
    });
  });
  sink.listen(0, '127.0.0.1');
  await once(sink, 'listening');
  onCleanup(
    () =>
      new Promise((r) => {
        sink.close(r);
      }),
  );
  const { port } = await meteredHttp(new ConnectionMeter({ upKbps: 100_000 }));
  for (let round = 0; round < 4; round++) {
    const s = await connect(port);
    // Head, payload and FIN at once: they wait in the customer socket while the proxy dials.
    s.end(
      Buffer.concat([
        Buffer.from(`CONNECT 127.0.0.1:${(sink.address() as net.AddressInfo).port} HTTP/1.1\r\n\r\n`),
        payload,
      ]),
    );
    const got = (await untilClose(s, 10_000)).toString('latin1');
    assert.equal(got.slice(got.indexOf('\r\n\r\n') + 4), `${payload.length} true`);
  }
});

it('the idle timeout spares a tunnel waiting on its meter, and fires once it is really idle', async () => {
  const echo = await tcpEcho();
  let first = true;
  // The first slice asks for a wait three times the idle timeout.
  const meter: Meter = {
    take: () => {
      if (!first) return 0;
      first = false;
      return 600;
    },
  };
  const { port, proxy } = await meteredHttp(meter, 200);
  const { s } = await tunnel(port, echo);
  const t0 = Date.now();
  s.write('one');
  await readUntil(s, (b) => b.toString() === 'one', 3000);
  s.write('two');
  const got = await readUntil(s, (b) => b.toString().endsWith('two'), 3000);
  assert.ok(got.toString().endsWith('two'), 'still open after the long wait');
  assert.ok(Date.now() - t0 >= 550, 'the second read waited for the meter');
  await untilClose(s, 3000);
  assert.equal(proxy.stats.idleClosed, 1);
});

it('SOCKS5 CONNECT applies the meter too (budget ends the tunnel)', async () => {
  const src = await source();
  const meter = new ConnectionMeter({ budgetBytes: 200_000 });
  const socks = createSocks5Server({
    authenticate: async () => ({ principal: 'p', meter }),
    allowNoAuth: async () => ({ principal: 'p', meter }),
    dial: testDial,
  });
  onCleanup(() => socks.close());
  const port = (await socks.listen(0)).port;
  const s = await connect(port);
  s.write(Buffer.concat([Buffer.from([5, 1, 0]), socksRequest(1, '127.0.0.1', src.port)]));
  const got = await untilClose(s, 5000);
  assert.equal(got[1], 0);
  assert.ok(got.length - 12 <= 200_000 + 64 * 1024 && got.length > 100_000, `received ${got.length}`);
  assert.equal(meter.exhausted, true);
});
