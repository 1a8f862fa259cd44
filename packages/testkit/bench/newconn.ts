// newconn-load.c (one new TCP connection per 1 KiB GET, N at a time, through an HTTP or SOCKS5 proxy or
// directly): its build and one run, shared by the phases of bench:dataplane that use it (peers, anatomy).
import { join } from 'node:path';
import type { Lab, LabProcess } from '../src/index.js';

const NEWCONN_SRC = new URL('./newconn-load.c', import.meta.url).pathname;
const TARGET_SRC = new URL('./http-target.c', import.meta.url).pathname;

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
  /** Each of the client's turns, write to answer, median (connect; the proxy's handshake steps; the GET to its first byte). */
  turns_p50_ms?: number[];
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

/** The web server a phase's loads ask: its port on echo.test's address, and its process when the phase started one. */
export interface LoadTarget {
  readonly kind: 'c' | 'node';
  readonly port: number;
  readonly proc?: LabProcess;
}

/** http-target.c's port in the lab's internet (the lab's own server has 80 and 443). */
export const C_TARGET_PORT = 8080;

/**
 * The web server for a phase's loads (`BENCH_TARGET`): `node` (the default) is the lab's own server
 * (src/services/http-echo.ts, port 80), the one every figure of issue 13 was measured against; `c` compiles
 * http-target.c into `dir` and starts it in the lab's internet on port 8080 of every address there
 * (stopped with the phase's other processes, or when the bench exits: its stdin closes). The node server
 * costs the shared cores ~80 µs per connection, http-target.c ~20 (docs/benchmarks.md, "the lab's web
 * server"): the CPU-bound peer chains gain from that, ours much less.
 */
export async function startLoadTarget(lab: Lab, dir: string): Promise<LoadTarget> {
  const kind = process.env.BENCH_TARGET ?? 'node';
  if (kind === 'node') return { kind, port: lab.inet.httpPort };
  if (kind !== 'c') throw new Error(`BENCH_TARGET: ${kind} (node or c)`);
  const bin = join(dir, 'http-target');
  await lab.exec('cust', 'cc', ['-O2', '-o', bin, TARGET_SRC], { check: true, timeoutMs: 60_000 });
  // Every address of the lab's internet (the ovpn phase gives each chain of `side` its own).
  const proc = lab.spawn('inet', bin, ['0.0.0.0', String(C_TARGET_PORT)], { stdin: 'pipe' });
  await proc.waitForLine('ready http-target', 10_000);
  return { kind, port: C_TARGET_PORT, proc };
}

/** What a phase records of its load target (the streams always ask the lab's node server). */
export function describeLoadTarget(t: LoadTarget): string {
  return t.kind === 'c'
    ? `http-target.c on echo.test:${t.port} (the streams: the lab's node server)`
    : `the lab's node server, echo.test:${t.port}`;
}

/**
 * One run from the customer's namespace: GET http://echo.test:PORT/bytes?n=1024 (`targetPort`, 80 unless a
 * phase started its own target), `conc` at a time for `ms`, or `count` requests in all. Throws when
 * newconn-load prints no JSON.
 */
export async function runNewconnLoad(
  lab: Lab,
  bin: string,
  mode: 'direct' | 'absolute' | 'connect' | 'socks5',
  e: Endpoint,
  conc: number,
  ms: number,
  count?: number,
  targetPort = 80,
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
      String(targetPort),
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
