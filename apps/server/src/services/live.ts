// When a connection's current state is in force (issue "Live control plane"): on its relay and on
// its device. The dashboard shows "live", or "pending" with the age of the change.
//
//   API change (updated_at) -> push -> relay answers /sync for a connected device -> relay_applied_at
//                                   -> device refetches, applies, POST .../credentials/applied -> device_applied_at
//   device reconnects -> vpn/connected answers its whole state -> relay_applied_at (routes/internal.ts)
import type { Ctx } from '../context.js';
import { credentialsVersion } from './connections.js';

/** Connections of the device changed at or before `upTo` are in force on its relay now. */
export async function markRelayApplied(ctx: Ctx, deviceId: string, upTo: Date): Promise<void> {
  await ctx.db.query(
    `UPDATE connections SET relay_applied_at = $2 WHERE device_id = $1 AND updated_at <= $3 AND (relay_applied_at IS NULL OR relay_applied_at < updated_at)`,
    [deviceId, ctx.clock.now(), upTo],
  );
}

/**
 * The agent applied the credentials of `version`. When that is the device's current version, every
 * connection of it is in force on the device; an older version (a change landed meanwhile) marks
 * nothing: the push of that change makes the agent fetch and report again.
 */
export async function markDeviceApplied(ctx: Ctx, deviceId: string, version: string): Promise<boolean> {
  const now = ctx.clock.now();
  return ctx.db.tx(async (q) => {
    if ((await credentialsVersion(q, deviceId, now)) !== version) return false;
    await q.query(`UPDATE connections SET device_applied_at = $2 WHERE device_id = $1 AND updated_at <= $2 AND (device_applied_at IS NULL OR device_applied_at < updated_at)`, [deviceId, now]);
    return true;
  });
}

/** What the connection object says about it (live = in force on both, with the device connected). */
export function liveState(r: Record<string, unknown>) {
  const changed = new Date(r.updated_at as string | Date).getTime();
  const at = (v: unknown) => (v == null ? null : new Date(v as string | Date));
  const relay = at(r.relay_applied_at);
  const device = at(r.device_applied_at);
  const live = Boolean(r.device_tunnel_connected) && relay !== null && device !== null && relay.getTime() >= changed && device.getTime() >= changed;
  return {
    state: (live ? 'live' : 'pending') as 'live' | 'pending',
    relay_applied_at: relay?.toISOString() ?? null,
    device_applied_at: device?.toISOString() ?? null,
  };
}
