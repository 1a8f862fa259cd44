// FakeTun: an in-memory TunDevice for other packages' unit tests. `inject` plays the kernel
// (delivers packets to the reader), `written` captures what the code under test wrote.
import { fail } from './errors.js';
import { batchOf, type PacketBatch, type TunDevice, type TunStats } from './tun-device.js';

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
    return { ...this.#stats };
  }

  ref(): void {}
  unref(): void {}

  close(): void {
    this.#closed = true;
    this.#onBatch = undefined;
  }

  get closed(): boolean {
    return this.#closed;
  }

  #drain(): void {
    while (!this.#paused && this.#onBatch && this.#pending.length > 0) {
      const chunk = this.#pending.splice(0, this.#batchSize);
      const batch = batchOf(chunk);
      this.#stats.rxPackets += batch.count;
      this.#stats.rxBytes += batch.data.length;
      this.#stats.rxBatches++;
      this.#onBatch(batch);
    }
  }

  #check(): void {
    if (this.#closed) throw fail('PP_ERR_TUN_CLOSED', { what: `TUN ${this.name}` });
  }
}
