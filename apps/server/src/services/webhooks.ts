// Webhooks an operator registers (GET/POST/DELETE /api/webhooks): fleet events POSTed to its URL, signed with
// HMAC-SHA256. The secret is sealed at rest and shown once, at creation. Deliveries are queued with the
// event (audit.ts recordEvent) and sent by the worker (worker/webhooks.ts).
import type { z } from 'zod';
import type * as S from '@pocketproxy/api-schema';
import type { Ctx } from '../context.js';
import { apiError } from '../errors.js';
import { newId, randomToken } from '../security/crypto.js';
import { audit } from './audit.js';
import { iso, type Row } from './rows.js';

const toWebhook = (r: Row) => ({
  id: r.id as string,
  url: r.url as string,
  events: (r.events as z.infer<typeof S.WebhookEvent>[]) ?? [],
  enabled: Boolean(r.enabled),
  created_at: iso(r.created_at)!,
});

/** Every webhook, without its secret. */
export async function listWebhooks(ctx: Ctx) {
  const rows = (
    await ctx.db.query<Row>('SELECT id, url, events, enabled, created_at FROM webhooks ORDER BY created_at, id')
  ).rows.map(toWebhook);
  return { items: rows, total: rows.length };
}

/** Adds a webhook (audited); answers it with its signing secret, the only time the secret leaves. */
export async function createWebhook(
  ctx: Ctx,
  body: { url: string; events: z.infer<typeof S.WebhookEvent>[]; enabled: boolean; secret?: string | undefined },
  actor: string,
) {
  const id = newId('whk');
  const secret = body.secret ?? `whsec_${randomToken(24)}`;
  const row = await ctx.db.tx(async (q) => {
    const r0 = await q.query<Row>(
      'INSERT INTO webhooks (id, url, secret_enc, events, enabled, created_at) VALUES ($1, $2, $3, $4, $5, $6) RETURNING id, url, events, enabled, created_at',
      [id, body.url, ctx.box.seal(secret), body.events, body.enabled, ctx.clock.now()],
    );
    await audit(q, actor, 'webhook.create', id, { url: body.url, events: body.events });
    return r0.rows[0]!;
  });
  return { ...toWebhook(row), secret };
}

/** Removes a webhook and its pending deliveries (audited); 404 when there is none. */
export async function deleteWebhook(ctx: Ctx, id: string, actor: string): Promise<void> {
  await ctx.db.tx(async (q) => {
    const r0 = await q.query('DELETE FROM webhooks WHERE id = $1 RETURNING id', [id]);
    if (!r0.rows.length) throw apiError('PP_ERR_API_NOT_FOUND', { what: 'webhook' });
    await audit(q, actor, 'webhook.delete', id);
  });
}
