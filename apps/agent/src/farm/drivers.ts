// Rotation drivers and heartbeat metrics of the farm's devices: a phone over adb, a modem over mmcli.
//
// Rotation of an unrooted phone (shell user, uid 2000):
//   Android 11+    cmd connectivity airplane-mode enable; wait; disable          (no root)
//   Android 8-10   `cmd connectivity airplane-mode` is missing ("Unknown command"); the old way,
//                  settings put global airplane_mode_on 1 + am broadcast -a android.intent.action.AIRPLANE_MODE,
//                  sets the flag but the broadcast is protected since Android 7 ("Permission Denial ...
//                  uid=2000"): the radios never hear of it. We try it once, put the flag back, and use
//                  mobile data off/on instead — `svc data disable|enable` works over adb without root
//                  on every version we know (8-14) and makes the carrier start a new data session.
//   method 'data'  svc data disable; wait; enable (any version)
// Carriers need a few seconds off before they hand out a new address: `offSeconds` (3-5 s is usual).
// Whether the address really changed is checked by ops/rotation.ts rotateIp (retry once, then failed).
//
// Metrics: `dumpsys battery` (level/scale, status, temperature in tenths of °C), `dumpsys
// telephony.registry` (per SIM slot: service state with the operator and the data radio technology,
// signal strength), `getprop gsm.*` and `dumpsys connectivity` when the registry says nothing. Android
// prints these differently per version (fixtures in test/fixtures/adb/): parsers take anything and
// return null for what they cannot read; values out of the heartbeat schema's ranges become null.
import { isPPError } from '@pocketproxy/errors';
import { agentError } from '../errors.js';
import type { Metrics } from '../ops/metrics.js';
import type { RotationDriver } from '../ops/rotation.js';
import { type Adb, cleanText, failureOutput, parseGetprop } from './adb.js';
import type { Mmcli } from './mmcli.js';

const realSleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
/** Deadline of one metrics call: a heartbeat does not wait long for a phone. */
export const METRICS_TIMEOUT_MS = 5_000;

export interface AdbRotationOptions {
  method: 'airplane' | 'data';
  /** How long the radio (or mobile data) stays off. */
  offSeconds: number;
  sleep?: (ms: number) => Promise<void>;
  /** Told once when the phone cannot toggle airplane mode without root and data is used instead. */
  log?: (message: string) => void;
}

function said(e: unknown): string {
  return `${isPPError(e) ? e.message : String(e)}\n${failureOutput(e)}`;
}

const MISSING = /unknown command|can't find service|usage: cmd|no shell command implementation/i;
const DENIED = /permission denial|securityexception|security exception|not allowed to send broadcast/i;

