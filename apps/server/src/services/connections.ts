// Connections: a customer's credentials on one device, reached on their own relay port.
//   customer -> relay:PORT -> nftables DNAT -> tunnel -> device:8080 (http) | :1080 (socks5) -> target
// Passwords are sealed at rest (the operator can copy the proxy URL again); devices only ever get a
// verifier (security/crypto.ts).
import { randomBytes } from 'node:crypto';
import type { Queryable } from '@pocketproxy/db';
import type { Ctx } from '../context.js';
import { apiError } from '../errors.js';
import { newId, passwordVerifier, randomToken, sha256 } from '../security/crypto.js';
import { allocatePort, freePort } from './ports.js';
import { audit } from './audit.js';
import { iso, isoReq, type Row } from './rows.js';

const SELECT = `
  SELECT c.*, d.status AS device_status, d.tunnel_connected AS device_tunnel_connected, coalesce(r.host, $HOST) AS relay_host,
    coalesce((SELECT coalesce(sum(u.bytes_in + u.bytes_out) FILTER (WHERE u.source = 'nft'), 0)
                   + CASE WHEN count(*) FILTER (WHERE u.source = 'nft') = 0 THEN coalesce(sum(u.bytes_in + u.bytes_out) FILTER (WHERE u.source = 'agent'), 0) ELSE 0 END
              FROM usage_hourly u WHERE u.connection_id = c.id AND u.hour >= date_trunc('month', $NOW::timestamptz)), 0)::bigint AS bytes_used_month
  FROM connections c JOIN devices d ON d.id = c.device_id LEFT JOIN relays r ON r.id = d.relay_id`;

function select(ctx: Ctx, paramsSoFar: number): string {
  return SELECT.replace('$HOST', `$${paramsSoFar + 1}`).replace('$NOW', `$${paramsSoFar + 2}`);
}

export function toConnection(ctx: Ctx, r: Row) {
  const username = r.username as string;
  const password = ctx.box.open(r.password_enc as string);
  const host = (r.relay_host as string) ?? ctx.config.publicHost;
  const port = Number(r.port);
  const scheme = r.protocol === 'socks5' ? 'socks5' : 'http';
  const token = ctx.box.open(r.rotation_token_enc as string);
  return {
    id: r.id as string,
    device_id: r.device_id as string,
    customer_id: (r.customer_id as string | null) ?? null,
    protocol: r.protocol as 'http' | 'socks5',
    host,
    port,
    username,
    password,
    enabled: Boolean(r.enabled),
    blocked_reason: (r.blocked_reason as string | null) ?? null,
    bandwidth_limit_bytes: r.bandwidth_limit_bytes == null ? null : Number(r.bandwidth_limit_bytes),
    bytes_used_month: Number(r.bytes_used_month ?? 0),
    expires_at: iso(r.expires_at),
    allow_from: (r.allow_from as string[]) ?? [],
    rotation_url: `${ctx.config.publicUrl}/api/public/rotate/${token}`,
    proxy_url: `${scheme}://${encodeURIComponent(username)}:${encodeURIComponent(password)}@${host}:${port}`,
    device_status: r.device_status as 'online' | 'offline',
    device_tunnel_connected: Boolean(r.device_tunnel_connected),
    created_at: isoReq(r.created_at),
    updated_at: isoReq(r.updated_at),
  };
}
export type ConnectionView = ReturnType<typeof toConnection>;

export async function getConnection(ctx: Ctx, q: Queryable, id: string): Promise<ConnectionView> {
  const r = (await q.query<Row>(`${select(ctx, 1)} WHERE c.id = $1`, [id, ctx.config.publicHost, ctx.clock.now()])).rows[0];
  if (!r) throw apiError('PP_ERR_API_NOT_FOUND', { what: 'connection' });
  return toConnection(ctx, r);
}

