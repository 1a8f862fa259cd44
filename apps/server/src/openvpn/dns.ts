// DNS for OpenVPN customers, resolved THROUGH their device (no DNS leak through the relay).
//
//   customer 10.9.0.6 -> any:53 (udp/tcp) --nft REDIRECT (tun1)--> relay :5353 (this module)
//     -> the customer's device (the transparent proxy's client map) -> upstream:53 through the
//        customer's connection (its port and protocol, its credentials: tunnel/device-dial.ts)
//        -> DNS over TCP (RFC 1035 §4.2.2)
//
// So the query leaves from the device's carrier address, to a configured public resolver
// (POCKETPROXY_OPENVPN_DNS, default 1.1.1.1). UDP queries are answered over UDP (answers larger
// than the client's UDP size are sent as they are; clients retry over TCP on TC). A customer with
// no device mapping gets no answer. One CONNECT per UDP query (the query rides behind the
// handshake), or per TCP connection; bounded: 5 s per query and at most `maxInFlight` UDP queries at
// once. UDP answers are kept per connection for their TTL (dns-cache.ts): a name asked again is
// answered from the relay without a trip through the device.
import * as dgram from 'node:dgram';
import * as net from 'node:net';
import type { Logger } from 'pino';
import { dialThroughConnection, type ConnectionRoute, type DeviceDialers } from '../tunnel/device-dial.js';
import { createDnsAnswerCache, type DnsAnswerCache } from './dns-cache.js';

export type DnsRoute = ConnectionRoute;
type Tunnel = { socket: net.Socket; head: Buffer };

export interface DnsForwarderDeps extends DeviceDialers {
  readonly host: string;
  readonly port: number;
  readonly upstream: string;
  readonly upstreamPort?: number;
  readonly lookup: (clientIp: string) => DnsRoute | undefined;
  readonly logger: Logger;
  readonly timeoutMs?: number;
  readonly maxInFlight?: number;
  /** UDP answers kept per connection for their TTL (dns-cache.ts); default a fresh one. */
  readonly cache?: DnsAnswerCache;
}

export interface DnsForwarder {
  start(): Promise<void>;
  close(): Promise<void>;
  readonly port: number;
  readonly stats: { queries: number; answered: number; cached: number; failed: number; refused: number; tcp: number };
}

const plainIp = (a: string | undefined) => (a?.startsWith('::ffff:') ? a.slice(7) : (a ?? ''));

/** 2-byte length + query (RFC 1035 §4.2.2). */
function framed(query: Buffer): Buffer {
  const len = Buffer.alloc(2);
  len.writeUInt16BE(query.length);
  return Buffer.concat([len, query]);
}

/** Reads one answer (2-byte length + answer) from a tunnel whose query went out with the handshake. */
async function answerOverTcp(t: Tunnel, timeoutMs: number): Promise<Buffer> {
  const s = t.socket;
  return new Promise<Buffer>((resolve, reject) => {
    let buf = t.head;
    const timer = setTimeout(() => finish(new Error('DNS answer timeout')), timeoutMs);
    const finish = (err: Error | null, out?: Buffer) => {
      clearTimeout(timer);
      s.removeAllListeners('data');
      s.destroy();
      if (err) reject(err);
      else resolve(out!);
    };
    const check = () => {
      if (buf.length >= 2) {
        const n = buf.readUInt16BE(0);
        if (buf.length >= 2 + n) finish(null, buf.subarray(2, 2 + n));
      }
    };
    s.on('data', (c: Buffer) => {
      buf = Buffer.concat([buf, c]);
      if (buf.length > 70_000) return finish(new Error('DNS answer too large'));
      check();
    });
    s.on('close', () => finish(new Error('upstream closed')));
    s.on('error', () => {});
    s.resume();
    check();
  });
}

