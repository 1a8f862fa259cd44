// The device heartbeat: the hottest API path (every device, every 30 s; goal ≥ 5,000/s on 2 cores).
// One UPDATE records metrics and returns the previous status and address; one UPDATE takes the
// commands to deliver. Usage rows are written only when the device reports some.
import type { Ctx } from '../context.js';
import { takeForDelivery } from './commands.js';
import { recordIpChange } from './devices.js';
import { recordEvent } from './audit.js';

export interface HeartbeatInput {
  metrics: { battery?: number | null | undefined; charging?: boolean | null | undefined; signal?: number | null | undefined; carrier?: string | null | undefined; network_type?: string | null | undefined };
  public_ip?: string | null | undefined;
  agent_version?: string | undefined;
  usage: { connection_id: string; bytes_in: number; bytes_out: number }[];
}

export async function heartbeat(ctx: Ctx, deviceId: string, hb: HeartbeatInput) {
  const now = ctx.clock.now();
  const m = hb.metrics;
  const res = await ctx.db.tx(async (q) => {
    const r = await q.query<{ old_status: string; old_ip: string | null; cred_version: string }>(
      `UPDATE devices d SET
         status = 'online', last_seen_at = $2, updated_at = $2,
         battery = coalesce($3, d.battery), charging = coalesce($4, d.charging), signal = coalesce($5, d.signal),
         carrier = coalesce($6, d.carrier), network_type = coalesce($7, d.network_type), agent_version = coalesce($8, d.agent_version)
       FROM (SELECT id, status, current_ip FROM devices WHERE id = $1 FOR UPDATE) o
       WHERE d.id = o.id
       RETURNING o.status AS old_status, o.current_ip AS old_ip,
         (SELECT count(*) || ':' || coalesce(extract(epoch FROM max(c.updated_at))::text, '0') FROM connections c WHERE c.device_id = d.id) AS cred_version`,
      [deviceId, now, m.battery ?? null, m.charging ?? null, m.signal ?? null, m.carrier ?? null, m.network_type ?? null, hb.agent_version ?? null],
    );
    const prev = r.rows[0]!;
    const commands = await takeForDelivery(q, deviceId, now, ctx.config.heartbeatIntervalS * 2);
    if (hb.usage.length) {
      const hour = new Date(Math.floor(now.getTime() / 3_600_000) * 3_600_000);
      await q.query(
        `INSERT INTO usage_hourly (connection_id, device_id, hour, source, bytes_in, bytes_out)
         SELECT u.connection_id, $1, $2, 'agent', u.bytes_in, u.bytes_out
           FROM jsonb_to_recordset($3::jsonb) AS u(connection_id text, bytes_in bigint, bytes_out bigint)
           JOIN connections c ON c.id = u.connection_id AND c.device_id = $1
         ON CONFLICT (connection_id, source, hour) DO UPDATE
           SET bytes_in = usage_hourly.bytes_in + excluded.bytes_in, bytes_out = usage_hourly.bytes_out + excluded.bytes_out`,
        [deviceId, hour, JSON.stringify(hb.usage)],
      );
    }
    if (prev.old_status !== 'online') await recordEvent(q, 'device_connected', deviceId, { via: 'heartbeat' }, now);
    if (hb.public_ip && hb.public_ip !== prev.old_ip) await recordIpChange(ctx, q, deviceId, prev.old_ip, hb.public_ip, 'observed');
    return { prev, commands };
  });
  if (res.prev.old_status !== 'online') ctx.bus.publish('device_connected', { device_id: deviceId, via: 'heartbeat' }, now);
  ctx.bus.publish('heartbeat', { device_id: deviceId, metrics: m, current_ip: hb.public_ip ?? res.prev.old_ip, last_seen_at: now.toISOString() }, now);
  return { commands: res.commands, heartbeat_interval_s: ctx.config.heartbeatIntervalS, credentials_version: res.prev.cred_version };
}
