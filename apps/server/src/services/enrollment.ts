// Enrollment (issue 14, docs/design.md §2.11): an admin's enrollment token lets a farm host
// (`pocketproxy-agent farm`) enroll its phones and modems, each as its own device, without a pairing code
// per device. The token is stored only as SHA-256 (shown once), so is the farm host's own key.
import type { Queryable } from '@pocketproxy/db';
import type { Ctx } from '../context.js';
import { apiError } from '../errors.js';
import { newId, randomToken, sha256 } from '../security/crypto.js';
import { audit } from './audit.js';
import { announceDevice, createDevice, type DeviceSecrets } from './devices.js';
import { type Row, iso, isoReq } from './rows.js';

/** Tokens start with this, so one found in a log or a paste is recognisable (and not a device token). */
const TOKEN_PREFIX = 'ppe_';
/** Characters of the token kept in clear to tell tokens apart in lists: the prefix + 6 of the random part. */
const SHOWN_CHARS = TOKEN_PREFIX.length + 6;

type TokenState = 'active' | 'revoked' | 'expired' | 'exhausted';

function tokenState(r: Row, now: Date): TokenState {
  if (r.revoked_at != null) return 'revoked';
  if (r.expires_at != null && new Date(r.expires_at as string).getTime() <= now.getTime()) return 'expired';
  if (r.max_devices != null && Number(r.devices_enrolled) >= Number(r.max_devices)) return 'exhausted';
  return 'active';
}

function toEnrollmentToken(r: Row, now: Date) {
  return {
    id: r.id as string,
    name: r.name as string,
    token_prefix: r.token_prefix as string,
    relay_id: (r.relay_id as string | null) ?? null,
    max_devices: r.max_devices == null ? null : Number(r.max_devices),
    devices_enrolled: Number(r.devices_enrolled),
    expires_at: iso(r.expires_at),
    revoked_at: iso(r.revoked_at),
    state: tokenState(r, now),
    created_at: isoReq(r.created_at),
  };
}

export async function createEnrollmentToken(
  ctx: Ctx,
  input: {
    name?: string | undefined;
    max_devices?: number | undefined;
    ttl_s?: number | undefined;
    relay_id?: string | undefined;
  },
  actor: string,
) {
  const token = `${TOKEN_PREFIX}${randomToken()}`; // 256 random bits
  const now = ctx.clock.now();
  const expiresAt = input.ttl_s === undefined ? null : new Date(now.getTime() + input.ttl_s * 1000);
  const row = await ctx.db.tx(async (q) => {
    if (input.relay_id && !(await q.query('SELECT 1 FROM relays WHERE id = $1', [input.relay_id])).rows.length)
      throw apiError('PP_ERR_API_NOT_FOUND', { what: 'relay' });
    const r = await q.query<Row>(
      `INSERT INTO enrollment_tokens (id, name, token_hash, token_prefix, relay_id, max_devices, expires_at, created_by, created_at)
       VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9) RETURNING *`,
      [
        newId('enr'),
        input.name ?? '',
        sha256(token),
        token.slice(0, SHOWN_CHARS),
        input.relay_id ?? null,
        input.max_devices ?? null,
        expiresAt,
        actor,
        now,
      ],
    );
    const created = r.rows[0]!;
    await audit(q, actor, 'enrollment_token.create', created.id as string, {
      token_prefix: created.token_prefix,
      max_devices: input.max_devices ?? null,
      expires_at: expiresAt?.toISOString() ?? null,
    });
    return created;
  });
  const fp = ctx.serverKey.fingerprint;
  return {
    ...toEnrollmentToken(row, now),
    token,
    enroll_command: `pocketproxy-agent farm --server ${shellWord(ctx.config.publicUrl)} --enroll ${token} --fingerprint ${fp}`,
  };
}

