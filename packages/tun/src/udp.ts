// A UDP socket that moves datagrams in batches: recvmmsg(2) fills up to batchSize datagrams per
// syscall and per JS call, sendBatch() hands a whole array to sendmmsg(2). Node's dgram costs one
// syscall and one callback per datagram; the tunnel moves ~70k datagrams/s each way.
import { isIP } from 'node:net';
import {
  loadAddon,
  type NativeAead,
  type NativeSystemError,
  type NativeUdpBatch,
  type NativeUdpStats,
} from './native.js';
import type { TunDevice } from './tun-device.js';
import { nativeQueueOf } from './tun.js';
import { fail, reasonOf } from './errors.js';

export interface Datagram {
  data: Buffer;
  address: string;
  port: number;
}

export interface OutDatagram {
  data: Uint8Array;
  address: string;
  port: number;
}

export interface BatchUdpOptions {
  type: 'udp4' | 'udp6';
  /** Bind address (default 0.0.0.0 / ::). */
  address?: string;
  /** Bind port (default 0: any). */
  port?: number;
  reusePort?: boolean;
  /** udp6 only: refuse IPv4-mapped peers. */
  ipv6Only?: boolean;
  recvBufferSize?: number;
  sendBufferSize?: number;
  /** Most datagrams per recvmmsg and per JS call (default 64). */
  batchSize?: number;
  /** Largest datagram accepted; longer ones are truncated by the kernel and dropped (default 2048). */
  maxDatagram?: number;
  /**
   * UDP GSO/GRO (default true): sendBatch sends a run of same-sized datagrams to one peer as one
   * UDP_SEGMENT message (one skb through the stack and any veth/NAT hops, cut at the end), and
   * merged datagrams received with UDP_GRO are split again before the handler sees them. Falls
   * back to one datagram per message where the kernel or the route refuses (stats().gso).
   * Default: on (the apps pass false for POCKETPROXY_OFFLOAD=0).
   */
  offload?: boolean;
}

export type UdpStats = NativeUdpStats;

/**
 * What the native open path needs of one established session (TransportSession.receiveState):
 * its receive key (a native Aead), our receiver index, the replay window's bitmap and cell (shared
 * with the session: [0] highest counter, [1] frames authenticated, [2] when the native path last
 * authenticated one, Date.now() ms), the first counter not to accept and when to stop (ms).
 */
export interface OpenState {
  key: unknown;
  index: number;
  bits: Uint32Array;
  cell: Float64Array;
  limit: number;
  expiresAt: number;
}

/**
 * The native open path (kernel TUN only): a datagram from `address:port` that is a transport frame
 * to a session with a route, carrying an IPv4 packet (from `innerSrc` when given), is authenticated,
 * replay-checked and written to the TUN in C++, never reaching the batch handler. Anything else
 * (keepalives, messages, other endpoints, replays, bad tags, spoofed sources) reaches JS untouched.
 * Routes are a cache the tunnel keeps true: set where JS would accept that session's packets from
 * that endpoint, deleted when the session or endpoint changes (a missing route only costs the JS path).
 */
export interface OpenPath {
  set(state: OpenState, address: string, port: number, innerSrc?: number): void;
  /** Returns whether there was one. */
  delete(index: number): boolean;
  clear(): void;
}

/**
 * Raw batch: datagram i is data[meta[3i], meta[3i] + meta[3i+1]) from addresses[i]:meta[3i+2].
 * `meta` is reused by the next batch.
 */
export type RawUdpBatchHandler = (data: Buffer, meta: Uint32Array, addresses: string[], count: number) => void;

const natives = new WeakMap<BatchUdpSocket, NativeUdpBatch>();

/** The addon's socket behind a BatchUdpSocket (for the TUN's native seal path, tun.ts). */
export function nativeSocketOf(sock: BatchUdpSocket): NativeUdpBatch {
  const n = natives.get(sock);
  if (!n) throw fail('PP_ERR_TUN_CLOSED', { what: 'UDP socket' });
  return n;
}

export class BatchUdpSocket {
  #closed = false;
  readonly #sock: NativeUdpBatch;
  readonly #batchSize: number;
  readonly #maxDatagram: number;

