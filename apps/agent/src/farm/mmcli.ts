// USB modems of a farm, through ModemManager's `mmcli` in JSON (`-J`, ModemManager 1.12+; the field
// names are mmcli's keys split on '.': modem.generic.model -> {"modem":{"generic":{"model":...}}}).
// mmcli prints every value as a string and "--" for none; both are read here, nothing else is assumed.
//
//   mmcli -L -J            {"modem-list":["/org/freedesktop/ModemManager1/Modem/0", ...]}
//   mmcli -m 0 -J          {"modem":{"3gpp":{"imei","operator-name",...},"generic":{"model","manufacturer",
//                          "state","access-technologies":["lte"],"signal-quality":{"value":"75","recent":"yes"},
//                          "bearers":["/org/freedesktop/ModemManager1/Bearer/1"],"equipment-identifier",...}}}
//   mmcli -b 1 -J          {"bearer":{"status":{"connected":"yes","interface":"wwan0",...},
//                          "properties":{"apn":"internet","ip-type":"ipv4v6",...},...}}
//
// Rotation is a bearer reconnect: --simple-disconnect, then --simple-connect with the APN and IP type
// the bearer had (the carrier hands out a new address to a new data session, usually at once).
// A modem's index changes when it is replugged or ModemManager restarts: the farm finds it again by IMEI.
import { isPPError } from '@pocketproxy/errors';
import { agentError } from '../errors.js';
import type { Exec } from '../ops/rotation.js';
import { boundedExec, cleanText, shown } from './adb.js';

export const MMCLI_TIMEOUT_MS = 15_000;
/** simple-connect registers and brings up a data session: give it longer than a read. */
export const MMCLI_CONNECT_TIMEOUT_MS = 60_000;
/** More bearers than this on one modem are not read (a modem has one or two). */
const MAX_BEARERS = 4;

export interface ModemBearer {
  id: string;
  connected: boolean;
  interface: string | null;
  apn: string | null;
  ipType: string | null;
}

export interface ModemInfo {
  /** ModemManager's index (changes on replug). */
  id: string;
  imei: string | null;
  model: string | null;
  manufacturer: string | null;
  operator: string | null;
  /** Signal quality, percent 0-100. */
  signal: number | null;
  /** e.g. 'lte' or 'lte, 5gnr'. */
  accessTech: string | null;
  state: string | null;
  bearers: ModemBearer[];
  /** The initial EPS bearer's APN, used to reconnect when no bearer says which APN it had. */
  initialApn?: string | null;
}

export interface Mmcli {
  /** Modem indexes. */
  list(): Promise<string[]>;
  modem(id: string): Promise<ModemInfo>;
  /** Disconnect the data session and connect it again (a new address from the carrier). */
  reconnect(id: string): Promise<void>;
}

const MODEM_PATH = /^\/org\/freedesktop\/ModemManager1\/Modem\/(\d{1,6})$/;
const BEARER_PATH = /^\/org\/freedesktop\/ModemManager1\/Bearer\/(\d{1,6})$/;
export const MODEM_ID = /^\d{1,6}$/;
const IFNAME = /^[A-Za-z0-9_.-]{1,15}$/;
const APN = /^[A-Za-z0-9._-]{1,100}$/;
const IP_TYPES = new Set(['ipv4', 'ipv6', 'ipv4v6']);

type Json = Record<string, unknown>;

function obj(v: unknown): Json {
  return v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Json) : {};
}

/** A string field, null for mmcli's "--", empty, or anything not a string. */
function str(v: unknown, max = 64): string | null {
  if (typeof v !== 'string' || v === '--') return null;
  return cleanText(v, max);
}

function strings(v: unknown): string[] {
  return Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string' && x !== '--') : [];
}

function parseJson(text: string, command: string): Json {
  try {
    const v = JSON.parse(String(text)) as unknown;
    if (v !== null && typeof v === 'object' && !Array.isArray(v)) return v as Json;
  } catch {
    // reported below
  }
  throw agentError('PP_ERR_AGENT_TOOL_OUTPUT', { command, reason: 'not a JSON object' });
}

/** `mmcli -L -J` -> modem indexes (paths that are not ModemManager's modem paths are skipped). */
export function parseModemList(text: string): string[] {
  const j = parseJson(text, 'mmcli -L -J');
  const out: string[] = [];
  for (const p of strings(j['modem-list'])) {
    const m = MODEM_PATH.exec(p);
    if (m && !out.includes(String(Number(m[1])))) out.push(String(Number(m[1])));
  }
  return out;
}