export function adbRotationDriver(adb: Adb, serial: string, o: AdbRotationOptions): RotationDriver {
  const sleep = o.sleep ?? realSleep;
  const offMs = Math.max(0, o.offSeconds) * 1000;
  // How this phone switches airplane mode, learned on first use: 'cmd' (Android 11+), 'legacy'
  // (settings + broadcast: a rooted or permissive build) or 'none'.
  let airplaneWay: 'cmd' | 'legacy' | 'none' | undefined;

  const sh = (args: string[]) => adb.shell(serial, args);

  /** `cmd connectivity airplane-mode`: true when done, false when this Android lacks it. */
  const airplaneCmd = async (on: boolean): Promise<boolean> => {
    try {
      const out = await sh(['cmd', 'connectivity', 'airplane-mode', on ? 'enable' : 'disable']);
      return !MISSING.test(out);
    } catch (e) {
      if (MISSING.test(said(e))) return false;
      throw e;
    }
  };

  /** The pre-Android-11 way; answers whether the broadcast was allowed (it is not without root). */
  const airplaneLegacy = async (on: boolean): Promise<boolean> => {
    await sh(['settings', 'put', 'global', 'airplane_mode_on', on ? '1' : '0']);
    let out: string;
    try {
      out = await sh(['am', 'broadcast', '-a', 'android.intent.action.AIRPLANE_MODE', '--ez', 'state', String(on)]);
    } catch (e) {
      out = said(e);
    }
    if (!DENIED.test(out)) return true;
    // The flag alone changes nothing but the Settings tile: put it back (after a refused 'on'; a
    // refused 'off' leaves it off, which is where the radio is).
    if (on) await sh(['settings', 'put', 'global', 'airplane_mode_on', '0']).catch(() => {});
    return false;
  };

  /** Airplane mode on, wait, off. false: this phone cannot do it without root (nothing changed). */
  const airplaneCycle = async (): Promise<boolean> => {
    if (airplaneWay === 'none') return false;
    if (airplaneWay === undefined) {
      if (await airplaneCmd(true)) airplaneWay = 'cmd';
      else if (await airplaneLegacy(true)) airplaneWay = 'legacy';
      else {
        airplaneWay = 'none';
        o.log?.(
          `phone ${serial}: airplane mode cannot be switched without root on this Android (no \`cmd connectivity ` +
            'airplane-mode`, the broadcast is protected); rotating by mobile data off/on instead',
        );
        return false;
      }
    } else if (airplaneWay === 'cmd') await airplaneCmd(true);
    else await airplaneLegacy(true);
    await sleep(offMs);
    // Leaving a phone in airplane mode cuts its customers off: one more try after a pause.
    const off = () => (airplaneWay === 'cmd' ? airplaneCmd(false) : airplaneLegacy(false));
    try {
      await off();
    } catch {
      await sleep(1_000);
      await off();
    }
    return true;
  };

  const dataCycle = async () => {
    await sh(['svc', 'data', 'disable']);
    await sleep(offMs);
    try {
      await sh(['svc', 'data', 'enable']);
    } catch {
      await sleep(1_000);
      await sh(['svc', 'data', 'enable']);
    }
  };

  return {
    name: 'adb',
    async rotate() {
      if (o.method === 'airplane' && (await airplaneCycle())) return;
      await dataCycle();
    },
    async airplaneMode() {
      if (!(await airplaneCycle()))
        throw agentError('PP_ERR_AGENT_NOT_SUPPORTED', {
          what: 'airplane mode without root on Android < 11',
          driver: 'adb',
        });
    },
    // No wifiToggle: a farm phone keeps Wi-Fi off so its traffic leaves by the carrier (wifiOff at start).
    reboot: () => adb.reboot(serial),
  };
}

/** A ModemManager modem; `id` is asked each time: the index changes when the modem is replugged. */
export function modemRotationDriver(mm: Mmcli, id: () => string): RotationDriver {
  return { name: 'modemmanager', rotate: () => mm.reconnect(id()) };
}

// ---- metrics ----

export interface BatteryReading {
  battery: number | null;
  charging: boolean | null;
  /** °C (dumpsys prints tenths). Not in the heartbeat schema: for the farm's own log and alarms. */
  temperature: number | null;
}

function num(text: string, re: RegExp): number | null {
  const m = re.exec(text);
  if (!m) return null;
  const n = Number(m[1]);
  return Number.isSafeInteger(n) ? n : null;
}

/** `dumpsys battery`. */
export function parseDumpsysBattery(text: string): BatteryReading {
  const t = String(text);
  const level = num(t, /^\s*level: (-?\d{1,9})\s*$/m);
  const scale = num(t, /^\s*scale: (-?\d{1,9})\s*$/m);
  let battery: number | null = null;
  if (level !== null) battery = scale !== null && scale > 0 ? Math.round((level * 100) / scale) : level;
  if (battery !== null && (battery < 0 || battery > 100)) battery = null;
  // BatteryManager.BATTERY_STATUS_*: 2 charging, 3 discharging, 4 not charging, 5 full (plugged).
  const status = num(t, /^\s*status: (\d{1,3})\s*$/m);
  let charging: boolean | null = null;
  if (status === 2 || status === 5) charging = true;
  else if (status === 3 || status === 4) charging = false;
  else {
    const powered = [...t.matchAll(/^\s*(?:AC|USB|Wireless|Dock) powered: (true|false)\s*$/gm)].map((m) => m[1]);
    if (powered.length) charging = powered.includes('true');
  }
  const tenths = num(t, /^\s*temperature: (-?\d{1,6})\s*$/m);
  const temperature = tenths !== null && tenths >= -400 && tenths <= 1000 ? tenths / 10 : null;
  return { battery, charging, temperature };
}

