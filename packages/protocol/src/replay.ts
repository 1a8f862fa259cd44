// Sliding-window replay filter over received counters, as a ring bitmap (RFC 6479): one bit per
// counter, 32-bit words, one spare word so sliding forward never clears bits still in the window.
// O(1) per packet, no allocation. Used the WireGuard way: `check` before decrypting (cheap reject),
// `mark` only after the AEAD authenticated the frame, so forged counters cannot move the window.
//
// The state lives in typed arrays (`bits`, and the highest counter in `cell[0]`) so a native open
// path (@pocketproxy/tun UdpBatch open routes) can run the same algorithm on the same memory, on
// the same thread: a counter one side marked is a replay for the other.
import { COUNTER_LIMIT, REPLAY_WINDOW } from './constants.js';

/** 32-bit words in the bitmap (the window plus one spare word). */
export const REPLAY_WORDS = REPLAY_WINDOW / 32 + 1;

export class ReplayWindow {
  readonly bits = new Uint32Array(REPLAY_WORDS);
  /** cell[0]: highest counter marked so far; -1 before the first. */
  readonly cell: Float64Array;

  /** `cell`: where to keep the highest counter (its element 0); a new one when absent. */
  constructor(cell?: Float64Array) {
    this.cell = cell ?? new Float64Array(1);
    this.cell[0] = -1;
  }

  get greatest(): number {
    return this.cell[0]!;
  }

  /** True when `counter` is neither too old, seen before, nor beyond the counter limit. */
  check(counter: number): boolean {
    if (!(counter >= 0 && counter < COUNTER_LIMIT)) return false; // also rejects NaN/Infinity
    const top = this.cell[0]!;
    if (counter > top) return true;
    if (top - counter >= REPLAY_WINDOW) return false;
    return (this.bits[Math.floor(counter / 32) % REPLAY_WORDS]! & (1 << (counter & 31))) === 0;
  }

  /** Records an authenticated counter. Returns false (and records nothing) if `check` would fail. */
  mark(counter: number): boolean {
    if (!this.check(counter)) return false;
    const block = Math.floor(counter / 32);
    const top = this.cell[0]!;
    if (counter > top) {
      const topBlock = top < 0 ? -1 : Math.floor(top / 32);
      const advance = Math.min(block - topBlock, REPLAY_WORDS);
      for (let i = 1; i <= advance; i++) this.bits[(topBlock + i + REPLAY_WORDS) % REPLAY_WORDS] = 0;
      this.cell[0] = counter;
    }
    const w = block % REPLAY_WORDS;
    this.bits[w] = this.bits[w]! | (1 << (counter & 31));
    return true;
  }
}