/** `mmcli -m N -J` -> the modem (bearers with ids only: their state comes from parseBearer). */
export function parseModem(id: string, text: string): ModemInfo {
  const j = obj(parseJson(text, `mmcli -m ${id} -J`).modem);
  const g = obj(j.generic);
  const g3 = obj(j['3gpp']);
  const imeiText = str(g3.imei) ?? str(g['equipment-identifier']);
  const q = str(obj(g['signal-quality']).value);
  const signal = q !== null && /^\d{1,3}$/.test(q) && Number(q) <= 100 ? Number(q) : null;
  const tech = strings(g['access-technologies'])
    .map((t) => cleanText(t, 16))
    .filter((t): t is string => t !== null && t !== 'unknown');
  const bearers: ModemBearer[] = [];
  for (const p of strings(g.bearers)) {
    const m = BEARER_PATH.exec(p);
    if (m && bearers.length < MAX_BEARERS)
      bearers.push({ id: String(Number(m[1])), connected: false, interface: null, apn: null, ipType: null });
  }
  const initial = str(obj(obj(obj(g3.eps)['initial-bearer']).settings).apn, 100);
  return {
    id,
    // An IMEI is 14-16 digits; equipment-identifier can be an ESN/MEID (hex) on CDMA modems.
    imei: imeiText && /^[0-9A-Fa-f]{8,20}$/.test(imeiText) ? imeiText : null,
    model: str(g.model),
    manufacturer: str(g.manufacturer),
    operator: str(g3['operator-name']),
    signal,
    accessTech: tech.length ? tech.join(', ').slice(0, 32) : null,
    state: str(g.state, 32),
    bearers,
    initialApn: initial && APN.test(initial) ? initial : null,
  };
}

/** `mmcli -b N -J` -> whether the data session is up and on which interface. */
export function parseBearer(id: string, text: string): ModemBearer {
  const b = obj(parseJson(text, `mmcli -b ${id} -J`).bearer);
  const status = obj(b.status);
  const props = obj(b.properties);
  const ifname = str(status.interface, 32);
  const apn = str(props.apn, 100);
  const ipType = str(props['ip-type'], 16);
  return {
    id,
    connected: status.connected === 'yes',
    interface: ifname && IFNAME.test(ifname) ? ifname : null,
    apn: apn && APN.test(apn) ? apn : null,
    ipType: ipType && IP_TYPES.has(ipType) ? ipType : null,
  };
}

/** The --simple-connect argument for a reconnect: only values that passed APN / IP_TYPES (no ',' or '='). */
export function simpleConnectArg(m: ModemInfo): string {
  const b = m.bearers.find((x) => x.connected) ?? m.bearers[0];
  const apn = b?.apn ?? m.initialApn ?? null;
  const ipType = b?.ipType ?? null;
  const parts = [...(apn ? [`apn=${apn}`] : []), ...(ipType ? [`ip-type=${ipType}`] : [])];
  // No APN known: an LTE modem attaches with its initial bearer's settings; ask for IPv4 at least.
  return `--simple-connect=${parts.length ? parts.join(',') : 'ip-type=ipv4'}`;
}

export function createMmcli(o: { path?: string; timeoutMs?: number; exec?: Exec } = {}): Mmcli {
  const bin = o.path ?? 'mmcli';
  const exec = o.exec ?? boundedExec;
  const timeout = o.timeoutMs ?? MMCLI_TIMEOUT_MS;
  const checkId = (id: string) => {
    if (!MODEM_ID.test(id)) throw agentError('PP_ERR_AGENT_MODEM_BAD_ID', { id: shown(String(id)) });
  };
  const run = async (args: string[], ms = timeout) => (await exec(bin, args, ms)).stdout;

  const modem = async (id: string): Promise<ModemInfo> => {
    checkId(id);
    const m = parseModem(id, await run(['-m', id, '-J']));
    m.bearers = await Promise.all(
      m.bearers.map(async (b) => {
        try {
          return parseBearer(b.id, await run(['-b', b.id, '-J']));
        } catch (e) {
          // A bearer removed between the two calls: not connected.
          if (isPPError(e) && e.code === 'PP_ERR_AGENT_TOOL_TIMEOUT') throw e;
          return b;
        }
      }),
    );
    return m;
  };

  return {
    async list() {
      return parseModemList(await run(['-L', '-J']));
    },
    modem,
    async reconnect(id) {
      const m = await modem(id);
      const connect = simpleConnectArg(m);
      const secs = Math.ceil(MMCLI_CONNECT_TIMEOUT_MS / 1000);
      // Disconnecting a modem that is not connected fails on some plugins: what counts is the connect.
      try {
        await run(['-m', id, '--simple-disconnect'], timeout);
      } catch (e) {
        if (isPPError(e) && e.code === 'PP_ERR_AGENT_TOOL_TIMEOUT') throw e;
      }
      await run(['-m', id, `--timeout=${secs}`, connect], MMCLI_CONNECT_TIMEOUT_MS + 5_000);
    },
  };
}
