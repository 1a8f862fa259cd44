// One SOCKS5 UDP relay, two client-facing ports. The relay DNATs a SOCKS5 connection's own port
// (TCP and UDP) to the device's :1080, and the device-level UDP port to :1081; datagrams of one
// association may arrive on either. This facade looks like one dgram.Socket to UdpRelay: it merges
// 'message' from both sockets and answers each client from the socket that client last used (the
// relay's conntrack only un-NATs replies from the port the datagram was DNATed to).
import { EventEmitter } from 'node:events';
import type * as dgram from 'node:dgram';
import type { AddressInfo } from 'node:net';

export class DualUdpSocket extends EventEmitter {
  private readonly via = new Map<string, dgram.Socket>();

  constructor(private readonly primary: dgram.Socket, private readonly secondary: dgram.Socket) {
    super();
    for (const s of [primary, secondary]) {
      s.on('message', (msg: Buffer, rinfo: dgram.RemoteInfo) => {
        const key = `${rinfo.address}|${rinfo.port}`;
        if (this.via.get(key) !== s) {
          this.via.delete(key);
          this.via.set(key, s);
          if (this.via.size > 65_536) this.via.delete(this.via.keys().next().value as string);
        }
        this.emit('message', msg, rinfo);
      });
      s.on('error', (e) => this.emit('error', e));
    }
  }

  send(parts: Buffer | Buffer[], port: number, address: string): void {
    const s = this.via.get(`${address}|${port}`) ?? this.via.get(`::ffff:${address}|${port}`) ?? this.primary;
    s.send(parts, port, address);
  }

  address(): AddressInfo {
    return this.primary.address();
  }

  close(cb?: () => void): void {
    let n = 2;
    const done = () => { if (--n === 0) cb?.(); };
    for (const s of [this.primary, this.secondary]) {
      try { s.close(done); } catch { done(); }
    }
  }

  /** As UdpRelay sees it. */
  asSocket(): dgram.Socket {
    return this as unknown as dgram.Socket;
  }
}
