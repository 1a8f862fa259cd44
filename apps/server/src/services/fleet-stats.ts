// Figures per device that are not on the device object (GET /api/devices/stats).
//
// Uptime: the share of a window (24 h, 7 d) a device was online, from the transitions stored as events
// (device_connected, device_disconnected, all written by services/presence.ts). The state at the window's start is that of the last
// transition before it (offline when there is none); each later transition sets the state until the next
// one (repeats of the same state change nothing); the window ends now. A device paired inside the window
// counts from its pairing. Events older than POCKETPROXY_EVENTS_KEEP_DAYS are deleted by the worker, so a
// 7-day figure needs at least 7 days kept (the default is longer).
//
// Rotation success rate: rotate_ip commands that finished (succeeded, failed or expired) in the last 7 days,
// by finished_at: succeeded / all of them.
//
// Traffic: usage.ts trafficByDevice (counted as GET /api/overview and GET /api/devices/:id/usage count it);
// the fleet's series, GET /api/usage, is usage.ts fleetUsage.
import type { DeviceStats } from '@pocketproxy/api-schema';
import type { Queryable } from '@pocketproxy/db';
import type { z } from 'zod';
import { trafficByDevice } from './usage.js';

const DAY_MS = 86_400_000;

/** A device's figures as `GET /api/devices/stats` publishes them (api-schema DeviceStats). */
export type DeviceStatsView = z.output<typeof DeviceStats>;

/**
 * Seconds online and seconds known per device over [now - windowMs, now]. `deviceId` narrows to one.
 * One statement: the state at the window's start (DISTINCT ON over the transitions before it), the
 * transitions inside it, and the gaps between them (lead()).
 */
export async function uptimeOver(
  q: Queryable,
  now: Date,
  windowMs: number,
  deviceId?: string,
): Promise<Map<string, { up_s: number; known_s: number }>> {
  const start = new Date(now.getTime() - windowMs);
  const r = await q.query<{ device_id: string; up_s: number; known_s: number }>(
    `WITH d AS (SELECT id, greatest(created_at, $1::timestamptz) AS since FROM devices WHERE ($3::text IS NULL OR id = $3) AND created_at < $2::timestamptz),
     before AS (
       SELECT DISTINCT ON (e.device_id) e.device_id, e.type = 'device_connected' AS up
         FROM events e JOIN d ON d.id = e.device_id
        WHERE e.type IN ('device_connected', 'device_disconnected') AND e.created_at <= d.since
        ORDER BY e.device_id, e.created_at DESC, e.id DESC),
     marks AS (
       SELECT d.id AS device_id, d.since AS t, 0::bigint AS seq, coalesce(b.up, false) AS up
         FROM d LEFT JOIN before b ON b.device_id = d.id
       UNION ALL
       SELECT e.device_id, e.created_at, e.id, e.type = 'device_connected'
         FROM events e JOIN d ON d.id = e.device_id
        WHERE e.type IN ('device_connected', 'device_disconnected') AND e.created_at > d.since AND e.created_at <= $2::timestamptz),
     spans AS (
       SELECT device_id, up, extract(epoch FROM lead(t, 1, $2::timestamptz) OVER (PARTITION BY device_id ORDER BY t, seq) - t) AS s
         FROM marks)
     SELECT device_id, coalesce(sum(s) FILTER (WHERE up), 0)::float8 AS up_s, coalesce(sum(s), 0)::float8 AS known_s
       FROM spans GROUP BY device_id`,
    [start, now, deviceId ?? null],
  );
  return new Map(r.rows.map((x) => [x.device_id, { up_s: Number(x.up_s), known_s: Number(x.known_s) }]));
}

const ratio = (a: number, b: number) => (b > 0 ? Math.min(1, Math.max(0, a / b)) : null);

export async function deviceStats(q: Queryable, now: Date, deviceId?: string): Promise<DeviceStatsView[]> {
  const one = deviceId ?? null;
  const [devices, traffic, rot, up24, up7] = await Promise.all([
    q.query<{ id: string }>('SELECT id FROM devices WHERE $1::text IS NULL OR id = $1 ORDER BY name', [one]),
    trafficByDevice(q, now, one),
    q.query<{ device_id: string; succeeded: number; failed: number; expired: number }>(
      `SELECT device_id,
              (count(*) FILTER (WHERE status = 'succeeded'))::int AS succeeded,
              (count(*) FILTER (WHERE status = 'failed'))::int AS failed,
              (count(*) FILTER (WHERE status = 'expired'))::int AS expired
         FROM commands
        WHERE type = 'rotate_ip' AND status IN ('succeeded', 'failed', 'expired')
          AND finished_at > $1::timestamptz - interval '7 days' AND finished_at <= $1::timestamptz
          AND ($2::text IS NULL OR device_id = $2)
        GROUP BY device_id`,
      [now, one],
    ),
    uptimeOver(q, now, DAY_MS, deviceId),
    uptimeOver(q, now, 7 * DAY_MS, deviceId),
  ]);
  const rc = new Map(rot.rows.map((x) => [x.device_id, x]));
  return devices.rows.map(({ id }) => {
    const tr = traffic.get(id);
    const r = rc.get(id);
    const rotations = { succeeded: r?.succeeded ?? 0, failed: r?.failed ?? 0, expired: r?.expired ?? 0 };
    const u24 = up24.get(id);
    const u7 = up7.get(id);
    return {
      device_id: id,
      traffic_today_bytes: Number(tr?.today ?? 0),
      traffic_month_bytes: Number(tr?.month ?? 0),
      uptime_24h: u24 ? ratio(u24.up_s, u24.known_s) : null,
      uptime_7d: u7 ? ratio(u7.up_s, u7.known_s) : null,
      rotations_7d: rotations,
      rotation_success_rate_7d: ratio(rotations.succeeded, rotations.succeeded + rotations.failed + rotations.expired),
    };
  });
}
