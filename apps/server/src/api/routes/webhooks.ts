// Admin routes for webhooks: fleet events POSTed to an operator's URL, signed with HMAC-SHA256
// (worker/webhooks.ts delivers them). The secret is sealed at rest and shown once, at creation.
import { z } from 'zod';
import * as S from '@pocketproxy/api-schema';
import type { Ctx } from '../../context.js';
import type { Router } from '../route.js';
import { apiError } from '../../errors.js';
import { newId, randomToken } from '../../security/crypto.js';
import { audit } from '../../services/audit.js';
import { iso, type Row } from '../../services/rows.js';

const toWebhook = (r: Row) => ({
  id: r.id as string,
  url: r.url as string,
  events: (r.events as z.infer<typeof S.WebhookEvent>[]) ?? [],
  enabled: Boolean(r.enabled),
  created_at: iso(r.created_at)!,
});

export function webhookRoutes(r: Router, ctx: Ctx) {
  const tag = 'webhooks';
  r.add({
    method: 'GET',
    url: '/api/webhooks',
    auth: 'admin',
    tag,
    summary: 'List webhooks (without their secrets)',
    response: z.object({ items: z.array(S.Webhook), total: z.number().int() }),
    handler: async () => {
      const rows = (
        await ctx.db.query<Row>('SELECT id, url, events, enabled, created_at FROM webhooks ORDER BY created_at, id')
      ).rows.map(toWebhook);
      return { items: rows, total: rows.length };
    },
  });
  r.add({
    method: 'POST',
    url: '/api/webhooks',
    auth: 'admin',
    tag,
    status: 201,
    summary: 'Add a webhook; answers its signing secret once',
    body: S.WebhookCreate,
    response: S.Webhook,
    handler: async ({ body, principal }) => {
      const id = newId('whk');
      const secret = body.secret ?? `whsec_${randomToken(24)}`;
      const row = await ctx.db.tx(async (q) => {
        const r0 = await q.query<Row>(
          'INSERT INTO webhooks (id, url, secret_enc, events, enabled, created_at) VALUES ($1, $2, $3, $4, $5, $6) RETURNING id, url, events, enabled, created_at',
          [id, body.url, ctx.box.seal(secret), body.events, body.enabled, ctx.clock.now()],
        );
        await audit(q, principal.id, 'webhook.create', id, { url: body.url, events: body.events });
        return r0.rows[0]!;
      });
      return { ...toWebhook(row), secret };
    },
  });
  r.add({
    method: 'DELETE',
    url: '/api/webhooks/:id',
    auth: 'admin',
    tag,
    status: 204,
    summary: 'Remove a webhook and its pending deliveries',
    params: z.object({ id: S.WebhookId }),
    handler: async ({ params, principal }) => {
      await ctx.db.tx(async (q) => {
        const r0 = await q.query('DELETE FROM webhooks WHERE id = $1 RETURNING id', [params.id]);
        if (!r0.rows.length) throw apiError('PP_ERR_API_NOT_FOUND', { what: 'webhook' });
        await audit(q, principal.id, 'webhook.delete', params.id);
      });
    },
  });
}
