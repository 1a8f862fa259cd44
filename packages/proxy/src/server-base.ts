// What every TCP server of this package shares: a listening socket (net.Server, or LeanServer with
// the `lean` option: accepted connections are LeanSockets, lean/socket.ts), the set of live sockets
// (so close() really ends everything, which tests and graceful shutdown rely on), the handshake
// guard at accept, counters, and typed events.
import { EventEmitter } from 'node:events';
import * as net from 'node:net';
import { leanByDefault } from './lean/default.js';
import { LeanServer } from './lean/server.js';
import { FrontServer, type FrontEngine, type MakeFrontConnection } from './front/connection.js';
import type { ProxySocket } from './socket.js';
import type { HandshakeGuard } from './limits/guard.js';
import type { AuthContext, ProxyEvents } from './types.js';

/** Counters of one server (plain numbers, bumped where things happen; read them any time). */
export interface ProxyStats {
  /** Head (HTTP) or handshake (SOCKS5) not complete by its deadline. */
  handshakeTimeouts: number;
  /** Tunnels (and HTTP answers) ended by the idle timeout. */
  idleClosed: number;
  /** Wrong or malformed credentials (a missing Proxy-Authorization is not counted: browsers ask first). */
  authFailures: number;
  /** Requests refused through Principal.deny. */
  denied: number;
}

/** Called for every admitted socket; `leave` takes it out of the guard (call it once authenticated). */
export type OnConnection = (socket: ProxySocket, leave: () => void) => void;

/** The listening socket of a ProxyServer. */
export type ProxyListener = net.Server | LeanServer | FrontServer;

/** A ProxyServer whose listener is a native front (front/connection.ts). */
export interface FrontListenOptions {
  readonly engine: FrontEngine;
  /** The deadline for a request head (a SOCKS5 handshake), from accept. */
  readonly headMs: number;
  /** An address without a per-address cap on unauthenticated connections in the engine. */
  readonly exempt?: string;
  /** The protocol's connection (http/front.ts, socks5/front.ts). */
  readonly make: MakeFrontConnection;
  /** A SOCKS5 front: the engine asks at every read of the handshake. */
  readonly socks?: boolean;
  /** Its connections' SYNs are read for stamps (front/connection.ts TransparentFront); readStamps changes it. */
  readonly stamps?: boolean;
  /**
   * No listening socket of its own: the engine accepts from this one, another thread's listener
   * (FrontServer.dupListener there); the engine's from listen() on.
   */
  readonly shared?: number;
  /**
   * A device's lanes (@pocketproxy/tun native/lanes.cc): a group of this many listening sockets that picks
   * by the TUN queue a SYN came in on; this one accepts from lane 0's, FrontServer.laneListener gives the others'.
   */
  readonly lanes?: number;
}

const noop = (): void => {};

export class ProxyServer extends EventEmitter<ProxyEvents & { error: [Error] }> {
  readonly server: ProxyListener;
  readonly stats: ProxyStats = { handshakeTimeouts: 0, idleClosed: 0, authFailures: 0, denied: 0 };
  private readonly sockets = new Set<ProxySocket>();

  /**
   * `lean`: accept LeanSockets (lean/socket.ts) instead of net.Sockets. `front`: the engine accepts
   * (front/connection.ts); onConnection then also gets its FrontConnections.
   */
  constructor(
    onConnection: OnConnection,
    maxConnections?: number,
    guard?: HandshakeGuard,
    lean = leanByDefault(),
    front?: FrontListenOptions,
  ) {
    super();
    const accept = (socket: ProxySocket): void => {
      // A socket error without a listener would crash the process; handlers add their own too.
      socket.on('error', noop);
      let leave = noop;
      if (guard) {
        // One getpeername per accept, only with a guard; SocketAuthContext reuses Node's cached answer.
        const l = guard.admit(socket.remoteAddress ?? '');
        if (l === null) return void socket.destroy();
        leave = l;
        socket.once('close', l);
      }
      this.sockets.add(socket);
      socket.once('close', () => this.sockets.delete(socket));
      onConnection(socket, leave);
    };
    // allowHalfOpen: tunnels forward each direction's FIN on its own (relay.ts). LeanSockets always are.
    this.server = front
      ? new FrontServer(
          front.engine,
          front.headMs,
          accept,
          front.make,
          front.exempt,
          front.socks,
          front.stamps,
          front.shared,
          front.lanes,
        )
      : lean
        ? new LeanServer({ noDelay: true }, accept)
        : net.createServer({ allowHalfOpen: true, noDelay: true }, accept);
    if (maxConnections !== undefined) this.server.maxConnections = maxConnections;
    // Re-emitted only when someone listens: an unlistened 'error' would take the process down.
    this.server.on('error', (e) => {
      if (this.listenerCount('error') > 0) this.emit('error', e);
    });
  }

  /** Listens and resolves with the bound address (port 0 picks a free port). */
  listen(port: number, host = '127.0.0.1'): Promise<net.AddressInfo> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      const listening = (): void => {
        this.server.removeListener('error', reject);
        resolve(this.server.address() as net.AddressInfo);
      };
      if (this.server instanceof net.Server) this.server.listen(port, host, listening);
      else this.server.listen(port, host, listening);
    });
  }

  /**
   * Accepted sockets have Nagle off (TCP_NODELAY). By default Node sets it on each one as it is
   * accepted (a setsockopt per connection); a caller that set TCP_NODELAY on the listening socket
   * itself, which the kernel copies into every connection it accepts, calls this to skip that call.
   * (net.Server and LeanServer read their `noDelay` field at every accept.)
   */
  inheritNoDelay(): void {
    (this.server as { noDelay: boolean }).noDelay = false;
  }

  address(): net.AddressInfo {
    return this.server.address() as net.AddressInfo;
  }

  /**
   * Whether a native front's connections' SYNs are read for stamps from now on (FrontServer.readStamps); a
   * listener without a front reads none.
   */
  readStamps(on: boolean): void {
    if (this.server instanceof FrontServer) this.server.readStamps(on);
  }

  get connectionCount(): number {
    return this.sockets.size;
  }

  /** Stops accepting and destroys every live connection (and, through them, their targets). */
  close(): Promise<void> {
    return new Promise((resolve) => {
      for (const s of this.sockets) s.destroy();
      if (!this.server.listening) return resolve();
      this.server.close(() => resolve());
    });
  }
}

export function normalizeIp(ip: string | undefined): string {
  if (!ip) return '';
  return ip.startsWith('::ffff:') && ip.includes('.') ? ip.slice(7) : ip;
}

/**
 * The AuthContext of one customer connection. Addresses are read from the socket when first asked
 * for (getpeername/getsockname are a system call each, and most requests never need them).
 */
export class SocketAuthContext implements AuthContext {
  constructor(
    readonly protocol: AuthContext['protocol'],
    readonly socket: ProxySocket,
  ) {}
  get remoteAddress(): string {
    return normalizeIp(this.socket.remoteAddress);
  }
  get remotePort(): number {
    return this.socket.remotePort ?? 0;
  }
  get localPort(): number {
    return this.socket.localPort ?? 0;
  }
}
