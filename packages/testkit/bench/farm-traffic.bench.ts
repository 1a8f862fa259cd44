// `npm run bench:farm-traffic` (root): new connections/s through a farm host's phones, with the devices'
// agents on the farm's own loop (`--threads 1`) and spread over worker threads (`--threads N`), side by
// side in one run. Bounded (~6 min; 10 at most) and stops by itself.
//
// The built `pocketproxy up` in the lab's relay namespace; ONE `pocketproxy-agent farm` (apps/agent/dist)
// in a farm host namespace with FARM_PHONES (4) fake phones, each on a carrier of its own (testkit
// buildFarmHost), each an enrolled device with one HTTP connection. For each round, each setting in turn
// (the order alternating): the farm started with that --threads on the same state dir (the same devices,
// the same ports), every phone running and answering, then newconn-load CONNECT through every phone's
// connection at once, 32 connections at a time in all, for 5 s (the load target: bench/http-target.c, or the
// // lab's node server with BENCH_TARGET=node), and the farm process's CPU per request; the farm stopped. Medians
// of FARM_ROUNDS (5); the figure is threads N (FARM_THREADS, 2) / threads 1.
//
// What it stands for: a farm host's customers' connections outgrowing the one thread every device's agent
// shares by default. The lab's two cores also carry the relay, the customers and the target, so the ratio
// here is a floor for a host with cores of its own.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  REPO_ROOT,
  buildFarmHost,
  farmStatus,
  canRunLab,
  createConnection,
  createLab,
  startRelay,
  waitUntil,
  type FarmHost,
  type Lab,
  type LabProcess,
  type LabRelay,
} from '../src/index.js';
import { buildNewconnLoad, endpointOf, median, runNewconnLoad, startLoadTarget, type Endpoint } from './newconn.js';
import { cpuProbeMs, cpuSeconds } from './cpu.js';

const PHONES = Number(process.env.FARM_PHONES ?? 4);
const ROUNDS = Number(process.env.FARM_ROUNDS ?? 5);
const THREADS = Number(process.env.FARM_THREADS ?? 2);
const CONCURRENCY = 32;
// The farm's capacity is the question, not the lab's web server's (docs/benchmarks.md "the lab's web server").
process.env.BENCH_TARGET ??= 'c';
const LOAD_MS = 5_000;

const say = (s: string) => console.error(`bench: ${s}`);

