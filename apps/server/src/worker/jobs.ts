// The worker's jobs. Each takes the time from the injected clock (so tests can move it), runs in its
// own transaction and first takes a transaction-scoped advisory lock: several worker instances on one
// PostgreSQL never run the same job at once, and a job that finds its lock taken just skips this tick.
import type { Queryable } from '@pocketproxy/db';
import type { Ctx } from '../context.js';
import { sweepStale } from '../services/presence.js';
import { toCommand, type Row } from '../services/rows.js';
import { blockAllDue, liftMonthBlocks } from '../services/usage.js';
import { requestRotation } from '../services/rotation.js';

export interface JobResult {
  job: string;
  skipped?: boolean;
  changed: number;
}

/** `after` runs once the job's transaction committed (events, relay syncs). */
type Job = (ctx: Ctx, q: Queryable, now: Date) => Promise<{ changed: number; after?: () => void | Promise<void> }>;

const JOB_LOCK_BASE = 7724000;

/** How long a tick waits for relay syncs a job started; the rest go on in the background. */
const SYNC_WAIT_MS = 2500;

/** Scheduled rotations queued (and pushed) at once. */
const ROTATE_CONCURRENCY = 16;

async function forEachLimited<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const lane = async () => {
    while (next < items.length) await fn(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, lane));
}

export const JOBS: Record<string, Job> = {
  /** Devices silent for longer than staleAfterS go offline, with a device_disconnected event. */
  staleDevices: sweepStale,

  /** Commands past their expiry end as expired. */
  async expireCommands(ctx, q, now) {
    const r = await q.query<Row>(
      `UPDATE commands SET status = 'expired', finished_at = $1 WHERE status IN ('pending', 'sent', 'acked') AND expires_at <= $1 RETURNING *`,
      [now],
    );
    return {
      changed: r.rowCount,
      after: () => {
        for (const c of r.rows) ctx.bus.publish('command_updated', toCommand(c), now);
      },
    };
  },

  /** Connections past expiry or over their monthly bandwidth (the device's count) are blocked; their
   * devices' relays are told at once, and the devices refuse them with the reason. */
  blockConnections: blockAllDue,

  /** Bandwidth blocks lift at the start of a new month. */
  unblockNewMonth: liftMonthBlocks,

  /** Devices with an auto-rotation interval get a rotate_ip command when due: queued after the commit
   * through the one rotation path (services/rotation.ts), so it is pushed to the device at once,
   * audited (actor `worker`) and announced like a manual one; a device still rotating is not stacked on. */
  async autoRotate(ctx, q, now) {
    const due = await q.query<{ id: string; rotation_interval_s: number }>(
      `UPDATE devices SET next_rotation_at = $1::timestamptz + make_interval(secs => rotation_interval_s)
        WHERE rotation_interval_s IS NOT NULL AND next_rotation_at <= $1 RETURNING id, rotation_interval_s`,
      [now],
    );
    const open = due.rows.length
      ? new Set(
          (
            await q.query<{ device_id: string }>(
              `SELECT DISTINCT device_id FROM commands WHERE device_id = ANY($1::text[]) AND type = 'rotate_ip' AND status IN ('pending','sent','acked')`,
              [due.rows.map((d) => d.id)],
            )
          ).rows.map((r) => r.device_id),
        )
      : new Set<string>();
    const rotate = due.rows.filter((d) => !open.has(d.id));
    return {
      changed: rotate.length,
      after: async () => {
        let timer: NodeJS.Timeout | undefined;
        const deadline = new Promise<void>((resolve) => {
          timer = setTimeout(resolve, SYNC_WAIT_MS);
          timer.unref();
        });
        const all = forEachLimited(rotate, ROTATE_CONCURRENCY, async (d) => {
          try {
            // A scheduled rotation lives at most one interval (capped at 10 min), so it never outlives the next one.
            await requestRotation(ctx, d.id, {
              source: 'schedule',
              actor: 'worker',
              ttl_s: Math.min(d.rotation_interval_s, 600),
            });
          } catch (err) {
            ctx.log.warn({ err, device_id: d.id }, 'scheduled rotation not queued');
          }
        });
        await Promise.race([all, deadline]);
        clearTimeout(timer);
      },
    };
  },

  /** Retention: used or expired pairing codes after a day, IP history beyond the newest N per device, old events. */
  async retention(ctx, q, now) {
    const a = await q.query(`DELETE FROM pairing_codes WHERE expires_at < $1::timestamptz - interval '1 day'`, [now]);
    const b = await q.query(
      `DELETE FROM ip_history h USING (
         SELECT id FROM (SELECT id, row_number() OVER (PARTITION BY device_id ORDER BY id DESC) AS n FROM ip_history) x WHERE x.n > $1) old
       WHERE h.id = old.id`,
      [ctx.config.ipHistoryKeep],
    );
    const c = await q.query(`DELETE FROM events WHERE created_at < $1::timestamptz - make_interval(days => $2)`, [
      now,
      ctx.config.eventsKeepDays,
    ]);
    const d = await q.query(
      `DELETE FROM webhook_deliveries WHERE status <> 'pending' AND created_at < $1::timestamptz - interval '7 days'`,
      [now],
    );
    return { changed: a.rowCount + b.rowCount + c.rowCount + d.rowCount };
  },
};

export async function runJob(ctx: Ctx, name: string, now: Date): Promise<JobResult> {
  const job = JOBS[name]!;
  const key = JOB_LOCK_BASE + Object.keys(JOBS).indexOf(name);
  let after: (() => void | Promise<void>) | undefined;
  const res = await ctx.db.tx(async (q) => {
    const got = (await q.query<{ ok: boolean }>('SELECT pg_try_advisory_xact_lock($1) AS ok', [key])).rows[0]!.ok;
    if (!got) return { job: name, skipped: true, changed: 0 };
    const out = await job(ctx, q, now);
    after = out.after;
    return { job: name, changed: out.changed };
  });
  await after?.();
  return res;
}
