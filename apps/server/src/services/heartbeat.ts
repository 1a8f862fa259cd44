// The device heartbeat: the hottest API path (every device, every 30 s; goal ≥ 5,000/s on 2 cores).
// One statement records metrics, takes the commands to deliver and returns the previous status and
// address; state changes and usage rows, when there are any, follow in a transaction of their own.
import type { Ctx } from '../context.js';
import { apiError } from '../errors.js';
import { toCommand, type Row } from './rows.js';
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
  // The common case in ONE statement (one round trip, autocommit): record metrics, take the commands to
  // deliver, and read back the previous status/address and the credentials version. Relaxed durability:
  // a crash may forget a last-seen time, and the command it marks 'sent' is re-sent after two intervals.
  const r = await ctx.db.queryRelaxed<{ old_status: string; old_ip: string | null; cred_version: string; commands: Row[] }>(
    `WITH o AS (SELECT id, status, current_ip FROM devices WHERE id = $1),
     d AS (
       UPDATE devices d SET
         status = 'online', last_seen_at = $2, updated_at = $2,
         battery = coalesce($3, d.battery), charging = coalesce($4, d.charging), signal = coalesce($5, d.signal),
         carrier = coalesce($6, d.carrier), network_type = coalesce($7, d.network_type), agent_version = coalesce($8, d.agent_version)
       FROM o WHERE d.id = o.id RETURNING d.id),
     c AS (
       UPDATE commands SET status = 'sent', sent_at = $2
        WHERE device_id = $1 AND expires_at > $2
          AND (status = 'pending' OR (status = 'sent' AND sent_at < $2::timestamptz - make_interval(secs => $9)))
        RETURNING *)
     SELECT o.status AS old_status, o.current_ip AS old_ip,
       (SELECT count(*) || ':' || coalesce(extract(epoch FROM max(x.updated_at))::text, '0') FROM connections x WHERE x.device_id = $1) AS cred_version,
       (SELECT coalesce(json_agg(to_json(c) ORDER BY c.created_at), '[]'::json) FROM c) AS commands
     FROM o`,
    [deviceId, now, m.battery ?? null, m.charging ?? null, m.signal ?? null, m.carrier ?? null, m.network_type ?? null, hb.agent_version ?? null, ctx.config.heartbeatIntervalS * 2],
    { name: 'heartbeat_v1' },
  );
  const prev = r.rows[0];
  if (!prev) throw apiError('PP_ERR_API_NOT_FOUND', { what: 'device' });
  const cameOnline = prev.old_status !== 'online';
  const ipChanged = !!hb.public_ip && hb.public_ip !== prev.old_ip;
  // The rare parts (state changes, usage) in a transaction of their own.
  if (cameOnline || ipChanged || hb.usage.length) {
    await ctx.db.tx(async (q) => {
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
      if (cameOnline) await recordEvent(q, 'device_connected', deviceId, { via: 'heartbeat' }, now);
      if (ipChanged) await recordIpChange(ctx, q, deviceId, prev.old_ip, hb.public_ip!, 'observed');
    });
  }
  if (cameOnline) ctx.bus.publish('device_connected', { device_id: deviceId, via: 'heartbeat' }, now);
  const commands = prev.commands.map(toCommand);
  for (const c of commands) ctx.bus.publish('command_updated', c, now);
  ctx.bus.publish('heartbeat', { device_id: deviceId, metrics: m, current_ip: hb.public_ip ?? prev.old_ip, last_seen_at: now.toISOString() }, now);
  return { commands: commands.map((c) => ({ id: c.id, type: c.type, payload: c.payload })), heartbeat_interval_s: ctx.config.heartbeatIntervalS, credentials_version: prev.cred_version };
}
