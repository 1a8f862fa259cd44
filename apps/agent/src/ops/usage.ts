// Bytes per connection, counted as they are relayed, and reported as deltas in heartbeats.
//
//   customer socket / target socket / UDP datagram -> Meter.take(dir, n) (packages/proxy) ->
//   ConnectionUsage (up += n | down += n) -> ConnectionMeter (budget, rate limits)
//
// Every byte path of a connection (HTTP forward, CONNECT and SOCKS5 tunnels, SOCKS5 UDP, the
// relay's OpenVPN customers, who reach the same listeners) goes through one ConnectionUsage per
// connection, which lives as long as the agent: a heartbeat reports what it counted since the
// last successful heartbeat, so usage is billed as it goes and never twice. `up` is what the
// customer sent (bytes_in), `down` what it received (bytes_out).
import type { ConnectionMeter, Direction, Meter } from '@pocketproxy/proxy';

export interface UsageEntry {
  connection_id: string;
  bytes_in: number;
  bytes_out: number;
}

export class ConnectionUsage implements Meter {
  /** Relayed since the agent started. */
  up = 0;
  down = 0;
  /** What heartbeats carried of it (the one in flight included; rolled back if it fails). */
  reportedUp = 0;
  reportedDown = 0;
  constructor(
    readonly connectionId: string,
    readonly limits: ConnectionMeter,
  ) {}

  take(dir: Direction, bytes: number): number {
    const r = this.limits.take(dir, bytes);
    // -1: the budget was spent before these bytes, which are not delivered (and not billed).
    if (r === -1) return r;
    if (dir === 'up') this.up += bytes;
    else this.down += bytes;
    return r;
  }

  /** Bytes another thread relayed for this connection (proxy/threads.ts; unlimited connections only). */
  credit(up: number, down: number): void {
    this.up += up;
    this.down += down;
  }

  unlimited(): boolean {
    return this.limits.unlimited();
  }

  /** A policed UDP datagram was not delivered after all: neither billed nor charged to the rate. */
  refund(dir: Direction, bytes: number): void {
    if (dir === 'up') this.up -= bytes;
    else this.down -= bytes;
    this.limits.refund(dir, bytes);
  }

  get counted(): number {
    return this.up + this.down;
  }

  get reported(): number {
    return this.reportedUp + this.reportedDown;
  }
}

export class UsageMeter {
  private readonly byId = new Map<string, ConnectionUsage>();

  constructor(private readonly makeLimits: (connectionId: string) => ConnectionMeter) {}

  /** The connection's counter (made on first use, kept for the agent's life). */
  of(connectionId: string): ConnectionUsage {
    let u = this.byId.get(connectionId);
    if (!u) {
      u = new ConnectionUsage(connectionId, this.makeLimits(connectionId));
      this.byId.set(connectionId, u);
    }
    return u;
  }

  /** Everything counted and not yet carried by a heartbeat; marked as reported (restore() if the heartbeat fails). */
  drain(max = 10_000): UsageEntry[] {
    const out: UsageEntry[] = [];
    for (const u of this.byId.values()) {
      if (out.length >= max) break;
      const dIn = u.up - u.reportedUp;
      const dOut = u.down - u.reportedDown;
      if (dIn <= 0 && dOut <= 0) continue;
      u.reportedUp = u.up;
      u.reportedDown = u.down;
      out.push({ connection_id: u.connectionId, bytes_in: dIn, bytes_out: dOut });
    }
    return out;
  }

  /** The heartbeat that carried `entries` failed: they are reported again next time. */
  restore(entries: readonly UsageEntry[]): void {
    for (const e of entries) {
      const u = this.byId.get(e.connection_id);
      if (!u) continue;
      u.reportedUp -= e.bytes_in;
      u.reportedDown -= e.bytes_out;
    }
  }
}
