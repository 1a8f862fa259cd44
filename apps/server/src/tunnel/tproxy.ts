// The transparent proxy for OpenVPN customers (docs/design.md §2.4):
//
//   customer 10.9.0.6 -> 93.184.216.34:443 --nft REDIRECT (tun1)--> relay :12345
//     -> SO_ORIGINAL_DST (93.184.216.34:443) -> peek SNI / Host (short, bounded wait)
//     -> the connection's own listener on the device (vpn_ip:PORT), in its protocol:
//        HTTP "CONNECT sni-or-ip:443" or SOCKS5 CONNECT, with the connection's credentials and
//        the peeked bytes behind it in one segment (device-dial.ts), in the device socket's SYN with
//        TCP Fast Open (native sockets, POCKETPROXY_TPROXY_FASTOPEN, the default) -> target
//
// Which device and connection serve which customer address is the `clients` map, which the OpenVPN
// server's login handling fills (../openvpn/management.ts: the API's `POST /api/internal/openvpn/connect`
// for the address it gives the customer) and empties at the customer's disconnect. A customer address
// with no mapping is refused: nothing ever leaves through the relay's own address. The device applies the
// connection's state and limits to these sockets as to any other of that connection.
//
// Sockets, by POCKETPROXY_TPROXY_SOCKETS (`sockets`):
//   native (the default): the listener and both sockets of every connection live in the addon
//     (@pocketproxy/tun SpliceEngine.listen, native/splice_relay.cc "Transparent listener"): accept,
//     SO_ORIGINAL_DST, the peek, the device socket and the handshake in C++, then splice() between
//     the two. JS is asked the three things that need a policy or a parser, one call each (which
//     connection serves this customer; the handshake for these first bytes; is the device's answer
//     complete), so the SNI / Host and answer parsers stay the fuzzed TypeScript ones. A customer's
//     short connection was two sockets' worth of per-connection JavaScript and libuv work, which is
//     where this path lost new connections/s to redsocks (docs/benchmarks.md, "OpenVPN customer path").
//     Needs the addon and an IPv4 listen address; otherwise lean.
//   lean: LeanSockets (packages/proxy lean/: Node's TCP handle without net.Socket's stream
//     machinery) on both sides, one state machine per connection in JS (serve() below);
//   node: the same flow on node:net.
//
// Joined, on lean sockets with the addon: a joined connection leaves JS (packages/proxy
// lean/handoff.ts over @pocketproxy/tun's SpliceEngine: splice() kernel to kernel, a reset passed on
// as a reset); it stays in the JS pump below when something of it still lives in JS (a write
// queued, the customer's FIN already passed on). POCKETPROXY_TPROXY_SPLICE=false keeps every
// connection in JS.
import * as net from 'node:net';
import type { Logger } from 'pino';
import {
  classifyFirstBytes,
  createHandoff,
  LeanServer,
  leanBinding,
  type ProxySocket,
  type RelayHandoff,
} from '@pocketproxy/proxy';
import {
  addonAvailable,
  getOriginalDst,
  setTcpFlag,
  SpliceEngine,
  type FdOwner,
  type OriginalDst,
  type TransparentHooks,
} from '@pocketproxy/tun';
import { LogLimiter } from './limits.js';
import {
  answerReader,
  deviceHandshake,
  openDeviceSocket,
  type ConnectionRoute,
  type DeviceHandshake,
} from './device-dial.js';

export type OpenVpnClientRoute = ConnectionRoute;
export type TproxySockets = 'native' | 'lean' | 'node';

