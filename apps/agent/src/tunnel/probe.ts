// The liveness probe: an ICMP echo request (RFC 792) from our tunnel address to the relay's tunnel
// address, sealed like any packet. The relay's kernel answers it through the tunnel, which is an
// authenticated frame back — no protocol extension needed. The reply lands on our TUN and the kernel
// drops it (no socket waits for it).
import { isIP } from 'node:net';

export function checksum(buf: Uint8Array): number {
  let sum = 0;
  for (let i = 0; i + 1 < buf.length; i += 2) sum += (buf[i]! << 8) | buf[i + 1]!;
  if (buf.length % 2) sum += buf[buf.length - 1]! << 8;
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

export function icmpEcho(src: string, dst: string, id: number, seq: number): Buffer {
  const p = Buffer.alloc(28);
  p[0] = 0x45; // IPv4, 20-byte header
  p.writeUInt16BE(28, 2);
  p.writeUInt16BE(id & 0xffff, 4);
  p[8] = 64; // TTL
  p[9] = 1; // ICMP
  Buffer.from(src.split('.').map(Number)).copy(p, 12);
  Buffer.from(dst.split('.').map(Number)).copy(p, 16);
  p.writeUInt16BE(checksum(p.subarray(0, 20)), 10);
  p[20] = 8; // echo request
  p.writeUInt16BE(id & 0xffff, 24);
  p.writeUInt16BE(seq & 0xffff, 26);
  p.writeUInt16BE(checksum(p.subarray(20)), 22);
  return p;
}

/** First host of an IPv4 subnet ("192.168.255.0/24" → "192.168.255.1"): the relay's tunnel address. */
export function firstHost(cidr: string): string | undefined {
  const [addr, bitsText] = cidr.split('/');
  if (!addr || isIP(addr) !== 4) return undefined;
  const bits = Number(bitsText ?? 32);
  if (!Number.isInteger(bits) || bits < 0 || bits > 30) return undefined;
  const n = addr.split('.').reduce((a, o) => (a << 8) + Number(o), 0) >>> 0;
  const mask = bits === 0 ? 0 : (~0 << (32 - bits)) >>> 0;
  const h = ((n & mask) + 1) >>> 0;
  return [h >>> 24, (h >>> 16) & 255, (h >>> 8) & 255, h & 255].join('.');
}

export function prefixLength(cidr: string): number {
  const bits = Number(cidr.split('/')[1] ?? 32);
  return Number.isInteger(bits) ? bits : 32;
}
