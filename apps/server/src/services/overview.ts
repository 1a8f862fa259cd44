import type { Queryable } from '@pocketproxy/db';
import { apiError } from '../errors.js';

export async function overview(q: Queryable, now: Date) {
  const d = (
    await q.query<{ total: number; online: number }>(
      `SELECT count(*)::int AS total, (count(*) FILTER (WHERE status = 'online'))::int AS online FROM devices`,
    )
  ).rows[0]!;
  const c = (
    await q.query<{ total: number; enabled: number; blocked: number }>(
      `SELECT count(*)::int AS total, (count(*) FILTER (WHERE enabled))::int AS enabled,
              (count(*) FILTER (WHERE enabled AND blocked_reason IS NOT NULL))::int AS blocked FROM connections`,
    )
  ).rows[0]!;
  const cu = (await q.query<{ n: number }>('SELECT count(*)::int AS n FROM customers')).rows[0]!.n;
  const t = (
    await q.query<{ today: number; month: number }>(
      `SELECT coalesce(sum(bytes_in + bytes_out) FILTER (WHERE hour >= date_trunc('day', $1::timestamptz)), 0)::bigint AS today,
              coalesce(sum(bytes_in + bytes_out), 0)::bigint AS month
         FROM usage_hourly WHERE hour >= date_trunc('month', $1::timestamptz)
          AND (source = 'nft' OR NOT EXISTS (SELECT 1 FROM usage_hourly n WHERE n.source = 'nft' AND n.connection_id = usage_hourly.connection_id AND n.hour = usage_hourly.hour))`,
      [now],
    )
  ).rows[0]!;
  const ev = await q.query<{
    id: number;
    type: string;
    device_id: string | null;
    data: Record<string, unknown>;
    created_at: Date;
  }>('SELECT id, type, device_id, data, created_at FROM events ORDER BY id DESC LIMIT 20');
  return {
    devices: { total: d.total, online: d.online, offline: d.total - d.online },
    connections: { total: c.total, enabled: c.enabled, blocked: c.blocked },
    customers: cu,
    traffic: { today_bytes: Number(t.today), month_bytes: Number(t.month) },
    recent_events: ev.rows.map((e) => ({
      id: Number(e.id),
      type: e.type,
      device_id: e.device_id,
      data: e.data ?? {},
      created_at: new Date(e.created_at).toISOString(),
    })),
  };
}

/** Hourly for the last 24 h or daily for the last 30 days, zero-filled, for one device. */
export async function deviceUsage(q: Queryable, deviceId: string, granularity: 'hour' | 'day', now: Date) {
  if (!(await q.query('SELECT 1 FROM devices WHERE id = $1', [deviceId])).rows.length)
    throw apiError('PP_ERR_API_NOT_FOUND', { what: 'device' });
  const step = granularity === 'hour' ? '1 hour' : '1 day';
  const span = granularity === 'hour' ? '23 hours' : '29 days';
  const r = await q.query<{ t: Date; bytes_in: number; bytes_out: number }>(
    `WITH slots AS (SELECT generate_series(date_trunc($2, $3::timestamptz) - $4::interval, date_trunc($2, $3::timestamptz), $5::interval) AS t)
     SELECT s.t, coalesce(sum(u.bytes_in), 0)::bigint AS bytes_in, coalesce(sum(u.bytes_out), 0)::bigint AS bytes_out
       FROM slots s LEFT JOIN usage_hourly u ON u.device_id = $1 AND date_trunc($2, u.hour) = s.t
        AND (u.source = 'nft' OR NOT EXISTS (SELECT 1 FROM usage_hourly n WHERE n.source = 'nft' AND n.connection_id = u.connection_id AND n.hour = u.hour))
      GROUP BY s.t ORDER BY s.t`,
    [deviceId, granularity, now, span, step],
  );
  return {
    items: r.rows.map((x) => ({
      t: new Date(x.t).toISOString(),
      bytes_in: Number(x.bytes_in),
      bytes_out: Number(x.bytes_out),
    })),
  };
}
