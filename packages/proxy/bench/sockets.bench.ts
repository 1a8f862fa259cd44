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
//   KINDS: two of node, lean, node-cork, lean-cork, compared as first vs second (default node,lean);
//   `-cork` gives the servers the agent's beforeEnd hook (TCP_CORK: an answer's tail and its FIN in
//   one segment; for CONNECT and SOCKS5 the relay then holds a short answer's tail for its FIN).
//   `front`: the native front as the agent serves (@pocketproxy/tun's engine accepts, connects and
//   splices; JS decides; egress sockets from openTcpFd, the cork hook), e.g. KINDS=lean-cork,front.
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  ConnectionMeter,
  createHttpProxy,
  createPolicyDialer,
  createSocks5Server,
  type Dial,
  type ProxyServer,
  type ProxySocket,
} from '../src/index.js';
import { openTcpFd, setTcpFlag, SpliceEngine } from '@pocketproxy/tun';

const ROUNDS = Number(process.env.ROUNDS ?? 4);
const MS = Number(process.env.MS ?? 2000);
const CONC = Number(process.env.CONC ?? 16);
/** MODES=absolute,connect limits the protocols; KINDS=lean runs one kind only (for a profile). */
const MODES = (process.env.MODES ?? 'absolute,connect,socks5').split(',') as Mode[];
type Kind = 'node' | 'lean' | 'node-cork' | 'lean-cork' | 'front';
const KINDS = (process.env.KINDS ?? 'node,lean').split(',') as Kind[];

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
let engine: SpliceEngine | undefined;
/** The agent's front: one engine for the three servers, egress sockets from the addon. */
function frontOptions(): { front: { engine: SpliceEngine }; dial: Dial } {
  if (!engine) {
    engine = new SpliceEngine();
    engine.frontInit({});
  }
  const dial = createPolicyDialer({
    policy: { allowLoopback: true },
    lean: true,
    openFd: (family, local) => openTcpFd(family, local, { quietAck: true }),
  });
  return { front: { engine }, dial };
}

type Mode = 'absolute' | 'connect' | 'socks5';
const corkForFin = (sock: ProxySocket): void => void setTcpFlag(sock, 'cork', true);
function serversOf(kind: Kind): Record<Mode, ProxyServer> {
  if (kind === 'front')
    return {
      absolute: createHttpProxy({ authenticate, ...frontOptions(), lean: true, beforeEnd: corkForFin }),
      connect: createHttpProxy({ authenticate, ...frontOptions(), lean: true, beforeEnd: corkForFin }),
      socks5: createSocks5Server({ authenticate, ...frontOptions(), lean: true, beforeEnd: corkForFin }),
    };
  const lean = kind.startsWith('lean');
  const beforeEnd = kind.endsWith('-cork') ? corkForFin : undefined;
  return {
    absolute: createHttpProxy({ authenticate, dial: dialer(lean), lean, beforeEnd }),
    connect: createHttpProxy({ authenticate, dial: dialer(lean), lean, beforeEnd }),
    socks5: createSocks5Server({ authenticate, dial: dialer(lean), lean, beforeEnd }),
  };
}
const servers = Object.fromEntries(KINDS.map((k) => [k, serversOf(k)])) as Record<Kind, Record<Mode, ProxyServer>>;
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
  const per = Object.fromEntries(KINDS.map((k) => [k, [] as number[]])) as Record<Kind, number[]>;
  const rate = Object.fromEntries(KINDS.map((k) => [k, [] as number[]])) as Record<Kind, number[]>;
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
  const [a, b] = KINDS as [Kind, Kind];
  const n = median(per[a]);
  const l = median(per[b]);
  const line = `${mode}: proxy CPU per request ${a} ${n.toFixed(0)} µs · ${b} ${l.toFixed(0)} µs = ${(l / n).toFixed(2)}× (runs ${a} ${per[a].map((x) => x.toFixed(0)).join(' · ')}; ${b} ${per[b].map((x) => x.toFixed(0)).join(' · ')}); requests/s ${a} ${median(rate[a]).toFixed(0)} · ${b} ${median(rate[b]).toFixed(0)}`;
  console.log(line);
  rows.push(line);
}

for (const kind of Object.values(servers)) for (const s of Object.values(kind)) await s.close();
engine?.close();
target.kill();
rmSync(work, { recursive: true, force: true });
