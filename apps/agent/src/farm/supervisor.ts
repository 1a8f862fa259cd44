// `pocketproxy-agent farm`: one process runs every phone and modem attached to this host, each as
// its own device.
//
//   every --scan-interval s:  adb devices -l  +  mmcli -L / -m N        (both bounded; either may be missing)
//   for each usable device:   its interface (phone: USB path -> sysfs; modem: connected bearer)
//                             phone: tethering on if there is none, Wi-Fi off
//                             enroll once (enroll.ts) -> devices/<id>/state.json
//                             egress route (routes.ts): its address leaves by its interface
//                             createAgent(): TUN ppf<N>, reply table 5300+N, tunnel + proxies +
//                             public-address check bound to its interface, its own rotation
//                             driver (adb / ModemManager) and metrics
//   gone from adb / mmcli, or its link down  ->  its agent stops (the relay declares it dead)
//   back with the same serial / IMEI          ->  started again from its saved state (same id, ports)
//
// Every device is a small state machine stepped by the scan; a device waiting for something
// (tethering, DHCP, the user's "allow USB debugging") is reported with the reason and never waited
// for, and one device's failure never stops another's. What an operator needs to see is in the log
// (one line per status change) and in <state-dir>/farm-status.json (every device, every scan).
//
// The agents run on this event loop (inProcessTunnel), not one worker thread each: a worker is a
// V8 isolate of its own (~10 MB+ before it moves a packet), and a phone's cellular link carries a
// few tens of Mbit/s, a small fraction of what one loop moves (docs/benchmarks.md "Farm host").
// With `--threads N` they are spread over N worker threads instead (threads.ts): a few isolates for
// the host's cores, not one per device, for hosts whose customers' connections outgrow one thread.
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { createAgent, type Agent, type AgentDeps, type RunConfig } from '../agent.js';
import type { RemoteAgents } from './threads.js';
import { createApiClient, type ApiClient } from '../api-client.js';
import type { Metrics } from '../ops/metrics.js';
import { realExec, type Exec, type RotationDriver } from '../ops/rotation.js';
import type { AgentState } from '../state.js';
import type { StartTunnel } from '../tunnel/host.js';
import { trustedApiClient } from '../trust.js';
import {
  deviceStateDir,
  enrollDevice,
  loadFarmIdentity,
  savedState,
  writeJsonAtomic,
  type FarmIdentity,
} from './enroll.js';
import { DEFAULT_SYSFS_ROOT, linkState, phoneInterfaces, usbPathOf, type LinkState } from './interfaces.js';
import {
  EGRESS_TABLE_BASE,
  MAX_SLOTS,
  REPLY_TABLE_BASE,
  defaultGateway,
  installEgressRoute,
  removeEgressRoute,
  removeStaleRules,
} from './routes.js';

export const STATUS_FILE = 'farm-status.json';

// What the supervisor needs of the adb and mmcli modules (farm/adb.ts, farm/mmcli.ts; the contract).
export interface FarmAdbDevice {
  serial: string;
  state: string;
  usb?: string;
  model?: string;
}
export interface FarmAdb {
  devices(): Promise<FarmAdbDevice[]>;
  ensureTethering(serial: string): Promise<{ ok: true } | { ok: false; reason: string }>;
  wifiOff(serial: string): Promise<void>;
}
export interface FarmModemInfo {
  id: string;
  imei: string | null;
  model: string | null;
  bearers: { id: string; connected: boolean; interface: string | null }[];
}
export interface FarmMmcli {
  list(): Promise<string[]>;
  modem(id: string): Promise<FarmModemInfo>;
}
export interface FarmDrivers {
  phone(serial: string): RotationDriver;
  /** `id` is read at each call: a modem's index changes when it is plugged again. */
  modem(id: () => string): RotationDriver;
  phoneMetrics(serial: string): Promise<Metrics>;
  modemMetrics(id: string): Promise<Metrics>;
}

