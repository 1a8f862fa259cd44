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
    (await q.query<{ vpn_ip: string }>('SELECT vpn_ip FROM devices WHERE vpn_ip IS NOT NULL')).rows.map((r) => ipToInt(r.vpn_ip)),
  );
  for (let i = 2; i < size - 1; i++) {
    if (!used.has(base + i)) return intToIp(base + i);
  }
  throw apiError('PP_ERR_API_SUBNET_EXHAUSTED');
}
