// Micro bench on loopback: the CPU one short proxied request costs the proxy process with
// node:net sockets and with LeanSockets (src/lean/), measured side by side in one run.
//
// One process hosts both HTTP proxies and both SOCKS5 servers (as the agent builds them: a
// ConnectionMeter per customer, the policy dialer); the target (1 KiB answer, Connection: close)
// runs in a child process and the load in newconn-load (packages/testkit/bench/newconn-load.c,
// compiled with cc), so the process's own CPU time (process.cpuUsage) is the proxies' alone. Runs
// alternate node · lean, ROUNDS times per mode and protocol, and the medians are compared.
// Bounded: fixed durations, everything on 127.0.0.1, closes all it opens.
// Run: node --import tsx --conditions=source packages/proxy/bench/sockets.bench.ts
//   ROUNDS (default 4), MS per run (default 2000), CONC (default 16).
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  ConnectionMeter,
  createHttpProxy,
  createPolicyDialer,
  createSocks5Server,
  type ProxyServer,
} from '../src/index.js';

const ROUNDS = Number(process.env.ROUNDS ?? 4);
const MS = Number(process.env.MS ?? 2000);
const CONC = Number(process.env.CONC ?? 16);
/** MODES=absolute,connect limits the protocols; KINDS=lean runs one kind only (for a profile). */
const MODES = (process.env.MODES ?? 'absolute,connect,socks5').split(',') as Mode[];
const KINDS = (process.env.KINDS ?? 'node,lean').split(',') as ('node' | 'lean')[];

const work = mkdtempSync(join(tmpdir(), 'pp-sockets-bench-'));
const load = join(work, 'newconn-load');
execFileSync('cc', ['-O2', '-o', load, new URL('../../testkit/bench/newconn-load.c', import.meta.url).pathname]);

// The target: a plain node:net server in a child process (its CPU is not ours).
const targetSrc = `
const net = require('node:net');
const body = 'x'.repeat(1024);
const answer = 'HTTP/1.1 200 OK\\r\\nContent-Length: 1024\\r\\nConnection: close\\r\\n\\r\\n' + body;
const s = net.createServer((c) => { c.on('error', () => {}); let h = ''; c.on('data', (d) => { h += d; if (h.includes('\\r\\n\\r\\n')) c.end(answer); }); });
s.listen(0, '127.0.0.1', () => process.stdout.write(String(s.address().port) + '\\n'));
setTimeout(() => process.exit(0), 10 * 60_000).unref();
`;
const target = spawn(process.execPath, ['-e', targetSrc], { stdio: ['ignore', 'pipe', 'inherit'] });
const targetPort = await new Promise<number>((resolve, reject) => {
  target.stdout!.once('data', (d: Buffer) => resolve(Number(d.toString().trim())));
  target.once('exit', () => reject(new Error('target exited')));
});

const dialer = (lean: boolean) => createPolicyDialer({ policy: { allowLoopback: true }, lean });
const authenticate = async (u: string, p: string) =>
  u === 'u' && p === 'p' ? { principal: 'bench', meter: new ConnectionMeter() } : null;

type Mode = 'absolute' | 'connect' | 'socks5';
const servers: Record<'node' | 'lean', Record<Mode, ProxyServer>> = {
  node: {
    absolute: createHttpProxy({ authenticate, dial: dialer(false), lean: false }),
    connect: createHttpProxy({ authenticate, dial: dialer(false), lean: false }),
    socks5: createSocks5Server({ authenticate, dial: dialer(false), lean: false }),
  },
  lean: {
    absolute: createHttpProxy({ authenticate, dial: dialer(true), lean: true }),
    connect: createHttpProxy({ authenticate, dial: dialer(true), lean: true }),
    socks5: createSocks5Server({ authenticate, dial: dialer(true), lean: true }),
  },
};
const ports = new Map<ProxyServer, number>();
for (const kind of Object.values(servers))
  for (const s of Object.values(kind)) ports.set(s, (await s.listen(0, '127.0.0.1')).port);

function run(mode: Mode, server: ProxyServer): Promise<{ requests: number; errors: number; cpuUs: number }> {
  return new Promise((resolve, reject) => {
    const before = process.cpuUsage();
    const p = spawn(load, [
      mode,
      '127.0.0.1',
      String(ports.get(server)),
      'u',
      'p',
      '127.0.0.1',
      String(targetPort),
      '/',
      String(CONC),
      String(MS),
    ]);
    let out = '';
    p.stdout.on('data', (d: Buffer) => {
      out += d;
    });
    p.once('error', reject);
    p.once('exit', () => {
      const used = process.cpuUsage(before);
      try {
        const r = JSON.parse(out.trim().split('\n').pop()!) as { requests: number; errors: number };
        resolve({ requests: r.requests, errors: r.errors, cpuUs: used.user + used.system });
      } catch (e) {
        reject(new Error(`newconn-load printed ${JSON.stringify(out)}`, { cause: e }));
      }
    });
  });
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

console.log(`sockets bench: ${ROUNDS} rounds x ${MS} ms, ${CONC} at a time, 1 KiB GET per new connection`);
const rows: string[] = [];
for (const mode of MODES) {
  const per: Record<'node' | 'lean', number[]> = { node: [], lean: [] };
  const rate: Record<'node' | 'lean', number[]> = { node: [], lean: [] };
  for (let i = 0; i < ROUNDS; i++) {
    for (const kind of i % 2 ? [...KINDS].reverse() : KINDS) {
      const r = await run(mode, servers[kind][mode]);
      if (r.requests === 0 || r.errors > 0)
        throw new Error(`${kind} ${mode}: ${r.requests} requests, ${r.errors} errors`);
      per[kind].push(r.cpuUs / r.requests);
      rate[kind].push(r.requests / (MS / 1000));
    }
  }
  if (KINDS.length < 2) {
    console.log(`${mode} ${KINDS[0]}: ${per[KINDS[0]!].map((x) => x.toFixed(0)).join(' · ')} µs per request`);
    continue;
  }
  const n = median(per.node);
  const l = median(per.lean);
  const line = `${mode}: proxy CPU per request node ${n.toFixed(0)} µs · lean ${l.toFixed(0)} µs = ${(l / n).toFixed(2)}× (runs node ${per.node.map((x) => x.toFixed(0)).join(' · ')}; lean ${per.lean.map((x) => x.toFixed(0)).join(' · ')}); requests/s node ${median(rate.node).toFixed(0)} · lean ${median(rate.lean).toFixed(0)}`;
  console.log(line);
  rows.push(line);
}

for (const kind of Object.values(servers)) for (const s of Object.values(kind)) await s.close();
target.kill();
rmSync(work, { recursive: true, force: true });