export interface FarmConfig {
  stateDir: string;
  /** Needed to enroll (devices with a saved state use their own). */
  server?: string;
  enrollToken?: string;
  fingerprint?: string;
  insecureHttp: boolean;
  sysfsRoot?: string;
  scanIntervalMs?: number;
  name?: string;
  airplaneSeconds?: number;
  ipEchoUrl?: string;
  /** TUN / UDP offloads of each tunnel (default off: a phone's link is slow and the offload buffers cost memory per device). */
  offload?: boolean;
  /** Each tunnel's native seal path (default on; run.ts: off for POCKETPROXY_NATIVE_SEAL=0). */
  nativeSeal?: boolean;
  /** Each device's established tunnels through the native relay (default on; run.ts: off for POCKETPROXY_SPLICE=0). */
  splice?: boolean;
  /** Each device's HTTP and SOCKS5 listeners accepted natively (default on; run.ts: off for POCKETPROXY_NATIVE_FRONT=0). */
  front?: boolean;
  /** Install the per-device source rule (routes.ts); off only in unit tests. Default true. */
  routes?: boolean;
  /** Extra agent settings applied to every device (timeouts, limits, tunnel timers in tests). */
  agent?: Partial<RunConfig>;
}

export interface FarmDeps {
  logger: Logger;
  adb?: FarmAdb;
  mmcli?: FarmMmcli;
  drivers: FarmDrivers;
  startTunnel: StartTunnel;
  /** Runs `ip` (routes.ts). */
  exec?: Exec;
  /** The API client of an enrolled device (default: trustedApiClient, the one `run` uses). */
  apiFor?: (state: AgentState) => ApiClient;
  /** The client that enrolls (default: createApiClient for --server). */
  enrollApi?: ApiClient;
  createAgent?: (cfg: RunConfig, deps: AgentDeps) => Agent;
  /**
   * Runs each device's agent on a worker thread instead of this loop (`farm --threads N`, threads.ts).
   * The worker builds the agent's API client, driver, metrics and tunnel itself: apiFor, createAgent,
   * startTunnel and the drivers are then not used for agents.
   */
  remote?: RemoteAgents;
  /** An interface's state (default: interfaces.ts linkState under the sysfs root). */
  linkState?: (ifname: string) => Promise<LinkState>;
  now?: () => number;
}

export type DeviceStatusName =
  /** adb: the phone waits for "Allow USB debugging" on its screen. */
  | 'unauthorized'
  /** adb: offline / no permissions / another state: not usable now. */
  | 'adb-offline'
  | 'no-permissions'
  | 'adb-state'
  /** No interface yet (tethering, DHCP, a bearer), or one without an address / route. */
  | 'waiting-interface'
  /** Tethering could not be switched on; the reason says what to do on the phone. */
  | 'tethering-off'
  | 'link-down'
  | 'not-enrolled'
  | 'enrolling'
  | 'enroll-failed'
  | 'starting'
  | 'running'
  | 'failed'
  /** Unplugged (no longer listed by adb / mmcli). */
  | 'gone';

export interface DeviceStatus {
  kind: 'phone' | 'modem';
  hardware_id: string;
  model: string | null;
  status: DeviceStatusName;
  reason: string | null;
  since: string;
  interface: string | null;
  address: string | null;
  device_id: string | null;
  tun: string | null;
  /** The worker thread its agent runs on (`--threads` > 1, counted from 0); null on the farm's own loop. */
  thread: number | null;
}

/** A device's agent as the supervisor drives it: on this loop (an Agent) or on a worker thread (threads.ts). */
type FarmAgent = Pick<Agent, 'start' | 'stop'> & { readonly thread?: number; modemChanged?(modemId: string): void };

