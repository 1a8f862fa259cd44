// Command-line parsing and help for `pocketproxy-agent pair|run`. Pure: argv in, a frozen config
// (or usage error listing every problem) out; main.ts does the I/O.
import { availableParallelism } from 'node:os';
import { parseArgs } from 'node:util';
import { agentError } from './errors.js';
import { DEFAULT_STATE_DIR } from './state.js';
import { parsePairingUri, serverUrlProblem } from './trust.js';
import { FINGERPRINT_PATTERN } from '@pocketproxy/protocol';
import type { RunConfig } from './agent.js';
import type { DriverName } from './ops/rotation.js';

/** `farm --threads auto`'s most: beyond it the host's cores are better left to the customers' packets. */
export const AUTO_THREADS_MAX = 8;

/** `run --listener-threads`' default, and auto's most (each thread is an isolate of ~10 MB more). */
export const DEFAULT_LISTENER_THREADS = 'auto';
export const AUTO_LISTENER_THREADS_MAX = 4;

/**
 * `run --listener-threads auto`: with more than two cores (where the packet path has a thread of its own,
 * tunnel/host.ts tunnelOnWorker) one per core left, at most AUTO_LISTENER_THREADS_MAX; with one or two, 1.
 * On the lab's two cores a second thread gave plain GETs 10-24 % more new connections/s but CONNECTs none,
 * at 10-20 % more CPU per request (its connections' packets wake the other thread; docs/benchmarks.md
 * "one agent's listeners on more than one thread"), and most customers' traffic is HTTPS, that is CONNECT.
 */
export function autoListenerThreads(cores = availableParallelism()): number {
  return cores > 2 ? Math.min(cores - 1, AUTO_LISTENER_THREADS_MAX) : 1;
}

/** `run --lanes`' default, and auto's most (a lane is a thread: an isolate of ~10 MB, a TUN queue, a session). */
export const DEFAULT_LANES = 'auto';
export const AUTO_LANES_MAX = 4;

/**
 * `run --lanes auto`: one per core the process may use, at most AUTO_LANES_MAX (1 on one core). On the lab's
 * two cores two lanes gave 10-22 % more new connections/s than one (CONNECT and plain GETs alike) at 10-20 %
 * more device CPU per request (docs/benchmarks.md "two lanes by default"). Where the kernel has no multi-queue
 * TUN, or the relay holds one lane per device, the agent runs one (agent.ts bringUp).
 */
export function autoLanes(cores = availableParallelism()): number {
  return Math.max(1, Math.min(cores, AUTO_LANES_MAX));
}

/** `farm --threads auto`: one worker thread per core the process may use, at most AUTO_THREADS_MAX. */
export function autoThreads(cores = availableParallelism()): number {
  return Math.max(1, Math.min(AUTO_THREADS_MAX, cores));
}

/** Where `farm` keeps its host key and its devices' states. */
export const DEFAULT_FARM_DIR = '/var/lib/pocketproxy-farm';

