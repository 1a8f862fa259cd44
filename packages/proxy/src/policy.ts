// Destination policy: which IP addresses a device proxy may reach.
//
// A device proxy sits inside the operator's network (tunnel subnet, the phone itself, the carrier's
// private ranges), so by default everything that is not a public unicast address is refused
// (docs/design.md §6). Special-purpose ranges come from the IANA registries (RFC 6890):
// https://www.iana.org/assignments/iana-ipv4-special-registry and ...-ipv6-special-registry.
// IPv6 forms that embed an IPv4 address (v4-mapped ::ffff:0:0/96, v4-compatible ::/96,
// NAT64 64:ff9b::/96 (RFC 6052), 6to4 2002::/16 (RFC 3056)) are judged by the embedded address.
import * as net from 'node:net';

export interface DestinationPolicy {
  /** Allow RFC 1918, CGNAT 100.64/10 (RFC 6598), IPv6 ULA fc00::/7 (RFC 4193), benchmarking. */
  readonly allowPrivate?: boolean;
  /** Allow 127/8 and ::1. Tests use this; a device should not. */
  readonly allowLoopback?: boolean;
  /** Always refused, even when private/loopback are allowed (tunnel subnet, device address). */
  readonly denyCidrs?: readonly string[];
}

export type AddressCategory =
  | 'public'
  | 'loopback'
  | 'private'
  | 'link-local'
  | 'multicast'
  | 'unspecified'
  | 'broadcast'
  | 'reserved'
  | 'invalid';

interface Cidr {
  readonly bytes: Uint8Array;
  readonly bits: number;
}

/** Parses an IPv4 or IPv6 literal into 4 or 16 bytes; null when it is not one. */
export function ipToBytes(ip: string): Uint8Array | null {
  const kind = net.isIP(ip);
  if (kind === 4) return Uint8Array.from(ip.split('.').map(Number));
  if (kind !== 6) return null;
  let s = ip;
  const pct = s.indexOf('%'); // zone id (fe80::1%eth0)
  if (pct >= 0) s = s.slice(0, pct);
  const out = new Uint8Array(16);
  let tail: number[] = [];
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(s);
  if (v4) {
    tail = v4[1]!.split('.').map(Number);
    s = `${s.slice(0, -v4[1]!.length)}0:0`;
  }
  const [head, rest] = s.split('::') as [string, string | undefined];
  const h = head ? head.split(':') : [];
  const r = rest !== undefined && rest !== '' ? rest.split(':') : [];
  const groups = rest === undefined ? h : [...h, ...Array<string>(8 - h.length - r.length).fill('0'), ...r];
  for (let i = 0; i < 8; i++) {
    const g = parseInt(groups[i] ?? '0', 16);
    out[i * 2] = g >> 8;
    out[i * 2 + 1] = g & 0xff;
  }
  if (tail.length === 4) out.set(tail, 12);
  return out;
}

function parseCidr(text: string): Cidr {
  const [addr, bitsText] = text.split('/');
  const bytes = ipToBytes(addr ?? '');
  if (!bytes) throw new TypeError(`bad CIDR ${text}`);
  const bits = bitsText === undefined ? bytes.length * 8 : Number(bitsText);
  if (!Number.isInteger(bits) || bits < 0 || bits > bytes.length * 8) throw new TypeError(`bad CIDR ${text}`);
  return { bytes, bits };
}

function inCidr(ip: Uint8Array, c: Cidr): boolean {
  if (ip.length !== c.bytes.length) return false;
  let bits = c.bits;
  for (let i = 0; bits > 0; i++, bits -= 8) {
    const mask = bits >= 8 ? 0xff : (0xff << (8 - bits)) & 0xff;
    if ((ip[i]! & mask) !== (c.bytes[i]! & mask)) return false;
  }
  return true;
}

