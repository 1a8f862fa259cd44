// IPv4 helpers for the packet path: addresses as unsigned 32-bit numbers so a per-packet lookup is
// one Map.get on a number, never a string built from packet bytes.

/** "a.b.c.d" -> u32, or undefined when it is not a strict dotted quad. */
export function ipv4ToNumber(text: string): number | undefined {
  const parts = text.split('.');
  if (parts.length !== 4) return undefined;
  let n = 0;
  for (const p of parts) {
    if (!/^(0|[1-9][0-9]{0,2})$/.test(p)) return undefined;
    const v = Number(p);
    if (v > 255) return undefined;
    n = n * 256 + v;
  }
  return n;
}

export function numberToIpv4(n: number): string {
  return `${n >>> 24}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`;
}

export interface Subnet {
  /** Network address, e.g. "192.168.255.0". */
  readonly network: string;
  readonly prefix: number;
  /** "192.168.255.0/24" with host bits cleared (what netfw wants). */
  readonly cidr: string;
  /** The relay's own address: the first host ("192.168.255.1"). */
  readonly relayAddress: string;
  contains(ip: number): boolean;
}

export function parseSubnet(text: string): Subnet {
  const [addr, bits] = text.split('/');
  const base = addr === undefined ? undefined : ipv4ToNumber(addr);
  const prefix = Number(bits);
  if (base === undefined || !Number.isInteger(prefix) || prefix < 8 || prefix > 30)
    throw new Error(`device subnet "${text}" is not an IPv4 CIDR /8../30`);
  const mask = (0xffffffff << (32 - prefix)) >>> 0;
  const net = (base & mask) >>> 0;
  const network = numberToIpv4(net);
  return Object.freeze({
    network,
    prefix,
    cidr: `${network}/${prefix}`,
    relayAddress: numberToIpv4(net + 1),
    contains: (ip: number) => (ip & mask) >>> 0 === net,
  });
}

/** Source and destination of an IPv4 packet (caller checked the version nibble and length >= 20). */
export const ipv4Src = (p: Uint8Array): number => ((p[12]! << 24) | (p[13]! << 16) | (p[14]! << 8) | p[15]!) >>> 0;
export const ipv4Dst = (p: Uint8Array): number => ((p[16]! << 24) | (p[17]! << 16) | (p[18]! << 8) | p[19]!) >>> 0;
