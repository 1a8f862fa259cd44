// The whole product in a lab: `pocketproxy up` in the relay namespace, `pocketproxy-agent` in each
// device namespace, and an admin API client for the test process. Shared by the data-plane lab
// tests, `npm run demo` and `npm run bench:dataplane`, so all three start the system the same way.
//
// The test process lives in the root namespace and cannot reach lab addresses. The API client
// goes through a unix socket instead: socat inside the relay namespace listens on a socket file
// (files are not namespaced) and connects to 127.0.0.1:<api port> there.
//
//   test process --unix socket--> socat (relay ns) --tcp--> pocketproxy api 127.0.0.1:8080
//
// It spawns the built binaries by path (apps/*/bin) and imports no product code.
import { request } from 'node:http';
import { mkdtempSync, rmSync, existsSync, readFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Lab } from './lab.js';
import type { LabProcess } from './process.js';
import { waitUntil } from './wait.js';

export const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));
export const SERVER_BIN = join(REPO_ROOT, 'apps/server/bin/pocketproxy.js');
export const AGENT_BIN = join(REPO_ROOT, 'apps/agent/bin/pocketproxy-agent.js');

// Data and state directories are removed when this process exits (tests tear the lab down, not
// each relay/agent), so runs leave nothing behind in /tmp.
const scratch = new Set<string>();
let exitHook = false;
function tempDir(prefix: string): string {
  const d = mkdtempSync(join(tmpdir(), prefix));
  scratch.add(d);
  if (!exitHook) {
    exitHook = true;
    process.once('exit', () => {
      for (const x of scratch) rmSync(x, { recursive: true, force: true });
    });
  }
  return d;
}

export const ADMIN_EMAIL = 'admin@example.com';
export const ADMIN_PASSWORD = 'lab-admin-password-0123';

/** An API reply as the lab tests read it: untyped JSON unless the caller names a type. */
// biome-ignore lint/suspicious/noExplicitAny: lab tests read replies field by field; their assertions are the check
export type Json = any;

export interface ApiResponse<T = Json> {
  status: number;
  body: T;
  text: string;
}

/** Minimal admin client over the unix-socket bridge. */
export class LabApi {
  token = '';
  constructor(readonly socketPath: string) {}

  /** EAGAIN on connect = socat's listen backlog was full (the request never left): retried briefly. */
  async call<T = Json>(
    method: string,
    path: string,
    body?: unknown,
    opts: { token?: string; timeoutMs?: number } = {},
  ): Promise<ApiResponse<T>> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.callOnce<T>(method, path, body, opts);
      } catch (e) {
        if ((e as { code?: string }).code !== 'EAGAIN' || attempt >= 40) throw e;
        await new Promise((r) => setTimeout(r, 25 + 25 * Math.min(attempt, 4)));
      }
    }
  }

  private callOnce<T = Json>(
    method: string,
    path: string,
    body: unknown,
    opts: { token?: string; timeoutMs?: number },
  ): Promise<ApiResponse<T>> {
    const data = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    const headers: Record<string, string> = { host: 'localhost' };
    if (data) {
      headers['content-type'] = 'application/json';
      headers['content-length'] = String(data.length);
    }
    const token = opts.token ?? this.token;
    if (token) headers.authorization = `Bearer ${token}`;
    return new Promise((resolve, reject) => {
      const req = request(
        { socketPath: this.socketPath, method, path, headers, timeout: opts.timeoutMs ?? 15_000 },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            let parsed: unknown = text;
            try {
              parsed = text ? JSON.parse(text) : undefined;
            } catch {
              /* not JSON */
            }
            resolve({ status: res.statusCode ?? 0, body: parsed as T, text });
          });
          res.on('error', reject);
        },
      );
      req.on('timeout', () => req.destroy(new Error(`API ${method} ${path}: timeout`)));
      req.on('error', reject);
      req.end(data);
    });
  }

  /** Like call(), but throws unless the status is 2xx. */
  async ok<T = Json>(method: string, path: string, body?: unknown): Promise<T> {
    const r = await this.call<T>(method, path, body);
    if (r.status < 200 || r.status > 299)
      throw new Error(`API ${method} ${path} -> ${r.status} ${r.text.slice(0, 400)}`);
    return r.body;
  }

  async login(email = ADMIN_EMAIL, password = ADMIN_PASSWORD): Promise<void> {
    const r = await this.ok<{ token: string }>('POST', '/api/auth/login', { email, password });
    this.token = r.token;
  }
}

