// Whether a connection will actually carry traffic right now, and why not.
import type { Connection } from './types';

export type Readiness = { ok: boolean; reasons: string[] };

export function readiness(c: Connection, now = Date.now()): Readiness {
  const reasons: string[] = [];
  if (!c.enabled) reasons.push('disabled');
  if (c.device_status !== 'online') reasons.push('device offline');
  if (c.expires_at && Date.parse(c.expires_at) <= now) reasons.push('expired');
  if (c.bandwidth_limit_bytes !== null && c.bytes_used_month >= c.bandwidth_limit_bytes)
    reasons.push('bandwidth limit reached');
  return { ok: reasons.length === 0, reasons };
}

/** Parse the allow-list textarea: one entry per line (commas too); a bare IPv4 becomes a /32. */
export function parseAllowList(text: string): string[] {
  return text
    .split(/[\s,]+/)
    .map((s) => s.trim())
    .filter(Boolean)
    .map((s) => (/^\d{1,3}(\.\d{1,3}){3}$/.test(s) ? `${s}/32` : s));
}

const UNITS = { MB: 1e6, GB: 1e9, TB: 1e12 } as const;
export type Unit = keyof typeof UNITS;

export function toBytes(amount: string, unit: Unit): number | null | typeof NaN {
  if (amount.trim() === '') return null;
  const n = Number(amount);
  return Number.isFinite(n) && n >= 0 ? Math.round(n * UNITS[unit]) : NaN;
}

export function fromBytes(bytes: number | null): { amount: string; unit: Unit } {
  if (bytes === null) return { amount: '', unit: 'GB' };
  if (bytes >= 1e12 && bytes % 1e10 === 0) return { amount: String(bytes / 1e12), unit: 'TB' };
  if (bytes >= 1e9 || bytes === 0) return { amount: String(Math.round((bytes / 1e9) * 1000) / 1000), unit: 'GB' };
  return { amount: String(Math.round((bytes / 1e6) * 1000) / 1000), unit: 'MB' };
}

/** <input type="datetime-local"> value ⇄ RFC 3339 timestamp. */
export function toLocalInput(iso: string | null): string {
  if (!iso) return '';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return '';
  const pad = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

export function fromLocalInput(value: string): string | null {
  if (!value) return null;
  const d = new Date(value);
  return Number.isNaN(d.getTime()) ? 'invalid' : d.toISOString();
}
