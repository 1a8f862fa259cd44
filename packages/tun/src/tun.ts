// The kernel TUN device: a thin typed wrapper over the addon's TunQueue.
//
//   kernel routes a packet to pp0 -> epoll says readable -> C++ read() x up to batchSize
//   -> ONE JS call with the packets packed in one Buffer -> tunnel encrypts and sends
//
// Multi-queue: open the same name again with `multiQueue: true` in each worker thread to get one
// queue each; the kernel spreads flows over queues by hash
// (https://www.kernel.org/doc/html/latest/networking/tuntap.html#multiqueue-tuntap-interface).
import { loadAddon, type NativeAead, type NativeSystemError, type NativeTunQueue } from './native.js';
import { fail, reasonOf } from './errors.js';
import type { PacketBatch, SealPath, TunDevice, TunOffload, TunStats } from './tun-device.js';
import { nativeSocketOf, type BatchUdpSocket } from './udp.js';

export interface OpenTunOptions {
  /** Interface name (max 15 bytes); "pp%d" lets the kernel pick the number. */
  name: string;
  /** IFF_MULTI_QUEUE: every open of this name adds one queue. All opens must agree. */
  multiQueue?: boolean;
  /** Most packets delivered per JS call (default 64). */
  batchSize?: number;
  /** Read buffer per packet; must be >= the interface MTU (default 65535, always safe). */
  maxPacket?: number;
  /**
   * TUN offloads (default true): IFF_VNET_HDR with checksum and TSO offload. The kernel may hand us
   * 64 KB TCP super-packets (the addon cuts them into wire-sized packets before the batch reaches
   * JS) and writeBatch glues consecutive segments of a TCP flow into one write, so a bulk transfer
   * costs the kernel one skb per ~45 packets. Callers see plain IP packets either way.
   * Default: on. The apps turn it off with POCKETPROXY_OFFLOAD=0 (an escape hatch for kernels or paths
   * that misbehave, and for A/B measurements); this package reads no environment.
   */
  offload?: boolean;
}

const IFNAME = /^[A-Za-z0-9_.%-]{1,15}$/;

/** A kernel TUN queue: a TunDevice that can also seal in C++ (sealPath). */
export type KernelTunDevice = TunDevice & {
  sealPath(udp: BatchUdpSocket): SealPath;
  /**
   * The relay: stamp OpenVPN customers' SYNs from `subnet` (a.b.c.d/n) with their original destination,
   * read from conntrack, and strip stamps from every other SYN (native/tun_queue.h StampSyns); null: off.
   * `maxSegment` (the OpenVPN TUN's MTU - 40; needs offloads): writes towards a stamped flow are cut at the
   * MSS its customer's SYN said (the firewall keeps it in the flow's conntrack mark; native/carry_mss.h),
   * at most this, instead of at the device's segment size.
   */
  stampSyns(subnet: string | null, opts?: { maxSegment?: number }): void;
  /**
   * Pure ACKs of a flow that a later one in the same read acknowledges past go no further
   * (native/ack_filter.h); off by default.
   */
  thinAcks(on: boolean): void;
  /**
   * A device's lanes (native/lanes.cc): every queue of this multi-queue TUN gets the packets of the flows
   * @pocketproxy/protocol flowLane(packet, lanes) gives it; 0: the TUN's own flow table again.
   */
  steerByFlow(lanes: number): void;
};

export function openTun(opts: OpenTunOptions): KernelTunDevice {
  if (!IFNAME.test(opts.name))
    throw fail('PP_ERR_TUN_INVALID_CONFIG', {
      field: 'name',
      reason: `"${opts.name}" is not a 1-15 character interface name`,
    });
  const addon = loadAddon();
  let q: NativeTunQueue;
  try {
    q = new addon.TunQueue(opts.name, opts.multiQueue ?? false, false, opts.offload ?? true);
  } catch (e) {
    const code = (e as NativeSystemError).code;
    const hint =
      code === 'EPERM'
        ? ' (needs CAP_NET_ADMIN)'
        : code === 'EINVAL' && opts.multiQueue
          ? ' (queue flags differ from the existing device?)'
          : '';
    throw fail('PP_ERR_TUN_OPEN_FAILED', { name: opts.name, reason: reasonOf(e) + hint }, { cause: e });
  }
  return new KernelTun(q, opts.batchSize ?? 64, opts.maxPacket ?? 65535);
}

/** The addon's queue behind a kernel TUN (for the UDP socket's native open path, udp.ts). */
const queues = new WeakMap<TunDevice, NativeTunQueue>();
export function nativeQueueOf(tun: TunDevice): NativeTunQueue | undefined {
  return queues.get(tun);
}

