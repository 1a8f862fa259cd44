import { silentLogger } from '../src/log.js';
export const logger = silentLogger();

export async function waitFor(cond: () => boolean, timeoutMs: number, stepMs = 20): Promise<number> {
  const t0 = Date.now();
  while (!cond()) {
    if (Date.now() - t0 > timeoutMs) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, stepMs));
  }
  return Date.now() - t0;
}
