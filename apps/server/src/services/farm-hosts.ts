// Farm hosts (issue 14, docs/design.md §2.11): the Linux boxes running `pocketproxy-agent farm`, created by
// their first enrollment (enrollment.ts). Lists with device counts, one host with its devices, rename,
// and the bulk rotation of a host's devices, through the one rotation path (rotation.ts rotateMany).
import type { Queryable } from '@pocketproxy/db';
import type { Ctx } from '../context.js';
import { apiError } from '../errors.js';
import { audit } from './audit.js';
import { DEVICE_SELECT } from './devices.js';
import { rotateMany } from './rotation.js';
import { type Row, iso, isoReq, toDevice } from './rows.js';

// last_seen_at: the host's own mark is its last enrollment; its devices' heartbeats say more, and the
// heartbeat is not slowed down to keep a second copy up to date.
const HOST_SELECT = `SELECT fh.id, fh.name, fh.enrollment_token_id, fh.created_at,
    greatest(fh.last_seen_at, max(d.last_seen_at)) AS last_seen_at,
    count(d.id)::int AS devices, (count(d.id) FILTER (WHERE d.status = 'online'))::int AS online
  FROM farm_hosts fh LEFT JOIN devices d ON d.farm_host_id = fh.id`;

function toFarmHost(r: Row) {
  return {
    id: r.id as string,
    name: r.name as string,
    enrollment_token_id: (r.enrollment_token_id as string | null) ?? null,
    created_at: isoReq(r.created_at),
    last_seen_at: iso(r.last_seen_at),
    devices: Number(r.devices ?? 0),
    online: Number(r.online ?? 0),
  };
}

export async function listFarmHosts(q: Queryable) {
  const r = await q.query<Row>(`${HOST_SELECT} GROUP BY fh.id ORDER BY fh.name, fh.id`);
  return { items: r.rows.map(toFarmHost) };
}

/** One host with its devices (by name). */
export async function getFarmHost(q: Queryable, id: string) {
  const r = await q.query<Row>(`${HOST_SELECT} WHERE fh.id = $1 GROUP BY fh.id`, [id]);
  if (!r.rows[0]) throw apiError('PP_ERR_API_NOT_FOUND', { what: 'farm host' });
  const devices = await q.query<Row>(`${DEVICE_SELECT} WHERE d.farm_host_id = $1 ORDER BY d.name`, [id]);
  const { devices: _, ...host } = toFarmHost(r.rows[0]);
  return { ...host, devices: devices.rows.map(toDevice) };
}

export async function renameFarmHost(ctx: Ctx, id: string, name: string, actor: string) {
  return ctx.db.tx(async (q) => {
    const r = await q.query('UPDATE farm_hosts SET name = $2 WHERE id = $1', [id, name]);
    if (!r.rowCount) throw apiError('PP_ERR_API_NOT_FOUND', { what: 'farm host' });
    await audit(q, actor, 'farm_host.update', id, { name });
    const out = await q.query<Row>(`${HOST_SELECT} WHERE fh.id = $1 GROUP BY fh.id`, [id]);
    return toFarmHost(out.rows[0]!);
  });
}

/**
 * Deletes a farm host that has no devices left (a retired box, or one whose devices were all deleted);
 * one with devices is refused (409): delete them first, each is a sold product with ports. The host's row
 * is locked first, so an enrollment on it (which locks the same row, enrollment.ts) either lands before
 * and is counted here, or waits and then makes the host anew from its key.
 */
export async function deleteFarmHost(ctx: Ctx, id: string, actor: string) {
  await ctx.db.tx(async (q) => {
    const host = await q.query<{ name: string }>('SELECT name FROM farm_hosts WHERE id = $1 FOR UPDATE', [id]);
    if (!host.rows[0]) throw apiError('PP_ERR_API_NOT_FOUND', { what: 'farm host' });
    const n = await q.query<{ n: number }>('SELECT count(*)::int AS n FROM devices WHERE farm_host_id = $1', [id]);
    const devices = Number(n.rows[0]?.n ?? 0);
    if (devices > 0)
      throw apiError('PP_ERR_API_CONFLICT', {
        detail: `the farm host still has ${devices} device${devices === 1 ? '' : 's'}: delete them first`,
      });
    await q.query('DELETE FROM farm_hosts WHERE id = $1', [id]);
    await audit(q, actor, 'farm_host.delete', id, { name: host.rows[0].name });
  });
}

type SkipReason = 'offline' | 'no_rotate_capability';

/**
 * Rotates every device of the host that can rotate now: online, and its agent reports `rotate_ip` (a
 * farm's phone whose driver cannot, or one that has not reported yet, is skipped rather than given a
 * command it would refuse or leave waiting). The answer names the skipped devices and why.
 */
export async function rotateFarmHost(ctx: Ctx, id: string, req: { ttl_s: number }, actor: string) {
  if (!(await ctx.db.query('SELECT 1 FROM farm_hosts WHERE id = $1', [id])).rows.length)
    throw apiError('PP_ERR_API_NOT_FOUND', { what: 'farm host' });
  const devices = await ctx.db.query<{ id: string; name: string; status: string; capabilities: string[] | null }>(
    'SELECT id, name, status, capabilities FROM devices WHERE farm_host_id = $1 ORDER BY name',
    [id],
  );
  const rotate: string[] = [];
  const skipped: { device_id: string; name: string; reason: SkipReason }[] = [];
  for (const d of devices.rows) {
    if (d.status !== 'online') skipped.push({ device_id: d.id, name: d.name, reason: 'offline' });
    else if (!d.capabilities?.includes('rotate_ip'))
      skipped.push({ device_id: d.id, name: d.name, reason: 'no_rotate_capability' });
    else rotate.push(d.id);
  }
  const items = rotate.length ? await rotateMany(ctx, rotate, { actor, ttl_s: req.ttl_s }) : [];
  return { items, skipped };
}