const INVALID = 2147483647;

/** RIL radio technology names (ServiceState.rilRadioTechnologyToString) as we report them. */
function techName(raw: string | undefined | null): string | null {
  const t = cleanText(raw, 32);
  if (!t || /^(unknown|none|null|0)$/i.test(t)) return null;
  const map: Record<string, string> = { HSPAP: 'HSPA+', 'LTE-CA': 'LTE', LTE_CA: 'LTE', NR_SA: 'NR' };
  return map[t.toUpperCase()] ?? t;
}

function dbm(v: number | null, lo: number, hi: number): number | null {
  if (v === null || v === INVALID) return null;
  if (v >= lo && v <= hi) return v;
  // Some RILs before Android 9 report LTE RSRP as a positive number of dB below 0.
  if (-v >= lo && -v <= hi) return -v;
  return null;
}

/** One SIM slot's signal from an mSignalStrength line: dBm of the primary cell, else its 0-4 level. */
export function parseSignalStrength(line: string): number | null {
  const l = String(line);
  if (/SignalStrength:\{/.test(l) || /CellSignalStrength/.test(l)) {
    // Android 10+: SignalStrength:{mCdma=...,mGsm=CellSignalStrengthGsm: rssi=-79 ...,mLte=CellSignalStrengthLte: rssi=-67 rsrp=-97 ...,primary=CellSignalStrengthLte}
    const primary = /primary=CellSignalStrength(\w+)/.exec(l)?.[1]?.toLowerCase();
    const lte = dbm(num(l, /CellSignalStrengthLte: [^,}]*?\brsrp=(-?\d+)/), -140, -44);
    const nr = dbm(num(l, /CellSignalStrengthNr:\{[^}]*?\bssRsrp = (-?\d+)/), -156, -31);
    const wcdma = dbm(num(l, /CellSignalStrengthWcdma: [^,}]*?\brscp=(-?\d+)/), -120, -24);
    const gsm = dbm(num(l, /CellSignalStrengthGsm: [^,}]*?\brssi=(-?\d+)/), -113, -51);
    const byPrimary: Record<string, number | null> = { lte, nr, wcdma, gsm };
    const v = (primary ? byPrimary[primary] : null) ?? lte ?? nr ?? wcdma ?? gsm ?? null;
    if (v !== null) return v;
    const levels = [...l.matchAll(/\b(?:m?[Ll]evel) ?= ?(\d)\b/g)].map((m) => Number(m[1]));
    const best = levels.length ? Math.max(...levels) : null;
    return best !== null && best >= 0 && best <= 4 ? best : null;
  }
  // Android 8-9: "SignalStrength: gsmAsu gsmBer cdmaDbm cdmaEcio evdoDbm evdoEcio evdoSnr lteSs lteRsrp lteRsrq lteRssnr lteCqi tdscdmaRscp gsm|lte ..."
  const m = /SignalStrength: ((?:-?\d+ ){8,}-?\d+)/.exec(l);
  if (!m) return null;
  const f = m[1]!.trim().split(' ').map(Number);
  const lte = dbm(f[8] ?? null, -140, -44);
  if (lte !== null) return lte;
  const asu = f[0] ?? 99;
  return asu >= 0 && asu <= 31 ? -113 + 2 * asu : null;
}

export interface RadioReading {
  signal: number | null;
  carrier: string | null;
  network_type: string | null;
}

