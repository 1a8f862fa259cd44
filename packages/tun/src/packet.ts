// Builds and parses IPv4/UDP packets: what the tunnel writes into TUN in tests, and what a test
// expects to read out. RFC 791 (IPv4 header), RFC 768 (UDP), RFC 1071 (Internet checksum).
import { isIPv4 } from 'node:net';
import { fail } from './errors.js';

export interface UdpPacketSpec {
  src: string;
  dst: string;
  srcPort: number;
  dstPort: number;
  payload: Uint8Array;
  ttl?: number;
  id?: number;
}

export interface ParsedUdpPacket {
  src: string;
  dst: string;
  srcPort: number;
  dstPort: number;
  ttl: number;
  payload: Buffer;
  ipChecksumOk: boolean;
  udpChecksumOk: boolean;
}

/** RFC 1071 one's-complement sum over `buf`, starting from `initial`, not yet complemented. */
function sum16(buf: Uint8Array, initial = 0): number {
  let s = initial;
  const n = buf.length & ~1;
  for (let i = 0; i < n; i += 2) s += (buf[i]! << 8) | buf[i + 1]!;
  if (buf.length & 1) s += buf[buf.length - 1]! << 8;
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  return s;
}

/** The Internet checksum of `buf` (RFC 1071). */
export function internetChecksum(buf: Uint8Array, initial = 0): number {
  return ~sum16(buf, initial) & 0xffff;
}

function ipv4Bytes(addr: string, field: string): Buffer {
  if (!isIPv4(addr)) throw fail('PP_ERR_TUN_INVALID_CONFIG', { field, reason: `"${addr}" is not an IPv4 address` });
  return Buffer.from(addr.split('.').map(Number));
}

function udpChecksum(src: Buffer, dst: Buffer, udp: Uint8Array): number {
  // Pseudo-header: src, dst, zero, protocol 17, UDP length.
  const pseudo = Buffer.alloc(12);
  src.copy(pseudo, 0);
  dst.copy(pseudo, 4);
  pseudo[9] = 17;
  pseudo.writeUInt16BE(udp.length, 10);
  return internetChecksum(udp, sum16(pseudo));
}

export function buildIPv4Udp(spec: UdpPacketSpec): Buffer {
  const src = ipv4Bytes(spec.src, 'src');
  const dst = ipv4Bytes(spec.dst, 'dst');
  const udpLen = 8 + spec.payload.length;
  const total = 20 + udpLen;
  if (total > 65535)
    throw fail('PP_ERR_TUN_INVALID_DATAGRAM', {
      reason: `payload of ${spec.payload.length} bytes does not fit in an IPv4 packet`,
    });
  const p = Buffer.alloc(total);
  p[0] = 0x45; // version 4, IHL 5 words
  p.writeUInt16BE(total, 2);
  p.writeUInt16BE((spec.id ?? 0) & 0xffff, 4);
  p.writeUInt16BE(0x4000, 6); // DF, no fragments
  p[8] = spec.ttl ?? 64;
  p[9] = 17;
  src.copy(p, 12);
  dst.copy(p, 16);
  p.writeUInt16BE(internetChecksum(p.subarray(0, 20)), 10);
  p.writeUInt16BE(spec.srcPort, 20);
  p.writeUInt16BE(spec.dstPort, 22);
  p.writeUInt16BE(udpLen, 24);
  p.set(spec.payload, 28);
  // A computed 0 is sent as 0xffff: 0 means "no checksum" (RFC 768).
  p.writeUInt16BE(udpChecksum(src, dst, p.subarray(20)) || 0xffff, 26);
  return p;
}

/** Parses an IPv4/UDP packet; null when it is anything else (or truncated). */
export function parseIPv4Udp(packet: Uint8Array): ParsedUdpPacket | null {
  const p = Buffer.from(packet.buffer, packet.byteOffset, packet.byteLength);
  if (p.length < 20 || p[0]! >> 4 !== 4) return null;
  const ihl = (p[0]! & 0x0f) * 4;
  const total = p.readUInt16BE(2);
  if (ihl < 20 || total > p.length || p[9] !== 17 || total < ihl + 8) return null;
  if ((p.readUInt16BE(6) & 0x3fff) !== 0) return null; // a fragment: not parsed here
  const udp = p.subarray(ihl, total);
  const udpLen = udp.readUInt16BE(4);
  if (udpLen < 8 || udpLen > udp.length) return null;
  const src = p.subarray(12, 16);
  const dst = p.subarray(16, 20);
  const wire = udp.readUInt16BE(6);
  return {
    src: Array.from(src).join('.'),
    dst: Array.from(dst).join('.'),
    srcPort: udp.readUInt16BE(0),
    dstPort: udp.readUInt16BE(2),
    ttl: p[8]!,
    payload: Buffer.from(udp.subarray(8, udpLen)),
    ipChecksumOk: internetChecksum(p.subarray(0, ihl)) === 0,
    udpChecksumOk: wire === 0 || udpChecksum(Buffer.from(src), Buffer.from(dst), udp.subarray(0, udpLen)) === 0,
  };
}
