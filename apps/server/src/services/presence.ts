// Device presence: the one place that sets devices.status, tunnel_connected and last_seen_at, and emits
// what each change means (a `device_connected` / `device_disconnected` event row, its webhooks, and the
// bus event after commit). Four sources (docs/design.md §2.2):
//
//   tunnel session up      POST /api/internal/vpn/connected     tunnelConnected   online, tunnel on, seen now
//   tunnel session gone    POST /api/internal/vpn/disconnected  tunnelDisconnected offline, tunnel off
//   heartbeat              POST /api/devices/:id/heartbeat      HEARTBEAT_SEEN (the batch's statement),
//                                                               then heartbeatSeen for the event
//   silence                the worker's staleDevices job        sweepStale        offline, tunnel off
//
// Events: device_connected is recorded (event row, webhooks) only when the device was offline before,
// whichever source brought it online first — a heartbeat (via 'heartbeat') or a tunnel session (via
// 'tunnel') — so a device whose heartbeat and tunnel both arrive is announced once (issue 12: each connect
// appeared twice in the feed). A tunnel session of a device already online still goes on the bus (its
// tunnel is up: live state), without a row. tunnelDisconnected and sweepStale only when the device was
// online or connected before, so a device gone twice is announced once.
import type { Queryable } from '@pocketproxy/db';
import type { Ctx } from '../context.js';
import { apiError } from '../errors.js';
import { recordEvent } from './audit.js';
import { deviceCredentials, deviceForwarding } from './connections.js';
import { announceLive, markRelayApplied } from './live.js';

export type Presence = 'online' | 'offline';

/**
 * The presence part of the heartbeat's group-commit statement (heartbeat-batch.ts): a SET list for
 * `UPDATE devices d`, `at` the SQL expression of the batch's time. Kept here so every write of presence
 * is in this file; heartbeatSeen emits what it means.
 */
export const HEARTBEAT_SEEN = (at: string) => `status = 'online', last_seen_at = ${at}`;

/** Whether the heartbeat that found the device in `oldStatus` (as its statement read it) brought it online. */
export function heartbeatBringsOnline(oldStatus: string | null): boolean {
  return oldStatus !== 'online';
}

/** When it did: the device_connected event (via 'heartbeat'), inside the heartbeat's transaction ... */
export async function heartbeatSeen(q: Queryable, deviceId: string, now: Date): Promise<void> {
  await recordEvent(q, 'device_connected', deviceId, { via: 'heartbeat' }, now);
}
/** ... and on the bus after commit. */
export function announceHeartbeatSeen(ctx: Ctx, deviceId: string, now: Date): void {
  ctx.bus.publish('device_connected', { device_id: deviceId, via: 'heartbeat' }, now);
}

export interface TunnelConnected {
  deviceId: string;
  relayId?: string | undefined;
  /** The relay's description of the device's endpoint: "tcp/<address>" or "<address>:<port>" (UDP). */
  endpoint?: string | undefined;
}

/**
 * A relay reports a device's tunnel session up: online, tunnel connected, seen now, on that relay,
 * with its transport; device_connected (via 'tunnel'), recorded when it was offline. Answers what the
 * relay applies at once — the device's forwarding and credential items — so every connection as it is
 * now counts as in force on the relay (live.ts), all in one transaction.
 */
export async function tunnelConnected(ctx: Ctx, input: TunnelConnected) {
  const now = ctx.clock.now();
  const res = await ctx.db.tx(async (q) => {
    const prev = (
      await q.query<{ status: string; vpn_ip: string }>('SELECT status, vpn_ip FROM devices WHERE id = $1 FOR UPDATE', [
        input.deviceId,
      ])
    ).rows[0];
    if (!prev) throw apiError('PP_ERR_API_NOT_FOUND', { what: 'device' });
    const transport = input.endpoint === undefined ? null : input.endpoint.startsWith('tcp/') ? 'tcp' : 'udp';
    await q.query(
      `UPDATE devices SET tunnel_connected = true, status = 'online', last_seen_at = $2, updated_at = $2, relay_id = coalesce($3, relay_id), tunnel_transport = coalesce($4, tunnel_transport) WHERE id = $1`,
      [input.deviceId, now, input.relayId ?? null, transport],
    );
    // The relay applies what this answer carries right away: every connection as it is now is in force there.
    const applied = await markRelayApplied(ctx, input.deviceId, now, q);
    if (prev.status !== 'online')
      await recordEvent(
        q,
        'device_connected',
        input.deviceId,
        { via: 'tunnel', endpoint: input.endpoint ?? null },
        now,
      );
    return {
      prev,
      applied,
      connections: await deviceForwarding(ctx, q, input.deviceId),
      credentials: await deviceCredentials(ctx, q, input.deviceId),
    };
  });
  ctx.bus.publish('device_connected', { device_id: input.deviceId, via: 'tunnel', vpn_ip: res.prev.vpn_ip }, now);
  announceLive(ctx, input.deviceId, res.applied);
  return {
    vpn_ip: res.prev.vpn_ip,
    connections: res.connections,
    credentials: res.credentials.items,
    credentials_version: res.credentials.version,
  };
}

/** A relay reports a device's tunnel session gone: offline, tunnel off; device_disconnected (via 'tunnel')
 * only when it was online or connected. Returns whether anything changed. */
export async function tunnelDisconnected(ctx: Ctx, deviceId: string, reason: string): Promise<boolean> {
  const now = ctx.clock.now();
  const changed = await ctx.db.tx(async (q) => {
    const r0 = await q.query(
      `UPDATE devices SET tunnel_connected = false, status = 'offline', updated_at = $2 WHERE id = $1 AND (tunnel_connected OR status = 'online')`,
      [deviceId, now],
    );
    if (r0.rowCount) await recordEvent(q, 'device_disconnected', deviceId, { via: 'tunnel', reason }, now);
    return r0.rowCount > 0;
  });
  if (changed) ctx.bus.publish('device_disconnected', { device_id: deviceId, reason }, now);
  return changed;
}

/**
 * The worker's sweep (inside its job transaction): devices online but silent for longer than
 * staleAfterS go offline, tunnel off, each with device_disconnected (reason 'stale'); `after` publishes
 * the bus events once the job committed.
 */
export async function sweepStale(ctx: Ctx, q: Queryable, now: Date) {
  const r = await q.query<{ id: string }>(
    `UPDATE devices SET status = 'offline', tunnel_connected = false, updated_at = $1
      WHERE status = 'online' AND (last_seen_at IS NULL OR last_seen_at < $1::timestamptz - make_interval(secs => $2)) RETURNING id`,
    [now, ctx.config.staleAfterS],
  );
  for (const d of r.rows)
    await recordEvent(q, 'device_disconnected', d.id, { reason: 'stale', silent_for_s: ctx.config.staleAfterS }, now);
  return {
    changed: r.rowCount,
    after: () => {
      for (const d of r.rows) ctx.bus.publish('device_disconnected', { device_id: d.id, reason: 'stale' }, now);
    },
  };
}
