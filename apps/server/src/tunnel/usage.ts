// Per-port usage from nftables counters, as deltas since the last successful report.
// Counters restart at zero whenever netfw rebuilds the table (process start, skeleton change,
// recovery after a failed transaction): `reset()` is called then, and a reading smaller than the
// last one is also taken as a restart (count from zero), never as a negative delta.
//
// netfw keeps ONE counter per port for both directions (`ct original proto-dst`), so the total
// is reported as bytes_in and bytes_out stays 0 until netfw splits the counters by direction.
import type { PortCounter } from '@pocketproxy/netfw';

export interface UsageSample {
  port: number;
  bytes_in: number;
  bytes_out: number;
}

export class UsageMeter {
  private last = new Map<number, number>();

  /** Forget the baseline: the counters were recreated at zero. */
  reset(): void {
    this.last = new Map();
  }

  /**
   * Deltas for `ports` from a counter reading. Returns the samples and a commit function to call
   * once the API accepted them (a failed report is carried into the next one).
   */
  deltas(counters: ReadonlyMap<number, PortCounter>, ports: Iterable<number>): { samples: UsageSample[]; commit: () => void } {
    const next = new Map(this.last);
    const samples: UsageSample[] = [];
    const base = this.last;
    for (const port of new Set(ports)) {
      const c = counters.get(port);
      if (!c) continue;
      const prev = base.get(port) ?? 0;
      const delta = c.bytes >= prev ? c.bytes - prev : c.bytes;
      next.set(port, c.bytes);
      if (delta > 0) samples.push({ port, bytes_in: delta, bytes_out: 0 });
    }
    return {
      samples,
      commit: () => {
        // A reset() between reading and commit means the baseline is already gone: keep it gone.
        if (this.last === base) this.last = next;
      },
    };
  }
}