export const HELP = {
  main: `Usage: pocketproxy-agent <command> [options]

Device side of PocketProxy: tunnel client, HTTP/SOCKS5 proxies, heartbeat, commands.

Commands:
  pair    pair this device with a relay using a pairing code
  run     run the agent (needs root: creates a TUN device)
  farm    run every attached Android phone (adb) and USB modem (ModemManager) as its own
          device, enrolling new ones with an enrollment token (needs root)

Run "pocketproxy-agent <command> --help" for the options of a command.
`,
  pair: `Usage: pocketproxy-agent pair 'pocketproxy://pair?server=URL&code=CODE&fp=FP' [options]
       pocketproxy-agent pair --server URL --code CODE [--fingerprint FP] [options]

Pairs this device and writes <state-dir>/state.json (mode 0600). The pairing URI (the
dashboard's QR code and command; quote it in a shell) carries the server key's
fingerprint: the agent then refuses a server key or relay key that does not match it.

Options:
  --server URL          the PocketProxy API, e.g. https://proxy.example.com
  --code CODE           pairing code from the dashboard
  --fingerprint FP      the server key fingerprint shown with the code (the URI's fp)
  --insecure-http       allow a plain http:// server that is not loopback (a lab: the
                        token and keys cross the network in clear); needs the fingerprint;
                        remembered for run
  --state-dir DIR       where to keep the device identity (default ${DEFAULT_STATE_DIR})
  --name NAME           device name shown in the dashboard (default: host name)
  -h, --help            show this help
`,
  run: `Usage: pocketproxy-agent run [options]

Opens the tunnel to the relay and serves each connection on its own port of the
tunnel address (the connection's relay port; HTTP, or SOCKS5 tcp+udp).

Options:
  --state-dir DIR                 state directory (default ${DEFAULT_STATE_DIR})
  --insecure-http                 accept a plain http:// server that is not loopback (pair --insecure-http is remembered)
  --egress-interface IF           customer traffic leaves by IF (e.g. wwan0); default: default route
  --tunnel-interface IF           TUN device name (default ppd0)
  --rotate-driver DRIVER          command | android-root | modemmanager
  --rotate-command CMD            for --rotate-driver command: run via /bin/sh -c
  --airplane-seconds N            android-root: airplane mode duration (default 5)
  --ip-echo-url URL               public address echo (default <server>/api/public/ip)
  --allow-private-destinations    let customers reach private ranges (never the tunnel subnet or this device)
  --close-on-rotate true|false    drop open customer connections after a rotation (default true)
  --dns-cache-ms N                reuse a DNS answer for N ms (default 5000; 0 = resolve every request)
  --allow-reboot                  obey the reboot command
  --handshake-timeout-s N         a request head / SOCKS5 handshake must be complete in N s (default 10)
  --idle-timeout-s N              close an established tunnel after N s without traffic (default 300)
  --max-handshakes-per-address N  unauthenticated sockets per customer address (default 64)
  --max-handshakes N              unauthenticated sockets in all (default 2048)
  --reply-table N                 routing table and rule preference for answers into the tunnel (default 5210)
  --lanes N|auto                  packet paths: N threads, each with its own TUN queue, tunnel session
                                  and listeners, so a connection's packets stay on one thread (1-16;
                                  default auto: one per core, at most ${AUTO_LANES_MAX}; one where the TUN
                                  has no multi-queue or the relay holds one lane)
  --listener-threads N|auto       with one lane: threads that accept and serve the HTTP connections
                                  without limits (default auto: one per core but one from 3 cores on,
                                  at most ${AUTO_LISTENER_THREADS_MAX}; 1 on one or two cores: the main thread only)
  --log-level LEVEL               pino level (default info, or $LOG_LEVEL)
  -h, --help                      show this help
`,
  farm: `Usage: pocketproxy-agent farm --server URL --enroll TOKEN [--fingerprint FP] [options]

One process for a farm host: finds the Android phones (adb devices -l) and USB modems
(mmcli -L) attached to this host and runs each as its own device: its own tunnel (TUN
ppf<N>), its own proxies, egress by its own interface (the phone's USB tethering, the
modem's bearer), its own rotation (airplane mode / mobile data by adb; bearer reconnect by
ModemManager) and metrics. A new phone or modem is enrolled with the token (the dashboard's
enrollment token); its identity is kept in <state-dir>/devices/<id>/state.json, so an
unplugged phone comes back as the same device with the same ports. Devices that cannot run
(unauthorised, tethering off, no address...) are reported with the reason in the log and in
<state-dir>/farm-status.json.

Options:
  --server URL              the PocketProxy API (needed to enroll new devices)
  --enroll TOKEN            enrollment token from the dashboard (new devices need it); or
                            POCKETPROXY_ENROLL_TOKEN in the environment, which keeps it out of
                            the process list (the systemd unit's farm.env)
  --fingerprint FP          the server key fingerprint shown with the token
  --insecure-http           allow a plain http:// server that is not loopback (a lab); needs
                            the fingerprint
  --state-dir DIR           where the farm keeps its devices (default ${DEFAULT_FARM_DIR})
  --name NAME               this farm host's name in the dashboard (default: host name)
  --adb PATH                the adb binary (default: adb on PATH)
  --mmcli PATH              the mmcli binary (default: mmcli on PATH)
  --sysfs-root DIR          where to read class/net/*/device links (default /sys)
  --rotate-method METHOD    phones rotate by airplane (default) or data (mobile data off/on)
  --airplane-seconds N      how long a phone stays off when rotating (default 5; carriers need 3-5)
  --scan-interval S         look for plugged / unplugged devices every S seconds (default 5)
  --ip-echo-url URL         public address echo (default <server>/api/public/ip)
  --threads N|auto          run the devices' agents on N worker threads, spread evenly;
                            1: all on the farm's own thread (default auto: one per core,
                            at most ${AUTO_THREADS_MAX}; a worker starts only when a device needs it)
  --log-level LEVEL         pino level (default info, or $LOG_LEVEL)
  -h, --help                show this help
`,
} as const;

