// The lab: createLab() builds the namespaces and starts the "internet" services; the Lab object
// runs commands and processes inside them, injects faults (carrier IP rotation, UDP blocking, link
// down) and tears everything down again — by pid and by namespace name, also on process exit.
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { rotateCarrier, currentCarrierAddress, type Rotation } from './carrier.js';
import { claimPrefix, cleanupLabSync, cleanupStale, labDir } from './cleanup.js';
import { labError } from './errors.js';
import { blockUdp, unblockUdp, type BlockOptions } from './firewall.js';
import { registerLab, unregisterLab } from './hooks.js';
import {
  CELLULAR_METRIC,
  CGN_WAN,
  CUST,
  DEV_IFACE,
  INET,
  MAX_DEVICES,
  RELAY,
  WIFI_IFACE,
  WIFI_METRIC,
  assertDevice,
  assertPrefix,
  defaultDnsRecords,
  devicePlan,
  wifiPlan,
} from './plan.js';
import { LabProcess, type SpawnOptions } from './process.js';
import { inNs, ipBatch, run, commandFailed, type RunOptions, type RunResult } from './run.js';
import { TSX_LOADER, makeCertificate, nodeTsArgv, startInetServices, type TlsMaterial } from './services.js';
import { allNamespaces, buildTopology, defaultRoutes, topologyNames, type TopologyNames } from './topology.js';

export const CLI_PATH = fileURLToPath(new URL('./cli.ts', import.meta.url));

export interface CreateLabOptions {
  /** Number of devices (each with its own carrier NAT). Default 1, at most 250. */
  devices?: number;
  /**
   * Devices (numbers 1..devices) that get a second uplink, like the modem box on Ethernet/Wi-Fi or
   * a phone on Wi-Fi: `wlan0` (100.65.N.2) into their own Wi-Fi NAT router namespace `wifiN`
   * (public 198.19.N.2), which holds the device's default route (metric 100); `wwan0` keeps a
   * default route with metric 600, as NetworkManager leaves it. Default none.
   */
  wifi?: readonly number[];
  /**
   * Tear the lab down on SIGINT / SIGTERM / SIGHUP and exit (130/143/129). Default true; turn it
   * off when the caller shuts down gracefully itself (the 'exit' hook stays in any case).
   */
  handleSignals?: boolean;
  /** Fixed prefix (pp + 4 hex); default: a random unused one. */
  prefix?: string;
  /** Extra DNS A records (name → IPv4) on top of the defaults. */
  dnsRecords?: Record<string, string>;
  /** Bound on waiting for each inet service to listen. Default 15 s. */
  serviceTimeoutMs?: number;
  /** First remove leftovers of labs whose owner process is dead (never a live run's lab). Default true. */
  cleanStale?: boolean;
}

export interface DeviceInfo {
  n: number;
  ns: string;
  cgnNs: string;
  iface: string;
  privateIp: string;
  gateway: string;
  /** Public address at creation / after the last in-process rotation; carrierAddress(n) reads the truth. */
  carrierIp: string;
  carrierGateway: string;
  /** The Wi-Fi uplink, for the devices named in createLab({wifi}). */
  wifi?: WifiInfo;
}

export interface WifiInfo {
  /** The Wi-Fi router's namespace (`<p>-wifiN`). */
  ns: string;
  /** The device's interface toward it (`wlan0`). */
  iface: string;
  /** The device's address on it, and the router's. */
  ip: string;
  gateway: string;
  /** The router's public address (what services in inet see from traffic out of Wi-Fi). */
  publicIp: string;
  publicGateway: string;
  /** Default-route metric of wlan0 (100) and of the cellular wwan0 next to it (600). */
  metric: number;
  cellularMetric: number;
}

