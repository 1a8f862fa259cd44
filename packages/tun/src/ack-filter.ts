// ACK thinning within one read of a TUN queue (native/ack_filter.h says why and what counts as a pure ACK):
// the TypeScript reference of the addon's MarkRedundantAcks, answer for answer (a differential fuzz test
// holds them together, test/ack-filter.test.ts). RFC 791, RFC 9293 §3.1, RFC 7323 §3.

const FLOWS = 32; // the addon's list of flows per read; past it, older ACKs of further flows stay

interface PureAck {
  key: string;
  ack: number;
}

/** The flow and acknowledgement number of `p` when it is a pure ACK as native/ack_filter.h defines it. */
function pureAck(p: Uint8Array): PureAck | null {
  if (p.length < 40 || p[0] !== 0x45 || (p[1]! & 0x03) !== 0 || p[9] !== 6) return null;
  if (((p[2]! << 8) | p[3]!) !== p.length || (p[6]! & 0x3f) !== 0 || p[7] !== 0) return null;
  const doff = (p[32]! >> 4) * 4;
  if (doff < 20 || 20 + doff !== p.length || (p[32]! & 0x0f) !== 0 || p[33] !== 0x10) return null;
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
  const key = Buffer.from(p.subarray(12, 24)).toString('hex');
  return { key, ack: ((p[28]! << 24) | (p[29]! << 16) | (p[30]! << 8) | p[31]!) >>> 0 };
}

/** For each packet of one read, in order: true when a later pure ACK of its flow in the same read acknowledges past it. */
export function markRedundantAcks(packets: readonly Uint8Array[]): boolean[] {
  const drop = packets.map(() => false);
  const later = new Map<string, number>();
  for (let i = packets.length - 1; i >= 0; i--) {
    const a = pureAck(packets[i]!);
    if (!a) continue;
    const bar = later.get(a.key);
    if (bar === undefined) {
      if (later.size < FLOWS) later.set(a.key, a.ack);
      continue;
    }
    // Sequence-number order (RFC 9293 §3.4): the later one is ahead by 1 .. 2^31 - 1.
    if (((bar - a.ack) | 0) > 0) drop[i] = true;
    else later.set(a.key, a.ack); // as much or more (reordered): the bar for older ones
  }
  return drop;
}