export interface FarmCli {
  server?: string;
  enrollToken?: string;
  fingerprint?: string;
  insecureHttp: boolean;
  stateDir: string;
  name?: string;
  adb?: string;
  mmcli?: string;
  sysfsRoot: string;
  rotateMethod: 'airplane' | 'data';
  airplaneSeconds: number;
  scanIntervalMs: number;
  ipEchoUrl?: string;
  /** Worker threads the devices' agents run on (1: the farm's own loop; default autoThreads()). */
  threads: number;
}

export type Parsed =
  | { command: 'help'; text: string }
  | {
      command: 'pair';
      server: string;
      code: string;
      fingerprint?: string;
      insecureHttp: boolean;
      stateDir: string;
      name?: string;
      logLevel?: string;
    }
  | { command: 'run'; config: Readonly<RunConfig>; insecureHttp: boolean; logLevel?: string }
  | { command: 'farm'; farm: Readonly<FarmCli>; logLevel?: string };

const DRIVERS: readonly DriverName[] = ['command', 'android-root', 'modemmanager'];

export function parseCli(argv: readonly string[]): Parsed {
  const [command, ...rest] = argv;
  if (!command || command === '-h' || command === '--help' || command === 'help')
    return { command: 'help', text: HELP.main };
  if (command === 'pair') {
    const { values, positionals } = parse(
      rest,
      {
        server: { type: 'string' },
        code: { type: 'string' },
        fingerprint: { type: 'string' },
        'insecure-http': { type: 'boolean' },
        'state-dir': { type: 'string' },
        name: { type: 'string' },
        'log-level': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
      true,
    );
    if (values.help) return { command: 'help', text: HELP.pair };
    const problems: string[] = [];
    const insecureHttp = Boolean(values['insecure-http']);
    let server = values.server as string | undefined;
    let code = values.code as string | undefined;
    let fingerprint = values.fingerprint as string | undefined;
    if (positionals.length > 1) problems.push('one pairing URI at most');
    if (positionals.length) {
      const uri = parsePairingUri(positionals[0]!);
      if (server !== undefined || code !== undefined || fingerprint !== undefined)
        problems.push('give the pairing URI or --server/--code/--fingerprint, not both');
      else if (typeof uri === 'string') problems.push(uri);
      else ({ server, code, fingerprint } = uri);
    } else {
      if (!server) problems.push('--server is required (or the pairing URI)');
      if (!code) problems.push('--code is required (or the pairing URI)');
      if (fingerprint !== undefined && !FINGERPRINT_PATTERN.test(fingerprint))
        problems.push('--fingerprint must be 22 characters of base64url (the fp of the pairing URI)');
    }
    if (server) {
      const p = serverUrlProblem(server, insecureHttp);
      if (p) problems.push(p);
      else if (insecureHttp && fingerprint === undefined && serverUrlProblem(server, false))
        problems.push(
          '--insecure-http needs the server fingerprint (the pairing URI, or --fingerprint): ' +
            'over plain http it is all that stops a man in the middle posing as the relay',
        );
    }
    usage(problems, HELP.pair);
    return {
      command: 'pair',
      server: server!,
      code: code!,
      ...(fingerprint === undefined ? {} : { fingerprint }),
      insecureHttp,
      stateDir: (values['state-dir'] as string | undefined) ?? DEFAULT_STATE_DIR,
      name: values.name as string | undefined,
      logLevel: values['log-level'] as string | undefined,
    };
  }
  if (command === 'run') {
    const { values } = parse(rest, {
      'insecure-http': { type: 'boolean' },
      'state-dir': { type: 'string' },
      'egress-interface': { type: 'string' },
      'tunnel-interface': { type: 'string' },
      'rotate-driver': { type: 'string' },
      'rotate-command': { type: 'string' },
      'airplane-seconds': { type: 'string' },
      'ip-echo-url': { type: 'string' },
      'allow-private-destinations': { type: 'boolean' },
      'close-on-rotate': { type: 'string' },
      'dns-cache-ms': { type: 'string' },
      'allow-reboot': { type: 'boolean' },
      'handshake-timeout-s': { type: 'string' },
      'idle-timeout-s': { type: 'string' },
      'max-handshakes-per-address': { type: 'string' },
      'max-handshakes': { type: 'string' },
      'reply-table': { type: 'string' },
      'listener-threads': { type: 'string' },
      lanes: { type: 'string' },
      'log-level': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    });
    if (values.help) return { command: 'help', text: HELP.run };
    const problems: string[] = [];
    const ifname = /^[A-Za-z0-9_.-]{1,15}$/;
    const tunName = (values['tunnel-interface'] as string | undefined) ?? 'ppd0';
    if (!ifname.test(tunName)) problems.push('--tunnel-interface must be a 1-15 character interface name');
    const egress = values['egress-interface'] as string | undefined;
    if (egress !== undefined && !ifname.test(egress))
      problems.push('--egress-interface must be a 1-15 character interface name');
    let driver = values['rotate-driver'] as DriverName | undefined;
    const rotateCommand = values['rotate-command'] as string | undefined;
    if (driver === undefined && rotateCommand) driver = 'command';
    if (driver !== undefined && !DRIVERS.includes(driver))
      problems.push(`--rotate-driver must be one of ${DRIVERS.join(', ')}`);
    if (driver === 'command' && !rotateCommand) problems.push('--rotate-driver command needs --rotate-command');
    const close = (values['close-on-rotate'] as string | undefined) ?? 'true';
    if (close !== 'true' && close !== 'false') problems.push('--close-on-rotate must be true or false');
    const airplane = Number((values['airplane-seconds'] as string | undefined) ?? 5);
    if (!Number.isFinite(airplane) || airplane < 0 || airplane > 600) problems.push('--airplane-seconds must be 0-600');
    const dnsCacheMs = Number((values['dns-cache-ms'] as string | undefined) ?? 5000);
    if (!Number.isInteger(dnsCacheMs) || dnsCacheMs < 0 || dnsCacheMs > 3_600_000)
      problems.push('--dns-cache-ms must be an integer 0-3600000');
    const int = (name: string, def: number, min: number, max: number): number => {
      const v = Number((values[name] as string | undefined) ?? def);
      if (!Number.isInteger(v) || v < min || v > max) problems.push(`--${name} must be an integer ${min}-${max}`);
      return v;
    };
    const handshakeS = int('handshake-timeout-s', 10, 1, 600);
    const idleS = int('idle-timeout-s', 300, 1, 86_400);
    const perAddress = int('max-handshakes-per-address', 64, 1, 100_000);
    const handshakes = int('max-handshakes', 2048, 1, 1_000_000);
    const replyTable = int('reply-table', 5210, 1, 2_147_483_647);
    if (replyTable >= 253 && replyTable <= 255)
      problems.push('--reply-table must not be 253-255 (the default, main and local tables)');
    const lt = (values['listener-threads'] as string | undefined) ?? DEFAULT_LISTENER_THREADS;
    const listenerThreads = lt === 'auto' ? autoListenerThreads() : Number(lt);
    if (!Number.isInteger(listenerThreads) || listenerThreads < 1 || listenerThreads > 64)
      problems.push('--listener-threads must be 1-64 or auto');
    const ln = (values.lanes as string | undefined) ?? DEFAULT_LANES;
    const lanes = ln === 'auto' ? autoLanes() : Number(ln);
    if (!/^(auto|\d+)$/.test(ln) || !Number.isInteger(lanes) || lanes < 1 || lanes > 16)
      problems.push('--lanes must be 1-16 or auto');
    const echo = values['ip-echo-url'] as string | undefined;
    if (echo !== undefined && !/^https?:\/\/[^\s]+$/.test(echo)) problems.push('--ip-echo-url must be an http(s) URL');
    usage(problems, HELP.run);
    const config: RunConfig = {
      stateDir: (values['state-dir'] as string | undefined) ?? DEFAULT_STATE_DIR,
      egressInterface: egress,
      tunnelInterface: tunName,
      rotateDriver: driver,
      rotateCommand,
      ipEchoUrl: echo,
      allowPrivateDestinations: Boolean(values['allow-private-destinations']),
      closeOnRotate: close === 'true',
      allowReboot: Boolean(values['allow-reboot']),
      airplaneSeconds: airplane,
      dnsCacheMs,
      handshakeTimeoutMs: handshakeS * 1000,
      idleTimeoutMs: idleS * 1000,
      maxHandshakesPerAddress: perAddress,
      maxHandshakes: handshakes,
      replyTable,
      listenerThreads,
      lanes,
      lanesAuto: ln === 'auto',
    };
    return {
      command: 'run',
      config: Object.freeze(config),
      insecureHttp: Boolean(values['insecure-http']),
      logLevel: values['log-level'] as string | undefined,
    };
  }
  if (command === 'farm') return parseFarm(rest);
  throw agentError('PP_ERR_AGENT_USAGE', { reason: `unknown command "${command}"\n\n${HELP.main}` });
}

function parseFarm(rest: readonly string[]): Parsed {
  const { values } = parse(rest, {
    server: { type: 'string' },
    enroll: { type: 'string' },
    fingerprint: { type: 'string' },
    'insecure-http': { type: 'boolean' },
    'state-dir': { type: 'string' },
    name: { type: 'string' },
    adb: { type: 'string' },
    mmcli: { type: 'string' },
    'sysfs-root': { type: 'string' },
    'rotate-method': { type: 'string' },
    'airplane-seconds': { type: 'string' },
    'scan-interval': { type: 'string' },
    'ip-echo-url': { type: 'string' },
    threads: { type: 'string' },
    'log-level': { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  });
  if (values.help) return { command: 'help', text: HELP.farm };
  const problems: string[] = [];
  const str = (k: string) => values[k] as string | undefined;
  const insecureHttp = Boolean(values['insecure-http']);
  const server = str('server');
  // The environment keeps the token out of `ps` (/proc/<pid>/cmdline is world-readable, environ is not).
  const fromEnv = process.env.POCKETPROXY_ENROLL_TOKEN?.trim() || undefined;
  const token = str('enroll') ?? fromEnv;
  const tokenFrom = str('enroll') !== undefined ? '--enroll' : 'POCKETPROXY_ENROLL_TOKEN';
  const fingerprint = str('fingerprint');
  if (token !== undefined && !/^[A-Za-z0-9_-]{16,200}$/.test(token))
    problems.push(`${tokenFrom} must be the enrollment token from the dashboard (base64url)`);
  if (token !== undefined && !server) problems.push(`${tokenFrom} needs --server`);
  if (fingerprint !== undefined && !FINGERPRINT_PATTERN.test(fingerprint))
    problems.push('--fingerprint must be 22 characters of base64url');
  if (server) {
    const p = serverUrlProblem(server, insecureHttp);
    if (p) problems.push(p);
    else if (insecureHttp && fingerprint === undefined && serverUrlProblem(server, false))
      problems.push('--insecure-http needs --fingerprint: over plain http it is all that stops a man in the middle');
  }
  const name = str('name');
  if (name !== undefined && (name.length === 0 || name.length > 64)) problems.push('--name must be 1-64 characters');
  const method = str('rotate-method') ?? 'airplane';
  if (method !== 'airplane' && method !== 'data') problems.push('--rotate-method must be airplane or data');
  const airplane = Number(str('airplane-seconds') ?? 5);
  if (!Number.isFinite(airplane) || airplane < 0 || airplane > 600) problems.push('--airplane-seconds must be 0-600');
  const scan = Number(str('scan-interval') ?? 5);
  if (!Number.isFinite(scan) || scan < 0.2 || scan > 3600) problems.push('--scan-interval must be 0.2-3600 seconds');
  const threadsArg = str('threads') ?? 'auto';
  const threads = threadsArg === 'auto' ? autoThreads() : Number(threadsArg);
  if (!Number.isInteger(threads) || threads < 1 || threads > 64) problems.push('--threads must be 1-64 or auto');
  const echo = str('ip-echo-url');
  if (echo !== undefined && !/^https?:\/\/[^\s]+$/.test(echo)) problems.push('--ip-echo-url must be an http(s) URL');
  for (const k of ['adb', 'mmcli', 'sysfs-root', 'state-dir'])
    if (str(k) !== undefined && (str(k) === '' || str(k)!.includes('\0'))) problems.push(`--${k} must be a path`);
  usage(problems, HELP.farm);
  const farm: FarmCli = {
    ...(server ? { server } : {}),
    ...(token ? { enrollToken: token } : {}),
    ...(fingerprint ? { fingerprint } : {}),
    insecureHttp,
    stateDir: str('state-dir') ?? DEFAULT_FARM_DIR,
    ...(name ? { name } : {}),
    ...(str('adb') ? { adb: str('adb') } : {}),
    ...(str('mmcli') ? { mmcli: str('mmcli') } : {}),
    sysfsRoot: str('sysfs-root') ?? '/sys',
    rotateMethod: method as 'airplane' | 'data',
    airplaneSeconds: airplane,
    scanIntervalMs: Math.round(scan * 1000),
    ...(echo ? { ipEchoUrl: echo } : {}),
    threads,
  };
  return { command: 'farm', farm: Object.freeze(farm), logLevel: str('log-level') };
}

type Spec = NonNullable<Parameters<typeof parseArgs>[0]>['options'];

function parse(
  args: readonly string[],
  options: Spec,
  allowPositionals = false,
): { values: Record<string, string | boolean | undefined>; positionals: string[] } {
  try {
    return parseArgs({ args: joinOptionValues(args, options), options, strict: true, allowPositionals }) as {
      values: Record<string, string | boolean | undefined>;
      positionals: string[];
    };
  } catch (e) {
    throw agentError('PP_ERR_AGENT_USAGE', { reason: (e as Error).message });
  }
}

/**
 * An option that takes a value takes the next word whatever it starts with, as getopt does:
 * a fingerprint is base64url and may begin with '-' (one in 32), which parseArgs alone refuses
 * as ambiguous. `--opt value` becomes `--opt=value` (and `-o value` the long form) before parsing;
 * a missing value is still parseArgs' error, and a wrong one is the option's own check.
 */
function joinOptionValues(args: readonly string[], options: Spec): string[] {
  const out: string[] = [];
  const byShort = new Map<string, string>(
    Object.entries(options ?? {}).flatMap(([name, o]) => (o.short ? [[`-${o.short}`, name] as const] : [])),
  );
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === '--') {
      out.push(...args.slice(i));
      break;
    }
    const name = a.startsWith('--') ? a.slice(2) : byShort.get(a);
    if (name !== undefined && options?.[name]?.type === 'string' && i + 1 < args.length) {
      out.push(`--${name}=${args[++i]}`);
      continue;
    }
    out.push(a);
  }
  return out;
}

function usage(problems: string[], help: string): void {
  if (problems.length) throw agentError('PP_ERR_AGENT_USAGE', { reason: `${problems.join('\n')}\n\n${help}` });
}