  constructor(opts: BatchUdpOptions) {
    const family = opts.type === 'udp6' ? 6 : 4;
    const address = opts.address ?? (family === 6 ? '::' : '0.0.0.0');
    const port = opts.port ?? 0;
    if (isIP(address) === 0)
      throw fail('PP_ERR_TUN_INVALID_CONFIG', { field: 'address', reason: `"${address}" is not an IP address` });
    if (!Number.isInteger(port) || port < 0 || port > 65535)
      throw fail('PP_ERR_TUN_INVALID_CONFIG', { field: 'port', reason: 'must be an integer 0-65535' });
    this.#batchSize = opts.batchSize ?? 64;
    this.#maxDatagram = opts.maxDatagram ?? 2048;
    try {
      this.#sock = new (loadAddon().UdpBatch)(family, address, port, {
        reusePort: opts.reusePort,
        ipv6Only: opts.ipv6Only,
        recvBufferSize: opts.recvBufferSize,
        sendBufferSize: opts.sendBufferSize,
        offload: opts.offload ?? true,
      });
    } catch (e) {
      if ((e as NativeSystemError).syscall === undefined && !(e instanceof TypeError)) throw e;
      throw fail('PP_ERR_TUN_UDP_BIND_FAILED', { address, port, reason: reasonOf(e) }, { cause: e });
    }
    natives.set(this, this.#sock);
  }

  address(): { address: string; port: number; family: 'IPv4' | 'IPv6' } {
    this.#check();
    return this.#sock.localAddress();
  }

  /** Delivers each batch as Datagram objects (data are views into one Buffer per batch). */
  start(onMessages: (datagrams: Datagram[]) => void, onError?: (err: Error) => void): void {
    this.startRaw((data, meta, addresses, count) => {
      const out = new Array<Datagram>(count);
      for (let i = 0; i < count; i++) {
        const off = meta[3 * i]!;
        out[i] = { data: data.subarray(off, off + meta[3 * i + 1]!), address: addresses[i]!, port: meta[3 * i + 2]! };
      }
      onMessages(out);
    }, onError);
  }

  /** The cheapest path: no per-datagram object. */
  startRaw(onBatch: RawUdpBatchHandler, onError: (err: Error) => void = () => {}): void {
    this.#check();
    this.#sock.start(
      onBatch,
      (err) => onError(fail('PP_ERR_TUN_IO', { what: 'recvmmsg', reason: err.message }, { cause: err })),
      this.#batchSize,
      this.#maxDatagram,
    );
  }

  pause(): void {
    if (!this.#closed) this.#sock.pause();
  }

  /** One datagram; false when dropped (socket buffer full) or refused by the kernel. */
  send(data: Uint8Array, address: string, port: number): boolean {
    this.#check();
    try {
      return this.#sock.send(data, address, port);
    } catch (e) {
      throw fail('PP_ERR_TUN_INVALID_DATAGRAM', { reason: reasonOf(e) }, { cause: e });
    }
  }

  /** Sends with sendmmsg (256 per syscall); returns how many were sent. Drops are counted in stats. */
  sendBatch(datagrams: readonly OutDatagram[]): number {
    this.#check();
    try {
      return this.#sock.sendBatch(datagrams);
    } catch (e) {
      throw fail('PP_ERR_TUN_INVALID_DATAGRAM', { reason: reasonOf(e) }, { cause: e });
    }
  }

  stats(): UdpStats {
    return this.#sock.stats();
  }

  /**
   * The native open path into `tun` (see OpenPath); undefined when `tun` is not a kernel TUN. One
   * per socket: a second call replaces the first and its routes.
   */
  openPath(tun: TunDevice): OpenPath | undefined {
    this.#check();
    const q = nativeQueueOf(tun);
    if (!q) return undefined;
    const sock = this.#sock;
    sock.setOpenTun(q);
    return {
      set: (st, address, port, innerSrc) => {
        if (this.#closed) return;
        sock.setOpenRoute(
          st.index >>> 0,
          st.key as NativeAead,
          st.bits,
          st.cell,
          st.limit,
          st.expiresAt,
          address,
          port,
          innerSrc === undefined ? -1 : innerSrc >>> 0,
        );
      },
      delete: (index) => (this.#closed ? false : sock.deleteOpenRoute(index >>> 0)),
      clear: () => {
        if (!this.#closed) sock.deleteOpenRoute(-1);
      },
    };
  }

  /** Whether UDP GSO (send) and GRO (receive) are in effect on this socket right now. */
  offload(): { gso: boolean; gro: boolean } {
    const s = this.#sock.stats();
    return { gso: s.gso, gro: s.gro };
  }

  ref(): void {
    if (!this.#closed) this.#sock.ref();
  }

  unref(): void {
    if (!this.#closed) this.#sock.unref();
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#sock.close();
  }

  #check(): void {
    if (this.#closed) throw fail('PP_ERR_TUN_CLOSED', { what: 'UDP socket' });
  }
}

export function createBatchUdpSocket(opts: BatchUdpOptions): BatchUdpSocket {
  return new BatchUdpSocket(opts);
}
