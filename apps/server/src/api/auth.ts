// Three kinds of caller: admins (JWT from /api/auth/login), devices (their pairing token, stored hashed)
// and internal components (the tunnel process: the internal token).
import { errors as joseErrors, jwtVerify, SignJWT } from 'jose';
import type { FastifyRequest } from 'fastify';
import type { Ctx } from '../context.js';
import { apiError } from '../errors.js';
import { sha256, timingSafeEqualStr } from '../security/crypto.js';

export type AuthKind = 'admin' | 'device' | 'internal' | 'public';
export interface Principal {
  kind: AuthKind;
  id: string;
}

export async function issueJwt(ctx: Ctx, admin: { id: string; email: string }) {
  const exp = Math.floor(ctx.clock.now().getTime() / 1000) + ctx.config.jwtTtlS;
  const token = await new SignJWT({ email: admin.email })
    .setProtectedHeader({ alg: 'HS256' })
    .setSubject(admin.id)
    .setIssuedAt(Math.floor(ctx.clock.now().getTime() / 1000))
    .setExpirationTime(exp)
    .setAudience('pocketproxy-admin')
    .sign(ctx.jwtKey);
  return { token, expires_at: new Date(exp * 1000).toISOString() };
}

export async function verifyJwt(ctx: Ctx, token: string): Promise<Principal> {
  try {
    const { payload } = await jwtVerify(token, ctx.jwtKey, {
      audience: 'pocketproxy-admin',
      algorithms: ['HS256'],
      currentDate: ctx.clock.now(),
    });
    if (!payload.sub) throw apiError('PP_ERR_API_UNAUTHENTICATED');
    return { kind: 'admin', id: payload.sub };
  } catch (e) {
    if (e instanceof joseErrors.JWTExpired) throw apiError('PP_ERR_API_SESSION_EXPIRED');
    throw apiError('PP_ERR_API_UNAUTHENTICATED');
  }
}

export function bearer(req: FastifyRequest): string | null {
  const h = req.headers.authorization;
  if (!h?.startsWith('Bearer ')) return null;
  const t = h.slice(7).trim();
  return t.length > 0 && t.length < 4096 ? t : null;
}

/** Device tokens resolve to a device id; cached briefly because every heartbeat needs it. */
export class DeviceTokenCache {
  readonly #m = new Map<string, { id: string; until: number }>();
  constructor(private readonly ttlMs = 30_000) {}
  async resolve(ctx: Ctx, token: string): Promise<string | null> {
    const h = sha256(token);
    const now = Date.now();
    const hit = this.#m.get(h);
    if (hit && hit.until > now) return hit.id;
    const r = await ctx.db.query<{ id: string }>('SELECT id FROM devices WHERE token_hash = $1', [h], {
      name: 'device_by_token',
    });
    const id = r.rows[0]?.id ?? null;
    if (id) {
      if (this.#m.size > 50_000) this.#m.clear();
      this.#m.set(h, { id, until: now + this.ttlMs });
    } else this.#m.delete(h);
    return id;
  }
  forget(deviceId: string) {
    for (const [k, v] of this.#m) if (v.id === deviceId) this.#m.delete(k);
  }
}

export async function authenticate(
  ctx: Ctx,
  cache: DeviceTokenCache,
  kind: AuthKind,
  req: FastifyRequest,
  params: Record<string, string>,
): Promise<Principal> {
  if (kind === 'public') return { kind, id: req.ip };
  const token = bearer(req);
  if (!token) throw apiError('PP_ERR_API_UNAUTHENTICATED');
  if (kind === 'admin') return verifyJwt(ctx, token);
  if (kind === 'internal') {
    if (!timingSafeEqualStr(token, ctx.internalToken)) throw apiError('PP_ERR_API_UNAUTHENTICATED');
    return { kind, id: 'internal' };
  }
  const id = await cache.resolve(ctx, token);
  if (!id) throw apiError('PP_ERR_API_UNAUTHENTICATED');
  if (params.id !== undefined && params.id !== id) throw apiError('PP_ERR_API_FORBIDDEN');
  return { kind, id };
}
