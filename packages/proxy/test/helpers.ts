// Loopback fixtures shared by the tests: echo servers, an HTTP origin, and tiny protocol clients.
// Everything listens on 127.0.0.1 / ::1 port 0 and is closed by `cleanup()`.
import * as net from 'node:net';
import * as http from 'node:http';
import * as dgram from 'node:dgram';
import { once } from 'node:events';
import { randomInt } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import assert from 'node:assert/strict';
import { openTcpFd, setTcpFlag } from '@pocketproxy/tun';
import { createPolicyDialer, createPolicyResolver, type Meter, type Resolve } from '../src/index.js';

const closers: Array<() => Promise<unknown> | unknown> = [];
export function onCleanup(f: () => Promise<unknown> | unknown): void {
  closers.push(f);
}
export async function cleanup(): Promise<void> {
  while (closers.length) await closers.pop()!();
}

/** Test names that map to loopback, so "domain" targets need no real DNS. */
export const testResolve: Resolve = async (host) => {
  if (host === 'echo.test' || host === 'origin.test') return [{ address: '127.0.0.1', family: 4 }];
  if (host === 'echo6.test') return [{ address: '::1', family: 6 }];
  if (host === 'rebind.test')
    return [
      { address: '93.184.216.34', family: 4 },
      { address: '127.0.0.1', family: 4 },
    ];
  if (host === 'private.test') return [{ address: '10.1.2.3', family: 4 }];
  throw Object.assign(new Error('not found'), { code: 'ENOTFOUND' });
};
export const loopbackPolicy = { allowLoopback: true } as const;
export const testDial = createPolicyDialer({ policy: loopbackPolicy, resolve: testResolve, connectTimeoutMs: 2000 });
export const testUdpResolve = createPolicyResolver({ policy: loopbackPolicy, resolve: testResolve });

/** The dial of a native front's tests: lean egress sockets opened by the addon, loopback allowed. */
export const frontDial = (resolve: Resolve = async (h) => [{ address: h, family: 4 }]) =>
  createPolicyDialer({
    policy: loopbackPolicy,
    resolve,
    connectTimeoutMs: 2000,
    lean: true,
    openFd: (family, local) => openTcpFd(family, local),
  });

/** A policy dialer on LeanSockets to loopback ('localhost' is 127.0.0.1). */
export const leanDial = createPolicyDialer({
  policy: loopbackPolicy,
  resolve: async (h) => [{ address: h === 'localhost' ? '127.0.0.1' : h, family: 4 }],
  connectTimeoutMs: 2000,
  lean: true,
});

export const USER = 'alice';
export const PASS = 's3cret';
export const authenticate = async (u: string, p: string) =>
  u === USER && p === PASS ? { principal: 'con_alice' } : null;

export async function tcpEcho(host = '127.0.0.1'): Promise<number> {
  const sockets = new Set<net.Socket>();
  const s = net.createServer({ allowHalfOpen: true }, (c) => {
    sockets.add(c);
    c.on('error', () => {});
    c.pipe(c);
    c.on('close', () => sockets.delete(c));
  });
  return listenTracked(s, sockets, host);
}

/** Listens on an ephemeral port of `host`; cleanup() destroys `sockets` (the server's live ones) and closes it. */
export async function listenTracked(s: net.Server, sockets: Set<net.Socket>, host = '127.0.0.1'): Promise<number> {
  s.listen(0, host);
  await once(s, 'listening');
  onCleanup(
    () =>
      new Promise((r) => {
        for (const c of sockets) c.destroy();
        s.close(r);
      }),
  );
  return (s.address() as net.AddressInfo).port;
}

export async function httpOrigin(host = '127.0.0.1'): Promise<number> {
  const s = http.createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (d: string) => {
      body += d;
    });
    req.on('end', () => {
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ method: req.method, url: req.url, headers: req.headers, body }));
    });
  });
  s.keepAliveTimeout = 1000;
  s.listen(0, host);
  await once(s, 'listening');
  onCleanup(
    () =>
      new Promise((r) => {
        s.closeAllConnections();
        s.close(r);
      }),
  );
  return (s.address() as net.AddressInfo).port;
}

