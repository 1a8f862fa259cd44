// ConnectionMeter: the stock Meter. One instance per sold connection, shared by every socket and
// UDP association of that connection, so its limits hold for the sum of them.
//
// Budget: bytes in both directions count against one budget. The chunk that crosses it is still
// delivered (it was already read; cutting it would not save anything), every later take() is -1.
//
// Rate: a token bucket per direction in kilobits/s (1 kbps = 1000 bit/s) with a debt model. A take
// always succeeds and subtracts its bytes, even below zero; the caller then waits debt / rate before
// reading more. Data is never held back, so nothing has to be buffered, and the long-run rate is the
// limit exactly for one socket or many (each waits for the debt all of them made). The bucket holds
// at most ~100 ms of rate (at least 16 KiB, one pump slice), so an idle connection cannot save up
// a long full-speed burst.
import type { Direction, Meter } from '../types.js';

export interface ConnectionMeterOptions {
  /** Bytes allowed in both directions together; null/undefined = unlimited. */
  readonly budgetBytes?: number | null;
  /** Upload limit (customer -> target) in kbps; null/undefined/0 = unlimited. */
  readonly upKbps?: number | null;
  /** Download limit (target -> customer) in kbps; null/undefined/0 = unlimited. */
  readonly downKbps?: number | null;
  /** Milliseconds on a monotonic clock (default performance.now); tests inject their own. */
  readonly now?: () => number;
  /** Called once when the budget is spent (again after setBudget raised it and it was spent again). */
  readonly onExhausted?: () => void;
}

/** Smallest bucket: one pump slice, so a single slice never waits on a fresh bucket. */
export const MIN_BURST_BYTES = 16 * 1024;
const BURST_MS = 100;

class Bucket {
  /** Bytes per millisecond. */
  rate = 0;
  burst = 0;
  tokens = 0;
  at: number;

  constructor(kbps: number, now: number) {
    this.at = now;
    this.setRate(kbps, now);
    this.tokens = this.burst;
  }

  setRate(kbps: number, now: number): void {
    this.refill(now);
    this.rate = kbps / 8; // kbit/s = 1000 bit / 1000 ms: kbps / 8 bytes per ms
    this.burst = Math.max(MIN_BURST_BYTES, this.rate * BURST_MS);
    if (this.tokens > this.burst) this.tokens = this.burst;
  }

  refill(now: number): void {
    const dt = now - this.at;
    this.at = now;
    if (dt > 0) this.tokens = Math.min(this.burst, this.tokens + dt * this.rate);
  }

  /** Subtracts and returns the wait in ms (0 when the bucket covered it). */
  take(bytes: number, now: number): number {
    this.refill(now);
    this.tokens -= bytes;
    return this.tokens >= 0 ? 0 : Math.max(1, Math.ceil(-this.tokens / this.rate));
  }
}

const limited = (kbps: number | null | undefined): kbps is number => typeof kbps === 'number' && kbps > 0;

export class ConnectionMeter implements Meter {
  private budget: number | null;
  private usedBytes = 0;
  private over = false;
  private up: Bucket | null = null;
  private down: Bucket | null = null;
  private readonly now: () => number;
  private readonly onExhausted: (() => void) | undefined;

  constructor(o: ConnectionMeterOptions = {}) {
    this.now = o.now ?? (() => performance.now());
    this.onExhausted = o.onExhausted;
    this.budget = o.budgetBytes ?? null;
    this.setRates({ upKbps: o.upKbps ?? null, downKbps: o.downKbps ?? null });
    this.check();
  }

  /** Bytes taken so far, both directions. */
  get used(): number {
    return this.usedBytes;
  }

  /** True once the budget is spent (every take returns -1 until setBudget raises it). */
  get exhausted(): boolean {
    return this.over;
  }

  unlimited(): boolean {
    return this.budget === null && this.up === null && this.down === null && !this.over;
  }

  take(dir: Direction, bytes: number): number {
    if (this.over) return -1;
    this.usedBytes += bytes;
    if (this.budget !== null && this.usedBytes >= this.budget) this.exhaust();
    const b = dir === 'up' ? this.up : this.down;
    return b === null ? 0 : b.take(bytes, this.now());
  }

  refund(dir: Direction, bytes: number): void {
    // A refund never revives a spent budget: the app was told already.
    this.usedBytes = Math.max(0, this.usedBytes - bytes);
    const b = dir === 'up' ? this.up : this.down;
    if (b !== null) b.tokens = Math.min(b.burst, b.tokens + bytes);
  }

  /** Replaces the budget (null = unlimited). Raising it above `used` lets traffic flow again. */
  setBudget(bytes: number | null): void {
    this.budget = bytes;
    if (this.over && (bytes === null || this.usedBytes < bytes)) this.over = false;
    this.check();
  }

  /** Changes rates at run time; a field left out keeps its rate, null or 0 lifts the limit. */
  setRates(r: { readonly upKbps?: number | null; readonly downKbps?: number | null }): void {
    const now = this.now();
    if (r.upKbps !== undefined) this.up = this.rebucket(this.up, r.upKbps, now);
    if (r.downKbps !== undefined) this.down = this.rebucket(this.down, r.downKbps, now);
  }

  private rebucket(b: Bucket | null, kbps: number | null, now: number): Bucket | null {
    if (!limited(kbps)) return null;
    if (b === null) return new Bucket(kbps, now);
    // Debt already made stays owed, now at the new rate.
    b.setRate(kbps, now);
    return b;
  }

  private check(): void {
    if (!this.over && this.budget !== null && this.usedBytes >= this.budget) this.exhaust();
  }

  private exhaust(): void {
    this.over = true;
    this.onExhausted?.();
  }
}
