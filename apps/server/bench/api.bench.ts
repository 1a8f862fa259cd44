// npm run bench:api — the API under device load, against a real PostgreSQL, on this machine.
// Prints: sustained heartbeats/s with 10,000 registered devices (wrk, keep-alive connections, random
// devices), p50/p99 heartbeat latency at a fixed 1,000/s (open-loop generator in this process), and the
// API process's RSS. The API runs as the built `pocketproxy api` process; the database is a throwaway
// cluster (or PP_BENCH_DATABASE_URL). Everything stays on 127.0.0.1 and stops by itself.
import { spawn, spawnSync, execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import http from 'node:http';
import os from 'node:os';
import pg from 'pg';

const ROOT = fileURLToPath(new URL('../../..', import.meta.url));
const DEVICES = Number(process.env.BENCH_DEVICES ?? 10_000);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 15);
const PORT = 18_500 + Math.floor(Math.random() * 1000);

const tmp = mkdtempSync(join(tmpdir(), 'pp-bench-api-'));
let pgdir: string | null = null;
let baseUrl = process.env.PP_BENCH_DATABASE_URL;
if (!baseUrl) {
  pgdir = mkdtempSync(join(tmpdir(), 'pp-bench-pg-')); // its own dir: the script hands it to the postgres user
  baseUrl = execFileSync(
    'bash',
    [join(ROOT, 'scripts/pg-test-cluster.sh'), 'start', pgdir, String(PORT + 1), 'durable'],
    { encoding: 'utf8' },
  ).trim();
}
const dbName = `pp_bench_${process.pid}`;
const admin = new pg.Client({ connectionString: baseUrl });
await admin.connect();
await admin.query(`DROP DATABASE IF EXISTS ${dbName}`);
await admin.query(`CREATE DATABASE ${dbName}`);
await admin.end();
const u = new URL(baseUrl);
u.pathname = `/${dbName}`;
const DATABASE_URL = u.toString();

const env = {
  ...process.env,
  NODE_OPTIONS: '',
  DATABASE_URL,
  POCKETPROXY_DATA_DIR: join(tmp, 'data'),
  POCKETPROXY_API_PORT: String(PORT),
  POCKETPROXY_API_HOST: '127.0.0.1',
  POCKETPROXY_LOG_LEVEL: 'warn',
  POCKETPROXY_TUNNEL: 'off',
  POCKETPROXY_API_PROCESSES: process.env.BENCH_API_PROCESSES ?? '1',
};
const bin = join(ROOT, 'apps/server/bin/pocketproxy.js');
execFileSync(process.execPath, [bin, 'migrate'], { env, stdio: 'inherit' });

// Seed devices straight in SQL: ids dev_bench000001…, tokens benchtoken1… (hashed as the API hashes them).
const db = new pg.Client({ connectionString: DATABASE_URL });
await db.connect();
await db.query(
  `INSERT INTO devices (id, name, vpn_ip, token_hash, psk_enc)
   SELECT 'dev_bench' || lpad(i::text, 6, '0'), 'bench-' || i, '100.' || (i >> 16) || '.' || ((i >> 8) & 255) || '.' || (i & 255),
          encode(sha256(('benchtoken' || i)::bytea), 'hex'), 'x'
     FROM generate_series(1, $1::int) AS i`,
  [DEVICES],
);

const api = spawn(
  process.execPath,
  [...(process.env.BENCH_CPU_PROF ? ['--cpu-prof', '--cpu-prof-dir', process.env.BENCH_CPU_PROF] : []), bin, 'api'],
  { env, stdio: ['ignore', 'inherit', 'inherit'] },
);
const base = `http://127.0.0.1:${PORT}`;
for (let i = 0; ; i++) {
  try {
    if ((await fetch(`${base}/healthz`)).ok) break;
  } catch {}
  if (i > 240) throw new Error('api did not start');
  await new Promise((r) => setTimeout(r, 250));
}
// The API process and, with BENCH_API_PROCESSES > 1, its cluster workers.
const apiPids = () => [
  api.pid!,
  ...spawnSync('pgrep', ['-P', String(api.pid)], { encoding: 'utf8' })
    .stdout.trim()
    .split('\n')
    .filter(Boolean)
    .map(Number),
];
const rss = () => {
  let rssMb = 0;
  let peak = 0;
  for (const pid of apiPids()) {
    const s = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (k: string) => Number(new RegExp(`${k}:\\s+(\\d+)`).exec(s)?.[1] ?? 0);
    rssMb += kb('VmRSS') / 1024;
    peak += kb('VmHWM') / 1024;
  }
  return { rss: rssMb, peak };
};
const body = JSON.stringify({ metrics: { battery: 77, signal: -85, carrier: 'BenchTel', network_type: 'LTE' } });

