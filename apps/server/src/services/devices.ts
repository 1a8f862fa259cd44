// Devices: creation (by pairing or by an admin), reads, updates, deletion, heartbeat.
import { randomBytes } from 'node:crypto';
import { encodeKey, generateKeyPair } from '@pocketproxy/protocol';
import type { Queryable } from '@pocketproxy/db';
import type { Ctx } from '../context.js';
import { apiError } from '../errors.js';
import { newId, randomToken, sha256 } from '../security/crypto.js';
import { freePort } from './ports.js';
import { allocateVpnIp } from './ipam.js';
import { audit, recordEvent } from './audit.js';
import { toDevice, toIpHistory, type Row } from './rows.js';
import { defaultRelay, getRelay } from './relays.js';
import { pushUrls, syncDevice, tellTunnelChanged } from './push.js';
import { setRotationSchedule } from './rotation.js';

export type DeviceView = ReturnType<typeof toDevice>;

/** A device row with its farm host's name (toDevice's farm_host_name); filters name the device's columns `d.`. */
export const DEVICE_SELECT =
  'SELECT d.*, fh.name AS farm_host_name FROM devices d LEFT JOIN farm_hosts fh ON fh.id = d.farm_host_id';

/** What a farm host's enrollment adds to a device (services/enrollment.ts; migration 019). */
export interface FarmDeviceInput {
  hostId: string;
  hostName: string;
  kind: 'phone' | 'modem';
  hardwareId: string;
  model: string | null;
}

export interface DeviceSecrets {
  device: DeviceView;
  auth_token: string;
  psk: string;
  /** Only when the server generated the key pair (the agent sent no public key). */
  private_key?: string;
  relay: { id: string; host: string; port: number; public_key: string | null };
}

/** X25519 key pair as raw 32-byte base64 (the tunnel protocol's encoding). */
export function x25519KeyPair(): { publicKey: string; privateKey: string } {
  const kp = generateKeyPair();
  return { publicKey: encodeKey(kp.publicKey), privateKey: encodeKey(kp.privateKey) };
}

async function uniqueName(q: Queryable, wanted: string): Promise<string> {
  const taken = new Set(
    (
      await q.query<{ name: string }>(`SELECT name FROM devices WHERE name = $1 OR name LIKE $2`, [
        wanted,
        `${wanted}-%`,
      ])
    ).rows.map((r) => r.name),
  );
  if (!taken.has(wanted)) return wanted;
  for (let i = 2; ; i++) if (!taken.has(`${wanted}-${i}`)) return `${wanted}-${i}`;
}