export async function udpEcho(type: 'udp4' | 'udp6' = 'udp4'): Promise<number> {
  const s = dgram.createSocket(type);
  s.on('message', (m, r) => s.send(m, r.port, r.address));
  s.bind(0, type === 'udp4' ? '127.0.0.1' : '::1');
  await once(s, 'listening');
  onCleanup(() => new Promise<void>((r) => s.close(() => r())));
  return s.address().port;
}

export async function connect(port: number, host = '127.0.0.1'): Promise<net.Socket> {
  const s = net.connect({ port, host });
  s.on('error', () => {});
  await once(s, 'connect');
  onCleanup(() => s.destroy());
  return s;
}

/** Reads until `pred(buffer)` holds or the socket closes; bounded by `ms`. */
export function readUntil(s: net.Socket, pred: (b: Buffer) => boolean, ms = 3000): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    let buf = Buffer.alloc(0);
    const t = setTimeout(() => {
      off();
      reject(new Error(`timeout; got ${JSON.stringify(buf.toString('latin1'))}`));
    }, ms);
    const off = (): void => {
      clearTimeout(t);
      s.removeListener('data', onData);
      s.removeListener('close', onClose);
    };
    const onData = (d: Buffer): void => {
      buf = Buffer.concat([buf, d]);
      if (pred(buf)) {
        off();
        resolve(buf);
      }
    };
    const onClose = (): void => {
      off();
      resolve(buf);
    };
    s.on('data', onData);
    s.once('close', onClose);
    if (s.isPaused()) s.resume();
  });
}
/** Resolves on 'close' (events.once would reject on the 'error' a reset brings first). */
export const closeOf = (s: net.Socket): Promise<unknown> => new Promise((r) => s.once('close', r));

/** `p`, or a failure after `ms`: a test whose event never comes fails instead of hanging. */
export const within = <T>(p: Promise<T>, ms: number, what: string): Promise<T> =>
  Promise.race([
    p,
    new Promise<never>((_, rej) => setTimeout(() => rej(new Error(`${what}: not within ${ms} ms`)), ms)),
  ]);

export const untilClose = (s: net.Socket, ms?: number): Promise<Buffer> => readUntil(s, () => false, ms);
export const untilHead = (s: net.Socket): Promise<Buffer> => readUntil(s, (b) => b.includes('\r\n\r\n'));

export function basic(u: string, p: string): string {
  return `Basic ${Buffer.from(`${u}:${p}`).toString('base64')}`;
}

/** SOCKS5 handshake up to the reply; returns [socket, reply bytes]. */
export async function socksHandshake(
  port: number,
  auth: 'ok' | 'wrong' | 'missing',
  request: Buffer,
): Promise<{ s: net.Socket; greeting: Buffer; auth?: Buffer; reply?: Buffer }> {
  const s = await connect(port);
  s.write(auth === 'missing' ? Buffer.from([5, 1, 0]) : Buffer.from([5, 1, 2]));
  const greeting = await readUntil(s, (b) => b.length >= 2);
  if (greeting[1] !== 2) return { s, greeting };
  const pass = auth === 'ok' ? PASS : 'nope';
  s.write(
    Buffer.concat([Buffer.from([1, USER.length]), Buffer.from(USER), Buffer.from([pass.length]), Buffer.from(pass)]),
  );
  const a = await readUntil(s, (b) => b.length >= 2);
  if (a[1] !== 0) return { s, greeting, auth: a };
  s.write(request);
  const reply = await readUntil(s, (b) => b.length >= 4 && b.length >= replyLength(b));
  return { s, greeting, auth: a, reply };
}

export function replyLength(b: Buffer): number {
  const atyp = b[3];
  if (atyp === 1) return 10;
  if (atyp === 4) return 22;
  if (atyp === 3) return 7 + (b[4] ?? 0);
  return 4;
}

