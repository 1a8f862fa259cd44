// The TunDevice interface: what the tunnel needs from a TUN queue. The kernel-backed
// implementation is in tun.ts, the in-memory one for unit tests in tun.fake.ts.

/**
 * One read batch. Packet i is `data.subarray(offsets[i], offsets[i + 1])`, for i < count.
 * `offsets` is reused by the next batch: copy it (or the packets) to keep them past the handler.
 */
export interface PacketBatch {
  readonly data: Buffer;
  readonly offsets: Uint32Array;
  readonly count: number;
}

export interface TunStats {
  rxPackets: number;
  rxBytes: number;
  rxBatches: number;
  rxErrors: number;
  txPackets: number;
  txBytes: number;
  /** Writes refused because the queue was full (EAGAIN/ENOBUFS): back-pressure, counted not thrown. */
  txDrops: number;
  /** Writes the kernel rejected (EINVAL: not an IP packet; EIO: interface down). */
  txErrors: number;
  /** With offloads (kernel TUN only): reads that were TCP super-packets, unusable reads, GSO writes, write() calls. */
  rxGso?: number;
  rxBadGso?: number;
  txGso?: number;
  txWrites?: number;
  /** Kernel TUN with a seal path: packets sealed and sent in C++ without a call into JS (see SealPath). */
  sealNative?: number;
  /** Kernel TUN with SYN stamps on (KernelTunDevice.stampSyns): stamped, dropped, stamps removed. */
  stamped?: number;
  stampDropped?: number;
  unstamped?: number;
  /** Kernel TUN with SYN stamps and a maxSegment: carried flows whose customer MSS is kept, writes cut at one. */
  carryMssFlows?: number;
  carryResized?: number;
  /** Kernel TUN with ACK thinning on (KernelTunDevice.thinAcks): pure ACKs a later one in the same read covered. */
  acksThinned?: number;
  sealUnsent?: number;
  sealErrors?: number;
  sealRoutes?: number;
}

/**
 * What the native seal path needs of one established session: its send key (a native Aead),
 * the receiver index for the frame header, the send counter's shared cell (the session takes its
 * own counters from the same Float64Array, so C++ and JS never use a counter twice), the first
 * counter not to use and when the session must stop sending (ms, Date.now() clock).
 */
export interface SealState {
  key: unknown;
  receiver: number;
  counter: Float64Array;
  limit: number;
  expiresAt: number;
}

/**
 * The native seal path (kernel TUN only): packets read from the TUN whose IPv4 destination has a
 * route are sealed and sent from the given UDP socket in C++, never reaching the batch handler; the
 * others are delivered as before. The relay keys routes by device address; the agent, which has one
 * peer, sets the 'default' route (every IPv4 packet no address route matches; non-IPv4 and runts
 * still reach JS). Routes are a cache the tunnel keeps true: it sets one where JS would seal on that
 * session to that endpoint, and deletes it when the session, endpoint or transport changes (a
 * missing route only costs the JS path).
 */
export interface SealPath {
  /**
   * `lane`: a device with lanes (docs/protocol.md §3.1) has a route per slot its flows hash to
   * (@pocketproxy/protocol flowLane over `count`); a new count for dst drops its other routes.
   */
  set(dst: number | 'default', state: SealState, address: string, port: number, lane?: SealLane): void;
  /** Returns whether there was one. `slot`: that lane slot's route only (else every slot's). */
  delete(dst: number | 'default', slot?: number): boolean;
  clear(): void;
}

/** The lane slot a seal route serves, of the device's `count` (1 ..16). */
export interface SealLane {
  slot: number;
  count: number;
}

/** Which TUN offloads the kernel accepted (openTun option `offload`). */
export interface TunOffload {
  vnetHdr: boolean;
  checksum: boolean;
  tso: boolean;
}

export interface TunDevice {
  /** Interface name as the kernel assigned it (a pattern such as "pp%d" resolved). */
  readonly name: string;
  /** Kernel TUN only: the offloads in effect. */
  readonly offload?: TunOffload;
  /** Starts delivering packets; one call per batch of up to `batchSize` packets. */
  start(onBatch: (batch: PacketBatch) => void, onError?: (err: Error) => void): void;
  /** Stops reading (the kernel queues, then drops); `start` again to resume. */
  pause(): void;
  /** Writes one IP packet; false when it was dropped (see stats). */
  write(packet: Uint8Array): boolean;
  /** Writes packets in order; returns how many the kernel accepted. */
  writeBatch(packets: readonly Uint8Array[]): number;
  stats(): TunStats;
  /** Lets the process exit while this device is open (like socket.unref()). */
  unref(): void;
  ref(): void;
  close(): void;
}

/** Splits a batch into packet views (no copy; they share `batch.data`). */
export function packetsOf(batch: PacketBatch): Buffer[] {
  const out = new Array<Buffer>(batch.count);
  for (let i = 0; i < batch.count; i++) out[i] = batch.data.subarray(batch.offsets[i]!, batch.offsets[i + 1]!);
  return out;
}

/** Packs packets into a batch (used by fakes and tests). */
export function batchOf(packets: readonly Uint8Array[]): PacketBatch {
  const offsets = new Uint32Array(packets.length + 1);
  let total = 0;
  packets.forEach((p, i) => {
    total += p.length;
    offsets[i + 1] = total;
  });
  const data = Buffer.allocUnsafe(total);
  for (const [i, p] of packets.entries()) data.set(p, offsets[i]!);
  return { data, offsets, count: packets.length };
}
