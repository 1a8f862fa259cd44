// Retention (the worker's retention job): what the platform stops keeping — used or expired pairing codes
// after a day, IP history beyond the newest POCKETPROXY_IP_HISTORY_KEEP per device, events older than
// POCKETPROXY_EVENTS_KEEP_DAYS, finished webhook deliveries after 7 days.
import type { Queryable } from '@pocketproxy/db';
import type { Ctx } from '../context.js';

/** Inside the job's transaction; answers how many rows went. */
export async function pruneOld(ctx: Ctx, q: Queryable, now: Date): Promise<{ changed: number }> {
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
}