export function socksRequest(cmd: number, host: string, port: number): Buffer {
  let addr: Buffer;
  if (net.isIPv4(host)) addr = Buffer.from([1, ...host.split('.').map(Number)]);
  else if (net.isIPv6(host)) {
    const b = Buffer.alloc(17);
    b[0] = 4;
    if (host === '::1') b[16] = 1;
    else throw new Error('only ::1 in tests');
    addr = b;
  } else addr = Buffer.concat([Buffer.from([3, host.length]), Buffer.from(host)]);
  const p = Buffer.alloc(2);
  p.writeUInt16BE(port);
  return Buffer.concat([Buffer.from([5, cmd, 0]), addr, p]);
}

/** Waits (polling every 10 ms) until `pred` holds; throws after `ms`. */
export const until = async (pred: () => boolean, ms: number, what: string): Promise<void> => {
  const end = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > end) throw new Error(`${what}: not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 10));
  }
};

/** A meter that counts what it is charged; `unlimited` says whether it limits anything. */
export function countingMeter(unlimited = true): Meter & { up: number; down: number } {
  return {
    up: 0,
    down: 0,
    take(dir, n) {
      this[dir] += n;
      return 0;
    },
    unlimited: () => unlimited,
  };
}

/**
 * `n` hostile customers at once: each sends bytes(), cut at a random point with random pauses, then
 * resets, half-closes or goes silent; resolves once every connection ended (or 8 s passed for it).
 */
export async function hostileCustomers(port: number, n: number, bytes: () => Buffer): Promise<void> {
  const runs: Promise<unknown>[] = [];
  for (let i = 0; i < n; i++) {
    runs.push(
      (async () => {
        const s = net.connect({ port, host: '127.0.0.1' });
        s.on('error', () => {});
        s.on('data', () => {});
        await new Promise((r) => s.once('connect', r).once('close', r));
        const b = bytes();
        const cut = randomInt(b.length + 1);
        s.write(b.subarray(0, cut));
        await new Promise((r) => setTimeout(r, randomInt(30)));
        s.write(b.subarray(cut));
        await new Promise((r) => setTimeout(r, randomInt(30)));
        const end = randomInt(3);
        if (end === 0) s.resetAndDestroy();
        else if (end === 1) s.end();
        // else: left open until the deadlines end it
        await within(closeOf(s), 8000, 'every connection ends by itself').catch(() => s.destroy());
      })(),
    );
  }
  await Promise.all(runs);
}

/** What the customer's kernel received on `s` (ss: segments in, of them with data), read while it is in CLOSE_WAIT. */
export function segmentsIn(s: net.Socket): { segs: number; dataSegs: number } {
  const out = execFileSync('ss', ['-tinH', 'state', 'close-wait', 'src', `127.0.0.1:${s.localPort}`], {
    encoding: 'utf8',
  });
  const segs = /\bsegs_in:(\d+)/.exec(out);
  const data = /\bdata_segs_in:(\d+)/.exec(out);
  assert.ok(segs, `ss shows no socket for 127.0.0.1:${s.localPort}: ${out}`);
  return { segs: Number(segs[1]), dataSegs: data ? Number(data[1]) : 0 };
}

/** Reads to EOF without closing (the socket stays in CLOSE_WAIT for ss). */
export function untilEnd(s: net.Socket): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    s.on('data', (d: Buffer) => parts.push(d));
    s.once('end', () => resolve(Buffer.concat(parts)));
    s.once('error', reject);
  });
}

/**
 * An origin that answers the first bytes it reads with `answer`. Its FIN goes in the same segment (its
 * socket corked), as an origin's last segment often arrives: a proxy reads the bytes and hears of the EOF
 * a moment later; or, with `laterMs`, that long after the answer.
 */
export async function endingOrigin(answer: Buffer, laterMs?: number): Promise<number> {
  const server = net.createServer({ allowHalfOpen: true }, (c) => {
    c.on('error', () => {});
    c.once('data', () => {
      if (laterMs === undefined) {
        assert.ok(setTcpFlag(c, 'cork', true), 'TCP_CORK could not be set (is the @pocketproxy/tun addon built?)');
        c.end(answer);
      } else {
        c.write(answer);
        setTimeout(() => c.end(), laterMs);
      }
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  onCleanup(() => new Promise((r) => server.close(r)));
  return (server.address() as net.AddressInfo).port;
}
