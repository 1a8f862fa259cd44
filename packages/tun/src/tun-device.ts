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