export interface InetInfo {
  ns: string;
  servicesIp: string;
  httpUrl: string;
  httpsUrl: string;
  httpPort: number;
  httpsPort: number;
  /** TCP + UDP echo (RFC 862). */
  echoPort: number;
  /** UDP: answers {"ip","port"} of the sender. */
  whoamiPort: number;
  dns: { ip: string; port: number };
  dnsRecords: Record<string, string>;
  tls: TlsMaterial;
}

export interface LabInfo {
  prefix: string;
  namespaces: string[];
  inet: InetInfo;
  relay: { ns: string; ip: string; gateway: string; iface: string };
  cust: { ns: string; ip: string; gateway: string; iface: string };
  devices: DeviceInfo[];
}

export interface ExecOptions extends RunOptions {
  /** Throw PP_ERR_LAB_COMMAND_FAILED on a non-zero exit instead of resolving with the code. */
  check?: boolean;
}

export class Lab implements LabInfo {
  readonly prefix: string;
  readonly namespaces: string[];
  readonly inet: InetInfo;
  readonly relay: LabInfo['relay'];
  readonly cust: LabInfo['cust'];
  readonly devices: DeviceInfo[];
  /** Absolute path of tsx's loader, for `node --import <this>` from any cwd. */
  readonly tsxLoader = TSX_LOADER;
  readonly cliPath = CLI_PATH;
  private readonly procs = new Set<LabProcess>();
  private readonly routes: Map<string, string[]>;
  private tornDown = false;

  constructor(prefix: string, t: TopologyNames, tls: TlsMaterial, records: Record<string, string>) {
    this.prefix = prefix;
    this.namespaces = allNamespaces(t);
    this.routes = defaultRoutes(t);
    this.inet = {
      ns: t.inet,
      servicesIp: INET.servicesIp,
      httpUrl: `http://${INET.servicesIp}/`,
      httpsUrl: `https://echo.test/`,
      httpPort: INET.httpPort,
      httpsPort: INET.httpsPort,
      echoPort: INET.echoPort,
      whoamiPort: INET.whoamiPort,
      dns: { ip: INET.dnsIp, port: INET.dnsPort },
      dnsRecords: records,
      tls,
    };
    this.relay = { ns: t.relay, ip: RELAY.ip, gateway: RELAY.gateway, iface: RELAY.iface };
    this.cust = { ns: t.cust, ip: CUST.ip, gateway: CUST.gateway, iface: CUST.iface };
    this.devices = t.dev.map((ns, i) => {
      const p = devicePlan(i + 1);
      const d: DeviceInfo = {
        n: i + 1,
        ns,
        cgnNs: t.cgn[i]!,
        iface: DEV_IFACE,
        privateIp: p.privateIp,
        gateway: p.cgnLanIp,
        carrierIp: p.firstCarrierIp,
        carrierGateway: p.carrierGateway,
      };
      const w = t.wifi.find((x) => x.n === i + 1);
      if (w) {
        const wp = wifiPlan(w.n);
        d.wifi = {
          ns: w.ns,
          iface: WIFI_IFACE,
          ip: wp.devIp,
          gateway: wp.lanIp,
          publicIp: wp.publicIp,
          publicGateway: wp.publicGateway,
          metric: WIFI_METRIC,
          cellularMetric: CELLULAR_METRIC,
        };
      }
      return d;
    });
  }

  /** Full namespace name for a role ('inet', 'relay', 'cust', 'dev2', 'cgn2') or a full name of this lab. */
  ns(nameOrRole: string): string {
    if (this.namespaces.includes(nameOrRole)) return nameOrRole;
    const full = `${this.prefix}-${nameOrRole}`;
    if (this.namespaces.includes(full)) return full;
    throw labError('PP_ERR_LAB_UNKNOWN_NS', { ns: nameOrRole, prefix: this.prefix });
  }

  device(n: number): DeviceInfo {
    assertDevice(n, this.devices.length);
    return this.devices[n - 1]!;
  }

