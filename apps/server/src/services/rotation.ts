// IP rotation, whoever asks for it: the operator (one device, `api`; many at once, `bulk`), the worker's
// schedule (`schedule`) and a connection's public rotation link (`rotation_link`) all call
// requestRotation, which queues rotate_ip through queueCommand: pushed to the device's tunnel at once,
// audited, a command_updated event; results (and their ip_changed / command_failed events and
// webhooks) come back through transition() the same way whatever the source.
//
// Waiting for a result (the link's ?wait=): the command_updated event of the result wakes the waiter.
// The event bus fans events out to every API instance on the same PostgreSQL (LISTEN/NOTIFY, coalesced
// per 100 ms), so a result reported to another instance wakes it too, about 0.1 s later. NOTIFY is not
// a guarantee (an event over 7000 bytes is not fanned out; a dropped LISTEN connection loses what
// happens until it is back), so each waiter also re-reads its command row every POLL_MS, and once more
// when its time is up. With PGlite there is one instance, and the bus is local.
import type { Queryable } from '@pocketproxy/db';
import type { Ctx } from '../context.js';
import type { EventBus } from './events.js';
import { apiError } from '../errors.js';
import { openRotation, queueCommand, type CommandView, type QueueOptions } from './commands.js';
import { toCommand, type Row } from './rows.js';

export type RotationSource = 'api' | 'bulk' | 'schedule' | 'rotation_link';

export interface RotationRequest {
  source: RotationSource;
  /** Audit actor: an admin id, `worker`, `link:<connection id>`. */
  actor: string;
  ttl_s: number;
  payload?: Record<string, unknown>;
  /** Answer with the device's rotation that is still open instead of queueing another (default true). */
  join?: boolean;
  /** Refuse (429 PP_ERR_API_ROTATION_TOO_SOON) while the device's last rotation started less than this
   * many seconds ago; null / 0: no minimum. A rotation still open is joined first, whatever its age. */
  minIntervalS?: number | null;
}

export interface RotationOutcome {
  command: CommandView;
  /** The request joined a rotation that was already open. */
  joined: boolean;
}

const FINISHED = new Set(['succeeded', 'failed', 'expired']);
export const isFinished = (c: { status: string }) => FINISHED.has(c.status);

/** The device's latest rotation, in whatever state. */
export async function latestRotation(q: Queryable, deviceId: string): Promise<CommandView | undefined> {
  const r = await q.query<Row>(
    `SELECT * FROM commands WHERE device_id = $1 AND type = 'rotate_ip' ORDER BY created_at DESC, id DESC LIMIT 1`,
    [deviceId],
  );
  return r.rows[0] ? toCommand(r.rows[0]) : undefined;
}

export async function requestRotation(ctx: Ctx, deviceId: string, req: RotationRequest): Promise<RotationOutcome> {
  const join = req.join ?? true;
  const minS = req.minIntervalS ?? 0;
  let joined = false;
  const opts: QueueOptions = {};
  if (join || minS > 0) {
    // In queueCommand's transaction with the device row locked: two requests for one device take
    // turns, so the second sees the first's rotation (and joins it) instead of stacking another.
    opts.before = async (q, now) => {
      if (join) {
        const open = await openRotation(q, deviceId);
        if (open) {
          joined = true;
          return open;
        }
      }
      if (minS > 0) {
        const last = await latestRotation(q, deviceId);
        const leftMs = last ? Date.parse(last.created_at) + minS * 1000 - now.getTime() : 0;
        if (leftMs > 0)
          throw apiError('PP_ERR_API_ROTATION_TOO_SOON', { min_s: minS, retry_s: Math.ceil(leftMs / 1000) });
      }
      return undefined;
    };
  }
  const command = await queueCommand(
    ctx,
    deviceId,
    { type: 'rotate_ip', payload: req.payload ?? {}, ttl_s: req.ttl_s },
    req.source,
    req.actor,
    opts,
  );
  return { command, joined };
}

/** Waiters per command id behind one bus subscription (per bus), however many requests wait. */
class CommandWatch {
  readonly #waiters = new Map<string, Set<(c: CommandView) => void>>();

  constructor(bus: EventBus) {
    bus.subscribe((e) => {
      if (e.type !== 'command_updated' || typeof e.data.id !== 'string' || !FINISHED.has(String(e.data.status))) return;
      const set = this.#waiters.get(e.data.id);
      if (set) for (const fn of [...set]) fn(e.data as unknown as CommandView);
    });
  }

  on(id: string, fn: (c: CommandView) => void): () => void {
    let set = this.#waiters.get(id);
    if (!set) {
      set = new Set();
      this.#waiters.set(id, set);
    }
    set.add(fn);
    return () => {
      set.delete(fn);
      if (!set.size && this.#waiters.get(id) === set) this.#waiters.delete(id);
    };
  }
}
const watches = new WeakMap<EventBus, CommandWatch>();

/** How often a waiter re-reads its command row, in case its event was lost on the way. */
export const POLL_MS = 5000;

/**
 * Resolves with the command once it has finished (succeeded, failed, expired), or with its state when
 * `timeoutMs` has passed or `signal` aborted (the client went away). Never rejects: a database error
 * answers the state it had.
 */
export function waitForCommand(
  ctx: Ctx,
  cmd: CommandView,
  timeoutMs: number,
  signal?: AbortSignal,
): Promise<CommandView> {
  if (isFinished(cmd)) return Promise.resolve(cmd);
  let watch = watches.get(ctx.bus);
  if (!watch) {
    watch = new CommandWatch(ctx.bus);
    watches.set(ctx.bus, watch);
  }
  return new Promise((resolve) => {
    let last = cmd;
    let done = false;
    const finish = (c: CommandView) => {
      if (done) return;
      done = true;
      off();
      clearTimeout(deadline);
      clearInterval(poll);
      signal?.removeEventListener('abort', onAbort);
      resolve(c);
    };
    const read = async (final: boolean) => {
      try {
        const r = await ctx.db.query<Row>('SELECT * FROM commands WHERE id = $1', [cmd.id]);
        if (r.rows[0]) last = toCommand(r.rows[0]);
      } catch {
        /* keep what we had */
      }
      if (final || isFinished(last)) finish(last);
    };
    const onAbort = () => finish(last);
    const off = watch.on(cmd.id, finish);
    const deadline = setTimeout(() => void read(true), timeoutMs);
    const poll = setInterval(() => void read(false), POLL_MS);
    signal?.addEventListener('abort', onAbort, { once: true });
    if (signal?.aborted) return onAbort();
    // It may have finished between the caller's read and our subscription.
    void read(false);
  });
}

/** What the rotation link and its status URL answer about a rotation. */
export function rotationView(c: CommandView, statusUrl: string) {
  const ok = c.status === 'succeeded';
  const r = c.result ?? {};
  return {
    status: (isFinished(c) ? c.status : 'pending') as 'pending' | 'succeeded' | 'failed' | 'expired',
    command_id: c.id,
    old_ip: ok && typeof r.old_ip === 'string' ? r.old_ip : null,
    new_ip: ok && typeof r.new_ip === 'string' ? r.new_ip : null,
    rotated_at: ok ? c.finished_at : null,
    requested_at: c.created_at,
    status_url: statusUrl,
  };
}