export async function createDevice(
  ctx: Ctx,
  q: Queryable,
  input: {
    name?: string | undefined;
    description?: string;
    relayId?: string | undefined;
    publicKey?: string | undefined;
    agentVersion?: string | undefined;
    strictName?: boolean;
    farm?: FarmDeviceInput;
  },
  actor: string,
): Promise<DeviceSecrets> {
  const relay = input.relayId ? await getRelay(q, input.relayId) : await defaultRelay(q);
  if (!relay) throw apiError('PP_ERR_API_NOT_FOUND', { what: 'relay' });
  if (input.publicKey) {
    const dup = await q.query('SELECT 1 FROM devices WHERE public_key = $1', [input.publicKey]);
    if (dup.rows.length)
      throw apiError('PP_ERR_API_CONFLICT', { detail: 'a device with this public key is already paired' });
  }
  const id = newId('dev');
  let name = input.name ?? `device-${id.slice(4, 10).toLowerCase()}`;
  if (input.strictName) {
    const dup = await q.query('SELECT 1 FROM devices WHERE name = $1', [name]);
    if (dup.rows.length) throw apiError('PP_ERR_API_CONFLICT', { detail: `a device named "${name}" already exists` });
  } else {
    name = await uniqueName(q, name);
  }
  const token = randomToken();
  const psk = randomBytes(32).toString('base64');
  let keys: { publicKey: string; privateKey?: string } = { publicKey: input.publicKey ?? '' };
  if (!input.publicKey) keys = x25519KeyPair();
  const vpnIp = await allocateVpnIp(q, ctx.config.deviceSubnet);
  const now = ctx.clock.now();
  const r = await q.query<Row>(
    `INSERT INTO devices (id, name, description, relay_id, vpn_ip, token_hash, public_key, psk_enc, agent_version,
                          farm_host_id, kind, hardware_id, model, paired_at, created_at, updated_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $11, $12, $13, $14, $10, $10, $10) RETURNING *`,
    [
      id,
      name,
      input.description ?? '',
      relay.id,
      vpnIp,
      sha256(token),
      keys.publicKey,
      ctx.box.seal(psk),
      input.agentVersion ?? null,
      now,
      input.farm?.hostId ?? null,
      input.farm?.kind ?? 'device',
      input.farm?.hardwareId ?? null,
      input.farm?.model ?? null,
    ],
  );
  await audit(q, actor, 'device.create', id, { name, relay_id: relay.id });
  await recordEvent(q, 'device_paired', id, { name }, now);
  const out: DeviceSecrets = {
    device: toDevice({ ...r.rows[0]!, farm_host_name: input.farm?.hostName ?? null }),
    auth_token: token,
    psk,
    relay: { id: relay.id, host: relay.host, port: relay.tunnel_port, public_key: relay.public_key },
  };
  if (keys.privateKey) out.private_key = keys.privateKey;
  return out;
}

/** An admin registers a device by hand (POST /api/devices): created with a unique name, then announced to
 * its relay after commit, so its key is known there before the device first dials. */
export async function addDevice(
  ctx: Ctx,
  input: { name: string; description?: string; relay_id?: string | undefined },
  actor: string,
): Promise<DeviceSecrets> {
  const s = await ctx.db.tx((q) =>
    createDevice(
      ctx,
      q,
      { name: input.name, description: input.description, relayId: input.relay_id, strictName: true },
      actor,
    ),
  );
  await announceDevice(ctx, s.device.id); // never fails this call
  return s;
}

/** How long the API call waits for the relay to take a new or moved device (then it finishes on its own). */
const ANNOUNCE_WAIT_MS = 1_000;

/**
 * After commit: tells the device's relay (or the one at `pushUrl`: the relay it left) that the device is
 * new, moved or gone, so the relay refreshes its peer list at once (POST /sync; push.ts) — a freshly
 * paired device's first initiation is answered instead of dropped. Waits for the relay's answer at most
 * ANNOUNCE_WAIT_MS; never throws (the relay's own refresh of unknown keys is the safety net).
 */
export async function announceDevice(ctx: Ctx, deviceId: string, pushUrl?: string | null): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const waited = new Promise<void>((r) => {
    timer = setTimeout(r, ANNOUNCE_WAIT_MS);
  });
  await Promise.race([syncDevice(ctx, deviceId, pushUrl), waited]);
  clearTimeout(timer);
}

export async function getDevice(q: Queryable, id: string): Promise<DeviceView> {
  const r = await q.query<Row>(`${DEVICE_SELECT} WHERE d.id = $1`, [id]);
  if (!r.rows[0]) throw apiError('PP_ERR_API_NOT_FOUND', { what: 'device' });
  return toDevice(r.rows[0]);
}