export async function listConnections(ctx: Ctx, q: Queryable, f: { device_id?: string | undefined; customer_id?: string | undefined; limit: number; offset: number }) {
  const where: string[] = [];
  const params: unknown[] = [];
  if (f.device_id) {
    params.push(f.device_id);
    where.push(`c.device_id = $${params.length}`);
  }
  if (f.customer_id) {
    params.push(f.customer_id);
    where.push(`c.customer_id = $${params.length}`);
  }
  const w = where.length ? `WHERE ${where.join(' AND ')}` : '';
  const total = (await q.query<{ n: number }>(`SELECT count(*)::int AS n FROM connections c ${w}`, params)).rows[0]!.n;
  const n = params.length;
  const rows = await q.query<Row>(`${select(ctx, n)} ${w} ORDER BY c.port LIMIT $${n + 3} OFFSET $${n + 4}`, [...params, ctx.config.publicHost, ctx.clock.now(), f.limit, f.offset]);
  return { items: rows.rows.map((r) => toConnection(ctx, r)), total };
}

const genUsername = () => `u${randomBytes(6).toString('hex')}`;
const genPassword = () => randomBytes(15).toString('base64url');

async function assertUsernameFree(q: Queryable, username: string, exceptId: string | null) {
  const r = await q.query('SELECT 1 FROM connections WHERE username = $1 AND id IS DISTINCT FROM $2', [username, exceptId]);
  if (r.rows.length) throw apiError('PP_ERR_API_CONFLICT', { detail: `the username "${username}" is taken` });
}

async function assertCustomer(q: Queryable, id: string | null | undefined) {
  if (id && !(await q.query('SELECT 1 FROM customers WHERE id = $1', [id])).rows.length) throw apiError('PP_ERR_API_NOT_FOUND', { what: 'customer' });
}

export interface ConnectionInput {
  device_id: string;
  customer_id?: string | null | undefined;
  protocol: 'http' | 'socks5';
  username?: string | undefined;
  password?: string | undefined;
  enabled: boolean;
  bandwidth_limit_bytes?: number | null | undefined;
  expires_at?: string | null | undefined;
  allow_from: string[];
}

export async function createConnection(ctx: Ctx, input: ConnectionInput, actor: string): Promise<ConnectionView> {
  const out = await ctx.db.tx(async (q) => {
    if (!(await q.query('SELECT 1 FROM devices WHERE id = $1', [input.device_id])).rows.length) throw apiError('PP_ERR_API_NOT_FOUND', { what: 'device' });
    await assertCustomer(q, input.customer_id);
    const username = input.username ?? genUsername();
    await assertUsernameFree(q, username, null);
    const password = input.password ?? genPassword();
    const id = newId('con');
    const port = await allocatePort(q, 'connection', id, ctx.config.connectionPorts);
    const token = randomToken(24);
    const now = ctx.clock.now();
    await q.query(
      `INSERT INTO connections (id, device_id, customer_id, protocol, port, username, password_enc, password_verifier, enabled,
         bandwidth_limit_bytes, expires_at, allow_from, rotation_token_hash, rotation_token_enc, created_at, updated_at)
       VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$15)`,
      [id, input.device_id, input.customer_id ?? null, input.protocol, port, username, ctx.box.seal(password), passwordVerifier(password), input.enabled,
        input.bandwidth_limit_bytes ?? null, input.expires_at ?? null, input.allow_from, sha256(token), ctx.box.seal(token), now],
    );
    await audit(q, actor, 'connection.create', id, { device_id: input.device_id, protocol: input.protocol, port });
    return getConnection(ctx, q, id);
  });
  ctx.bus.publish('connection_updated', { id: out.id, device_id: out.device_id }, ctx.clock.now());
  return out;
}

export interface ConnectionPatch {
  customer_id?: string | null | undefined;
  username?: string | undefined;
  password?: string | undefined;
  enabled?: boolean | undefined;
  bandwidth_limit_bytes?: number | null | undefined;
  expires_at?: string | null | undefined;
  allow_from?: string[] | undefined;
  regenerate_rotation_token?: boolean | undefined;
}