export function createDnsForwarder(d: DnsForwarderDeps): DnsForwarder {
  const log = d.logger.child({ subsys: 'openvpn-dns' });
  const timeoutMs = d.timeoutMs ?? 5_000;
  const maxInFlight = d.maxInFlight ?? 512;
  const stats = { queries: 0, answered: 0, cached: 0, failed: 0, refused: 0, tcp: 0 };
  const cache = d.cache ?? createDnsAnswerCache();
  let inFlight = 0;
  let port = d.port;
  const udp = dgram.createSocket({ type: 'udp4' });
  const tcpSockets = new Set<net.Socket>();
  let lastWarn = 0;
  const warn = (o: object, msg: string) => {
    const t = Date.now();
    if (t - lastWarn < 10_000) return;
    lastWarn = t;
    log.warn(o, msg);
  };

  // The query rides behind the handshake (device-dial.ts): one round trip through the device, not two.
  const dial = (r: DnsRoute, early?: Buffer): Promise<Tunnel> =>
    dialThroughConnection(r, d.upstream, d.upstreamPort ?? 53, timeoutMs, d, early);

  udp.on('message', (msg, rinfo) => {
    stats.queries++;
    const route = d.lookup(rinfo.address);
    if (!route || msg.length < 12 || inFlight >= maxInFlight) {
      stats.refused++;
      return;
    }
    const hit = cache.get(route, msg);
    if (hit) {
      stats.answered++;
      stats.cached++;
      udp.send(hit, rinfo.port, rinfo.address);
      return;
    }
    inFlight++;
    dial(route, framed(msg))
      .then((t) => answerOverTcp(t, timeoutMs))
      .then((answer) => {
        stats.answered++;
        cache.put(route, msg, answer);
        udp.send(answer, rinfo.port, rinfo.address);
      })
      .catch((err) => {
        stats.failed++;
        warn(
          { clientIp: rinfo.address, device: route.deviceVpnIp, err: String(err) },
          'DNS query through the device failed',
        );
      })
      .finally(() => inFlight--);
  });
  udp.on('error', (err) => warn({ err: String(err) }, 'DNS UDP socket error'));

  const tcp = net.createServer({ pauseOnConnect: true }, (c) => {
    stats.tcp++;
    tcpSockets.add(c);
    c.on('close', () => tcpSockets.delete(c));
    c.on('error', () => {});
    const route = d.lookup(plainIp(c.remoteAddress));
    if (!route) {
      stats.refused++;
      return void c.destroy();
    }
    c.setTimeout(30_000, () => c.destroy());
    dial(route).then(
      (t) => {
        if (c.destroyed) return void t.socket.destroy();
        const up = t.socket;
        tcpSockets.add(up);
        up.on('close', () => {
          tcpSockets.delete(up);
          c.destroy();
        });
        c.on('close', () => up.destroy());
        if (t.head.length) c.write(t.head);
        c.pipe(up);
        up.pipe(c);
        up.resume();
        c.resume();
      },
      (err) => {
        stats.failed++;
        warn({ clientIp: c.remoteAddress, err: String(err) }, 'DNS over TCP through the device failed');
        c.destroy();
      },
    );
  });

  return {
    stats,
    get port() {
      return port;
    },
    async start() {
      await new Promise<void>((resolve, reject) => {
        udp.once('error', reject);
        udp.bind(d.port, d.host, () => {
          udp.off('error', reject);
          port = udp.address().port;
          resolve();
        });
      });
      await new Promise<void>((resolve, reject) => {
        tcp.once('error', reject);
        tcp.listen(port, d.host, () => {
          tcp.off('error', reject);
          resolve();
        });
      });
      log.info({ port, upstream: d.upstream }, 'customer DNS forwarder listening (queries go through the device)');
    },
    async close() {
      for (const s of tcpSockets) s.destroy();
      await new Promise<void>((r) => udp.close(() => r())).catch(() => {});
      if (tcp.listening) await new Promise<void>((r) => tcp.close(() => r()));
    },
  };
}
