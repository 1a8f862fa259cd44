// Bounded polling for lab tests ("until the agent shows up", "until the port answers"): every
// wait in a lab has a deadline, so a broken build fails a test instead of hanging it.
import { setTimeout as sleep } from 'node:timers/promises';
import { labError } from './errors.js';

export interface WaitOptions {
  timeoutMs?: number;
  intervalMs?: number;
  /** Named in the PP_ERR_LAB_TIMEOUT message. */
  what?: string;
}

/** Poll `check` until it returns a value other than undefined/false/null; that value is returned. */
export async function waitUntil<T>(
  check: () => T | Promise<T>,
  opts: WaitOptions = {},
): Promise<Exclude<T, false | null | undefined>> {
  const timeoutMs = opts.timeoutMs ?? 10_000;
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v !== undefined && v !== null && v !== false) return v as Exclude<T, false | null | undefined>;
    } catch (e) {
      lastError = e;
    }
    if (Date.now() >= deadline) {
      const last = lastError instanceof Error ? `; last error: ${lastError.message}` : '';
      throw labError(
        'PP_ERR_LAB_TIMEOUT',
        { ms: timeoutMs, what: `${opts.what ?? 'condition'}${last}` },
        { cause: lastError },
      );
    }
    await sleep(opts.intervalMs ?? 100);
  }
}
