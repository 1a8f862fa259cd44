// Per-port usage from nftables counters, as deltas since the last successful report.
// netfw keeps two counters per port (see packages/netfw/src/counters.ts): `in` counts the
// conntrack ORIGINAL direction of the port's DNAT'ed connections (customer -> target, reported as
// bytes_in) and `out` the REPLY direction (sent back to the customer, reported as bytes_out) —
// the same meaning as the agent's per-connection counts and the API's usage tables.
// Counters restart at zero whenever netfw rebuilds the table (process start, skeleton change,
// recovery after a failed transaction): `reset()` is called then, and a reading smaller than the
// last one is also taken as a restart (count from zero), never as a negative delta. Each
// direction keeps its own baseline.
import type { PortCounter } from '@pocketproxy/netfw';

export interface UsageSample {
  port: number;
  bytes_in: number;
  bytes_out: number;
}

interface Baseline {
  readonly in: number;
  readonly out: number;
}

/** Growth since `prev`; a smaller reading means the counter restarted at zero. */
function grown(now: number, prev: number): number {
  return now >= prev ? now - prev : now;
}

export class UsageMeter {
  private last = new Map<number, Baseline>();

  /** Forget the baseline: the counters were recreated at zero. */
  reset(): void {
    this.last = new Map();
  }

  /**
   * Deltas for `ports` from a counter reading. Returns the samples and a commit function to call
   * once the API accepted them (a failed report is carried into the next one).
   */
  deltas(
    counters: ReadonlyMap<number, PortCounter>,
    ports: Iterable<number>,
  ): { samples: UsageSample[]; commit: () => void } {
    const next = new Map(this.last);
    const samples: UsageSample[] = [];
    const base = this.last;
    for (const port of new Set(ports)) {
      const c = counters.get(port);
      if (!c) continue;
      const prev = base.get(port) ?? { in: 0, out: 0 };
      const bytesIn = grown(c.in.bytes, prev.in);
      const bytesOut = grown(c.out.bytes, prev.out);
      next.set(port, { in: c.in.bytes, out: c.out.bytes });
      if (bytesIn > 0 || bytesOut > 0) samples.push({ port, bytes_in: bytesIn, bytes_out: bytesOut });
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
