// Device metrics for the heartbeat, read from whatever the host offers; null when unknown.
//   battery/charging: /sys/class/power_supply/*/{type,capacity,status}
//   carrier/network type/signal: `mmcli -m any -K` (ModemManager), when installed
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import type { HeartbeatBody } from '../api-client.js';
import type { Exec } from './rotation.js';

export type Metrics = HeartbeatBody['metrics'];

export async function readBattery(
  root = '/sys/class/power_supply',
): Promise<{ battery: number | null; charging: boolean | null; temperature: number | null }> {
  let names: string[];
  try {
    names = await fs.readdir(root);
  } catch {
    return { battery: null, charging: null, temperature: null };
  }
  for (const n of names) {
    const dir = join(root, n);
    const type = await fs.readFile(join(dir, 'type'), 'utf8').catch(() => '');
    if (type.trim() !== 'Battery') continue;
    const cap = Number((await fs.readFile(join(dir, 'capacity'), 'utf8').catch(() => '')).trim());
    const status = (await fs.readFile(join(dir, 'status'), 'utf8').catch(() => '')).trim();
    // `temp`: tenths of a degree Celsius (power_supply ABI); absent on many batteries.
    const tenths = (await fs.readFile(join(dir, 'temp'), 'utf8').catch(() => '')).trim();
    const t = /^-?\d{1,5}$/.test(tenths) ? Number(tenths) / 10 : Number.NaN;
    return {
      battery: Number.isInteger(cap) && cap >= 0 && cap <= 100 ? cap : null,
      charging: status ? status === 'Charging' || status === 'Full' : null,
      temperature: t >= -50 && t <= 150 ? t : null,
    };
  }
  return { battery: null, charging: null, temperature: null };
}

/** Parses `mmcli -m any -K` key/value output. */
export function parseMmcli(text: string): {
  carrier: string | null;
  network_type: string | null;
  signal: number | null;
} {
  const kv = new Map<string, string>();
  for (const line of text.split('\n')) {
    const i = line.indexOf(':');
    if (i > 0) kv.set(line.slice(0, i).trim(), line.slice(i + 1).trim());
  }
  const val = (k: string) => {
    const v = kv.get(k);
    return v && v !== '--' ? v : null;
  };
  const quality = Number(val('modem.generic.signal-quality.value'));
  const tech = val('modem.generic.access-technologies.value[1]') ?? val('modem.generic.access-technologies');
  return {
    carrier: val('modem.3gpp.operator-name')?.slice(0, 64) ?? null,
    network_type: tech?.slice(0, 32) ?? null,
    // Percent 0-100 mapped to 0-4 bars (the schema takes dBm or bars).
    signal:
      Number.isFinite(quality) && val('modem.generic.signal-quality.value') !== null
        ? Math.min(4, Math.round(quality / 25))
        : null,
  };
}

export async function readModem(
  exec: Exec,
): Promise<{ carrier: string | null; network_type: string | null; signal: number | null }> {
  try {
    const { stdout } = await exec('mmcli', ['-m', 'any', '-K'], 5_000);
    return parseMmcli(stdout);
  } catch {
    return { carrier: null, network_type: null, signal: null };
  }
}

export async function collectMetrics(exec: Exec, powerSupplyRoot?: string): Promise<Metrics> {
  const [b, m] = await Promise.all([readBattery(powerSupplyRoot), readModem(exec)]);
  return { ...b, ...m };
}
