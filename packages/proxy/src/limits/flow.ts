// Flow control shared by every byte path: a pause counter per readable, and the metered feed that
// slices chunks through a Meter.
//
// A readable may be paused for several reasons at once: its destination's write buffer is full
// (backpressure, until 'drain') and the meter asked for a wait (rate limit, until a timer). With
// plain pause()/resume() the first reason to end would resume reading while the other still holds,
// so each reason takes a hold and the stream resumes only when the last one is released.
/** What a hold pauses and resumes: a socket (net.Socket or LeanSocket) or any Readable. */
export interface Pausable {
  pause(): unknown;
  resume(): unknown;
}
import type { Direction, Meter } from '../types.js';

export class Hold {
  private n = 0;
  constructor(private readonly stream: Pausable) {}

  hold(): void {
    if (this.n++ === 0) this.stream.pause();
  }

  release(): void {
    if (this.n > 0 && --this.n === 0) this.stream.resume();
  }

  /** Drops every reason and lets the stream flow (teardown reads on to see EOF/close). */
  clear(): void {
    this.n = 0;
    this.stream.resume();
  }
}

/** A Hold whose reasons have names, each held at most once (take/give are idempotent per reason). */
export class NamedHolds<R extends string> {
  private readonly held = new Set<R>();
  private readonly hold: Hold;
  constructor(stream: Pausable) {
    this.hold = new Hold(stream);
  }

  /** The underlying counter, for holders without a name (a metered feed). */
  get counter(): Hold {
    return this.hold;
  }

  take(reason: R): void {
    if (this.held.has(reason)) return;
    this.held.add(reason);
    this.hold.hold();
  }

  give(reason: R): void {
    if (this.held.delete(reason)) this.hold.release();
  }

  has(reason: R): boolean {
    return this.held.has(reason);
  }

  /** Drops every reason, named or not, and lets the stream flow. */
  clear(): void {
    this.held.clear();
    this.hold.clear();
  }
}

/**
 * The most a single take() covers. Sockets read up to 64 KiB at once; charging that in one piece
 * would make a 1 Mbit/s download arrive in half-second lumps (and the measured rate swing by a
 * chunk). Slices of 16 KiB keep delivery smooth; consecutive slices that need no wait are still
 * written as one buffer, so an unthrottled meter costs takes, not writes.
 */
export const SLICE_BYTES = 16 * 1024;

/** Rejection of a request whose meter said -1 mid-way (the sockets are gone; nothing to answer). */
export class BudgetSpent extends Error {
  constructor() {
    super('byte budget spent');
  }
}

/**
 * Pushes chunks through a meter into `deliver`, holding `src` while the meter asks to wait.
 * `exhausted` runs (once) when the meter says -1; the rest of that chunk is not delivered.
 */
export class MeteredFeed {
  /** The chunk being delivered (null when all was delivered) and how far. */
  private cur: Buffer | null = null;
  private off = 0;
  private timer: NodeJS.Timeout | null = null;
  private dead = false;
  private flushed: (() => void) | null = null;
  /** When the last rate wait ended (performance.now()); -Infinity before any. */
  private wokeAt = -Infinity;

  constructor(
    private readonly meter: Meter,
    private readonly dir: Direction,
    private readonly src: Hold,
    private readonly deliver: (b: Buffer) => void,
    private readonly exhausted: () => void,
  ) {}

  /**
   * Runs `cb` once every byte pushed so far was delivered (now, or after the wait holding the
   * rest). A readable may emit 'end' right after its last 'data' even when that handler paused it
   * (Node schedules 'end' when read() empties the buffer after EOF), so acting on 'end' must wait.
   */
  whenFlushed(cb: () => void): void {
    if (this.cur === null || this.dead) cb();
    else this.flushed = cb;
  }

  /** True while a rate wait is running, or ended less than `ms` ago: the path is throttled, not idle. */
  throttledWithin(ms: number): boolean {
    return this.timer !== null || performance.now() - this.wokeAt < ms;
  }

  readonly push = (chunk: Buffer): void => {
    if (this.dead) return;
    if (this.cur !== null) {
      // Only a source that ignored pause() gets here: keep the order, the running wait delivers it.
      this.cur = Buffer.concat([this.cur.subarray(this.off), chunk]);
      this.off = 0;
      return;
    }
    this.cur = chunk;
    this.off = 0;
    this.run();
  };

  /** Charges bytes that were delivered some other way (e.g. replayed early bytes); no wait. */
  charge(bytes: number): boolean {
    if (this.meter.take(this.dir, bytes) >= 0) return true;
    this.stop();
    this.exhausted();
    return false;
  }

  /** Ends the feed; returns the bytes of the current chunk it had not delivered yet (if any). */
  stop(): Buffer | null {
    const rest = this.cur !== null && this.off < this.cur.length ? this.cur.subarray(this.off) : null;
    this.dead = true;
    this.cur = null;
    this.flushed = null;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    return rest;
  }

  private run(): void {
    const cur = this.cur!;
    const from = this.off;
    while (this.off < cur.length) {
      const n = Math.min(SLICE_BYTES, cur.length - this.off);
      const wait = this.meter.take(this.dir, n);
      if (wait < 0) {
        // The slices approved so far (the one crossing the budget included) still go out.
        if (this.off > from) this.deliver(cur.subarray(from, this.off));
        this.stop();
        this.exhausted();
        return;
      }
      this.off += n;
      if (wait > 0) {
        // Debt model: this slice goes now; reading (and the rest of the chunk) waits.
        if (this.off >= cur.length) this.cur = null;
        this.deliver(from === 0 && this.cur === null ? cur : cur.subarray(from, this.off));
        if (this.dead) return;
        this.src.hold();
        this.timer = setTimeout(this.wake, wait);
        return;
      }
    }
    this.cur = null;
    if (from < cur.length) this.deliver(from === 0 ? cur : cur.subarray(from));
  }

  private readonly wake = (): void => {
    this.timer = null;
    this.wokeAt = performance.now();
    if (this.dead) return;
    // Run before releasing: a new wait takes its hold first, so the stream never resumes between.
    if (this.cur !== null) this.run();
    if (this.dead) return;
    if (this.cur === null && this.flushed !== null) {
      const cb = this.flushed;
      this.flushed = null;
      cb();
    }
    this.src.release();
  };
}
