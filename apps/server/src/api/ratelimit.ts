// Fixed-window counters in memory. Per API instance: behind several instances, nginx's limit_req
// (deploy/nginx) is the shared outer limit and these are the inner, per-key ones.
import { apiError } from '../errors.js';
import type { Clock } from '../context.js';

export class RateLimiter {
  readonly #windows = new Map<string, { count: number; resetAt: number }>();
  constructor(
    private readonly limit: number,
    private readonly windowMs: number,
    private readonly clock: Clock,
  ) {}

  /** Counts one hit for key; throws PP_ERR_API_RATE_LIMITED past the limit. */
  hit(key: string): void {
    const now = this.clock.now().getTime();
    let w = this.#windows.get(key);
    if (!w || w.resetAt <= now) {
      if (this.#windows.size > 100_000) this.#sweep(now);
      w = { count: 0, resetAt: now + this.windowMs };
      this.#windows.set(key, w);
    }
    if (++w.count > this.limit)
      throw apiError('PP_ERR_API_RATE_LIMITED', { retry_s: Math.max(1, Math.ceil((w.resetAt - now) / 1000)) });
  }

  /** Gives back one hit of key's current window (a login that turned out to be right). */
  undo(key: string): void {
    const w = this.#windows.get(key);
    if (w && w.count > 0 && w.resetAt > this.clock.now().getTime()) w.count--;
  }

  #sweep(now: number) {
    for (const [k, w] of this.#windows) if (w.resetAt <= now) this.#windows.delete(k);
  }
}