export async function listDevices(
  q: Queryable,
  f: {
    status?: string | undefined;
    q?: string | undefined;
    farm_host_id?: string | undefined;
    limit: number;
    offset: number;
  },
) {
  const where: string[] = [];
  const params: unknown[] = [];
  if (f.status) {
    params.push(f.status);
    where.push(`d.status = $${params.length}`);
  }
  if (f.farm_host_id) {
    params.push(f.farm_host_id);
    where.push(`d.farm_host_id = $${params.length}`);
  }
  if (f.q) {
    params.push(`%${f.q.replace(/[\\%_]/g, (c) => `\\${c}`)}%`);
    where.push(
      // a farm device is also found by its serial / IMEI or model, whatever it was renamed to
      `(d.name ILIKE $${params.length} OR d.id ILIKE $${params.length} OR coalesce(d.current_ip,'') ILIKE $${params.length} OR coalesce(d.carrier,'') ILIKE $${params.length}` +
        ` OR coalesce(d.hardware_id,'') ILIKE $${params.length} OR coalesce(d.model,'') ILIKE $${params.length})`,
    );
  }
  const w = where.length ? `WHERE ${where.join(' AND ')}` : '';
  const total = await q.query<{ n: number }>(`SELECT count(*)::int AS n FROM devices d ${w}`, params);
  params.push(f.limit, f.offset);
  const rows = await q.query<Row>(
    `${DEVICE_SELECT} ${w} ORDER BY d.name LIMIT $${params.length - 1} OFFSET $${params.length}`,
    params,
  );
  return { items: rows.rows.map(toDevice), total: total.rows[0]!.n };
}

export async function updateDevice(
  ctx: Ctx,
  id: string,
  patch: {
    name?: string | undefined;
    description?: string | undefined;
    relay_id?: string | undefined;
    rotation_interval_s?: number | null | undefined;
  },
  actor: string,
): Promise<DeviceView> {
  // A move to another relay: both relays hear of it after commit (the old one ends its session).
  let leftRelay: { pushUrl: string | null } | undefined;
  const out = await ctx.db.tx(async (q) => {
    const cur = await q.query<Row>('SELECT * FROM devices WHERE id = $1 FOR UPDATE', [id]);
    if (!cur.rows[0]) throw apiError('PP_ERR_API_NOT_FOUND', { what: 'device' });
    const oldRelay = cur.rows[0].relay_id as string | null;
    if (patch.relay_id !== undefined && patch.relay_id !== oldRelay) {
      leftRelay = {
        pushUrl: oldRelay
          ? ((await q.query<{ push_url: string }>('SELECT push_url FROM relays WHERE id = $1', [oldRelay])).rows[0]
              ?.push_url ?? null)
          : null,
      };
    }
    if (patch.name !== undefined) {
      const dup = await q.query('SELECT 1 FROM devices WHERE name = $1 AND id <> $2', [patch.name, id]);
      if (dup.rows.length)
        throw apiError('PP_ERR_API_CONFLICT', { detail: `a device named "${patch.name}" already exists` });
    }
    if (patch.relay_id !== undefined && !(await getRelay(q, patch.relay_id)))
      throw apiError('PP_ERR_API_NOT_FOUND', { what: 'relay' });
    const now = ctx.clock.now();
    // The rotation schedule is the rotation flow's (rotation.ts), in this same transaction.
    if (patch.rotation_interval_s !== undefined) await setRotationSchedule(q, id, patch.rotation_interval_s, now);
    const r = await q.query<Row>(
      `UPDATE devices SET
         name = coalesce($2, name), description = coalesce($3, description), relay_id = coalesce($4, relay_id),
         updated_at = $5
       WHERE id = $1 RETURNING *`,
      [id, patch.name ?? null, patch.description ?? null, patch.relay_id ?? null, now],
    );
    await audit(q, actor, 'device.update', id, patch);
    const d = toDevice({ ...r.rows[0]!, farm_host_name: await farmHostName(q, r.rows[0]!.farm_host_id) });
    ctx.bus.publish('device_updated', d, now);
    return d;
  });
  if (leftRelay) {
    // The new relay learns the device, and the device (still on the old relay's tunnel) learns that
    // it moved, before the old relay lets it go.
    await Promise.all([
      announceDevice(ctx, id),
      leftRelay.pushUrl ? tellTunnelChanged(ctx, [id], leftRelay.pushUrl) : undefined,
    ]);
    if (leftRelay.pushUrl) await announceDevice(ctx, id, leftRelay.pushUrl);
  }
  return out;
}

