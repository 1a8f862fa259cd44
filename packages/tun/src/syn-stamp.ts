// The original destination stamped into a TCP SYN (native/syn_stamp.h says why and how): the TypeScript
// reference of the addon's StampSyn / UnstampSyn / ReadStamp, byte for byte (a differential fuzz test holds
// them together, test/syn-stamp.test.ts). RFC 791, RFC 9293 §3.1-3.2, RFC 6994, RFC 1071.
import { internetChecksum } from './packet.js';

export const STAMP_KIND = 253;
export const STAMP_LEN = 10;
export const STAMP_EXID = 0x5050;
const MAX_OPTIONS = 40;
const FAST_OPEN_KIND = 34;
const EXPERIMENT_KIND = 254;
const FAST_OPEN_EXID = 0xf989;

/** Why a packet was not stamped (the addon's StampResult). */
export const STAMP_NOT_SYN = -1;
export const STAMP_MALFORMED = -2;
export const STAMP_NO_ROOM = -3;
export type StampFailure = typeof STAMP_NOT_SYN | typeof STAMP_MALFORMED | typeof STAMP_NO_ROOM;

export interface Stamp {
  address: string;
  port: number;
}

interface Syn {
  ihl: number;
  thl: number;
  total: number;
}

function view(p: Uint8Array, whole: boolean): Syn | null {
  if (p.length < 20 || p[0]! >> 4 !== 4) return null;
  const ihl = (p[0]! & 0x0f) * 4;
  const total = (p[2]! << 8) | p[3]!;
  if (ihl < 20 || p[9] !== 6 || (((p[6]! << 8) | p[7]!) & 0x3fff) !== 0) return null;
  if (whole && (total > p.length || total < ihl + 20)) return null;
  if (ihl + 20 > p.length) return null;
  const thl = (p[ihl + 12]! >> 4) * 4;
  if (thl < 20 || ihl + thl > p.length || (whole && ihl + thl > total)) return null;
  const flags = p[ihl + 13]!;
  return flags & 0x02 && !(flags & 0x10) ? { ihl, thl, total } : null;
}

const be16 = (o: Uint8Array, i: number) => (o[i]! << 8) | o[i + 1]!;
const isStamp = (o: Uint8Array) => o[0] === STAMP_KIND && o.length >= 4 && be16(o, 2) === STAMP_EXID;
const isFastOpen = (o: Uint8Array) =>
  o[0] === FAST_OPEN_KIND || (o[0] === EXPERIMENT_KIND && o.length >= 4 && be16(o, 2) === FAST_OPEN_EXID);

/** The options other than EOL and NOP, in order; null when malformed. */
function options(o: Uint8Array): Uint8Array[] | null {
  const out: Uint8Array[] = [];
  for (let i = 0; i < o.length; ) {
    if (o[i] === 0) break;
    if (o[i] === 1) {
      i++;
      continue;
    }
    if (i + 1 >= o.length) return null;
    const l = o[i + 1]!;
    if (l < 2 || i + l > o.length) return null;
    out.push(o.subarray(i, i + l));
    i += l;
  }
  return out;
}

function rebuild(p: Uint8Array, v: Syn, opts: Uint8Array[]): Buffer | StampFailure {
  const n = opts.reduce((a, o) => a + o.length, 0);
  const padded = (n + 3) & ~3;
  const payload = p.subarray(v.ihl + v.thl, v.total);
  const total = v.ihl + 20 + padded + payload.length;
  if (total > 0xffff) return STAMP_NO_ROOM;
  const out = Buffer.alloc(total);
  out.set(p.subarray(0, v.ihl + 20), 0);
  let k = v.ihl + 20;
  for (const o of opts) {
    out.set(o, k);
    k += o.length;
  }
  out.set(payload, v.ihl + 20 + padded);
  out.writeUInt16BE(total, 2);
  out.writeUInt16BE(0, 10);
  out.writeUInt16BE(internetChecksum(out.subarray(0, v.ihl)), 10);
  out[v.ihl + 12] = (((20 + padded) / 4) << 4) | (out[v.ihl + 12]! & 0x0f);
  out.writeUInt16BE(0, v.ihl + 16);
  const seg = out.subarray(v.ihl);
  const pseudo = Buffer.alloc(12);
  out.copy(pseudo, 0, 12, 20);
  pseudo[9] = 6;
  pseudo.writeUInt16BE(seg.length, 10);
  let s = 0;
  for (let i = 0; i < 12; i += 2) s += pseudo.readUInt16BE(i);
  out.writeUInt16BE(internetChecksum(seg, s), v.ihl + 16);
  return out;
}

/** `packet` (an IPv4 TCP SYN) with `dst` as its stamp; see native/syn_stamp.h StampSyn. */
export function stampSyn(packet: Uint8Array, dst: Stamp): Buffer | StampFailure {
  const v = view(packet, true);
  if (!v) return STAMP_NOT_SYN;
  const all = options(packet.subarray(v.ihl + 20, v.ihl + v.thl));
  if (!all) return STAMP_MALFORMED;
  const stamp = Buffer.alloc(STAMP_LEN);
  stamp[0] = STAMP_KIND;
  stamp[1] = STAMP_LEN;
  stamp.writeUInt16BE(STAMP_EXID, 2);
  Buffer.from(dst.address.split('.').map(Number)).copy(stamp, 4);
  stamp.writeUInt16BE(dst.port, 8);
  for (const dropFastOpen of [false, true]) {
    const kept = all.filter((o) => !isStamp(o) && !(dropFastOpen && isFastOpen(o)));
    if (kept.reduce((a, o) => a + o.length, 0) + STAMP_LEN > MAX_OPTIONS) continue;
    return rebuild(packet, v, [...kept, stamp]);
  }
  return STAMP_NO_ROOM;
}

/** `packet` without any stamp; 0 when it had none; see native/syn_stamp.h UnstampSyn. */
export function unstampSyn(packet: Uint8Array): Buffer | 0 | StampFailure {
  const v = view(packet, true);
  if (!v) return STAMP_NOT_SYN;
  const all = options(packet.subarray(v.ihl + 20, v.ihl + v.thl));
  if (!all) return STAMP_MALFORMED;
  if (!all.some(isStamp)) return 0;
  return rebuild(
    packet,
    v,
    all.filter((o) => !isStamp(o)),
  );
}

/** The stamp of a saved SYN (TCP_SAVED_SYN: IPv4 and TCP headers), or null; see native/syn_stamp.h ReadStamp. */
export function readStamp(savedSyn: Uint8Array): Stamp | null {
  const v = view(savedSyn, false);
  if (!v) return null;
  const all = options(savedSyn.subarray(v.ihl + 20, v.ihl + v.thl));
  const s = all?.find((o) => isStamp(o) && o.length === STAMP_LEN);
  return s ? { address: Array.from(s.subarray(4, 8)).join('.'), port: be16(s, 8) } : null;
}
