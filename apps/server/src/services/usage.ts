// Usage and limits (docs/design.md §2.8), one file for the whole flow:
//
//   counters in   the device's heartbeat `usage` (source 'agent': what its proxy relayed per connection,
//                 every path) — recordDeviceUsage; the relay's nftables counters per port
//                 (POST /api/internal/usage, source 'nft') — recordRelayUsage. Both through addUsage,
//                 the one upsert into usage_hourly (per connection, source and hour).
//   roll-ups      usedMonthSql: this month's bytes of a connection by source (the connection's
//                 bytes_used_month and bytes_relay_month, the device's credential items, the limit check).
//   limits        blockDue: expired, or at or over the monthly bandwidth limit by the device's count
//                 ('agent'; the relay's figure is for information only); at once when a heartbeat or a
//                 connection change takes a connection there, and every worker tick (blockAllDue);
//                 liftMonthBlocks lifts bandwidth blocks when a month begins.
//   figures       what the overview, the usage charts and the device stats count: per connection-hour the
//                 relay's figure where there is one, else the device's (COUNTED): trafficTotals,
//                 trafficByDevice, deviceUsage, fleetUsage.
import type { Queryable } from '@pocketproxy/db';
import type { Ctx } from '../context.js';
import { apiError } from '../errors.js';
import type { BlockReason } from './connections.js';
import { syncDevicesWithin } from './push.js';

export type UsageSource = 'agent' | 'nft';

/** The usage_hourly hour a count taken at `at` goes into. */
export const hourOf = (at: Date): Date => new Date(Math.floor(at.getTime() / 3_600_000) * 3_600_000);

/**
 * SQL: this month's bytes (both ways) of one connection from one source. 'agent': what the device proxy
 * relayed for the customer (both ways, on every path, OpenVPN customers included) — the figure limits
 * apply to. 'nft': the relay's per-port counters (IP packet lengths on the wire; OpenVPN customers never
 * cross those ports). `conn` and `now` are SQL expressions.
 */
export const usedMonthSql = (source: UsageSource, conn: string, now: string): string =>
  `coalesce((SELECT sum(u.bytes_in + u.bytes_out) FROM usage_hourly u
    WHERE u.connection_id = ${conn} AND u.source = '${source}' AND u.hour >= date_trunc('month', ${now}::timestamptz)), 0)::bigint`;

/** SQL predicate over `usage_hourly u`: the rows traffic figures count — per connection-hour the relay's
 * ('nft') where there is one, else the device's. */
export const COUNTED = `(u.source = 'nft' OR NOT EXISTS
  (SELECT 1 FROM usage_hourly n WHERE n.source = 'nft' AND n.connection_id = u.connection_id AND n.hour = u.hour))`;

/** How each source names the connection of a sample: the device's by id (its own connections only), the
 * relay's by port. */
const MATCH: Record<UsageSource, string> = {
  agent: 'c.id = s.connection_id AND c.device_id = $4',
  nft: 'c.port = s.port',
};

/**
 * The one upsert of usage_hourly: adds the samples to their connection's row for this source and hour.
 * Samples that name no connection (of that device, for 'agent') are dropped. Returns the rows written.
 */
export async function addUsage(
  q: Queryable,
  source: UsageSource,
  at: Date,
  samples: readonly { connection_id?: string; port?: number; bytes_in: number; bytes_out: number }[],
  deviceId?: string,
): Promise<number> {
  const params: unknown[] = [hourOf(at), source, JSON.stringify(samples)];
  if (source === 'agent') params.push(deviceId);
  const r = await q.query(
    `INSERT INTO usage_hourly (connection_id, device_id, hour, source, bytes_in, bytes_out)
     SELECT c.id, c.device_id, $1, $2, s.bytes_in, s.bytes_out
       FROM jsonb_to_recordset($3::jsonb) AS s(connection_id text, port int, bytes_in bigint, bytes_out bigint)
       JOIN connections c ON ${MATCH[source]}
     ON CONFLICT (connection_id, source, hour) DO UPDATE
       SET bytes_in = usage_hourly.bytes_in + excluded.bytes_in, bytes_out = usage_hourly.bytes_out + excluded.bytes_out`,
    params,
  );
  return r.rowCount;
}

/**
 * A heartbeat's `usage`, inside its transaction: added to usage_hourly ('agent'), and since limits apply to
 * the device's own count, a connection this report took to its limit is blocked now, not at the worker's
 * next tick. Returns the connections blocked (the caller announces them and syncs the relay after commit).
 */
