// Sliding-window replay filter over received counters, as a ring bitmap (RFC 6479): one bit per
// counter, 32-bit words, one spare word so sliding forward never clears bits still in the window.
// O(1) per packet, no allocation. Used the WireGuard way: `check` before decrypting (cheap reject),
// `mark` only after the AEAD authenticated the frame, so forged counters cannot move the window.
import { COUNTER_LIMIT, REPLAY_WINDOW } from './constants.js';

const WORDS = REPLAY_WINDOW / 32 + 1;

export class ReplayWindow {
  private readonly bits = new Uint32Array(WORDS);
  /** Highest counter marked so far; -1 before the first. */
  private top = -1;

  get greatest(): number {
    return this.top;
  }

  /** True when `counter` is neither too old, seen before, nor beyond the counter limit. */
  check(counter: number): boolean {
    if (!(counter >= 0 && counter < COUNTER_LIMIT)) return false; // also rejects NaN/Infinity
    if (counter > this.top) return true;
    if (this.top - counter >= REPLAY_WINDOW) return false;
    return (this.bits[Math.floor(counter / 32) % WORDS]! & (1 << (counter & 31))) === 0;
  }

  /** Records an authenticated counter. Returns false (and records nothing) if `check` would fail. */
  mark(counter: number): boolean {
    if (!this.check(counter)) return false;
    const block = Math.floor(counter / 32);
    if (counter > this.top) {
      const topBlock = this.top < 0 ? -1 : Math.floor(this.top / 32);
      const advance = Math.min(block - topBlock, WORDS);
      for (let i = 1; i <= advance; i++) this.bits[(topBlock + i + WORDS) % WORDS] = 0;
      this.top = counter;
    }
    const w = block % WORDS;
    this.bits[w] = this.bits[w]! | (1 << (counter & 31));
    return true;
  }
}
