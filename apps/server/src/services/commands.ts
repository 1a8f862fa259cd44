// Device commands: pending → sent → acked → succeeded | failed, or expired by the worker.
// Delivery has two paths: an immediate push through the tunnel that holds the device, and the next
// heartbeat's response for whatever the push could not deliver (device offline, tunnel restarting).
import type { Queryable } from '@pocketproxy/db';
import type { Ctx } from '../context.js';
import { apiError } from '../errors.js';
import { newId } from '../security/crypto.js';
import { audit, recordEvent } from './audit.js';
import { recordRotationIp } from './devices.js';
import { toCommand, type Row } from './rows.js';

export type CommandView = ReturnType<typeof toCommand>;

const NEXT: Record<string, string[]> = {
  pending: ['sent', 'acked', 'succeeded', 'failed', 'expired'],
  sent: ['acked', 'succeeded', 'failed', 'expired'],
  acked: ['succeeded', 'failed', 'expired'],
};

export interface QueueOptions {
  /** Runs in the command's transaction with the device row locked (so two requests for one device
   * take turns), before the insert: a command it returns answers instead of a new one (nothing is
   * inserted, pushed or published); what it throws refuses the request. services/rotation.ts. */
  before?: (q: Queryable, now: Date) => Promise<CommandView | undefined>;
}

/** The one path of every command (manual, scheduled, bulk, rotation link): insert + audit in one
 * transaction, a command_updated event, then an immediate push to the device's tunnel. */
export async function queueCommand(
  ctx: Ctx,
  deviceId: string,
  input: { type: string; payload: Record<string, unknown>; ttl_s: number },
  source: string,
  actor: string,
  opts: QueueOptions = {},
): Promise<CommandView> {
  const now = ctx.clock.now();
  const { cmd, pushUrl, joined } = await ctx.db.tx(async (q) => {
    const d = (
      await q.query<{ id: string; push_url: string | null; capabilities: string[] | null }>(
        `SELECT d.id, r.push_url, d.capabilities FROM devices d LEFT JOIN relays r ON r.id = d.relay_id WHERE d.id = $1${opts.before ? ' FOR UPDATE OF d' : ''}`,
        [deviceId],
      )
    ).rows[0];
    if (!d) throw apiError('PP_ERR_API_NOT_FOUND', { what: 'device' });
    refuseUnsupported(input.type, d.capabilities);
    const existing = await opts.before?.(q, now);
    if (existing) return { cmd: existing, pushUrl: null, joined: true };
    const id = newId('cmd');
    const r = await q.query<Row>(
      `INSERT INTO commands (id, device_id, type, payload, source, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING *`,
      [
        id,
        deviceId,
        input.type,
        JSON.stringify(input.payload),
        source,
        now,
        new Date(now.getTime() + input.ttl_s * 1000),
      ],
    );
    await audit(q, actor, 'command.create', id, { device_id: deviceId, type: input.type, source });
    return { cmd: toCommand(r.rows[0]!), pushUrl: d.push_url, joined: false };
  });
  if (joined) return cmd;
  ctx.bus.publish('command_updated', cmd, now);
  if (!pushUrl) return cmd;
  const delivered = await ctx.push
    .push(pushUrl, deviceId, { kind: 'command', id: cmd.id, type: cmd.type, payload: cmd.payload })
    .catch(() => false);
  if (!delivered) return cmd;
  // The device may already have acknowledged it over REST by now: only a still-pending command becomes sent.
  const sent = await ctx.db.query<Row>(
    `UPDATE commands SET status = 'sent', sent_at = $2 WHERE id = $1 AND status = 'pending' RETURNING *`,
    [cmd.id, ctx.clock.now()],
  );
  if (sent.rows[0]) {
    const out = toCommand(sent.rows[0]);
    ctx.bus.publish('command_updated', out, ctx.clock.now());
    return out;
  }
  const cur = await ctx.db.query<Row>('SELECT * FROM commands WHERE id = $1', [cmd.id]);
  return cur.rows[0] ? toCommand(cur.rows[0]) : cmd;
}