  /** Run `cmd args` inside a namespace; resolves {stdout, stderr, code} (bounded, default 30 s). */
  async exec(ns: string, cmd: string, args: readonly string[] = [], opts: ExecOptions = {}): Promise<RunResult> {
    this.alive();
    const full = this.ns(ns);
    const [c, a] = inNs(full, cmd, args);
    const r = await run(c, a, opts);
    if (opts.check && r.code !== 0) throw commandFailed(full, cmd, args, r);
    return r;
  }

  /** Start a long-running process inside a namespace; it is killed by pid at teardown. */
  spawn(ns: string, cmd: string, args: readonly string[] = [], opts: SpawnOptions = {}): LabProcess {
    this.alive();
    const p = new LabProcess(this.ns(ns), cmd, args, opts);
    this.procs.add(p);
    return p;
  }

  /** spawn() of a TypeScript entry point with node + tsx (works from any cwd). */
  spawnNode(ns: string, script: string, args: readonly string[] = [], opts: SpawnOptions = {}): LabProcess {
    const [cmd, argv] = nodeTsArgv(script, args);
    return this.spawn(ns, cmd, argv, opts);
  }

  /** Rotate device n's carrier to the next public address of its pool (or `to`), optionally after an outage. */
  async rotateCarrierAddress(n: number, to?: string, opts: { outageMs?: number } = {}): Promise<Rotation> {
    this.alive();
    const d = this.device(n);
    const r = await rotateCarrier(this.prefix, n, to, opts);
    d.carrierIp = r.newIp;
    return r;
  }

  /** Device n's current public (carrier) address, read from its carrier namespace. */
  async carrierAddress(n: number): Promise<string> {
    const d = this.device(n);
    d.carrierIp = await currentCarrierAddress(this.prefix, n);
    return d.carrierIp;
  }

  /** argv of the stateless rotate CLI for device n (for the agent's --rotate-command). */
  rotateCommand(n: number, opts: { outageMs?: number } = {}): string[] {
    this.device(n);
    const outage = opts.outageMs ? [`--outage-ms=${opts.outageMs}`] : [];
    return [process.execPath, '--import', TSX_LOADER, CLI_PATH, 'rotate', ...outage, this.prefix, String(n)];
  }

