// Pairing codes: short, human-typable, single-use, expiring. Only a hash is stored; the code itself is
// the device's one-time credential for POST /api/public/pair.
import { randomInt } from 'node:crypto';
import QRCode from 'qrcode';
import type { Ctx } from '../context.js';
import { apiError } from '../errors.js';
import { sha256 } from '../security/crypto.js';
import { audit } from './audit.js';
import { announceDevice, createDevice, type DeviceSecrets } from './devices.js';

// Crockford base32 without I, L, O, U: nothing to misread on a phone screen.
const ALPHABET = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
export const normalizeCode = (code: string) =>
  code
    .toUpperCase()
    .replace(/[^0-9A-Z]/g, '')
    .replace(/O/g, '0')
    .replace(/[IL]/g, '1');

export async function createPairingCode(
  ctx: Ctx,
  input: { device_name?: string | undefined; relay_id?: string | undefined; ttl_s: number },
  actor: string,
) {
  let raw = '';
  for (let i = 0; i < 10; i++) raw += ALPHABET[randomInt(ALPHABET.length)];
  const code = `${raw.slice(0, 5)}-${raw.slice(5)}`; // 50 bits
  const now = ctx.clock.now();
  const expiresAt = new Date(now.getTime() + input.ttl_s * 1000);
  await ctx.db.tx(async (q) => {
    if (input.relay_id && !(await q.query('SELECT 1 FROM relays WHERE id = $1', [input.relay_id])).rows.length)
      throw apiError('PP_ERR_API_NOT_FOUND', { what: 'relay' });
    await q.query(
      'INSERT INTO pairing_codes (code_hash, code_prefix, device_name, relay_id, created_by, expires_at, created_at) VALUES ($1,$2,$3,$4,$5,$6,$7)',
      [
        sha256(normalizeCode(code)),
        raw.slice(0, 4),
        input.device_name ?? null,
        input.relay_id ?? null,
        actor,
        expiresAt,
        now,
      ],
    );
    await audit(q, actor, 'pairing_code.create', null, {
      code_prefix: raw.slice(0, 4),
      expires_at: expiresAt.toISOString(),
    });
  });
  // The pairing URI carries the server key's fingerprint: the agent checks the relay key it is given
  // against it (docs/api.md "Pairing: the server fingerprint"), so the QR code is all a device needs.
  const fp = ctx.serverKey.fingerprint;
  const pairUrl = `pocketproxy://pair?server=${encodeURIComponent(ctx.config.publicUrl)}&code=${code}&fp=${fp}`;
  const qrSvg = await QRCode.toString(pairUrl, { type: 'svg', errorCorrectionLevel: 'M', margin: 2 });
  return { code, expires_at: expiresAt.toISOString(), qr_svg: qrSvg, pair_url: pairUrl, server_fingerprint: fp };
}

/** Consumes a code and creates its device in one transaction: a code pairs exactly one device. */
export async function pair(
  ctx: Ctx,
  input: {
    code: string;
    public_key?: string | undefined;
    name?: string | undefined;
    agent_version?: string | undefined;
  },
): Promise<DeviceSecrets & { code_prefix: string }> {
  const now = ctx.clock.now();
  const out = await ctx.db.tx(async (q) => {
    const r = await q.query<{ code_prefix: string; device_name: string | null; relay_id: string | null }>(
      `UPDATE pairing_codes SET used_at = $2 WHERE code_hash = $1 AND used_at IS NULL AND expires_at > $2 RETURNING code_prefix, device_name, relay_id`,
      [sha256(normalizeCode(input.code)), now],
    );
    const code = r.rows[0];
    if (!code) throw apiError('PP_ERR_API_PAIRING_CODE_INVALID');
    const secrets = await createDevice(
      ctx,
      q,
      {
        name: code.device_name ?? input.name,
        relayId: code.relay_id ?? undefined,
        publicKey: input.public_key,
        agentVersion: input.agent_version,
      },
      `pairing:${code.code_prefix}`,
    );
    await q.query('UPDATE pairing_codes SET device_id = $2 WHERE code_hash = $1', [
      sha256(normalizeCode(input.code)),
      secrets.device.id,
    ]);
    return { ...secrets, code_prefix: code.code_prefix };
  });
  ctx.bus.publish(
    'device_paired',
    { device_id: out.device.id, name: out.device.name, code_prefix: out.code_prefix },
    now,
  );
  // Its relay learns the new key before the agent's first initiation (else that one is kept and answered
  // after the relay's own refresh); bounded wait, never fails the pairing.
  await announceDevice(ctx, out.device.id);
  return out;
}
