// `npm run bench:farm` (root): the farm host's cost per device and its plug -> answering time, with
// the built `pocketproxy up` and ONE `pocketproxy-agent farm` (apps/agent/dist) in the lab.
// Bounded (~10 min; 12 at most) and stops by itself.
//
//   idle cost:  the farm process with 0, then FARM_SMALL (10), then FARM_LARGE (50) fake phones running
//               (each its own enrolled device with one HTTP connection: tunnel, TUN, listener,
//               heartbeat every 30 s, the relay's defaults): its RSS, and its own CPU over FARM_IDLE_S (60) s of idle, from
//               /proc/<pid>/stat (utime + stime; the fake adb's processes, which answer the metrics
//               calls, are counted apart: they are node scripts, the real adb client is not)
//   plug:       an enrolled phone with a connection, unplugged (gone from adb, link down) and plugged
//               again (listed + link up): -> its connection's port answers with its carrier address
//               (curl from the customer namespace every 100 ms); FARM_PLUGS (5) tries. And once, a
//               phone never seen before: plugged -> enrolled and online in the API.
//
// The phones share five carriers (10 per carrier NAT); each is a veth into its carrier's namespace
// (testkit/src/farm.ts). Goals (issue 14): <= 25 MB and <= 1 % of a core per device idle; plug ->
// answering <= 10 s plus the phone's own tethering start (none here: the interface is there).
import { execFileSync } from 'node:child_process';
import { readFileSync, mkdtempSync, rmSync } from 'node:fs';
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
import { TICK, cpuProbeMs, procStatFields } from './cpu.js';

const SMALL = Number(process.env.FARM_SMALL ?? 10);
const LARGE = Number(process.env.FARM_LARGE ?? 50);
const IDLE_S = Number(process.env.FARM_IDLE_S ?? 60);
const PLUGS = Number(process.env.FARM_PLUGS ?? 5);
/** `farm --threads` (default: the farm's own, auto). */
const THREADS = process.env.FARM_THREADS;
const CARRIERS = 5;

const lines: string[] = [];
const say = (s: string) => {
  lines.push(s);
  console.error(`bench: ${s}`);
};

/** utime+stime of the process, and of its waited-for children, in seconds; RSS in MB. */
function procStat(pid: number): { self: number; children: number; rssMb: number; threads: number } {
  const f = procStatFields(pid);
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const rss = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
  return {
    self: (Number(f[11]) + Number(f[12])) / TICK,
    children: (Number(f[13]) + Number(f[14])) / TICK,
    rssMb: rss / 1024,
    threads: Number(f[17]),
  };
}

