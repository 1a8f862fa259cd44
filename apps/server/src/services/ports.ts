// The port pool (migration 005). Allocation takes the lowest free port of a kind inside the configured
// range with FOR UPDATE SKIP LOCKED: two transactions allocating at once lock different rows, so they
// never get the same port, and neither waits for the other. Freeing a port makes it the next one handed
// out again (recycling). Only connections own ports: device-level port blocks were removed (migration 014),
// so no relay port accepts traffic without a credential made for it.
import type { Queryable } from '@pocketproxy/db';
import type { PortRange } from '../config.js';
import { apiError } from '../errors.js';

export type PortKind = 'connection';

/** Makes sure every port of the configured range has a row; cheap and idempotent at start. */
export async function ensurePortPool(q: Queryable, connectionPorts: PortRange): Promise<void> {
  await q.query(
    `INSERT INTO ports (port, kind) SELECT p, 'connection' FROM generate_series($1::int, $2::int) AS p ON CONFLICT (port) DO NOTHING`,
    [connectionPorts.from, connectionPorts.to],
  );
}

export async function allocatePort(q: Queryable, kind: PortKind, ownerId: string, range: PortRange): Promise<number> {
  const r = await q.query<{ port: number }>(
    `UPDATE ports SET owner_id = $2, updated_at = now()
      WHERE port = (SELECT port FROM ports
                     WHERE kind = $1 AND owner_id IS NULL AND port BETWEEN $3 AND $4
                     ORDER BY port LIMIT 1 FOR UPDATE SKIP LOCKED)
      RETURNING port`,
    [kind, ownerId, range.from, range.to],
  );
  const row = r.rows[0];
  if (!row) throw apiError('PP_ERR_API_PORTS_EXHAUSTED', { kind });
  return row.port;
}

export async function freePort(q: Queryable, ownerId: string): Promise<void> {
  await q.query(`UPDATE ports SET owner_id = NULL, updated_at = now() WHERE owner_id = $1`, [ownerId]);
}
