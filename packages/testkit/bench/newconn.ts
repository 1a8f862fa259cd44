// newconn-load.c (one new TCP connection per 1 KiB GET, N at a time, through an HTTP or SOCKS5 proxy or
// directly): its build and one run, shared by the phases of bench:dataplane that use it (peers, anatomy).
import { join } from 'node:path';
import type { Lab } from '../src/index.js';

const NEWCONN_SRC = new URL('./newconn-load.c', import.meta.url).pathname;

/** A proxy (or, with mode `direct`, the target) as newconn-load takes it. */
/** The middle value of `xs` (the upper one of an even count); NaN when there is none. The benches' median. */
export function median(xs: readonly number[]): number {
  if (xs.length === 0) return Number.NaN;
  return [...xs].sort((a, b) => a - b)[xs.length >> 1]!;
}

export interface Endpoint {
  ip: string;
  port: number;
  user: string;
  pass: string;
}

/** newconn-load's JSON line. */
export interface LoadResult {
  mode: string;
  requests: number;
  errors: number;
  seconds: number;
  per_sec: number;
  ttfb_p50_ms: number;
  ttfb_p90_ms: number;
}

export function endpointOf(url: string): Endpoint {
  const u = new URL(url);
  return {
    ip: u.hostname,
    port: Number(u.port),
    user: decodeURIComponent(u.username),
    pass: decodeURIComponent(u.password),
  };
}

/** Compiles newconn-load.c into `dir` (in the customer's namespace); returns its path. */
export async function buildNewconnLoad(lab: Lab, dir: string): Promise<string> {
  const bin = join(dir, 'newconn-load');
  await lab.exec('cust', 'cc', ['-O2', '-o', bin, NEWCONN_SRC], { check: true, timeoutMs: 60_000 });
  return bin;
}

/**
 * One run from the customer's namespace: GET http://echo.test/bytes?n=1024, `conc` at a time for `ms`,
 * or `count` requests in all. Throws when newconn-load prints no JSON.
 */
export async function runNewconnLoad(
  lab: Lab,
  bin: string,
  mode: 'direct' | 'absolute' | 'connect' | 'socks5',
  e: Endpoint,
  conc: number,
  ms: number,
  count?: number,
): Promise<LoadResult> {
  const r = await lab.exec(
    'cust',
    bin,
    [
      mode,
      e.ip,
      String(e.port),
      e.user,
      e.pass,
      'echo.test',
      '80',
      '/bytes?n=1024',
      String(conc),
      String(ms),
      ...(count ? [String(count)] : []),
    ],
    { timeoutMs: ms + 20_000 },
  );
  if (!r.stdout.trim().startsWith('{')) throw new Error(`newconn-load ${mode}: ${(r.stdout + r.stderr).slice(0, 300)}`);
  return JSON.parse(r.stdout) as LoadResult;
}
