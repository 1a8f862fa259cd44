// Connections: a customer's credentials on one device, reached on their own relay port.
//   customer -> relay:PORT -> nftables DNAT (no source NAT) -> tunnel -> device vpn_ip:PORT -> target
// On the device a listener of that connection alone checks its credentials, state, allow-list and
// limits: a connection's credentials open nothing on another port. Passwords are sealed at rest (the
// operator can copy the proxy URL again); devices only ever get a verifier (security/crypto.ts).
// Every change is pushed to the device's relay after commit (push.ts syncDevice).
import { randomBytes } from 'node:crypto';
import type { Queryable } from '@pocketproxy/db';
import type { Ctx } from '../context.js';
import { apiError } from '../errors.js';
import { checkVerifier, newId, passwordVerifier, randomToken, sha256 } from '../security/crypto.js';
import { ipInCidrs } from './ipam.js';
import { allocatePort, freePort } from './ports.js';
import { audit } from './audit.js';
import { iso, isoReq, type Row } from './rows.js';
import { syncDevice } from './push.js';
import { liveState } from './live.js';
import { blockDue, usedMonthSql } from './usage.js';

const SELECT = `
  SELECT c.*, d.status AS device_status, d.tunnel_connected AS device_tunnel_connected, coalesce(r.host, $HOST) AS relay_host,
    ${usedMonthSql('agent', 'c.id', '$NOW')} AS bytes_used_month, ${usedMonthSql('nft', 'c.id', '$NOW')} AS bytes_relay_month
  FROM connections c JOIN devices d ON d.id = c.device_id LEFT JOIN relays r ON r.id = d.relay_id`;

function select(paramsSoFar: number): string {
  return SELECT.replace('$HOST', `$${paramsSoFar + 1}`).replaceAll('$NOW', `$${paramsSoFar + 2}`);
}

const numOrNull = (v: unknown): number | null => (v == null ? null : Number(v));

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
    blocked_reason: (r.blocked_reason as BlockReason | null) ?? null,
    bandwidth_limit_bytes: r.bandwidth_limit_bytes == null ? null : Number(r.bandwidth_limit_bytes),
    max_connections: numOrNull(r.max_connections),
    rate_limit_down_kbps: numOrNull(r.rate_limit_down_kbps),
    rate_limit_up_kbps: numOrNull(r.rate_limit_up_kbps),
    bytes_used_month: Number(r.bytes_used_month ?? 0),
    bytes_relay_month: Number(r.bytes_relay_month ?? 0),
    expires_at: iso(r.expires_at),
    allow_from: (r.allow_from as string[]) ?? [],
    rotation_url: `${ctx.config.publicUrl}/api/public/rotate/${token}`,
    rotation_min_interval_s: numOrNull(r.rotation_min_interval_s),
    proxy_url: `${scheme}://${encodeURIComponent(username)}:${encodeURIComponent(password)}@${host}:${port}`,
    device_status: r.device_status as 'online' | 'offline',
    device_tunnel_connected: Boolean(r.device_tunnel_connected),
    live: liveState(r),
    created_at: isoReq(r.created_at),
    updated_at: isoReq(r.updated_at),
  };
}
export type ConnectionView = ReturnType<typeof toConnection>;

export async function getConnection(ctx: Ctx, q: Queryable, id: string): Promise<ConnectionView> {
  const r = (await q.query<Row>(`${select(1)} WHERE c.id = $1`, [id, ctx.config.publicHost, ctx.clock.now()])).rows[0];
  if (!r) throw apiError('PP_ERR_API_NOT_FOUND', { what: 'connection' });
  return toConnection(ctx, r);
}

export async function listConnections(
  ctx: Ctx,
  q: Queryable,
  f: { device_id?: string | undefined; customer_id?: string | undefined; limit: number; offset: number },
) {
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
  const rows = await q.query<Row>(`${select(n)} ${w} ORDER BY c.port LIMIT $${n + 3} OFFSET $${n + 4}`, [
    ...params,
    ctx.config.publicHost,
    ctx.clock.now(),
    f.limit,
    f.offset,
  ]);
  return { items: rows.rows.map((r) => toConnection(ctx, r)), total };
}

