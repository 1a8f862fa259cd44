// The tunnel's sockets: UDP on the tunnel port, and the TCP fallback on the same port (one TCP
// connection = one endpoint, frames prefixed with their 2-byte length, docs/protocol.md §9).
// The responder keys sessions by index, not address; an Endpoint is only "where to send replies",
// and it follows the last authenticated frame, whichever transport it came on.
import * as dgram from 'node:dgram';
import * as net from 'node:net';
import { TcpFrameDecoder, tcpLengthPrefix } from '@pocketproxy/protocol';
import type { Datagram, OutDatagram } from '@pocketproxy/tun';

export interface UdpEndpoint {
  readonly kind: 'udp';
  readonly address: string;
  readonly port: number;
}
export interface TcpEndpoint {
  readonly kind: 'tcp';
  readonly conn: TcpConn;
}
export type Endpoint = UdpEndpoint | TcpEndpoint;

export function sameEndpoint(a: Endpoint, b: Endpoint): boolean {
  if (a.kind === 'udp') return b.kind === 'udp' && a.port === b.port && a.address === b.address;
  return b.kind === 'tcp' && a.conn === b.conn;
}

/** Short text for logs and the API (vpn/connected `endpoint`, at most 80 characters). */
export function describeEndpoint(e: Endpoint): string {
  const hostPort = (a: string, p: number) => (a.includes(':') ? `[${a}]:${p}` : `${a}:${p}`);
  return e.kind === 'udp' ? hostPort(e.address, e.port) : `tcp/${hostPort(e.conn.remoteAddress, e.conn.remotePort)}`;
}

/** Where a frame came from, as an address to rate-limit by. */
export function sourceAddress(e: Endpoint): string {
  return e.kind === 'udp' ? e.address : e.conn.remoteAddress;
}

/** What the tunnel needs from a UDP socket: BatchUdpSocket (recvmmsg/sendmmsg) fits as is. */
export interface UdpPort {
  start(onDatagrams: (datagrams: Datagram[]) => void, onError?: (err: Error) => void): void;
  sendBatch(datagrams: readonly OutDatagram[]): number;
  address(): { address: string; port: number };
  /** Native sockets: whether UDP GSO (send) and GRO (receive) are in effect. */
  offload?(): { gso: boolean; gro: boolean };
  /** Native sockets: datagrams against system calls each way (how well the batching works). */
  stats?(): { rxPackets: number; rxBatches: number; txPackets: number; txSyscalls: number; openNative?: number };
  close(): void;
}

/** node:dgram behind the UdpPort shape: one datagram per batch (used when the addon is absent). */
export function dgramUdpPort(host: string, port: number): Promise<UdpPort> {
  return new Promise((resolve, reject) => {
    const sock = dgram.createSocket({
      type: net.isIPv6(host) ? 'udp6' : 'udp4',
      recvBufferSize: 4 << 20,
      sendBufferSize: 4 << 20,
    });
    sock.once('error', reject);
    sock.bind(port, host, () => {
      sock.off('error', reject);
      resolve({
        start(onDatagrams, onError) {
          sock.on('message', (data, rinfo) => onDatagrams([{ data, address: rinfo.address, port: rinfo.port }]));
          sock.on('error', (e) => onError?.(e));
        },
        sendBatch(datagrams) {
          for (const d of datagrams) sock.send(d.data, d.port, d.address);
          return datagrams.length;
        },
        address: () => sock.address(),
        close: () => sock.close(),
      });
    });
  });
}

export interface TcpConn {
  readonly id: number;
  readonly remoteAddress: string;
  readonly remotePort: number;
  /** False when the connection is gone or its send buffer is full (the frame is dropped, like UDP). */
  send(frame: Buffer): boolean;
  close(): void;
}

export interface TcpListenerOptions {
  host: string;
  port: number;
  onFrame(frame: Buffer, conn: TcpConn): void;
  /** Called when a stream desyncs or errors (for counters / rate-limited logs). */
  onBadStream?(conn: TcpConn, why: string): void;
  maxConnections?: number;
  /** A connection that carries no frame for this long is closed (default 60 s). */
  idleMs?: number;
  /** Frames are dropped while more than this many bytes wait to be sent (default 1 MiB). */
  maxBuffered?: number;
}

export interface TcpListener {
  readonly server: net.Server;
  readonly connections: number;
  close(): Promise<void>;
}

export function listenTcp(o: TcpListenerOptions): Promise<TcpListener> {
  const conns = new Set<net.Socket>();
  const maxBuffered = o.maxBuffered ?? 1 << 20;
  let nextId = 1;
  const server = net.createServer({ noDelay: true }, (socket) => {
    if (conns.size >= (o.maxConnections ?? 20_000)) return void socket.destroy();
    conns.add(socket);
    const decoder = new TcpFrameDecoder();
    const conn: TcpConn = {
      id: nextId++,
      remoteAddress: socket.remoteAddress ?? '?',
      remotePort: socket.remotePort ?? 0,
      send(frame) {
        if (socket.destroyed || socket.writableLength > maxBuffered) return false;
        socket.cork();
        socket.write(tcpLengthPrefix(frame.length));
        socket.write(frame);
        socket.uncork();
        return true;
      },
      close: () => socket.destroy(),
    };
    socket.setTimeout(o.idleMs ?? 60_000, () => socket.destroy());
    socket.on('data', (chunk: Buffer) => {
      let frames: Buffer[];
      try {
        frames = decoder.push(chunk);
      } catch (e) {
        o.onBadStream?.(conn, (e as Error).message);
        return void socket.destroy();
      }
      for (const f of frames) o.onFrame(f, conn);
    });
    socket.on('error', () => {});
    socket.on('close', () => conns.delete(socket));
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.port, o.host, () => {
      server.off('error', reject);
      resolve({
        server,
        get connections() {
          return conns.size;
        },
        close: () =>
          new Promise<void>((res) => {
            for (const s of conns) s.destroy();
            server.close(() => res());
          }),
      });
    });
  });
}