export interface RelayOptions {
  /** Extra POCKETPROXY_* settings (override the lab defaults). */
  env?: Record<string, string>;
  /** Mirror the relay's output to stderr. */
  echo?: boolean;
  readyTimeoutMs?: number;
  /** Node options before the script (e.g. --cpu-prof; `up` passes them on to its children). */
  execArgv?: string[];
}

export interface LabRelay {
  proc: LabProcess;
  api: LabApi;
  dataDir: string;
  apiPort: number;
  /** pid of the `tunnel` child of `up` (changes when `up` restarts it). */
  tunnelPid(): Promise<number | undefined>;
  /** The tunnel's GET /status (TunnelStatus, apps/server tunnel.ts), read in the relay namespace; undefined when it does not answer. */
  // biome-ignore lint/suspicious/noExplicitAny: an untyped JSON reply; the tests' assertions are the check
  tunnelStatus(): Promise<Record<string, any> | undefined>;
  stop(): Promise<void>;
}

/**
 * The relay's switches that pass from the test's or bench's environment to `pocketproxy up`, for A/B runs:
 * the offloads (packages/tun), the native seal and open paths and ACK thinning (tunnel main.ts), the
 * transparent proxy's splice and TCP Fast Open (tunnel/tproxy.ts), OpenVPN customers carried to devices
 * (openvpn/carry.ts), the SOCKS5 and HTTP fronts and their early replies (tunnel/socks5-front.ts; until
 * 2026-12-08 the early reply's switch was not passed, so its first lab A/B compared the reply on with itself),
 * the AEAD's way through OpenSSL
 * (packages/tun native/aead.h).
 */
const RELAY_SWITCHES = [
  'POCKETPROXY_OFFLOAD',
  'POCKETPROXY_NATIVE_SEAL',
  'POCKETPROXY_NATIVE_OPEN',
  'POCKETPROXY_ACK_THINNING',
  'POCKETPROXY_OPENVPN_CARRY',
  'POCKETPROXY_OPENVPN_CARRY_MSS',
  'POCKETPROXY_TPROXY_SPLICE',
  'POCKETPROXY_TPROXY_FASTOPEN',
  'POCKETPROXY_SOCKS5_FRONT',
  'POCKETPROXY_SOCKS5_EARLY_REPLY',
  'POCKETPROXY_HTTP_FRONT',
  'POCKETPROXY_HTTP_EARLY_REPLY',
  'POCKETPROXY_HTTP_FRONT_RTT_MS',
  'POCKETPROXY_HTTP_FRONT_HOLD_S',
  'POCKETPROXY_AEAD',
] as const;

/** Start `pocketproxy up` in the relay namespace, wait for the API, log in as admin. */
export async function startRelay(lab: Lab, opts: RelayOptions = {}): Promise<LabRelay> {
  const dataDir = tempDir('pp-relay-');
  const apiPort = Number(opts.env?.POCKETPROXY_API_PORT ?? 8080);
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    POCKETPROXY_DATA_DIR: dataDir,
    POCKETPROXY_PUBLIC_HOST: lab.relay.ip,
    POCKETPROXY_API_PORT: String(apiPort),
    POCKETPROXY_ADMIN_EMAIL: ADMIN_EMAIL,
    POCKETPROXY_ADMIN_PASSWORD: ADMIN_PASSWORD,
    POCKETPROXY_LOG_LEVEL: 'info',
    // The lab's links are near (~0.2 ms), but a handshake while an agent starts can read tens of ms on a busy
    // 2-core host: with POCKETPROXY_HTTP_FRONT=auto (the default) a device counts as far only from 1 s here,
    // so which path an HTTP port takes is the test's choice (http-front-auto.lab.test.ts sets its own).
    POCKETPROXY_HTTP_FRONT_RTT_MS: '1000',
    ...Object.fromEntries(RELAY_SWITCHES.filter((k) => process.env[k] !== undefined).map((k) => [k, process.env[k]])),
    ...opts.env,
  };
  const proc = lab.spawn('relay', process.execPath, [...(opts.execArgv ?? []), SERVER_BIN, 'up'], {
    env,
    cwd: REPO_ROOT,
    echo: opts.echo ? (l) => console.error(l) : undefined,
  });
  const socketPath = join(dataDir, 'api.sock');
  const bridge = lab.spawn('relay', 'socat', [
    `UNIX-LISTEN:${socketPath},fork,reuseaddr,mode=600`,
    `TCP:127.0.0.1:${apiPort}`,
  ]);
  const api = new LabApi(socketPath);
  await waitUntil(
    async () => {
      if (proc.exitStatus) throw new Error(`pocketproxy up exited: ${proc.lines.slice(-20).join('\n')}`);
      if (!existsSync(socketPath)) return false;
      try {
        return (await api.call('GET', '/healthz', undefined, { timeoutMs: 2_000 })).status === 200;
      } catch {
        return false;
      }
    },
    { timeoutMs: opts.readyTimeoutMs ?? 60_000, intervalMs: 250, what: 'pocketproxy API answers /healthz' },
  );
  await api.login();
  return {
    proc,
    api,
    dataDir,
    apiPort,
    tunnelPid: () => childPid(proc.pid, 'tunnel'),
    async tunnelStatus() {
      const token = readFileSync(join(dataDir, 'internal.token'), 'utf8').trim();
      const r = await lab.exec('relay', 'curl', [
        '-sS',
        '--max-time',
        '2',
        '-H',
        `authorization: Bearer ${token}`,
        'http://127.0.0.1:8081/status',
      ]);
      return r.code === 0 ? JSON.parse(r.stdout) : undefined;
    },
    async stop() {
      await proc.stop(8_000);
      await bridge.stop(500);
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** pid of the child of `parent` whose command line contains `word` (from /proc). */
export async function childPid(parent: number, word: string): Promise<number | undefined> {
  const { readdirSync } = await import('node:fs');
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid !== parent) continue;
      const cmdline = readFileSync(`/proc/${name}/cmdline`, 'utf8').split('\0');
      if (cmdline.includes(word)) return Number(name);
    } catch {
      /* gone */
    }
  }
  return undefined;
}