/** The public URL comes from the operator's configuration; quoted when it holds anything a shell reads. */
const shellWord = (s: string) => (/^[A-Za-z0-9_./:@%+=,-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`);

export async function listEnrollmentTokens(ctx: Ctx) {
  const now = ctx.clock.now();
  const r = await ctx.db.query<Row>('SELECT * FROM enrollment_tokens ORDER BY created_at DESC, id');
  return { items: r.rows.map((x) => toEnrollmentToken(x, now)) };
}

/** Revokes a token: it enrolls nothing more; the devices it enrolled stay. Revoking twice keeps the first time. */
export async function revokeEnrollmentToken(ctx: Ctx, id: string, actor: string) {
  const now = ctx.clock.now();
  const row = await ctx.db.tx(async (q) => {
    const r = await q.query<Row>(
      'UPDATE enrollment_tokens SET revoked_at = coalesce(revoked_at, $2) WHERE id = $1 RETURNING *',
      [id, now],
    );
    if (!r.rows[0]) throw apiError('PP_ERR_API_NOT_FOUND', { what: 'enrollment token' });
    await audit(q, actor, 'enrollment_token.revoke', id, { token_prefix: r.rows[0].token_prefix });
    return r.rows[0];
  });
  return toEnrollmentToken(row, now);
}

export interface EnrollInput {
  token: string;
  host: { key: string; name: string };
  device: { hardware_id: string; kind: 'phone' | 'modem'; model?: string | undefined; name?: string | undefined };
  public_key: string;
  agent_version?: string | undefined;
}

/**
 * POST /api/public/enroll: in one transaction, takes one of the token's slots (the conditional UPDATE
 * locks the token's row, so two enrolls racing for the last slot are serialised and exactly one gets
 * it), finds or creates the farm host by the SHA-256 of its key, and creates the device. Any refusal
 * rolls all of it back: nothing is stored, no farm host either.
 */
export async function enroll(ctx: Ctx, input: EnrollInput): Promise<DeviceSecrets & { farm_host_id: string }> {
  const now = ctx.clock.now();
  const tokenHash = sha256(input.token.trim());
  const out = await ctx.db.tx(async (q) => {
    const slot = await q.query<{ id: string; token_prefix: string; relay_id: string | null }>(
      `UPDATE enrollment_tokens SET devices_enrolled = devices_enrolled + 1
        WHERE token_hash = $1 AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > $2)
          AND (max_devices IS NULL OR devices_enrolled < max_devices)
        RETURNING id, token_prefix, relay_id`,
      [tokenHash, now],
    );
    const token = slot.rows[0];
    if (!token) throw await refusal(q, tokenHash, now);
    const host = await farmHostFor(q, input.host, token, now);
    const dup = await q.query<{ id: string }>('SELECT id FROM devices WHERE farm_host_id = $1 AND hardware_id = $2', [
      host.id,
      input.device.hardware_id,
    ]);
    if (dup.rows[0])
      throw apiError('PP_ERR_API_DEVICE_ALREADY_ENROLLED', {
        hardware_id: input.device.hardware_id,
        device_id: dup.rows[0].id,
      });
    const model = input.device.model || null; // an empty model (after trimming) is none
    let secrets: DeviceSecrets;
    try {
      secrets = await createDevice(
        ctx,
        q,
        {
          name: input.device.name ?? defaultName(model ?? input.device.kind, input.device.hardware_id),
          relayId: token.relay_id ?? undefined,
          publicKey: input.public_key,
          agentVersion: input.agent_version,
          farm: {
            hostId: host.id,
            hostName: host.name,
            kind: input.device.kind,
            hardwareId: input.device.hardware_id,
            model,
          },
        },
        `enrollment:${token.token_prefix}`,
      );
    } catch (e) {
      // The backstop: concurrent enrolls of one host are already serialised on its row (farmHostFor), so
      // the SELECT above sees a device another committed; should one still slip through, the unique index
      // refuses it and the caller gets the same 409, not a generic conflict.
      if ((e as { code?: string }).code === '23505' && String((e as Error).message).includes('devices_farm_hardware'))
        throw apiError('PP_ERR_API_DEVICE_ALREADY_ENROLLED', {
          hardware_id: input.device.hardware_id,
          device_id: 'enrolled at the same time',
        });
      throw e;
    }
    await audit(q, `enrollment:${token.token_prefix}`, 'enrollment.enroll', secrets.device.id, {
      enrollment_token_id: token.id,
      farm_host_id: host.id,
      kind: input.device.kind,
      hardware_id: input.device.hardware_id,
    });
    return { ...secrets, farm_host_id: host.id, token_prefix: token.token_prefix };
  });
  ctx.bus.publish(
    'device_paired',
    { device_id: out.device.id, name: out.device.name, farm_host_id: out.farm_host_id },
    now,
  );
  // As pairing does: its relay learns the new key before the device's first initiation (bounded wait).
  await announceDevice(ctx, out.device.id);
  const { token_prefix: _, ...secrets } = out;
  return secrets;
}

/** "<model> <hardware id>", at most 64 characters (the API's name limit), the hardware id kept whole. */
function defaultName(model: string, hardwareId: string): string {
  const room = 64 - hardwareId.length - 1;
  return room <= 0 ? hardwareId.slice(0, 64) : `${model.slice(0, room).trim()} ${hardwareId}`;
}

/** Why no slot was taken: unknown (401), revoked, expired or exhausted (403). */
async function refusal(q: Queryable, tokenHash: string, now: Date) {
  const r = await q.query<Row>('SELECT * FROM enrollment_tokens WHERE token_hash = $1', [tokenHash]);
  const t = r.rows[0];
  if (!t) return apiError('PP_ERR_API_ENROLLMENT_TOKEN_INVALID');
  const state = tokenState(t, now);
  if (state === 'revoked') return apiError('PP_ERR_API_ENROLLMENT_TOKEN_REVOKED');
  if (state === 'expired') return apiError('PP_ERR_API_ENROLLMENT_TOKEN_EXPIRED', { expires_at: iso(t.expires_at)! });
  return apiError('PP_ERR_API_ENROLLMENT_TOKEN_EXHAUSTED', { max_devices: Number(t.max_devices) });
}

/**
 * The farm host of this key, created on first use (named as the farm asked). A key already known stays
 * that host whatever token it comes with (a host can be given a new token later); two first enrolls of
 * a new host racing each other meet on the unique hash (ON CONFLICT waits for the other's commit). The
 * UPDATE locks the host's row until commit, so enrolls of one host run one after the other whatever
 * their tokens: the duplicate check that follows sees the device a concurrent enroll created.
 */
async function farmHostFor(
  q: Queryable,
  host: { key: string; name: string },
  token: { id: string; token_prefix: string },
  now: Date,
): Promise<{ id: string; name: string }> {
  const keyHash = sha256(host.key);
  const found = await q.query<{ id: string; name: string }>(
    'UPDATE farm_hosts SET last_seen_at = $2 WHERE host_key_hash = $1 RETURNING id, name',
    [keyHash, now],
  );
  if (found.rows[0]) return found.rows[0];
  const made = await q.query<{ id: string; name: string }>(
    `INSERT INTO farm_hosts (id, host_key_hash, name, enrollment_token_id, created_at, last_seen_at)
     VALUES ($1, $2, $3, $4, $5, $5) ON CONFLICT (host_key_hash) DO NOTHING RETURNING id, name`,
    [newId('farm'), keyHash, host.name, token.id, now],
  );
  if (made.rows[0]) {
    await audit(q, `enrollment:${token.token_prefix}`, 'farm_host.create', made.rows[0].id, { name: host.name });
    return made.rows[0];
  }
  const other = await q.query<{ id: string; name: string }>(
    'UPDATE farm_hosts SET last_seen_at = $2 WHERE host_key_hash = $1 RETURNING id, name',
    [keyHash, now],
  );
  return other.rows[0]!;
}
