import type { Ctx } from '../context.js';
import { hashPassword, newId, verifyPassword } from '../security/crypto.js';
import { audit } from './audit.js';

/** First start: create the admin named by the environment when there is none. There is no default password. */
export async function ensureFirstAdmin(ctx: Ctx): Promise<'created' | 'exists' | 'none-configured'> {
  const n = (await ctx.db.query<{ n: number }>('SELECT count(*)::int AS n FROM admins')).rows[0]!.n;
  if (n > 0) return 'exists';
  if (!ctx.config.admin) return 'none-configured';
  const hash = await hashPassword(ctx.config.admin.password);
  await ctx.db.tx(async (q) => {
    await q.query('INSERT INTO admins (id, email, password_hash) VALUES ($1, $2, $3) ON CONFLICT (email) DO NOTHING', [
      newId('adm'),
      ctx.config.admin!.email,
      hash,
    ]);
    await audit(q, 'system', 'admin.create', null, { email: ctx.config.admin!.email });
  });
  return 'created';
}

// Compared against when the email is unknown, so a wrong email costs as long as a wrong password.
let decoy: Promise<string> | null = null;

export async function checkLogin(
  ctx: Ctx,
  email: string,
  password: string,
): Promise<{ id: string; email: string } | null> {
  const r = (
    await ctx.db.query<{ id: string; email: string; password_hash: string }>(
      'SELECT id, email, password_hash FROM admins WHERE email = $1',
      [email],
    )
  ).rows[0];
  if (!r) {
    decoy ??= hashPassword('decoy-password-never-valid');
    await verifyPassword(password, await decoy);
    return null;
  }
  if (!(await verifyPassword(password, r.password_hash))) return null;
  await ctx.db.query('UPDATE admins SET last_login_at = $2 WHERE id = $1', [r.id, ctx.clock.now()]);
  return { id: r.id, email: r.email };
}
