// The UDP side of SOCKS5 UDP ASSOCIATE on one shared port (the agent: a SOCKS5 connection's own port), or a private port
// per association.
//
//   customer -> relay:30001/udp -> (DNAT) -> tunnel -> device:30001/udp -> [this] -> target
//
// Who may use it (docs/design.md §6: no port works without credentials): a datagram is accepted only
// from a source that holds a live association, which exists only while an authenticated SOCKS5
// control connection from that IP is open (RFC 1928 §7: "the association terminates when the TCP
// connection ... terminates"). RFC 1928 §6 lets the client name the port it will send from
// (DST.PORT of UDP ASSOCIATE): then the association is bound to clientIp:clientPort at once and
// nobody else can claim it. A client that names no port (0, it does not know yet) gets the old
// rule: the first datagram from its IP binds the association to that source port (several
// associations of one IP are claimed oldest-first). DST.ADDR is not used: the control
// connection's peer address is the better answer to "who is this". Unknown sources get no answer.
import { EventEmitter } from 'node:events';
import * as dgram from 'node:dgram';
import type { AddressInfo } from 'node:net';
import { createPolicyResolver } from '../dialer.js';
import { silentLogger } from '../logger.js';
import { normalizeIp } from '../server-base.js';
import type { Logger, Meter, ProxyEvents, ResolveChecked, UdpSocketFactory } from '../types.js';
import { UdpAssociation, type AssociationHost } from './association.js';

export interface UdpRelayOptions {
  /** Where to listen; default 0.0.0.0 on an ephemeral port. Ignored when `socket` is given. */
  readonly bind?: { readonly address?: string; readonly port?: number };
  /** An already created client-facing socket (e.g. bound by the app to its tunnel address). */
  readonly socket?: dgram.Socket;
  /** Egress sockets towards targets (default: dgram.createSocket). */
  readonly createSocket?: UdpSocketFactory;
  /** Destination resolution + policy (default: strict policy, system resolver). */
  readonly resolve?: ResolveChecked;
  readonly logger?: Logger;
  readonly maxAssociations?: number;
}

export interface RegisterOptions {
  readonly principal: string;
  /** The control connection's peer address. */
  readonly clientIp: string;
  /** The port the client named in UDP ASSOCIATE (DST.PORT); 0/undefined = not named. */
  readonly clientPort?: number;
  /** Charged per datagram: from the client 'up', to the client 'down' (a wait drops the datagram). */
  readonly meter?: Meter;
}

export class UdpRelay extends EventEmitter<ProxyEvents> implements AssociationHost {
  private readonly socket: dgram.Socket;
  private readonly bound = new Map<string, UdpAssociation>();
  private readonly unclaimed = new Map<string, UdpAssociation[]>();
  private readonly all = new Set<UdpAssociation>();
  private readonly resolve: ResolveChecked;
  private readonly createSocket: UdpSocketFactory;
  private readonly maxAssociations: number;
  private readonly ownSocket: boolean;
  private readonly logger: Logger;
  /** Datagrams from sources without an association (not answered). */
  strays = 0;

  constructor(private readonly opts: UdpRelayOptions = {}) {
    super();
    this.resolve = opts.resolve ?? createPolicyResolver({ policy: {} });
    this.createSocket = opts.createSocket ?? ((type) => dgram.createSocket(type));
    this.maxAssociations = opts.maxAssociations ?? 4096;
    this.logger = opts.logger ?? silentLogger;
    this.ownSocket = !opts.socket;
    const addr = opts.bind?.address ?? '0.0.0.0';
    this.socket = opts.socket ?? dgram.createSocket(addr.includes(':') ? 'udp6' : 'udp4');
    this.socket.on('message', (msg, rinfo) => this.onMessage(msg, rinfo));
    this.socket.on('error', (e) => this.logger.debug({ err: e }, 'udp relay socket error'));
  }

  /** Binds the client-facing socket (no-op for a socket passed in already bound). */
  async listen(): Promise<AddressInfo> {
    if (this.ownSocket) {
      await new Promise<void>((resolve, reject) => {
        this.socket.once('error', reject);
        this.socket.bind(this.opts.bind?.port ?? 0, this.opts.bind?.address ?? '0.0.0.0', () => {
          this.socket.removeListener('error', reject);
          resolve();
        });
      });
    }
    return this.socket.address();
  }

  address(): AddressInfo {
    return this.socket.address();
  }

  get associationCount(): number {
    return this.all.size;
  }

  /** Opens an association for an authenticated control connection; null when the relay is full. */
  register(o: RegisterOptions): UdpAssociation | null {
    if (this.all.size >= this.maxAssociations) return null;
    const ip = normalizeIp(o.clientIp);
    const a = new UdpAssociation(o.principal, ip, this, this.resolve, this.createSocket, o.meter);
    this.all.add(a);
    if (o.clientPort) {
      // Bound now. A second live association naming the same ip:port (the same client, reusing
      // its socket) takes the key over; the older one keeps living but receives nothing more.
      a.clientPort = o.clientPort;
      this.bound.set(`${ip}|${o.clientPort}`, a);
      return a;
    }
    const q = this.unclaimed.get(ip);
    if (q) q.push(a);
    else this.unclaimed.set(ip, [a]);
    return a;
  }

  private onMessage(msg: Buffer, rinfo: dgram.RemoteInfo): void {
    const ip = normalizeIp(rinfo.address);
    const key = `${ip}|${rinfo.port}`;
    let a = this.bound.get(key);
    if (!a) {
      const q = this.unclaimed.get(ip);
      a = q?.shift();
      if (!a) {
        this.strays++;
        return;
      }
      if (q!.length === 0) this.unclaimed.delete(ip);
      a.clientPort = rinfo.port;
      this.bound.set(key, a);
    }
    a.fromClient(msg);
  }

  sendToClient(a: UdpAssociation, parts: Buffer[]): void {
    if (a.clientPort === undefined) return;
    try {
      this.socket.send(parts, a.clientPort, a.clientIp);
    } catch {
      a.dropped++; // socket already closed (shutdown race)
    }
  }

  failed(a: UdpAssociation, code: string): void {
    this.emit('requestFailed', { principal: a.principal, protocol: 'udp', code, remoteAddress: a.clientIp });
  }

  unregister(a: UdpAssociation): void {
    if (!this.all.delete(a)) return;
    if (a.clientPort !== undefined) {
      const key = `${a.clientIp}|${a.clientPort}`;
      if (this.bound.get(key) === a) this.bound.delete(key);
    }
    const q = this.unclaimed.get(a.clientIp);
    if (q) {
      const i = q.indexOf(a);
      if (i >= 0) q.splice(i, 1);
      if (q.length === 0) this.unclaimed.delete(a.clientIp);
    }
    this.emit('connectionClosed', {
      principal: a.principal,
      protocol: 'udp',
      bytesIn: a.bytesIn,
      bytesOut: a.bytesOut,
      durationMs: Date.now() - a.started,
    });
  }

  /** Closes every association and (if we created it) the socket. */
  async close(): Promise<void> {
    for (const a of [...this.all]) a.close();
    if (this.ownSocket)
      await new Promise<void>((r) => {
        try {
          this.socket.close(() => r());
        } catch {
          r();
        }
      });
  }
}

export function createUdpRelay(opts: UdpRelayOptions = {}): UdpRelay {
  return new UdpRelay(opts);
}