export async function recordDeviceUsage(
  q: Queryable,
  deviceId: string,
  now: Date,
  usage: readonly { connection_id: string; bytes_in: number; bytes_out: number }[],
): Promise<Blocked[]> {
  if (!usage.length) return [];
  await addUsage(q, 'agent', now, usage, deviceId);
  return blockDue(q, now, { deviceId }, ['bandwidth']);
}

/** The relay's per-port counters since its last report (POST /api/internal/usage): 'nft', for information. */
export async function recordRelayUsage(
  ctx: Ctx,
  samples: readonly { port: number; bytes_in: number; bytes_out: number }[],
): Promise<{ recorded: number }> {
  if (!samples.length) return { recorded: 0 };
  return { recorded: await addUsage(ctx.db, 'nft', ctx.clock.now(), samples) };
}

export type Blocked = { id: string; device_id: string; reason: BlockReason };

/**
 * Blocks the connections now due: past their expiry ('expired'), or at or over their monthly
 * bandwidth limit by the device's own count ('bandwidth'). Bumps updated_at (the credentials version
 * changes anyway). Scoped to one connection, one device, or all (the worker). The caller publishes
 * connection_updated and syncs the devices after commit.
 */
export async function blockDue(
  q: Queryable,
  now: Date,
  scope: { deviceId?: string; connectionId?: string } = {},
  reasons: readonly BlockReason[] = ['expired', 'bandwidth'],
): Promise<Blocked[]> {
  const params: unknown[] = [now];
  let where = '';
  if (scope.connectionId) {
    params.push(scope.connectionId);
    where = 'AND c.id = $2';
  } else if (scope.deviceId) {
    params.push(scope.deviceId);
    where = 'AND c.device_id = $2';
  }
  const out: Blocked[] = [];
  if (reasons.includes('expired')) {
    const r = await q.query<{ id: string; device_id: string }>(
      `UPDATE connections c SET blocked_reason = 'expired', updated_at = $1
        WHERE c.blocked_reason IS NULL AND c.expires_at IS NOT NULL AND c.expires_at <= $1 ${where} RETURNING c.id, c.device_id`,
      params,
    );
    for (const x of r.rows) out.push({ ...x, reason: 'expired' });
  }
  if (reasons.includes('bandwidth')) {
    const r = await q.query<{ id: string; device_id: string }>(
      `UPDATE connections c SET blocked_reason = 'bandwidth', updated_at = $1
        WHERE c.blocked_reason IS NULL AND c.bandwidth_limit_bytes IS NOT NULL ${where}
          AND c.bandwidth_limit_bytes <= ${usedMonthSql('agent', 'c.id', '$1')}
        RETURNING c.id, c.device_id`,
      params,
    );
    for (const x of r.rows) out.push({ ...x, reason: 'bandwidth' });
  }
  return out;
}

/** How long a worker tick waits for the relay syncs a block or unblock started; the rest go on in the background. */
const SYNC_WAIT_MS = 2500;

/** Announces connections whose block changed and tells their devices' relays (after commit). */
async function announceBlocks(
  ctx: Ctx,
  rows: readonly { id: string; device_id: string }[],
  blocked: boolean,
  now: Date,
): Promise<void> {
  for (const c of rows) ctx.bus.publish('connection_updated', { id: c.id, device_id: c.device_id, blocked }, now);
  await syncDevicesWithin(
    ctx,
    rows.map((c) => c.device_id),
    SYNC_WAIT_MS,
  );
}

/** The worker's blockConnections (inside its job transaction): every connection past expiry or over its
 * monthly bandwidth is blocked; `after` announces them and tells their relays at once. */
export async function blockAllDue(ctx: Ctx, q: Queryable, now: Date) {
  const all = await blockDue(q, now);
  return { changed: all.length, after: () => announceBlocks(ctx, all, true, now) };
}

/** The worker's unblockNewMonth: bandwidth blocks lift at the start of a new month. */
export async function liftMonthBlocks(ctx: Ctx, q: Queryable, now: Date) {
  const r = await q.query<{ id: string; device_id: string }>(
    `UPDATE connections SET blocked_reason = NULL, updated_at = $1 WHERE blocked_reason = 'bandwidth' AND updated_at < date_trunc('month', $1::timestamptz)
     RETURNING id, device_id`,
    [now],
  );
  return { changed: r.rowCount, after: () => announceBlocks(ctx, r.rows, false, now) };
}