async function farmHostName(q: Queryable, farmHostId: unknown): Promise<string | null> {
  if (farmHostId == null) return null;
  return (
    (await q.query<{ name: string }>('SELECT name FROM farm_hosts WHERE id = $1', [farmHostId])).rows[0]?.name ?? null
  );
}

export async function deleteDevice(ctx: Ctx, id: string, actor: string): Promise<void> {
  // Its relay is looked up first: after the delete the row that names it is gone.
  const pushUrl = (await pushUrls(ctx, [id])).get(id) ?? null;
  await ctx.db.tx(async (q) => {
    const conns = await q.query<{ id: string }>('SELECT id FROM connections WHERE device_id = $1', [id]);
    const r = await q.query('DELETE FROM devices WHERE id = $1', [id]);
    if (!r.rowCount) throw apiError('PP_ERR_API_NOT_FOUND', { what: 'device' });
    for (const c of conns.rows) await freePort(q, c.id);
    await audit(q, actor, 'device.delete', id);
  });
  ctx.bus.publish('device_updated', { id, deleted: true }, ctx.clock.now());
  await syncDevice(ctx, id, pushUrl);
}

/** Public addresses the device has had, newest first (GET /api/devices/:id/ip-history). */
export async function ipHistory(q: Queryable, deviceId: string, limit: number, offset: number) {
  await getDevice(q, deviceId);
  const rows = await q.query<Row>('SELECT * FROM ip_history WHERE device_id = $1 ORDER BY id DESC LIMIT $2 OFFSET $3', [
    deviceId,
    limit,
    offset,
  ]);
  return { items: rows.rows.map(toIpHistory) };
}

/** Where and how a device opens its tunnel (GET /api/devices/:id/tunnel): its relay's address, port and
 * key with the server key's endorsement, its vpn_ip, MTU and subnet. */
export async function deviceTunnel(ctx: Ctx, deviceId: string) {
  const d = (
    await ctx.db.query<{
      vpn_ip: string;
      host: string | null;
      tunnel_port: number | null;
      public_key: string | null;
      max_lanes: number | null;
    }>(
      'SELECT d.vpn_ip, r.host, r.tunnel_port, r.public_key, r.max_lanes FROM devices d LEFT JOIN relays r ON r.id = d.relay_id WHERE d.id = $1',
      [deviceId],
    )
  ).rows[0]!;
  const endorsement = d.public_key ? ctx.serverKey.endorseRelayKey(deviceId, d.public_key) : null;
  return {
    relay: {
      host: d.host ?? ctx.config.publicHost,
      port: d.tunnel_port ?? ctx.config.tunnelPort,
      public_key: d.public_key,
      public_key_endorsement: endorsement,
      max_lanes: d.max_lanes ?? 1,
    },
    vpn_ip: d.vpn_ip,
    mtu: ctx.config.tunnelMtu,
    subnet: ctx.config.deviceSubnet,
  };
}

/** The peers a relay's tunnel knows (GET /api/internal/tunnel/peers): every device of the relay with its
 * key, PSK and vpn_ip; with `deviceId`, only that device if it is this relay's. */
export async function relayPeers(ctx: Ctx, relayId: string, deviceId: string | null) {
  const rows = await ctx.db.query<{ id: string; public_key: string; psk_enc: string; vpn_ip: string }>(
    'SELECT id, public_key, psk_enc, vpn_ip FROM devices WHERE relay_id = $1 AND public_key IS NOT NULL AND ($2::text IS NULL OR id = $2)',
    [relayId, deviceId],
  );
  return {
    items: rows.rows.map((d) => ({
      device_id: d.id,
      public_key: d.public_key,
      psk: ctx.box.open(d.psk_enc),
      vpn_ip: d.vpn_ip,
    })),
  };
}

