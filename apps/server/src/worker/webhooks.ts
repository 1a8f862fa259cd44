// Webhook delivery: HMAC-SHA256-signed POSTs, retried with exponential back-off (2^n s, capped at an
// hour, failed after 10 attempts). Deliveries are claimed with FOR UPDATE SKIP LOCKED, so several
// workers share the queue without sending one twice.
import { createHmac } from 'node:crypto';
import type { Ctx } from '../context.js';

export const MAX_ATTEMPTS = 10;
export const backoffS = (attempts: number) => Math.min(3600, 2 ** attempts);

export function signature(secret: string, timestamp: string, body: string): string {
  return `sha256=${createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex')}`;
}

export type Poster = (url: string, body: string, headers: Record<string, string>) => Promise<number>;

export const fetchPoster: Poster = async (url, body, headers) => {
  const res = await fetch(url, {
    method: 'POST',
    body,
    headers: { 'content-type': 'application/json', ...headers },
    signal: AbortSignal.timeout(5000),
    redirect: 'manual',
  });
  return res.status;
};

export async function deliverWebhooks(
  ctx: Ctx,
  now: Date,
  post: Poster = fetchPoster,
  batch = 20,
): Promise<{ delivered: number; failed: number }> {
  const claimed = await ctx.db.tx(async (q) => {
    const r = await q.query<{
      id: number;
      url: string;
      secret_enc: string;
      event: string;
      payload: unknown;
      attempts: number;
    }>(
      `SELECT d.id, w.url, w.secret_enc, d.event, d.payload, d.attempts FROM webhook_deliveries d JOIN webhooks w ON w.id = d.webhook_id
        WHERE d.status = 'pending' AND d.next_attempt_at <= $1 ORDER BY d.next_attempt_at LIMIT $2 FOR UPDATE OF d SKIP LOCKED`,
      [now, batch],
    );
    // Push the claimed rows' next attempt out so a crash mid-send retries later instead of at once.
    if (r.rows.length)
      await q.query(
        `UPDATE webhook_deliveries SET next_attempt_at = $2::timestamptz + interval '60 seconds' WHERE id = ANY($1::bigint[])`,
        [r.rows.map((x) => x.id), now],
      );
    return r.rows;
  });
  let delivered = 0;
  let failed = 0;
  for (const d of claimed) {
    const body = JSON.stringify(d.payload);
    const ts = String(Math.floor(now.getTime() / 1000));
    let error: string | null = null;
    try {
      const status = await post(d.url, body, {
        'x-pocketproxy-event': d.event,
        'x-pocketproxy-timestamp': ts,
        'x-pocketproxy-signature': signature(ctx.box.open(d.secret_enc), ts, body),
      });
      if (status < 200 || status >= 300) error = `HTTP ${status}`;
    } catch (e) {
      error = (e as Error).message.slice(0, 200);
    }
    const attempts = d.attempts + 1;
    if (!error) {
      delivered++;
      await ctx.db.query(
        `UPDATE webhook_deliveries SET status = 'delivered', attempts = $2, delivered_at = $3, last_error = NULL WHERE id = $1`,
        [d.id, attempts, now],
      );
    } else {
      failed++;
      const giveUp = attempts >= MAX_ATTEMPTS;
      await ctx.db.query(
        `UPDATE webhook_deliveries SET status = $2, attempts = $3, last_error = $4, next_attempt_at = $5 WHERE id = $1`,
        [d.id, giveUp ? 'failed' : 'pending', attempts, error, new Date(now.getTime() + backoffS(attempts) * 1000)],
      );
    }
  }
  return { delivered, failed };
}
