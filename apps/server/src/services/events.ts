// Fleet events: delivered at once to this instance's WebSocket clients and, through PostgreSQL
// LISTEN/NOTIFY, to every other API instance sharing the database. Outgoing NOTIFYs are coalesced
// (one per 100 ms, chunked under PostgreSQL's 8000-byte payload limit) so 5,000 heartbeats/s do not
// become 5,000 extra statements/s. Persisted events (for "recent events" and webhooks) are written by
// the services in the same transaction as the change they describe.
import { randomBytes } from 'node:crypto';
import type { Db } from '@pocketproxy/db';

export interface FleetEvent {
  type: string;
  data: Record<string, unknown>;
  at: string;
}

const CHANNEL = 'pp_events';
const MAX_PAYLOAD = 7000;

export class EventBus {
  readonly #instance = randomBytes(6).toString('hex');
  readonly #local = new Set<(e: FleetEvent) => void>();
  #pending: FleetEvent[] = [];
  #timer: NodeJS.Timeout | null = null;
  #unlisten: (() => Promise<void>) | null = null;

  constructor(private readonly db: Db | null) {}

  /** Fans in events from other instances; only worth it on a shared PostgreSQL. */
  async start(): Promise<void> {
    if (this.db?.kind !== 'postgres') return;
    this.#unlisten = await this.db.listen(CHANNEL, (payload) => {
      // "<instance>\n<json>": our own notifications come back too; skip them without parsing.
      const nl = payload.indexOf('\n');
      if (nl < 0 || payload.slice(0, nl) === this.#instance) return;
      try {
        for (const e of JSON.parse(payload.slice(nl + 1)) as FleetEvent[]) this.#deliver(e);
      } catch {
        /* not ours */
      }
    });
  }

  subscribe(fn: (e: FleetEvent) => void): () => void {
    this.#local.add(fn);
    return () => this.#local.delete(fn);
  }

  publish(type: string, data: Record<string, unknown>, at = new Date()): void {
    const e: FleetEvent = { type, data, at: at.toISOString() };
    this.#deliver(e);
    if (this.#unlisten) {
      this.#pending.push(e);
      this.#timer ??= setTimeout(() => void this.#flush(), 100);
    }
  }

  #deliver(e: FleetEvent): void {
    for (const fn of this.#local) {
      try {
        fn(e);
      } catch {
        /* a subscriber's failure is its own */
      }
    }
  }

  async #flush(): Promise<void> {
    this.#timer = null;
    const batch = this.#pending;
    this.#pending = [];
    let chunk: FleetEvent[] = [];
    let size = 0;
    const send = async () => {
      if (chunk.length && this.db)
        await this.db.notify(CHANNEL, `${this.#instance}\n${JSON.stringify(chunk)}`).catch(() => {});
      chunk = [];
      size = 0;
    };
    for (const e of batch) {
      const n = JSON.stringify(e).length;
      if (n > MAX_PAYLOAD) continue; // too large to fan out; local clients already have it
      if (size + n > MAX_PAYLOAD) await send();
      chunk.push(e);
      size += n;
    }
    await send();
  }

  async stop(): Promise<void> {
    if (this.#timer) clearTimeout(this.#timer);
    await this.#flush();
    await this.#unlisten?.();
  }
}
