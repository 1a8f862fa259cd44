// Admin routes for webhooks (services/webhooks.ts; worker/webhooks.ts delivers them).
import { z } from 'zod';
import * as S from '@pocketproxy/api-schema';
import type { Ctx } from '../../context.js';
import type { Router } from '../route.js';
import { createWebhook, deleteWebhook, listWebhooks } from '../../services/webhooks.js';

export function webhookRoutes(r: Router, ctx: Ctx) {
  const tag = 'webhooks';
  r.add({
    method: 'GET',
    url: '/api/webhooks',
    auth: 'admin',
    tag,
    summary: 'List webhooks (without their secrets)',
    response: z.object({ items: z.array(S.Webhook), total: z.number().int() }),
    handler: () => listWebhooks(ctx),
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
    handler: ({ body, principal }) => createWebhook(ctx, body, principal.id),
  });
  r.add({
    method: 'DELETE',
    url: '/api/webhooks/:id',
    auth: 'admin',
    tag,
    status: 204,
    summary: 'Remove a webhook and its pending deliveries',
    params: z.object({ id: S.WebhookId }),
    handler: ({ params, principal }) => deleteWebhook(ctx, params.id, principal.id),
  });
}
