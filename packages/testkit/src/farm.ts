// A farm host in the lab: one namespace (a device namespace, `dev<host>`, whose own wwan0 is the
// host's uplink to the API) with many "phones" and "modems", each a veth into a carrier NAT
// namespace (`cgn<carrier>`): several phones may share a carrier (the bench's 50), or each have its
// own (the lab test: its exit address is its own, and its rotation moves only it).
//
//   farm host (devH) ── wwan0 ── cgnH ── inet           the host's own traffic (API, relay)
//         ├── usb0 (100.(80+c).k.2) ── ph<k> (cgnC) ── inet   phone k: RNDIS-like tethering interface
//         └── wwan1 ...                                        modem: its bearer's interface
//
// The phones are driven by the fake adb (apps/agent/test/fakes/adb): its devices.json lists them,
// its airplane-off / data-on hooks rotate their carrier's address; the modems by the fake mmcli
// (modems.json, reconnect hook). A sysfs tree of links (class/net/usbK/device -> .../1-1.K:1.0) ties
// each phone's USB path to its interface, as the kernel's does. Each interface has a default route
// in the main table at a high metric, as NetworkManager leaves a tethered phone's.
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Lab } from './lab.js';
import type { LabProcess, SpawnOptions } from './process.js';
import { nsName } from './plan.js';
import { ipBatch } from './run.js';
import { AGENT_BIN, REPO_ROOT, type LabRelay } from './system.js';

export interface FarmPhoneSpec {
  /** The carrier (lab device number) whose NAT this phone's traffic leaves by. */
  carrier: number;
  serial?: string;
  model?: string;
  profile?: 'android-8' | 'android-10' | 'android-12' | 'android-14';
  /** Whether its airplane-off / data-on hook rotates the carrier (default true; off when carriers are shared). */
  rotates?: boolean;
  /**
   * USB tethering on at start (default true). Off: no interface in sysfs and the link down until the
   * phone is told to tether (the fake adb's tether-on hook makes the link and brings it up), as a
   * real phone's RNDIS interface appears only then.
   */
  tethering?: boolean;
}
export interface FarmModemSpec {
  carrier: number;
  imei?: string;
  model?: string;
}

export interface FarmPhone {
  serial: string;
  usb: string;
  iface: string;
  ip: string;
  gateway: string;
  carrier: number;
  entry: Record<string, unknown>;
}
export interface FarmModem {
  imei: string;
  iface: string;
  ip: string;
  gateway: string;
  carrier: number;
  entry: Record<string, unknown>;
}

export interface FarmHost {
  /** Lab role of the host namespace ('dev1'). */
  role: string;
  ns: string;
  dir: string;
  adbDir: string;
  mmcliDir: string;
  sysfsRoot: string;
  phones: FarmPhone[];
  modems: FarmModem[];
  /** FAKE_ADB_DIR and FAKE_MMCLI_DIR for the farm process. */
  env: Record<string, string>;
  unplug(serial: string): Promise<void>;
  plug(serial: string): Promise<void>;
  /**
   * From now on the modem's reconnect hook also renumbers its interface (.2 <-> .3 of its /24), as a
   * real bearer (QMI / MBIM raw IP) comes back from a reconnect with a new address of its own, besides
   * its carrier's new public one. Returns the two addresses it alternates between.
   */
  renumberOnReconnect(imei: string): string[];
  /** Rewrites devices.json / modems.json from what is plugged now. */
  writeLists(): void;
  /**
   * Starts `pocketproxy-agent farm` (the bundle) in this host's namespace against `relay`'s API: the lab's
   * fake adb and mmcli, its sysfs tree, a scan every second, then `extra`.
   */
  startFarm(o: {
    relay: LabRelay;
    token: string;
    fingerprint: string;
    stateDir: string;
    extra?: readonly string[];
    echo?: SpawnOptions['echo'];
  }): LabProcess;
  cleanup(): void;
}

const METRIC_BASE = 1000;

/** One device's line of a farm's `<state-dir>/farm-status.json` (apps/agent farm/supervisor.ts DeviceStatus). */
export interface FarmStatusDevice {
  kind: 'phone' | 'modem';
  hardware_id: string;
  status: string;
  reason: string | null;
  device_id: string | null;
  tun: string | null;
  thread: number | null;
}

/** The devices a farm's status file lists now; none while the file is not there yet (or half written). */
export function farmStatus(stateDir: string): FarmStatusDevice[] {
  try {
    return JSON.parse(readFileSync(join(stateDir, 'farm-status.json'), 'utf8')).devices;
  } catch {
    return [];
  }
}

/**
 * Builds the farm host's phones and modems in `lab` (created with at least max(host, carriers)
 * devices). `rotateArgv(n)` is the argv that rotates carrier n (lab.rotateCommand).
 */
