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
import { isPPError } from '@pocketproxy/errors';
import { queueCommand, type CommandView, type QueueOptions } from './commands.js';
import { sha256 } from '../security/crypto.js';
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

/** A rotation that is already queued answers for a new request instead of stacking another one. */
export async function openRotation(q: Queryable, deviceId: string): Promise<CommandView | undefined> {
  const r = await q.query<Row>(
    `SELECT * FROM commands WHERE device_id = $1 AND type = 'rotate_ip' AND status IN ('pending', 'sent', 'acked') ORDER BY created_at DESC LIMIT 1`,
    [deviceId],
  );
  return r.rows[0] ? toCommand(r.rows[0]) : undefined;
}

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

/** fn over items, at most `limit` at a time; results in the items' order. */
async function mapLimited<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const lane = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, lane));
  return out;
}

/** Devices a bulk rotation queues at once (each is a transaction and a push to its relay). */
const BULK_CONCURRENCY = 16;

export interface BulkRotation {
  device_id: string;
  outcome: 'queued' | 'joined' | 'not_found' | 'failed';
  command: CommandView | null;
  error: string | null;
}

/** Bulk (POST /api/devices/rotate, POST /api/connections/bulk rotate): one rotation per device, a few at a
 * time, each joining an open one; an answer per device in the order given, a failure naming its code. */
export async function rotateMany(
  ctx: Ctx,
  deviceIds: readonly string[],
  req: { actor: string; ttl_s: number },
): Promise<BulkRotation[]> {
  return mapLimited(deviceIds, BULK_CONCURRENCY, async (id): Promise<BulkRotation> => {
    try {
      const { command, joined } = await requestRotation(ctx, id, {
        source: 'bulk',
        actor: req.actor,
        ttl_s: req.ttl_s,
      });
      return { device_id: id, outcome: joined ? 'joined' : 'queued', command, error: null };
    } catch (e) {
      const code = isPPError(e) ? e.code : 'PP_ERR_API_INTERNAL';
      if (!isPPError(e)) ctx.log.error({ err: e, device_id: id }, 'bulk rotation failed');
      return {
        device_id: id,
        outcome: code === 'PP_ERR_API_NOT_FOUND' ? 'not_found' : 'failed',
        command: null,
        error: code,
      };
    }
  });
}

/** How long a worker tick waits for the scheduled rotations it queued; the rest go on in the background. */
const SCHEDULE_WAIT_MS = 2500;
/** Scheduled rotations queued (and pushed) at once. */
const SCHEDULE_CONCURRENCY = 16;

/**
 * The device's rotation schedule (PATCH /api/devices/:id rotation_interval_s), inside the update's
 * transaction: null stops it, an interval starts it with the first rotation one interval from now.
 */
export async function setRotationSchedule(q: Queryable, deviceId: string, intervalS: number | null, now: Date) {
  await q.query(
    `UPDATE devices SET rotation_interval_s = $2::int,
       next_rotation_at = CASE WHEN $2::int IS NULL THEN NULL ELSE $3::timestamptz + make_interval(secs => $2::int) END
     WHERE id = $1`,
    [deviceId, intervalS, now],
  );
}

/**
 * The worker's autoRotate (inside its job transaction): devices whose schedule is due move it on by one
 * interval, and get a rotate_ip after the commit through requestRotation (pushed at once, audited as
 * `worker`, announced like a manual one); a device still rotating is not stacked on. Each scheduled
 * rotation lives at most one interval (capped at 10 min), so it never outlives the next one.
 */
export async function scheduledRotations(ctx: Ctx, q: Queryable, now: Date) {
  const due = await q.query<{ id: string; rotation_interval_s: number }>(
    `UPDATE devices SET next_rotation_at = $1::timestamptz + make_interval(secs => rotation_interval_s)
      WHERE rotation_interval_s IS NOT NULL AND next_rotation_at <= $1 RETURNING id, rotation_interval_s`,
    [now],
  );
  const open = due.rows.length
    ? new Set(
        (
          await q.query<{ device_id: string }>(
            `SELECT DISTINCT device_id FROM commands WHERE device_id = ANY($1::text[]) AND type = 'rotate_ip' AND status IN ('pending','sent','acked')`,
            [due.rows.map((d) => d.id)],
          )
        ).rows.map((r) => r.device_id),
      )
    : new Set<string>();
  const rotate = due.rows.filter((d) => !open.has(d.id));
  return {
    changed: rotate.length,
    after: async () => {
      let timer: NodeJS.Timeout | undefined;
      const deadline = new Promise<void>((resolve) => {
        timer = setTimeout(resolve, SCHEDULE_WAIT_MS);
        timer.unref();
      });
      const all = mapLimited(rotate, SCHEDULE_CONCURRENCY, async (d) => {
        try {
          await requestRotation(ctx, d.id, {
            source: 'schedule',
            actor: 'worker',
            ttl_s: Math.min(d.rotation_interval_s, 600),
          });
        } catch (err) {
          ctx.log.warn({ err, device_id: d.id }, 'scheduled rotation not queued');
        }
      });
      await Promise.race([all, deadline]);
      clearTimeout(timer);
    },
  };
}

/** The connection a rotation link's token opens (the token is looked up by its hash); 404 "rotation"
 * for an unknown one, like every other refusal of the link. */
export async function rotationLink(q: Queryable, token: string) {
  const c = (
    await q.query<{ id: string; device_id: string; rotation_min_interval_s: number | null }>(
      'SELECT id, device_id, rotation_min_interval_s FROM connections WHERE rotation_token_hash = $1',
      [sha256(token)],
    )
  ).rows[0];
  if (!c) throw apiError('PP_ERR_API_NOT_FOUND', { what: 'rotation' });
  return c;
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
