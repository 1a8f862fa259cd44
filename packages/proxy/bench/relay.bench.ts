// Micro bench on loopback: CONNECT setups per second and tunnel throughput, for the HTTP proxy and
// SOCKS5; then the HTTP tunnel with a meter (ConnectionMeter without limits: the cost of counting;
// and with a 1 Gbit/s upload limit: how close the limiter gets). Bounded (fixed counts and sizes),
// everything on 127.0.0.1, closes all it opens.
// Run: node --import tsx --conditions=source packages/proxy/bench/relay.bench.ts
import * as net from 'node:net';
import { once } from 'node:events';
import { ConnectionMeter, createHttpProxy, createSocks5Server, createPolicyDialer, type Meter } from '../src/index.js';

const SETUPS = Number(process.env.SETUPS ?? 2000);
const CONCURRENCY = 32;
const MB = Number(process.env.MB ?? 512);

const authenticate = async (u: string, p: string) => (u === 'u' && p === 'p' ? { principal: 'bench' } : null);
const dial = createPolicyDialer({ policy: { allowLoopback: true } });

async function listen(s: net.Server): Promise<number> {
  s.listen(0, '127.0.0.1');
  await once(s, 'listening');
  return (s.address() as net.AddressInfo).port;
}

// Target: answers "ok" to every connection, and counts bytes to a sink for the throughput run.
const target = net.createServer({ allowHalfOpen: true }, (c) => {
  c.on('error', () => {});
  let n = 0;
  c.on('data', (d: Buffer) => {
    if (n === 0 && d[0] === 0x3f) {
      c.end('ok');
      return;
    } // '?' probe for setup bench
    n += d.length;
  });
  c.on('end', () => c.end(String(n)));
});
const targetPort = await listen(target);

const http = createHttpProxy({ authenticate, dial });
const socks = createSocks5Server({ authenticate, dial });
const httpPort = (await http.listen(0)).port;
const socksPort = (await socks.listen(0)).port;
// Each metered run gets a fresh meter (a spent bucket must not carry over).
let meter: Meter = new ConnectionMeter();
const metered = createHttpProxy({
  authenticate: async (u, p) => (u === 'u' && p === 'p' ? { principal: 'bench', meter } : null),
  dial,
});
const meteredPort = (await metered.listen(0)).port;

const AUTH = `Basic ${Buffer.from('u:p').toString('base64')}`;
const SOCKS_HELLO = Buffer.from([
  5,
  1,
  2,
  1,
  1,
  0x75,
  1,
  0x70,
  5,
  1,
  0,
  1,
  127,
  0,
  0,
  1,
  targetPort >> 8,
  targetPort & 0xff,
]);

/** Opens a tunnel and resolves with the socket once the proxy confirmed it. */
function open(kind: 'http' | 'socks5', port = kind === 'http' ? httpPort : socksPort): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1');
    s.setNoDelay(true);
    s.on('error', reject);
    let got = 0;
    const need = kind === 'http' ? -1 : 2 + 2 + 10;
    let text = '';
    const onData = (d: Buffer): void => {
      got += d.length;
      if (kind === 'http') text += d.toString('latin1');
      if ((kind === 'http' && text.includes('\r\n\r\n')) || (need > 0 && got >= need)) {
        s.removeListener('data', onData);
        if (kind === 'http' && !text.startsWith('HTTP/1.1 200')) reject(new Error(text));
        else resolve(s);
      }
    };
    s.on('data', onData);
    s.once('connect', () =>
      s.write(
        kind === 'http'
          ? `CONNECT 127.0.0.1:${targetPort} HTTP/1.1\r\nProxy-Authorization: ${AUTH}\r\n\r\n`
          : SOCKS_HELLO,
      ),
    );
  });
}

async function setups(kind: 'http' | 'socks5'): Promise<number> {
  let next = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next++ < SETUPS) {
        const s = await open(kind);
        s.write('?');
        await once(s, 'end');
        s.destroy();
      }
    }),
  );
  return SETUPS / ((performance.now() - t0) / 1000);
}

async function throughput(kind: 'http' | 'socks5', port?: number): Promise<number> {
  const s = await open(kind, port);
  const chunk = Buffer.alloc(64 * 1024, 0x61);
  const total = MB * 1024 * 1024;
  const t0 = performance.now();
  let sent = 0;
  while (sent < total) {
    sent += chunk.length;
    if (!s.write(chunk)) await once(s, 'drain');
  }
  s.end();
  let reply = '';
  s.on('data', (d: Buffer) => {
    reply += d.toString();
  });
  await once(s, 'close');
  const secs = (performance.now() - t0) / 1000;
  if (Number(reply) !== total) throw new Error(`target saw ${reply} of ${total}`);
  return (total * 8) / secs / 1e9;
}

const rows: string[] = [];
for (const kind of ['http', 'socks5'] as const) {
  const sps = await setups(kind);
  const gbps = await throughput(kind);
  rows.push(
    `${kind.padEnd(7)} CONNECT setups/s: ${sps.toFixed(0).padStart(6)}   throughput: ${gbps.toFixed(2)} Gbit/s (${MB} MiB, one tunnel)`,
  );
}
meter = new ConnectionMeter();
rows.push(
  `http + meter (no limits)                throughput: ${(await throughput('http', meteredPort)).toFixed(2)} Gbit/s`,
);
meter = new ConnectionMeter({ upKbps: 1_000_000 });
rows.push(
  `http + meter (1 Gbit/s up limit)        throughput: ${(await throughput('http', meteredPort)).toFixed(2)} Gbit/s`,
);
console.log(`proxy relay bench (loopback, ${SETUPS} setups x ${CONCURRENCY} concurrent, node ${process.version})`);
for (const r of rows) console.log(`  ${r}`);
await http.close();
await socks.close();
await metered.close();
target.close();
