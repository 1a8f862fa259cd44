// When a connection's current state is in force (issue "Live control plane"): on its relay and on
// its device. The dashboard shows "live", or "pending" with the age of the change.
//
//   API change (updated_at) -> push -> relay answers /sync for a connected device -> relay_applied_at
//                                   -> device refetches, applies, POST .../credentials/applied -> device_applied_at
//   device reconnects -> vpn/connected answers its whole state -> relay_applied_at (routes/internal.ts)
import type { Queryable } from '@pocketproxy/db';
import type { Ctx } from '../context.js';
import { credentialsVersion } from './connections.js';

/**
 * Connections of the device changed at or before `upTo` are in force on its relay now. Returns
 * the ones that were not before (announce them with `announceLive`).
 */
export async function markRelayApplied(
  ctx: Ctx,
  deviceId: string,
  upTo: Date,
  q: Queryable = ctx.db,
): Promise<string[]> {
  const r = await q.query<{ id: string }>(
    `UPDATE connections SET relay_applied_at = $2
     WHERE device_id = $1 AND updated_at <= $3 AND (relay_applied_at IS NULL OR relay_applied_at < updated_at) RETURNING id`,
    [deviceId, ctx.clock.now(), upTo],
  );
  return r.rows.map((x) => x.id);
}

/** Dashboards reload a connection on connection_updated: its live state moved. */
export function announceLive(ctx: Ctx, deviceId: string, ids: readonly string[]): void {
  const now = ctx.clock.now();
  for (const id of ids) ctx.bus.publish('connection_updated', { id, device_id: deviceId, live: true }, now);
}

/**
 * The agent applied the credentials of `version`. When that is the device's current version, every
 * connection of it is in force on the device; an older version (a change landed meanwhile) marks
 * nothing: the push of that change makes the agent fetch and report again.
 */
export async function markDeviceApplied(ctx: Ctx, deviceId: string, version: string): Promise<boolean> {
  const now = ctx.clock.now();
  const ids = await ctx.db.tx(async (q) => {
    if ((await credentialsVersion(q, deviceId, now)) !== version) return null;
    const r = await q.query<{ id: string }>(
      `UPDATE connections SET device_applied_at = $2
       WHERE device_id = $1 AND updated_at <= $2 AND (device_applied_at IS NULL OR device_applied_at < updated_at) RETURNING id`,
      [deviceId, now],
    );
    return r.rows.map((x) => x.id);
  });
  if (ids === null) return false;
  announceLive(ctx, deviceId, ids);
  return true;
}

/** What the connection object says about it (live = in force on both, with the device connected). */
export function liveState(r: Record<string, unknown>) {
  const changed = new Date(r.updated_at as string | Date).getTime();
  const at = (v: unknown) => (v == null ? null : new Date(v as string | Date));
  const relay = at(r.relay_applied_at);
  const device = at(r.device_applied_at);
  const live =
    Boolean(r.device_tunnel_connected) &&
    relay !== null &&
    device !== null &&
    relay.getTime() >= changed &&
    device.getTime() >= changed;
  return {
    state: (live ? 'live' : 'pending') as 'live' | 'pending',
    relay_applied_at: relay?.toISOString() ?? null,
    device_applied_at: device?.toISOString() ?? null,
  };
}
