// One SOCKS5 UDP association: datagrams from its client go out through egress sockets made by the
// app's factory (bound to the cellular interface); answers come back with the §7 header.
//
//   customer -> relay:30001/udp -> tunnel -> device:30001/udp -> [association] -> egress socket -> target
//
// Answers are accepted only from address:port pairs this association has sent to (the filtering
// of an address-and-port-dependent NAT, RFC 4787 §5), so the egress port is no open door.
//
// With a meter, each datagram is charged as it passes (client's 'up', answers 'down'). UDP cannot
// be paused, so a rate wait drops the datagram instead (policing; refunded when the meter can, so a
// sender above its rate still gets its rate through); a spent budget closes the association.
import type * as dgram from 'node:dgram';
import { isPPError } from '@pocketproxy/errors';
import { normalizeIp } from '../server-base.js';
import type { Direction, Meter, ResolveChecked, UdpSocketFactory } from '../types.js';
import { encodeUdpHeader, parseUdpHeader, type UdpHeader } from './datagram.js';

const MAX_PEERS = 1024;
const MAX_CACHED_NAMES = 256;
const NAME_TTL_MS = 30_000;

export interface AssociationHost {
  sendToClient(a: UdpAssociation, parts: Buffer[]): void;
  failed(a: UdpAssociation, code: string): void;
  unregister(a: UdpAssociation): void;
}

type Resolved = { address: string; family: 4 | 6 } | { error: string };

export class UdpAssociation {
  bytesIn = 0;
  bytesOut = 0;
  dropped = 0;
  /** The client's source port: named in UDP ASSOCIATE, or learnt from its first datagram. */
  clientPort: number | undefined;
  readonly started = Date.now();
  /** Runs once when the association closes (the SOCKS5 server ends the control connection then). */
  onClosed: (() => void) | undefined;
  private closed = false;
  private readonly egress: { 4?: dgram.Socket; 6?: dgram.Socket } = {};
  private readonly peers = new Set<string>();
  private readonly names = new Map<string, { at: number; p: Promise<Resolved> }>();

  constructor(
    readonly principal: string,
    readonly clientIp: string,
    private readonly host: AssociationHost,
    private readonly resolve: ResolveChecked,
    private readonly createSocket: UdpSocketFactory,
    private readonly meter?: Meter,
  ) {}

  get isClosed(): boolean {
    return this.closed;
  }

  /** A datagram from the client (already matched to this association by the relay). */
  fromClient(msg: Buffer): void {
    let h: UdpHeader;
    try {
      h = parseUdpHeader(msg);
    } catch {
      this.dropped++;
      return;
    }
    // RFC 1928 §7: fragmentation is optional; an implementation without it drops FRAG != 0.
    if (h.frag !== 0) {
      this.dropped++;
      return;
    }
    const port = h.port;
    if (port === 0) {
      this.dropped++;
      return;
    }
    if (this.meter && !this.charge('up', msg.length)) return;
    this.bytesIn += msg.length;
    const payload = msg.subarray(h.dataOffset);
    this.lookup(h.host).then(
      (r) => {
        if (this.closed) return;
        if ('error' in r) {
          this.dropped++;
          return;
        }
        const key = `${r.address}|${port}`;
        if (!this.peers.has(key)) {
          if (this.peers.size >= MAX_PEERS) this.peers.delete(this.peers.values().next().value!);
          this.peers.add(key);
        }
        try {
          this.socketFor(r.family).send(payload, port, r.address);
        } catch {
          this.dropped++; // factory failed or socket closed meanwhile
        }
      },
      () => {
        this.dropped++;
      },
    );
  }

  private lookup(host: string): Promise<Resolved> {
    const now = Date.now();
    const hit = this.names.get(host);
    if (hit && now - hit.at < NAME_TTL_MS) return hit.p;
    if (this.names.size >= MAX_CACHED_NAMES) this.names.delete(this.names.keys().next().value!);
    const p = this.resolve(host).then(
      (r): Resolved => r,
      (e: unknown): Resolved => {
        const code = isPPError(e) ? e.code : 'PP_ERR_PROXY_DNS_FAILED';
        this.host.failed(this, code);
        return { error: code };
      },
    );
    this.names.delete(host);
    this.names.set(host, { at: now, p });
    return p;
  }

  private socketFor(family: 4 | 6): dgram.Socket {
    let s = this.egress[family];
    if (!s) {
      s = this.createSocket(family === 6 ? 'udp6' : 'udp4');
      s.on('error', () => {}); // ICMP-induced errors on a connectionless socket are not fatal
      s.on('message', (msg, rinfo) => this.fromTarget(msg, rinfo));
      this.egress[family] = s;
    }
    return s;
  }

  private fromTarget(msg: Buffer, rinfo: dgram.RemoteInfo): void {
    const addr = normalizeIp(rinfo.address);
    if (this.closed || this.clientPort === undefined || !this.peers.has(`${addr}|${rinfo.port}`)) {
      this.dropped++;
      return;
    }
    const header = encodeUdpHeader(addr, rinfo.port);
    if (this.meter && !this.charge('down', header.length + msg.length)) return;
    this.bytesOut += header.length + msg.length;
    this.host.sendToClient(this, [header, msg]);
  }

  /** False when the datagram must not pass: over the rate (dropped) or budget spent (closed). */
  private charge(dir: Direction, bytes: number): boolean {
    const m = this.meter!;
    const wait = m.take(dir, bytes);
    if (wait === 0) return true;
    if (wait < 0) this.close();
    else {
      this.dropped++;
      m.refund?.(dir, bytes);
    }
    return false;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const s of [this.egress[4], this.egress[6]])
      if (s)
        try {
          s.close();
        } catch {
          /* already closed */
        }
    this.host.unregister(this);
    this.onClosed?.();
  }
}