interface Rec {
  key: string;
  kind: 'phone' | 'modem';
  hardwareId: string;
  model?: string;
  usb?: string;
  modemId?: string;
  /** The interface of the modem's connected bearer at the last scan. */
  modemBearer?: string;
  dir: string;
  status: DeviceStatusName;
  reason?: string;
  since: number;
  ifname?: string;
  address?: string;
  deviceId?: string;
  slot?: number;
  agent?: FarmAgent;
  /** A step (interface lookup, enrollment, start) is under way: the next scan leaves it alone. */
  busy: boolean;
  /** Tethering was asked for at this time (asked again at most once a minute). */
  tetherAt?: number;
  tetherFailed?: string;
  wifiOff?: boolean;
  /** No new attempt (enroll, start) before this time. */
  retryAt?: number;
  backoffMs?: number;
}

const TETHER_RETRY_MS = 60_000;
const LIST_TIMEOUT_MS = 15_000;

const ADB_STATES: Record<string, { status: DeviceStatusName; reason: string }> = {
  unauthorized: {
    status: 'unauthorized',
    reason: 'USB debugging not authorised: unlock the phone and accept "Allow USB debugging" (tick "Always allow")',
  },
  offline: { status: 'adb-offline', reason: 'adb says offline: replug the cable or restart adb (adb kill-server)' },
  'no permissions': {
    status: 'no-permissions',
    reason: 'no permission on the USB device: add a udev rule for it (docs/farm.md) or run as root',
  },
};

export interface Farm {
  /** One scan now (also what the timer runs); resolves when the listing was handled (devices start in the background). */
  scan(): Promise<void>;
  start(): Promise<void>;
  stop(): Promise<void>;
  status(): DeviceStatus[];
  /** Resolves when every device step and agent start under way has finished (tests, the bench). */
  settled(): Promise<void>;
  readonly identity: FarmIdentity | undefined;
}