export interface AgentOptions {
  /** Extra `run` arguments. */
  args?: string[];
  /** Use the lab's rotation CLI as `--rotate-command` (default true). */
  rotate?: boolean;
  echo?: boolean;
  name?: string;
  /** Node options before the script (e.g. --cpu-prof). */
  execArgv?: string[];
}

export interface LabAgent {
  n: number;
  deviceId: string;
  stateDir: string;
  proc: LabProcess;
  /** Stops `pocketproxy-agent run` and starts it again with the same state (a new tunnel handshake). */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

/**
 * A fresh pairing code. The API lets an admin make 30 a minute; a lab that pairs more (bench:control pairs 50
 * devices in a row) waits out the limit, as an operator's script would, within 2 minutes.
 */
async function newPairingCode(api: LabApi): Promise<{ code: string; pair_url: string; server_fingerprint: string }> {
  const deadline = Date.now() + 120_000;
  for (;;) {
    const r = await api.call<{ code: string; pair_url: string; server_fingerprint: string; detail?: string }>(
      'POST',
      '/api/pairing-codes',
      {},
    );
    if (r.status >= 200 && r.status < 300) return r.body;
    const retryS = Number(/retry in (\d+) s/.exec(r.text)?.[1] ?? Number.NaN);
    if (r.status !== 429 || !Number.isFinite(retryS) || Date.now() + retryS * 1000 > deadline)
      throw new Error(`API POST /api/pairing-codes -> ${r.status} ${r.text.slice(0, 400)}`);
    await new Promise((done) => setTimeout(done, retryS * 1000));
  }
}

/**
 * The lanes each lab agent runs (`startAgent`): POCKETPROXY_LANES if set, else the agent's `--lanes auto`, one
 * per core at most 4 (apps/agent/src/cli.ts autoLanes; the relay holds 16 per device). Suites that wait for
 * every lane (`GET /status` lanes_up) or spread flows over them ask here.
 */
export function agentLanes(): number {
  const set = process.env.POCKETPROXY_LANES;
  return set ? Number(set) : Math.max(1, Math.min(availableParallelism(), 4));
}

/** Pair device n with a fresh pairing code and start `pocketproxy-agent run` in its namespace. */
export async function startAgent(lab: Lab, relay: LabRelay, n: number, opts: AgentOptions = {}): Promise<LabAgent> {
  const stateDir = tempDir(`pp-agent${n}-`);
  const code = await newPairingCode(relay.api);
  const server = `http://${lab.relay.ip}:${relay.apiPort}`;
  // The lab's API is plain http on a non-loopback address: --insecure-http (pair remembers it for run).
  // The pairing URI (as in the QR code) when it names the address we reach the API at, which it does
  // unless a test overrides POCKETPROXY_PUBLIC_URL; both carry the server key fingerprint.
  const pairArgs =
    new URL(code.pair_url).searchParams.get('server') === server
      ? [code.pair_url]
      : ['--server', server, '--code', code.code, '--fingerprint', code.server_fingerprint];
  // The agent's switches pass through, for A/B benchmarks (docs/operations.md).
  const passed = [
    'POCKETPROXY_OFFLOAD',
    'POCKETPROXY_AGENT_TUNNEL_THREAD',
    'POCKETPROXY_AGENT_SOCKETS',
    'POCKETPROXY_NATIVE_SEAL',
    'POCKETPROXY_SPLICE',
    'POCKETPROXY_NATIVE_FRONT',
    'POCKETPROXY_AEAD',
  ].filter((k) => process.env[k] !== undefined);
  const env = {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    ...Object.fromEntries(passed.map((k) => [k, process.env[k]])),
    // Bench only: the agent's native seal alone (the A/B of one end; the relay follows POCKETPROXY_NATIVE_SEAL).
    ...(process.env.POCKETPROXY_AGENT_NATIVE_SEAL !== undefined
      ? { POCKETPROXY_NATIVE_SEAL: process.env.POCKETPROXY_AGENT_NATIVE_SEAL }
      : {}),
  };
  const pair = await lab.exec(
    `dev${n}`,
    process.execPath,
    [AGENT_BIN, 'pair', ...pairArgs, '--insecure-http', '--state-dir', stateDir, '--name', opts.name ?? `lab-dev${n}`],
    { env, cwd: REPO_ROOT, timeoutMs: 30_000 },
  );
  if (pair.code !== 0) throw new Error(`agent pair (dev${n}) failed: ${pair.stderr}${pair.stdout}`);
  const state = JSON.parse(readFileSync(join(stateDir, 'state.json'), 'utf8'));
  const deviceId: string = state.device_id ?? state.deviceId;
  const args = [
    'run',
    '--state-dir',
    stateDir,
    '--egress-interface',
    lab.device(n).iface,
    '--tunnel-interface',
    'ppd0',
  ];
  if (opts.rotate ?? true) args.push('--rotate-driver', 'command', '--rotate-command', lab.rotateCommandLine(n));
  args.push(...(opts.args ?? []));
  // Bench A/B: the agent's listener threads (run --listener-threads).
  if (process.env.POCKETPROXY_LISTENER_THREADS && !args.includes('--listener-threads'))
    args.push('--listener-threads', process.env.POCKETPROXY_LISTENER_THREADS);
  // Bench A/B and the one-lane test variants: the agent's lanes (run --lanes; default auto, agentLanes).
  if (process.env.POCKETPROXY_LANES && !args.includes('--lanes')) args.push('--lanes', process.env.POCKETPROXY_LANES);
  const run = () =>
    lab.spawn(`dev${n}`, process.execPath, [...(opts.execArgv ?? []), AGENT_BIN, ...args], {
      env,
      cwd: REPO_ROOT,
      echo: opts.echo ? (l) => console.error(l) : undefined,
    });
  const agent: LabAgent = {
    n,
    deviceId,
    stateDir,
    proc: run(),
    async restart() {
      await agent.proc.stop(3_000);
      agent.proc = run();
    },
    async stop() {
      await agent.proc.stop(3_000);
      rmSync(stateDir, { recursive: true, force: true });
    },
  };
  return agent;
}

/** Wait until the API says the device is online with its tunnel up. */
export async function waitDeviceOnline(relay: LabRelay, deviceId: string, timeoutMs = 30_000): Promise<Json> {
  let dev: Json;
  await waitUntil(
    async () => {
      dev = (await relay.api.call('GET', `/api/devices/${deviceId}`)).body;
      return dev?.status === 'online' && dev?.tunnel_connected === true;
    },
    { timeoutMs, intervalMs: 300, what: `device ${deviceId} online with tunnel` },
  );
  return dev;
}

export interface Connection {
  id: string;
  device_id: string;
  protocol: 'http' | 'socks5';
  port: number;
  username: string;
  password: string;
  proxy_url: string;
  enabled: boolean;
  [k: string]: unknown;
}

export function createConnection(
  relay: LabRelay,
  deviceId: string,
  protocol: 'http' | 'socks5',
  extra: Record<string, unknown> = {},
): Promise<Connection> {
  return relay.api.ok<Connection>('POST', '/api/connections', { device_id: deviceId, protocol, ...extra });
}

/** Scratch directory for helper scripts that must be readable from every namespace. */
export function scratchDir(prefix = 'pp-lab-'): string {
  return tempDir(prefix);
}
