// Per-connection byte counts since the last heartbeat. Closed customer connections report their
// totals through the proxies' connectionClosed events; connections still open are sampled through
// `live` (bytes counted so far), and only the growth since the previous sample is reported, so a
// long tunnel is billed as it goes rather than when it ends.
export interface UsageEntry {
  connection_id: string;
  bytes_in: number;
  bytes_out: number;
}

export interface LiveSample {
  key: object;
  principal: string;
  bytesIn: number;
  bytesOut: number;
}

export class UsageMeter {
  private pending = new Map<string, { in: number; out: number }>();
  /** What was already reported of connections still open (by socket identity). */
  private reportedLive = new WeakMap<object, { principal: string; in: number; out: number }>();

  add(principal: string, bytesIn: number, bytesOut: number): void {
    // Only connection ids are billable (the heartbeat schema rejects anything else).
    if (!principal.startsWith('con_')) return;
    const e = this.pending.get(principal) ?? { in: 0, out: 0 };
    e.in += bytesIn;
    e.out += bytesOut;
    this.pending.set(principal, e);
  }

  /**
   * The connection behind `key` closed and its full totals were already add()ed (from the
   * connectionClosed event): take back what live samples of it reported earlier.
   */
  closedAfterEvent(key: object): void {
    const r = this.reportedLive.get(key);
    if (!r) return;
    this.reportedLive.delete(key);
    const e = this.pending.get(r.principal) ?? { in: 0, out: 0 };
    e.in -= r.in;
    e.out -= r.out;
    this.pending.set(r.principal, e);
  }

  sampleLive(samples: Iterable<LiveSample>): void {
    for (const s of samples) {
      if (!s.principal.startsWith('con_')) continue;
      const r = this.reportedLive.get(s.key) ?? { principal: s.principal, in: 0, out: 0 };
      this.add(s.principal, Math.max(0, s.bytesIn - r.in), Math.max(0, s.bytesOut - r.out));
      this.reportedLive.set(s.key, { principal: s.principal, in: Math.max(r.in, s.bytesIn), out: Math.max(r.out, s.bytesOut) });
    }
  }

  /** Takes everything pending (call restore() with it if the heartbeat fails). */
  drain(): UsageEntry[] {
    const out: UsageEntry[] = [];
    const keep = new Map<string, { in: number; out: number }>();
    for (const [id, e] of this.pending) {
      // Negative only transiently (a close's correction landing before its event); carry it over.
      if (e.in < 0 || e.out < 0) keep.set(id, e);
      else if (e.in > 0 || e.out > 0) out.push({ connection_id: id, bytes_in: e.in, bytes_out: e.out });
    }
    this.pending = keep;
    return out;
  }

  restore(entries: readonly UsageEntry[]): void {
    for (const e of entries) this.add(e.connection_id, e.bytes_in, e.bytes_out);
  }
}
