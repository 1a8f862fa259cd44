// Dashboard totals (GET /api/overview): devices, connections, customers, traffic (usage.ts), recent events.
import type { Queryable } from '@pocketproxy/db';
import { trafficTotals } from './usage.js';

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
  const traffic = await trafficTotals(q, now);
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
    traffic,
    recent_events: ev.rows.map((e) => ({
      id: Number(e.id),
      type: e.type,
      device_id: e.device_id,
      data: e.data ?? {},
      created_at: new Date(e.created_at).toISOString(),
    })),
  };
}
