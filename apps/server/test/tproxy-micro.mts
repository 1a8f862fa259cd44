// Loopback micro-run of the transparent proxy alone (not a test: run by hand, as root, in a network
// namespace of its own; docs/benchmarks.md "OpenVPN customer path" has its figures):
//
//   ip netns add tpmicro && ip netns exec tpmicro ip link set lo up
//   ip netns exec tpmicro nft 'add table ip t; add chain ip t out { type nat hook output priority -100; };
//     add rule ip t out ip daddr 127.0.0.9 tcp dport 80 redirect to :12345'
//   ip netns exec tpmicro env SOCKETS=native node --import tsx --conditions=source apps/server/test/tproxy-micro.mts
//
// newconn-load (packages/testkit/bench, compiled here) opens a new connection per 1 KiB GET to
// 127.0.0.9:80, 32 at a time for MS (5 s), redirected to the proxy under test on :12345: MICRO=tproxy
// (this process; SOCKETS=native|lean|node) or MICRO=redsocks (Debian's, http-connect). Behind either, a stub
// device proxy in another process answers CONNECT and then the GET. Prints the proxy process's CPU per
// connection (user and system time, from process.cpuUsage or /proc/<pid>/stat).
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { createTransparentProxy } from '../src/tunnel/tproxy.js';

const STUB_PORT = 23001;
const N = Number(process.env.CONC ?? 32);
const MS = Number(process.env.MS ?? 5000);
const MODE = process.env.MICRO ?? 'tproxy';
const SOCKETS = process.env.SOCKETS === 'node' || process.env.SOCKETS === 'lean' ? process.env.SOCKETS : 'native';
const dir = mkdtempSync(join(tmpdir(), 'tproxy-micro-'));
const load = join(dir, 'newconn-load');
execFileSync('cc', [
  '-O2',
  '-o',
  load,
  new URL('../../../packages/testkit/bench/newconn-load.c', import.meta.url).pathname,
]);
writeFileSync(
  join(dir, 'stub.cjs'),
  `const net = require('net');
const ok = Buffer.from('HTTP/1.1 200 Connection Established\\r\\n\\r\\n');
const resp = Buffer.concat([Buffer.from('HTTP/1.1 200 OK\\r\\nContent-Length: 1024\\r\\nConnection: close\\r\\n\\r\\n'), Buffer.alloc(1024, 120)]);
net.createServer((s) => {
  let buf = '', answered = false;
  s.on('error', () => {});
  s.on('data', (d) => {
    buf += d.toString('latin1');
    const e = buf.indexOf('\\r\\n\\r\\n');
    if (e < 0) return;
    if (buf.indexOf('\\r\\n\\r\\n', e + 4) >= 0) { s.removeAllListeners('data'); s.end(answered ? resp : Buffer.concat([ok, resp])); return; }
    if (!answered) { answered = true; s.write(ok); }
  });
}).listen(${STUB_PORT}, '127.0.0.1', () => console.log('stub up'));
`,
);
const stub = spawn('node', [join(dir, 'stub.cjs')], { stdio: ['ignore', 'pipe', 'inherit'] });
await new Promise((r) => stub.stdout!.once('data', r));

let cpu: () => { user: number; system: number };
let stop: () => Promise<void>;
if (MODE === 'redsocks') {
  writeFileSync(
    join(dir, 'redsocks.conf'),
    'base { log_debug = off; log_info = off; log = stderr; daemon = off; redirector = iptables; }\n' +
      `redsocks { local_ip = 127.0.0.1; local_port = 12345; ip = 127.0.0.1; port = ${STUB_PORT}; type = http-connect; login = "u"; password = "p"; }\n`,
  );
  const rs = spawn('redsocks', ['-c', join(dir, 'redsocks.conf')], { stdio: 'ignore' });
  await new Promise((r) => setTimeout(r, 500));
  cpu = () => {
    const f = readFileSync(`/proc/${rs.pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return { user: Number(f[11]) * 1e4, system: Number(f[12]) * 1e4 };
  };
  stop = async () => void rs.kill();
} else {
  const tp = createTransparentProxy({
    host: '127.0.0.1',
    port: 12345,
    logger: pino({ level: 'warn' }),
    sockets: SOCKETS,
  });
  tp.clients.set('127.0.0.1', {
    deviceVpnIp: '127.0.0.1',
    proxyPort: STUB_PORT,
    protocol: 'http',
    username: 'u',
    password: 'p',
  });
  await tp.start();
  cpu = () => process.cpuUsage();
  stop = () => tp.close();
}
const run = (ms: number) =>
  new Promise<string>((res) => {
    const args = ['direct', '127.0.0.9', '80', 'x', 'x', 'example.com', '80', '/', String(N), String(ms)];
    const c = spawn(load, args);
    let out = '';
    c.stdout.on('data', (d) => (out += d));
    c.on('close', () => res(out));
  });
await run(1000); // warm-up
const t0 = cpu();
const r = JSON.parse(await run(MS));
const t1 = cpu();
const u = (t1.user - t0.user) / r.requests;
const s = (t1.system - t0.system) / r.requests;
const mode = MODE === 'tproxy' ? `tproxy ${SOCKETS}` : MODE;
console.log(
  JSON.stringify({
    mode,
    requests: r.requests,
    errors: r.errors,
    per_sec: r.per_sec,
    user_us: Math.round(u),
    sys_us: Math.round(s),
    total_us: Math.round(u + s),
  }),
);
await stop();
stub.kill();
process.exit(0);