const genUsername = () => `u${randomBytes(6).toString('hex')}`;
const genPassword = () => randomBytes(15).toString('base64url');

async function assertUsernameFree(q: Queryable, username: string, exceptId: string | null) {
  const r = await q.query('SELECT 1 FROM connections WHERE username = $1 AND id IS DISTINCT FROM $2', [
    username,
    exceptId,
  ]);
  if (r.rows.length) throw apiError('PP_ERR_API_CONFLICT', { detail: `the username "${username}" is taken` });
}

async function assertCustomer(q: Queryable, id: string | null | undefined) {
  if (id && !(await q.query('SELECT 1 FROM customers WHERE id = $1', [id])).rows.length)
    throw apiError('PP_ERR_API_NOT_FOUND', { what: 'customer' });
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
  max_connections?: number | null | undefined;
  rate_limit_down_kbps?: number | null | undefined;
  rate_limit_up_kbps?: number | null | undefined;
  rotation_min_interval_s?: number | null | undefined;
}

export async function createConnection(ctx: Ctx, input: ConnectionInput, actor: string): Promise<ConnectionView> {
  const out = await ctx.db.tx(async (q) => {
    if (!(await q.query('SELECT 1 FROM devices WHERE id = $1', [input.device_id])).rows.length)
      throw apiError('PP_ERR_API_NOT_FOUND', { what: 'device' });
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
         bandwidth_limit_bytes, expires_at, allow_from, rotation_token_hash, rotation_token_enc, max_connections, rate_limit_down_kbps, rate_limit_up_kbps,
         created_at, updated_at, rotation_min_interval_s)
       VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16,$17,$18,$18,$19)`,
      [
        id,
        input.device_id,
        input.customer_id ?? null,
        input.protocol,
        port,
        username,
        ctx.box.seal(password),
        passwordVerifier(password),
        input.enabled,
        input.bandwidth_limit_bytes ?? null,
        input.expires_at ?? null,
        input.allow_from,
        sha256(token),
        ctx.box.seal(token),
        input.max_connections ?? null,
        input.rate_limit_down_kbps ?? null,
        input.rate_limit_up_kbps ?? null,
        now,
        input.rotation_min_interval_s ?? null,
      ],
    );
    await audit(q, actor, 'connection.create', id, { device_id: input.device_id, protocol: input.protocol, port });
    // Created already past its expiry or with a zero budget: blocked from the start.
    await blockDue(q, now, { connectionId: id });
    return getConnection(ctx, q, id);
  });
  ctx.bus.publish('connection_updated', { id: out.id, device_id: out.device_id }, ctx.clock.now());
  await syncDevice(ctx, out.device_id);
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
  max_connections?: number | null | undefined;
  rate_limit_down_kbps?: number | null | undefined;
  rate_limit_up_kbps?: number | null | undefined;
  rotation_min_interval_s?: number | null | undefined;
  regenerate_rotation_token?: boolean | undefined;
}

export async function updateConnection(
  ctx: Ctx,
  id: string,
  p: ConnectionPatch,
  actor: string,
): Promise<ConnectionView> {
  const out = await ctx.db.tx((q) => updateConnectionIn(ctx, q, id, p, actor));
  ctx.bus.publish('connection_updated', { id: out.id, device_id: out.device_id }, ctx.clock.now());
  await syncDevice(ctx, out.device_id);
  return out;
}

/** updateConnection's change inside the caller's transaction (bulk actions); the caller publishes and syncs. */
export async function updateConnectionIn(
  ctx: Ctx,
  q: Queryable,
  id: string,
  p: ConnectionPatch,
  actor: string,
): Promise<ConnectionView> {
  {
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
    if (p.max_connections !== undefined) set('max_connections', p.max_connections);
    if (p.rate_limit_down_kbps !== undefined) set('rate_limit_down_kbps', p.rate_limit_down_kbps);
    if (p.rate_limit_up_kbps !== undefined) set('rate_limit_up_kbps', p.rate_limit_up_kbps);
    if (p.rotation_min_interval_s !== undefined) set('rotation_min_interval_s', p.rotation_min_interval_s);
    if (p.regenerate_rotation_token) {
      const token = randomToken(24);
      set('rotation_token_hash', sha256(token));
      set('rotation_token_enc', ctx.box.seal(token));
    }
    // A lifted limit or a moved expiry re-opens a blocked connection; one still due is blocked again
    // below, in the same transaction.
    if (p.bandwidth_limit_bytes !== undefined || p.expires_at !== undefined || p.enabled !== undefined)
      sets.push('blocked_reason = NULL');
    const now = ctx.clock.now();
    set('updated_at', now);
    await q.query(`UPDATE connections SET ${sets.join(', ')} WHERE id = $1`, vals);
    await audit(q, actor, 'connection.update', id, { ...p, password: p.password ? '[redacted]' : undefined });
    await blockDue(q, now, { connectionId: id });
    return getConnection(ctx, q, id);
  }
}

export async function deleteConnection(ctx: Ctx, id: string, actor: string): Promise<void> {
  const deviceId = await ctx.db.tx((q) => deleteConnectionIn(q, id, actor));
  ctx.bus.publish('connection_updated', { id, device_id: deviceId, deleted: true }, ctx.clock.now());
  await syncDevice(ctx, deviceId);
}

/** deleteConnection's change inside the caller's transaction; answers the device id. */
export async function deleteConnectionIn(q: Queryable, id: string, actor: string): Promise<string> {
  const r = await q.query<{ device_id: string }>('DELETE FROM connections WHERE id = $1 RETURNING device_id', [id]);
  if (!r.rows[0]) throw apiError('PP_ERR_API_NOT_FOUND', { what: 'connection' });
  await freePort(q, id);
  await audit(q, actor, 'connection.delete', id);
  return r.rows[0].device_id;
}

export type ConnectionState = 'active' | 'disabled' | 'expired' | 'bandwidth';
export type BlockReason = 'expired' | 'bandwidth';

/**
 * The credentials version of one device, as SQL: the count of its connections, ':', and the sum of a
 * 64-bit hash per connection over every field of its credential item except bytes_used_month (plus
 * whether its expiry has passed, which turns its state to 'expired' without a row change). It changes
 * when any item does — whoever wrote the row, whatever the clocks say (no updated_at involved) — and
 * only then. The heartbeat answer (heartbeat-batch.ts) and GET /api/devices/:id/credentials compute it
 * with this same expression, so an agent refetches only when something changed. It costs the heartbeat
 * batch a few µs per device (a sum, no string building or cryptographic hash: a change detector only).
 * `device` and `now` are SQL expressions (a column, a parameter). Timestamps go in as epoch numbers, so
 * the text hashed does not depend on session settings.
 */
export function credentialsVersionSql(device: string, now: string): string {
  return `(SELECT count(*) || ':' || coalesce(sum(hashtextextended(row(
      x.id, x.protocol, x.port, x.username, x.password_verifier, x.enabled, x.blocked_reason,
      extract(epoch FROM x.expires_at), x.expires_at <= ${now}::timestamptz,
      x.allow_from, x.max_connections, x.rate_limit_down_kbps, x.rate_limit_up_kbps, x.bandwidth_limit_bytes)::text, 0))::text, '0')
    FROM connections x WHERE x.device_id = ${device})`;
}

/** disabled > expired > bandwidth > active. */
export function connectionState(c: {
  enabled: boolean;
  blocked_reason: string | null;
  expired: boolean;
}): ConnectionState {
  if (!c.enabled) return 'disabled';
  if (c.expired || c.blocked_reason === 'expired') return 'expired';
  if (c.blocked_reason === 'bandwidth') return 'bandwidth';
  // A block reason this code does not know refuses rather than opens.
  return c.blocked_reason ? 'disabled' : 'active';
}

export async function credentialsVersion(q: Queryable, deviceId: string, now: Date): Promise<string> {
  return (await q.query<{ v: string }>(`SELECT ${credentialsVersionSql('$1', '$2')} AS v`, [deviceId, now])).rows[0]!.v;
}

/**
 * What a device needs to serve its connections: every connection (a listener per port, refusing
 * clearly when not active), with the password verifier, state, allow-list, expiry, limits and this
 * month's usage as the device reported it. Items and version come from one statement (one snapshot).
 */
export async function deviceCredentials(ctx: Ctx, q: Queryable, deviceId: string) {
  const r = await q.query<Row>(
    `SELECT v.version, c.id, c.protocol, c.port, c.username, c.password_verifier, c.enabled, c.blocked_reason, c.expires_at,
            (c.expires_at IS NOT NULL AND c.expires_at <= $2::timestamptz) AS expired, c.allow_from,
            c.max_connections, c.rate_limit_down_kbps, c.rate_limit_up_kbps, c.bandwidth_limit_bytes,
            ${usedMonthSql('agent', 'c.id', '$2')} AS bytes_used_month
       FROM (SELECT ${credentialsVersionSql('$1', '$2')} AS version) v
       LEFT JOIN connections c ON c.device_id = $1
      ORDER BY c.port`,
    [deviceId, ctx.clock.now()],
  );
  const items = r.rows
    .filter((c) => c.id != null)
    .map((c) => ({
      connection_id: c.id as string,
      protocol: c.protocol as 'http' | 'socks5',
      port: Number(c.port),
      username: c.username as string,
      verifier: c.password_verifier as string,
      state: connectionState({
        enabled: Boolean(c.enabled),
        blocked_reason: (c.blocked_reason as string | null) ?? null,
        expired: Boolean(c.expired),
      }),
      allow_from: (c.allow_from as string[]) ?? [],
      expires_at: iso(c.expires_at),
      max_connections: numOrNull(c.max_connections),
      rate_limit_down_kbps: numOrNull(c.rate_limit_down_kbps),
      rate_limit_up_kbps: numOrNull(c.rate_limit_up_kbps),
      bandwidth_limit_bytes: numOrNull(c.bandwidth_limit_bytes),
      bytes_used_month: Number(c.bytes_used_month ?? 0),
    }));
  return { version: r.rows[0]!.version as string, items };
}
export type CredentialItem = Awaited<ReturnType<typeof deviceCredentials>>['items'][number];

/** A connection's username (the OpenVPN profile names it); undefined when there is no such connection. */
export async function connectionUsername(q: Queryable, id: string): Promise<string | undefined> {
  return (await q.query<{ username: string }>('SELECT username FROM connections WHERE id = $1', [id])).rows[0]
    ?.username;
}

/** Everything the relay's firewall needs for one device's connections (internal vpn/connected). */
export async function deviceForwarding(ctx: Ctx, q: Queryable, deviceId: string) {
  const r = await q.query<Row>(
    `SELECT id, protocol, port, allow_from, username, password_verifier,
            (enabled AND blocked_reason IS NULL AND (expires_at IS NULL OR expires_at > $2)) AS usable,
            (max_connections IS NULL AND bandwidth_limit_bytes IS NULL) AS uncapped
       FROM connections WHERE device_id = $1 ORDER BY port`,
    [deviceId, ctx.clock.now()],
  );
  return r.rows.map((c) => ({
    connection_id: c.id as string,
    protocol: c.protocol as 'http' | 'socks5',
    port: Number(c.port),
    allow_from: (c.allow_from as string[]) ?? [],
    enabled: Boolean(c.usable),
    // The relay's front answers credentials it can check itself (tunnel/socks5-front.ts): SOCKS5 ones, and
    // an HTTP CONNECT's Proxy-Authorization on an HTTP port through the front.
    // Early replies only where the device's answer to a CONNECT depends on its destination alone: a
    // connection cap or a data limit refuses with a code the customer should get (docs/design.md §2.3).
    username: c.username as string,
    verifier: c.password_verifier as string,
    early_reply: Boolean(c.uncapped),
  }));
}

/** What the relay forwards to one device, with the credential items it sends it (GET /api/internal/devices/:id/forwarding). */
export async function relayForwarding(ctx: Ctx, deviceId: string) {
  const credentials = await deviceCredentials(ctx, ctx.db, deviceId);
  return {
    connections: await deviceForwarding(ctx, ctx.db, deviceId),
    credentials: credentials.items,
    credentials_version: credentials.version,
  };
}

/** The forwarding of many devices at once, by device id (POST /api/internal/tunnel/forwarding, the relay's poll). */
export async function relayForwardingMany(ctx: Ctx, deviceIds: readonly string[]) {
  const out: Record<string, { vpn_ip: string; connections: Awaited<ReturnType<typeof deviceForwarding>> }> = {};
  const devs = await ctx.db.query<{ id: string; vpn_ip: string }>(
    'SELECT id, vpn_ip FROM devices WHERE id = ANY($1::text[])',
    [deviceIds],
  );
  for (const d of devs.rows) out[d.id] = { vpn_ip: d.vpn_ip, connections: await deviceForwarding(ctx, ctx.db, d.id) };
  return { devices: out };
}

// OpenVPN logins (the relay's tunnel process, openvpn/management.ts): the customer signs in with a connection's username and password. Its traffic reaches
// the device through the relay's transparent proxy (from the relay's address), so the connection's
// allow-list is checked here, against the customer's real address (untrusted_ip).
export interface OpenVpnLogin {
  username: string;
  password?: string | undefined;
  vpn_ip?: string | undefined;
  untrusted_ip?: string | undefined;
}

/** POST /api/internal/openvpn/auth: password, state (enabled, not blocked, not expired) and allow-list; 403 otherwise. */
export async function openvpnAuth(ctx: Ctx, body: OpenVpnLogin) {
  const c = (
    await ctx.db.query<{ id: string; device_id: string; password_verifier: string; allow_from: string[] }>(
      `SELECT id, device_id, password_verifier, allow_from FROM connections WHERE username = $1 AND enabled AND blocked_reason IS NULL AND (expires_at IS NULL OR expires_at > $2)`,
      [body.username, ctx.clock.now()],
    )
  ).rows[0];
  if (!c || !body.password || !checkVerifier(body.password, c.password_verifier))
    throw apiError('PP_ERR_API_FORBIDDEN');
  // A connection with an allow-list admits only customers from it; without an address, none.
  if (c.allow_from?.length && !(body.untrusted_ip && ipInCidrs(body.untrusted_ip, c.allow_from)))
    throw apiError('PP_ERR_API_FORBIDDEN');
  return { ok: true as const, connection_id: c.id, device_id: c.device_id };
}

/** POST /api/internal/openvpn/connect: the device proxy an OpenVPN customer's traffic goes to (the
 * connection's own port and protocol on the device, with its credentials). */
export async function openvpnConnect(ctx: Ctx, body: OpenVpnLogin) {
  const c = (
    await ctx.db.query<{
      id: string;
      device_id: string;
      vpn_ip: string;
      port: number;
      protocol: 'http' | 'socks5';
      password_enc: string;
    }>(
      `SELECT c.id, c.device_id, d.vpn_ip, c.port, c.protocol, c.password_enc FROM connections c JOIN devices d ON d.id = c.device_id
      WHERE c.username = $1 AND c.enabled AND c.blocked_reason IS NULL AND (c.expires_at IS NULL OR c.expires_at > $2)`,
      [body.username, ctx.clock.now()],
    )
  ).rows[0];
  if (!c) throw apiError('PP_ERR_API_FORBIDDEN');
  return {
    connection_id: c.id,
    device_id: c.device_id,
    device_vpn_ip: c.vpn_ip,
    proxy_port: Number(c.port),
    protocol: c.protocol,
    username: body.username,
    password: ctx.box.open(c.password_enc),
    client_ip: body.vpn_ip ?? null,
  };
}
