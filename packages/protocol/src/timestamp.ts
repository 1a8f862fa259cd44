// TAI64N-style timestamps for initiations (https://cr.yp.to/libtai/tai64.html): 8 bytes big-endian
// 2^62 + seconds, 4 bytes big-endian nanoseconds. Big-endian so that byte order is time order and
// the responder can compare with Buffer.compare. We do not add the TAI-UTC leap second offset:
// only monotonicity per device matters, exactly as in WireGuard.
import { TIMESTAMP_LEN } from './constants.js';

export function tai64n(unixMs: number): Buffer {
  const buf = Buffer.alloc(TIMESTAMP_LEN);
  const ms = Math.max(0, Math.floor(unixMs));
  const secs = Math.floor(ms / 1000);
  buf.writeUInt32BE(0x4000_0000 + Math.floor(secs / 0x1_0000_0000), 0);
  buf.writeUInt32BE(secs >>> 0, 4);
  buf.writeUInt32BE((ms % 1000) * 1_000_000, 8);
  return buf;
}

/** The smallest timestamp strictly greater than `t` (one nanosecond later). */
export function nextTimestamp(t: Buffer): Buffer {
  const out = Buffer.from(t);
  let ns = out.readUInt32BE(8) + 1;
  if (ns >= 1_000_000_000) {
    ns = 0;
    const secs = out.readUInt32BE(0) * 0x1_0000_0000 + out.readUInt32BE(4) + 1;
    out.writeUInt32BE(Math.floor(secs / 0x1_0000_0000), 0);
    out.writeUInt32BE(secs >>> 0, 4);
  }
  out.writeUInt32BE(ns, 8);
  return out;
}
