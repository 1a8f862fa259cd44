import type { Queryable } from '@pocketproxy/db';

/** Called inside the transaction that makes the change, so the change and its record stand or fall together. */
export async function audit(
  q: Queryable,
  actor: string,
  action: string,
  targetId: string | null,
  data: Record<string, unknown> = {},
): Promise<void> {
  await q.query('INSERT INTO audit_log (actor, action, target_id, data) VALUES ($1, $2, $3, $4)', [
    actor,
    action,
    targetId,
    JSON.stringify(data),
  ]);
}

/** A fleet event worth keeping (recent events, webhooks); also inside the change's transaction. */
export async function recordEvent(
  q: Queryable,
  type: string,
  deviceId: string | null,
  data: Record<string, unknown>,
  at: Date,
): Promise<void> {
  await q.query('INSERT INTO events (type, device_id, data, created_at) VALUES ($1, $2, $3, $4)', [
    type,
    deviceId,
    JSON.stringify(data),
    at,
  ]);
  await q.query(
    `INSERT INTO webhook_deliveries (webhook_id, event, payload, next_attempt_at)
     SELECT id, $1, $2, $3 FROM webhooks WHERE enabled AND $1 = ANY(events)`,
    [type, JSON.stringify({ type, device_id: deviceId, data, at: at.toISOString() }), at],
  );
}