export interface TransparentProxyDeps {
  host: string;
  port: number;
  logger: Logger;
  /** Where a customer was headed; default: the kernel's (SO_ORIGINAL_DST). Tests inject one. */
  getOriginalDst?: (socket: FdOwner) => OriginalDst;
  peekTimeoutMs?: number;
  connectTimeoutMs?: number;
  maxConnections?: number;
  /**
   * Device connections opened at accept and still waiting for their customer's first bytes, at most
   * this many per device (default 256); past it a connection's device socket opens at the end of its peek.
   */
  earlyDialsPerDevice?: number;
  /**
   * POCKETPROXY_TPROXY_SOCKETS; 'native' (the default) falls back to 'lean' without the addon, with
   * `splice: false` or on an IPv6 host, and 'lean' to 'node' where Node lacks the TCP handle binding.
   */
  sockets?: TproxySockets;
  /** POCKETPROXY_TPROXY_SPLICE: joined connections to the native relay (default true; needs the addon). */
  splice?: boolean;
  /**
   * POCKETPROXY_TPROXY_FASTOPEN (default true; native sockets): a device socket opens once its customer's
   * first bytes are in, with TCP Fast Open, so the CONNECT and those bytes ride in its SYN instead of
   * following an early dial's handshake (earlyDialsPerDevice does not apply then).
   */
  fastOpen?: boolean;
}

export interface TransparentProxy {
  readonly clients: Map<string, OpenVpnClientRoute>;
  readonly port: number;
  readonly sockets: TproxySockets;
  /** Counts since the start (a snapshot in native mode, where the addon keeps them). */
  readonly stats: { accepted: number; refused: number; failed: number; active: number; spliced: number };
  start(): Promise<void>;
  close(): Promise<void>;
}

const plainIp = (a: string | undefined) => (a?.startsWith('::ffff:') ? a.slice(7) : (a ?? ''));
const ignore = (): void => {};
const EMPTY = Buffer.alloc(0);
/** The most of a customer's first bytes looked at for a name (as packages/proxy peekTarget). */
const PEEK_MAX = 16 * 1024;
/** Customer bytes held while the device answers, beyond which the customer is paused. */
const HOLD_MAX = 64 * 1024;

/**
 * The handshake for a customer's first bytes, or undefined while a name may still come (not
 * `final`, and the peek neither named a host nor is full). The host is the name the bytes carry
 * (SNI / Host, so the device resolves it: no DNS answer from the relay's resolver decides where the
 * customer goes), else the address the customer dialled; the peeked bytes ride behind the
 * handshake (device-dial.ts: one tunnel round trip, not two).
 */
function peekedHandshake(
  route: ConnectionRoute,
  dst: { address: string; port: number },
  peeked: Buffer,
  final: boolean,
): (DeviceHandshake & { host: string }) | undefined {
  const v = peeked.length ? classifyFirstBytes(peeked, PEEK_MAX) : undefined;
  if (!final && !v?.done && peeked.length < PEEK_MAX) return undefined;
  const host = v?.done && v.host ? v.host : dst.address;
  return { host, ...deviceHandshake(route, host, dst.port, peeked) };
}