export async function recordIpChange(
  ctx: Ctx,
  q: Queryable,
  deviceId: string,
  oldIp: string | null,
  newIp: string,
  reason: string,
): Promise<void> {
  const now = ctx.clock.now();
  await q.query('UPDATE devices SET current_ip = $2, updated_at = $3 WHERE id = $1', [deviceId, newIp, now]);
  await q.query('INSERT INTO ip_history (device_id, old_ip, new_ip, reason, changed_at) VALUES ($1, $2, $3, $4, $5)', [
    deviceId,
    oldIp,
    newIp,
    reason,
    now,
  ]);
  await recordEvent(q, 'ip_changed', deviceId, { old_ip: oldIp, new_ip: newIp, reason }, now);
  ctx.bus.publish('ip_changed', { device_id: deviceId, old_ip: oldIp, new_ip: newIp, reason }, now);
}

/**
 * The address a heartbeat reports (docs/design.md §2.7): a change is recorded ('observed') only when it
 * differs from the device's current_ip as it is now (read under the row's lock, so a rotation result
 * committed since the heartbeat's batch read it is seen) and no rotation is running on the device: the
 * rotation's result records that change, once, as 'rotation'. Returns whether a change was recorded.
 */
export async function recordObservedIp(ctx: Ctx, q: Queryable, deviceId: string, ip: string): Promise<boolean> {
  const cur = (
    await q.query<{ current_ip: string | null; rotating: boolean }>(
      `SELECT current_ip, EXISTS (SELECT 1 FROM commands c WHERE c.device_id = d.id AND c.type = 'rotate_ip'
          AND c.status = 'acked' AND c.expires_at > $2) AS rotating
         FROM devices d WHERE d.id = $1 FOR UPDATE`,
      [deviceId, ctx.clock.now()],
    )
  ).rows[0];
  if (!cur || cur.current_ip === ip || cur.rotating) return false;
  await recordIpChange(ctx, q, deviceId, cur.current_ip, ip, 'observed');
  return true;
}

/**
 * A rotation's result (`old_ip` → `new_ip`, commands.ts): one IP change, reason 'rotation'. When a
 * heartbeat already recorded the same new address as 'observed' since the command was created (an agent
 * that reported it before the command was acked), that row and its event become the rotation's instead
 * of a second change.
 */
export async function recordRotationIp(
  ctx: Ctx,
  q: Queryable,
  deviceId: string,
  oldIp: string | null,
  newIp: string,
  since: Date,
): Promise<void> {
  const cur = (
    await q.query<{ current_ip: string | null }>('SELECT current_ip FROM devices WHERE id = $1 FOR UPDATE', [deviceId])
  ).rows[0];
  if (cur?.current_ip === newIp) {
    const seen = await q.query<{ id: string; old_ip: string | null; changed_at: Date }>(
      `UPDATE ip_history SET reason = 'rotation'
        WHERE id = (SELECT id FROM ip_history WHERE device_id = $1 ORDER BY id DESC LIMIT 1)
          AND reason = 'observed' AND new_ip = $2 AND changed_at >= $3
        RETURNING id, old_ip, changed_at`,
      [deviceId, newIp, since],
    );
    const row = seen.rows[0];
    if (row) {
      await q.query(
        `UPDATE events SET data = jsonb_set(data, '{reason}', '"rotation"')
          WHERE id = (SELECT id FROM events WHERE device_id = $1 AND type = 'ip_changed' ORDER BY id DESC LIMIT 1)
            AND data->>'new_ip' = $2 AND data->>'reason' = 'observed'`,
        [deviceId, newIp],
      );
      const data = { device_id: deviceId, old_ip: row.old_ip, new_ip: newIp, reason: 'rotation' };
      ctx.bus.publish('ip_changed', data, ctx.clock.now());
      return;
    }
  }
  await recordIpChange(ctx, q, deviceId, oldIp, newIp, 'rotation');
}
