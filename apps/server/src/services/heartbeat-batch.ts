// Group commit for heartbeats. Concurrent heartbeats wait for the statement in flight, then go to the
// database together as ONE statement: at thousands of devices a second the cost per heartbeat is then a
// share of one round trip instead of a whole one. One batch is in flight at a time, so batches never lock
// rows against each other; a batch takes each device once (a second heartbeat of the same device waits
// for the next batch). Relaxed durability: a crash may forget a last-seen time, and a command marked
// 'sent' is sent again after two heartbeat intervals.
import type { Db } from '@pocketproxy/db';
import type { Clock } from '../context.js';
import type { Row } from './rows.js';
import { credentialsVersionSql } from './connections.js';
import { HEARTBEAT_SEEN } from './presence.js';

export interface Metrics {
  battery?: number | null | undefined;
  charging?: boolean | null | undefined;
  signal?: number | null | undefined;
  carrier?: string | null | undefined;
  network_type?: string | null | undefined;
  temperature?: number | null | undefined;
}

export interface HeartbeatOutcome {
  /** null when no such device. */
  old_status: string | null;
  old_ip: string | null;
  cred_version: string;
  commands: Row[];
  at: Date;
}

interface Pending {
  id: string;
  m: Metrics;
  agentVersion: string | null;
  /** The agent's proxy counters (heartbeat `proxy`), stored as they are. */
  proxy: object | null;
  /** What the device's tunnel rides now (heartbeat `tunnel_transport`). */
  transport: 'udp' | 'tcp' | null;
  /** The command types its agent can run (heartbeat `capabilities`, known types only); null: not reported. */
  capabilities: string[] | null;
  resolve: (r: HeartbeatOutcome) => void;
  reject: (e: unknown) => void;
}

const SQL = `
WITH i AS (
  SELECT * FROM unnest($1::text[], $2::int[], $3::boolean[], $4::int[], $5::text[], $6::text[], $7::text[], $10::jsonb[], $11::text[], $12::jsonb[], $13::real[])
    AS t(id, battery, charging, signal, carrier, network_type, agent_version, proxy_stats, tunnel_transport, capabilities, temperature)),
o AS (SELECT d.id, d.status, d.current_ip FROM devices d JOIN i ON i.id = d.id),
u AS (
  UPDATE devices d SET
    ${HEARTBEAT_SEEN('$8')}, updated_at = $8,
    battery = coalesce(i.battery, d.battery), charging = coalesce(i.charging, d.charging), signal = coalesce(i.signal, d.signal),
    carrier = coalesce(i.carrier, d.carrier), network_type = coalesce(i.network_type, d.network_type),
    temperature = coalesce(i.temperature, d.temperature),
    agent_version = coalesce(i.agent_version, d.agent_version), proxy_stats = coalesce(i.proxy_stats, d.proxy_stats),
    tunnel_transport = coalesce(i.tunnel_transport, d.tunnel_transport), capabilities = coalesce(i.capabilities, d.capabilities)
  FROM i WHERE d.id = i.id RETURNING d.id),
c AS (
  UPDATE commands SET status = 'sent', sent_at = $8
   WHERE device_id = ANY($1::text[]) AND expires_at > $8
     AND (status = 'pending' OR (status = 'sent' AND sent_at < $8::timestamptz - make_interval(secs => $9)))
   RETURNING *)
SELECT i.id, o.status AS old_status, o.current_ip AS old_ip,
  ${credentialsVersionSql('i.id', '$8')} AS cred_version,
  (SELECT coalesce(json_agg(to_json(c) ORDER BY c.created_at), '[]'::json) FROM c WHERE c.device_id = i.id) AS commands
FROM i LEFT JOIN o ON o.id = i.id`;

export class HeartbeatBatcher {
  #queue: Pending[] = [];
  #running = false;
  /** Statements sent and heartbeats they carried (metrics, tests). */
  readonly stats = { batches: 0, heartbeats: 0 };

  constructor(
    private readonly db: Db,
    private readonly clock: Clock,
    private readonly resendAfterS: number,
    private readonly maxBatch = 500,
  ) {}

  submit(
    id: string,
    m: Metrics,
    agentVersion: string | null,
    proxy: object | null = null,
    transport: 'udp' | 'tcp' | null = null,
    capabilities: string[] | null = null,
  ): Promise<HeartbeatOutcome> {
    return new Promise((resolve, reject) => {
      this.#queue.push({ id, m, agentVersion, proxy, transport, capabilities, resolve, reject });
      if (!this.#running) {
        this.#running = true;
        setImmediate(() => void this.#drain());
      }
    });
  }

  async #drain(): Promise<void> {
    try {
      while (this.#queue.length) {
        const batch: Pending[] = [];
        const later: Pending[] = [];
        const seen = new Set<string>();
        for (const p of this.#queue) {
          if (batch.length < this.maxBatch && !seen.has(p.id)) {
            seen.add(p.id);
            batch.push(p);
          } else later.push(p);
        }
        this.#queue = later;
        await this.#run(batch);
      }
    } finally {
      this.#running = false;
    }
  }

  async #run(batch: Pending[]): Promise<void> {
    const now = this.clock.now();
    const col = <T>(f: (p: Pending) => T) => batch.map(f);
    const params = [
      col((p) => p.id),
      col((p) => p.m.battery ?? null),
      col((p) => p.m.charging ?? null),
      col((p) => p.m.signal ?? null),
      col((p) => p.m.carrier ?? null),
      col((p) => p.m.network_type ?? null),
      col((p) => p.agentVersion),
      now,
      this.resendAfterS,
      col((p) => (p.proxy ? JSON.stringify(p.proxy) : null)),
      col((p) => p.transport),
      col((p) => (p.capabilities ? JSON.stringify(p.capabilities) : null)),
      col((p) => p.m.temperature ?? null),
    ];
    for (let attempt = 1; ; attempt++) {
      try {
        const r = await this.db.queryRelaxed<{
          id: string;
          old_status: string | null;
          old_ip: string | null;
          cred_version: string;
          commands: Row[];
        }>(SQL, params, { name: 'heartbeat_batch_v6' });
        this.stats.batches++;
        this.stats.heartbeats += batch.length;
        const byId = new Map(r.rows.map((x) => [x.id, x]));
        for (const p of batch) {
          const x = byId.get(p.id);
          p.resolve({
            old_status: x?.old_status ?? null,
            old_ip: x?.old_ip ?? null,
            cred_version: x?.cred_version ?? '0:0',
            commands: x?.commands ?? [],
            at: now,
          });
        }
        return;
      } catch (e) {
        // A deadlock with a transaction that locks a command and then its device: take the next turn.
        if ((e as { code?: string }).code === '40P01' && attempt < 3) continue;
        for (const p of batch) p.reject(e);
        return;
      }
    }
  }
}
