// ACK thinning within one read of a TUN queue (native/ack_filter.h says why and what counts as a pure ACK):
// the TypeScript reference of the addon's MarkRedundantAcks, answer for answer (a differential fuzz test
// holds them together, test/ack-filter.test.ts). RFC 791, RFC 9293 §3.1, RFC 7323 §3.

const FLOWS = 32; // the addon's list of flows per read; past it, packets of further flows stay

interface Seg {
  pure: boolean;
  key: string;
  ack: number;
  win: number;
}

/**
 * `p` as one read's segment: a pure ACK as native/ack_filter.h defines it, a carrier (IPv4 without options,
 * not a fragment, ACK without SYN, RST, URG or reserved bits, with a payload or a FIN), or null.
 */
function segment(p: Uint8Array): Seg | null {
  if (p.length < 40 || p[0] !== 0x45 || p[9] !== 6) return null;
  if (((p[2]! << 8) | p[3]!) !== p.length || (p[6]! & 0x3f) !== 0 || p[7] !== 0) return null;
  const doff = (p[32]! >> 4) * 4;
  if (doff < 20 || 20 + doff > p.length || (p[32]! & 0x0f) !== 0) return null;
  const flags = p[33]!;
  if ((flags & 0x10) === 0 || (flags & 0x26) !== 0) return null;
  const key = Buffer.from(p.subarray(12, 24)).toString('hex');
  const ack = ((p[28]! << 24) | (p[29]! << 16) | (p[30]! << 8) | p[31]!) >>> 0;
  const win = (p[34]! << 8) | p[35]!;
  if (20 + doff < p.length || (flags & 0x01) !== 0) return { pure: false, key, ack, win };
  if (flags !== 0x10 || (p[1]! & 0x03) !== 0) return null;
  for (let o = 40; o < p.length; ) {
    const kind = p[o]!;
    if (kind === 0) break;
    if (kind === 1) {
      o++;
      continue;
    }
    if (kind !== 8 || o + 10 > p.length || p[o + 1] !== 10) return null;
    o += 10;
  }
  return { pure: true, key, ack, win };
}

/**
 * For each packet of one read, in order: true when it is a pure ACK that a later segment of its flow in
 * the same read makes redundant (acknowledging more, or as much with a payload or FIN and a window at
 * least as large).
 */
export function markRedundantAcks(packets: readonly Uint8Array[]): boolean[] {
  const drop = packets.map(() => false);
  const later = new Map<string, { bar: number; win: number }>();
  for (let i = packets.length - 1; i >= 0; i--) {
    const a = segment(packets[i]!);
    if (!a) continue;
    const win = a.pure ? -1 : a.win;
    const l = later.get(a.key);
    if (l === undefined) {
      if (later.size < FLOWS) later.set(a.key, { bar: a.ack, win });
      continue;
    }
    // Sequence-number order (RFC 9293 §3.4): the later one is ahead by 1 .. 2^31 - 1.
    const ahead = (l.bar - a.ack) | 0;
    if (a.pure && (ahead > 0 || (ahead === 0 && l.win >= a.win))) drop[i] = true;
    else if (ahead < 0) {
      l.bar = a.ack; // more (reordered): the bar for older ones
      l.win = win;
    } else if (ahead === 0 && win > l.win) l.win = win;
  }
  return drop;
}