// Warm the token cache and the database's buffers: one heartbeat per device.
const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
function heartbeat(i: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    const req = http.request(
      `${base}/api/devices/dev_bench${String(i).padStart(6, '0')}/heartbeat`,
      {
        method: 'POST',
        agent,
        headers: {
          authorization: `Bearer benchtoken${i}`,
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(body),
        },
      },
      (res) => {
        res.resume();
        res.on('end', () =>
          res.statusCode === 200
            ? resolve(Number(process.hrtime.bigint() - t0) / 1e6)
            : reject(new Error(`status ${res.statusCode}`)),
        );
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}
for (let i = 1; i <= DEVICES; i += 64)
  await Promise.all(Array.from({ length: Math.min(64, DEVICES - i + 1) }, (_, k) => heartbeat(i + k)));
console.log(`seeded ${DEVICES} devices; warm-up heartbeat sent for each`);

// CPU seconds used so far by a process (utime + stime), and by every postgres process together.
const TICK = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());
const cpuOf = (pid: number) => {
  try {
    const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return (Number(f[11]) + Number(f[12])) / TICK;
  } catch {
    return 0;
  }
};
const pgCpu = () =>
  execFileSync('pgrep', ['-x', 'postgres'], { encoding: 'utf8' })
    .trim()
    .split('\n')
    .filter(Boolean)
    .reduce((a, p) => a + cpuOf(Number(p)), 0);

// 1. Sustained throughput with wrk (C, keep-alive), random devices.
const lua = join(tmp, 'hb.lua');
writeFileSync(
  lua,
  `math.randomseed(42)
local body = '${body}'
request = function()
  local i = math.random(1, ${DEVICES})
  return wrk.format("POST", string.format("/api/devices/dev_bench%06d/heartbeat", i), {["authorization"] = "Bearer benchtoken" .. i, ["content-type"] = "application/json"}, body)
end
done = function(summary, latency, requests)
  io.write(string.format("WRK %d %d %d %d %d\\n", summary.requests, summary.duration, summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout, latency:percentile(50), latency:percentile(99)))
end
`,
);
const apiCpu = () => apiPids().reduce((a, p) => a + cpuOf(p), 0);
const cpu0 = { api: apiCpu(), pg: pgCpu() };
const w = spawnSync('wrk', ['-t2', '-c64', `-d${SECONDS}s`, '-s', lua, '--timeout', '5s', base], { encoding: 'utf8' });
const m = /WRK (\d+) (\d+) (\d+) (\d+) (\d+)/.exec(w.stdout);
if (!m) throw new Error(`wrk failed: ${w.stdout}${w.stderr}`);
const [reqs, durUs, errs, p50w, p99w] = m.slice(1).map(Number) as [number, number, number, number, number];
const rate = reqs / (durUs / 1e6);
const cpuPer = { api: ((apiCpu() - cpu0.api) / reqs) * 1e6, pg: ((pgCpu() - cpu0.pg) / reqs) * 1e6 };
const rssAfterLoad = rss();

// 2. Latency at a fixed 1,000/s: requests start on schedule whatever the answers do (open loop).
const target = 1000;
const lat: number[] = [];
let errors = 0;
const t0 = performance.now();
const pending: Promise<void>[] = [];
for (let k = 0; k < target * SECONDS; k++) {
  const due = t0 + (k * 1000) / target;
  const wait = due - performance.now();
  if (wait > 1) await new Promise((r) => setTimeout(r, wait));
  pending.push(
    heartbeat(1 + ((k * 7919) % DEVICES)).then(
      (ms) => void lat.push(ms),
      () => void errors++,
    ),
  );
}
await Promise.all(pending);
lat.sort((a, b) => a - b);
const pct = (p: number) => lat[Math.min(lat.length - 1, Math.floor((p / 100) * lat.length))]!;
const achieved = lat.length / ((performance.now() - t0) / 1000);
const r = rss();

console.log(
  `\nPocketProxy API benchmark (real PostgreSQL 15 with default durability${process.env.PP_BENCH_DATABASE_URL ? ' (given server)' : ''}, ` +
    `${os.cpus().length}-core machine, load average ${os.loadavg()[0]!.toFixed(1)}, ` +
    `API as a separate process${Number(env.POCKETPROXY_API_PROCESSES) > 1 ? ` ×${env.POCKETPROXY_API_PROCESSES}` : ''})`,
);
console.log(`devices registered                 ${DEVICES}`);
console.log(
  `sustained heartbeats/s (wrk -c64)   ${rate.toFixed(0)}   (goal ≥ 5000; ratio ${(rate / 5000).toFixed(2)}; ` +
    `wrk p50 ${(p50w / 1000).toFixed(1)} ms, p99 ${(p99w / 1000).toFixed(1)} ms, errors ${errs})`,
);
console.log(
  `CPU per heartbeat: API ${cpuPer.api.toFixed(0)} µs, PostgreSQL ${cpuPer.pg.toFixed(0)} µs  ` +
    `(on an idle 2-core machine the ceiling is about ${(1e6 / Math.max(cpuPer.api, cpuPer.pg)).toFixed(0)}/s)`,
);
console.log(
  `latency at 1000/s: p50 ${pct(50).toFixed(2)} ms, p99 ${pct(99).toFixed(2)} ms, max ${lat[lat.length - 1]!.toFixed(1)} ms   ` +
    `(goal p99 ≤ 20 ms; achieved ${achieved.toFixed(0)}/s, errors ${errors})`,
);
console.log(
  `API RSS after load ${rssAfterLoad.rss.toFixed(0)} MB, now ${r.rss.toFixed(0)} MB, peak ${r.peak.toFixed(0)} MB   (goal ≤ 300 MB)`,
);

api.kill('SIGTERM');
await new Promise((res) => api.once('exit', res));
agent.destroy();
await db.query('SELECT 1');
await db.end();
const drop = new pg.Client({ connectionString: baseUrl });
await drop.connect();
await drop.query(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`);
await drop.end();
if (pgdir) {
  execFileSync('bash', [join(ROOT, 'scripts/pg-test-cluster.sh'), 'stop', pgdir]);
  rmSync(pgdir, { recursive: true, force: true });
}
rmSync(tmp, { recursive: true, force: true });