export function createFarm(cfg: FarmConfig, deps: FarmDeps): Farm {
  const log = deps.logger;
  const exec = deps.exec ?? realExec;
  const now = deps.now ?? Date.now;
  const sysfs = cfg.sysfsRoot ?? DEFAULT_SYSFS_ROOT;
  const routes = cfg.routes ?? true;
  const make = deps.createAgent ?? createAgent;
  const link = deps.linkState ?? ((ifname: string) => linkState(ifname, sysfs));
  const recs = new Map<string, Rec>();
  const slots = new Set<number>();
  let identity: FarmIdentity | undefined;
  // One load (or creation) of farm.json however many devices enroll at once.
  let identityLoad: Promise<FarmIdentity> | undefined;
  const loadIdentity = async () => {
    identityLoad ??= loadFarmIdentity(cfg.stateDir, cfg.name);
    identity = await identityLoad.catch((e) => {
      identityLoad = undefined;
      throw e;
    });
    return identity;
  };
  let timer: NodeJS.Timeout | undefined;
  let scanning: Promise<void> | undefined;
  let stopped = false;
  const listErrors = { adb: '', mmcli: '' };
  const inflight = new Set<Promise<unknown>>();
  const track = (p: Promise<unknown>) => {
    inflight.add(p);
    void p.finally(() => inflight.delete(p));
  };

  const setStatus = (r: Rec, status: DeviceStatusName, reason?: string) => {
    if (r.status === status && r.reason === reason) return;
    r.status = status;
    r.reason = reason;
    r.since = now();
    const fields = { device: r.key, deviceId: r.deviceId, interface: r.ifname, status, reason };
    if (status === 'running' || status === 'starting' || status === 'enrolling') log.info(fields, 'farm device');
    else log.warn(fields, 'farm device');
  };

  /** A listing bounded in time; undefined when it failed (logged when the failure changes). */
  async function listed<T>(what: 'adb' | 'mmcli', f: () => Promise<T>): Promise<T | undefined> {
    let t: NodeJS.Timeout | undefined;
    try {
      const v = await Promise.race([
        f(),
        new Promise<never>((_, rej) => {
          t = setTimeout(() => rej(new Error(`no answer in ${LIST_TIMEOUT_MS / 1000} s`)), LIST_TIMEOUT_MS);
        }),
      ]);
      if (listErrors[what]) log.info({ what }, 'listing devices works again');
      listErrors[what] = '';
      return v;
    } catch (e) {
      const msg = (e as Error).message;
      const missing = /ENOENT|not found/i.test(msg);
      const key = missing ? 'missing' : msg;
      if (listErrors[what] !== key) {
        if (missing)
          log.warn(
            { what },
            what === 'adb'
              ? 'adb not found (install adb or pass --adb PATH): no phones are looked for'
              : 'mmcli not found (install modemmanager or pass --mmcli PATH): no modems are looked for',
          );
        else log.warn({ what, err: msg }, 'listing devices failed; devices already running keep running');
      }
      listErrors[what] = key;
      return undefined;
    } finally {
      clearTimeout(t);
    }
  }

  function record(kind: 'phone' | 'modem', hardwareId: string): Rec {
    const key = `${kind}:${hardwareId}`;
    let r = recs.get(key);
    if (!r) {
      r = {
        key,
        kind,
        hardwareId,
        dir: deviceStateDir(cfg.stateDir, kind, hardwareId),
        status: 'waiting-interface',
        since: now(),
        busy: false,
      };
      recs.set(key, r);
    }
    return r;
  }

  async function doScan(): Promise<void> {
    const [phones, modems] = await Promise.all([
      deps.adb ? listed('adb', () => deps.adb!.devices()) : undefined,
      deps.mmcli ? listed('mmcli', () => modemList(deps.mmcli!, log)) : undefined,
    ]);
    if (stopped) return;
    const seen = new Set<string>();
    for (const p of phones ?? []) {
      if (typeof p.serial !== 'string' || p.serial.length === 0 || p.serial.length > 128) continue;
      const r = record('phone', p.serial);
      seen.add(r.key);
      r.usb = usbPathOf(p.usb);
      if (p.model) r.model = p.model;
      if (p.state !== 'device') {
        const s = ADB_STATES[p.state] ?? { status: 'adb-state' as const, reason: `adb state "${p.state}"` };
        if (r.agent) await stopDevice(r, s.status, s.reason);
        else setStatus(r, s.status, s.reason);
        continue;
      }
      track(step(r));
    }
    for (const m of modems ?? []) {
      if (!m.imei) {
        log.debug({ modem: m.id }, 'modem without an IMEI: skipped (nothing to recognise it by after a replug)');
        continue;
      }
      const r = record('modem', m.imei);
      seen.add(r.key);
      if (r.modemId !== undefined && r.modemId !== m.id) r.agent?.modemChanged?.(m.id);
      r.modemId = m.id;
      if (m.model) r.model = m.model;
      r.modemBearer = m.bearers.find((b) => b.connected && b.interface)?.interface ?? undefined;
      track(step(r));
    }
    for (const r of recs.values()) {
      if (seen.has(r.key) || r.status === 'gone') continue;
      // A listing that failed says nothing about its devices: they keep running.
      if ((r.kind === 'phone' && phones === undefined) || (r.kind === 'modem' && modems === undefined)) continue;
      await stopDevice(r, 'gone', r.kind === 'phone' ? 'not listed by adb (unplugged?)' : 'not listed by mmcli');
      r.tetherAt = undefined;
      r.tetherFailed = undefined;
      r.wifiOff = undefined;
      r.retryAt = undefined;
    }
    await writeStatus();
  }

  /** One step of a device toward running (or, when it runs, a check of its link). */
  async function step(r: Rec): Promise<void> {
    if (r.busy || stopped) return;
    r.busy = true;
    try {
      if (r.agent) {
        const l = await link(r.ifname!);
        if (!l.exists || !l.up) return await stopDevice(r, 'link-down', `${r.ifname} is ${l.operstate ?? 'gone'}`);
        if (l.ipv4 !== r.address) {
          log.info({ device: r.key, was: r.address, now: l.ipv4 }, 'interface address changed; restarting the device');
          await stopDevice(r, 'waiting-interface', 'interface address changed');
        } else return;
      }
      if (r.retryAt !== undefined && now() < r.retryAt) return;

      // 1. Its interface.
      let ifname: string | undefined;
      if (r.kind === 'phone') {
        if (!r.usb)
          return setStatus(r, 'waiting-interface', 'adb shows no usb: path for it (adb over TCP is not a farm phone)');
        ifname = (await phoneInterfaces(r.usb, sysfs))[0];
        if (!ifname) {
          if (r.tetherAt === undefined || now() - r.tetherAt >= TETHER_RETRY_MS) {
            r.tetherAt = now();
            const t = await deps.adb!.ensureTethering(r.hardwareId).catch((e: Error) => ({
              ok: false as const,
              reason: e.message,
            }));
            r.tetherFailed = t.ok ? undefined : `USB tethering could not be switched on: ${t.reason}`;
          }
          if (r.tetherFailed) return setStatus(r, 'tethering-off', r.tetherFailed);
          return setStatus(r, 'waiting-interface', `USB tethering on; no network interface for USB ${r.usb} yet`);
        }
      } else {
        ifname = r.modemBearer;
        if (!ifname)
          return setStatus(
            r,
            'waiting-interface',
            'no connected bearer: connect it (mmcli -m <N> --simple-connect="apn=...", or NetworkManager)',
          );
      }
      r.ifname = ifname;
      const l = await link(ifname);
      if (!l.exists || !l.up) return setStatus(r, 'link-down', `${ifname} is ${l.operstate ?? 'gone'}`);
      if (!l.ipv4) return setStatus(r, 'waiting-interface', `${ifname} has no IPv4 address yet (DHCP?)`);
      // Older Androids hand every tethered host an address in 192.168.42.0/24: two phones may give
      // this host the same one, and one source rule cannot tell them apart.
      const twin = [...recs.values()].find((o) => o !== r && o.agent && o.address === l.ipv4);
      if (twin)
        return setStatus(
          r,
          'waiting-interface',
          `${ifname} has the address ${l.ipv4} that ${twin.ifname} (${twin.key}) already has: renew its DHCP lease`,
        );
      const gw = routes ? await defaultGateway(exec, ifname).catch(() => undefined) : null;
      if (gw === undefined)
        return setStatus(r, 'waiting-interface', `no default route through ${ifname} in the main table (DHCP?)`);

      // 2. Wi-Fi off, so what leaves by the phone leaves by cellular.
      if (r.kind === 'phone' && !r.wifiOff) {
        r.wifiOff = true;
        await deps
          .adb!.wifiOff(r.hardwareId)
          .catch((e: Error) =>
            log.warn({ device: r.key, err: e.message }, 'switching Wi-Fi off failed; traffic may leave by Wi-Fi'),
          );
      }

      // 3. Its identity.
      let state: AgentState | undefined;
      try {
        state = await savedState(r.dir);
      } catch (e) {
        return fail(r, 'failed', `its state file is damaged: ${(e as Error).message}`);
      }
      if (!state) {
        if (!cfg.enrollToken || !cfg.server)
          return setStatus(r, 'not-enrolled', 'no saved state and no --enroll token to enroll it with');
        setStatus(r, 'enrolling');
        try {
          const id = await loadIdentity();
          state = await enrollDevice({
            server: cfg.server,
            token: cfg.enrollToken,
            fingerprint: cfg.fingerprint,
            insecureHttp: cfg.insecureHttp,
            identity: id,
            device: { hardware_id: r.hardwareId, kind: r.kind, ...(r.model ? { model: r.model } : {}) },
            dir: r.dir,
            api: deps.enrollApi ?? createApiClient({ server: cfg.server }),
          });
          log.info({ device: r.key, deviceId: state.device_id }, 'enrolled');
        } catch (e) {
          const msg = (e as Error).message;
          const lost = /ALREADY_ENROLLED|HTTP 409/.test(msg);
          // Many devices enrolling at once meet the API's per-address limit: wait what it says (spread a little).
          const retryS = /HTTP 429\b.*retry in (\d+) s/.exec(msg)?.[1];
          if (retryS && !lost)
            return fail(r, 'enroll-failed', msg, Math.min(600, Number(retryS)) * 1000 + Math.random() * 2_000);
          return fail(
            r,
            'enroll-failed',
            lost
              ? 'the server already has this device for this farm host, and its saved state is gone: ' +
                  'delete the device in the dashboard to enroll it again'
              : msg,
            lost ? 600_000 : undefined,
          );
        }
      }
      r.deviceId = state.device_id;

      // 4. Its agent.
      const slot = freeSlot();
      if (slot === undefined) return fail(r, 'failed', `more than ${MAX_SLOTS} devices on one farm host`);
      r.slot = slot;
      slots.add(slot);
      r.address = l.ipv4;
      if (routes) {
        try {
          await installEgressRoute(exec, {
            ifname,
            address: l.ipv4,
            gateway: gw ?? null,
            table: EGRESS_TABLE_BASE + slot,
          });
        } catch (e) {
          releaseSlot(r);
          return fail(r, 'failed', `installing its egress route failed: ${(e as Error).message}`);
        }
      }
      let agent: FarmAgent;
      try {
        const agentCfg: RunConfig = {
          airplaneSeconds: cfg.airplaneSeconds ?? 5,
          allowPrivateDestinations: false,
          closeOnRotate: true,
          ...cfg.agent,
          stateDir: r.dir,
          egressInterface: ifname,
          tunnelInterface: `ppf${slot}`,
          replyTable: REPLY_TABLE_BASE + slot,
          tunnelViaEgress: true,
          // The reboot command would reboot this host, not the phone.
          allowReboot: false,
          offload: cfg.offload ?? false,
          nativeSeal: cfg.nativeSeal,
          splice: cfg.splice,
          front: cfg.front,
          ...(cfg.ipEchoUrl ? { ipEchoUrl: cfg.ipEchoUrl } : {}),
        };
        const bindings = { device: r.key, deviceId: state.device_id };
        agent = deps.remote
          ? deps.remote.create({
              cfg: agentCfg,
              state,
              kind: r.kind,
              hardwareId: r.hardwareId,
              ...(r.modemId !== undefined ? { modemId: r.modemId } : {}),
              bindings,
            })
          : make(agentCfg, {
              logger: log.child(bindings),
              api: (deps.apiFor ?? ((s) => trustedApiClient(s, { insecureHttp: cfg.insecureHttp, logger: log })))(
                state,
              ),
              startTunnel: deps.startTunnel,
              driver: r.kind === 'phone' ? deps.drivers.phone(r.hardwareId) : deps.drivers.modem(() => r.modemId!),
              metrics: () =>
                r.kind === 'phone' ? deps.drivers.phoneMetrics(r.hardwareId) : deps.drivers.modemMetrics(r.modemId!),
            });
      } catch (e) {
        await cleanup(r);
        return fail(r, 'failed', (e as Error).message);
      }
      r.agent = agent;
      setStatus(r, 'starting');
      // Not awaited: the agent may wait for its relay; the device stays stoppable meanwhile.
      const starting = agent.start().then(
        () => {
          if (r.agent !== agent) return;
          r.backoffMs = undefined;
          setStatus(r, 'running');
          void writeStatus();
        },
        async (e: Error) => {
          if (r.agent !== agent) return;
          r.agent = undefined;
          await agent.stop().catch(() => {});
          await cleanup(r);
          fail(r, 'failed', `its agent did not start: ${e.message}`);
        },
      );
      track(starting);
    } catch (e) {
      fail(r, 'failed', (e as Error).message);
    } finally {
      r.busy = false;
    }
  }

  /** A failure: reported, and the next attempt after a growing delay (5 s .. 5 min), or `retryMs`. */
  function fail(r: Rec, status: DeviceStatusName, reason: string, retryMs?: number) {
    r.backoffMs = Math.min(300_000, (r.backoffMs ?? 2_500) * 2);
    r.retryAt = now() + (retryMs ?? r.backoffMs);
    setStatus(r, status, reason);
  }

  function freeSlot(): number | undefined {
    for (let i = 0; i < MAX_SLOTS; i++) if (!slots.has(i)) return i;
    return undefined;
  }
  function releaseSlot(r: Rec) {
    if (r.slot !== undefined) slots.delete(r.slot);
    r.slot = undefined;
  }
  async function cleanup(r: Rec) {
    if (r.slot !== undefined && routes) await removeEgressRoute(exec, EGRESS_TABLE_BASE + r.slot).catch(() => {});
    releaseSlot(r);
  }

  async function stopDevice(r: Rec, status: DeviceStatusName, reason?: string): Promise<void> {
    const agent = r.agent;
    r.agent = undefined;
    if (agent) {
      await agent.stop().catch((e: Error) => log.warn({ device: r.key, err: e.message }, 'stopping the agent failed'));
      await cleanup(r);
    }
    r.address = undefined;
    setStatus(r, status, reason);
  }

  function status(): DeviceStatus[] {
    return [...recs.values()]
      .sort((a, b) => a.key.localeCompare(b.key))
      .map((r) => ({
        kind: r.kind,
        hardware_id: r.hardwareId,
        model: r.model ?? null,
        status: r.status,
        reason: r.reason ?? null,
        since: new Date(r.since).toISOString(),
        interface: r.ifname ?? null,
        address: r.address ?? null,
        device_id: r.deviceId ?? null,
        tun: r.agent && r.slot !== undefined ? `ppf${r.slot}` : null,
        thread: r.agent?.thread ?? null,
      }));
  }

  async function writeStatus(): Promise<void> {
    const body = {
      host: identity?.name ?? cfg.name ?? null,
      updated_at: new Date(now()).toISOString(),
      devices: status(),
    };
    await writeJsonAtomic(join(cfg.stateDir, STATUS_FILE), body).catch((e: Error) =>
      log.debug({ err: e.message }, 'writing the status file failed'),
    );
  }

  const scan = () => {
    scanning ??= doScan()
      .catch((e: Error) => log.error({ err: e }, 'scan failed'))
      .finally(() => (scanning = undefined));
    return scanning;
  };

  return {
    scan,
    status,
    async settled() {
      while (inflight.size > 0) await Promise.allSettled([...inflight]);
    },
    get identity() {
      return identity;
    },
    async start() {
      await fs.mkdir(cfg.stateDir, { recursive: true, mode: 0o700 });
      await loadIdentity();
      if (routes) {
        const n = await removeStaleRules(exec).catch((e: Error) => {
          log.warn({ err: e.message }, 'looking for rules a previous run left failed');
          return 0;
        });
        if (n) log.info({ rules: n }, 'removed the rules a previous run left behind');
      }
      log.info(
        { host: identity?.name, stateDir: cfg.stateDir, adb: Boolean(deps.adb), mmcli: Boolean(deps.mmcli) },
        'farm starting',
      );
      await scan();
      timer = setInterval(() => void scan(), cfg.scanIntervalMs ?? 5_000);
    },
    async stop() {
      stopped = true;
      if (timer) clearInterval(timer);
      await scanning;
      await Promise.all([...recs.values()].filter((r) => r.agent).map((r) => stopDevice(r, 'gone', 'farm stopped')));
      await writeStatus();
    },
  };
}

/** Every modem ModemManager lists, with its details (one failing modem is left out, not the list). */
async function modemList(mm: FarmMmcli, log: Logger): Promise<FarmModemInfo[]> {
  const ids = await mm.list();
  const out = await Promise.all(
    ids.map((id) =>
      mm.modem(id).catch((e: Error) => {
        log.warn({ modem: id, err: e.message }, 'reading a modem failed');
        return undefined;
      }),
    ),
  );
  return out.filter((m): m is FarmModemInfo => m !== undefined);
}
