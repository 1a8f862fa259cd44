// createFirewall: the declarative front door (tailscale Router.Set style). `apply(state)` may be
// called again and again: the first call rebuilds our table from scratch (nothing from a crashed
// run survives, nothing duplicates); later calls send only element diffs; an identical state
// runs no command at all. Calls are serialised so two device connects never interleave, and
// applies that queue up while nft is busy are coalesced: only the latest state is sent (the API
// is declarative, so intermediate states need not reach the kernel). After a relay restart,
// when hundreds of devices reconnect at once, that turns hundreds of transactions into a few.
import { parseCounters, type PortCounter } from './counters.js';
import { render, renderTeardown, TABLE_FAMILY, TABLE_NAME } from './render.js';
import type { CommandRunner } from './runner.js';
import { ensureValid, type FirewallState, type ValidState } from './state.js';
import { requiredSysctls, sysctlArgs } from './sysctl.js';
import { renderUpdate, sameSkeleton } from './update.js';

/** The subset of pino we use; pass a child logger (`logger.child({ subsys: 'netfw' })`). */
export interface Logger {
  debug(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
}

export type RunFn = CommandRunner['run'];

export interface FirewallDeps {
  /** The command runner (an object with `run`, or the bare function). */
  readonly run: CommandRunner | RunFn;
  readonly logger?: Logger;
}

export interface ApplyResult {
  /** 'full' = table rebuilt, 'update' = element diff, 'unchanged' = nothing ran. */
  readonly kind: 'full' | 'update' | 'unchanged';
  /** Statement lines sent to nft (0 when unchanged). */
  readonly lines: number;
  /** How many apply() calls this one transaction served (> 1 when calls were coalesced). */
  readonly coalesced: number;
  readonly ms: number;
}

export interface Firewall {
  apply(state: FirewallState): Promise<ApplyResult>;
  /** port -> { in, out } ({packets, bytes} each) since the table was last rebuilt: `in` counts
   * customer -> target packets (conntrack ORIGINAL), `out` target -> customer (REPLY). */
  readCounters(): Promise<Map<number, PortCounter>>;
  /** Deletes our table (only ours); fine if it does not exist. The next apply rebuilds. */
  teardown(): Promise<void>;
  /** Applies requiredSysctls() through the runner. */
  applySysctls(): Promise<void>;
  /** The state the kernel is believed to hold, undefined before the first apply or after a failure. */
  current(): ValidState | undefined;
}

const noop = () => {};
const silent: Logger = { debug: noop, info: noop, warn: noop };

export function createFirewall(deps: FirewallDeps): Firewall {
  const run: RunFn = typeof deps.run === 'function' ? deps.run : deps.run.run.bind(deps.run);
  const log = deps.logger ?? silent;
  let current: ValidState | undefined;
  let queue: Promise<unknown> = Promise.resolve();
  interface Batch {
    state: ValidState;
    readonly waiters: Array<{ resolve: (r: ApplyResult) => void; reject: (e: unknown) => void }>;
  }
  let pending: Batch | undefined;

  // Serialise: each operation starts after the previous one settled, whatever its outcome.
  function serial<T>(op: () => Promise<T>): Promise<T> {
    const p = queue.then(op, op);
    queue = p.catch(noop);
    return p;
  }

  async function load(script: string): Promise<void> {
    await run('nft', ['-f', '-'], script);
  }

  async function applyNow(next: ValidState, coalesced: number): Promise<ApplyResult> {
    const t0 = performance.now();
    // renderUpdate itself falls back to a full render when the chains change.
    const full = current === undefined || !sameSkeleton(current, next);
    const script = current === undefined ? render(next) : renderUpdate(current, next);
    if (script === '') return { kind: 'unchanged', lines: 0, coalesced, ms: performance.now() - t0 };
    const lines = script.split('\n').filter((l) => l !== '' && !l.startsWith('#')).length;
    const hadState = current !== undefined;
    // Until the kernel confirms, we do not know what it holds: a failed diff forces a rebuild.
    current = undefined;
    try {
      await load(script);
    } catch (e) {
      log.warn(
        { err: e, kind: full ? 'full' : 'update', ports: next.ports.length, hadState },
        'nft transaction failed; next apply rebuilds the table',
      );
      throw e;
    }
    current = next;
    const kind = full ? 'full' : 'update';
    const ms = performance.now() - t0;
    log.debug({ kind, lines, coalesced, ports: next.ports.length, ms: Math.round(ms) }, 'firewall applied');
    return { kind, lines, coalesced, ms };
  }

  return {
    apply(input) {
      // Validate synchronously, before queueing: a bad state never reaches the runner.
      let next: ValidState;
      try {
        next = ensureValid(input);
      } catch (e) {
        return Promise.reject(e);
      }
      return new Promise<ApplyResult>((resolve, reject) => {
        if (pending) {
          pending.state = next;
          pending.waiters.push({ resolve, reject });
          return;
        }
        const batch: Batch = { state: next, waiters: [{ resolve, reject }] };
        pending = batch;
        void serial(async () => {
          if (pending === batch) pending = undefined;
          try {
            const r = await applyNow(batch.state, batch.waiters.length);
            for (const w of batch.waiters) w.resolve(r);
          } catch (e) {
            for (const w of batch.waiters) w.reject(e);
          }
        });
      });
    },
    readCounters() {
      return serial(async () => {
        const { stdout } = await run('nft', ['-j', 'list', 'counters', 'table', TABLE_FAMILY, TABLE_NAME]);
        return parseCounters(stdout, TABLE_NAME);
      });
    },
    teardown() {
      // Applies called after teardown must run after it, not join a batch queued before it.
      pending = undefined;
      return serial(async () => {
        current = undefined;
        await load(renderTeardown());
        log.info({ table: `${TABLE_FAMILY} ${TABLE_NAME}` }, 'firewall table deleted');
      });
    },
    applySysctls() {
      return serial(async () => {
        for (const s of requiredSysctls()) await run('sysctl', sysctlArgs(s));
      });
    },
    current: () => current,
  };
}
