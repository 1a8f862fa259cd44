// FakeTun: an in-memory TunDevice for other packages' unit tests. `inject` plays the kernel
// (delivers packets to the reader), `written` captures what the code under test wrote.
// `sealPath(udp)` plays the addon's native seal path (native/tun_queue.cc SealFast) in JS, so the
// route management of a tunnel can be tested without root: routed IPv4 packets are sealed with the
// route's key and counter cell and sent from `udp`; the rest reach the reader, in order.
import { fail } from './errors.js';
import {
  batchOf,
  type PacketBatch,
  type SealPath,
  type SealState,
  type TunDevice,
  type TunStats,
} from './tun-device.js';

/** What FakeTun's seal path sends from (a BatchUdpSocket has it). */
export interface FakeSealSocket {
  send(data: Uint8Array, address: string, port: number): boolean;
}

type FakeRoute = { state: SealState; address: string; port: number };

export interface FakeTunOptions {
  name?: string;
  batchSize?: number;
  /** Makes write() report a drop (as a full kernel queue would) while it returns true. */
  dropWrites?: () => boolean;
}

export class FakeTun implements TunDevice {
  readonly name: string;
  /** Every packet accepted by write/writeBatch, copied, in order. */
  readonly written: Buffer[] = [];
  #onBatch: ((b: PacketBatch) => void) | undefined;
  #pending: Uint8Array[] = [];
  #closed = false;
  #paused = true;
  #seal: { udp: FakeSealSocket; routes: Map<number | 'default', FakeRoute> } | undefined;
  readonly #batchSize: number;
  readonly #dropWrites: () => boolean;
  readonly #stats: TunStats = {
    rxPackets: 0,
    rxBytes: 0,
    rxBatches: 0,
    rxErrors: 0,
    txPackets: 0,
    txBytes: 0,
    txDrops: 0,
    txErrors: 0,
  };

  constructor(opts: FakeTunOptions = {}) {
    this.name = opts.name ?? 'fake0';
    this.#batchSize = opts.batchSize ?? 64;
    this.#dropWrites = opts.dropWrites ?? (() => false);
  }

  start(onBatch: (batch: PacketBatch) => void): void {
    this.#check();
    this.#onBatch = onBatch;
    this.#paused = false;
    this.#drain();
  }

  pause(): void {
    this.#paused = true;
  }

  /** Delivers packets as the kernel would: synchronously, in batches of at most batchSize. Queued while paused. */
  inject(...packets: Uint8Array[]): void {
    this.#check();
    this.#pending.push(...packets.map((p) => Buffer.from(p)));
    this.#drain();
  }

  write(packet: Uint8Array): boolean {
    this.#check();
    if (this.#dropWrites()) {
      this.#stats.txDrops++;
      return false;
    }
    this.written.push(Buffer.from(packet));
    this.#stats.txPackets++;
    this.#stats.txBytes += packet.length;
    return true;
  }

  writeBatch(packets: readonly Uint8Array[]): number {
    let n = 0;
    for (const p of packets) if (this.write(p)) n++;
    return n;
  }

  stats(): TunStats {
    return this.#seal ? { ...this.#stats, sealRoutes: this.#seal.routes.size } : { ...this.#stats };
  }

  /** The native seal path, played in JS (see the file comment); a second call replaces the first. */
  sealPath(udp: FakeSealSocket): SealPath {
    this.#check();
    const routes = new Map<number | 'default', FakeRoute>();
    this.#seal = { udp, routes };
    Object.assign(this.#stats, { sealNative: 0, sealUnsent: 0, sealErrors: 0 });
    return {
      // Lane routes are not played here (their packets take the JS path, as a missing route does).
      set: (dst, state, address, port, lane) => {
        if (!this.#closed && (lane?.count ?? 1) === 1)
          routes.set(dst === 'default' ? dst : dst >>> 0, { state, address, port });
      },
      delete: (dst, slot) =>
        slot !== undefined && slot > 0 ? false : routes.delete(dst === 'default' ? dst : dst >>> 0),
      clear: () => routes.clear(),
    };
  }

  ref(): void {}
  unref(): void {}

  close(): void {
    this.#closed = true;
    this.#onBatch = undefined;
    this.#seal?.routes.clear();
  }

  get closed(): boolean {
    return this.#closed;
  }

  #drain(): void {
    while (!this.#paused && this.#onBatch && this.#pending.length > 0) {
      const chunk = this.#pending.splice(0, this.#batchSize);
      this.#stats.rxPackets += chunk.length;
      this.#stats.rxBytes += chunk.reduce((n, p) => n + p.length, 0);
      this.#stats.rxBatches++;
      const rest = this.#seal && this.#seal.routes.size > 0 ? this.#sealFast(chunk) : chunk;
      if (rest.length > 0) this.#onBatch(batchOf(rest));
    }
  }

  /** SealFast's rules: IPv4 of 20+ bytes, address route else default, live counter and time; the rest returned. */
  #sealFast(chunk: Uint8Array[]): Uint8Array[] {
    const { udp, routes } = this.#seal!;
    const rest: Uint8Array[] = [];
    const now = Date.now();
    for (const p of chunk) {
      let r: FakeRoute | undefined;
      if (p.length >= 20 && p[0]! >> 4 === 4 && p.length + 32 <= 0xffff) {
        const dst = ((p[16]! << 24) | (p[17]! << 16) | (p[18]! << 8) | p[19]!) >>> 0;
        r = routes.get(dst) ?? routes.get('default');
      }
      const st = r?.state;
      if (!r || !st || st.counter[0]! >= st.limit || now >= st.expiresAt) {
        rest.push(p);
        continue;
      }
      const c = st.counter[0]!;
      st.counter[0] = c + 1;
      const f = Buffer.alloc(p.length + 32);
      f[0] = 4;
      f[1] = 1;
      f.writeUInt32LE(st.receiver >>> 0, 4);
      f.writeBigUInt64LE(BigInt(c), 8);
      try {
        (st.key as { seal(c: number, pt: Uint8Array, dst: Uint8Array, off: number): number }).seal(c, p, f, 16);
      } catch {
        this.#stats.sealErrors!++;
        continue;
      }
      this.#stats.sealNative!++;
      if (!udp.send(f, r.address, r.port)) this.#stats.sealUnsent!++;
    }
    return rest;
  }

  #check(): void {
    if (this.#closed) throw fail('PP_ERR_TUN_CLOSED', { what: `TUN ${this.name}` });
  }
}