  rotateCommandLine(n: number, opts: { outageMs?: number } = {}): string {
    return this.rotateCommand(n, opts)
      .map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`))
      .join(' ');
  }

  blockUdp(ns: string, port: number, opts?: BlockOptions): Promise<void> {
    this.alive();
    return blockUdp(this.ns(ns), port, opts);
  }
  unblockUdp(ns: string, port: number): Promise<void> {
    this.alive();
    return unblockUdp(this.ns(ns), port);
  }

  /** Take an interface down (default: the namespace's uplink toward inet; `iface` is required for inet). */
  async setLinkDown(ns: string, iface?: string): Promise<void> {
    this.alive();
    const full = this.ns(ns);
    await ipBatch(full, [`link set ${iface ?? this.uplink(full)} down`]);
  }

  /** Bring an interface up again and restore the namespace's default route(s) through it (dropped with the link). */
  async setLinkUp(ns: string, iface?: string): Promise<void> {
    this.alive();
    const full = this.ns(ns);
    const dev = iface ?? this.uplink(full);
    const routes = (this.routes.get(full) ?? []).filter((r) => r.endsWith(`dev ${dev}`) || r.includes(`dev ${dev} `));
    await ipBatch(full, [`link set ${dev} up`, ...routes]);
  }

  /** Stop every spawned process (SIGTERM, then SIGKILL after `graceMs`), delete every namespace. Idempotent. */
  async teardown(graceMs = 2_000): Promise<void> {
    if (this.tornDown) return;
    await Promise.all([...this.procs].map((p) => p.stop(graceMs)));
    this.teardownSync();
  }

  /** Immediate teardown (SIGKILL), usable from exit hooks. Idempotent. */
  teardownSync(): void {
    if (this.tornDown) return;
    this.tornDown = true;
    for (const p of this.procs) p.kill('SIGKILL');
    cleanupLabSync(this.prefix, this.namespaces);
    unregisterLab(this);
  }

  get isTornDown(): boolean {
    return this.tornDown;
  }

  /** Plain data (names and addresses), e.g. to print or hand to a child process. */
  info(): LabInfo {
    return JSON.parse(
      JSON.stringify({
        prefix: this.prefix,
        namespaces: this.namespaces,
        inet: this.inet,
        relay: this.relay,
        cust: this.cust,
        devices: this.devices,
      }),
    ) as LabInfo;
  }

  toJSON(): LabInfo {
    return this.info();
  }

  /** @internal */
  adopt(p: LabProcess): void {
    this.procs.add(p);
  }

  private uplink(full: string): string {
    if (full === this.relay.ns) return RELAY.iface;
    if (full === this.cust.ns) return CUST.iface;
    if (this.devices.some((d) => d.ns === full)) return DEV_IFACE;
    if (this.devices.some((d) => d.cgnNs === full || d.wifi?.ns === full)) return CGN_WAN;
    throw labError('PP_ERR_LAB_BAD_ARGS', { reason: `${full} has several links; name the interface` });
  }

  private alive() {
    if (this.tornDown) throw labError('PP_ERR_LAB_TORN_DOWN', { prefix: this.prefix });
  }
}

function claimRandomPrefix(): string {
  for (let i = 0; i < 50; i++) {
    const p = `pp${randomBytes(2).toString('hex')}`;
    if (claimPrefix(p)) return p;
  }
  throw labError('PP_ERR_LAB_PREFIX_IN_USE', { prefix: 'pp????' });
}

/** Build a lab: namespaces, links, carrier NATs, DNS, and the inet services (listening on return). Needs root. */
export async function createLab(opts: CreateLabOptions = {}): Promise<Lab> {
  const uid = process.getuid?.() ?? -1;
  if (uid !== 0) throw labError('PP_ERR_LAB_NOT_ROOT', { uid });
  const count = opts.devices ?? 1;
  assertDevice(count, MAX_DEVICES);
  const wifi = opts.wifi ?? [];
  for (const n of wifi) assertDevice(n, count);
  if (new Set(wifi).size !== wifi.length)
    throw labError('PP_ERR_LAB_BAD_ARGS', { reason: `wifi lists a device twice: ${wifi.join(', ')}` });
  if (opts.cleanStale ?? true) {
    const removed = cleanupStale();
    if (removed.length > 0) console.error(`lab: removed leftovers of dead lab(s) ${removed.join(' ')}`);
  }
  let prefix: string;
  if (opts.prefix !== undefined) {
    prefix = opts.prefix;
    assertPrefix(prefix);
    if (!claimPrefix(prefix)) throw labError('PP_ERR_LAB_PREFIX_IN_USE', { prefix });
  } else {
    prefix = claimRandomPrefix();
  }

  const t = topologyNames(prefix, count, wifi);
  const records = { ...defaultDnsRecords(), ...(opts.dnsRecords ?? {}) };
  // Registered before anything exists, so a failure or a signal half-way still cleans up.
  let lab: Lab | null = null;
  const partial = { teardownSync: () => (lab ? lab.teardownSync() : cleanupLabSync(prefix, allNamespaces(t))) };
  const signals = opts.handleSignals ?? true;
  registerLab(partial, signals);
  try {
    const [tls] = await Promise.all([makeCertificate(labDir(prefix), Object.keys(records)), buildTopology(t)]);
    lab = new Lab(prefix, t, tls, records);
    const services = await startInetServices(t.inet, tls, records, opts.serviceTimeoutMs);
    for (const s of services) lab.adopt(s);
    registerLab(lab, signals);
    unregisterLab(partial);
    return lab;
  } catch (e) {
    partial.teardownSync();
    unregisterLab(partial);
    throw e;
  }
}
