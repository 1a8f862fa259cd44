// The worker's jobs. Each takes the time from the injected clock (so tests can move it), runs in its
// own transaction and first takes a transaction-scoped advisory lock: several worker instances on one
// PostgreSQL never run the same job at once, and a job that finds its lock taken just skips this tick.
import type { Queryable } from '@pocketproxy/db';
import type { Ctx } from '../context.js';
import { sweepStale } from '../services/presence.js';
import { expireDueCommands } from '../services/commands.js';
import { pruneOld } from '../services/retention.js';
import { blockAllDue, liftMonthBlocks } from '../services/usage.js';
import { scheduledRotations } from '../services/rotation.js';

export interface JobResult {
  job: string;
  skipped?: boolean;
  changed: number;
}

/** `after` runs once the job's transaction committed (events, relay syncs). */
type Job = (ctx: Ctx, q: Queryable, now: Date) => Promise<{ changed: number; after?: () => void | Promise<void> }>;

const JOB_LOCK_BASE = 7724000;

export const JOBS: Record<string, Job> = {
  /** Devices silent for longer than staleAfterS go offline, with a device_disconnected event. */
  staleDevices: sweepStale,

  /** Commands past their expiry end as expired. */
  expireCommands: expireDueCommands,

  /** Connections past expiry or over their monthly bandwidth (the device's count) are blocked; their
   * devices' relays are told at once, and the devices refuse them with the reason. */
  blockConnections: blockAllDue,

  /** Bandwidth blocks lift at the start of a new month. */
  unblockNewMonth: liftMonthBlocks,

  /** Devices with an auto-rotation interval get a rotate_ip when due, through the one rotation path. */
  autoRotate: scheduledRotations,

  /** Retention: used or expired pairing codes, IP history beyond the newest N per device, old events and deliveries. */
  retention: pruneOld,
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