async function main(): Promise<void> {
  if (!canRunLab()) {
    console.error('bench:farm-traffic needs root (network namespaces)');
    process.exit(2);
  }
  if (!Number.isInteger(THREADS) || THREADS < 2) throw new Error('FARM_THREADS must be 2 or more');
  if (!Number.isInteger(PHONES) || PHONES < 2 || PHONES > 8) throw new Error('FARM_PHONES must be 2-8');
  const started = new Date();
  const load0 = loadavg();
  const probe0 = cpuProbeMs();
  execFileSync(process.execPath, [join(REPO_ROOT, 'scripts/build.mjs'), '--no-dashboard'], { stdio: 'inherit' });

  const lab: Lab = await createLab({ devices: 1 + PHONES });
  let relay: LabRelay | undefined;
  let host: FarmHost | undefined;
  let farm: LabProcess | undefined;
  const stateDir = mkdtempSync(join(tmpdir(), 'pp-farmtraffic-'));
  const work = mkdtempSync(join(tmpdir(), 'pp-farmtraffic-work-'));
  const guard = setTimeout(() => {
    console.error('bench: 10 min bound reached; tearing down');
    lab.teardownSync();
    process.exit(1);
  }, 10 * 60_000);
  const lines: string[] = [];
  try {
    relay = await startRelay(lab, { env: { POCKETPROXY_LOG_LEVEL: 'warn' } });
    host = await buildFarmHost(lab, {
      host: 1,
      phones: Array.from({ length: PHONES }, (_, i) => ({
        carrier: 2 + i,
        serial: `TRAFFIC${String(i).padStart(2, '0')}`,
        rotates: false,
      })),
    });
    const target = await startLoadTarget(lab, work);
    const bin = await buildNewconnLoad(lab, work);
    const tok = await relay.api.ok('POST', '/api/enrollment-tokens', { name: 'bench farm', max_devices: PHONES + 2 });
    const fp = /--fingerprint\s+(\S+)/.exec(tok.enroll_command)?.[1];
    if (!fp) throw new Error(`no fingerprint in ${tok.enroll_command}`);
    const r = relay;
    const h = host;
    const status = () => farmStatus(stateDir);

    const endpoints: Endpoint[] = [];
    /** Starts the farm with `threads`; resolves once every phone runs and its connection answers. */
    const up = async (threads: number): Promise<LabProcess> => {
      const p = h.startFarm({
        relay: r,
        token: tok.token,
        fingerprint: fp,
        stateDir,
        extra: ['--log-level', 'warn', '--threads', String(threads)],
      });
      await waitUntil(
        async () => {
          if (p.exitStatus) throw new Error(`farm exited:\n${p.lines.slice(-30).join('\n')}`);
          const s = status().filter((d) => d.status === 'running');
          if (s.length < PHONES) return false;
          if (endpoints.length === 0)
            for (const d of s) endpoints.push(endpointOf((await createConnection(r, d.device_id!, 'http')).proxy_url));
          for (const e of endpoints) {
            const c = await lab.exec('cust', 'curl', [
              '-sS',
              '--max-time',
              '3',
              '-o',
              '/dev/null',
              '-w',
              '%{http_code}',
              '-x',
              `http://${e.user}:${e.pass}@${e.ip}:${e.port}`,
              `http://echo.test:${target.port}/ip`,
            ]);
            if (c.stdout.trim() !== '200') return false;
          }
          return true;
        },
        { timeoutMs: 120_000, intervalMs: 500, what: `${PHONES} phones running and answering (--threads ${threads})` },
      );
      const want = threads === 1 ? [null] : Array.from({ length: Math.min(threads, PHONES) }, (_, i) => i);
      const got = [...new Set(status().map((d) => d.thread))].sort();
      if (JSON.stringify(got) !== JSON.stringify(want))
        throw new Error(`threads ${JSON.stringify(got)}, expected ${JSON.stringify(want)}`);
      return p;
    };

    const results = new Map<number, { perSec: number; cpuUs: number }[]>([
      [1, []],
      [THREADS, []],
    ]);
    for (let round = 0; round < ROUNDS; round++) {
      const order = round % 2 === 0 ? [1, THREADS] : [THREADS, 1];
      for (const threads of order) {
        farm = await up(threads);
        // Warm: a short load through every phone, not measured.
        await Promise.all(
          endpoints.map((e) =>
            runNewconnLoad(lab, bin, 'connect', e, CONCURRENCY / PHONES, 1_500, undefined, target.port),
          ),
        );
        const cpu0 = cpuSeconds(farm.pid);
        const runs = await Promise.all(
          endpoints.map((e) =>
            runNewconnLoad(lab, bin, 'connect', e, CONCURRENCY / PHONES, LOAD_MS, undefined, target.port),
          ),
        );
        const cpu1 = cpuSeconds(farm.pid);
        const perSec = runs.reduce((a, x) => a + Number(x.per_sec), 0);
        const requests = runs.reduce((a, x) => a + x.requests, 0);
        const errors = runs.reduce((a, x) => a + x.errors, 0);
        const cpuUs = ((cpu1 - cpu0) * 1e6) / Math.max(1, requests);
        results.get(threads)!.push({ perSec, cpuUs });
        say(
          `round ${round + 1}, --threads ${threads}: ${perSec.toFixed(0)} new connections/s through ${PHONES} phones ` +
            `(${runs.map((x) => Number(x.per_sec).toFixed(0)).join(' + ')}; ${errors} errors), the farm process ${cpuUs.toFixed(0)} µs of CPU per request`,
        );
        await farm.stop(15_000);
        farm = undefined;
      }
    }
    const one = results.get(1)!;
    const many = results.get(THREADS)!;
    const m1 = median(one.map((x) => x.perSec));
    const mN = median(many.map((x) => x.perSec));
    lines.push(
      `new connections/s through ${PHONES} phones (newconn-load CONNECT, ${CONCURRENCY} at a time in all, ${LOAD_MS / 1000} s, median of ${ROUNDS}; target ${target.kind === 'c' ? 'http-target.c' : "the lab's node server"}): ` +
        `--threads ${THREADS} / --threads 1: ${mN.toFixed(0)} / ${m1.toFixed(0)} = ${(mN / m1).toFixed(2)}× ` +
        `(rounds: ${many.map((x) => x.perSec.toFixed(0)).join(' · ')} against ${one.map((x) => x.perSec.toFixed(0)).join(' · ')})`,
    );
    lines.push(
      `the farm process's CPU per request: --threads ${THREADS} ${median(many.map((x) => x.cpuUs)).toFixed(0)} µs, --threads 1 ${median(one.map((x) => x.cpuUs)).toFixed(0)} µs (medians)`,
    );
    await target.proc?.stop();
  } finally {
    clearTimeout(guard);
    await farm?.stop(15_000).catch(() => {});
    await relay?.stop().catch(() => {});
    await lab.teardown(4_000);
    host?.cleanup();
    rmSync(stateDir, { recursive: true, force: true });
    rmSync(work, { recursive: true, force: true });
  }
  const load1 = loadavg();
  console.log(`\n## bench:farm-traffic ${started.toISOString()}`);
  console.log(
    `machine: ${cpus().length} x ${cpus()[0]?.model ?? '?'}; node ${process.version}; load average ` +
      `${load0.map((x) => x.toFixed(2)).join(' ')} at start, ${load1.map((x) => x.toFixed(2)).join(' ')} at end; ` +
      `CPU probe ${probe0.toFixed(0)} ms at start, ${cpuProbeMs().toFixed(0)} ms at end (a fixed JS loop)`,
  );
  for (const l of lines) console.log(`- ${l}`);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
