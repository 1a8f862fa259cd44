// The background worker: runs every job each tick (default 5 s) and webhook delivery. Safe to run as
// several instances against one PostgreSQL (jobs.ts, webhooks.ts).
import type { Ctx } from '../context.js';
import { JOBS, runJob, type JobResult } from './jobs.js';
import { deliverWebhooks, type Poster } from './webhooks.js';

export interface Worker {
  /** One pass of every job at the clock's time; what tests call. */
  tick(): Promise<JobResult[]>;
  start(): void;
  stop(): Promise<void>;
}

export function createWorker(ctx: Ctx, opts: { intervalMs?: number; post?: Poster } = {}): Worker {
  const log = ctx.log.child({ subsys: 'worker' });
  let timer: NodeJS.Timeout | null = null;
  let running: Promise<unknown> | null = null;
  let stopped = false;

  async function tick(): Promise<JobResult[]> {
    const now = ctx.clock.now();
    const out: JobResult[] = [];
    for (const name of Object.keys(JOBS)) {
      try {
        const r = await runJob(ctx, name, now);
        if (r.changed) log.info({ job: name, changed: r.changed }, 'job changed rows');
        out.push(r);
      } catch (err) {
        log.error({ err, job: name }, 'job failed');
        out.push({ job: name, changed: 0, skipped: true });
      }
    }
    try {
      const w = await deliverWebhooks(ctx, now, opts.post);
      out.push({ job: 'webhooks', changed: w.delivered + w.failed });
    } catch (err) {
      log.error({ err }, 'webhook delivery failed');
    }
    return out;
  }

  const loop = () => {
    if (stopped) return;
    running = tick().finally(() => {
      running = null;
      if (!stopped) timer = setTimeout(loop, opts.intervalMs ?? 5000);
    });
  };

  return {
    tick,
    start() {
      stopped = false;
      timer = setTimeout(loop, 100);
    },
    async stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      await running;
    },
  };
}