/** One mServiceState value (Android 8-9: positional; 10+: mKey=value, ...). */
export function parseServiceState(line: string): RadioReading & { inService: boolean } {
  const l = String(line);
  if (/mVoiceRegState=|mDataRegState=/.test(l)) {
    const inService = /mDataRegState=0\b/.test(l) || (/mVoiceRegState=0\b/.test(l) && !/mDataRegState=/.test(l));
    // Android 10 names the data operator (mDataOperatorAlphaLong), 11+ one operator (mOperatorAlphaLong).
    const field = (k: string) => {
      const v = new RegExp(`\\b${k}=([^,}]*)`).exec(l)?.[1];
      return v && v !== 'null' ? v : undefined;
    };
    const carrier =
      field('mDataOperatorAlphaLong') ??
      field('mOperatorAlphaLong') ??
      field('mDataOperatorAlphaShort') ??
      field('mOperatorAlphaShort');
    // The data domain's technology; with 5G NSA the registry says LTE and nrState=CONNECTED.
    let tech = techName(/\b(?:get|m)RilDataRadioTechnology=\d+\(([^)]*)\)/.exec(l)?.[1]);
    if (!tech) {
      const ps = /domain=PS[^}]*?accessNetworkTechnology=([\w-]+)/.exec(l)?.[1];
      tech = techName(ps);
    }
    if (tech === 'LTE' && /nrState=CONNECTED/.test(l)) tech = 'NR NSA';
    return {
      inService,
      signal: null,
      carrier: carrier ? cleanText(carrier, 64) : null,
      network_type: tech,
    };
  }
  // "0 0 voice home data home T-Mobile T-Mobile 310260 T-Mobile T-Mobile 310260  LTE LTE CSS not supported ..."
  const m =
    /^\s*(\d+) (\d+) voice \S+ data \S+ (.*?) (\d{5,6}) (.*?) (\d{5,6})?\s+(?:\(manual\) )?(\S+) (\S+) CSS /.exec(l);
  if (!m) {
    const states = /^\s*(\d+) (\d+)\b/.exec(l);
    return { inService: states?.[2] === '0', signal: null, carrier: null, network_type: null };
  }
  // Long and short name are printed one after the other; when they are the same, print one.
  const names = m[3]!.trim();
  const half = names.length % 2 === 1 ? names.slice(0, (names.length - 1) / 2) : '';
  const carrier = half && names === `${half} ${half}` ? half : names;
  return {
    inService: m[2] === '0',
    signal: null,
    carrier: carrier && carrier !== 'null' ? cleanText(carrier, 64) : null,
    network_type: techName(m[8]),
  };
}

/** `dumpsys telephony.registry`: the first SIM slot in service (else the first one that says anything). */
export function parseTelephonyRegistry(text: string): RadioReading {
  const t = String(text);
  const blocks = t.split(/^\s*Phone Id=\d+\s*$/m);
  const slots = (blocks.length > 1 ? blocks.slice(1) : blocks).map((b) => {
    const ss = /^\s*mServiceState=(.*)$/m.exec(b)?.[1] ?? '';
    const sig = /^\s*mSignalStrength=(.*)$/m.exec(b)?.[1] ?? '';
    const s = parseServiceState(ss);
    return { ...s, signal: parseSignalStrength(`mSignalStrength=${sig}`) };
  });
  const pick =
    slots.find((s) => s.inService) ??
    slots.find((s) => s.carrier !== null || s.network_type !== null || s.signal !== null);
  return pick
    ? { signal: pick.signal, carrier: pick.carrier, network_type: pick.network_type }
    : { signal: null, carrier: null, network_type: null };
}

/** `dumpsys connectivity`: the mobile network's subtype (`type: MOBILE[LTE]`, older `MOBILE (LTE)`). */
export function parseConnectivityNetworkType(text: string): string | null {
  const m = /\bMOBILE(?:\[| \()([A-Za-z0-9+_ -]{1,16})[\])]/.exec(String(text));
  return techName(m?.[1]);
}

/** What the heartbeat schema accepts (api-schema DeviceMetrics): anything else becomes null. */
export function inRange(m: Metrics): Metrics {
  const int = (v: unknown, lo: number, hi: number) =>
    typeof v === 'number' && Number.isInteger(v) && v >= lo && v <= hi ? v : null;
  const text = (v: unknown, max: number) => (typeof v === 'string' ? cleanText(v, max) : null);
  return {
    battery: int(m.battery, 0, 100),
    charging: typeof m.charging === 'boolean' ? m.charging : null,
    signal: int(m.signal, -200, 100),
    carrier: text(m.carrier, 64),
    network_type: text(m.network_type, 32),
    temperature:
      typeof m.temperature === 'number' &&
      Number.isFinite(m.temperature) &&
      m.temperature >= -50 &&
      m.temperature <= 150
        ? Math.round(m.temperature * 10) / 10
        : null,
  };
}