class KernelTun implements TunDevice {
  #closed = false;
  constructor(
    private readonly q: NativeTunQueue,
    private readonly batchSize: number,
    private readonly maxPacket: number,
  ) {
    queues.set(this, q);
  }

  get name(): string {
    return this.q.name;
  }

  get offload(): TunOffload {
    return this.q.offload;
  }

  start(onBatch: (batch: PacketBatch) => void, onError: (err: Error) => void = defaultOnError): void {
    this.#check();
    // The addon reuses its offsets array; this object is reused too, so a batch costs one Buffer.
    const batch: { data: Buffer; offsets: Uint32Array; count: number } = {
      data: Buffer.alloc(0),
      offsets: new Uint32Array(1),
      count: 0,
    };
    this.q.start(
      (data: Buffer, offsets: Uint32Array, count: number) => {
        batch.data = data;
        batch.offsets = offsets;
        batch.count = count;
        onBatch(batch);
      },
      (err) =>
        onError(fail('PP_ERR_TUN_IO', { what: `read from ${this.q.name}`, reason: err.message }, { cause: err })),
      this.batchSize,
      this.maxPacket,
      0,
    );
  }

  pause(): void {
    if (!this.#closed) this.q.pause();
  }

  write(packet: Uint8Array): boolean {
    this.#check();
    return this.q.write(packet);
  }

  writeBatch(packets: readonly Uint8Array[]): number {
    this.#check();
    return this.q.writeBatch(packets);
  }

  /** The native seal path through `udp` (see SealPath); one per queue, a second call replaces the first. */
  sealPath(udp: BatchUdpSocket): SealPath {
    this.#check();
    const q = this.q;
    q.setSealSocket(nativeSocketOf(udp));
    return {
      set: (dst, st, address, port, lane) => {
        if (this.#closed) return;
        q.setSealRoute(
          dst === 'default' ? dst : dst >>> 0,
          st.key as NativeAead,
          st.receiver >>> 0,
          st.counter,
          st.limit,
          st.expiresAt,
          address,
          port,
          lane?.slot,
          lane?.count,
        );
      },
      delete: (dst, slot) => (this.#closed ? false : q.deleteSealRoute(dst === 'default' ? dst : dst >>> 0, slot)),
      clear: () => {
        if (!this.#closed) q.deleteSealRoute(-1);
      },
    };
  }

  stampSyns(subnet: string | null, opts: { maxSegment?: number } = {}): void {
    this.#check();
    if (subnet === null) {
      this.q.setStampSubnet(null);
      return;
    }
    const m = /^(\d+\.\d+\.\d+\.\d+)\/(\d+)$/.exec(subnet);
    if (!m) throw new TypeError(`stampSyns: "${subnet}" is not an IPv4 subnet a.b.c.d/n`);
    const max = opts.maxSegment;
    if (max !== undefined && !(Number.isInteger(max) && max >= 536 && max <= 65495))
      throw new RangeError(`stampSyns: maxSegment ${max} is not an integer of 536-65495`);
    if (max === undefined) this.q.setStampSubnet(m[1]!, Number(m[2]));
    else this.q.setStampSubnet(m[1]!, Number(m[2]), max);
  }

  thinAcks(on: boolean): void {
    this.#check();
    this.q.setAckThinning(on);
  }

  steerByFlow(lanes: number): void {
    this.#check();
    if (!Number.isInteger(lanes) || lanes === 1 || lanes < 0 || lanes > 16)
      throw fail('PP_ERR_TUN_INVALID_CONFIG', { field: 'lanes', reason: `${lanes}: 0 (off) or 2..16` });
    try {
      loadAddon().tunSteerByFlow(this.q.fd, lanes);
    } catch (e) {
      throw fail('PP_ERR_TUN_OPEN_FAILED', { name: this.name, reason: `steering: ${reasonOf(e)}` }, { cause: e });
    }
  }

  stats(): TunStats {
    return this.q.stats();
  }

  ref(): void {
    if (!this.#closed) this.q.ref();
  }

  unref(): void {
    if (!this.#closed) this.q.unref();
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.q.close();
  }

  #check(): void {
    if (this.#closed) throw fail('PP_ERR_TUN_CLOSED', { what: `TUN ${this.q.name}` });
  }
}

function defaultOnError(err: Error): void {
  // Surfaces like an 'error' event without a listener would.
  queueMicrotask(() => {
    throw err;
  });
}
