// Device tunnel addresses. Each device keeps one address in the device subnet for its life, so the
// relay's DNAT maps survive reconnects and tunnel restarts. The relay itself holds the first host
// address; devices get the lowest free one after it. A unique index (devices_vpn_ip) settles races.
import type { Queryable } from '@pocketproxy/db';
import { apiError } from '../errors.js';

export function parseCidr(cidr: string): { base: number; prefix: number } {
  const [addr, p] = cidr.split('/') as [string, string];
  const base = addr.split('.').reduce((a, o) => (a << 8) | Number(o), 0) >>> 0;
  const prefix = Number(p);
  const mask = prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
  return { base: (base & mask) >>> 0, prefix };
}
export const ipToInt = (ip: string) => ip.split('.').reduce((a, o) => (a << 8) | Number(o), 0) >>> 0;
export const intToIp = (n: number) => [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');

/** A dotted-quad IPv4 address (an IPv4-mapped IPv6 form too) as an integer; null for anything else. */
export function parseIpv4(text: string): number | null {
  const m = /^(?:::ffff:)?(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/i.exec(text.trim());
  if (!m) return null;
  const o = m.slice(1).map(Number);
  return o.every((x) => x <= 255) ? ipToInt(o.join('.')) : null;
}

/** Whether `ip` lies in one of the IPv4 CIDRs (host bits of a CIDR are ignored). False for an address
 * that is not IPv4; an empty list contains nothing (callers treat "no list" themselves). */
export function ipInCidrs(ip: string, cidrs: readonly string[]): boolean {
  const n = parseIpv4(ip);
  if (n === null) return false;
  return cidrs.some((c) => {
    const parts = c.includes('/') ? c.split('/') : [c, '32'];
    const [addr = '', bits = ''] = parts;
    const a = parts.length !== 2 || addr.includes(':') ? null : parseIpv4(addr);
    if (a === null || !/^\d{1,2}$/.test(bits) || Number(bits) > 32) return false;
    const prefix = Number(bits);
    const mask = prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
    return (n & mask) >>> 0 === (a & mask) >>> 0;
  });
}

export function relayAddress(cidr: string): string {
  return intToIp(parseCidr(cidr).base + 1);
}

export async function allocateVpnIp(q: Queryable, cidr: string): Promise<string> {
  // Read-then-pick races between concurrent pairings (both see the same lowest free address and one
  // hits the unique index). Serialise allocation with a transaction-scoped lock: pairing is rare, and
  // the lock is released at commit or rollback of the caller's transaction.
  await q.query('SELECT pg_advisory_xact_lock(7723003)');
  const { base, prefix } = parseCidr(cidr);
  const size = 2 ** (32 - prefix);
  const used = new Set(
    (await q.query<{ vpn_ip: string }>('SELECT vpn_ip FROM devices WHERE vpn_ip IS NOT NULL')).rows.map((r) =>
      ipToInt(r.vpn_ip),
    ),
  );
  for (let i = 2; i < size - 1; i++) {
    if (!used.has(base + i)) return intToIp(base + i);
  }
  throw apiError('PP_ERR_API_SUBNET_EXHAUSTED');
}