/** Battery with temperature (one `dumpsys battery`). */
export async function adbBattery(adb: Adb, serial: string, timeoutMs = METRICS_TIMEOUT_MS): Promise<BatteryReading> {
  return parseDumpsysBattery(await adb.shell(serial, ['dumpsys', 'battery'], timeoutMs));
}

/**
 * A phone's heartbeat metrics. Never throws: a phone that does not answer gives nulls (and after a
 * timeout on the first call, no further calls are made: one deadline per heartbeat, not four).
 */
export async function adbMetrics(adb: Adb, serial: string, o: { timeoutMs?: number } = {}): Promise<Metrics> {
  const ms = o.timeoutMs ?? METRICS_TIMEOUT_MS;
  const out: Metrics = {
    battery: null,
    charging: null,
    signal: null,
    carrier: null,
    network_type: null,
    temperature: null,
  };
  const gone = (e: unknown) =>
    isPPError(e) && (e.code === 'PP_ERR_AGENT_TOOL_TIMEOUT' || e.code === 'PP_ERR_AGENT_ADB_DEVICE_STATE');
  try {
    const b = await adbBattery(adb, serial, ms);
    out.battery = b.battery;
    out.charging = b.charging;
    out.temperature = b.temperature;
  } catch (e) {
    if (gone(e)) return out;
  }
  try {
    Object.assign(out, parseTelephonyRegistry(await adb.shell(serial, ['dumpsys', 'telephony.registry'], ms)));
  } catch (e) {
    if (gone(e)) return inRange(out);
  }
  if (out.carrier === null || out.network_type === null) {
    try {
      const p = parseGetprop(await adb.shell(serial, ['getprop'], ms));
      // gsm.operator.alpha / gsm.network.type: one value per SIM slot, comma-separated.
      const first = (k: string) =>
        (p.get(k) ?? '')
          .split(',')
          .map((s) => s.trim())
          .find(Boolean);
      out.carrier ??= cleanText(first('gsm.operator.alpha'), 64);
      out.network_type ??= techName(first('gsm.network.type'));
    } catch (e) {
      if (gone(e)) return inRange(out);
    }
  }
  if (out.network_type === null) {
    try {
      out.network_type = parseConnectivityNetworkType(await adb.shell(serial, ['dumpsys', 'connectivity'], ms));
    } catch {
      // nothing more to ask
    }
  }
  return inRange(out);
}

/** ModemManager's access technologies as one network type ('lte, 5gnr' -> 'NR NSA'). */
export function modemNetworkType(accessTech: string | null): string | null {
  if (!accessTech) return null;
  const t = accessTech.split(',').map((s) => s.trim().toLowerCase());
  if (t.includes('5gnr')) return t.includes('lte') ? 'NR NSA' : 'NR';
  const names: Record<string, string> = {
    lte: 'LTE',
    'hspa-plus': 'HSPA+',
    hspa: 'HSPA',
    hsdpa: 'HSDPA',
    hsupa: 'HSUPA',
    umts: 'UMTS',
    edge: 'EDGE',
    gprs: 'GPRS',
    gsm: 'GSM',
    'gsm-compact': 'GSM',
    evdo0: 'EVDO',
    evdoa: 'EVDO',
    evdob: 'EVDO',
    '1xrtt': '1xRTT',
  };
  for (const k of Object.keys(names)) if (t.includes(k)) return names[k]!;
  return cleanText(t[0], 32);
}

/** A modem's heartbeat metrics (signal quality % as 0-4 bars, like ops/metrics.ts). Never throws. */
export async function modemMetrics(mm: Mmcli, id: string): Promise<Metrics> {
  try {
    const m = await mm.modem(id);
    return inRange({
      battery: null,
      charging: null,
      signal: m.signal === null ? null : Math.min(4, Math.round(m.signal / 25)),
      carrier: m.operator,
      network_type: modemNetworkType(m.accessTech),
    });
  } catch {
    return { battery: null, charging: null, signal: null, carrier: null, network_type: null, temperature: null };
  }
}
