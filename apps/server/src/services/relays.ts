import type { Queryable } from '@pocketproxy/db';
import type { Ctx } from '../context.js';
import { apiError } from '../errors.js';
import { newId } from '../security/crypto.js';
import { audit } from './audit.js';
import { toRelay, type Row } from './rows.js';
import { tellTunnelChanged } from './push.js';

export interface RelayRow {
  id: string;
  name: string;
  host: string;
  tunnel_port: number;
  push_url: string;
  public_key: string | null;
  enabled: boolean;
}

export async function getRelay(q: Queryable, id: string): Promise<RelayRow | undefined> {
  return (await q.query<RelayRow>('SELECT * FROM relays WHERE id = $1', [id])).rows[0];
}

/** The relay new devices join when none is named: the oldest enabled one. */
export async function defaultRelay(q: Queryable): Promise<RelayRow | undefined> {
  return (await q.query<RelayRow>('SELECT * FROM relays WHERE enabled ORDER BY created_at, id LIMIT 1')).rows[0];
}

const SELECT = `SELECT r.*, (SELECT count(*)::int FROM devices d WHERE d.relay_id = r.id AND d.status = 'online') AS devices_online FROM relays r`;

export async function listRelays(q: Queryable) {
  const rows = (await q.query<Row>(`${SELECT} ORDER BY r.name`)).rows.map(toRelay);
  return { items: rows, total: rows.length };
}

export async function getRelayView(q: Queryable, id: string) {
  const r = (await q.query<Row>(`${SELECT} WHERE r.id = $1`, [id])).rows[0];
  if (!r) throw apiError('PP_ERR_API_NOT_FOUND', { what: 'relay' });
  return toRelay(r);
}

type RelayInput = {
  name?: string | undefined;
  host?: string | undefined;
  tunnel_port?: number | undefined;
  push_url?: string | undefined;
  public_key?: string | undefined;
  enabled?: boolean | undefined;
};

export async function createRelay(
  ctx: Ctx,
  input: Required<Pick<RelayInput, 'name' | 'host'>> & RelayInput,
  actor: string,
) {
  return ctx.db.tx(async (q) => {
    if ((await q.query('SELECT 1 FROM relays WHERE name = $1', [input.name])).rows.length)
      throw apiError('PP_ERR_API_CONFLICT', { detail: `a relay named "${input.name}" already exists` });
    const id = newId('rly');
    await q.query(
      `INSERT INTO relays (id, name, host, tunnel_port, push_url, public_key, enabled) VALUES ($1,$2,$3,$4,$5,$6,$7)`,
      [
        id,
        input.name,
        input.host,
        input.tunnel_port ?? 1194,
        input.push_url ?? 'http://127.0.0.1:8081',
        input.public_key ?? null,
        input.enabled ?? true,
      ],
    );
    await audit(q, actor, 'relay.create', id, { name: input.name, host: input.host });
    return getRelayView(q, id);
  });
}

export async function updateRelay(ctx: Ctx, id: string, input: RelayInput, actor: string) {
  let dialled = false;
  const out = await ctx.db.tx(async (q) => {
    const before = await getRelay(q, id);
    if (!before) throw apiError('PP_ERR_API_NOT_FOUND', { what: 'relay' });
    // What its devices dial: their tunnel must follow a change of it.
    dialled =
      (input.host !== undefined && input.host !== before.host) ||
      (input.tunnel_port !== undefined && input.tunnel_port !== before.tunnel_port) ||
      (input.public_key !== undefined && input.public_key !== before.public_key);
    if (
      input.name &&
      (await q.query('SELECT 1 FROM relays WHERE name = $1 AND id <> $2', [input.name, id])).rows.length
    )
      throw apiError('PP_ERR_API_CONFLICT', { detail: `a relay named "${input.name}" already exists` });
    await q.query(
      `UPDATE relays SET name = coalesce($2, name), host = coalesce($3, host), tunnel_port = coalesce($4, tunnel_port),
         push_url = coalesce($5, push_url), public_key = coalesce($6, public_key), enabled = coalesce($7, enabled), updated_at = now() WHERE id = $1`,
      [
        id,
        input.name ?? null,
        input.host ?? null,
        input.tunnel_port ?? null,
        input.push_url ?? null,
        input.public_key ?? null,
        input.enabled ?? null,
      ],
    );
    await audit(q, actor, 'relay.update', id, input);
    return getRelayView(q, id);
  });
  // Its devices dial its address, port and key: they ask for them again (through the relay's push API).
  if (dialled) {
    const devs = await ctx.db.query<{ id: string }>('SELECT id FROM devices WHERE relay_id = $1 AND tunnel_connected', [
      id,
    ]);
    const url = (await ctx.db.query<{ push_url: string }>('SELECT push_url FROM relays WHERE id = $1', [id])).rows[0]
      ?.push_url;
    if (url && devs.rows.length)
      await tellTunnelChanged(
        ctx,
        devs.rows.map((d) => d.id),
        url,
      );
  }
  return out;
}

/** A tunnel process announces itself (POST /api/internal/relays/register): created or updated by name. */
export async function registerRelay(
  q: Queryable,
  r: { name: string; host: string; tunnel_port: number; push_url: string; public_key: string; max_lanes?: number },
): Promise<{ relay_id: string }> {
  const r0 = await q.query<{ id: string }>(
    `INSERT INTO relays (id, name, host, tunnel_port, push_url, public_key, max_lanes) VALUES ($1,$2,$3,$4,$5,$6,$7)
     ON CONFLICT (name) DO UPDATE SET host = excluded.host, tunnel_port = excluded.tunnel_port, push_url = excluded.push_url, public_key = excluded.public_key, max_lanes = excluded.max_lanes, updated_at = now()
     RETURNING id`,
    [newId('rly'), r.name, r.host, r.tunnel_port, r.push_url, r.public_key, r.max_lanes ?? 1],
  );
  return { relay_id: r0.rows[0]!.id };
}

/** At start: the relay this server runs itself ("local"), created from config on first run. */
export async function ensureLocalRelay(ctx: Ctx, publicKey: string | null): Promise<RelayRow> {
  return ctx.db.tx(async (q) => {
    await q.query('SELECT pg_advisory_xact_lock(7723002)');
    const existing = (await q.query<RelayRow>(`SELECT * FROM relays WHERE name = 'local'`)).rows[0];
    if (existing) {
      if (publicKey && existing.public_key !== publicKey)
        await q.query('UPDATE relays SET public_key = $2, updated_at = now() WHERE id = $1', [existing.id, publicKey]);
      return { ...existing, public_key: publicKey ?? existing.public_key };
    }
    const id = newId('rly');
    const row = (
      await q.query<RelayRow>(
        `INSERT INTO relays (id, name, host, tunnel_port, push_url, public_key) VALUES ($1, 'local', $2, $3, $4, $5) RETURNING *`,
        [id, ctx.config.publicHost, ctx.config.tunnelPort, ctx.config.pushUrl, publicKey],
      )
    ).rows[0]!;
    await audit(q, 'system', 'relay.create', id, { name: 'local' });
    return row;
  });
}
