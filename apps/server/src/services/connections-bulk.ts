// One action on many connections (POST /api/connections/bulk). enable, disable and delete change every
// named connection in one transaction through the same code as the single-connection routes
// (updateConnectionIn / deleteConnectionIn): an unknown id is a 400 naming it, and nothing changes.
// After commit each change is announced (connection_updated) and each device's relay is synced once.
// rotate rotates the devices of the connections, once per device, through the one rotation path
// (rotation.ts rotateMany, as POST /api/devices/rotate).
import type { Ctx } from '../context.js';
import { ValidationError } from '../api/problem.js';
import { deleteConnectionIn, updateConnectionIn, type ConnectionView } from './connections.js';
import { rotateMany, type BulkRotation } from './rotation.js';
import { syncDevice } from './push.js';

export type BulkAction = 'enable' | 'disable' | 'delete' | 'rotate';

export type { BulkRotation };

export interface BulkResult {
  action: BulkAction;
  count: number;
  items: ConnectionView[];
  deleted: string[];
  rotations: BulkRotation[];
}

export async function bulkConnections(
  ctx: Ctx,
  input: { ids: string[]; action: BulkAction; ttl_s: number },
  actor: string,
): Promise<BulkResult> {
  const ids = [...new Set(input.ids)];
  const out: BulkResult = { action: input.action, count: ids.length, items: [], deleted: [], rotations: [] };
  const touched = new Map<string, string>(); // connection id -> device id
  await ctx.db.tx(async (q) => {
    // Lock them all first, in a fixed order (no deadlock with another bulk call), and name the unknown ones.
    const found = await q.query<{ id: string; device_id: string }>(
      'SELECT id, device_id FROM connections WHERE id = ANY($1::text[]) ORDER BY id FOR UPDATE',
      [ids],
    );
    for (const r of found.rows) touched.set(r.id, r.device_id);
    const missing = input.ids.flatMap((id, i) =>
      touched.has(id) ? [] : [{ path: `ids.${i}`, message: `no connection ${id}` }],
    );
    if (missing.length) throw new ValidationError(missing);
    if (input.action === 'enable' || input.action === 'disable') {
      const enabled = input.action === 'enable';
      for (const id of ids) out.items.push(await updateConnectionIn(ctx, q, id, { enabled }, actor));
    } else if (input.action === 'delete') {
      for (const id of ids) {
        await deleteConnectionIn(q, id, actor);
        out.deleted.push(id);
      }
    }
  });
  if (input.action === 'rotate') {
    const devices = [...new Set(ids.map((id) => touched.get(id)!))];
    out.rotations = await rotateMany(ctx, devices, { actor, ttl_s: input.ttl_s });
    return out;
  }
  const now = ctx.clock.now();
  for (const id of ids)
    ctx.bus.publish(
      'connection_updated',
      input.action === 'delete'
        ? { id, device_id: touched.get(id), deleted: true }
        : { id, device_id: touched.get(id) },
      now,
    );
  await Promise.all([...new Set(touched.values())].map((d) => syncDevice(ctx, d)));
  return out;
}