export function createTransparentProxy(d: TransparentProxyDeps): TransparentProxy {
  const log = d.logger.child({ subsys: 'tproxy' });
  const clients = new Map<string, OpenVpnClientRoute>();
  const limit = new LogLimiter(10_000);
  const stats = { accepted: 0, refused: 0, failed: 0, active: 0, spliced: 0 };
  const sockets = new Set<ProxySocket>();
  const want = d.sockets ?? 'native';
  const engine: TproxySockets =
    want === 'native' && d.splice !== false && addonAvailable() && net.isIPv4(d.host)
      ? 'native'
      : want === 'node' || !leanBinding()
        ? 'node'
        : 'lean';
  const lean = engine === 'lean';
  const splice = engine !== 'node' && d.splice !== false && addonAvailable() ? new SpliceEngine() : undefined;
  const handoff: RelayHandoff | undefined = lean && splice ? createHandoff(splice) : undefined;
  const originalDst = d.getOriginalDst ?? getOriginalDst;
  const peekTimeoutMs = d.peekTimeoutMs ?? 300;
  const connectTimeoutMs = d.connectTimeoutMs ?? 10_000;
  const maxConnections = d.maxConnections ?? 20_000;
  // A device connection waiting for its handshake sits in the device's handshake guard (total cap 2,048
  // by default, shared by all of that device's customers): customers opening silent connections in
  // bulk must not fill it, so only this many per device are opened before their customer speaks.
  const earlyDialsPerDevice = d.earlyDialsPerDevice ?? 256;
  const earlyDials = new Map<string, number>();
  // Refusals and failures, logged at most once per 10 s per customer (LogLimiter) by either engine.
  const logNoRoute = (clientIp: string): void => {
    if (limit.allow(`nomap:${clientIp}`, Date.now()) !== undefined)
      log.info({ clientIp }, 'no device mapped for this OpenVPN client; refused');
  };
  const logNoDst = (clientIp: string, err: unknown): void => {
    if (limit.allow('nodst', Date.now()) !== undefined)
      log.warn({ clientIp, err: String(err) }, 'no original destination (not redirected?); refused');
  };
  const logFailure = (clientIp: string, host: string, port: number, err: unknown): void => {
    if (limit.allow(`fail:${clientIp}`, Date.now()) !== undefined)
      log.info({ clientIp, host, port, err: String(err) }, 'device proxy refused or unreachable');
  };
  let port = d.port;

  /**
   * One customer connection, from accept until both sockets are closed. Each socket keeps one
   * 'data' listener from start to end and is never paused between the steps (peek -> dial ->
   * joined), only for backpressure: every read stop and restart costs libuv two epoll_ctl calls,
   * four per connection with the promise-based peek and handshake this replaced.
   *   peek:   the customer's first bytes until SNI / Host is known, PEEK_MAX, its FIN or the timeout;
   *           the device's socket is opened at accept, so its TCP handshake over the device tunnel
   *           runs while the customer's first bytes are on their way (as redsocks dials at accept)
   *           instead of after them (up to earlyDialsPerDevice such sockets per device; past that,
   *           at the end of the peek); nothing is written to it yet, and it must not speak;
   *   dial:   the handshake + those bytes written at once; customer bytes arriving meanwhile are
   *           held (HOLD_MAX, then the customer is paused);
   *   joined: bytes both ways with backpressure; a FIN is passed on as a FIN (half-open both ways),
   *           a reset or error as a reset (when the device revokes the connection it resets its
   *           socket, and the customer must hear of it at once, not after what is still queued).
   */
  function serve(client: ProxySocket, clientIp: string, route: ConnectionRoute, dst: OriginalDst): void {
    let phase: 'peek' | 'dial' | 'joined' = 'peek';
    let buf: Buffer = EMPTY; // peek: what the customer sent; dial: what the device answered so far
    let held: Buffer[] | null = null as Buffer[] | null; // dial: customer bytes after the peek
    let heldBytes = 0;
    let clientEnded = false;
    let server: ProxySocket | null = null;
    let answered: (b: Buffer) => number | undefined = () => undefined;
    let host = dst.address;
    let timer: NodeJS.Timeout | null = null;
    // Whether this connection holds one of its device's early-dial slots.
    let early = false;
    const leaveEarly = (): void => {
      if (!early) return;
      early = false;
      const n = (earlyDials.get(route.deviceVpnIp) ?? 1) - 1;
      if (n > 0) earlyDials.set(route.deviceVpnIp, n);
      else earlyDials.delete(route.deviceVpnIp);
    };

    const fail = (err: unknown): void => {
      stats.failed++;
      logFailure(clientIp, host, dst.port, err);
      server?.destroy();
      client.resetAndDestroy();
    };

    /** The peek is over (`ready`: its handshake, when the bytes decided it; else its end, FIN or timeout). */
    function dial(ready?: DeviceHandshake & { host: string }): void {
      if (timer) clearTimeout(timer);
      timer = null;
      if (phase !== 'peek' || client.destroyed) return;
      phase = 'dial';
      const h = ready ?? peekedHandshake(route, dst, buf, true)!;
      host = h.host;
      answered = h.answered;
      buf = EMPTY;
      // A connect started at accept counts toward the device's answer time, as before.
      timer = setTimeout(
        () => fail(new Error(`no answer from the device in ${connectTimeoutMs} ms`)),
        connectTimeoutMs,
      );
      leaveEarly();
      (server ?? openServer()).write(h.hello);
    }

    const onClientData = (c: Buffer): void => {
      if (phase === 'joined') {
        if (!server!.write(c)) {
          client.pause();
          server!.once('drain', resumeClient);
        }
      } else if (phase === 'peek') {
        buf = buf.length ? Buffer.concat([buf, c]) : c;
        const h = peekedHandshake(route, dst, buf, false);
        if (h) dial(h);
      } else {
        if (held) held.push(c);
        else held = [c];
        heldBytes += c.length;
        if (heldBytes > HOLD_MAX) client.pause();
      }
    };
    const resumeClient = (): void => void client.resume();
    const resumeServer = (): void => void server?.resume();

    const onServerData = (c: Buffer): void => {
      // The device's proxies never speak first: bytes before our handshake are not an answer.
      if (phase === 'peek') return void fail(new Error('the device sent bytes before the handshake'));
      if (phase === 'joined') {
        if (!client.write(c)) {
          server!.pause();
          client.once('drain', resumeServer);
        }
        return;
      }
      buf = buf.length ? Buffer.concat([buf, c]) : c;
      let n: number | undefined;
      try {
        n = answered(buf);
      } catch (err) {
        fail(err);
        return;
      }
      if (n === undefined) return;
      if (timer) clearTimeout(timer);
      timer = null;
      phase = 'joined';
      const s = server!;
      if (n < buf.length) client.write(buf.subarray(n));
      buf = EMPTY;
      if (held) {
        for (const h of held) s.write(h);
        held = null;
        if (heldBytes > HOLD_MAX) client.resume();
      }
      if (clientEnded) s.end();
      // Nothing is left in JS but the two sockets: the native relay takes them (resetting one side
      // when the other fails, as below), or declines and the pump below goes on.
      if (handoff?.(client, s, { resetOnError: true }, ignore)) stats.spliced++;
    };
    const onServerEnd = (): void => {
      if (phase === 'joined') client.end();
      else fail(new Error('the device closed before answering'));
    };
    const onServerError = (err: Error): void => {
      if (phase !== 'joined') {
        fail(err);
        return;
      }
      if (!client.destroyed) client.resetAndDestroy();
    };
    const onServerClose = (): void => {
      sockets.delete(server!);
      client.destroy();
    };

    function openServer(): ProxySocket {
      const s = openDeviceSocket(route, lean);
      server = s;
      sockets.add(s);
      s.on('data', onServerData);
      s.on('end', onServerEnd);
      s.on('error', onServerError);
      s.on('close', onServerClose);
      return s;
    }

    const dialling = earlyDials.get(route.deviceVpnIp) ?? 0;
    if (dialling < earlyDialsPerDevice) {
      earlyDials.set(route.deviceVpnIp, dialling + 1);
      early = true;
      openServer();
    }
    timer = setTimeout(() => dial(), peekTimeoutMs);
    client.on('data', onClientData);
    client.on('end', () => {
      clientEnded = true;
      if (phase === 'joined') server!.end();
      else if (phase === 'peek') dial();
    });
    client.on('error', () => {
      if (server && !server.destroyed) server.resetAndDestroy();
    });
    client.on('close', () => {
      if (timer) clearTimeout(timer);
      timer = null;
      leaveEarly();
      server?.destroy();
    });
  }

  const onConnection = (client: ProxySocket): void => {
    if (stats.active >= maxConnections) return void client.destroy();
    stats.accepted++;
    stats.active++;
    sockets.add(client);
    client.on('error', ignore);
    client.on('close', () => {
      stats.active--;
      sockets.delete(client);
    });
    const clientIp = plainIp(client.remoteAddress);
    const route = clients.get(clientIp);
    if (!route) {
      stats.refused++;
      logNoRoute(clientIp);
      return void client.destroy();
    }
    let dst: OriginalDst;
    try {
      // Both socket kinds keep the TCP handle at `_handle`, which is all SO_ORIGINAL_DST reads.
      dst = originalDst(client);
    } catch (err) {
      stats.refused++;
      logNoDst(clientIp, err);
      return void client.destroy();
    }
    serve(client, clientIp, route, dst);
  };
  // Half-open on both kinds: a customer's FIN ends its request, not the answer still coming back.
  // TCP_NODELAY is set on the listener (start()), which the kernel copies into every accepted socket.
  const srv: LeanServer | net.Server | undefined =
    engine === 'native'
      ? undefined
      : lean
        ? new LeanServer({}, onConnection)
        : net.createServer({ allowHalfOpen: true }, onConnection);

  // Native mode: the addon's questions (TransparentHooks), answered from the same map and with the
  // same handshake and parsers as serve() above.
  const hooks: TransparentHooks = {
    route: (clientIp, fd, dstIp, dstPort) => {
      const route = clients.get(clientIp);
      if (!route) return void logNoRoute(clientIp);
      let dst = { address: dstIp, port: dstPort };
      if (!dst.address) {
        try {
          dst = originalDst({ _handle: { fd } });
        } catch (err) {
          return void logNoDst(clientIp, err);
        }
      }
      return [route.deviceVpnIp, route.proxyPort, route.protocol === 'socks5', dst.address, dst.port];
    },
    hello: (clientIp, deviceIp, devicePort, dstIp, dstPort, peeked, final) => {
      const route = clients.get(clientIp);
      // Remapped or gone since accept: the device socket already open is not this route's.
      if (!route || route.deviceVpnIp !== deviceIp || route.proxyPort !== devicePort) return null;
      return peekedHandshake(route, { address: dstIp, port: dstPort }, peeked, final)?.hello;
    },
    answered: (socks5, bytes, _replied) => {
      try {
        return answerReader(socks5 ? 'socks5' : 'http')(bytes) ?? -1;
      } catch {
        return -2;
      }
    },
    event: (kind, clientIp, dstIp, dstPort, detail) =>
      kind === 'nodst' ? logNoDst(clientIp, detail) : logFailure(clientIp, dstIp, dstPort, detail),
  };

  return {
    clients,
    get stats() {
      return engine === 'native' && splice ? { ...splice.listenStats() } : stats;
    },
    sockets: engine,
    get port() {
      return port;
    },
    start: () =>
      new Promise<void>((resolve, reject) => {
        if (!srv) {
          port = splice!.listen(
            d.host,
            d.port,
            {
              peekMs: peekTimeoutMs,
              connectMs: connectTimeoutMs,
              earlyDialsPerDevice,
              maxConnections,
              kernelDst: d.getOriginalDst === undefined,
              fastOpen: d.fastOpen ?? true,
            },
            hooks,
          );
          log.info({ port, sockets: engine }, 'transparent proxy listening');
          return resolve();
        }
        srv.once('error', reject);
        srv.listen(d.port, d.host, () => {
          srv.off('error', reject);
          port = (srv.address() as net.AddressInfo).port;
          // Delayed-ACK mode, inherited by every accepted socket: the ACK of the customer's request
          // rides on the answer instead of crossing both OpenVPN processes as a packet of its own.
          setTcpFlag(srv as net.Server, 'quickack', false);
          // Nagle off, inherited likewise (one setsockopt here instead of one per connection).
          if (!setTcpFlag(srv as net.Server, 'nodelay', true)) (srv as { noDelay: boolean }).noDelay = true;
          log.info({ port, sockets: engine }, 'transparent proxy listening');
          resolve();
        });
      }),
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        splice?.close();
        if (!srv?.listening) return resolve();
        srv.close(() => resolve());
      }),
  };
}
