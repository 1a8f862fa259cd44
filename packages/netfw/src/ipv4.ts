// Strict IPv4 address and CIDR parsing. Strict means: dotted quad of decimal octets without
// leading zeros (so "010.0.0.1" — octal to some parsers — is rejected), and a CIDR's host bits
// must be zero (a "10.0.0.1/8" is ambiguous: did the caller mean the host or the network?).
// Everything we print into an nft script has passed through here, so nothing else can be injected.

export interface Cidr {
  /** Network address as an unsigned 32-bit integer. */
  readonly base: number;
  readonly prefix: number;
}

const OCTET = /^(0|[1-9][0-9]{0,2})$/;

/** Parses "a.b.c.d"; undefined when it is not exactly that. */
export function parseIPv4(text: string): number | undefined {
  if (typeof text !== 'string') return undefined;
  const parts = text.split('.');
  if (parts.length !== 4) return undefined;
  let n = 0;
  for (const p of parts) {
    if (!OCTET.test(p)) return undefined;
    const v = Number(p);
    if (v > 255) return undefined;
    n = n * 256 + v;
  }
  return n;
}

export function formatIPv4(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
}

export function maskOf(prefix: number): number {
  return prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
}

/**
 * Parses "a.b.c.d/n" (or a bare address as /32 when `bareIsHost`). Returns a reason string on
 * failure so the caller can build a precise error.
 */
export function parseCidr(text: string, bareIsHost: boolean): Cidr | string {
  if (typeof text !== 'string') return 'not a string';
  const slash = text.indexOf('/');
  const addrText = slash === -1 ? text : text.slice(0, slash);
  const addr = parseIPv4(addrText);
  if (addr === undefined) return 'bad address';
  if (slash === -1) return bareIsHost ? { base: addr, prefix: 32 } : 'missing /prefix';
  const prefixText = text.slice(slash + 1);
  if (!/^(0|[1-9][0-9]?)$/.test(prefixText) || Number(prefixText) > 32) return 'bad prefix length';
  const prefix = Number(prefixText);
  if ((addr & ~maskOf(prefix)) >>> 0 !== 0) return 'host bits set';
  return { base: addr, prefix };
}

/** Canonical text: "a.b.c.d" for a /32, else "a.b.c.d/n" — the same form `nft list` prints. */
export function formatCidr(c: Cidr): string {
  return c.prefix === 32 ? formatIPv4(c.base) : `${formatIPv4(c.base)}/${c.prefix}`;
}

export function cidrContains(c: Cidr, addr: number): boolean {
  return (addr & maskOf(c.prefix)) >>> 0 === c.base;
}

export function cidrsOverlap(a: Cidr, b: Cidr): boolean {
  const p = Math.min(a.prefix, b.prefix);
  const m = maskOf(p);
  return (a.base & m) >>> 0 === (b.base & m) >>> 0;
}

/** Last address of the block (the broadcast address for prefixes < 31). */
export function cidrLast(c: Cidr): number {
  return (c.base | ~maskOf(c.prefix)) >>> 0;
}