export async function updateConnection(ctx: Ctx, id: string, p: ConnectionPatch, actor: string): Promise<ConnectionView> {
  const out = await ctx.db.tx(async (q) => {
    const cur = (await q.query<Row>('SELECT * FROM connections WHERE id = $1 FOR UPDATE', [id])).rows[0];
    if (!cur) throw apiError('PP_ERR_API_NOT_FOUND', { what: 'connection' });
    if (p.customer_id !== undefined) await assertCustomer(q, p.customer_id);
    if (p.username !== undefined) await assertUsernameFree(q, p.username, id);
    const sets: string[] = [];
    const vals: unknown[] = [id];
    const set = (col: string, v: unknown) => {
      vals.push(v);
      sets.push(`${col} = $${vals.length}`);
    };
    if (p.customer_id !== undefined) set('customer_id', p.customer_id);
    if (p.username !== undefined) set('username', p.username);
    if (p.password !== undefined) {
      set('password_enc', ctx.box.seal(p.password));
      set('password_verifier', passwordVerifier(p.password));
    }
    if (p.enabled !== undefined) set('enabled', p.enabled);
    if (p.bandwidth_limit_bytes !== undefined) set('bandwidth_limit_bytes', p.bandwidth_limit_bytes);
    if (p.expires_at !== undefined) set('expires_at', p.expires_at);
    if (p.allow_from !== undefined) set('allow_from', p.allow_from);
    if (p.regenerate_rotation_token) {
      const token = randomToken(24);
      set('rotation_token_hash', sha256(token));
      set('rotation_token_enc', ctx.box.seal(token));
    }
    // A lifted limit or a moved expiry re-opens a blocked connection; the worker re-blocks if still due.
    if (p.bandwidth_limit_bytes !== undefined || p.expires_at !== undefined || p.enabled !== undefined) sets.push('blocked_reason = NULL');
    set('updated_at', ctx.clock.now());
    await q.query(`UPDATE connections SET ${sets.join(', ')} WHERE id = $1`, vals);
    await audit(q, actor, 'connection.update', id, { ...p, password: p.password ? '[redacted]' : undefined });
    return getConnection(ctx, q, id);
  });
  ctx.bus.publish('connection_updated', { id: out.id, device_id: out.device_id }, ctx.clock.now());
  return out;
}

export async function deleteConnection(ctx: Ctx, id: string, actor: string): Promise<void> {
  const deviceId = await ctx.db.tx(async (q) => {
    const r = await q.query<{ device_id: string }>('DELETE FROM connections WHERE id = $1 RETURNING device_id', [id]);
    if (!r.rows[0]) throw apiError('PP_ERR_API_NOT_FOUND', { what: 'connection' });
    await freePort(q, id);
    await audit(q, actor, 'connection.delete', id);
    return r.rows[0].device_id;
  });
  ctx.bus.publish('connection_updated', { id, device_id: deviceId, deleted: true }, ctx.clock.now());
}

/** What a device needs to check customers: usernames with verifiers, only for usable connections. */
export async function deviceCredentials(ctx: Ctx, q: Queryable, deviceId: string) {
  const r = await q.query<Row>(
    `SELECT id, protocol, port, username, password_verifier FROM connections
      WHERE device_id = $1 AND enabled AND blocked_reason IS NULL AND (expires_at IS NULL OR expires_at > $2) ORDER BY port`,
    [deviceId, ctx.clock.now()],
  );
  return r.rows.map((c) => ({ connection_id: c.id as string, protocol: c.protocol as string, port: Number(c.port), username: c.username as string, verifier: c.password_verifier as string }));
}

/** Everything the relay's firewall needs for one device's connections (internal vpn/connected). */
export async function deviceForwarding(ctx: Ctx, q: Queryable, deviceId: string) {
  const r = await q.query<Row>(
    `SELECT id, protocol, port, allow_from, (enabled AND blocked_reason IS NULL AND (expires_at IS NULL OR expires_at > $2)) AS usable
       FROM connections WHERE device_id = $1 ORDER BY port`,
    [deviceId, ctx.clock.now()],
  );
  return r.rows.map((c) => ({ connection_id: c.id as string, protocol: c.protocol as 'http' | 'socks5', port: Number(c.port), allow_from: (c.allow_from as string[]) ?? [], enabled: Boolean(c.usable) }));
}