/** A command type outside what the device's agent reported it can run (devices.capabilities) is refused,
 * nothing queued; a device that has reported nothing (an older agent) takes every command. */
export function refuseUnsupported(type: string, capabilities: readonly string[] | null): void {
  if (capabilities && !capabilities.includes(type))
    throw apiError('PP_ERR_API_COMMAND_UNSUPPORTED', {
      type,
      capabilities: capabilities.length ? capabilities.join(', ') : 'none',
    });
}

/** The worker's expireCommands (inside its job transaction): open commands past their expiry end as
 * expired; `after` announces them. */
export async function expireDueCommands(ctx: Ctx, q: Queryable, now: Date) {
  const r = await q.query<Row>(
    `UPDATE commands SET status = 'expired', finished_at = $1 WHERE status IN ('pending', 'sent', 'acked') AND expires_at <= $1 RETURNING *`,
    [now],
  );
  return {
    changed: r.rowCount,
    after: () => {
      for (const c of r.rows) ctx.bus.publish('command_updated', toCommand(c), now);
    },
  };
}

/** One command, or undefined. */
export async function getCommand(q: Queryable, id: string): Promise<CommandView | undefined> {
  const r = await q.query<Row>('SELECT * FROM commands WHERE id = $1', [id]);
  return r.rows[0] ? toCommand(r.rows[0]) : undefined;
}

export async function listCommands(q: Queryable, deviceId: string, limit: number, offset: number) {
  const total = (
    await q.query<{ n: number }>('SELECT count(*)::int AS n FROM commands WHERE device_id = $1', [deviceId])
  ).rows[0]!.n;
  const r = await q.query<Row>(
    'SELECT * FROM commands WHERE device_id = $1 ORDER BY created_at DESC, id LIMIT $2 OFFSET $3',
    [deviceId, limit, offset],
  );
  return { items: r.rows.map(toCommand), total };
}

/** Moves a command on; returns undefined when it is already there. Rejects impossible moves. */
export async function transition(
  ctx: Ctx,
  deviceId: string,
  cmdId: string,
  next: string,
  result: Record<string, unknown> | null,
): Promise<CommandView | undefined> {
  const now = ctx.clock.now();
  const out = await ctx.db.tx(async (q) => {
    const cur = (
      await q.query<Row>('SELECT * FROM commands WHERE id = $1 AND device_id = $2 FOR UPDATE', [cmdId, deviceId])
    ).rows[0];
    if (!cur) throw apiError('PP_ERR_API_NOT_FOUND', { what: 'command' });
    const status = cur.status as string;
    if (status === next) return undefined;
    if (!NEXT[status]?.includes(next)) throw apiError('PP_ERR_API_COMMAND_STATE', { id: cmdId, status, next });
    const terminal = next === 'succeeded' || next === 'failed' || next === 'expired';
    const r = await q.query<Row>(
      `UPDATE commands SET status = $2, result = coalesce($3, result),
         sent_at = CASE WHEN $2 = 'sent' THEN $4 ELSE sent_at END,
         acked_at = CASE WHEN $2 = 'acked' THEN $4 ELSE acked_at END,
         finished_at = CASE WHEN $5 THEN $4 ELSE finished_at END
       WHERE id = $1 RETURNING *`,
      [cmdId, next, result === null ? null : JSON.stringify(result), now, terminal],
    );
    const cmd = toCommand(r.rows[0]!);
    if (next === 'failed')
      await recordEvent(q, 'command_failed', deviceId, { command_id: cmdId, type: cmd.type, result }, now);
    if (next === 'succeeded' && cmd.type === 'rotate_ip' && result && typeof result.new_ip === 'string') {
      const old = (
        await q.query<{ current_ip: string | null }>('SELECT current_ip FROM devices WHERE id = $1', [deviceId])
      ).rows[0];
      const oldIp = typeof result.old_ip === 'string' ? result.old_ip : (old?.current_ip ?? null);
      await recordRotationIp(ctx, q, deviceId, oldIp, result.new_ip.slice(0, 64), new Date(cmd.created_at));
    }
    return cmd;
  });
  if (out) ctx.bus.publish('command_updated', out, now);
  return out;
}