const V4: Array<[string, AddressCategory]> = [
  ['0.0.0.0/8', 'unspecified'], // "this network", RFC 791; connecting to 0.0.0.0 reaches the host itself
  ['127.0.0.0/8', 'loopback'],
  ['10.0.0.0/8', 'private'],
  ['172.16.0.0/12', 'private'],
  ['192.168.0.0/16', 'private'],
  ['100.64.0.0/10', 'private'], // CGNAT, RFC 6598 — the carrier's side of the phone
  ['198.18.0.0/15', 'private'], // benchmarking, RFC 2544
  ['169.254.0.0/16', 'link-local'], // includes cloud metadata 169.254.169.254
  ['192.0.0.0/24', 'reserved'], // IETF protocol assignments, RFC 6890
  ['224.0.0.0/4', 'multicast'],
  ['255.255.255.255/32', 'broadcast'],
  ['240.0.0.0/4', 'reserved'],
];
const V6: Array<[string, AddressCategory]> = [
  ['::/128', 'unspecified'],
  ['::1/128', 'loopback'],
  ['fc00::/7', 'private'],
  ['fec0::/10', 'private'], // ULA; deprecated site-local (RFC 3879)
  ['fe80::/10', 'link-local'],
  ['ff00::/8', 'multicast'],
  ['100::/64', 'reserved'], // discard-only, RFC 6666
];
const V4_TABLE = V4.map(([c, k]) => [parseCidr(c), k] as const);
const V6_TABLE = V6.map(([c, k]) => [parseCidr(c), k] as const);
// IPv6 prefixes whose addresses carry an IPv4 address; [prefix, offset of the IPv4 bytes].
const EMBEDDED: Array<[Cidr, number]> = [
  [parseCidr('::ffff:0:0/96'), 12],
  [parseCidr('::/96'), 12],
  [parseCidr('64:ff9b::/96'), 12],
  [parseCidr('64:ff9b:1::/48'), 12],
  [parseCidr('2002::/16'), 2],
];

function categorize(b: Uint8Array): AddressCategory {
  const table = b.length === 4 ? V4_TABLE : V6_TABLE;
  for (const [c, k] of table) if (inCidr(b, c)) return k;
  if (b.length === 16) {
    for (const [c, off] of EMBEDDED) if (inCidr(b, c)) return categorize(b.subarray(off, off + 4));
  }
  return 'public';
}

export function addressCategory(ip: string): AddressCategory {
  const b = ipToBytes(ip);
  return b ? categorize(b) : 'invalid';
}

const compiled = new WeakMap<readonly string[], Cidr[]>();
function denyList(cidrs: readonly string[]): Cidr[] {
  let c = compiled.get(cidrs);
  if (!c) {
    c = cidrs.map(parseCidr);
    compiled.set(cidrs, c);
  }
  return c;
}

/** Throws TypeError on a bad CIDR, so configuration mistakes surface at start. */
export function validatePolicy(policy: DestinationPolicy): void {
  if (policy.denyCidrs) denyList(policy.denyCidrs);
}

/** True when `ip` must not be reached. Anything that is not an IP literal is forbidden. */
export function isForbiddenAddress(ip: string, policy: DestinationPolicy = {}): boolean {
  const b = ipToBytes(ip);
  if (!b) return true;
  if (policy.denyCidrs && policy.denyCidrs.length > 0) {
    const v4 = b.length === 16 ? embeddedV4(b) : null;
    for (const c of denyList(policy.denyCidrs)) if (inCidr(b, c) || (v4 !== null && inCidr(v4, c))) return true;
  }
  switch (categorize(b)) {
    case 'public':
      return false;
    case 'loopback':
      return !policy.allowLoopback;
    case 'private':
      return !policy.allowPrivate;
    default:
      return true;
  }
}

function embeddedV4(b: Uint8Array): Uint8Array | null {
  for (const [c, off] of EMBEDDED) if (inCidr(b, c)) return b.subarray(off, off + 4);
  return null;
}