async function main(): Promise<void> {
  if (!canRunLab()) {
    console.error('bench:farm needs root (network namespaces)');
    process.exit(2);
  }
  const started = new Date();
  const load0 = loadavg();
  const probe0 = cpuProbeMs();
  // The farm runs from the bundle (as installed), so build what is stale (no dashboard).
  execFileSync(process.execPath, [join(REPO_ROOT, 'scripts/build.mjs'), '--no-dashboard'], { stdio: 'inherit' });

  const total = LARGE + 1;
  const lab: Lab = await createLab({ devices: 1 + CARRIERS });
  let relay: LabRelay | undefined;
  let host: FarmHost | undefined;
  let farm: LabProcess | undefined;
  const stateDir = mkdtempSync(join(tmpdir(), 'pp-farmbench-'));
  const guard = setTimeout(() => {
    console.error('bench: 12 min bound reached; tearing down');
    lab.teardownSync();
    process.exit(1);
  }, 12 * 60_000);
  try {
    relay = await startRelay(lab);
    host = await buildFarmHost(lab, {
      host: 1,
      phones: Array.from({ length: total }, (_, i) => ({
        carrier: 2 + (i % CARRIERS),
        serial: `BENCH${String(i).padStart(3, '0')}`,
        rotates: false,
      })),
    });
    for (const p of host.phones) await host.unplug(p.serial);
    const tok = await relay.api.ok('POST', '/api/enrollment-tokens', { name: 'bench farm', max_devices: total + 5 });
    const fp = /--fingerprint\s+(\S+)/.exec(tok.enroll_command)?.[1];
    farm = host.startFarm({
      relay,
      token: tok.token,
      fingerprint: fp!,
      stateDir,
      extra: ['--log-level', 'warn', ...(THREADS ? ['--threads', THREADS] : [])],
    });
    const pid = farm.pid;
    const status = () => farmStatus(stateDir);
    const running = () => status().filter((d) => d.status === 'running').length;
    const idle = async (n: number) => {
      await new Promise((r) => setTimeout(r, 15_000)); // enrollment, first heartbeats and credential fetches settle
      const a = procStat(pid);
      const t0 = Date.now();
      await new Promise((r) => setTimeout(r, IDLE_S * 1000));
      const b = procStat(pid);
      const s = (Date.now() - t0) / 1000;
      const cpu = ((b.self - a.self) / s) * 100;
      const kids = ((b.children - a.children) / s) * 100;
      say(
        `${n} devices idle: RSS ${b.rssMb.toFixed(1)} MB (${n ? (b.rssMb / n).toFixed(2) : '-'} MB per device), ` +
          `farm CPU ${cpu.toFixed(2)} % of a core (${n ? (cpu / n).toFixed(3) : '-'} % per device) over ${s.toFixed(0)} s, ` +
          `fake adb children ${kids.toFixed(2)} %, ${b.threads} threads`,
      );
      return { rss: b.rssMb, cpu };
    };
    const plugAll = async (from: number, to: number) => {
      for (let i = from; i < to; i++) await host!.plug(host!.phones[i]!.serial);
      const t0 = Date.now();
      await waitUntil(() => running() === to, {
        timeoutMs: 360_000,
        intervalMs: 500,
        what: `${to} farm devices running (${running()})`,
      });
      say(
        `${to - from} phones plugged -> ${to} running in ${((Date.now() - t0) / 1000).toFixed(1)} s (enrollment included)`,
      );
      // Each device serves a connection, as in use (the relay asks a device without any to fetch its
      // credentials at every forwarding poll, which an idle figure should not count).
      for (const d of status().filter((x) => x.status === 'running' && x.device_id && !conns.has(x.hardware_id)))
        conns.set(d.hardware_id, await createConnection(relay!, d.device_id!, 'http'));
    };
    const conns = new Map<string, Awaited<ReturnType<typeof createConnection>>>();

    await new Promise((r) => setTimeout(r, 3_000));
    const base = await idle(0);
    await plugAll(0, SMALL);
    const small = await idle(SMALL);
    await plugAll(SMALL, LARGE);
    const large = await idle(LARGE);
    say(
      `marginal per device ${SMALL} -> ${LARGE}: ${((large.rss - small.rss) / (LARGE - SMALL)).toFixed(2)} MB, ` +
        `${((large.cpu - small.cpu) / (LARGE - SMALL)).toFixed(3)} % of a core; from 0: ` +
        `${((large.rss - base.rss) / LARGE).toFixed(2)} MB, ${((large.cpu - base.cpu) / LARGE).toFixed(3)} %`,
    );

    // plug -> answering, an enrolled phone with a connection.
    const p = host.phones[0]!;
    const dev = status().find((d) => d.hardware_id === p.serial)!;
    const conn = conns.get(p.serial) ?? (await createConnection(relay, dev.device_id!, 'http'));
    const want = await lab.carrierAddress(p.carrier);
    const get = async () => {
      const r = await lab.exec(
        'cust',
        'curl',
        ['-sS', '--max-time', '2', '-x', conn.proxy_url, 'http://echo.test/ip'],
        {
          timeoutMs: 5_000,
        },
      );
      return r.code === 0 ? r.stdout.trim() : null;
    };
    await waitUntil(async () => (await get()) === want, {
      timeoutMs: 30_000,
      intervalMs: 300,
      what: 'connection answers',
    });
    const plugMs: number[] = [];
    for (let i = 0; i < PLUGS; i++) {
      await host.unplug(p.serial);
      await waitUntil(() => status().find((d) => d.hardware_id === p.serial)?.status === 'gone', {
        timeoutMs: 30_000,
        intervalMs: 200,
        what: 'phone gone',
      });
      await new Promise((r) => setTimeout(r, 2_000));
      const t0 = Date.now();
      await host.plug(p.serial);
      await waitUntil(async () => (await get()) === want, {
        timeoutMs: 60_000,
        intervalMs: 100,
        what: 'answering after plug',
      });
      plugMs.push(Date.now() - t0);
    }
    const sorted = [...plugMs].sort((a, b) => a - b);
    say(
      `plug -> answering (enrolled phone, ${LARGE} devices running, scan every 1 s): ${plugMs.join(', ')} ms ` +
        `(median ${sorted[Math.floor(sorted.length / 2)]} ms, max ${sorted[sorted.length - 1]} ms)`,
    );

    // A phone never seen before: plug -> enrolled and online in the API.
    const fresh = host.phones[LARGE]!;
    const t1 = Date.now();
    await host.plug(fresh.serial);
    let id: string | null = null;
    await waitUntil(
      async () => {
        id ??= status().find((d) => d.hardware_id === fresh.serial)?.device_id ?? null;
        if (!id) return false;
        const d = (await relay!.api.call('GET', `/api/devices/${id}`)).body;
        return d?.status === 'online' && d?.tunnel_connected === true;
      },
      { timeoutMs: 60_000, intervalMs: 100, what: 'new phone online' },
    );
    say(`plug -> enrolled and online (new phone): ${Date.now() - t1} ms`);
  } finally {
    clearTimeout(guard);
    await farm?.stop(15_000).catch(() => {});
    await relay?.stop().catch(() => {});
    await lab.teardown(4_000);
    host?.cleanup();
    rmSync(stateDir, { recursive: true, force: true });
  }
  const load1 = loadavg();
  console.log(`\n## bench:farm ${started.toISOString()} (farm --threads ${THREADS ?? 'auto'})`);
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
