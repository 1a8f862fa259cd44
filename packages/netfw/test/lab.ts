// Helpers for the netfw lab tests: throwaway network namespaces named pp-nft-<rand>-<role>,
// always deleted (also on failure), and small node programs run inside them.
// The namespaces connect only to each other through veth pairs; nothing touches the root
// namespace's interfaces or ruleset, and no namespace has a default route.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promisify } from 'node:util';
import type { TestContext } from 'node:test';

const exec = promisify(execFile);

/** Skips (loudly) unless we are root with nft and ip available. */
export async function needsRoot(t: TestContext): Promise<boolean> {
  let why = '';
  if (process.getuid?.() !== 0) why = 'needs root: creates network namespaces and loads nftables rules';
  else {
    try {
      await exec('nft', ['--version']);
      await exec('ip', ['-V']);
    } catch {
      why = 'needs nft and ip (apt-get install nftables iproute2)';
    }
  }
  if (!why) return true;
  console.error(`SKIP ${t.name}: ${why}`);
  t.skip(why);
  return false;
}

export async function sh(cmd: string, args: string[]): Promise<string> {
  return (await exec(cmd, args, { timeout: 20_000, maxBuffer: 64 << 20 })).stdout;
}

export function inNs(ns: string, cmd: string, args: string[]): Promise<string> {
  return sh('ip', ['netns', 'exec', ns, cmd, ...args]);
}

/** Creates one namespace per role, runs fn, deletes them all whatever happens. */
export async function withNamespaces<T>(
  roles: readonly string[],
  fn: (ns: Record<string, string>) => Promise<T>,
): Promise<T> {
  const tag = randomBytes(3).toString('hex');
  const ns: Record<string, string> = {};
  const children: ChildProcess[] = [];
  try {
    for (const role of roles) {
      const name = `pp-nft-${tag}-${role}`;
      await sh('ip', ['netns', 'add', name]);
      ns[role] = name;
      await inNs(name, 'ip', ['link', 'set', 'lo', 'up']);
    }
    return await fn(ns);
  } finally {
    for (const c of children) c.kill('SIGKILL');
    for (const name of Object.values(ns))
      await sh('ip', ['netns', 'del', name]).catch((e) => console.error(`could not delete ${name}:`, e));
  }
}

/** A veth pair between two of our namespaces, addressed and up. */
export async function link(
  a: { ns: string; ifname: string; addr: string },
  b: { ns: string; ifname: string; addr: string },
): Promise<void> {
  await sh('ip', ['-n', a.ns, 'link', 'add', a.ifname, 'type', 'veth', 'peer', 'name', b.ifname, 'netns', b.ns]);
  for (const end of [a, b]) {
    await inNs(end.ns, 'ip', ['addr', 'add', end.addr, 'dev', end.ifname]);
    await inNs(end.ns, 'ip', ['link', 'set', end.ifname, 'up']);
  }
}

/**
 * Starts a node program in a namespace; resolves once it printed "ready". The caller kills it by
 * its pid (`ip netns exec` execs the program, so the pid is node's).
 */
export function startIn(ns: string, source: string, args: string[] = []): Promise<ChildProcess> {
  return new Promise((resolve, reject) => {
    const child = spawn('ip', ['netns', 'exec', ns, process.execPath, '-e', source, ...args], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error('server did not start'));
    }, 5000);
    child.stdout!.on('data', (b: Buffer) => {
      if (b.toString().includes('ready')) {
        clearTimeout(timer);
        resolve(child);
      }
    });
    child.on('error', reject);
  });
}

/** TCP on 8080: answers "device-ok <peer address>". UDP on 1081: echoes. Exits by itself after 60 s. */
export const DEVICE_SERVER = `
const net = require('node:net'), dgram = require('node:dgram');
const tcp = net.createServer((s) => s.end('device-ok ' + s.remoteAddress));
const udp = dgram.createSocket('udp4');
udp.on('message', (m, r) => udp.send('echo ' + m, r.port, r.address));
tcp.listen(8080, '0.0.0.0', () => udp.bind(1081, () => console.log('ready')));
setTimeout(() => process.exit(0), 60000).unref();
`;

/** One bounded TCP attempt from `from`: the server's reply, "TIMEOUT" or "REFUSED". */
const TCP_CLIENT = `
const [host, port, local] = process.argv.slice(1);
const net = require('node:net');
const s = net.connect({ host, port: Number(port), localAddress: local });
let out = '';
const done = (r) => { console.log(r); process.exit(0); };
s.on('data', (b) => (out += b));
s.on('end', () => done(out));
s.on('error', (e) => done(e.code === 'ECONNREFUSED' ? 'REFUSED' : e.code));
setTimeout(() => done('TIMEOUT'), 1500);
`;

const UDP_CLIENT = `
const [host, port, local] = process.argv.slice(1);
const s = require('node:dgram').createSocket('udp4');
s.on('message', (m) => { console.log(String(m)); process.exit(0); });
s.bind(0, local, () => s.send('ping', Number(port), host));
setTimeout(() => { console.log('TIMEOUT'); process.exit(0); }, 1500);
`;

export async function tcpTry(ns: string, host: string, port: number, localAddress: string): Promise<string> {
  return (await inNs(ns, process.execPath, ['-e', TCP_CLIENT, host, String(port), localAddress])).trim();
}

export async function udpTry(ns: string, host: string, port: number, localAddress: string): Promise<string> {
  return (await inNs(ns, process.execPath, ['-e', UDP_CLIENT, host, String(port), localAddress])).trim();
}

/** One bounded UDP attempt on a connected socket, so ICMP errors surface: reply, error code or TIMEOUT. */
const UDP_CONNECTED_CLIENT = `
const [host, port] = process.argv.slice(1);
const s = require('node:dgram').createSocket('udp4');
const done = (r) => { console.log(r); process.exit(0); };
s.on('message', (m) => done(String(m)));
s.on('error', (e) => done(e.code));
s.connect(Number(port), host, () => { s.send('ping'); setTimeout(() => s.send('ping'), 200); });
setTimeout(() => done('TIMEOUT'), 1500);
`;

export async function udpConnectedTry(ns: string, host: string, port: number): Promise<string> {
  return (await inNs(ns, process.execPath, ['-e', UDP_CONNECTED_CLIENT, host, String(port)])).trim();
}

/** The relay's local services for OpenVPN customers: tproxy on TCP 12345, DNS stand-in on UDP 5353. */
export const RELAY_SERVICES = `
const net = require('node:net'), dgram = require('node:dgram');
const tcp = net.createServer((s) => s.end('tproxy-got ' + s.remoteAddress + ' for ' + s.localAddress + ':' + s.localPort));
const dns = dgram.createSocket('udp4');
dns.on('message', (m, r) => dns.send('dns-redirected ' + m, r.port, r.address));
tcp.listen(12345, '0.0.0.0', () => dns.bind(5353, '0.0.0.0', () => console.log('ready')));
setTimeout(() => process.exit(0), 60000).unref();
`;
