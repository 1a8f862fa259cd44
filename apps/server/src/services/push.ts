// Push on change: when a device's connections change (created, edited, password, blocked, unblocked,
// deleted, device deleted), the API asks the relay that holds the device to apply it now
// (POST {push_url}/sync {device_id}); the relay refetches the device's forwarding and credentials,
// updates its firewall and tells the device, and answers {ok: true} once applied. That is what revokes
// a connection within a second. Best effort: called after commit, never inside a transaction, never
// failing the caller; the relay's forwarding poll (every 10 s) is the safety net.
import type { Ctx, PushClient } from '../context.js';
import { announceLive, markRelayApplied } from './live.js';

/** The push client over HTTP: POST {push_url}/push (a frame to a device) and /sync (apply a device's
 * changes), with the internal token, 2 s timeout each (context.ts PushClient). */
export const httpPushClient = (internalToken: string): PushClient => ({
  async push(pushUrl, deviceId, message) {
    const res = await fetch(`${pushUrl.replace(/\/$/, '')}/push`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${internalToken}` },
      body: JSON.stringify({ device_id: deviceId, message }),
      signal: AbortSignal.timeout(2000),
    });
    if (!res.ok) return false;
    const body = (await res.json()) as { delivered?: boolean };
    return body.delivered === true;
  },
  async sync(pushUrl, deviceId) {
    const res = await fetch(`${pushUrl.replace(/\/$/, '')}/sync`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${internalToken}` },
      body: JSON.stringify({ device_id: deviceId }),
      signal: AbortSignal.timeout(2000),
    });
    if (!res.ok) return false;
    const body = (await res.json()) as { ok?: boolean; connected?: boolean };
    return body.ok === true && body.connected === true;
  },
});

/** Most syncs in flight at once when a job changed many devices. */
const SYNC_CONCURRENCY = 16;

/** The relay push API of each device that has one (devices.relay_id → relays.push_url). */
export async function pushUrls(ctx: Ctx, deviceIds: readonly string[]): Promise<Map<string, string>> {
  if (!deviceIds.length) return new Map();
  const r = await ctx.db.query<{ id: string; push_url: string }>(
    'SELECT d.id, r.push_url FROM devices d JOIN relays r ON r.id = d.relay_id WHERE d.id = ANY($1::text[])',
    [[...deviceIds]],
  );
  return new Map(r.rows.map((x) => [x.id, x.push_url]));
}

/**
 * Tells the device's relay to apply its changed connections; true when the relay confirmed. Pass
 * `pushUrl` when the device row is already gone (device deletion looks it up before deleting).
 */
export async function syncDevice(ctx: Ctx, deviceId: string, pushUrl?: string | null): Promise<boolean> {
  try {
    const url = pushUrl === undefined ? (await pushUrls(ctx, [deviceId])).get(deviceId) : pushUrl;
    if (!url) return false;
    const asked = ctx.clock.now();
    const ok = await ctx.push.sync(url, deviceId);
    if (!ok)
      ctx.log.debug(
        { device_id: deviceId },
        "relay did not confirm the sync (device not connected there, or it failed); its poll or the device's reconnect applies the change",
      );
    // The relay fetched the device's state after `asked`: every change made before is in force there.
    else announceLive(ctx, deviceId, await markRelayApplied(ctx, deviceId, asked));
    return ok;
  } catch (err) {
    ctx.log.debug({ err, device_id: deviceId }, 'relay sync failed; its poll applies the change');
    return false;
  }
}

/**
 * Tells devices through their relay (`pushUrl`) that their tunnel parameters changed (relay moved,
 * or its address, port or key changed): each agent asks GET /api/devices/:id/tunnel again and
 * restarts its tunnel if they did. Best effort, a few at a time; an agent without a session asks
 * by itself after a minute. Returns how many were delivered.
 */
export async function tellTunnelChanged(ctx: Ctx, deviceIds: readonly string[], pushUrl: string): Promise<number> {
  const queue = [...deviceIds];
  let delivered = 0;
  const run = async () => {
    for (let id = queue.shift(); id !== undefined; id = queue.shift()) {
      if (await ctx.push.push(pushUrl, id, { kind: 'control', type: 'tunnel_changed' }).catch(() => false)) delivered++;
    }
  };
  await Promise.all(Array.from({ length: Math.min(SYNC_CONCURRENCY, queue.length) }, run));
  return delivered;
}

/** syncDevices, waiting at most `waitMs` for it (worker jobs); the rest goes on in the background. */
export async function syncDevicesWithin(ctx: Ctx, deviceIds: Iterable<string>, waitMs: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<void>((resolve) => {
    timer = setTimeout(resolve, waitMs);
    timer.unref();
  });
  await Promise.race([syncDevices(ctx, deviceIds), deadline]);
  clearTimeout(timer);
}

/** syncDevice for many devices (worker jobs), a few at a time; never throws. */
export async function syncDevices(ctx: Ctx, deviceIds: Iterable<string>): Promise<void> {
  const ids = [...new Set(deviceIds)];
  if (!ids.length) return;
  let urls: Map<string, string>;
  try {
    urls = await pushUrls(ctx, ids);
  } catch (err) {
    ctx.log.debug({ err, devices: ids.length }, 'relay sync skipped: push URLs not readable; the relays poll');
    return;
  }
  const queue = ids.filter((id) => urls.has(id));
  const run = async () => {
    for (let id = queue.shift(); id !== undefined; id = queue.shift()) await syncDevice(ctx, id, urls.get(id)!);
  };
  await Promise.all(Array.from({ length: Math.min(SYNC_CONCURRENCY, queue.length) }, run));
}