export async function buildFarmHost(
  lab: Lab,
  opts: { host?: number; phones: FarmPhoneSpec[]; modems?: FarmModemSpec[]; dir?: string },
): Promise<FarmHost> {
  const host = opts.host ?? 1;
  const role = `dev${host}`;
  const ns = lab.ns(role);
  const dir = opts.dir ?? mkdtempSync(join(tmpdir(), 'pp-farmlab-'));
  chmodSync(dir, 0o755);
  const adbDir = join(dir, 'adb');
  const mmcliDir = join(dir, 'mmcli');
  const sysfsRoot = join(dir, 'sys');
  for (const d of [adbDir, mmcliDir, join(adbDir, 'hooks'), join(mmcliDir, 'hooks'), join(sysfsRoot, 'class', 'net')])
    mkdirSync(d, { recursive: true });

  const perCarrier = new Map<number, number>();
  const link = (carrier: number) => {
    const k = (perCarrier.get(carrier) ?? 0) + 1;
    perCarrier.set(carrier, k);
    if (k > 250) throw new Error(`more than 250 farm links on carrier ${carrier}`);
    const subnet = `100.${80 + carrier}.${k}`;
    return { k, ip: `${subnet}.2`, gateway: `${subnet}.1`, cgnIface: `ph${k}` };
  };
  const rotateLine = (carrier: number) =>
    `${lab
      .rotateCommand(carrier)
      .map((a) => `'${a.replace(/'/g, `'\\''`)}'`)
      .join(' ')} >/dev/null 2>&1\n`;
  const rotateHook = (carrier: number) =>
    `#!/bin/sh\n# lab: the phone's radio came back: its carrier hands out a new address\nexec ${rotateLine(carrier)}`;
  const hook = (base: string, id: string, event: string, body: string) => {
    const d = join(base, 'hooks', id);
    mkdirSync(d, { recursive: true });
    writeFileSync(join(d, event), body, { mode: 0o755 });
    chmodSync(join(d, event), 0o755);
  };

  const rootLinks: string[] = [];
  const hostCmds: string[] = [];
  const cgnCmds = new Map<number, string[]>();
  const cgn = (c: number) => {
    const l = cgnCmds.get(c) ?? [];
    cgnCmds.set(c, l);
    return l;
  };
  const modemRoute = new Map<string, string>();
  const phones: FarmPhone[] = opts.phones.map((p, i) => {
    const l = link(p.carrier);
    const iface = `usb${i}`;
    const serial = p.serial ?? `LAB${String(i).padStart(4, '0')}PHONE`;
    const usb = `1-1.${i + 1}`;
    rootLinks.push(
      `link add ${iface} netns ${ns} type veth peer name ${l.cgnIface} netns ${nsName(lab.prefix, `cgn${p.carrier}`)}`,
    );
    cgn(p.carrier).push(`addr add ${l.gateway}/24 dev ${l.cgnIface}`, `link set ${l.cgnIface} up`);
    const tethering = p.tethering ?? true;
    const route = `route replace default via ${l.gateway} dev ${iface} metric ${METRIC_BASE + i}`;
    hostCmds.push(`addr add ${l.ip}/24 dev ${iface}`, ...(tethering ? [`link set ${iface} up`, route] : []));
    const devDir = join(sysfsRoot, 'class', 'net', iface);
    const target = `../../../devices/pci0000:00/0000:00:14.0/usb1/1-1/${usb}/${usb}:1.0`;
    if (tethering) {
      mkdirSync(devDir, { recursive: true });
      symlinkSync(target, join(devDir, 'device'));
    } else {
      // Runs inside the farm host's namespace (the fake adb is the farm's child).
      hook(
        adbDir,
        serial,
        'tether-on',
        `#!/bin/sh\n# lab: the phone's RNDIS interface appears\nmkdir -p '${devDir}' && ln -sfn '${target}' '${devDir}/device' && ` +
          `ip link set ${iface} up && ip ${route}\n`,
      );
    }
    if (p.rotates ?? true) {
      hook(adbDir, serial, 'airplane-off', rotateHook(p.carrier));
      hook(adbDir, serial, 'data-on', rotateHook(p.carrier));
    }
    const profile = p.profile ?? (['android-8', 'android-10', 'android-12', 'android-14'] as const)[i % 4]!;
    return {
      serial,
      usb,
      iface,
      ip: l.ip,
      gateway: l.gateway,
      carrier: p.carrier,
      entry: {
        serial,
        state: 'device',
        usb,
        model: p.model ?? `Lab_Phone_${i}`,
        product: `lab${i}`,
        device: `lab${i}`,
        profile,
        tethering,
      },
    };
  });
  const modems: FarmModem[] = (opts.modems ?? []).map((m, i) => {
    const l = link(m.carrier);
    const iface = `wwan${i + 1}`;
    const imei = m.imei ?? `35${String(900000000000 + i).padStart(13, '0')}`;
    rootLinks.push(
      `link add ${iface} netns ${ns} type veth peer name ${l.cgnIface} netns ${nsName(lab.prefix, `cgn${m.carrier}`)}`,
    );
    cgn(m.carrier).push(`addr add ${l.gateway}/24 dev ${l.cgnIface}`, `link set ${l.cgnIface} up`);
    hostCmds.push(
      `addr add ${l.ip}/24 dev ${iface}`,
      `link set ${iface} up`,
      `route replace default via ${l.gateway} dev ${iface} metric ${METRIC_BASE + 500 + i}`,
    );
    hook(mmcliDir, imei, 'reconnect', rotateHook(m.carrier));
    modemRoute.set(imei, `route replace default via ${l.gateway} dev ${iface} metric ${METRIC_BASE + 500 + i}`);
    return {
      imei,
      iface,
      ip: l.ip,
      gateway: l.gateway,
      carrier: m.carrier,
      entry: {
        index: i,
        imei,
        model: m.model ?? 'EC25',
        manufacturer: 'Quectel',
        operator: 'Lab Mobile',
        signal: 70,
        tech: 'lte',
        interface: iface,
        connected: true,
        profile: 'quectel-ec25',
      },
    };
  });
  await ipBatch(null, rootLinks);
  await Promise.all([
    ipBatch(ns, hostCmds),
    ...[...cgnCmds].map(([c, cmds]) => ipBatch(nsName(lab.prefix, `cgn${c}`), cmds)),
  ]);

  const unplugged = new Set<string>();
  const writeLists = () => {
    writeFileSync(
      join(adbDir, 'devices.json'),
      JSON.stringify(phones.filter((p) => !unplugged.has(p.serial)).map((p) => p.entry)),
    );
    writeFileSync(join(mmcliDir, 'modems.json'), JSON.stringify(modems.map((m) => m.entry)));
  };
  writeLists();
  const phone = (serial: string) => {
    const p = phones.find((x) => x.serial === serial);
    if (!p) throw new Error(`no lab phone ${serial}`);
    return p;
  };
  const env = { FAKE_ADB_DIR: adbDir, FAKE_MMCLI_DIR: mmcliDir };
  return {
    role,
    ns,
    dir,
    adbDir,
    mmcliDir,
    sysfsRoot,
    phones,
    modems,
    env,
    writeLists,
    startFarm: (o) =>
      lab.spawn(
        role,
        process.execPath,
        [
          AGENT_BIN,
          'farm',
          '--server',
          `http://${lab.relay.ip}:${o.relay.apiPort}`,
          '--enroll',
          o.token,
          '--fingerprint',
          o.fingerprint,
          '--insecure-http',
          '--state-dir',
          o.stateDir,
          '--adb',
          join(REPO_ROOT, 'apps/agent/test/fakes/adb'),
          '--mmcli',
          join(REPO_ROOT, 'apps/agent/test/fakes/mmcli'),
          '--sysfs-root',
          sysfsRoot,
          '--scan-interval',
          '1',
          ...(o.extra ?? []),
        ],
        {
          env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env },
          cwd: REPO_ROOT,
          ...(o.echo ? { echo: o.echo } : {}),
        },
      ),
    async unplug(serial) {
      const p = phone(serial);
      unplugged.add(serial);
      writeLists();
      await ipBatch(ns, [`link set ${p.iface} down`]);
    },
    async plug(serial) {
      const p = phone(serial);
      const i = phones.indexOf(p);
      await ipBatch(ns, [
        `link set ${p.iface} up`,
        `route replace default via ${p.gateway} dev ${p.iface} metric ${METRIC_BASE + i}`,
      ]);
      unplugged.delete(serial);
      writeLists();
    },
    renumberOnReconnect(imei) {
      const m = modems.find((x) => x.imei === imei);
      if (!m) throw new Error(`no lab modem ${imei}`);
      const base = m.ip.replace(/\.\d+$/, '');
      const pair = [`${base}.2`, `${base}.3`];
      // Runs in the farm host's namespace (the fake mmcli is the farm's child), after the carrier moved.
      // Flush first: the bearer is down in between, as on a real reconnect (the route goes with it).
      hook(
        mmcliDir,
        imei,
        'reconnect',
        `#!/bin/sh\n# lab: the bearer came back with a new address, its carrier with a new public one\n` +
          rotateLine(m.carrier) +
          `if ip -4 -o addr show dev ${m.iface} | grep -q ' ${pair[0]}/'; then new=${pair[1]}; else new=${pair[0]}; fi\n` +
          `ip addr flush dev ${m.iface} && ip addr add $new/24 dev ${m.iface} && ip ${modemRoute.get(imei)}\n`,
      );
      return pair;
    },
    cleanup() {
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