/** The fleet's traffic today and this month (GET /api/overview). */
export async function trafficTotals(q: Queryable, now: Date): Promise<{ today_bytes: number; month_bytes: number }> {
  const t = (
    await q.query<{ today: number; month: number }>(
      `SELECT coalesce(sum(u.bytes_in + u.bytes_out) FILTER (WHERE u.hour >= date_trunc('day', $1::timestamptz)), 0)::bigint AS today,
              coalesce(sum(u.bytes_in + u.bytes_out), 0)::bigint AS month
         FROM usage_hourly u WHERE u.hour >= date_trunc('month', $1::timestamptz) AND ${COUNTED}`,
      [now],
    )
  ).rows[0]!;
  return { today_bytes: Number(t.today), month_bytes: Number(t.month) };
}

/** Each device's traffic today and this month (GET /api/devices/stats); `deviceId` narrows to one. */
export async function trafficByDevice(
  q: Queryable,
  now: Date,
  deviceId: string | null,
): Promise<Map<string, { today: number; month: number }>> {
  const r = await q.query<{ device_id: string; today: string; month: string }>(
    `SELECT u.device_id,
            coalesce(sum(u.bytes_in + u.bytes_out) FILTER (WHERE u.hour >= date_trunc('day', $1::timestamptz)), 0)::bigint AS today,
            coalesce(sum(u.bytes_in + u.bytes_out), 0)::bigint AS month
       FROM usage_hourly u
      WHERE u.hour >= date_trunc('month', $1::timestamptz) AND ($2::text IS NULL OR u.device_id = $2) AND ${COUNTED}
      GROUP BY u.device_id`,
    [now, deviceId],
  );
  return new Map(r.rows.map((x) => [x.device_id, { today: Number(x.today), month: Number(x.month) }]));
}

const series = (rows: { t: Date; bytes_in: number | string; bytes_out: number | string }[]) => ({
  items: rows.map((x) => ({
    t: new Date(x.t).toISOString(),
    bytes_in: Number(x.bytes_in),
    bytes_out: Number(x.bytes_out),
  })),
});

/** Hourly for the last 24 h or daily for the last 30 days, zero-filled, for one device (GET /api/devices/:id/usage). */
export async function deviceUsage(q: Queryable, deviceId: string, granularity: 'hour' | 'day', now: Date) {
  if (!(await q.query('SELECT 1 FROM devices WHERE id = $1', [deviceId])).rows.length)
    throw apiError('PP_ERR_API_NOT_FOUND', { what: 'device' });
  const step = granularity === 'hour' ? '1 hour' : '1 day';
  const span = granularity === 'hour' ? '23 hours' : '29 days';
  const r = await q.query<{ t: Date; bytes_in: number; bytes_out: number }>(
    `WITH slots AS (SELECT generate_series(date_trunc($2, $3::timestamptz) - $4::interval, date_trunc($2, $3::timestamptz), $5::interval) AS t)
     SELECT s.t, coalesce(sum(u.bytes_in), 0)::bigint AS bytes_in, coalesce(sum(u.bytes_out), 0)::bigint AS bytes_out
       FROM slots s LEFT JOIN usage_hourly u ON u.device_id = $1 AND date_trunc($2, u.hour) = s.t AND ${COUNTED}
      GROUP BY s.t ORDER BY s.t`,
    [deviceId, granularity, now, span, step],
  );
  return series(r.rows);
}

/** The whole fleet's traffic: hourly for the last 24 h or daily for the last 30 days, zero-filled (GET /api/usage). */
export async function fleetUsage(q: Queryable, granularity: 'hour' | 'day', now: Date) {
  const step = granularity === 'hour' ? '1 hour' : '1 day';
  const span = granularity === 'hour' ? '23 hours' : '29 days';
  const r = await q.query<{ t: Date; bytes_in: string; bytes_out: string }>(
    `WITH slots AS (SELECT generate_series(date_trunc($1, $2::timestamptz) - $3::interval, date_trunc($1, $2::timestamptz), $4::interval) AS t)
     SELECT s.t, coalesce(sum(u.bytes_in), 0)::bigint AS bytes_in, coalesce(sum(u.bytes_out), 0)::bigint AS bytes_out
       FROM slots s LEFT JOIN usage_hourly u
         ON u.hour >= date_trunc($1, $2::timestamptz) - $3::interval AND date_trunc($1, u.hour) = s.t AND ${COUNTED}
      GROUP BY s.t ORDER BY s.t`,
    [granularity, now, span, step],
  );
  return series(r.rows);
}
